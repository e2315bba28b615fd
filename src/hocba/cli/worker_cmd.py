"""`hocba worker` (the Faust worker) and `hocba config show`."""

from __future__ import annotations

import json

import typer
from rich.console import Console

from hocba.cli.errors import UserError, friendly
from hocba.cli.runtime import create_topics, kafka, load_settings
from hocba.logs import configure as configure_logging
from hocba.settings import pseudonym_key_problem, redacted_url

config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)


@friendly
def worker(
    role: str = typer.Option(
        "all",
        help="all: verify and land (one worker on chDB, or any number with a ClickHouse "
        "server) | verify: verify and hand off to hocba.landing | land: the one lander",
    ),
    log_level: str = typer.Option("info", help="debug | info | warning | error"),
    log_json: bool = typer.Option(
        None, "--log-json/--log-text", help="JSON lines (default when stderr is not a terminal)"
    ),
) -> None:
    """Run the ingestion worker: consume hocba.submissions, land records, dead-letter the rest.

    Reads HOCBA_KAFKA_BOOTSTRAP (unset: starts an embedded broker and prints its address),
    HOCBA_CLICKHOUSE_URL (unset: chDB under HOCBA_DATA_DIR), HOCBA_TRUST_DIR and
    HOCBA_REFERENCE_DIR. Stop with Ctrl-C or SIGTERM: the current batch is finished and
    committed first.
    """
    import faust

    from hocba.worker import Role, create_app

    try:
        chosen = Role(role)
    except ValueError:
        raise UserError(f"--role must be one of {', '.join(r.value for r in Role)}") from None

    settings = load_settings()
    configure_logging(log_level, log_json)
    weak_key = pseudonym_key_problem(settings)
    stderr = Console(stderr=True)
    if weak_key and settings.clickhouse_url:
        raise UserError(
            f"{weak_key}: set it to a secret, e.g. $(openssl rand -base64 32), and keep it: a "
            "new key re-keys every student, so records already landed would not match again"
        )
    if weak_key:
        stderr.print(f"warning: {weak_key}; good for a demo, never for real records")
    with kafka(settings) as bootstrap:
        if not settings.kafka_bootstrap:
            stderr.print(
                f"embedded broker at {bootstrap} (in memory: the topics, dead letters "
                "included, are gone when this worker stops; set HOCBA_KAFKA_BOOTSTRAP to keep "
                "them)"
            )
        create_topics(settings, bootstrap)
        app = create_app(settings, bootstrap, chosen)
        faust.Worker(
            app, loglevel=log_level, quiet=True, override_logging=False
        ).execute_from_commandline()


@config_app.command("show")
@friendly
def config_show(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Print the effective settings (environment HOCBA_*), secrets masked."""
    settings = load_settings()
    data = json.loads(settings.model_dump_json())
    if settings.clickhouse_url is not None:
        data["clickhouse_url"] = redacted_url(settings.clickhouse_url.get_secret_value())
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    for name, value in data.items():
        typer.echo(f"HOCBA_{name.upper()}={'' if value is None else value}")
