"""The audit rows of a batch: one `submissions` row per message, one `dead_letters` row per
dead letter (DESIGN §5). Plain dicts in the tables' column names, for `rows.arrow_table`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hocba.domain.messages import RawMessage, Rejection
from hocba.pipeline.deadletter import MAX_DETAIL, record_errors_json
from hocba.pipeline.process import Accepted

# ClickHouse's DateTime64 holds 1900-01-01 to 2299-12-31 (and Python's datetime no more than
# year 9999); a producer may stamp a message with any 64-bit number.
_DATETIME64_MS = (-2_208_988_800_000, 10_413_791_999_999)


def _ms(ms: int, fallback: datetime) -> datetime:
    """`ms` as a time, or `fallback` when no column could hold it: a wild timestamp must not
    fail the insert, which would be retried as an outage for ever."""
    if not _DATETIME64_MS[0] <= ms <= _DATETIME64_MS[1]:
        return fallback
    return datetime.fromtimestamp(ms / 1000, UTC)


def _coordinates(message: RawMessage) -> dict[str, Any]:
    return {
        "topic": message.topic,
        "kafka_partition": message.partition,
        "kafka_offset": message.offset,
    }


def submission_row(item: Accepted, received_at: datetime, **figures: Any) -> dict[str, Any]:
    sub = item.submission
    return {
        "submission_id": sub.submission_id,
        "sender_code": sub.sender_code,
        "vendor": sub.vendor,
        "signer_fingerprint": item.signer_fingerprint,
        **_coordinates(item.message),
        "sent_at": _ms(sub.sent_at_ms, received_at),
        "received_at": received_at,
        **figures,
    }


def rejected_submission_row(rejection: Rejection, received_at: datetime) -> dict[str, Any]:
    return {
        "submission_id": rejection.submission_id,
        "sender_code": rejection.sender_code,
        "vendor": "",
        "signer_fingerprint": "",
        **_coordinates(rejection.message),
        "sent_at": _ms(rejection.message.timestamp_ms, received_at),
        "received_at": received_at,
        "outcome": "dead_lettered",
        "reason": str(rejection.code),
        "records_total": 0,
        "records_landed": 0,
        "records_duplicate": 0,
        "records_stale": 0,
        "records_failed": len(rejection.record_errors),
    }


def dead_letter_row(rejection: Rejection, worker: str, at: datetime) -> dict[str, Any]:
    return {
        "submission_id": rejection.submission_id,
        "sender_code": rejection.sender_code,
        "code": str(rejection.code),
        "stage": str(rejection.stage),
        "detail": rejection.detail[:MAX_DETAIL],
        "record_errors": record_errors_json(rejection),
        **_coordinates(rejection.message),
        "failed_at": at,
        "worker": worker,
        "original_size": len(rejection.message.value),
    }


def redelivered_submission_row(
    item: Accepted, received_at: datetime, records: int
) -> dict[str, Any]:
    return submission_row(
        item,
        received_at,
        outcome="duplicate",
        reason="",
        records_total=records,
        records_landed=0,
        records_duplicate=records,
        records_stale=0,
        records_failed=0,
    )
