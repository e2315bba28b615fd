"""Kafka record batches that other clients, or an attacker, can send and aiokafka's producer
cannot make: header names that are not UTF-8 (librdkafka, sarama), compressed bytes that
expand without bound, compressed bytes that are not what their codec makes. Each is built as
aiokafka would build it and then changed in its bytes, whose CRC is made right again."""

from __future__ import annotations

import struct
from collections.abc import Sequence

import cramjam
from aiokafka.codec import (
    _XERIAL_V1_FORMAT,
    _XERIAL_V1_HEADER,
    gzip_encode,
    lz4_encode,
    snappy_encode,
    zstd_encode,
)
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.util import calc_crc32c, encode_varint

Record = tuple[bytes, bytes, list[tuple[str, bytes]]]  # key, value, headers

# 0xff and 0xfe never appear in UTF-8; 0xc3 must be followed by a continuation byte
NOT_UTF8 = b"\xff\xfe\xc3-trace"
PLACEHOLDER = "@@@-trace"  # as many bytes as NOT_UTF8
READ_AS = "\ufffd\ufffd\ufffd-trace"  # how the worker reads NOT_UTF8 back

CODECS = {
    "gzip": (1, gzip_encode),
    "snappy": (2, snappy_encode),
    "lz4": (3, lz4_encode),
    "zstd": (4, zstd_encode),
}

_RECORDS_AT = 61  # the v2 batch header's size
_LENGTH_AT = 8
_CRC_AT = 17
_ATTRIBUTES_AT = 21
CRC_FROM = _ATTRIBUTES_AT  # what a batch's CRC covers starts here; the broker sets before it
_LAST_OFFSET_DELTA_AT = 23
RECORD_COUNT_AT = 57  # in the header of a v2 batch
_TRANSACTIONAL = 0x10  # attribute bits
_CONTROL = 0x20


def batch_with_raw_names(records: Sequence[Record], *, codec: str = "") -> bytearray:
    """One v2 batch of `records`, each `PLACEHOLDER` in a header name replaced by
    `NOT_UTF8`; compressed with `codec` after the replacement if one is named."""
    builder = DefaultRecordBatchBuilder(
        2,  # magic: the v2 format, with headers
        0,  # no compression: the names are replaced in the records' bytes first
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 24,
    )
    for offset, (key, value, headers) in enumerate(records):
        added = builder.append(offset, timestamp=None, key=key, value=value, headers=headers)
        assert added is not None, "over the builder's batch size"
    batch = bytearray(builder.build()).replace(PLACEHOLDER.encode(), NOT_UTF8)
    if codec:
        attribute, encode = CODECS[codec]
        batch = _compressed(batch, attribute, encode(bytes(batch[_RECORDS_AT:])))
    return sealed(batch)


def zstd_bomb(value_mib: int) -> bytearray:
    """One record whose value is `value_mib` MiB of zeros, as a zstd batch of a few KB:
    compressed a MiB at a time, so the test never holds the value either."""
    value_bytes = value_mib << 20
    record_head = _varint(0) + _varint(0) + _varint(0) + _varint(-1) + _varint(value_bytes)
    record_tail = _varint(0)  # no headers
    record_length = len(record_head) + value_bytes + len(record_tail)
    compressor = cramjam.zstd.Compressor()
    compressor.compress(_varint(record_length) + record_head)
    for _ in range(value_mib):
        compressor.compress(bytes(1 << 20))
    compressor.compress(record_tail)
    empty = batch_with_raw_names([(b"k", b"v", [])])
    return sealed(_compressed(empty, 4, bytes(compressor.finish())))


def not_what_the_codec_makes(codec: str) -> bytearray:
    """A `codec` batch of three records whose compressed bytes are cut short, with a CRC
    that matches them."""
    batch = batch_with_raw_names([(b"k%d" % i, b"v" * 1000, []) for i in range(3)], codec=codec)
    return sealed(batch[: _RECORDS_AT + (len(batch) - _RECORDS_AT) // 2])


def with_a_crc_that_does_not_match() -> bytearray:
    """Two readable records under a CRC that is not theirs: Apache Kafka refuses such a
    batch from a producer, the embedded broker stores it."""
    batch = batch_with_raw_names([(b"k%d" % i, b"v" * 100, []) for i in range(2)])
    batch[_CRC_AT] ^= 0xFF
    return batch


def xerial_block_of_negative_length() -> bytearray:
    """A snappy batch in xerial's framing whose one block says it is -4 bytes long."""
    xerial = struct.pack("!" + _XERIAL_V1_FORMAT, *_XERIAL_V1_HEADER) + struct.pack("!i", -4)
    empty = batch_with_raw_names([(b"k", b"v", [])])
    return sealed(_compressed(empty, CODECS["snappy"][0], xerial + b"xxxx"))


def naming_codec(codec_id: int) -> bytearray:
    """A batch whose attributes name compression codec `codec_id` (Kafka has 0 to 4)."""
    return sealed(_compressed(batch_with_raw_names([(b"k", b"v", [])]), codec_id, b"xxxx"))


def with_a_record_longer_than_the_batch() -> bytearray:
    """A batch whose first record has a bad name and whose second, written by hand, claims a
    key of 2**40 bytes and carries four."""
    batch = batch_with_raw_names([(b"k0", b"v0", [(PLACEHOLDER, b"x")])])
    record = _varint(0) + _varint(0) + _varint(1) + _varint(1 << 40) + b"KKKK"
    batch += _varint(len(record)) + record
    struct.pack_into(">i", batch, RECORD_COUNT_AT, 2)
    struct.pack_into(">i", batch, _LAST_OFFSET_DELTA_AT, 1)
    return sealed(batch)


def transaction_marker(*, commit: bool) -> bytearray:
    """A transaction's commit or abort marker as its coordinator writes it (a control batch):
    it takes an offset, and consumers skip it, so the records around it are not consecutive."""
    key = struct.pack(">hh", 0, 1 if commit else 0)  # version 0, COMMIT or ABORT
    value = struct.pack(">hi", 0, 0)  # version 0, coordinator epoch
    batch = batch_with_raw_names([(key, value, [])])
    attributes = struct.unpack_from(">h", batch, _ATTRIBUTES_AT)[0]
    struct.pack_into(">h", batch, _ATTRIBUTES_AT, attributes | _TRANSACTIONAL | _CONTROL)
    return sealed(batch)


def sealed(batch: bytearray) -> bytearray:
    """`batch` with its length and CRC made right for its bytes as they are now."""
    struct.pack_into(">i", batch, _LENGTH_AT, len(batch) - _LENGTH_AT - 4)
    struct.pack_into(">I", batch, _CRC_AT, calc_crc32c(bytes(batch[_ATTRIBUTES_AT:])))
    return batch


def _compressed(batch: bytearray, attribute: int, records: bytes) -> bytearray:
    batch = batch[:_RECORDS_AT] + bytearray(records)
    attributes = struct.unpack_from(">h", batch, _ATTRIBUTES_AT)[0]
    struct.pack_into(">h", batch, _ATTRIBUTES_AT, attributes | attribute)
    return batch


def _varint(n: int) -> bytes:
    out = bytearray()
    encode_varint(n, out.append)
    return bytes(out)
