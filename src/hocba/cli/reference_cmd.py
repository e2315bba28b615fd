"""`hocba reference`: load schools, Departments and expected enrolment for running workers.

Workers read `HOCBA_REFERENCE_DIR` and reload it within seconds of a change, so loading is:
validate the file completely, merge it into that directory (atomically, file by file), mirror
the whole reference data into ClickHouse for analysts — directly when the store is free, or by
the running worker that owns it, which re-mirrors whenever it reloads — and, when
HOCBA_KAFKA_BOOTSTRAP is set, publish the changes to the compacted `hocba.reference.*`
topics, the system of record for other consumers (docs/reference-data.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from hocba.cli.errors import UserError, describe, friendly
from hocba.cli.runtime import load_settings
from hocba.reference.loader import load_reference_dir, load_reference_file, write_reference_dir
from hocba.reference.model import ReferenceData
from hocba.reference.publish import TopicPlan, plan_publication, publish
from hocba.settings import Settings
from hocba.store.base import StoreLockedError
from hocba.store.factory import opened_store

app = typer.Typer(
    help="Reference data: schools, Departments, expected enrolment.", no_args_is_help=True
)


class Kind(StrEnum):
    SCHOOLS = "schools"
    DEPARTMENTS = "departments"
    EXPECTED_ENROLLMENT = "expected_enrollment"


def _kind_of(path: Path, kind: Kind | None) -> Kind:
    if kind is not None:
        return kind
    for candidate in sorted(Kind, key=len, reverse=True):
        if path.stem.lower().startswith(candidate.value):
            return candidate
    raise UserError(
        f"{path.name}: name it schools.*, departments.* or expected_enrollment.*, or say --kind"
    )


def _items(ref: ReferenceData) -> dict[Kind, Sequence[Any]]:
    return {
        Kind.SCHOOLS: list(ref.schools.values()),
        Kind.DEPARTMENTS: list(ref.departments.values()),
        Kind.EXPECTED_ENROLLMENT: ref.expected_enrollment,
    }


def _counts(ref: ReferenceData) -> dict[str, int]:
    return {kind.value: len(items) for kind, items in _items(ref).items()}


def _merged(
    current: ReferenceData, new: ReferenceData, kind: Kind, replacing: bool
) -> ReferenceData:
    if kind is Kind.SCHOOLS:
        return replace(
            current, schools=new.schools if replacing else {**current.schools, **new.schools}
        )
    if kind is Kind.DEPARTMENTS:
        return replace(
            current,
            departments=new.departments
            if replacing
            else {**current.departments, **new.departments},
        )
    if replacing:
        return replace(current, expected_enrollment=new.expected_enrollment)
    keyed = {
        (e.province_code_2024, e.school_year, e.grade): e
        for e in (*current.expected_enrollment, *new.expected_enrollment)
    }
    return replace(current, expected_enrollment=tuple(keyed.values()))


def _write_atomically(directory: Path, ref: ReferenceData) -> None:
    """Each file is replaced in one rename, so a reloading worker never reads half of one."""
    with tempfile.TemporaryDirectory(dir=directory, prefix=".loading-") as tmp:
        write_reference_dir(Path(tmp), ref)
        for written in Path(tmp).iterdir():
            (directory / f"{written.stem}.json").unlink(missing_ok=True)  # one format per kind
            os.replace(written, directory / written.name)


def _mirror(settings: Settings, ref: ReferenceData) -> str:
    from hocba.reference.tables import mirror_reference  # pyarrow: see hocba.store.remote

    try:
        with opened_store(settings) as store:
            mirror_reference(store, ref)
    except StoreLockedError:
        return "a running worker holds the store: it mirrors the new data when it reloads"
    return "reference tables replaced"


def _publish(
    progress: Progress, settings: Settings, bootstrap: str, ref: ReferenceData
) -> list[TopicPlan]:
    prefix = settings.reference_topic_prefix
    with _step(progress, "reading the reference topics"):
        plans = asyncio.run(plan_publication(bootstrap, prefix, ref, settings.topic_replication))
    total = sum(len(p.changes) for p in plans)
    with _step(progress, f"publishing to {prefix}.*", total) as task:
        asyncio.run(publish(bootstrap, plans, lambda n: progress.advance(task, n)))
    return plans


def _reference_dir(settings: Settings) -> Path:
    if settings.reference_dir is None:
        raise UserError("set HOCBA_REFERENCE_DIR to the directory the workers read")
    return settings.reference_dir


def _progress(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(finished_text="[green]✓[/]"),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


@contextmanager
def _step(progress: Progress, description: str, total: int | None = None) -> Iterator[TaskID]:
    """One line of the progress display, marked done when the block ends without error."""
    task = progress.add_task(description, total=total)
    yield task
    progress.update(task, total=total or 1, completed=total or 1)


@app.command("load")
@friendly
def load(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV or JSON file"),
    kind: Kind | None = typer.Option(None, help="default: from the file name"),
    replace_all: bool = typer.Option(
        False,
        "--replace/--merge",
        help="replace all data of this kind, or merge by key "
        "(school code, Department code, province-year-grade)",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="validate only, change nothing"),
    create: bool = typer.Option(
        False,
        "--create",
        help="create HOCBA_REFERENCE_DIR, for the first load; without it a missing directory "
        "is refused (a mistyped path would replace every other kind with nothing)",
    ),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Validate a reference file and hand it to running workers, ClickHouse and Kafka.

    Example: HOCBA_REFERENCE_DIR=/srv/hocba/reference hocba reference load schools.csv

    Columns and examples per kind: docs/reference-data.md. Every row is checked (province
    codes of both editions, levels, dates, duplicates) and an error names file and line;
    nothing changes unless the whole file is valid. Running workers pick the change up within
    seconds; with HOCBA_KAFKA_BOOTSTRAP set, the changes also go to the compacted topics
    HOCBA_REFERENCE_TOPIC_PREFIX.schools|departments|provinces.
    """
    settings = load_settings()
    chosen = _kind_of(file, kind)
    directory = None if dry_run else _reference_dir(settings)
    if directory is not None and not directory.is_dir() and not create:
        raise UserError(
            f"HOCBA_REFERENCE_DIR {directory} does not exist: check the variable, or pass "
            "--create for the first load into a new directory"
        )
    console = Console(stderr=True, quiet=as_json)
    result: dict[str, object] = {"file": str(file), "kind": chosen.value, "dry_run": dry_run}
    with _progress(console) as progress:
        with _step(progress, f"validating {file.name}"):
            new = load_reference_file(file, chosen.value)
        rows = result["rows"] = _counts(new)[chosen.value]
        lines = [f"{file}: {rows:,} valid {chosen.value} rows"]
        if directory is not None:
            with _step(progress, f"writing {directory}"):
                directory.mkdir(parents=True, exist_ok=True)
                merged = _merged(load_reference_dir(directory), new, chosen, replace_all)
                _write_atomically(directory, merged)
            totals = result["total"] = _counts(merged)
            with _step(progress, "mirroring into ClickHouse"):
                mirror = result["mirror"] = _mirror(settings, merged)
            bootstrap = settings.kafka_bootstrap
            try:
                plans = _publish(progress, settings, bootstrap, merged) if bootstrap else None
            except Exception as exc:  # the directory and ClickHouse changed: say so
                raise UserError(
                    f"{directory} and ClickHouse are updated, but publishing to Kafka failed "
                    f"({describe(exc)}); run the same load again to publish"
                ) from None
            result["published"] = (
                None
                if plans is None
                else {p.topic: {"upserts": p.upserts, "tombstones": p.tombstones} for p in plans}
            )
            lines += [
                f"{directory}: "
                + " · ".join(f"{k} {v:,}" for k, v in totals.items())
                + "; running workers reload it within seconds",
                f"ClickHouse: {mirror}",
                "Kafka: "
                + (
                    "not published (HOCBA_KAFKA_BOOTSTRAP is not set)"
                    if plans is None
                    else " · ".join(f"{p.topic} +{p.upserts} -{p.tombstones}" for p in plans)
                ),
            ]
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
    else:
        for line in lines:
            console.print(line, highlight=False, soft_wrap=True)


