"""A batch's `received_at` is when its first message reached the consumer: a batch waits up
to `HOCBA_BATCH_MAX_MS` for more messages, and may wait behind others, before its CPU stage
starts, and the audit (and the bench's "first consumed") must not start after that."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from hocba.worker import arrived_at


def _event(time_in: float | None) -> SimpleNamespace:
    return SimpleNamespace(message=SimpleNamespace(time_in=time_in))


def test_a_batch_was_received_when_its_first_message_arrived() -> None:
    now = time.monotonic()
    received = arrived_at([_event(now - 0.5), _event(now - 2.0), _event(None)])
    assert received is not None
    expected = datetime.now(UTC) - timedelta(seconds=2.0)
    assert abs(received - expected) < timedelta(seconds=0.25)


def test_without_faust_s_arrival_stamps_the_batch_has_no_arrival_time() -> None:
    assert arrived_at([_event(None), SimpleNamespace(message=SimpleNamespace())]) is None
