"""`hocba report`: the national progress report as one self-contained HTML file (and a PNG)."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console

from hocba.cli.errors import UserError, friendly
from hocba.cli.runtime import load_settings
from hocba.cli.stats_cmd import GRADE_OPTION, SCHOOL_YEAR_OPTION, load_report, open_for_reading
from hocba.stats.html import chart_page, coverage_chart, render_report
from hocba.stats.report import ProgressReport, fetch_activity
from hocba.stats.screenshot import find_chromium, screenshot


@friendly
def report(
    html: Path = typer.Option(..., "--html", help="HTML file to write", dir_okay=False),
    png: Path | None = typer.Option(
        None, "--png", help="also a PNG of the coverage chart (needs Chromium)", dir_okay=False
    ),
    school_year: str | None = SCHOOL_YEAR_OPTION,
    grade: list[int] = GRADE_OPTION,
) -> None:
    """Write the national progress report as one HTML file that opens offline: national
    figures, coverage by province, records landed over time, dead letters by reason, and
    one row per Department.

    Example:

        hocba report --html progress.html --png coverage.png --school-year 2023-2024

    The PNG is taken by headless Chromium (`chromium` on PATH).
    """
    settings = load_settings()
    progress = load_report(settings, school_year, grade)
    store = open_for_reading(settings)
    try:
        activity = fetch_activity(store, settings.database, progress)
    finally:
        store.close()
    html.write_text(render_report(progress, activity, datetime.now(UTC)), encoding="utf-8")
    console = Console(stderr=True)
    console.print(f"wrote {html}")
    if png is not None:
        write_png(progress, png)
        console.print(f"wrote {png}")


def write_png(progress: ProgressReport, png: Path) -> None:
    chromium = find_chromium()
    if chromium is None:
        raise UserError("--png needs Chromium on PATH (e.g. `apt-get install chromium`)")
    chart = coverage_chart(progress)
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "chart.html"
        page.write_text(chart_page(chart), encoding="utf-8")
        screenshot(page, png, chart.width, chart.height, chromium)
