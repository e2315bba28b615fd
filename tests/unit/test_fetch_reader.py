"""No batch stops a consumer: header names that are not UTF-8 are read with U+FFFD, and a
batch no reader can read becomes one stand-in record that the decode stage dead-letters.

The records go through aiokafka's own `PartitionRecords`, the fetcher's reader of one
partition's bytes, so the batches are handled as the fetcher handles them (CRC checked,
offsets advanced).
"""

from __future__ import annotations

import functools

import pytest
from aiokafka.consumer import fetcher
from aiokafka.consumer.fetcher import READ_UNCOMMITTED, PartitionRecords
from aiokafka.record import memory_records
from aiokafka.record.default_records import _DefaultRecordBatchPy
from aiokafka.record.memory_records import MemoryRecords, _MemoryRecordsPy
from aiokafka.structs import TopicPartition

from hocba.domain.messages import UNREADABLE_BATCH_HEADER, RawMessage, Rejection
from hocba.domain.reasons import Reason
from hocba.kafka import decompression, fetch_reader
from hocba.kafka.fetch_reader import TolerantMemoryRecords, read_any_batch
from hocba.pipeline.codec import load_registry
from hocba.pipeline.decode import decode_envelope
from tests.kafka_batches import (
    CODECS,
    PLACEHOLDER,
    READ_AS,
    batch_with_raw_names,
    naming_codec,
    not_what_the_codec_makes,
    with_a_record_longer_than_the_batch,
    xerial_block_of_negative_length,
    zstd_bomb,
)

TP = TopicPartition("submissions", 0)
Read = tuple[int, bytes, list[tuple[str, bytes]]]


@pytest.fixture(autouse=True)
def _bounded() -> None:
    read_any_batch()


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
        codec="gzip",
    )
    return bytes(_at(0, clean) + _at(2, middle) + _at(5, compressed))


def _at(base_offset: int, batch: bytearray) -> bytearray:
    batch[:8] = base_offset.to_bytes(8, "big")  # as the broker sets it; not under the CRC
    return batch


def _read(records: object) -> list[Read]:
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
    monkeypatch.setattr(fetch_reader, "MemoryRecords", _MemoryRecordsPy)
    monkeypatch.setattr(memory_records, "DefaultRecordBatch", _DefaultRecordBatchPy)
    assert [offset for offset, _, _ in _read(TolerantMemoryRecords(_fetched()))] == list(range(8))


def test_a_batch_whose_crc_does_not_match_is_one_dead_letter_the_batches_before_land() -> None:
    """aiokafka raises on it (`check_crcs`, which the worker sets), which stopped the
    consumer at every restart: the embedded broker stores a batch as it was sent."""
    fetched = bytearray(_fetched())
    fetched[-1] ^= 0xFF  # in the compressed last batch: its CRC no longer matches
    *read, stand_in = _read(TolerantMemoryRecords(bytes(fetched)))
    assert [offset for offset, _, _ in read] == [0, 1, 2, 3, 4]
    assert stand_in[0] == 7  # the batch's last offset: committing it moves past the batch
    rejection = _stand_in(stand_in)
    assert rejection.code is Reason.DECODE_MALFORMED
    assert "offsets 5-7" in rejection.detail and "CRC" in rejection.detail


def _stand_in(read: Read) -> Rejection:
    offset, value, headers = read
    message = RawMessage("submissions", 0, offset, 0, None, value, tuple(headers))
    rejection = decode_envelope(message, load_registry(), 1 << 20)
    assert isinstance(rejection, Rejection)
    return rejection


