"""The national progress report against a real chDB store loaded with a known set.

Rows go straight into the store (no broker: what is tested is the SQL), with the things that
break naive counting mixed in: a whole batch landed twice (the same block), some records
landed again in another block, and corrections (higher revision, changed result, one from
another sender). Nothing is OPTIMIZEd.
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hocba.cli.main import app
from hocba.reference.loader import default_departments
from hocba.reference.model import ExpectedEnrollment, ReferenceData
from hocba.reference.provinces import former_to_current, provinces_2024, provinces_2025
from hocba.reference.tables import reference_tables
from hocba.stats.html import coverage_chart
from hocba.stats.report import ProgressReport, fetch_report
from hocba.stats.screenshot import find_chromium, screenshot
from hocba.store.chdb_store import ChdbStore
from hocba.store.server_store import ServerStore
from tests.integration.harness import chdb_held
from tests.integration.test_store import land, record

pytestmark = pytest.mark.integration

YEAR, OLD_YEAR = "2023-2024", "2022-2023"
T0 = datetime(2024, 6, 3, 8, 0, tzinfo=UTC)
DATABASE = "hocba_stats"
ROOT = Path(__file__).parents[2]
DOCS = ROOT / "docs" / "analysts.md"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "hocba.json"
GRAFANA_MACROS = {  # what the ClickHouse plugin expands them to, near enough to run the SQL
    r"\$__timeInterval\((\w+)\)": r"toStartOfMinute(\1)",
    r"\$__timeFilter\((\w+)\)": r"\1 > now() - INTERVAL 10 YEAR",
    r"\$\{school_year\}": YEAR,
}
# (province, grade) -> distinct records landed in YEAR; expected enrolment below (none for
# grade 9: its records are outside every figure, and Đà Nẵng (48) sent only those).
LANDED = {("01", 1): 7, ("01", 2): 5, ("79", 3): 4, ("31", 4): 3, ("31", 6): 2, ("48", 9): 2}
EXPECTED = {("01", 1): 10, ("01", 2): 10, ("79", 3): 3200, ("31", 4): 4, ("31", 6): 5, ("48", 5): 8}


def row(province: str, grade: int, n: int, **changes: Any) -> dict[str, Any]:
    level = "PRIMARY" if grade <= 5 else "LOWER_SECONDARY"
    base = record(f"{province}-{grade}-{n}") | {
        "school_year": YEAR,
        "school_code": f"{province}000001",
        "grade": grade,
        "level": level,
        "province_code_2024": province,
        "province_code_2025": former_to_current()[province],
        "sender_code": f"SGD-2024-{province}",
        "learning_result": "HOAN_THANH",
        "landed_at": T0 + timedelta(hours=n),
    }
    return base | changes


def reference() -> ReferenceData:
    departments = [
        replace(
            d,
            account_registered=d.province_code != "96",
            certificate_approved=d.province_code in {"01", "79", "31", "48"},
        )
        for d in default_departments(2024)
    ]
    expected = [ExpectedEnrollment(p, YEAR, g, n) for (p, g), n in EXPECTED.items()]
    return ReferenceData(
        provinces_2024=provinces_2024(),
        provinces_2025=provinces_2025(),
        former_to_current=former_to_current(),
        departments={d.code: d for d in [*departments, *default_departments(2025)]},
        expected_enrollment=(*expected, ExpectedEnrollment("01", OLD_YEAR, 1, 3)),
    )


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    data_dir = tmp_path_factory.mktemp("stats")
    store = ChdbStore(data_dir / "chdb", DATABASE)
    try:
        store.ensure_schema()
        for name, table in reference_tables(reference()).items():
            store.replace_reference(name, table)
        rows = [row(p, g, n) for (p, g), count in LANDED.items() for n in range(count)]
        land(store, rows)
        land(store, rows)  # the same block again: dropped by ClickHouse
        again = [r for r in rows if r["province_code_2024"] == "01" and r["grade"] == 1][:3]
        land(store, again)  # landed twice: another block, only FINAL/uniq collapse it
        corrections = [
            row("79", 3, 0, revision=2, learning_result="HOAN_THANH_TOT", content_hash="c0"),
            row(
                "79",
                3,
                1,
                revision=2,
                learning_result="HOAN_THANH_TOT",
                content_hash="c1",
                sender_code="SGD-2025-79",
                landed_at=T0 + timedelta(days=2),
            ),
        ]
        land(store, corrections)
        land(store, [row("01", 1, 99, school_year=OLD_YEAR)])
        yield data_dir
    finally:
        store.close()


@pytest.fixture(scope="module")
def store(store_dir: Path) -> Iterator[ChdbStore]:
    opened = ChdbStore(store_dir / "chdb", DATABASE)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def report(store: ChdbStore) -> ProgressReport:
    return fetch_report(store, DATABASE)


def test_duplicates_are_physically_there(store: ChdbStore) -> None:
    raw = store.query(f"SELECT count() AS n FROM {DATABASE}.records WHERE school_year = '{YEAR}'")
    assert raw[0]["n"] == 21 + 3 + 2 + 2  # the figures below count 21: not the re-landed
    # copies (3), the superseded revisions (2), nor grade 9's records (2, no enrolment known)


def test_national_line(report: ProgressReport) -> None:
    assert report.school_year == YEAR  # the latest present
    assert report.grades == (1, 2, 3, 4, 5, 6)  # those with expected enrolment in YEAR
    n = report.national
    assert (n.departments_total, n.departments_registered) == (63, 62)
    assert (n.departments_with_approved_certificate, n.departments_sending) == (4, 3)
    assert (n.records, n.expected) == (21, 3237)
    assert n.coverage_pct == 0.65  # 21 / 3237 = 0.6487…


def test_every_department(report: ProgressReport) -> None:
    got = {d.code: (d.sending, d.records, d.expected, d.coverage_pct) for d in report.departments}
    assert got.pop("SGD-2024-01") == (True, 12, 20, 60.0)
    assert got.pop("SGD-2024-79") == (True, 4, 3200, 0.13)  # 0.125 rounds half up
    assert got.pop("SGD-2024-31") == (True, 5, 9, 55.56)
    assert got.pop("SGD-2024-48") == (False, 0, 8, 0.0)
    assert set(got.values()) == {(False, 0, 0, None)}
    last = {d.code: d.last_landed_at for d in report.departments}
    assert last["SGD-2024-79"] == T0 + timedelta(days=2)


def test_grade_filter_and_other_year(store: ChdbStore) -> None:
    primary = fetch_report(store, DATABASE, YEAR, [1, 2, 3, 4, 5])
    assert (primary.national.records, primary.national.expected) == (19, 3232)
    assert primary.national.coverage_pct == 0.59
    by_code = {d.code: d for d in primary.departments}
    assert (by_code["SGD-2024-31"].records, by_code["SGD-2024-31"].coverage_pct) == (3, 75.0)
    old = fetch_report(store, DATABASE, OLD_YEAR)
    assert (old.national.records, old.national.expected, old.national.coverage_pct) == (1, 3, 33.33)
    assert old.national.departments_sending == 1


def test_views_agree_with_the_report(store: ChdbStore, report: ProgressReport) -> None:
    [view] = store.query(f"SELECT * FROM {DATABASE}.national_progress WHERE school_year = '{YEAR}'")
    national = report.to_json()["national"]
    assert {
        k: float(v) if k == "coverage_pct" else v for k, v in view.items() if k in national
    } == national
    [cell] = store.query(
        f"SELECT coverage_pct FROM {DATABASE}.coverage WHERE province_code_2024 = '79'"
    )
    assert float(cell["coverage_pct"]) == 0.13


def test_outcomes_use_the_latest_revision(store: ChdbStore) -> None:
    rows = store.query(
        f"SELECT learning_result, sum(records) AS n FROM {DATABASE}.outcomes"
        " WHERE province_code_2024 = '79' GROUP BY learning_result ORDER BY learning_result"
    )
    assert [(r["learning_result"], r["n"]) for r in rows] == [
        ("HOAN_THANH", 2),
        ("HOAN_THANH_TOT", 2),
    ]


def test_same_sql_through_the_server_client(store_dir: Path, report: ProgressReport) -> None:
    client = ServerStore(f"chdb://{store_dir / 'chdb'}", DATABASE)
    try:
        assert fetch_report(client, DATABASE) == report
    finally:
        client.close()


def test_analyst_docs_sql_runs(store: ChdbStore) -> None:
    blocks = re.findall(r"```sql\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 6
    for sql in blocks:
        store.query(sql.replace("hocba.", f"{DATABASE}."))


def test_freshness_has_nulls_for_a_department_that_never_landed(store: ChdbStore) -> None:
    blocks = re.findall(r"```sql\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    [sql] = [b for b in blocks if "hocba.freshness" in b]
    rows = store.query(sql.replace("hocba.", f"{DATABASE}."))
    by_code = {r["code"]: r for r in rows}
    assert len(rows) == 63
    silent = by_code["SGD-2024-96"]  # registered nowhere, sent nothing
    assert (silent["records"], silent["last_landed_at"], silent["hours_since"]) == (None,) * 3
    assert by_code["SGD-2024-01"]["records"] == 7 + 5
    assert by_code["SGD-2024-01"]["hours_since"] > 0
    assert rows[0]["last_landed_at"] is None  # silent ones first


def test_grafana_dashboard_sql_runs(store: ChdbStore) -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    sqls = [t["rawSql"] for p in dashboard["panels"] for t in p["targets"]]
    sqls += [v["query"] for v in dashboard["templating"]["list"]]
    assert len(sqls) >= 7
    for sql in sqls:
        for macro, expansion in GRAFANA_MACROS.items():
            sql = re.sub(macro, expansion, sql)
        store.query(sql.replace("hocba.", f"{DATABASE}."))


def cli(store_dir: Path, *args: str) -> Any:
    env = {"HOCBA_DATA_DIR": str(store_dir), "HOCBA_DATABASE": DATABASE}
    return CliRunner().invoke(app, list(args), env=env)


def test_stats_json_is_one_object(store_dir: Path, store: ChdbStore) -> None:
    result = cli(store_dir, "stats", "--json", "--by", "level")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["national"]["coverage_pct"] == 0.65
    assert len(data["departments"]) == 63
    assert [(b["key"], b["records"]) for b in data["breakdown"]] == [("02", 19), ("03", 2)]


def test_stats_csv_has_one_row_per_department(store_dir: Path, store: ChdbStore) -> None:
    result = cli(store_dir, "stats", "--csv", "--sort", "coverage")
    lines = result.stdout.splitlines()
    assert lines[0].startswith("code,name,")
    assert len(lines) == 64 and lines[1].startswith("SGD-2024-01,")  # 60 % is the highest
    first = dict(zip(lines[0].split(","), lines[1].split(","), strict=True))
    assert (first["account_registered"], first["sending"]) == ("true", "true")
    assert first["last_landed_at"] == "2024-06-03T14:00:00+00:00"  # as --json writes it


def test_stats_json_follows_the_sort_too(store_dir: Path, store: ChdbStore) -> None:
    by_code = json.loads(cli(store_dir, "stats", "--json").stdout)["departments"]
    by_coverage = json.loads(cli(store_dir, "stats", "--json", "--sort", "coverage").stdout)
    codes = [d["code"] for d in by_code]
    assert codes == sorted(codes)
    coverage = [d["coverage_pct"] or 0 for d in by_coverage["departments"]]  # none counts as 0
    assert coverage[0] == 60.0 and coverage == sorted(coverage, reverse=True)


def test_stats_prints_department_codes_whole_in_80_columns(store_dir: Path) -> None:
    env = {"HOCBA_DATA_DIR": str(store_dir), "HOCBA_DATABASE": DATABASE, "COLUMNS": "80"}
    result = CliRunner().invoke(app, ["stats"], env=env)  # in-process: this one holds chDB
    assert result.exit_code == 0, result.output
    assert "…" not in result.stdout
    codes = re.findall(r"│ (SGD-\d{4}-\d{2}) +│", result.stdout)
    assert len(codes) == 63 and "SGD-2024-96" in codes


def test_stats_without_a_store_says_so_and_creates_none(tmp_path: Path) -> None:
    result = cli(tmp_path, "stats")
    assert result.exit_code == 2
    assert "no store at" in result.stderr and "HOCBA_DATA_DIR" in result.stderr
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "demo" / "chdb").mkdir(parents=True)  # what `hocba demo` leaves
    result = cli(tmp_path, "stats")
    assert result.exit_code == 2
    assert f"HOCBA_DATA_DIR={tmp_path / 'demo'} hocba stats" in " ".join(result.stderr.split())


def test_stats_on_a_locked_store_says_what_to_do(tmp_path: Path) -> None:
    with chdb_held(tmp_path / "chdb"):
        done = subprocess.run(
            [sys.executable, "-m", "hocba.cli.main", "stats"],
            env={"HOCBA_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", "COLUMNS": "400"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    [ours] = done.stderr.splitlines()  # one line: chDB is not asked, so it prints nothing
    assert ours.startswith("error:")
    assert "held by another process" in ours and "stop that process and re-run" in ours


def test_html_report_is_self_contained(store_dir: Path, store: ChdbStore, tmp_path: Path) -> None:
    html = tmp_path / "report.html"
    result = cli(store_dir, "report", "--html", str(html))
    assert result.exit_code == 0, result.output
    text = html.read_text(encoding="utf-8")
    assert not re.search(r"https?:|src=|<link|<script", text)
    assert text.count("<svg") == 3 and "Sở GD&amp;ĐT Hà Nội" in text
    assert "HOAN_THANH" not in text and "verify." not in text  # no dead letters in this set


def non_white_pixels(png: bytes) -> tuple[int, int]:
    """(non-white pixels, all pixels) of an 8-bit RGB/RGBA PNG: a tiny reader, no Pillow."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(png):
        (length,), kind = struct.unpack(">I", png[pos : pos + 4]), png[pos + 4 : pos + 8]
        data = png[pos + 8 : pos + 8 + length]
        header = data if kind == b"IHDR" else header
        idat += data if kind == b"IDAT" else b""
        pos += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and color in (2, 6)
    bpp = 3 if color == 2 else 4
    stride = width * bpp
    raw, prev, count = zlib.decompress(idat), bytearray(stride), 0
    for y in range(height):
        kind, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        count += sum(1 for x in range(0, stride, bpp) if min(line[x : x + 3]) < 240)
        prev = line
    return count, width * height


