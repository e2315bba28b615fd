"""The named queries behind `hocba stats` and `hocba report`, the same text on chDB and server.

Each query reads the views of `hocba.stats.views` (never `records` directly unless a figure
needs the latest revision's values), takes ClickHouse `{name:Type}` parameters bound by the
store, and returns rows as dicts. Naming them keeps the CLI, the HTML report, the tests and
the benchmark on one definition of every figure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hocba.stats.views import opening_day, render
from hocba.store.base import Store, check_database

_YEAR = "{school_year:String}"
_IN_YEAR_AND_GRADES = f"school_year = {_YEAR} AND has({{grades:Array(UInt8)}}, grade)"


@dataclass(frozen=True, slots=True)
class NamedQuery:
    name: str
    sql: str  # `{db}` is the database; `{name:Type}` are ClickHouse parameters

    def run(
        self, store: Store, database: str, parameters: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        return store.query(render(self.sql, check_database(database)), parameters)


SCHOOL_YEARS = NamedQuery(
    "school_years",
    # `landed`: 1 when records of the year are in, 0 for a year known only by its plan
    "SELECT school_year, max(landed) AS landed FROM ("
    " SELECT school_year, 1 AS landed FROM {db}.progress"
    " UNION ALL SELECT school_year, 0 AS landed FROM {db}.expected_enrollment"
    ") GROUP BY school_year ORDER BY school_year",
)

EXPECTED_GRADES = NamedQuery(
    "expected_grades",
    f"SELECT DISTINCT grade FROM {{db}}.expected_enrollment WHERE school_year = {_YEAR}"
    " ORDER BY grade",
)

DEPARTMENTS = NamedQuery(
    "departments",
    "SELECT code, name, edition, province_code, account_registered, certificate_approved"
    f" FROM {{db}}.departments WHERE valid_from <= {opening_day(_YEAR)}"
    f" AND (valid_to IS NULL OR valid_to >= {opening_day(_YEAR)}) ORDER BY code",
)

SENDERS = NamedQuery(
    "senders",
    f"SELECT DISTINCT sender_code FROM {{db}}.progress WHERE {_IN_YEAR_AND_GRADES}",
)

COVERAGE_CELLS = NamedQuery(
    "coverage_cells",
    "SELECT province_code_2024, province_code_2025, grade, records, expected, last_landed_at"
    f" FROM {{db}}.coverage WHERE {_IN_YEAR_AND_GRADES}"
    " ORDER BY province_code_2024, grade",
)

PROVINCES = NamedQuery("provinces", "SELECT edition, code, name FROM {db}.provinces")

RECORDS_BY_HOUR = NamedQuery(
    "records_by_hour",
    # DateTime64, not DateTime: chDB hands a DateTime to Arrow as a bare integer.
    "SELECT toDateTime64(toStartOfHour(landed_at), 0, 'UTC') AS hour, count() AS records"
    f" FROM {{db}}.records FINAL WHERE {_IN_YEAR_AND_GRADES} GROUP BY hour ORDER BY hour",
)

DEAD_LETTERS_BY_REASON = NamedQuery(
    "dead_letters_by_reason",
    "SELECT code, sum(messages) AS messages FROM {db}.dead_letters_by_reason"
    " GROUP BY code ORDER BY messages DESC, code",
)

# The demo's summary: everything landed, every school year and grade, latest revision only.
RECORDS_BY_PROVINCE_AND_LEVEL = NamedQuery(
    "records_by_province_and_level",
    "SELECT province_code_2024, province_name_2024, province_name_2025,"
    " countIf(level = 'PRIMARY') AS primary,"
    " countIf(level = 'LOWER_SECONDARY') AS lower_secondary,"
    " countIf(level = 'UPPER_SECONDARY') AS upper_secondary, count() AS records"
    " FROM {db}.records FINAL"
    " GROUP BY province_code_2024, province_name_2024, province_name_2025"
    " ORDER BY province_code_2024",
)

SUBMISSION_OUTCOMES = NamedQuery(
    "submission_outcomes",
    "SELECT outcome, count() AS messages, sum(records_landed) AS records_landed,"
    " sum(records_duplicate) AS records_duplicate"
    " FROM {db}.submissions GROUP BY outcome ORDER BY outcome",
)
