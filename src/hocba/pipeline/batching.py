"""How the worker cuts what it took from Kafka into the batches it stages and lands."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any


def by_size(events: Sequence[Any], max_bytes: int) -> Iterator[list[Any]]:
    """Cut taken events into batches of at most `max_bytes` of message values (a message
    larger than that is a batch of its own), in order.

    ClickHouse costs ~0.1 s per batch however small, so a batch should hold many records:
    many messages when they are small (one record each), fewer when they are classes
    (~40 KB), whose batches would otherwise grow the store's memory for no gain.
    """
    batch: list[Any] = []
    size = 0
    for event in events:
        length = len(event.message.value or b"")
        if batch and size + length > max_bytes:
            yield batch
            batch, size = [], 0
        batch.append(event)
        size += length
    if batch:
        yield batch