def _plain(item: Any) -> dict[str, object]:
    return {k: "|".join(v) if isinstance(v, tuple) else v for k, v in asdict(item).items()}


@app.command("show")
@friendly
def show(
    kind: Kind | None = typer.Option(None, help="sample only this kind (default: every kind)"),
    sample: int = typer.Option(3, min=0, help="items shown per kind"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Counts and a sample of the reference data the workers currently read.

    Example: hocba reference show --kind schools --sample 5
    """
    ref = load_reference_dir(_reference_dir(load_settings()))
    counts = {
        "provinces_2024": len(ref.provinces_2024),
        "provinces_2025": len(ref.provinces_2025),
        **_counts(ref),
    }
    items = _items(ref)
    samples = {k: [_plain(i) for i in items[k][:sample]] for k in ([kind] if kind else Kind)}
    if as_json:
        typer.echo(
            json.dumps(
                {"counts": counts, "sample": {k.value: v for k, v in samples.items()}},
                ensure_ascii=False,
                default=str,
            )
        )
        return
    console = Console()
    for name, count in counts.items():
        console.print(f"{name:>20}  {count:,}")
    for sampled_kind, rows in samples.items():
        if not rows:
            continue
        table = Table(*(f.name for f in fields(items[sampled_kind][0])), title=sampled_kind.value)
        for row in rows:
            table.add_row(*("" if v is None else str(v) for v in row.values()))
        console.print(table)
