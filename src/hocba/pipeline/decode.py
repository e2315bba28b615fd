"""The decode stage: wire bytes → `Submission`, and signed payload → records.

Decoding is split in two because the payload is untrusted until its signature is checked:
the envelope is read first, the records only after `verify` accepted the bytes that were
signed. Each failure is returned as a `Rejection` holding the original message.
"""

from __future__ import annotations

from typing import Any

from hocba.domain.messages import RawMessage, Rejection, Submission
from hocba.domain.reasons import Reason
from hocba.pipeline.codec import (
    RECORD_BATCH,
    SUBMISSION,
    NotSingleObjectError,
    SchemaRegistry,
    UnknownSchemaError,
    decode,
)


def _reason_for(exc: Exception) -> Reason:
    if isinstance(exc, NotSingleObjectError):
        return Reason.DECODE_NOT_AVRO
    if isinstance(exc, UnknownSchemaError):
        return Reason.DECODE_UNKNOWN_SCHEMA
    return Reason.DECODE_MALFORMED


def decode_envelope(
    message: RawMessage, registry: SchemaRegistry, max_bytes: int
) -> Submission | Rejection:
    if len(message.value) > max_bytes:
        detail = f"message of {len(message.value)} bytes exceeds the {max_bytes}-byte limit"
        return Rejection(message, Reason.DECODE_TOO_LARGE, detail)
    try:
        env = decode(registry, SUBMISSION, message.value)
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
    except Exception as exc:  # any decoder failure is a property of the input
        return Rejection(message, _reason_for(exc), f"envelope: {exc}")


def decode_payload(
    message: RawMessage, submission: Submission, registry: SchemaRegistry, max_records: int
) -> tuple[dict[str, Any], ...] | Rejection:
    def reject(code: Reason, detail: str) -> Rejection:
        return Rejection(
            message,
            code,
            detail,
            submission_id=submission.submission_id,
            sender_code=submission.sender_code,
        )

    try:
        records = decode(registry, RECORD_BATCH, submission.payload)["records"]
    except Exception as exc:  # any decoder failure is a property of the input
        return reject(_reason_for(exc), f"payload: {exc}")
    if not records:
        return reject(Reason.DECODE_EMPTY_BATCH, "the batch holds no record")
    if len(records) > max_records:
        return reject(Reason.DECODE_TOO_LARGE, f"{len(records)} records > limit {max_records}")
    return tuple(records)
