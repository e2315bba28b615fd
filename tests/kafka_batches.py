"""Kafka record batches with header names that are not UTF-8, as librdkafka or sarama can
send them: aiokafka's producer only writes UTF-8 names, so the names are written as ASCII
placeholders and overwritten in the batch's bytes, whose CRC is then made right again."""

from __future__ import annotations

import struct
from collections.abc import Sequence

from aiokafka.codec import gzip_encode
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.util import calc_crc32c

Record = tuple[bytes, bytes, list[tuple[str, bytes]]]  # key, value, headers

# 0xff and 0xfe never appear in UTF-8; 0xc3 must be followed by a continuation byte
NOT_UTF8 = b"\xff\xfe\xc3-trace"
PLACEHOLDER = "@@@-trace"  # as many bytes as NOT_UTF8
READ_AS = "\ufffd\ufffd\ufffd-trace"  # how the worker reads NOT_UTF8 back

_RECORDS_AT = 61  # the v2 batch header's size
_LENGTH_AT = 8
_CRC_AT = 17
_ATTRIBUTES_AT = 21
_GZIP = 0x01


def batch_with_raw_names(records: Sequence[Record], *, gzip: bool = False) -> bytearray:
    """One v2 batch of `records`, each `PLACEHOLDER` in a header name replaced by
    `NOT_UTF8`; gzip-compressed after the replacement if asked."""
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
        builder.append(offset, timestamp=None, key=key, value=value, headers=headers)
    batch = bytearray(builder.build())
    batch = batch.replace(PLACEHOLDER.encode(), NOT_UTF8)
    if gzip:
        batch = batch[:_RECORDS_AT] + bytearray(gzip_encode(bytes(batch[_RECORDS_AT:])))
        attributes = struct.unpack_from(">h", batch, _ATTRIBUTES_AT)[0]
        struct.pack_into(">h", batch, _ATTRIBUTES_AT, attributes | _GZIP)
    return sealed(batch)


def sealed(batch: bytearray) -> bytearray:
    """`batch` with its length and CRC made right for its bytes as they are now."""
    struct.pack_into(">i", batch, _LENGTH_AT, len(batch) - _LENGTH_AT - 4)
    struct.pack_into(">I", batch, _CRC_AT, calc_crc32c(bytes(batch[_ATTRIBUTES_AT:])))
    return batch
