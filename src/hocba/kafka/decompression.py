"""Kafka batches decompressed within a bound.

aiokafka decompresses a whole batch before it reads the first record. Kafka bounds a batch's
compressed size only (`max.message.bytes`), and compressed bytes can stand for a thousand
(gzip) to tens of thousands (zstd) times as many: one such batch, from anyone allowed to
produce to the topic, took all of the worker's memory, and did again at every restart.

`bound_decompression()` gives aiokafka's record readers (C and Python, current and legacy
formats) decoders that stop at `MAX_DECOMPRESSED_BATCH_BYTES` and raise `BatchTooLarge`;
`fetch_reader` turns such a v2 batch into one dead letter. zstd and lz4 write into an
anonymous memory map of that size, so what is never written is never resident; gzip reads
up to the bound; snappy says how long each block decompresses, and is checked first.
"""

from __future__ import annotations

import contextlib
import gzip
import importlib
import io
import mmap
import struct
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


class BatchTooLarge(Exception):
    """A batch read no further: it decompresses past `MAX_DECOMPRESSED_BATCH_BYTES`."""


def _too_large(codec: str) -> BatchTooLarge:
    limit_mib = MAX_DECOMPRESSED_BATCH_BYTES >> 20
    return BatchTooLarge(f"a {codec} batch that decompresses to more than {limit_mib} MiB")


def gzip_decode(payload: Any) -> bytes:
    """As aiokafka reads gzip (`GzipFile`, which takes several members), up to the bound."""
    with gzip.GzipFile(fileobj=io.BytesIO(payload), mode="rb") as stream:
        out = stream.read(MAX_DECOMPRESSED_BATCH_BYTES + 1)
    if len(out) > MAX_DECOMPRESSED_BATCH_BYTES:
        raise _too_large("gzip")
    return out


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
    """Raw snappy, or xerial's blocks of raw snappy (as aiokafka reads them). Each block says
    how long it decompresses, so the bound is checked before anything is decompressed."""
    data = memoryview(bytes(payload))
    blocks = [data]
    if _detect_xerial_stream(data):
        blocks, at = [], _XERIAL_HEADER_BYTES
        while at < len(data):
            (size,) = struct.unpack_from("!i", data, at)
            if size < 0 or at + 4 + size > len(data):
                raise cramjam.DecompressionError(f"a snappy block of {size} bytes at {at}")
            blocks.append(data[at + 4 : at + 4 + size])
            at += 4 + size
    total = 0
    for block in blocks:
        total += cramjam.snappy.decompress_raw_len(block)
        if total > MAX_DECOMPRESSED_BATCH_BYTES:
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
