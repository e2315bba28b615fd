"""Kafka batches decompressed within a bound.

aiokafka decompresses a whole batch before it reads the first record. Kafka bounds a batch's
compressed size only (`max.message.bytes`), and compressed bytes can stand for a thousand
(gzip) to a hundred thousand (zstd) times as many: one such batch, from anyone allowed to
produce to the topic, took all of the worker's memory, and did again at every restart.

`bound_decompression()` gives aiokafka's record readers (C and Python, current and legacy
formats) decoders that stop at `MAX_DECOMPRESSED_BATCH_BYTES` and raise `BatchTooLarge`;
`fetch_reader` turns such a batch into one dead letter. The decoders write into an anonymous
memory map of that size, so what is never written is never resident.
"""

from __future__ import annotations

import contextlib
import importlib
import mmap
import struct
import zlib
from collections.abc import Callable
from typing import Any

import cramjam
from aiokafka.codec import _detect_xerial_stream

from hocba.domain.limits import MAX_DECOMPRESSED_BATCH_BYTES

_READERS = (
    "aiokafka.record.default_records",
    "aiokafka.record.legacy_records",
    "aiokafka.record._crecords.default_records",
    "aiokafka.record._crecords.legacy_records",
)
_XERIAL_HEADER_BYTES = 16
_GZIP = 16 + zlib.MAX_WBITS  # zlib reads the gzip container


class BatchTooLarge(Exception):
    """Not a ValueError: aiokafka's Python reader would report that as a corrupt record."""


def _too_large(codec: str) -> BatchTooLarge:
    limit_mib = MAX_DECOMPRESSED_BATCH_BYTES >> 20
    return BatchTooLarge(f"a {codec} batch that decompresses to more than {limit_mib} MiB")


def gzip_decode(payload: Any) -> bytes:
    out = bytearray()
    rest = bytes(payload)
    while rest:  # a gzip stream may hold several members
        member = zlib.decompressobj(_GZIP)
        out += member.decompress(rest, MAX_DECOMPRESSED_BATCH_BYTES + 1 - len(out))
        if len(out) > MAX_DECOMPRESSED_BATCH_BYTES or member.unconsumed_tail:
            raise _too_large("gzip")
        if not member.eof:
            raise zlib.error("the gzip stream is cut short")
        rest = member.unused_data
    return bytes(out)


def _into_map(codec: str, decompress_into: Callable[[bytes, Any], int], payload: Any) -> bytes:
    with mmap.mmap(-1, MAX_DECOMPRESSED_BATCH_BYTES) as out:
        try:
            written = decompress_into(bytes(payload), out)
        except cramjam.DecompressionError as exc:
            if "failed to write whole buffer" in str(exc):
                raise _too_large(codec) from exc
            raise
        return out[:written]


def zstd_decode(payload: Any) -> bytes:
    return _into_map("zstd", cramjam.zstd.decompress_into, payload)


def lz4_decode(payload: Any) -> bytes:
    return _into_map("lz4", cramjam.lz4.decompress_into, payload)


def snappy_decode(payload: Any) -> bytes:
    """Raw snappy, or xerial's blocks of raw snappy (as aiokafka reads them); each block says
    how long it decompresses, so the bound is checked before anything is decompressed."""
    data = memoryview(bytes(payload))
    blocks = [data]
    if _detect_xerial_stream(data):
        blocks, at = [], _XERIAL_HEADER_BYTES
        while at < len(data):
            (size,) = struct.unpack_from("!i", data, at)
            blocks.append(data[at + 4 : at + 4 + size])
            at += 4 + size
    if sum(cramjam.snappy.decompress_raw_len(b) for b in blocks) > MAX_DECOMPRESSED_BATCH_BYTES:
        raise _too_large("snappy")
    return b"".join(bytes(cramjam.snappy.decompress_raw(b)) for b in blocks)


def bound_decompression() -> None:
    """Install the bounded decoders in each of aiokafka's record readers this process has
    (the C ones exist only where aiokafka's extension is built)."""
    decoders = {
        "gzip_decode": gzip_decode,
        "zstd_decode": zstd_decode,
        "lz4_decode": lz4_decode,
        "snappy_decode": snappy_decode,
    }
    for name in _READERS:
        with contextlib.suppress(ImportError):
            reader = importlib.import_module(name)
            for decoder, bounded in decoders.items():
                if hasattr(reader, decoder):
                    setattr(reader, decoder, bounded)
