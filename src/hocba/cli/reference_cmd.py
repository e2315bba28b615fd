"""`hocba reference`: load schools, Departments and expected enrolment for running workers.

Workers read `HOCBA_REFERENCE_DIR` and reload it within seconds of a change, so loading is:
validate the file completely, merge it into that directory (atomically, file by file), and
mirror the whole reference data into ClickHouse for analysts — directly when the store is
free, or by the running worker that owns it, which re-mirrors whenever it reloads.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import replace
from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console

from hocba.cli.errors import UserError, friendly
from hocba.cli.runtime import load_settings
from hocba.reference.loader import load_reference_dir, write_reference_dir
from hocba.reference.model import ReferenceData
from hocba.reference.tables import mirror_reference
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
        if path.stem.startswith(candidate.value):
            return candidate
    raise UserError(
        f"{path.name}: name it schools.*, departments.* or expected_enrollment.*, or say --kind"
    )


def _parse(path: Path, kind: Kind) -> ReferenceData:
    """The whole file through the same validation the worker applies."""
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(path, Path(tmp) / f"{kind.value}{path.suffix.lower()}")
        return load_reference_dir(Path(tmp))


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
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory, prefix=".loading-") as tmp:
        write_reference_dir(Path(tmp), ref)
        for written in Path(tmp).iterdir():
            (directory / f"{written.stem}.json").unlink(missing_ok=True)  # one format per kind
            os.replace(written, directory / written.name)


def _mirror(settings: Settings, ref: ReferenceData) -> str:
    try:
        with opened_store(settings) as store:
            mirror_reference(store, ref)
    except StoreLockedError:
        return "a running worker holds the store: it mirrors the new data when it reloads"
    return "mirrored into ClickHouse"


def _reference_dir(settings: Settings) -> Path:
    if settings.reference_dir is None:
        raise UserError("set HOCBA_REFERENCE_DIR to the directory the workers read")
    return settings.reference_dir


@app.command("load")
@friendly
def load(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV or JSON file"),
    kind: Kind | None = typer.Option(None, help="default: from the file name"),
    replace_all: bool = typer.Option(
        False,
        "--replace",
        help="replace instead of merging by "
        "key (school code, Department code, province-year-grade)",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="validate only"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Validate a reference file and hand it to running workers (and ClickHouse).

    Example: HOCBA_REFERENCE_DIR=/srv/hocba/reference hocba reference load schools.csv

    Columns are the fields of hocba.reference.model (see docs/analysts.md); every row is
    checked (unknown province codes, levels, duplicates) and an error names file and line.
    """
    settings = load_settings()
    chosen = _kind_of(file, kind)
    console = Console(stderr=True, quiet=as_json)
    with console.status(f"validating {file}…"):
        new = _parse(file, chosen)
    counts = {
        "schools": len(new.schools),
        "departments": len(new.departments),
        "expected_enrollment": len(new.expected_enrollment),
    }
    result: dict[str, object] = {
        "file": str(file),
        "kind": chosen.value,
        "rows": counts[chosen.value],
        "dry_run": dry_run,
    }
    if not dry_run:
        directory = _reference_dir(settings)
        merged = _merged(load_reference_dir(directory), new, chosen, replace_all)
        _write_atomically(directory, merged)
        result["mirror"] = _mirror(settings, merged)
        result["total"] = {
            "schools": len(merged.schools),
            "departments": len(merged.departments),
            "expected_enrollment": len(merged.expected_enrollment),
        }
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
    else:
        console.print(" · ".join(f"{k}: {v}" for k, v in result.items()))


@app.command("show")
@friendly
def show(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Counts of the reference data the workers currently read."""
    ref = load_reference_dir(_reference_dir(load_settings()))
    counts = {
        "provinces_2024": len(ref.provinces_2024),
        "provinces_2025": len(ref.provinces_2025),
        "schools": len(ref.schools),
        "departments": len(ref.departments),
        "expected_enrollment": len(ref.expected_enrollment),
    }
    typer.echo(
        json.dumps(counts) if as_json else "\n".join(f"{k:>20}  {v:,}" for k, v in counts.items())
    )
