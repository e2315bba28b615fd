"""Header names that are not UTF-8 are read with U+FFFD instead of stopping the fetcher.

The records go through aiokafka's own `PartitionRecords`, the fetcher's reader of one
partition's bytes, so the batches are handled as the fetcher handles them (CRC checked,
offsets advanced).
"""

from __future__ import annotations

import struct

import pytest
from aiokafka.consumer.fetcher import READ_UNCOMMITTED, PartitionRecords
from aiokafka.errors import CorruptRecordException
from aiokafka.record import memory_records
from aiokafka.record.default_records import _DefaultRecordBatchPy
from aiokafka.record.memory_records import MemoryRecords, _MemoryRecordsPy
from aiokafka.record.util import encode_varint
from aiokafka.structs import TopicPartition

from hocba.kafka import header_names
from hocba.kafka.header_names import TolerantMemoryRecords
from tests.kafka_batches import PLACEHOLDER, READ_AS, batch_with_raw_names, sealed

RECORD_COUNT_AT = 57  # in a v2 batch's header
LAST_OFFSET_DELTA_AT = 23

TP = TopicPartition("submissions", 0)


def _fetched() -> bytes:
    """Three batches as one fetch returns them: a clean one; one whose middle record has a
    bad name; and a compressed one whose first and last records have one."""
    clean = batch_with_raw_names([(b"k0", b"v0", [("trace", b"0")]), (b"k1", b"v1", [])])
    middle = batch_with_raw_names(
        [
            (b"k2", b"v2", []),
            (b"k3", b"v3", [("trace", b"3"), (PLACEHOLDER, b"x")]),
            (b"k4", b"v4", [("trace", b"4")]),
        ]
    )
    compressed = batch_with_raw_names(
        [
            (b"k5", b"v5", [(PLACEHOLDER, b"y")]),
            (b"k6", b"v6", []),
            (b"k7", b"v7", [(PLACEHOLDER, b"z")]),
        ],
        gzip=True,
    )
    for batch, base_offset in ((middle, 2), (compressed, 5)):
        batch[:8] = base_offset.to_bytes(8, "big")
    return bytes(clean + middle + compressed)


def _read(records: object) -> list[tuple[int, bytes, list[tuple[str, bytes]]]]:
    partition = PartitionRecords(TP, records, [], 0, None, None, True, READ_UNCOMMITTED)
    return [(r.offset, r.value, list(r.headers)) for r in partition]


def test_aiokafka_alone_stops_at_such_a_name() -> None:
    with pytest.raises(UnicodeDecodeError):
        _read(MemoryRecords(_fetched()))


def test_every_record_is_read_once_in_order_with_the_name_made_readable() -> None:
    assert _read(TolerantMemoryRecords(_fetched())) == [
        (0, b"v0", [("trace", b"0")]),
        (1, b"v1", []),
        (2, b"v2", []),
        (3, b"v3", [("trace", b"3"), (READ_AS, b"x")]),
        (4, b"v4", [("trace", b"4")]),
        (5, b"v5", [(READ_AS, b"y")]),
        (6, b"v6", []),
        (7, b"v7", [(READ_AS, b"z")]),
    ]


def test_so_they_are_without_aiokafkas_c_extension(monkeypatch: pytest.MonkeyPatch) -> None:
    """There its Python reader wraps the name's error in a CorruptRecordException."""
    monkeypatch.setattr(header_names, "MemoryRecords", _MemoryRecordsPy)
    monkeypatch.setattr(memory_records, "DefaultRecordBatch", _DefaultRecordBatchPy)
    assert [offset for offset, _, _ in _read(TolerantMemoryRecords(_fetched()))] == list(range(8))


def test_a_corrupted_batch_is_still_refused() -> None:
    fetched = bytearray(_fetched())
    fetched[-1] ^= 0xFF  # in the compressed batch: its CRC no longer matches
    with pytest.raises(Exception, match="CRC"):
        _read(TolerantMemoryRecords(bytes(fetched)))


def _varint(n: int) -> bytes:
    out = bytearray()
    encode_varint(n, out.append)
    return bytes(out)


def test_a_record_claiming_more_bytes_than_its_batch_is_refused_not_read_past_the_end() -> None:
    """aiokafka's Python reader counts on its own varint decoder to stop at the batch's end;
    paired with aiokafka's C decoder it read out of bounds, and the process could die."""
    batch = batch_with_raw_names([(b"k0", b"v0", [(PLACEHOLDER, b"x")])])
    # a second record by hand: attributes, timestamp and offset deltas, a key of 2**40 bytes
    record = _varint(0) + _varint(0) + _varint(1) + _varint(1 << 40) + b"KKKK"
    batch += _varint(len(record)) + record
    struct.pack_into(">i", batch, RECORD_COUNT_AT, 2)
    struct.pack_into(">i", batch, LAST_OFFSET_DELTA_AT, 1)
    partition = PartitionRecords(
        TP, TolerantMemoryRecords(bytes(sealed(batch))), [], 0, None, None, True, READ_UNCOMMITTED
    )
    assert list(next(partition).headers) == [(READ_AS, b"x")]
    with pytest.raises(CorruptRecordException):
        next(partition)
