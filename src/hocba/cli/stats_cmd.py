"""`hocba stats`: the national figures from the store."""

from __future__ import annotations

import json
from dataclasses import asdict

import typer

from hocba.cli.demo_cmd import print_summary
from hocba.cli.errors import UserError, friendly
from hocba.cli.runtime import load_settings
from hocba.store.base import StoreLockedError
from hocba.store.factory import open_store
from hocba.summary import national_summary


@friendly
def stats(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Records landed by province and level, dead letters by reason, submissions by outcome.

    Reads HOCBA_CLICKHOUSE_URL, or the chDB store under HOCBA_DATA_DIR (stop the worker
    first: chDB has one owner).
    """
    settings = load_settings()
    try:
        store = open_store(settings)
    except StoreLockedError as exc:
        raise UserError(f"{exc}; stop the worker that holds it, or query ClickHouse") from None
    try:
        summary = national_summary(store, settings.database)
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps(asdict(summary), default=str))
    else:
        print_summary(summary)
