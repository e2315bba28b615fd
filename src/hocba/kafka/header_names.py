"""Kafka header names that are not UTF-8 must not stop a consumer.

Kafka's protocol calls a header name a string, but only the Java client makes sure it is
UTF-8: librdkafka, sarama or franz-go send whatever bytes they are given, and brokers pass
them on. aiokafka decodes names strictly, in its C reader too, so one such message raised
inside the fetcher, before any stage of ours saw it, and again after every restart: any
vendor could stop the national ingestion with one header. aiokafka has no setting for it.

`tolerate_header_names()` makes every consumer of this process read each record batch with
aiokafka's C reader as before; only a batch that the C reader cannot decode is read again,
by aiokafka's own Python reader, with U+FFFD where a name's bytes are not UTF-8.
The message's key, value and header values are untouched, so it is verified and landed, or
dead-lettered, like any other; the worker ignores vendors' headers, and a dead letter keeps
the readable name, which a replay can send.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import aiokafka.consumer.fetcher
from aiokafka.errors import CorruptRecordException
from aiokafka.record.default_records import _DefaultRecordBatchPy
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.record.util import decode_varint_py

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

    def _read_msg(self, decode_varint: Any = decode_varint_py) -> Any:
        """The Python reader slices keys and values unchecked and counts on its varint decoder
        to raise past the end of the batch. By default it gets aiokafka's C decoder, which
        does not check: a record claiming a longer key than the batch holds read memory out
        of bounds, and could kill the process. aiokafka never pairs the two; this reader
        uses the Python decoder it was written for."""
        return super()._read_msg(decode_varint)

    def _maybe_uncompress(self) -> None:
        super()._maybe_uncompress()
        if not isinstance(self._buffer, _ReplacingBytes):
            self._buffer = _ReplacingBytes(self._buffer)


class _TolerantBatch:
    """aiokafka's C batch, read again by `_ReplacingBatch` after the last record it returned
    if a header name stops it. Everything else (offsets, CRC, control flags) is the C
    batch's."""

    def __init__(self, batch: Any, raw: memoryview) -> None:
        self._batch = batch
        self._raw = raw
        self._records: Iterator[Any] | None = None
        self._last_offset = -1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._batch, name)

    def __iter__(self) -> _TolerantBatch:
        return self

    def __next__(self) -> Any:
        if self._records is None:
            self._records = iter(self._batch)
        try:
            record = next(self._records)
        except (UnicodeDecodeError, CorruptRecordException) as error:
            if not _stopped_by_a_name(error):
                raise
            after = self._last_offset
            self._records = (r for r in _ReplacingBatch(self._raw) if r.offset > after)
            record = next(self._records)
        self._last_offset = record.offset
        return record


def _stopped_by_a_name(error: Exception) -> bool:
    """Without its C extension, aiokafka's Python reader raises the name's
    UnicodeDecodeError wrapped in a CorruptRecordException."""
    return isinstance(error, UnicodeDecodeError) or isinstance(error.__cause__, UnicodeDecodeError)


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
