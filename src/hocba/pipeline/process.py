"""The pure part of a batch: decode → verify → decode payload → authorise → validate → enrich.

It takes raw messages and returns candidate rows and rejections; landing (dedupe against
the store, insert) is the caller's. No exception escapes for a message: whatever a stage
raises on unexpected input becomes that message's dead letter, so a partition never stops.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hocba.domain.messages import RawMessage, RecordError, Rejection, Submission
from hocba.domain.reasons import Reason
from hocba.pipeline.codec import SchemaRegistry
from hocba.pipeline.decode import decode_envelope, decode_payload
from hocba.pipeline.enrich import department_may_send_for, enrich_record
from hocba.pipeline.validate import validate_record
from hocba.pipeline.verify import Verifier, VerifyFailure
from hocba.reference.model import ReferenceData


@dataclass(frozen=True, slots=True)
class PipelineContext:
    registry: SchemaRegistry
    verifier: Verifier
    reference: ReferenceData
    pseudonym_key: bytes
    keep_identity: bool = False
    max_message_bytes: int = 1_048_576
    max_records: int = 5_000


@dataclass(frozen=True, slots=True)
class Accepted:
    """A message whose valid records are ready to land (some records may have failed)."""

    message: RawMessage
    submission: Submission
    signer_fingerprint: str
    rows: tuple[dict[str, Any], ...]
    records_total: int
    record_errors: tuple[RecordError, ...] = ()


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


def _authorise(
    msg: RawMessage, sub: Submission, records: Sequence[Mapping[str, Any]], ref: ReferenceData
) -> Rejection | None:
    """A Department may send only for schools of its own province (DESIGN §3)."""
    department = ref.departments.get(sub.sender_code)
    if department is None:
        return _reject(
            msg,
            sub,
            Reason.VERIFY_SIGNER_NOT_AUTHORIZED,
            f"sender {sub.sender_code!r} is not a known Department",
        )
    for index, record in enumerate(records):
        school = ref.schools.get(record["school_code"])
        if school is not None and not department_may_send_for(department, school):
            return _reject(
                msg,
                sub,
                Reason.VERIFY_SIGNER_NOT_AUTHORIZED,
                f"record {index}: school {school.code} is outside the sender's "
                f"province {department.province_code}",
            )
    return None


def _rows(
    records: Sequence[Mapping[str, Any]], ctx: PipelineContext
) -> tuple[list[dict[str, Any]], list[RecordError]]:
    rows: list[dict[str, Any]] = []
    errors: list[RecordError] = []
    for index, record in enumerate(records):
        failure = validate_record(record, index)
        if failure is None:
            enriched = enrich_record(
                record,
                ctx.reference,
                pseudonym_key=ctx.pseudonym_key,
                keep_identity=ctx.keep_identity,
            )
            if isinstance(enriched, RecordError):
                failure = RecordError(index, enriched.code, enriched.detail)
            else:
                rows.append(enriched)
        if failure is not None:
            errors.append(failure)
    return rows, errors


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
    records = decode_payload(msg, envelope, ctx.registry, ctx.max_records)
    if isinstance(records, Rejection):
        return records
    unauthorised = _authorise(msg, envelope, records, ctx.reference)
    if unauthorised is not None:
        return unauthorised
    rows, errors = _rows(records, ctx)
    if errors and not rows:
        first = errors[0]
        return Rejection(
            msg,
            first.code,
            f"all {len(errors)} records failed; first: {first.detail}",
            tuple(errors),
            envelope.submission_id,
            envelope.sender_code,
        )
    return Accepted(msg, envelope, verdict.fingerprint, tuple(rows), len(records), tuple(errors))


def process_batch(messages: Sequence[RawMessage], ctx: PipelineContext) -> Prepared:
    received_at = datetime.now(UTC)
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


def partial_rejection(item: Accepted) -> Rejection:
    """The one dead letter of a batch that landed only some of its records (DESIGN §4)."""
    first = item.record_errors[0]
    return Rejection(
        item.message,
        first.code,
        f"{len(item.record_errors)} of {item.records_total} records failed; "
        f"first: record {first.index}: {first.detail}",
        item.record_errors,
        item.submission.submission_id,
        item.submission.sender_code,
    )
