"""Pure pieces of landing: per-record classification, the hand-off codec, dead-letter
headers and the in-process memory of landed submissions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from hocba.domain.messages import RawMessage, RecordError, Rejection, Submission
from hocba.domain.reasons import Reason
from hocba.pipeline.audit import dead_letter_row
from hocba.pipeline.codec import SUBMISSION, encode, load_registry
from hocba.pipeline.deadletter import MAX_DETAIL, to_dead_letter
from hocba.pipeline.dedupe import classify, record_key
from hocba.pipeline.handoff import HandedOff, decode_item, encode_item
from hocba.pipeline.process import Accepted
from hocba.pipeline.seen import RecentlySeen
from hocba.worker import from_handoff

REGISTRY = load_registry()
RECEIVED_AT = datetime(2024, 6, 1, 12, 0, 0, 123_000, tzinfo=UTC)


def row(student: str, revision: int, content: str = "h") -> dict[str, Any]:
    return {
        "school_year": "2023-2024",
        "school_code": "0100001",
        "grade": 3,
        "student_key": student,
        "revision": revision,
        "content_hash": content,
        "subject_scores": [7.5, None],
        "on_time_grade": True,
    }


def test_new_duplicate_stale_and_correction_are_told_apart() -> None:
    landed = {
        record_key(row("dup", 2)): (2, "h"),
        record_key(row("old", 3)): (3, "h"),
        record_key(row("fix", 1)): (1, "h"),
    }
    result = classify([row("new", 1), row("dup", 2), row("old", 2), row("fix", 2, "h2")], landed)
    assert [r["student_key"] for r in result.to_land] == ["new", "fix"]
    assert (result.new, result.corrections, result.duplicates, result.stale) == (1, 1, 1, 1)


def test_within_a_batch_only_the_highest_revision_of_a_key_lands() -> None:
    result = classify([row("a", 1), row("a", 3), row("a", 2), row("a", 3)], {})
    assert [r["revision"] for r in result.to_land] == [3]
    assert (result.new, result.duplicates, result.stale) == (1, 1, 2)


def test_a_changed_record_without_a_higher_revision_is_a_conflict_not_a_duplicate() -> None:
    """Counting it as a duplicate would drop the vendor's change in silence."""
    landed = {record_key(row("landed", 2)): (2, "h")}
    result = classify([row("landed", 2, "changed"), row("b", 1), row("b", 1, "other")], landed)
    assert [(r["student_key"], r["content_hash"]) for r in result.conflicts] == [
        ("landed", "changed"),
        ("b", "other"),  # the same key and revision twice in one message
    ]
    assert [r["student_key"] for r in result.to_land] == ["b"]
    assert (result.new, result.duplicates, result.stale) == (1, 0, 0)


def test_rival_rows_superseded_by_a_higher_revision_are_stale_not_conflicts() -> None:
    """Two contents at one revision lose nothing when a higher revision, sent later in the
    message or already landed, replaces them both."""
    landed = {record_key(row("landed", 1)): (3, "h")}
    rows = [row("later", 1), row("later", 1, "other"), row("later", 2, "fix")]
    result = classify([*rows, row("landed", 2), row("landed", 2, "other")], landed)
    assert result.conflicts == ()
    assert [(r["student_key"], r["revision"]) for r in result.to_land] == [("later", 2)]
    assert (result.new, result.duplicates, result.stale) == (1, 0, 4)


def message(value: bytes = b"\xc3\x01payload") -> RawMessage:
    return RawMessage(
        "hocba.submissions",
        4,
        17,
        1_700_000_000_000,
        b"key",
        value,
        (("hocba.replay.count", b"2"), ("vendor", b"x")),
    )


def envelope(payload: bytes) -> bytes:
    return encode(
        REGISTRY,
        SUBMISSION,
        {
            "submission_id": "sid",
            "sender_code": "SGD-2024-01",
            "vendor": "v",
            "sent_at": datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC),
            "payload": payload,
            "signature": b"s",
            "signature_algorithm": "ED25519",
            "certificate_chain": [b"der"],
        },
    )


