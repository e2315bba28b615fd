"""Land one prepared batch: dedupe against the store, one insert, audit, dead-letter rows.

Runs on the store's own thread (chDB has a single owner). It raises only when the store
fails, and the worker then retries the whole call: every step is idempotent (the records
insert carries a deterministic token, the dedupe lookup sees what an earlier try landed).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from hocba.domain.columns import DEAD_LETTER_COLUMNS, SUBMISSION_COLUMNS, RecordKey
from hocba.domain.messages import RawMessage, Rejection
from hocba.pipeline.deadletter import DeadLetter, record_errors_json, to_dead_letter
from hocba.pipeline.dedupe import classify, record_key
from hocba.pipeline.process import Accepted, Prepared, partial_rejection
from hocba.pipeline.rows import arrow_table, dedup_token, records_table
from hocba.store.base import Store


@dataclass(frozen=True, slots=True)
class LandResult:
    dead_letters: tuple[DeadLetter, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)
    outcomes: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (outcome, reason)


def _ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _coordinates(message: RawMessage) -> dict[str, Any]:
    return {
        "topic": message.topic,
        "kafka_partition": message.partition,
        "kafka_offset": message.offset,
    }


def _accepted_audit(item: Accepted, received_at: datetime, **figures: Any) -> dict[str, Any]:
    sub = item.submission
    return {
        "submission_id": sub.submission_id,
        "sender_code": sub.sender_code,
        "vendor": sub.vendor,
        "signer_fingerprint": item.signer_fingerprint,
        **_coordinates(item.message),
        "sent_at": _ms(sub.sent_at_ms),
        "received_at": received_at,
        **figures,
    }


def _rejected_audit(rejection: Rejection, received_at: datetime) -> dict[str, Any]:
    return {
        "submission_id": rejection.submission_id,
        "sender_code": rejection.sender_code,
        "vendor": "",
        "signer_fingerprint": "",
        **_coordinates(rejection.message),
        "sent_at": _ms(rejection.message.timestamp_ms),
        "received_at": received_at,
        "outcome": "dead_lettered",
        "reason": str(rejection.code),
        "records_total": 0,
        "records_landed": 0,
        "records_duplicate": 0,
        "records_stale": 0,
        "records_failed": len(rejection.record_errors),
    }


def _dead_letter_row(rejection: Rejection, worker: str, at: datetime) -> dict[str, Any]:
    return {
        "submission_id": rejection.submission_id,
        "sender_code": rejection.sender_code,
        "code": str(rejection.code),
        "stage": str(rejection.stage),
        "detail": rejection.detail,
        "record_errors": record_errors_json(rejection),
        **_coordinates(rejection.message),
        "failed_at": at,
        "worker": worker,
        "original_size": len(rejection.message.value),
    }


def _landing_columns(item: Accepted, now: datetime) -> dict[str, Any]:
    sub = item.submission
    return {
        "submission_id": sub.submission_id,
        "sender_code": sub.sender_code,
        "vendor": sub.vendor,
        "sent_at": _ms(sub.sent_at_ms),
        "kafka_partition": item.message.partition,
        "kafka_offset": item.message.offset,
        "landed_at": now,
    }


def _redelivered_audit(item: Accepted, received_at: datetime) -> dict[str, Any]:
    return _accepted_audit(
        item,
        received_at,
        outcome="duplicate",
        reason="",
        records_total=item.records_total,
        records_landed=0,
        records_duplicate=len(item.rows),
        records_stale=0,
        records_failed=0,
    )


def _landed_state(
    store: Store, keys: list[RecordKey], cache: MutableMapping[RecordKey, tuple[int, str]] | None
) -> dict[RecordKey, tuple[int, str]]:
    """What is landed for `keys`: from the cache where it knows, one query for the rest."""
    if cache is None:
        return dict(store.landed_state(keys))
    known = {k: cache[k] for k in keys if k in cache}
    missing = [k for k in keys if k not in known]
    return {**known, **(store.landed_state(missing) if missing else {})}


def land_prepared(
    store: Store,
    prepared: Prepared,
    worker: str,
    redelivered: Collection[str] = (),
    cache: MutableMapping[RecordKey, tuple[int, str]] | None = None,
) -> LandResult:
    """Classify every accepted row against what is landed (one lookup), then insert.

    Submissions in `redelivered` were landed completely before (DESIGN §5, layer 1): they
    are audited as duplicates without a lookup, an insert or a dead letter. `cache` (layer 2)
    answers for recently landed keys and is updated after the insert.
    """
    now = datetime.now(UTC)
    fresh = [a for a in prepared.accepted if a.submission.submission_id not in redelivered]
    repeats = [a for a in prepared.accepted if a.submission.submission_id in redelivered]
    prepared = replace(prepared, accepted=tuple(fresh))
    keys = list({record_key(r) for a in prepared.accepted for r in a.rows})
    landed = _landed_state(store, keys, cache)
    to_land: list[dict[str, Any]] = []
    audits = [_rejected_audit(r, prepared.received_at) for r in prepared.rejected]
    audits += [_redelivered_audit(a, prepared.received_at) for a in repeats]
    outcomes = Counter(("dead_lettered", str(r.code)) for r in prepared.rejected)
    outcomes[("duplicate", "")] += len(repeats)
    rejections = list(prepared.rejected)
    counts = Counter(
        messages=len(prepared.accepted) + len(prepared.rejected) + len(repeats),
        records_duplicate=sum(len(a.rows) for a in repeats),
        dead_lettered=len(prepared.rejected),
    )
    for item in prepared.accepted:
        result = classify(item.rows, landed)
        extra = _landing_columns(item, now)
        for row in result.to_land:
            to_land.append({**row, **extra})
            landed[record_key(row)] = (row["revision"], row["content_hash"])
        if item.record_errors:
            rejections.append(partial_rejection(item))
        outcome = "partial" if item.record_errors else "accepted" if result.to_land else "duplicate"
        reason = str(item.record_errors[0].code) if item.record_errors else ""
        outcomes[(outcome, reason)] += 1
        figures = {
            "records_landed": len(result.to_land),
            "records_duplicate": result.duplicates,
            "records_stale": result.stale,
            "records_failed": len(item.record_errors),
        }
        audits.append(
            _accepted_audit(
                item,
                prepared.received_at,
                outcome=outcome,
                reason=reason,
                records_total=item.records_total,
                **figures,
            )
        )
        counts.update(figures)
    if to_land:
        store.insert_records(records_table(to_land), dedup_token(to_land))
        if cache is not None:
            cache.update((record_key(r), (r["revision"], r["content_hash"])) for r in to_land)
    store.insert_rows("submissions", arrow_table(SUBMISSION_COLUMNS, audits))
    if rejections:
        rows = [_dead_letter_row(r, worker, now) for r in rejections]
        store.insert_rows("dead_letters", arrow_table(DEAD_LETTER_COLUMNS, rows))
    letters = tuple(to_dead_letter(r, worker, now) for r in rejections)
    return LandResult(letters, counts, outcomes)
