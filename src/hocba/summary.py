"""The demo's national summary: what landed by province and level, what was dead-lettered,
and how each message ended (queries in `hocba.stats.queries`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hocba.stats.queries import (
    DEAD_LETTERS_BY_REASON,
    RECORDS_BY_PROVINCE_AND_LEVEL,
    SUBMISSION_OUTCOMES,
)
from hocba.store.base import Store


@dataclass(frozen=True, slots=True)
class Summary:
    records: int
    by_province_level: list[dict[str, Any]]
    dead_letters: list[dict[str, Any]]
    outcomes: list[dict[str, Any]]


def national_summary(store: Store, database: str = "hocba") -> Summary:
    by_province_level = RECORDS_BY_PROVINCE_AND_LEVEL.run(store, database)
    return Summary(
        sum(int(row["records"]) for row in by_province_level),
        by_province_level,
        DEAD_LETTERS_BY_REASON.run(store, database),
        SUBMISSION_OUTCOMES.run(store, database),
    )
