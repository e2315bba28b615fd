"""Offsets that hold no message for the worker are committed past, right after offset 0 too.

A partition's offsets are not all handed to a consumer: an unreadable batch is one stand-in
record at its last offset (`fetch_reader`), compaction removes records, a transaction's
marker takes an offset. Faust commits a partition up to its first offset not yet acked, and
records a hole in what it was handed as acked, except right after offset 0
(`if gap > 1 and r_offset` in faust-streaming 0.15's `Consumer._drain_messages`): there
the commits stayed at 1, the lag never fell to 0, and the next restart read every message
since again, dead letters included. A hole of one offset passes anyway (Faust takes its
committed offset as read), so only a larger one, such as a stand-in's batch, was stuck.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from faust.transport.drivers.aiokafka import Consumer


class GapAfterFirstOffsetConsumer(Consumer):
    """Faust's aiokafka consumer, recording as acked the hole Faust leaves after offset 0."""

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[Any, Any]]:
        async for tp, message in super().getmany(timeout):
            # Faust reads `_read_offset` (the offset it was last handed) as this one arrives
            if (
                self._read_offset[tp] == 0
                and message.offset > 1
                and self.app.topics.acks_enabled_for(message.topic)
            ):
                await self._add_gap(tp, 1, message.offset - 1)
            yield tp, message
