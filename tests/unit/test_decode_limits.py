"""Length bombs and caps in the decode stage: rejected with a reason, never allocated."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from hocba.domain.limits import MAX_CERTIFICATE_BYTES, MAX_CHAIN_LENGTH
from hocba.domain.messages import RawMessage, Rejection, Submission
from hocba.domain.reasons import Reason
from hocba.pipeline.codec import HEADER_LEN, MAGIC, RECORD_BATCH, SUBMISSION, encode, load_registry
from hocba.pipeline.decode import decode_envelope, decode_payload
from hocba.publishing import encode_payload
from hocba.synth import demo_schools, generate_records

REGISTRY = load_registry()
BOMB = 2**40


def varint(n: int) -> bytes:
    """Avro's zig-zag varint."""
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def text(value: str) -> bytes:
    return varint(len(value.encode())) + value.encode()


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    schools = demo_schools(["01"], 1, 1, former_to_current={"01": "01"})
    return generate_records(schools, count=4, seed=3)


def raw(value: bytes) -> RawMessage:
    return RawMessage("t", 0, 0, 0, b"k", value)


def envelope_bytes(**overrides: Any) -> bytes:
    datum = {
        "submission_id": "7c0f3f7e-0000-4000-8000-000000000001",
        "sender_code": "SGD-2024-01",
        "vendor": "v",
        "sent_at": datetime(2024, 6, 1, tzinfo=UTC),
        "payload": b"p",
        "signature": b"s",
        "signature_algorithm": "ED25519",
        "certificate_chain": [b"c"],
        **overrides,
    }
    return encode(REGISTRY, SUBMISSION, datum)


def submission(payload: bytes) -> Submission:
    return Submission("sid", "SGD-2024-01", "v", 0, payload, b"", "ED25519", ())


def peak_bytes(call: Callable[[], object]) -> tuple[object, int]:
    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def code_of(outcome: object) -> Reason:
    assert isinstance(outcome, Rejection), outcome
    return outcome.code


def test_a_declared_payload_of_a_terabyte_is_too_large_and_not_allocated() -> None:
    header = MAGIC + REGISTRY.writer_fingerprint(SUBMISSION)
    body = text("sid") + text("SGD-2024-01") + text("v") + varint(0) + varint(BOMB) + b"xx"
    outcome, peak = peak_bytes(lambda: decode_envelope(raw(header + body), REGISTRY, 1_048_576))
    assert code_of(outcome) == Reason.DECODE_TOO_LARGE
    assert peak < 1_000_000


def test_an_envelope_cut_short_is_malformed_not_too_large() -> None:
    value = envelope_bytes(payload=b"x" * 500)
    assert code_of(decode_envelope(raw(value[:300]), REGISTRY, 1_048_576)) == (
        Reason.DECODE_MALFORMED
    )


def test_a_long_sender_code_is_too_large() -> None:
    value = envelope_bytes(sender_code="S" * 70_000)
    assert code_of(decode_envelope(raw(value), REGISTRY, 1_048_576)) == Reason.DECODE_TOO_LARGE


def test_a_certificate_chain_above_the_cap_is_too_large() -> None:
    value = envelope_bytes(certificate_chain=[b"c"] * (MAX_CHAIN_LENGTH + 1))
    assert code_of(decode_envelope(raw(value), REGISTRY, 1_048_576)) == Reason.DECODE_TOO_LARGE


def test_a_certificate_above_its_size_cap_is_too_large() -> None:
    at_cap = envelope_bytes(certificate_chain=[b"c", b"c" * MAX_CERTIFICATE_BYTES])
    assert isinstance(decode_envelope(raw(at_cap), REGISTRY, 1_048_576), Submission)
    over = envelope_bytes(certificate_chain=[b"c", b"c" * (MAX_CERTIFICATE_BYTES + 1)])
    outcome = decode_envelope(raw(over), REGISTRY, 1_048_576)
    assert code_of(outcome) == Reason.DECODE_TOO_LARGE
    assert isinstance(outcome, Rejection) and outcome.detail.startswith("certificate 1 is ")
    assert outcome.sender_code == "SGD-2024-01"


def test_a_valid_envelope_still_decodes() -> None:
    outcome = decode_envelope(raw(envelope_bytes()), REGISTRY, 1_048_576)
    assert isinstance(outcome, Submission)
    assert outcome.certificate_chain == (b"c",)


def test_a_terabyte_of_declared_records_is_rejected_before_decoding() -> None:
    payload = MAGIC + REGISTRY.writer_fingerprint(RECORD_BATCH) + varint(BOMB) + b"\x00" * 64
    outcome, peak = peak_bytes(
        lambda: decode_payload(raw(b""), submission(payload), REGISTRY, 5_000)
    )
    assert code_of(outcome) == Reason.DECODE_TOO_LARGE
    assert peak < 1_000_000


def test_more_records_than_the_cap_are_too_large(records: list[dict[str, Any]]) -> None:
    payload = encode_payload(REGISTRY, records)
    outcome = decode_payload(raw(b""), submission(payload), REGISTRY, len(records) - 1)
    assert code_of(outcome) == Reason.DECODE_TOO_LARGE


def test_a_subjects_count_bomb_inside_a_record_is_too_large(
    records: list[dict[str, Any]],
) -> None:
    marker = 987_654_321  # a revision whose varint is found once; `subjects` follows it
    record = dict(records[0], revision=marker, subjects=[])
    payload = encode_payload(REGISTRY, [record])
    at = payload.index(varint(marker), HEADER_LEN) + len(varint(marker))
    assert payload[at] == 0  # the empty subjects array
    bomb = payload[:at] + varint(BOMB) + payload[at + 1 :]
    outcome = decode_payload(raw(b""), submission(bomb), REGISTRY, 5_000)
    assert code_of(outcome) == Reason.DECODE_TOO_LARGE


def test_a_truncated_payload_is_malformed(records: list[dict[str, Any]]) -> None:
    payload = encode_payload(REGISTRY, records)
    outcome = decode_payload(raw(b""), submission(payload[:-40]), REGISTRY, 5_000)
    assert code_of(outcome) == Reason.DECODE_MALFORMED


def test_a_long_text_inside_a_record_is_too_large(records: list[dict[str, Any]]) -> None:
    payload = encode_payload(REGISTRY, [dict(records[0], full_name="A" * 70_000)])
    outcome = decode_payload(raw(b""), submission(payload), REGISTRY, 5_000)
    assert code_of(outcome) == Reason.DECODE_TOO_LARGE


def test_valid_records_still_decode(records: list[dict[str, Any]]) -> None:
    payload = encode_payload(REGISTRY, records)
    outcome = decode_payload(raw(b""), submission(payload), REGISTRY, 5_000)
    assert isinstance(outcome, tuple) and len(outcome) == len(records)
