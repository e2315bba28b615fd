"""Header names that are not UTF-8 are read with U+FFFD instead of stopping the fetcher.

The records go through aiokafka's own `PartitionRecords`, the fetcher's reader of one
partition's bytes, so the batches are handled as the fetcher handles them (CRC checked,
offsets advanced).
"""

from __future__ import annotations

import pytest
from aiokafka.consumer.fetcher import READ_UNCOMMITTED, PartitionRecords
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import TopicPartition

from hocba.kafka.header_names import TolerantMemoryRecords
from tests.kafka_batches import PLACEHOLDER, READ_AS, batch_with_raw_names

TP = TopicPartition("submissions", 0)


def _fetched() -> bytes:
    """Three batches as one fetch returns them: a clean one; one whose middle record has a
    bad name; and a compressed one whose first record has one."""
    clean = batch_with_raw_names([(b"k0", b"v0", [("trace", b"0")]), (b"k1", b"v1", [])])
    middle = batch_with_raw_names(
        [
            (b"k2", b"v2", []),
            (b"k3", b"v3", [("trace", b"3"), (PLACEHOLDER, b"x")]),
            (b"k4", b"v4", [("trace", b"4")]),
        ]
    )
    compressed = batch_with_raw_names(
        [(b"k5", b"v5", [(PLACEHOLDER, b"y")]), (b"k6", b"v6", [])], gzip=True
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
    ]


def test_a_corrupted_batch_is_still_refused() -> None:
    fetched = bytearray(_fetched())
    fetched[-1] ^= 0xFF  # in the compressed batch: its CRC no longer matches
    with pytest.raises(Exception, match="CRC"):
        _read(TolerantMemoryRecords(bytes(fetched)))
