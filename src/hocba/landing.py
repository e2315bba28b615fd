"""Land one prepared batch: dedupe against the store, one insert, audit, dead-letter rows.

Runs on the store's own thread (chDB has a single owner). It raises only when the store
fails, and the worker then retries the whole call: every step is idempotent (the records
insert carries a deterministic token, the dedupe lookup sees what an earlier try landed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hocba.domain.columns import DEAD_LETTER_COLUMNS, SUBMISSION_COLUMNS
from hocba.domain.messages import Rejection
from hocba.pipeline.deadletter import DeadLetter, record_errors_json, to_dead_letter
from hocba.pipeline.dedupe import RecordKey, classify, record_key
from hocba.pipeline.process import Accepted, Prepared, partial_rejection
from hocba.pipeline.rows import arrow_table, dedup_token, records_table
from hocba.store.base import Store


@dataclass(frozen=True, slots=True)
class LandResult:
    dead_letters: tuple[DeadLetter, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)


def _ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _audit(item: Accepted | Rejection, received_at: datetime, **figures: Any) -> dict[str, Any]:
    sub = item.submission if isinstance(item, Accepted) else None
    return {
        "submission_id": sub.submission_id if sub else item.submission_id,  # type: ignore[union-attr]
        "sender_code": sub.sender_code if sub else item.sender_code,  # type: ignore[union-attr]
        "vendor": sub.vendor if sub else "",
        "signer_fingerprint": item.signer_fingerprint if isinstance(item, Accepted) else "",
        "topic": item.message.topic,
        "kafka_partition": item.message.partition,
        "kafka_offset": item.message.offset,
        "sent_at": _ms(sub.sent_at_ms if sub else item.message.timestamp_ms),
        "received_at": received_at,
        **figures,
    }


def _dead_letter_row(rejection: Rejection, worker: str, at: datetime) -> dict[str, Any]:
    msg = rejection.message
    return {
        "submission_id": rejection.submission_id, "sender_code": rejection.sender_code,
        "code": str(rejection.code), "stage": str(rejection.stage),
        "detail": rejection.detail, "record_errors": record_errors_json(rejection),
        "topic": msg.topic, "kafka_partition": msg.partition, "kafka_offset": msg.offset,
        "failed_at": at, "worker": worker, "original_size": len(msg.value),
    }


def land_prepared(store: Store, prepared: Prepared, worker: str) -> LandResult:
    now = datetime.now(UTC)
    keys = list({record_key(r) for a in prepared.accepted for r in a.rows})
    landed: dict[RecordKey, tuple[int, str]] = dict(store.landed_state(keys))  # type: ignore[arg-type]
    to_land: list[dict[str, Any]] = []
    audits: list[dict[str, Any]] = []
    rejections = list(prepared.rejected)
    counts = {"messages": len(prepared.accepted) + len(prepared.rejected), "landed": 0,
              "duplicate": 0, "stale": 0, "failed": 0, "dead_lettered": len(prepared.rejected)}
    for item in prepared.accepted:
        result = classify(item.rows, landed)
        sub = item.submission
        landing = {"submission_id": sub.submission_id, "sender_code": sub.sender_code,
                   "vendor": sub.vendor, "sent_at": _ms(sub.sent_at_ms),
                   "kafka_partition": item.message.partition,
                   "kafka_offset": item.message.offset, "landed_at": now}
        for row in result.to_land:
            to_land.append({**row, **landing})
            landed[record_key(row)] = (row["revision"], row["content_hash"])
        if item.record_errors:
            rejections.append(partial_rejection(item))
        outcome = ("partial" if item.record_errors else
                   "accepted" if result.to_land else "duplicate")
        audits.append(_audit(
            item, prepared.received_at, outcome=outcome, reason="",
            records_total=item.records_total, records_landed=len(result.to_land),
            records_duplicate=result.duplicates, records_stale=result.stale,
            records_failed=len(item.record_errors),
        ))
        counts["landed"] += len(result.to_land)
        counts["duplicate"] += result.duplicates
        counts["stale"] += result.stale
        counts["failed"] += len(item.record_errors)
    for rejection in prepared.rejected:
        audits.append(_audit(
            rejection, prepared.received_at, outcome="dead_lettered", reason=str(rejection.code),
            records_total=0, records_landed=0, records_duplicate=0, records_stale=0,
            records_failed=len(rejection.record_errors),
        ))
    if to_land:
        store.insert_records(records_table(to_land), dedup_token(to_land))
    if audits:
        store.insert_rows("submissions", arrow_table(SUBMISSION_COLUMNS, audits))
    if rejections:
        store.insert_rows("dead_letters", arrow_table(
            DEAD_LETTER_COLUMNS, [_dead_letter_row(r, worker, now) for r in rejections]))
    return LandResult(tuple(to_dead_letter(r, worker, now) for r in rejections), counts)
