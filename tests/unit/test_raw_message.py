"""`worker.raw_message`: what the pipeline makes of a message Faust hands over."""

from __future__ import annotations

from types import SimpleNamespace

from hocba.worker import raw_message


def _message(**fields: object) -> SimpleNamespace:
    defaults: dict[str, object] = {
        "topic": "submissions",
        "partition": 3,
        "offset": 17,
        "timestamp": 1_750_000_000.5,
        "key": b"k",
        "value": b"v",
        "headers": [("trace", b"t"), ("empty", None)],
    }
    return SimpleNamespace(**(defaults | fields))


def test_a_message_keeps_its_coordinates_time_and_headers() -> None:
    raw = raw_message(_message())
    assert (raw.topic, raw.partition, raw.offset) == ("submissions", 3, 17)
    assert raw.timestamp_ms == 1_750_000_000_500
    assert raw.headers == (("trace", b"t"), ("empty", b""))


def test_a_record_without_a_time_is_read_not_refused() -> None:
    """Kafka's oldest record format has no timestamp: it raised outside the per-message
    guard and stopped the worker at every restart."""
    raw = raw_message(_message(timestamp=None, value=None, headers=None))
    assert (raw.timestamp_ms, raw.value, raw.headers) == (0, b"", ())