def refused(detail: str) -> Rejection:
    """A message refused for one of its records."""
    errors = (RecordError(1, Reason.VALIDATE_SCORE, "score 11"),)
    return Rejection(message(), Reason.VALIDATE_SCORE, detail, errors, "sid", "S")


def test_handoff_round_trips_accepted_and_rejected_items() -> None:
    payload = bytes(range(256)) * 4  # large enough that a second copy would show
    value = envelope(payload)
    submission = Submission(
        "sid", "SGD-2024-01", "v", 1_700_000_000_000, payload, b"s", "ED25519", (b"der",)
    )
    accepted = Accepted(message(value), submission, "fp")
    encoded = encode_item(accepted, RECEIVED_AT)
    assert len(encoded) < len(value) + 100  # the payload travels once, inside the envelope
    back = decode_item(encoded, REGISTRY).verdict
    assert isinstance(back, Accepted)
    assert back.message == accepted.message  # the lander may have to dead-letter it
    assert back.submission.payload == payload  # the lander stages it
    sub = back.submission
    assert (sub.submission_id, sub.sender_code, sub.vendor) == ("sid", "SGD-2024-01", "v")
    assert (sub.sent_at_ms, back.signer_fingerprint) == (1_700_000_000_000, "fp")

    rejected = refused("1 of 2 records failed")
    assert decode_item(encode_item(rejected, RECEIVED_AT), REGISTRY).verdict == rejected


def test_handoff_carries_when_the_verifier_received_the_message_to_the_millisecond() -> None:
    """The lander's audit rows must tell when the pipeline first received the message, not
    when the lander read the item."""
    received_at = datetime(2024, 6, 1, 12, 0, 0, 123_456, tzinfo=UTC)
    item = encode_item(Rejection(message(), Reason.VALIDATE_SCORE, "score 11"), received_at)
    assert decode_item(item, REGISTRY).received_at == received_at.replace(microsecond=123_000)


# An item as verifiers before format 2 wrote it: no time of receipt.
FORMAT_1_ITEM = (
    b'\x01"hocba.submissions\x08"\x80\xa0\xab\xfe\xf9b\x02\x06key\x12\xc3\x01payload'
    b"\x04$hocba.replay.count\x022\x0cvendor\x02x\x00\x00\x02\x1cvalidate.score\x10score 11"
    b"\x06sid\x02S\x02\x02\x1cvalidate.score\x10score 11\x00"
)


def test_an_item_of_a_verifier_before_format_2_still_decodes_without_a_time() -> None:
    """In a rolling upgrade, an upgraded lander still reads what older verifiers sent."""
    assert decode_item(FORMAT_1_ITEM, REGISTRY) == HandedOff(refused("score 11"), None)


def event(value: bytes) -> Any:
    """A hand-off event as Faust gives it to the lander, as far as `from_handoff` reads it."""
    return SimpleNamespace(
        message=SimpleNamespace(
            topic="hocba.landing",
            partition=0,
            offset=3,
            timestamp=1_700_000_000.0,
            key=b"key",
            value=value,
            headers=(),
        )
    )


def test_a_lander_batch_was_received_when_its_earliest_item_was() -> None:
    """One `received_at` per batch: the earliest its items carry; the lander's own time only
    when none carries one."""
    submission = Submission("sid", "SGD-2024-01", "v", 0, b"p", b"s", "ED25519", ())
    accepted = Accepted(message(envelope(b"p")), submission, "fp")
    refused = Rejection(message(), Reason.VALIDATE_SCORE, "score 11")
    later = RECEIVED_AT.replace(second=5)
    events = [
        event(encode_item(accepted, later)),
        event(FORMAT_1_ITEM),
        event(encode_item(refused, RECEIVED_AT)),
        event(b"not a hand-off item"),
    ]
    prepared = from_handoff(events, REGISTRY)
    assert prepared.received_at == RECEIVED_AT
    assert (len(prepared.accepted), len(prepared.rejected)) == (1, 3)
    assert "undecodable hand-off message" in prepared.rejected[-1].detail

    before = datetime.now(UTC)
    only_format_1 = from_handoff([event(FORMAT_1_ITEM)], REGISTRY)
    assert before <= only_format_1.received_at <= datetime.now(UTC)