needs_chromium = pytest.mark.skipif(
    find_chromium() is None, reason="Chromium not installed: PNG and screenshot not tested"
)


@needs_chromium
def test_html_report_renders_in_chromium(store_dir: Path, store: ChdbStore, tmp_path: Path) -> None:
    html, png = tmp_path / "report.html", tmp_path / "coverage.png"
    result = cli(store_dir, "report", "--html", str(html), "--png", str(png))
    assert result.exit_code == 0, result.output
    chart = coverage_chart(fetch_report(store, DATABASE))
    drawn, total = non_white_pixels(png.read_bytes())
    assert total == chart.width * chart.height
    assert drawn > total * 0.01  # bars and labels, not a blank page
    page = tmp_path / "page.png"
    screenshot(html, page, 900, 700, find_chromium() or "")
    drawn, total = non_white_pixels(page.read_bytes())
    assert drawn > total * 0.01


def test_a_school_year_the_store_does_not_know_is_refused(store_dir: Path) -> None:
    """A mistyped year must not read as a real one with nothing in it."""
    result = cli(store_dir, "stats", "--school-year", "2030-2031")
    assert result.exit_code == 2
    assert f"no records or expected enrolment for 2030-2031: the store has {OLD_YEAR}" in (
        " ".join(result.stderr.split())
    )


def test_grades_without_expected_enrolment_are_refused(store_dir: Path, store: ChdbStore) -> None:
    """Their records would count against nothing: coverage could pass 100 %."""
    planned = {
        r["grade"]
        for r in store.query(
            f"SELECT DISTINCT grade FROM {DATABASE}.expected_enrollment"
            f" WHERE school_year = '{YEAR}'"
        )
    }
    unplanned = min(set(range(1, 13)) - planned)
    result = cli(store_dir, "stats", "--school-year", YEAR, "-g", "1", "-g", str(unplanned))
    assert result.exit_code == 2
    assert f"no expected enrolment for grade {unplanned} in {YEAR}" in result.stderr
