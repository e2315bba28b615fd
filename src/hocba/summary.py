"""The demo's national summary: what landed by province and level, what was dead-lettered.

Plain SQL over `records FINAL` (latest revision only) so the figures are right without
waiting for merges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hocba.store.base import Store


@dataclass(frozen=True, slots=True)
class Summary:
    records: int
    by_province_level: list[dict[str, Any]]
    dead_letters: list[dict[str, Any]]
    outcomes: list[dict[str, Any]]


def national_summary(store: Store, database: str = "hocba") -> Summary:
    db = f"`{database}`"
    total = store.query(f"SELECT count() AS n FROM {db}.records FINAL")[0]["n"]
    by_province_level = store.query(
        "SELECT province_code_2024, province_name_2024, province_name_2025,"
        " countIf(level = 'PRIMARY') AS primary,"
        " countIf(level = 'LOWER_SECONDARY') AS lower_secondary,"
        " countIf(level = 'UPPER_SECONDARY') AS upper_secondary, count() AS records"
        f" FROM {db}.records FINAL"
        " GROUP BY province_code_2024, province_name_2024, province_name_2025"
        " ORDER BY province_code_2024"
    )
    dead_letters = store.query(
        f"SELECT code, count() AS messages FROM {db}.dead_letters GROUP BY code ORDER BY code"
    )
    outcomes = store.query(
        "SELECT outcome, count() AS messages, sum(records_landed) AS records_landed,"
        " sum(records_duplicate) AS records_duplicate"
        f" FROM {db}.submissions GROUP BY outcome ORDER BY outcome"
    )
    return Summary(int(total), by_province_level, dead_letters, outcomes)