def test_a_batch_expanding_past_the_bound_is_one_dead_letter_at_its_last_offset() -> None:
    bomb = zstd_bomb(value_mib=2048)  # 2 GiB of zeros in a few KB
    assert len(bomb) < 100_000
    fetched = _at(0, batch_with_raw_names([(b"k0", b"v0", [])])) + _at(1, bomb)
    [first, stand_in] = _read(TolerantMemoryRecords(bytes(fetched)))
    assert first == (0, b"v0", [])
    assert stand_in[:2] == (1, bytes(bomb))  # the batch as the broker keeps it
    rejection = _stand_in(stand_in)
    assert rejection.code is Reason.DECODE_TOO_LARGE
    assert "offsets 1-1" in rejection.detail and "more than 64 MiB" in rejection.detail


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_each_codec_stops_at_the_bound(codec: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decompression, "MAX_DECOMPRESSED_BATCH_BYTES", 100_000)
    under = batch_with_raw_names([(b"k", b"v" * 90_000, [])], codec=codec)
    over = batch_with_raw_names([(b"k", b"v" * 110_000, [])], codec=codec)
    [kept, stand_in] = _read(TolerantMemoryRecords(bytes(_at(0, under) + _at(1, over))))
    assert kept == (0, b"v" * 90_000, [])
    rejection = _stand_in(stand_in)
    assert rejection.code is Reason.DECODE_TOO_LARGE and codec in rejection.detail


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_compressed_bytes_their_codec_cannot_read_are_one_dead_letter(codec: str) -> None:
    [stand_in] = _read(TolerantMemoryRecords(bytes(not_what_the_codec_makes(codec))))
    rejection = _stand_in(stand_in)
    assert rejection.code is Reason.DECODE_MALFORMED and "offsets 0-2" in rejection.detail


def test_a_snappy_block_of_negative_length_is_one_dead_letter_not_an_endless_loop() -> None:
    [stand_in] = _read(TolerantMemoryRecords(bytes(xerial_block_of_negative_length())))
    assert _stand_in(stand_in).code is Reason.DECODE_MALFORMED


def test_a_record_larger_than_its_consumer_takes_is_dropped_for_a_dead_letter() -> None:
    """Only compression can make one: its dead letter would be refused, and a few held could
    take a worker's memory. Its headers count: they travel with the dead letter."""
    batch = batch_with_raw_names(
        [(b"k0", b"v0", []), (b"k1", b"v" * 500, [("h", b"x" * 600)]), (b"k2", b"v2", [])],
        codec="zstd",
    )
    [first, stand_in, last] = _read(TolerantMemoryRecords(bytes(batch), max_record_bytes=1_000))
    assert (first, last) == ((0, b"v0", []), (2, b"v2", []))
    assert stand_in[:2] == (1, b"")
    rejection = _stand_in(stand_in)
    assert rejection.code is Reason.DECODE_TOO_LARGE and "1103 bytes" in rejection.detail


def test_a_batch_naming_a_codec_kafka_does_not_have_is_one_dead_letter() -> None:
    for codec_id in (5, 6, 7):
        [stand_in] = _read(TolerantMemoryRecords(bytes(naming_codec(codec_id))))
        assert _stand_in(stand_in).code is Reason.DECODE_MALFORMED


def test_every_consumer_of_the_process_reads_through_it_with_its_workers_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fetcher, "MemoryRecords", fetcher.MemoryRecords)  # restored after
    read_any_batch(123)
    read_any_batch()  # a tool's consumer in the worker's process keeps the worker's limit
    installed = fetcher.MemoryRecords
    assert isinstance(installed, functools.partial) and installed.func is TolerantMemoryRecords
    assert installed.keywords == {"max_record_bytes": 123}


def test_a_failure_of_this_process_rather_than_of_the_batch_still_stops_the_consumer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Dead-lettering it would lose a readable batch, in silence."""

    def broken(raw: object) -> None:
        raise RuntimeError("a bug, say, after an upgrade of aiokafka")

    monkeypatch.setattr(fetch_reader, "ReplacingBatch", broken)
    with pytest.raises(RuntimeError):
        _read(TolerantMemoryRecords(_fetched()))


def test_a_record_claiming_more_bytes_than_its_batch_ends_the_batch_not_the_process() -> None:
    """aiokafka's Python reader counts on its own varint decoder to stop at the batch's end;
    paired with aiokafka's C decoder it read out of bounds, and the process could die."""
    [named, stand_in] = _read(TolerantMemoryRecords(bytes(with_a_record_longer_than_the_batch())))
    assert named[2] == [(READ_AS, b"x")]
    assert _stand_in(stand_in).code is Reason.DECODE_MALFORMED
    assert stand_in[0] == 1


def test_a_vendor_setting_the_stand_in_header_only_dead_letters_its_own_message() -> None:
    rejection = _stand_in((5, b"anything", [(UNREADABLE_BATCH_HEADER, b"decode.ok all fine")]))
    assert rejection.code is Reason.DECODE_MALFORMED
