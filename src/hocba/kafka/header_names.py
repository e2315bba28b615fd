"""Kafka header names that are not UTF-8, read with U+FFFD.

Kafka's protocol calls a header name a string, but only the Java client makes sure it is
UTF-8: librdkafka, sarama or franz-go send whatever bytes they are given, and brokers pass
them on. aiokafka decodes names strictly, in its C reader too, so one such message raised
inside the fetcher, before any stage of ours saw it, and again after every restart: any
vendor could stop the national ingestion with one header. aiokafka has no setting for it.

`ReplacingBatch` is aiokafka's own Python reader with U+FFFD where a name's bytes are not
UTF-8; `fetch_reader` reads a batch with it only when aiokafka's C reader stopped at a name.
The message's key, value and header values are untouched, so it is verified and landed, or
dead-lettered, like any other; the worker ignores vendors' headers, and a dead letter keeps
the readable name, which a replay can send.
"""

from __future__ import annotations

from typing import Any

from aiokafka.record.default_records import _DefaultRecordBatchPy
from aiokafka.record.util import decode_varint_py


class _ReplacingBytes(bytearray):
    """A batch's bytes whose slices decode with U+FFFD where they are not UTF-8 (aiokafka's
    Python reader decodes a header name as `buffer[start:end].decode("utf-8")`)."""

    def __getitem__(self, index: Any) -> Any:
        item = super().__getitem__(index)
        return _ReplacingBytes(item) if isinstance(index, slice) else item

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return super().decode(encoding, "replace")


class ReplacingBatch(_DefaultRecordBatchPy):  # type: ignore[misc]
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


def stopped_by_a_name(error: Exception) -> bool:
    """Without its C extension, aiokafka's Python reader raises the name's
    UnicodeDecodeError wrapped in a CorruptRecordException."""
    return isinstance(error, UnicodeDecodeError) or isinstance(error.__cause__, UnicodeDecodeError)
