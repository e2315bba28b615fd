"""The pure, per-message part of a batch: decode → verify → know the sender → check the payload.

It takes raw messages and returns verified submissions and rejections. The records
themselves are read, validated and enriched by ClickHouse when the batch lands
(`record_sql`, `landing`): Python reading each record cost more than the rest of the
pipeline together. No exception escapes for a message: whatever a stage raises on
unexpected input becomes that message's dead letter, so a partition never stops.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from hocba.domain.messages import RawMessage, Rejection, Submission
from hocba.domain.reasons import Reason
from hocba.pipeline.codec import HEADER_LEN, MAGIC, RECORD_BATCH, SchemaRegistry, encode
from hocba.pipeline.decode import (
    MAX_TEXT_LENGTH,
    decode_envelope,
    decode_payload,
    first_block_count,
)
from hocba.pipeline.verify import Verifier, VerifyFailure
from hocba.reference.model import ReferenceData


@dataclass(frozen=True, slots=True)
class PipelineContext:
    registry: SchemaRegistry
    verifier: Verifier
    reference: ReferenceData
    max_message_bytes: int = 1_048_576
    max_records: int = 5_000


@dataclass(frozen=True, slots=True)
class Accepted:
    """A verified message from a known Department, its payload in the newest schema version."""

    message: RawMessage
    submission: Submission
    signer_fingerprint: str
    payload_rewritten: bool = False  # from an older schema version: not the envelope's bytes


@dataclass(slots=True)
class StageClock:
    """Seconds spent per stage in one batch, for the worker's metrics."""

    verify_s: float = 0.0
    total_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Prepared:
    accepted: tuple[Accepted, ...] = ()
    rejected: tuple[Rejection, ...] = ()
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    clock: StageClock = field(default_factory=StageClock)


def _reject(msg: RawMessage, sub: Submission, code: Reason, detail: str) -> Rejection:
    return Rejection(
        msg, code, detail, submission_id=sub.submission_id, sender_code=sub.sender_code
    )


def _payload_check(
    msg: RawMessage, sub: Submission, ctx: PipelineContext
) -> Submission | Rejection:
    """What ClickHouse cannot be asked: the declared record count (read before anything is
    decoded), and, for payloads of an older schema version or long enough to hold an
    over-long text, a full decode here (rare; an older version is re-encoded in the newest,
    the one version the record stage reads)."""
    payload = sub.payload
    declared = first_block_count(ctx.registry, payload)
    if declared > ctx.max_records:
        detail = f"{declared} records declared > limit {ctx.max_records}"
        return _reject(msg, sub, Reason.DECODE_TOO_LARGE, detail)
    current = payload[2:HEADER_LEN] == ctx.registry.writer_fingerprint(RECORD_BATCH)
    if current and payload[:2] == MAGIC and len(payload) <= MAX_TEXT_LENGTH:
        return sub
    records = decode_payload(msg, sub, ctx.registry, ctx.max_records)
    if isinstance(records, Rejection):
        return records
    if current:
        return sub
    return replace(sub, payload=encode(ctx.registry, RECORD_BATCH, {"records": list(records)}))


def process_message(
    msg: RawMessage, ctx: PipelineContext, received_at: datetime, clock: StageClock | None = None
) -> Accepted | Rejection:
    envelope = decode_envelope(msg, ctx.registry, ctx.max_message_bytes)
    if isinstance(envelope, Rejection):
        return envelope
    started = time.perf_counter()
    verdict = ctx.verifier.verify(envelope, received_at)
    if clock is not None:
        clock.verify_s += time.perf_counter() - started
    if isinstance(verdict, VerifyFailure):
        return _reject(msg, envelope, verdict.reason, verdict.detail)
    if envelope.sender_code not in ctx.reference.departments:
        detail = f"sender {envelope.sender_code!r} is not a known Department"
        return _reject(msg, envelope, Reason.VERIFY_SIGNER_NOT_AUTHORIZED, detail)
    checked = _payload_check(msg, envelope, ctx)
    if isinstance(checked, Rejection):
        return checked
    return Accepted(msg, checked, verdict.fingerprint, checked.payload is not envelope.payload)


def process_batch(
    messages: Sequence[RawMessage], ctx: PipelineContext, received_at: datetime | None = None
) -> Prepared:
    """`received_at`: when the first of `messages` reached the consumer, if known; else now."""
    received_at = received_at or datetime.now(UTC)
    clock = StageClock()
    started = time.perf_counter()
    accepted: list[Accepted] = []
    rejected: list[Rejection] = []
    for msg in messages:
        try:
            outcome = process_message(msg, ctx, received_at, clock)
        except Exception as exc:  # a bug must cost one message, not the partition
            outcome = Rejection(msg, Reason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
        (rejected if isinstance(outcome, Rejection) else accepted).append(outcome)  # type: ignore[arg-type]
    clock.total_s = time.perf_counter() - started
    return Prepared(tuple(accepted), tuple(rejected), received_at, clock)
