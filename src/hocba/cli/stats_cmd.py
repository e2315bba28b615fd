"""`hocba stats`: the Ministry's national progress report from the store, for people or scripts."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from dataclasses import fields, replace
from datetime import datetime

import typer
from rich.table import Table

from hocba.cli.errors import UserError, friendly
from hocba.cli.runtime import load_settings
from hocba.cli.tables import print_whole
from hocba.pipeline.validate import school_year_problem
from hocba.settings import Settings
from hocba.stats.report import (
    NATIONAL_HEADINGS,
    Breakdown,
    BreakdownRow,
    DepartmentProgress,
    ProgressReport,
    SortKey,
    breakdown,
    fetch_report,
    sort_departments,
)
from hocba.store.base import Store, StoreLockedError
from hocba.store.factory import open_store
from hocba.store.remote import WorkerStore, worker_holding


def _school_year(value: str | None) -> str | None:
    problem = None if value is None else school_year_problem(value)
    if problem is not None:
        raise typer.BadParameter(f"{problem}, e.g. 2023-2024")
    return value


SCHOOL_YEAR_OPTION = typer.Option(
    None,
    "--school-year",
    help="e.g. 2023-2024 (default: the latest with records landed)",
    callback=_school_year,
)
GRADE_OPTION = typer.Option(
    [],
    "--grade",
    "-g",
    min=1,
    max=12,
    help="repeat for several (default: every grade with expected enrolment)",
)


def open_for_reading(settings: Settings) -> Store:
    """The store; if a running worker owns the chDB store, the same store through the
    worker's HTTP port (it answers read-only queries on loopback); else one line why not."""
    if settings.clickhouse_url is None and not settings.chdb_path.is_dir():
        demo = settings.data_dir / "demo"
        if (demo / "chdb").is_dir():  # `hocba demo` keeps its state apart from a worker's
            raise UserError(
                f"no store at {settings.chdb_path}; `hocba demo` left its store in {demo}: "
                f"HOCBA_DATA_DIR={demo} hocba stats"
            )
        raise UserError(
            f"no store at {settings.chdb_path} (HOCBA_DATA_DIR): run `hocba worker` or "
            "`hocba demo` there first, or set HOCBA_CLICKHOUSE_URL"
        )
    try:
        return open_store(settings)
    except StoreLockedError:
        worker = f"http://127.0.0.1:{settings.web_port}"
        if worker_holding(worker, settings.chdb_path):
            return WorkerStore(worker)
        raise UserError(
            f"the chDB store {settings.chdb_path} is held by another process, and no worker "
            f"holding it answers on HOCBA_WEB_PORT {settings.web_port}: set that variable to "
            "the port of the worker that holds it, or stop that process and re-run, or share "
            "a ClickHouse server between workers and analysts (HOCBA_CLICKHOUSE_URL)"
        ) from None


def load_report(
    settings: Settings, school_year: str | None, grades: Sequence[int]
) -> ProgressReport:
    store = open_for_reading(settings)
    try:
        return fetch_report(store, settings.database, school_year, grades)
    except LookupError as exc:
        raise UserError(str(exc)) from None
    finally:
        store.close()


@friendly
def stats(
    school_year: str | None = SCHOOL_YEAR_OPTION,
    grade: list[int] = GRADE_OPTION,
    by: Breakdown | None = typer.Option(None, "--by", help="also break coverage down by this"),
    sort: SortKey = typer.Option(SortKey.CODE, "--sort", help="order of the Department rows"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    as_csv: bool = typer.Option(False, "--csv", help="print CSV (Departments, or the --by rows)"),
) -> None:
    """The national progress report: Departments registered, with an approved certificate,
    sending; records received; coverage of expected enrolment — nationally and per Department.

    Every figure counts each record once (latest revision). Example:

        hocba stats --school-year 2023-2024 -g 1 -g 2 -g 3 -g 4 --sort coverage

    Reads HOCBA_CLICKHOUSE_URL, or the chDB store under HOCBA_DATA_DIR. chDB has one owner:
    while a worker holds the store, the report is asked of that worker on HOCBA_WEB_PORT.
    """
    if as_json and as_csv:
        raise UserError("--json and --csv are two output formats: give one of them")
    report = load_report(load_settings(), school_year, grade)
    rows = breakdown(report, by) if by else ()
    departments = sort_departments(report.departments, sort)
    if as_json:
        extra = {"breakdown": [vars_of(r) for r in rows]} if by else {}
        ordered = replace(report, departments=tuple(departments)).to_json()
        typer.echo(json.dumps(ordered | extra, ensure_ascii=False))
    elif as_csv:
        _print_csv(departments, rows)
    else:
        print_report(report, departments, rows, by)


def vars_of(row: BreakdownRow) -> dict[str, object]:
    return {f.name: getattr(row, f.name) for f in fields(row)}


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} %"


def _yes(flag: bool) -> str:
    return "yes" if flag else "[red]no[/]"


def print_report(
    report: ProgressReport,
    departments: Sequence[DepartmentProgress],
    rows: Sequence[BreakdownRow],
    by: Breakdown | None,
) -> None:
    """The national line, then the --by rows if asked, else one row per Department."""
    n = report.national
    grades = ", ".join(str(g) for g in report.grades)
    national = Table(
        *NATIONAL_HEADINGS,
        title=f"National progress, {report.school_year}, grades {grades}",
    )
    national.add_row(
        str(n.departments_total),
        str(n.departments_registered),
        str(n.departments_with_approved_certificate),
        str(n.departments_sending),
        f"{n.records:,}",
        f"{n.expected:,}",
        _pct(n.coverage_pct),
        style="bold",
    )
    if by:
        table = Table(by.value, "name", "records", "expected", "coverage", title=f"By {by.value}")
        for row in rows:
            table.add_row(
                row.key, row.name, f"{row.records:,}", f"{row.expected:,}", _pct(row.coverage_pct)
            )
        print_whole(national, table)
        return
    table = Table(*_DEPARTMENT_HEAD, title="By Department")
    for d in departments:
        landed = d.last_landed_at.strftime("%Y-%m-%d %H:%M") if d.last_landed_at else "–"
        table.add_row(
            d.code,
            d.name,
            _yes(d.account_registered),
            _yes(d.certificate_approved),
            _yes(d.sending),
            f"{d.records:,}",
            f"{d.expected:,}",
            _pct(d.coverage_pct),
            landed,
        )
    print_whole(national, table)


_DEPARTMENT_HEAD = (
    "Department",
    "name",
    "account",
    "certificate",
    "sending",
    "records",
    "expected",
    "coverage",
    "last landed (UTC)",
)


def _csv_value(value: object) -> object:
    """As `--json` spells it, so a spreadsheet or `clickhouse-local` reads the same values:
    `true`/`false` rather than Python's `True`, ISO 8601 times, an empty cell for none."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _print_csv(departments: Sequence[DepartmentProgress], rows: Sequence[BreakdownRow]) -> None:
    """The --by rows when asked, else one row per Department (the national line is --json)."""
    out = csv.writer(sys.stdout, lineterminator="\n")
    table: Sequence[BreakdownRow | DepartmentProgress] = rows or departments
    names = [f.name for f in fields(BreakdownRow if rows else DepartmentProgress)]
    out.writerow(names)
    out.writerows([_csv_value(getattr(item, name)) for name in names] for item in table)
