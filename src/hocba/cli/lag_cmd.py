"""`hocba lag`: committed offset, log end and lag per partition, and the group's members."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from hocba.cli.errors import UserError, friendly, missing_topic
from hocba.cli.runtime import load_settings
from hocba.kafka.lag import GroupReport, group_report
from hocba.settings import lander_group

NOT_REPORTED = "not reported by this broker"


@friendly
def lag(
    group: str = typer.Option(None, help="consumer group (default: HOCBA_CONSUMER_GROUP)"),
    topic: str = typer.Option(None, help="topic (default: HOCBA_SUBMISSIONS_TOPIC)"),
    all_topics: bool = typer.Option(
        False,
        "--all-topics",
        help="also the lander's group (`<group>-lander` on HOCBA_LANDING_TOPIC), for the "
        "verify + land roles; --max-lag then checks the sum",
    ),
    max_lag: int = typer.Option(
        None, help="exit 1 when the total lag exceeds this, saying so on stderr (probe)"
    ),
    watch: bool = typer.Option(False, "--watch", help="refresh until Ctrl-C"),
    interval: float = typer.Option(2.0, help="seconds between refreshes with --watch", min=0.2),
    as_json: bool = typer.Option(
        False, "--json", help="print JSON (with --watch: one object per line and refresh)"
    ),
) -> None:
    """Show consumer lag and who consumes, e.g. as a probe that fails above 1000 messages:

        HOCBA_KAFKA_BOOTSTRAP=kafka:9092 hocba lag --max-lag 1000

    or live, with the lander's queue too: `hocba lag --all-topics --watch`.
    """
    settings = load_settings()
    if not settings.kafka_bootstrap:
        raise UserError("set HOCBA_KAFKA_BOOTSTRAP to the broker to inspect (host:port)")
    if watch and max_lag is not None:
        raise UserError("--max-lag is a one-shot probe: use it without --watch")
    bootstrap = settings.kafka_bootstrap
    group = group or settings.consumer_group
    targets = [(group, topic or settings.submissions_topic)]
    if all_topics:
        targets.append((lander_group(group), settings.landing_topic))

    def fetch() -> list[GroupReport]:
        reports = asyncio.run(_reports(bootstrap, targets))
        if not reports[0].partitions:  # a probe on a mistyped topic must not pass on lag 0
            raise missing_topic(reports[0].topic, bootstrap, "--topic or HOCBA_SUBMISSIONS_TOPIC")
        return reports

    if watch:
        _watch(fetch, interval, as_json)
        return
    reports = fetch()
    total = sum(r.lag for r in reports)
    over = max_lag is not None and total > max_lag
    if as_json:
        probe = {} if max_lag is None else {"max_lag": max_lag, "ok": not over}
        typer.echo(json.dumps(_as_json(reports) | probe))
    else:
        Console().print(_render(reports))
    if over:  # a failed probe says why, where a monitoring job's log shows it
        what = "total lag" if all_topics else "lag"
        typer.echo(f"{what} {total} is over --max-lag {max_lag}", err=True)
        raise typer.Exit(1)


async def _reports(bootstrap: str, targets: list[tuple[str, str]]) -> list[GroupReport]:
    return list(await asyncio.gather(*(group_report(bootstrap, g, t) for g, t in targets)))


def _watch(fetch: Callable[[], list[GroupReport]], interval: float, as_json: bool) -> None:
    """Refresh until Ctrl-C, which ends the command normally (exit 0)."""
    try:
        if as_json:
            while True:
                typer.echo(json.dumps(_as_json(fetch())))
                time.sleep(interval)
        else:
            with Live(_render(fetch()), auto_refresh=False) as live:
                while True:
                    time.sleep(interval)
                    live.update(_render(fetch()), refresh=True)
    except KeyboardInterrupt:
        return


def _as_json(reports: list[GroupReport]) -> dict[str, Any]:
    """The first group's report at the top (as before `--all-topics` existed), the lander's
    under `lander`; the top-level `lag` is what `--max-lag` compares: the sum."""
    first, *rest = (_report_json(r) for r in reports)
    out = {**first, "lag": sum(r.lag for r in reports)}
    if rest:
        out["lander"] = rest[0]
    return out


def _report_json(report: GroupReport) -> dict[str, Any]:
    return {
        "group": report.group,
        "topic": report.topic,
        "lag": report.lag,
        "partitions": [asdict(p) | {"lag": p.lag} for p in report.partitions],
        "members": None
        if report.members is None
        else [
            {
                "member_id": m.member_id,
                "client_id": m.client_id,
                "host": m.host,
                "partitions": m.partitions(report.topic),
            }
            for m in report.members
        ],
    }


def _render(reports: list[GroupReport]) -> Group:
    parts: list[Table | Text] = []
    for report in reports:
        parts.extend(_render_report(report))
    if len(reports) > 1:
        parts.append(Text(f"total lag: {sum(r.lag for r in reports)}", style="bold"))
    return Group(*parts)


def _render_report(report: GroupReport) -> list[Table | Text]:
    title = f"{report.group} on {report.topic}"
    # markers: offsets after the commit that hold no message (transactions'), not lag
    table = Table("partition", "committed", "end", "markers", "lag", title=title)
    for p in report.partitions:
        table.add_row(str(p.partition), str(p.committed), str(p.end), str(p.markers), str(p.lag))
    total_end = sum(p.end for p in report.partitions)
    table.add_row("total", "", str(total_end), "", str(report.lag), style="bold")
    if report.members is None:
        return [table, Text(f"members: {NOT_REPORTED}")]
    if not report.members:
        return [table, Text("members: none (nothing consumes with this group now)")]
    members = Table("member", "client id", "host", f"partitions of {report.topic}")
    for m in report.members:
        assigned = m.partitions(report.topic)
        members.add_row(
            m.member_id,
            m.client_id or "-",
            m.host or "-",
            NOT_REPORTED if assigned is None else ", ".join(map(str, assigned)) or "none",
        )
    return [table, members]
