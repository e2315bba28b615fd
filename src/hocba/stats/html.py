"""The self-contained HTML report: inline CSS and SVG only, no script, no URL of any kind.

It is mailed to steering-committee members and opened on machines without internet, so
everything it shows is inside the one file; a second, chart-only page is what a headless
browser turns into the PNG.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from hocba.stats.report import NATIONAL_HEADINGS, Activity, Breakdown, ProgressReport, breakdown
from hocba.stats.svg import Bar, Chart, column_chart, hbar_chart

MAX_HOURLY_BUCKETS = 72  # beyond three days of hours, records over time are shown per day
CHART_WIDTH = 900
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #1d2733; }
table { border-collapse: collapse; margin: 12px 0 24px; }
th, td { border-bottom: 1px solid #dde3ea; padding: 3px 10px; text-align: right; }
th:first-child, td:first-child, td.text { text-align: left; }
tr.national td { font-weight: bold; border-top: 2px solid #1d2733; }
"""


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} %"


def _color(pct: float | None) -> str:
    if pct is None or pct < 50:
        return "#c8553d"
    return "#e0a526" if pct < 80 else "#3c8d5a"


def coverage_chart(report: ProgressReport) -> Chart:
    """The main chart: coverage of expected enrolment by province of the edition whose
    Departments report the year: the 63 former provinces up to 2024-2025, the 34 current
    ones after. The other edition's codes collide (24 is Bắc Giang in one, Bắc Ninh in the
    other), so the chart must speak the table's edition."""
    current = any(d.edition == 2025 for d in report.departments)  # the 34 provinces
    by = Breakdown.PROVINCE_2025 if current else Breakdown.PROVINCE
    bars = [
        Bar(
            f"{row.key} {row.name}",
            row.coverage_pct or 0.0,
            f"{_pct(row.coverage_pct)} ({row.records:,} / {row.expected:,})",
            _color(row.coverage_pct),
        )
        for row in breakdown(report, by)
    ]
    grades = ", ".join(str(g) for g in report.grades)
    provinces = "the 34 provinces" if current else "the 63 former provinces"
    title = f"Coverage by province ({provinces}), {report.school_year}, grades {grades}"
    return hbar_chart(title, bars, max_value=100.0, width=CHART_WIDTH)


def time_points(hours: Sequence[tuple[datetime, int]]) -> list[tuple[str, int]]:
    if len(hours) <= MAX_HOURLY_BUCKETS:
        return [(h.strftime("%m-%d %H:00"), n) for h, n in hours]
    days: dict[str, int] = {}
    for hour, n in hours:
        day = hour.strftime("%Y-%m-%d")
        days[day] = days.get(day, 0) + n
    return list(days.items())


def _national_table(report: ProgressReport) -> str:
    n = report.national
    cells = (
        f"{n.departments_total}",
        f"{n.departments_registered}",
        f"{n.departments_with_approved_certificate}",
        f"{n.departments_sending}",
        f"{n.records:,}",
        f"{n.expected:,}",
        _pct(n.coverage_pct),
    )
    head = NATIONAL_HEADINGS
    return (
        "<table><tr>"
        + "".join(f"<th>{h}</th>" for h in head)
        + "</tr><tr>"
        + "".join(f"<td>{c}</td>" for c in cells)
        + "</tr></table>"
    )


def _department_table(report: ProgressReport) -> str:
    head = "<tr><th>Department</th><th>name</th><th>account</th><th>certificate</th>"
    head += "<th>sending</th><th>records</th><th>expected</th><th>coverage</th></tr>"
    rows = [
        f"<tr><td>{escape(d.code)}</td><td class='text'>{escape(d.name)}</td>"
        f"<td>{'yes' if d.account_registered else 'no'}</td>"
        f"<td>{'yes' if d.certificate_approved else 'no'}</td>"
        f"<td>{'yes' if d.sending else 'no'}</td><td>{d.records:,}</td>"
        f"<td>{d.expected:,}</td><td>{_pct(d.coverage_pct)}</td></tr>"
        for d in report.departments
    ]
    return "<table>" + head + "".join(rows) + "</table>"


def _page(title: str, body: str, style: str = _STYLE) -> str:
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{style}</style></head>"
        f"<body>{body}</body></html>"
    )


def render_report(report: ProgressReport, activity: Activity, generated_at: datetime) -> str:
    title = f"Digital school records — national progress {report.school_year}"
    dead = [Bar(code, n, f"{n:,}", "#c8553d") for code, n in activity.dead_letters_by_reason]
    body = (
        f"<h1>{escape(title)}</h1>"
        f"<p>Generated {escape(generated_at.isoformat(timespec='seconds'))}; grades "
        f"{escape(', '.join(str(g) for g in report.grades))}; every figure counts each "
        "record once (latest revision).</p>"
        + _national_table(report)
        + coverage_chart(report).svg
        + column_chart(
            "Records landed over time (UTC)",
            time_points(activity.records_by_hour),
            width=CHART_WIDTH,
        ).svg
        + hbar_chart(
            "Dead letters by reason (messages, every school year)", dead, width=CHART_WIDTH
        ).svg
        + "<h2>Departments</h2>"
        + _department_table(report)
    )
    return _page(title, body)


def chart_page(chart: Chart) -> str:
    """One chart on a bare page: what `--png` screenshots."""
    return _page("chart", chart.svg, "body { margin: 0; } svg { display: block; }")
