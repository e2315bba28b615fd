"""The national progress report (DESIGN §7): figures as frozen values, built in two steps.

`fetch_report` runs the named queries; `build_report` is pure and turns their rows into the
report, so the arithmetic (which Department a province's records count for, the grade
filter, coverage rounding) is tested without a database. Every figure derives from the
coverage cells (province × grade), which never share a record key, so sums are exact.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from hocba.pipeline.rules_data import GRADES, LEVEL_CODES
from hocba.stats import queries
from hocba.store.base import Store

NATIONAL_HEADINGS = (
    "Departments",
    "registered",
    "approved certificate",
    "sending",
    "records",
    "expected",
    "coverage",
)


class Breakdown(StrEnum):
    PROVINCE = "province"  # the 63 former provinces (province_code_2024)
    PROVINCE_2025 = "province-2025"  # the 34 current provinces
    LEVEL = "level"
    GRADE = "grade"


class SortKey(StrEnum):
    CODE = "code"
    NAME = "name"
    RECORDS = "records"
    EXPECTED = "expected"
    COVERAGE = "coverage"


def coverage_pct(records: int, expected: int) -> float | None:
    """Percent to two decimals, half away from zero (as the SQL views round); None if 0."""
    if expected == 0:
        return None
    exact = Decimal(records * 100) / Decimal(expected)
    return float(exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


@dataclass(frozen=True, slots=True)
class Cell:
    """Records received and expected for one former province and grade."""

    province_code_2024: str
    province_code_2025: str
    grade: int
    records: int
    expected: int
    last_landed_at: datetime | None


@dataclass(frozen=True, slots=True)
class National:
    departments_total: int
    departments_registered: int
    departments_with_approved_certificate: int
    departments_sending: int
    records: int
    expected: int
    coverage_pct: float | None


@dataclass(frozen=True, slots=True)
class DepartmentProgress:
    code: str
    name: str
    edition: int
    province_code: str
    account_registered: bool
    certificate_approved: bool
    sending: bool
    records: int
    expected: int
    coverage_pct: float | None
    last_landed_at: datetime | None


@dataclass(frozen=True, slots=True)
class BreakdownRow:
    key: str
    name: str
    records: int
    expected: int
    coverage_pct: float | None


@dataclass(frozen=True, slots=True)
class ProgressReport:
    school_year: str
    grades: tuple[int, ...]
    national: National
    departments: tuple[DepartmentProgress, ...]
    cells: tuple[Cell, ...]
    province_names: Mapping[tuple[int, str], str]  # (edition, code) -> name

    def to_json(self) -> dict[str, Any]:
        """The `--json` object: `national` and one object per Department."""
        return {
            "school_year": self.school_year,
            "grades": list(self.grades),
            "national": asdict(self.national),
            "departments": [
                asdict(d)
                | {"last_landed_at": d.last_landed_at.isoformat() if d.last_landed_at else None}
                for d in self.departments
            ],
        }


def build_report(
    school_year: str,
    grades: Sequence[int],
    departments: Sequence[Mapping[str, Any]],
    cells: Sequence[Mapping[str, Any]],
    senders: Iterable[str],
    provinces: Sequence[Mapping[str, Any]] = (),
) -> ProgressReport:
    """Rows of the DEPARTMENTS, COVERAGE_CELLS, SENDERS and PROVINCES queries → the report.

    A Department's records and expected enrolment are those of its province in its own
    edition (a 2025 Department covers the former provinces merged into it); "sending" means
    at least one landed record carries its code as sender in this year and these grades.
    """
    typed = tuple(Cell(**{f.name: row[f.name] for f in fields(Cell)}) for row in cells)
    sending = set(senders)
    rows = tuple(_department(d, typed, d["code"] in sending) for d in departments)
    records = sum(c.records for c in typed)
    expected = sum(c.expected for c in typed)
    national = National(
        departments_total=len(rows),
        departments_registered=sum(d.account_registered for d in rows),
        departments_with_approved_certificate=sum(d.certificate_approved for d in rows),
        departments_sending=sum(d.sending for d in rows),
        records=records,
        expected=expected,
        coverage_pct=coverage_pct(records, expected),
    )
    names = {(int(p["edition"]), str(p["code"])): str(p["name"]) for p in provinces}
    return ProgressReport(school_year, tuple(grades), national, rows, typed, names)


def _department(row: Mapping[str, Any], cells: Sequence[Cell], sending: bool) -> DepartmentProgress:
    edition = int(row["edition"])
    code_of = _province_of(edition)
    mine = [c for c in cells if code_of(c) == row["province_code"]]
    records = sum(c.records for c in mine)
    expected = sum(c.expected for c in mine)
    landed = [c.last_landed_at for c in mine if c.last_landed_at is not None]
    return DepartmentProgress(
        code=row["code"],
        name=row["name"],
        edition=edition,
        province_code=row["province_code"],
        account_registered=bool(row["account_registered"]),
        certificate_approved=bool(row["certificate_approved"]),
        sending=sending,
        records=records,
        expected=expected,
        coverage_pct=coverage_pct(records, expected),
        last_landed_at=max(landed, default=None),
    )


def _province_of(edition: int) -> Callable[[Cell], str]:
    if edition == 2025:
        return lambda c: c.province_code_2025
    return lambda c: c.province_code_2024


_LEVEL_NAMES = {code: level for level, code in LEVEL_CODES.items()}


def breakdown(report: ProgressReport, by: Breakdown) -> tuple[BreakdownRow, ...]:
    """Records, expected and coverage grouped by former/current province, level or grade;
    levels are keyed by their Ministry code (02 primary …), so they sort in school order."""
    keys: dict[Breakdown, tuple[Callable[[Cell], str], Callable[[str], str]]] = {
        Breakdown.PROVINCE: (
            lambda c: c.province_code_2024,
            lambda k: report.province_names.get((2024, k), ""),
        ),
        Breakdown.PROVINCE_2025: (
            lambda c: c.province_code_2025,
            lambda k: report.province_names.get((2025, k), ""),
        ),
        Breakdown.LEVEL: (lambda c: LEVEL_CODES[GRADES[c.grade].level], _LEVEL_NAMES.__getitem__),
        Breakdown.GRADE: (lambda c: f"{c.grade:02d}", lambda k: f"grade {int(k)}"),
    }
    key_of, name_of = keys[by]
    totals: dict[str, tuple[int, int]] = {}
    for cell in report.cells:
        records, expected = totals.get(key_of(cell), (0, 0))
        totals[key_of(cell)] = (records + cell.records, expected + cell.expected)
    return tuple(
        BreakdownRow(key, name_of(key), r, e, coverage_pct(r, e))
        for key, (r, e) in sorted(totals.items())
    )


def vietnamese_order(text: str) -> tuple[str, str]:
    """Alphabetical as a Vietnamese reader expects, near enough: the letters without their
    marks first (Đ with D), then the marks. Code-point order put Bình Định before Bạc Liêu
    and every Đ… name after Y."""
    decomposed = unicodedata.normalize("NFD", text.casefold()).replace("đ", "d")
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return letters, text


def sort_departments(rows: Sequence[DepartmentProgress], key: SortKey) -> list[DepartmentProgress]:
    """Codes and names ascending; figures descending (largest first), ties by code."""
    if key is SortKey.CODE:
        return sorted(rows, key=lambda d: d.code)
    if key is SortKey.NAME:
        return sorted(rows, key=lambda d: (vietnamese_order(d.name), d.code))
    field = "coverage_pct" if key is SortKey.COVERAGE else key.value
    return sorted(rows, key=lambda d: (-(getattr(d, field) or 0), d.code))


@dataclass(frozen=True, slots=True)
class Activity:
    """What the HTML report draws besides coverage: landings over time and dead letters."""

    records_by_hour: tuple[tuple[datetime, int], ...]
    dead_letters_by_reason: tuple[tuple[str, int], ...]


def fetch_activity(store: Store, database: str, report: ProgressReport) -> Activity:
    scope = {"school_year": report.school_year, "grades": list(report.grades)}
    hours = queries.RECORDS_BY_HOUR.run(store, database, scope)
    dead = queries.DEAD_LETTERS_BY_REASON.run(store, database)
    return Activity(
        tuple((r["hour"], int(r["records"])) for r in hours),
        tuple((str(r["code"]), int(r["messages"])) for r in dead),
    )


def _school_year(store: Store, database: str, asked: str | None) -> str:
    """`asked` if the store knows it, else the latest year with records landed (a year
    with only planned enrolment loaded ahead would otherwise show as 0 %)."""
    years = queries.SCHOOL_YEARS.run(store, database)
    if not years:
        raise LookupError(
            "no records and no expected enrolment in the store yet: land records or load "
            "reference data first"
        )
    known = [str(r["school_year"]) for r in years]
    if asked is None:
        landed = [str(r["school_year"]) for r in years if r["landed"]]
        return (landed or known)[-1]
    if asked not in known:
        raise LookupError(
            f"no records or expected enrolment for {asked}: the store has {', '.join(known)}"
        )
    return asked


def fetch_report(
    store: Store,
    database: str,
    school_year: str | None = None,
    grades: Sequence[int] = (),
) -> ProgressReport:
    """The report for `school_year` (default: the latest with records) and `grades`
    (default: every grade with expected enrolment that year). Raises LookupError on an
    empty store, a year it does not know, and grades without expected enrolment: their
    records would count against nothing, and coverage could pass 100 %."""
    year = _school_year(store, database, school_year)
    year_only = {"school_year": year}
    planned = [int(r["grade"]) for r in queries.EXPECTED_GRADES.run(store, database, year_only)]
    unplanned = sorted(set(grades) - set(planned)) if planned else []
    if unplanned:
        raise LookupError(
            f"no expected enrolment for grade {', '.join(map(str, unplanned))} in {year}: "
            f"choose among grades {', '.join(map(str, planned))}"
        )
    chosen = list(grades) or planned or list(GRADES)
    scope = {"school_year": year, "grades": chosen}
    return build_report(
        year,
        chosen,
        queries.DEPARTMENTS.run(store, database, year_only),
        queries.COVERAGE_CELLS.run(store, database, scope),
        (str(r["sender_code"]) for r in queries.SENDERS.run(store, database, scope)),
        queries.PROVINCES.run(store, database),
    )
