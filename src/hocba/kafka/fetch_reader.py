"""What this process's Kafka consumers make of the bytes they fetch: no batch in Kafka's
current format (v2, the only one Kafka writes from inter-broker protocol 3.0 on) stops them.

aiokafka reads a partition's fetched bytes in its fetcher, before Faust or any stage of ours
sees a message, and an error there stops the consumer; the worker restarts, fetches the same
batch and stops again. Batches that did so: one with a header name that is not UTF-8
(`header_names`); one that decompresses to more than the worker's memory (`decompression`);
one whose compressed bytes are not what its codec makes, with a CRC made for them; one whose
CRC does not match its bytes. aiokafka refuses the last by raising, which is no fetch again:
the consumer stops, and every restart fetched the same bytes, since the embedded broker
stores a batch as it was sent (Apache Kafka checks the CRC when a producer writes, so there
a mismatch could only be damage on the way, which TCP's own checksums make rare). Such a
batch is now read as unreadable like the others: one dead letter with the batch's bytes
(Kafka's record-batch format, which no replay can land: the vendor sends them again).

`read_any_batch()` installs `TolerantMemoryRecords` in aiokafka's fetcher, for every consumer
of this process (Faust's included), and the bounded decoders. Each batch is read by
aiokafka's C reader as before; a header name that stops it has the batch read again by
`header_names.ReplacingBatch`; a batch that neither can read becomes one stand-in record at
its last offset, the batch's bytes as its value and `UNREADABLE_BATCH_HEADER` saying why,
which the decode stage dead-letters (`decode.too_large` or `decode.malformed`) and the
consumer commits. A record larger than the consumer's topics take (`read_any_batch`) is
replaced by a stand-in without its bytes, so that its dead letter can be sent and what a
consumer holds is bounded by how many records it holds.
"""

from __future__ import annotations

import functools
import gzip
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import aiokafka.consumer.fetcher
import cramjam
from aiokafka.errors import CorruptRecordException, UnsupportedCodecError
from aiokafka.record.default_records import _DefaultRecordPy
from aiokafka.record.memory_records import MemoryRecords

from hocba.domain.limits import MAX_RECORD_BYTES
from hocba.domain.messages import UNREADABLE_BATCH_HEADER
from hocba.domain.reasons import Reason
from hocba.kafka.decompression import BatchTooLarge, bound_decompression
from hocba.kafka.header_names import ReplacingBatch, stopped_by_a_name

# What hostile bytes make aiokafka's readers and codecs raise. Anything else (out of memory, a
# codec library missing, a bug) is the process's trouble and stops it, as before.
_UNREADABLE = (
    BatchTooLarge,
    CorruptRecordException,
    cramjam.DecompressionError,
    EOFError,
    gzip.BadGzipFile,
    struct.error,
    zlib.error,
)
_LAST_CODEC = 4  # zstd: a batch naming a codec after it names none
_BATCH_PREFIX = struct.Struct(">qi")  # base offset, then the length of what follows
_MAGIC_AT = struct.calcsize(">qii")  # after the prefix and the partition leader's epoch