def test_handoff_carries_a_payload_the_verifier_rewrote() -> None:
    """An older schema version is re-encoded by the verifier: the lander must stage that
    version, not the one inside the envelope."""
    rewritten = Submission("sid", "SGD-2024-01", "v", 0, b"newest", b"s", "ED25519", ())
    item = Accepted(message(envelope(b"older")), rewritten, "fp", payload_rewritten=True)
    back = decode_item(encode_item(item, RECEIVED_AT), REGISTRY).verdict
    assert isinstance(back, Accepted) and back.payload_rewritten
    assert back.submission.payload == b"newest"


def test_handoff_refuses_bytes_of_another_format() -> None:
    with pytest.raises(ValueError, match="not a hand-off item"):
        decode_item(b'{"kind": "accepted"}', REGISTRY)


def test_a_verdict_the_lander_cannot_read_dead_letters_the_vendors_message() -> None:
    """In a rolling upgrade, newer verifiers may send what an older lander cannot read (here
    an envelope of a schema version it does not know): the dead letter must be the vendor's
    bytes, replayable after the upgrade, not the hand-off item's."""
    unknown_version = b"\xc3\x01" + bytes(8) + b"a newer envelope"
    submission = Submission("sid", "SGD-2024-01", "v", 0, b"p", b"s", "ED25519", ())
    item = encode_item(Accepted(message(unknown_version), submission, "fp"), RECEIVED_AT)
    back = decode_item(item, REGISTRY).verdict
    assert isinstance(back, Rejection) and back.code is Reason.INTERNAL_ERROR
    assert back.message == message(unknown_version)
    assert "upgrade it to the verifiers' version, then replay" in back.detail


def test_dead_letter_keeps_bytes_and_carries_every_header() -> None:
    rejection = Rejection(
        message(),
        Reason.VALIDATE_SCORE,
        "score 11",
        (RecordError(0, Reason.VALIDATE_SCORE),),
        "sid",
        "S",
    )
    letter = to_dead_letter(rejection, "w1", datetime(2024, 6, 1, tzinfo=UTC))
    headers = {k: v.decode() for k, v in letter.headers}
    assert len(headers) == len(letter.headers)  # each header once
    assert (letter.key, letter.value) == (b"key", message().value)
    records = headers.pop("hocba.error.records")
    assert json.loads(records) == [{"index": 0, "code": "validate.score"}]
    assert headers == {
        "vendor": "x",  # the vendor's own header, for a replay to send again
        "hocba.error.code": "validate.score",
        "hocba.error.stage": "validate",
        "hocba.error.detail": "score 11",
        "hocba.source.topic": "hocba.submissions",
        "hocba.source.partition": "4",
        "hocba.source.offset": "17",
        "hocba.source.timestamp": "1700000000000",
        "hocba.failed_at": "2024-06-01T00:00:00.000+00:00",
        "hocba.worker": "w1",
        "hocba.replay.count": "2",
    }


def test_a_long_detail_is_cut_in_the_header_and_the_audit_row() -> None:
    rejection = Rejection(message(), Reason.VERIFY_CHAIN_UNTRUSTED, "x" * 5000)
    at = datetime(2024, 6, 1, tzinfo=UTC)
    headers = dict(to_dead_letter(rejection, "w1", at).headers)
    assert len(headers["hocba.error.detail"]) == len(dead_letter_row(rejection, "w1", at)["detail"])
    assert len(headers["hocba.error.detail"]) == MAX_DETAIL


def test_recently_seen_forgets_the_oldest_beyond_capacity() -> None:
    seen = RecentlySeen(capacity=2)
    seen[b"a"], seen[b"b"] = b"1", b"1"
    assert seen.get(b"a") == b"1"  # a is now the most recent
    seen[b"c"] = b"1"
    assert set(seen) == {b"a", b"c"}
