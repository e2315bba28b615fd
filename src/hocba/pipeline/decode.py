"""The decode stage: wire bytes → `Submission`, and signed payload → records.

Decoding is split in two because the payload is untrusted until its signature is checked:
the envelope is read first, the records only after `verify` accepted the bytes that were
signed. Each failure is returned as a `Rejection` holding the original message.

Length bombs: fastavro reads strings with `BytesIO.read(n)`, which returns only the bytes
that exist, so a declared length of 2**40 fails with `EOFError` and allocates nothing
(tested). What it does allocate is proportional to the bytes present, so the limits are:
the message size; a structural pre-scan of the (small) envelope that checks every declared
length and item count before fastavro runs; for the payload, the records count declared by
the first array block, read before decoding; and, after decoding, record count and text
length. When fastavro fails, the same scan tells a declared length above a cap
(`decode.too_large`) from a message that is merely cut short (`decode.malformed`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hocba.domain.limits import MAX_CERTIFICATE_BYTES, MAX_CHAIN_LENGTH
from hocba.domain.messages import UNREADABLE_BATCH_HEADER, RawMessage, Rejection, Submission
from hocba.domain.reasons import Reason
from hocba.pipeline.codec import (
    HEADER_LEN,
    RECORD_BATCH,
    SUBMISSION,
    NotSingleObjectError,
    SchemaRegistry,
    UnknownSchemaError,
    decode,
)

MAX_TEXT_LENGTH = 65_536  # any string field; the payload bytes are bounded by the message size
_FIXED_WIDTH = {"null": 0, "boolean": 1, "float": 4, "double": 8}


class LimitExceededError(ValueError):
    """A declared length or item count is above its cap: rejected before it is read."""


class TruncatedError(ValueError):
    """A declared length runs past the end of the bytes: the message is cut short."""


@dataclass(frozen=True, slots=True)
class Limits:
    max_items: int  # items of any one array (records, subjects, certificates)
    max_text: int  # characters (decoded) or bytes (declared) of a string
    max_binary: int  # bytes of a bytes field


def _reason_for(exc: Exception) -> Reason:
    if isinstance(exc, NotSingleObjectError):
        return Reason.DECODE_NOT_AVRO
    if isinstance(exc, UnknownSchemaError):
        return Reason.DECODE_UNKNOWN_SCHEMA
    if isinstance(exc, LimitExceededError):
        return Reason.DECODE_TOO_LARGE
    return Reason.DECODE_MALFORMED


class _Cursor:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def long(self) -> int:
        result = shift = 0
        while True:
            if self.pos >= len(self.data):
                raise TruncatedError("a number runs past the end of the message")
            byte = self.data[self.pos]
            self.pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return (result >> 1) ^ -(result & 1)
            shift += 7
            if shift > 63:
                raise ValueError("a number is longer than 10 bytes")

    def skip(self, size: int, cap: int, what: str) -> None:
        if size < 0:
            raise ValueError(f"negative {what} length {size}")
        if size > cap:
            raise LimitExceededError(f"declared {what} length {size} > limit {cap}")
        if size > len(self.data) - self.pos:
            raise TruncatedError(f"declared {what} length {size} runs past the end")
        self.pos += size


def _scan(schema: Any, cur: _Cursor, limits: Limits, named: Mapping[str, Any]) -> None:
    """Walk `schema` over the bytes, checking every length and count; nothing is built."""
    if isinstance(schema, list):
        branch = cur.long()
        if not 0 <= branch < len(schema):
            raise ValueError(f"union branch {branch} does not exist")
        _scan(schema[branch], cur, limits, named)
        return
    kind = schema if isinstance(schema, str) else schema["type"]
    if not isinstance(kind, str):  # {"type": {...}}: a nested definition
        _scan(kind, cur, limits, named)
    elif kind in named:
        _scan(named[kind], cur, limits, named)
    elif kind in ("int", "long"):
        cur.long()
    elif kind in _FIXED_WIDTH:
        cur.skip(_FIXED_WIDTH[kind], 8, kind)
    elif kind in ("string", "bytes"):
        cap = limits.max_text if kind == "string" else limits.max_binary
        cur.skip(cur.long(), cap, kind)
    elif kind == "fixed":
        cur.skip(schema["size"], schema["size"], "fixed")
    elif kind == "enum":
        if not 0 <= cur.long() < len(schema["symbols"]):
            raise ValueError("enum symbol index out of range")
    elif kind == "record":
        for field in schema["fields"]:
            _scan(field["type"], cur, limits, named)
    elif kind in ("array", "map"):
        _scan_blocks(schema, cur, limits, named)
    else:
        raise ValueError(f"unsupported schema type {kind!r}")


def _scan_blocks(schema: Any, cur: _Cursor, limits: Limits, named: Mapping[str, Any]) -> None:
    total = 0
    while count := cur.long():
        if count < 0:  # a negative count is followed by the block's size in bytes
            count = -count
            cur.long()
        total += count
        if total > limits.max_items:
            raise LimitExceededError(f"declared {total}+ array items > limit {limits.max_items}")
        for _ in range(count):
            if schema["type"] == "map":
                cur.skip(cur.long(), limits.max_text, "map key")
            _scan(schema["items" if schema["type"] == "array" else "values"], cur, limits, named)


def check_lengths(registry: SchemaRegistry, data: bytes, limits: Limits) -> None:
    """Raise `LimitExceededError` or `TruncatedError` for the first bad declared length.

    Bytes that are not single-object encoded or name an unknown schema pass: `decode` then
    reports them with their own reason.
    """
    writer = registry.writers.get(data[2:HEADER_LEN])
    if writer is None:
        return
    schema = writer[1]
    _scan(schema, _Cursor(data[HEADER_LEN:]), limits, schema.get("__named_schemas", {}))


def _decode_checked(
    registry: SchemaRegistry, name: str, data: bytes, limits: Limits
) -> dict[str, Any]:
    try:
        return decode(registry, name, data)
    except (NotSingleObjectError, UnknownSchemaError):
        raise
    except Exception:
        check_lengths(registry, data, limits)  # a limit or truncation says more than fastavro
        raise


def first_block_count(registry: SchemaRegistry, payload: bytes) -> int:
    """Items declared by the first block of `RecordBatch.records`, its first field."""
    if registry.writers.get(payload[2:HEADER_LEN], ("",))[0] != RECORD_BATCH:
        return 0  # not a RecordBatch: decoding reports it
    try:
        return abs(_Cursor(payload[HEADER_LEN:]).long())
    except ValueError:
        return 0  # decoding reports it


def _longest_text(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return max((_longest_text(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return max((_longest_text(v) for v in value), default=0)
    return 0


def decode_envelope(
    message: RawMessage, registry: SchemaRegistry, max_bytes: int
) -> Submission | Rejection:
    unreadable = message.header(UNREADABLE_BATCH_HEADER)
    if unreadable is not None:
        return _unreadable_batch(message, unreadable)
    if len(message.value) > max_bytes:
        detail = f"message of {len(message.value)} bytes exceeds the {max_bytes}-byte limit"
        return Rejection(message, Reason.DECODE_TOO_LARGE, detail)
    try:
        limits = Limits(MAX_CHAIN_LENGTH, MAX_TEXT_LENGTH, max_bytes)
        check_lengths(registry, message.value, limits)
        submission = read_envelope(registry, message.value)
    except Exception as exc:  # any decoder failure is a property of the input
        return Rejection(message, _reason_for(exc), f"envelope: {exc}")
    for index, der in enumerate(submission.certificate_chain):
        if len(der) > MAX_CERTIFICATE_BYTES:
            detail = f"certificate {index} is {len(der)} bytes, over the {MAX_CERTIFICATE_BYTES}"
            detail += "-byte limit for one certificate"
            return Rejection(
                message,
                Reason.DECODE_TOO_LARGE,
                detail,
                submission_id=submission.submission_id,
                sender_code=submission.sender_code,
            )
    return submission


def _unreadable_batch(message: RawMessage, why: bytes) -> Rejection:
    """The stand-in for a Kafka batch the consumer could not read: its reason and detail."""
    code, _, detail = why.decode("utf-8", "replace").partition(" ")
    too_large = code == Reason.DECODE_TOO_LARGE.value
    return Rejection(
        message, Reason.DECODE_TOO_LARGE if too_large else Reason.DECODE_MALFORMED, detail
    )


def read_envelope(registry: SchemaRegistry, value: bytes) -> Submission:
    """The envelope's fields, without the limits `decode_envelope` checks first; raises on
    bytes that are not an envelope."""
    env = decode(registry, SUBMISSION, value)
    return Submission(
        submission_id=env["submission_id"],
        sender_code=env["sender_code"],
        vendor=env["vendor"],
        sent_at_ms=int(env["sent_at"].timestamp() * 1000),
        payload=env["payload"],
        signature=env["signature"],
        signature_algorithm=env["signature_algorithm"],
        certificate_chain=tuple(env["certificate_chain"]),
    )


def decode_payload(
    message: RawMessage,
    submission: Submission,
    registry: SchemaRegistry,
    max_records: int,
) -> tuple[dict[str, Any], ...] | Rejection:
    def reject(code: Reason, detail: str) -> Rejection:
        return Rejection(
            message,
            code,
            detail,
            submission_id=submission.submission_id,
            sender_code=submission.sender_code,
        )

    payload = submission.payload
    declared = first_block_count(registry, payload)
    if declared > max_records:
        return reject(Reason.DECODE_TOO_LARGE, f"{declared} records declared > limit {max_records}")
    limits = Limits(max_records, MAX_TEXT_LENGTH, len(payload))
    try:
        records = _decode_checked(registry, RECORD_BATCH, payload, limits)["records"]
    except Exception as exc:  # any decoder failure is a property of the input
        return reject(_reason_for(exc), f"payload: {exc}")
    if not records:
        return reject(Reason.DECODE_EMPTY_BATCH, "the batch holds no record")
    if len(records) > max_records:
        return reject(Reason.DECODE_TOO_LARGE, f"{len(records)} records > limit {max_records}")
    if len(payload) > MAX_TEXT_LENGTH and _longest_text(records) > MAX_TEXT_LENGTH:
        return reject(Reason.DECODE_TOO_LARGE, f"a text field is longer than {MAX_TEXT_LENGTH}")
    return tuple(records)