class _TolerantBatch:
    """aiokafka's C batch, read again by `ReplacingBatch` after the last record it returned
    if a header name stops it, and ended by a stand-in record if neither can read on (or
    its CRC does not match). Everything else (offsets, control flags) is the C batch's."""

    def __init__(self, batch: Any, raw: memoryview, max_record_bytes: int) -> None:
        self._batch = batch
        self._raw = raw
        self._max_record_bytes = max_record_bytes
        self._records: Iterator[Any] | None = None
        self._last_offset = -1
        self._crc_mismatch = False

    def validate_crc(self) -> bool:
        """Always passes, for aiokafka; a mismatch makes the batch one stand-in record."""
        self._crc_mismatch = not self._batch.validate_crc()
        return True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._batch, name)

    def __iter__(self) -> _TolerantBatch:
        return self

    def __next__(self) -> Any:
        try:
            if self._records is None:
                if self._crc_mismatch:
                    raise CorruptRecordException("its CRC does not match its bytes")
                self._records = iter(self._batch)  # aiokafka decompresses here
            try:
                record = next(self._records)
            except (UnicodeDecodeError, CorruptRecordException) as error:
                if not stopped_by_a_name(error):
                    raise
                after = self._last_offset
                self._records = (r for r in ReplacingBatch(self._raw) if r.offset > after)
                record = next(self._records)
        except _UNREADABLE as error:  # in the batch's bytes: fetched again, it would fail again
            record = self._stand_in(error)
        except UnsupportedCodecError as error:
            if self._batch.compression_type <= _LAST_CODEC:
                raise  # a codec library missing: this process's trouble
            record = self._stand_in(error)
        else:
            if _size(record) > self._max_record_bytes:
                record = self._too_large(record)
        self._last_offset = record.offset
        return record

    def _stand_in(self, error: Exception) -> Any:
        """One record for the rest of the batch, at its last offset (committing it moves the
        consumer past the batch), whose value is the batch as the broker keeps it."""
        self._records = iter(())
        batch = self._batch
        first, last = max(self._last_offset + 1, batch.base_offset), batch.next_offset - 1
        too_large = isinstance(error, BatchTooLarge)
        reason = Reason.DECODE_TOO_LARGE if too_large else Reason.DECODE_MALFORMED
        why = f"the Kafka batch of offsets {first}-{last} cannot be read: {error}"
        stamp = (batch.max_timestamp, batch.timestamp_type)
        return _unreadable(last, stamp, bytes(self._raw), reason, why)

    def _too_large(self, record: Any) -> Any:
        """A record larger than this consumer's topics take can only have come compressed.
        Its bytes (key, value and headers) are not kept: its dead letter would be refused,
        and held, a few such records could take the worker's memory."""
        why = f"a Kafka record of {_size(record)} bytes, decompressed, is over the"
        why += f" {self._max_record_bytes} bytes this consumer takes"
        stamp = (record.timestamp, record.timestamp_type)
        return _unreadable(record.offset, stamp, b"", Reason.DECODE_TOO_LARGE, why)


def _unreadable(offset: int, stamp: tuple[int, int], value: bytes, reason: Reason, why: str) -> Any:
    """A stand-in record at `offset` with `stamp` (timestamp and its type) that the decode
    stage dead-letters for `reason`."""
    headers = [(UNREADABLE_BATCH_HEADER, f"{reason.value} {why}".encode())]
    return _DefaultRecordPy(offset, *stamp, None, value, headers)


def _size(record: Any) -> int:
    headers = sum(len(name.encode()) + len(value or b"") for name, value in record.headers)
    return len(record.key or b"") + len(record.value or b"") + headers


class TolerantMemoryRecords:
    """aiokafka's `MemoryRecords` over one partition's fetched bytes, whose v2 batches are
    `_TolerantBatch`es. It walks the same batch boundaries as the C reader to keep each
    batch's bytes at hand."""

    def __init__(self, data: bytes, max_record_bytes: int = MAX_RECORD_BYTES) -> None:
        self._records = MemoryRecords(data)
        self._data = memoryview(data)
        self._position = 0
        self._max_record_bytes = max_record_bytes

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
        if raw[_MAGIC_AT] < 2:
            return batch
        return _TolerantBatch(batch, raw, self._max_record_bytes)


def read_any_batch(max_record_bytes: int | None = None) -> None:
    """Install `TolerantMemoryRecords` and the bounded decoders in aiokafka, for every
    consumer of this process. A worker names the largest record its topics take; without
    one, a reader installed before stays as it is, or `MAX_RECORD_BYTES` is the limit."""
    bound_decompression()
    installed = getattr(aiokafka.consumer.fetcher.MemoryRecords, "func", None)
    if max_record_bytes is None and installed is TolerantMemoryRecords:
        return
    limit = MAX_RECORD_BYTES if max_record_bytes is None else max_record_bytes
    reader = functools.partial(TolerantMemoryRecords, max_record_bytes=limit)
    aiokafka.consumer.fetcher.MemoryRecords = reader
