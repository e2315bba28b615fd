"""Kafka header names that are not UTF-8 must not stop a consumer.

Kafka's protocol calls a header name a string, but only the Java client makes sure it is
UTF-8: librdkafka, sarama or franz-go send whatever bytes they are given, and brokers pass
them on. aiokafka decodes names strictly, in its C reader too, so one such message raised
inside the fetcher, before any stage of ours saw it, and again after every restart: any
vendor could stop the national ingestion with one header. aiokafka has no setting for it.

`tolerate_header_names()` makes every consumer of this process read each record batch with
aiokafka's C reader as before; only a batch that the C reader cannot decode is read again,
by aiokafka's own Python reader, with U+FFFD for each byte of a name that is not UTF-8.
The message's key, value and header values are untouched, so it is verified and landed, or
dead-lettered, like any other; the worker ignores vendors' headers, and a dead letter keeps
the readable name, which a replay can send.
"""

from __future__ import annotations

import struct
from typing import Any

import aiokafka.consumer.fetcher
from aiokafka.record.default_records import _DefaultRecordBatchPy
from aiokafka.record.memory_records import MemoryRecords

_BATCH_PREFIX = struct.Struct(">qi")  # base offset, then the length of what follows
_MAGIC_AT = struct.calcsize(">qii")  # after the prefix and the partition leader's epoch


class _ReplacingBytes(bytearray):
    """A batch's bytes whose slices decode with U+FFFD where they are not UTF-8 (aiokafka's
    Python reader decodes a header name as `buffer[start:end].decode("utf-8")`)."""

    def __getitem__(self, index: Any) -> Any:
        item = super().__getitem__(index)
        return _ReplacingBytes(item) if isinstance(index, slice) else item

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return super().decode(encoding, "replace")


class _ReplacingBatch(_DefaultRecordBatchPy):  # type: ignore[misc]
    _buffer: bytearray

    def _maybe_uncompress(self) -> None:
        super()._maybe_uncompress()
        if not isinstance(self._buffer, _ReplacingBytes):
            self._buffer = _ReplacingBytes(self._buffer)


class _TolerantBatch:
    """aiokafka's C batch, read again from its first unread record by `_ReplacingBatch` if
    a header name stops it. Everything else (offsets, CRC, control flags) is the C batch's."""

    def __init__(self, batch: Any, raw: memoryview) -> None:
        self._batch = batch
        self._raw = raw
        self._records: Any = None
        self._returned = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._batch, name)

    def __iter__(self) -> _TolerantBatch:
        return self

    def __next__(self) -> Any:
        if self._records is None:
            self._records = iter(self._batch)
        try:
            record = next(self._records)
        except UnicodeDecodeError:
            self._records = iter(_ReplacingBatch(self._raw))
            for _ in range(self._returned):
                next(self._records)
            record = next(self._records)
        self._returned += 1
        return record


class TolerantMemoryRecords:
    """aiokafka's `MemoryRecords` over one partition's fetched bytes, whose v2 batches are
    `_TolerantBatch`es. It walks the same batch boundaries as the C reader to keep each
    batch's bytes at hand."""

    def __init__(self, data: bytes) -> None:
        self._records = MemoryRecords(data)
        self._data = memoryview(data)
        self._position = 0

    def size_in_bytes(self) -> int:
        return int(self._records.size_in_bytes())

    def has_next(self) -> bool:
        return bool(self._records.has_next())

    def next_batch(self) -> Any:
        batch = self._records.next_batch()
        if batch is None:
            return None
        _, length = _BATCH_PREFIX.unpack_from(self._data, self._position)
        end = self._position + _BATCH_PREFIX.size + length
        raw = self._data[self._position : end]
        self._position = end
        return _TolerantBatch(batch, raw) if raw[_MAGIC_AT] >= 2 else batch


def tolerate_header_names() -> None:
    """Install `TolerantMemoryRecords` in aiokafka's fetcher, for every consumer of this
    process (Faust's included); calling it again changes nothing."""
    aiokafka.consumer.fetcher.MemoryRecords = TolerantMemoryRecords
