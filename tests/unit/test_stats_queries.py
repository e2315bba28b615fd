"""The statistics layer without a database: SQL text, report arithmetic, HTML."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hocba.domain.columns import RECORD_COLUMNS
from hocba.stats import queries
from hocba.stats.html import coverage_chart, render_report, time_points
from hocba.stats.report import (
    Activity,
    Breakdown,
    SortKey,
    breakdown,
    build_report,
    coverage_pct,
    sort_departments,
)
from hocba.stats.views import view_statements

DOCS = Path(__file__).parents[2] / "docs" / "analysts.md"
LANDED = datetime(2024, 6, 1, 9, tzinfo=UTC)


def test_coverage_is_two_decimals_half_up() -> None:
    assert coverage_pct(4_241_906, 7_100_388) == 59.74  # the pilot's numbers
    assert coverage_pct(1, 800) == 0.13  # 0.125: float rounding would give 0.12
    assert coverage_pct(2, 3) == 66.67
    assert coverage_pct(5, 0) is None


def test_named_queries_render_for_any_database() -> None:
    named = [q for q in vars(queries).values() if isinstance(q, queries.NamedQuery)]
    assert len(named) >= 8
    for query in named:
        sql = query.sql.replace("{db}", "`x`")
        assert "{db}" not in sql and "`x`." in sql
        assert set(re.findall(r"\{(\w+):", sql)) <= {"school_year", "grades"}


def test_views_are_idempotent_ddl_in_the_database() -> None:
    statements = view_statements("hocba_t")
    assert len(statements) == 7
    for sql in statements:
        assert re.match(r"CREATE (TABLE|MATERIALIZED VIEW|VIEW) IF NOT EXISTS `hocba_t`\.", sql)
        assert "{db}" not in sql


def cell(p2024: str, p2025: str, grade: int, records: int, expected: int) -> dict[str, Any]:
    return {
        "province_code_2024": p2024,
        "province_code_2025": p2025,
        "grade": grade,
        "records": records,
        "expected": expected,
        "last_landed_at": LANDED if records else None,
    }


def department(code: str, edition: int, province: str, **flags: bool) -> dict[str, Any]:
    return {
        "code": code,
        "name": f"Sở <{code}>",
        "edition": edition,
        "province_code": province,
        "account_registered": flags.get("registered", True),
        "certificate_approved": flags.get("approved", False),
    }


CELLS = [
    cell("79", "79", 1, 30, 40),  # TP.HCM
    cell("74", "79", 1, 10, 20),  # Bình Dương, merged into TP.HCM since 1 July 2025
    cell("74", "79", 6, 5, 10),
    cell("01", "01", 12, 0, 7),
]


def test_a_2025_department_covers_the_former_provinces_merged_into_it() -> None:
    report = build_report(
        "2025-2026",
        [1, 6, 12],
        [
            department("SGD-2025-79", 2025, "79", approved=True),
            department("SGD-2025-01", 2025, "01"),
        ],
        CELLS,
        ["SGD-2025-79", "SGD-9999-00"],
    )
    hcm, hanoi = report.departments
    assert (hcm.records, hcm.expected, hcm.coverage_pct, hcm.sending) == (45, 70, 64.29, True)
    assert (hanoi.records, hanoi.expected, hanoi.coverage_pct, hanoi.sending) == (0, 7, 0.0, False)
    assert hanoi.last_landed_at is None and hcm.last_landed_at == LANDED
    n = report.national
    assert (n.departments_total, n.departments_with_approved_certificate) == (2, 1)
    assert (n.departments_sending, n.records, n.expected, n.coverage_pct) == (1, 45, 77, 58.44)


def test_breakdowns_add_up_and_sort_in_school_order() -> None:
    provinces = [{"edition": 2024, "code": "74", "name": "Bình Dương"}]
    report = build_report("2024-2025", [1, 6, 12], [], CELLS, [], provinces)
    level = breakdown(report, Breakdown.LEVEL)
    assert [(r.key, r.name, r.records, r.expected) for r in level] == [
        ("02", "PRIMARY", 40, 60),
        ("03", "LOWER_SECONDARY", 5, 10),
        ("04", "UPPER_SECONDARY", 0, 7),
    ]
    former = {r.key: (r.name, r.records) for r in breakdown(report, Breakdown.PROVINCE)}
    assert former["74"] == ("Bình Dương", 15)
    current = breakdown(report, Breakdown.PROVINCE_2025)
    assert [(r.key, r.records, r.expected) for r in current] == [("01", 0, 7), ("79", 45, 70)]
    assert [r.key for r in breakdown(report, Breakdown.GRADE)] == ["01", "06", "12"]


def test_departments_sort_by_figures_descending_then_code() -> None:
    rows = [
        department("SGD-2024-01", 2024, "01"),
        department("SGD-2024-74", 2024, "74"),
        department("SGD-2024-79", 2024, "79"),
    ]
    report = build_report("2023-2024", [1, 6, 12], rows, CELLS, [])
    by_coverage = sort_departments(report.departments, SortKey.COVERAGE)
    assert [d.code for d in by_coverage] == ["SGD-2024-79", "SGD-2024-74", "SGD-2024-01"]
    by_code = sort_departments(list(reversed(report.departments)), SortKey.CODE)
    assert [d.code for d in by_code] == ["SGD-2024-01", "SGD-2024-74", "SGD-2024-79"]


def test_names_sort_as_a_vietnamese_reader_expects() -> None:
    names = ["Sở GD&ĐT Đồng Nai", "Sở GD&ĐT Bình Định", "Sở GD&ĐT Yên Bái", "Sở GD&ĐT Bạc Liêu"]
    rows = [
        dict(department(f"SGD-2024-{n:02}", 2024, "01"), name=name) for n, name in enumerate(names)
    ]
    report = build_report("2023-2024", [1], rows, [], [])
    by_name = sort_departments(report.departments, SortKey.NAME)
    assert [d.name.removeprefix("Sở GD&ĐT ") for d in by_name] == [
        "Bạc Liêu",
        "Bình Định",
        "Đồng Nai",  # with D, not after Y as in code-point order
        "Yên Bái",
    ]


def test_the_coverage_chart_speaks_the_edition_of_the_years_departments() -> None:
    """Codes collide across editions (24: Bắc Giang, then Bắc Ninh): a 2025-2026 chart of the
    63 former provinces beside a table of the 34 showed one code with two names."""
    provinces = [
        {"edition": 2024, "code": "74", "name": "Bình Dương"},
        {"edition": 2024, "code": "79", "name": "TP. Hồ Chí Minh"},
        {"edition": 2025, "code": "79", "name": "TP. Hồ Chí Minh"},
    ]
    year_of_the_34 = build_report(
        "2025-2026", [1], [department("SGD-2025-79", 2025, "79")], CELLS[:2], [], provinces
    )
    chart = coverage_chart(year_of_the_34).svg
    assert "the 34 provinces" in chart and "Bình Dương" not in chart
    assert "66.67 % (40 / 60)" in chart  # 79 with the merged 74: (30 + 10) / (40 + 20)
    year_of_the_63 = build_report(
        "2023-2024", [1], [department("SGD-2024-79", 2024, "79")], CELLS[:2], [], provinces
    )
    assert "Bình Dương" in coverage_chart(year_of_the_63).svg


def test_html_is_self_contained_and_escaped() -> None:
    report = build_report("2023-2024", [1], [department("SGD-2024-79", 2024, "79")], CELLS[:1], [])
    activity = Activity(((LANDED, 30),), (("decode.not_avro", 2),))
    text = render_report(report, activity, LANDED)
    assert not re.search(r"https?:|src=|<script|<link", text)
    assert text.count("<svg") == 3
    assert "Sở &lt;SGD-2024-79&gt;" in text and "<SGD-2024-79>" not in text
    assert "decode.not_avro" in text and "46.15 %" not in text and "75.00 %" in text


def test_records_over_time_fall_back_to_days() -> None:
    hours = [(datetime(2024, 6, 1 + h // 24, h % 24, tzinfo=UTC), 1) for h in range(100)]
    assert time_points(hours[:3])[0] == ("06-01 00:00", 1)
    assert time_points(hours) == [
        ("2024-06-01", 24),
        ("2024-06-02", 24),
        ("2024-06-03", 24),
        ("2024-06-04", 24),
        ("2024-06-05", 4),
    ]


@pytest.mark.parametrize("name", [name for name, _ in RECORD_COLUMNS])
def test_analyst_docs_describe_every_records_column(name: str) -> None:
    assert f"| `{name}` |" in DOCS.read_text(encoding="utf-8")
