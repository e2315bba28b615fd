"""`hocba`: one entry point, one module per command group (DESIGN §6)."""

from __future__ import annotations

import logging

import typer

from hocba.cli import (
    demo_cmd,
    dlq_cmd,
    lag_cmd,
    pki_cmd,
    publish_cmd,
    reference_cmd,
    report_cmd,
    stats_cmd,
    trust_cmd,
    worker_cmd,
)

app = typer.Typer(
    name="hocba",
    help=(
        "Ingest digital school records (học bạ số): signed Avro submissions on Kafka, "
        "verified, deduplicated, enriched and landed in ClickHouse.\n\n"
        "Start with `hocba demo`: it runs everything embedded (broker + chDB) and prints the "
        "national figures. Settings come from `HOCBA_*` environment variables "
        "(see `hocba config show`)."
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",  # docstring paragraphs reflow to the terminal's width
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def quiet_clients(ctx: typer.Context) -> None:
    """A command that cannot reach Kafka or ClickHouse says so in one line of its own
    (`errors.describe`, `ServerStore`); the clients' retry and driver lines would bury it.
    The worker logs everything."""
    if ctx.invoked_subcommand != "worker":
        for client in ("aiokafka", "clickhouse_connect"):
            logging.getLogger(client).setLevel(logging.CRITICAL)


app.command("demo")(demo_cmd.demo)
app.command("worker")(worker_cmd.worker)
app.command("publish")(publish_cmd.publish)
app.command("lag")(lag_cmd.lag)
app.command("stats")(stats_cmd.stats)
app.command("report")(report_cmd.report)
app.add_typer(dlq_cmd.app, name="dlq")
app.add_typer(pki_cmd.app, name="pki")
app.add_typer(reference_cmd.app, name="reference")
app.add_typer(trust_cmd.app, name="trust")
app.add_typer(worker_cmd.config_app, name="config")

if __name__ == "__main__":
    app()
