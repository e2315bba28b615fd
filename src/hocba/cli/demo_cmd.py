"""`hocba demo`: the whole pipeline, embedded, from nothing to national figures."""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import asdict
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from hocba.cli.errors import friendly
from hocba.cli.progress import landing_progress
from hocba.cli.runtime import create_topics, kafka, load_settings, require_empty_dir
from hocba.cli.stats_cmd import print_report
from hocba.kafka.broker import free_port
from hocba.kafka.producer import publish_all
from hocba.runner import spawn_worker, stop_worker, wait_drained
from hocba.scenario import (
    bad_messages,
    build_scenario,
    signed_messages,
    write_records_by_department,
)
from hocba.stats.report import Breakdown, breakdown, fetch_report
from hocba.store.factory import opened_store
from hocba.summary import Summary, national_summary


@friendly
def demo(
    records: int = typer.Option(20_000, min=1, help="synthetic student records to generate"),
    batch_size: int = typer.Option(40, min=1, help="records per signed message (one class)"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
    prepare: Path | None = typer.Option(
        None,
        "--prepare",
        metavar="DIR",
        file_okay=False,
        help="only write the inputs into DIR (`trust/`, `reference/`, "
        "`records/<Department>.jsonl`) and stop: to run `hocba worker` and `hocba publish` "
        "by hand",
    ),
) -> None:
    """Run everything embedded: broker, signed submissions, worker, chDB, national summary.

    Creates a demo PKI and reference data for eight provinces, publishes signed batches of
    synthetic primary and secondary records plus a few bad messages (garbage, tampered
    payload, exact duplicate, an invalid record), runs `hocba worker` until all is landed or
    dead-lettered, and prints the figures. State goes to HOCBA_DATA_DIR/demo (default
    .hocba/demo), replaced on each run.

    With --prepare DIR it only writes those inputs and prints the commands that use them.
    """
    if prepare is not None:
        _prepare(prepare, records, as_json)
        return
    base = load_settings()
    root = base.data_dir / "demo"
    shutil.rmtree(root, ignore_errors=True)
    console = Console(stderr=True, quiet=as_json)
    with console.status("building PKI, reference data and records…"):
        scenario = build_scenario(root / "input", records=records)
    settings = base.model_copy(
        update={
            "data_dir": root,
            "trust_dir": scenario.trust_dir,
            "reference_dir": scenario.reference_dir,
            "web_port": free_port(),
            "broker_session_timeout_s": 2.0,
            "broker_heartbeat_interval_s": 0.5,
        }
    )
    from hocba.reference.tables import mirror_reference  # pyarrow: see hocba.store.remote

    with opened_store(settings) as store:
        mirror_reference(store, scenario.reference)
    with kafka(settings) as bootstrap:
        create_topics(settings, bootstrap)
        good = signed_messages(scenario, batch_size)
        messages = [*good, *bad_messages(scenario, good)]
        asyncio.run(publish_all(bootstrap, settings.submissions_topic, messages))
        console.print(f"published {len(messages)} messages ({records} records) to {bootstrap}")
        worker = spawn_worker(settings, bootstrap, root / "logs" / "worker.log")
        try:
            with landing_progress(console) as progress:
                task = progress.add_task("landing", total=len(messages))
                wait_drained(
                    settings,
                    bootstrap,
                    worker,
                    on_progress=lambda done, total: progress.update(
                        task, completed=done, total=total
                    ),
                )
        finally:
            stop_worker(worker)
    with opened_store(settings) as store:
        summary = national_summary(store, settings.database)
        national = fetch_report(store, settings.database)
    if as_json:
        typer.echo(json.dumps(asdict(summary), default=str))
    else:
        print_summary(summary)
        by_province = breakdown(national, Breakdown.PROVINCE)
        print_report(national, national.departments, by_province, Breakdown.PROVINCE)


def _prepare(directory: Path, records: int, as_json: bool) -> None:
    require_empty_dir(directory)
    scenario = build_scenario(directory, records=records)
    files = write_records_by_department(scenario, directory / "records")
    if as_json:
        inputs = {
            "trust_dir": str(scenario.trust_dir),
            "reference_dir": str(scenario.reference_dir),
            "records": {code: str(path) for code, path in files.items()},
        }
        typer.echo(json.dumps(inputs))
        return
    code, path = next(iter(files.items()))
    leaf = scenario.trust_dir / "leaves" / code
    Console().print(
        f"wrote {records} records for {len(files)} Departments into {directory}; then:\n"
        f"  HOCBA_TRUST_DIR={scenario.trust_dir} HOCBA_REFERENCE_DIR={scenario.reference_dir} "
        "hocba worker\n"
        f"  HOCBA_KAFKA_BOOTSTRAP=<the worker's broker> hocba publish {path} "
        f"--key {leaf}.key.pem --chain {leaf}.chain.pem --sender {code}",
        highlight=False,
        soft_wrap=True,
    )


def print_summary(summary: Summary) -> None:
    console = Console()
    table = Table(
        "code",
        "province (63)",
        "province (34)",
        "primary",
        "lower sec.",
        "upper sec.",
        "records",
        title="Records landed by province and level",
    )
    for row in summary.by_province_level:
        table.add_row(
            row["province_code_2024"],
            row["province_name_2024"],
            row["province_name_2025"],
            str(row["primary"]),
            str(row["lower_secondary"]),
            str(row["upper_secondary"]),
            str(row["records"]),
        )
    table.add_row("", "national", "", "", "", "", str(summary.records), style="bold")
    console.print(table)
    dead = Table("reason", "messages", title="Dead letters by reason")
    for row in summary.dead_letters:
        dead.add_row(row["code"], str(row["messages"]))
    console.print(dead)
    outcomes = Table(
        "outcome", "messages", "records landed", "duplicates", title="Submissions by outcome"
    )
    for row in summary.outcomes:
        outcomes.add_row(
            row["outcome"],
            str(row["messages"]),
            str(row["records_landed"]),
            str(row["records_duplicate"]),
        )
    console.print(outcomes)
