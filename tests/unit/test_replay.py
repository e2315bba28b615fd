"""Choosing dead letters to replay: latest attempt per message, reason/time filters, loop guard."""

from __future__ import annotations

from hocba.kafka.read import TopicRecord
from hocba.kafka.replay import latest_attempts, plan_replay, replay_message

REASON = "enrich.unknown_school"


def letter(
    offset: int,
    value: bytes = b"original",
    *,
    count: int = 0,
    code: str = REASON,
    failed_at: str = "2024-06-01T08:00:00.000+00:00",
    extra: dict[str, str] | None = None,
    vendor: tuple[tuple[str, bytes], ...] = (),
) -> TopicRecord:
    headers = {
        "hocba.error.code": code,
        "hocba.replay.count": str(count),
        "hocba.failed_at": failed_at,
        "hocba.source.offset": str(offset),
        **(extra or {}),
    }
    raw = (*vendor, *((name, text.encode()) for name, text in headers.items()))
    shown = {name: value.decode("utf-8", "replace") for name, value in raw}
    return TopicRecord(0, offset, 0, b"key", value, shown, raw)


def test_only_the_latest_attempt_of_a_message_is_replayed() -> None:
    first, again = letter(0, count=0), letter(5, count=1)
    plan = plan_replay([first, again], reason=REASON)
    assert plan.to_send == (again,)
    assert plan.superseded == 1


def test_distinct_messages_are_each_replayed() -> None:
    letters = [letter(0, b"a"), letter(1, b"b")]
    assert plan_replay(letters, reason=REASON).to_send == tuple(letters)


def test_a_message_replayed_max_times_is_refused() -> None:
    worn = letter(9, count=3)
    plan = plan_replay([letter(0), letter(4, count=1), worn], reason=REASON, max_replays=3)
    assert plan.to_send == ()
    assert plan.refused == (worn,)


def test_the_reason_of_the_latest_attempt_decides() -> None:
    letters = [letter(0, count=0), letter(3, count=1, code="validate.score")]
    assert plan_replay(letters, reason=REASON).to_send == ()
    assert len(plan_replay(letters, reason="validate.score").to_send) == 1


def test_since_filters_on_failure_time() -> None:
    old = letter(0, b"a", failed_at="2024-05-01T00:00:00+00:00")
    new = letter(1, b"b", failed_at="2024-06-02T00:00:00+00:00")
    since = 1_717_200_000_000  # 2024-06-01T00:00Z
    assert plan_replay([old, new], reason=REASON, since_ms=since).to_send == (new,)


def test_the_replayed_message_is_the_original_with_the_count_raised() -> None:
    sent = replay_message(letter(0, count=1, extra={"vendor-trace": "abc"}))
    assert (sent.key, sent.value) == (b"key", b"original")
    assert dict(sent.headers) == {"vendor-trace": b"abc", "hocba.replay.count": b"2"}


def test_a_vendors_headers_are_replayed_byte_for_byte() -> None:
    """Binary, and repeated under one name: Kafka allows both, and they are the vendor's."""
    vendor = (("trace", b"\xff\x00\x01"), ("tag", b"a"), ("tag", b"b"))
    sent = replay_message(letter(0, vendor=vendor))
    assert sent.headers == (*vendor, ("hocba.replay.count", b"1"))


def test_an_unreadable_count_counts_as_never_replayed() -> None:
    garbled = letter(0, extra={"hocba.replay.count": "x"})
    assert dict(replay_message(garbled).headers)["hocba.replay.count"] == b"1"
    once = letter(4, count=1, failed_at="2024-05-01T00:00:00.000+00:00")  # earlier, yet ahead
    assert latest_attempts([garbled, once]) == [once]
