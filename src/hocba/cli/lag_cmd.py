"""`hocba lag`: committed offset, log end and lag per partition of the worker's group."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict

import typer
from rich.console import Console
from rich.table import Table

from hocba.cli.errors import UserError, friendly
from hocba.cli.runtime import load_settings
from hocba.kafka.lag import partition_lags, total_lag


@friendly
def lag(
    group: str = typer.Option(None, help="consumer group (default: HOCBA_CONSUMER_GROUP)"),
    topic: str = typer.Option(None, help="topic (default: HOCBA_SUBMISSIONS_TOPIC)"),
    max_lag: int = typer.Option(None, help="exit 1 when the total lag exceeds this (probe)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Show consumer lag, e.g. `HOCBA_KAFKA_BOOTSTRAP=localhost:9092 hocba lag --max-lag 1000`."""
    settings = load_settings()
    if not settings.kafka_bootstrap:
        raise UserError("set HOCBA_KAFKA_BOOTSTRAP to the broker to inspect (host:port)")
    group = group or settings.consumer_group
    topic = topic or settings.submissions_topic
    lags = asyncio.run(partition_lags(settings.kafka_bootstrap, group, topic))
    total = total_lag(lags)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "group": group,
                    "topic": topic,
                    "lag": total,
                    "partitions": [asdict(p) | {"lag": p.lag} for p in lags],
                }
            )
        )
    else:
        table = Table("partition", "committed", "end", "lag", title=f"{group} on {topic}")
        for p in lags:
            table.add_row(str(p.partition), str(p.committed), str(p.end), str(p.lag))
        table.add_row("total", "", str(sum(p.end for p in lags)), str(total), style="bold")
        Console().print(table)
    if max_lag is not None and total > max_lag:
        raise typer.Exit(1)
