"""`hocba publish`: the vendor side — JSON lines → signed Avro batches → Kafka."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import track

from hocba.cli.errors import UserError, friendly
from hocba.cli.runtime import load_settings
from hocba.kafka.producer import Outgoing, bulk_producer, send_all
from hocba.pipeline.codec import load_registry
from hocba.publishing import batches, record_from_json, sign_batch
from hocba.trust.signing import load_signer


@friendly
def publish(
    records_file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="JSON lines, one StudentRecord per line"
    ),
    key: Path = typer.Option(..., exists=True, help="the Department's private key (PEM)"),
    chain: Path = typer.Option(..., exists=True, help="its certificate chain (PEM, leaf first)"),
    sender: str = typer.Option(..., help="the Department's code, e.g. SGD-2024-01"),
    vendor: str = typer.Option("hocba-cli", help="the publishing system's name"),
    batch_size: int = typer.Option(50, min=1, help="records per message (per school+class)"),
    topic: str = typer.Option(None, help="default: HOCBA_SUBMISSIONS_TOPIC"),
    key_password_env: str = typer.Option(
        None,
        metavar="VARIABLE",
        help="for an encrypted key: the environment variable holding its passphrase",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="print the submission ids sent (to trace a message later)"
    ),
) -> None:
    """Sign and publish records, one message per class batch.

    Example: HOCBA_KAFKA_BOOTSTRAP=127.0.0.1:9092 hocba publish records.jsonl
    --key pki/leaves/SGD-2024-01.key.pem --chain pki/leaves/SGD-2024-01.chain.pem
    --sender SGD-2024-01
    """
    settings = load_settings()
    if not settings.kafka_bootstrap:
        raise UserError("set HOCBA_KAFKA_BOOTSTRAP to the broker to publish to (host:port)")
    registry = load_registry()
    signer = load_signer(key, chain, password=_password(key_password_env))
    records = []
    for number, line in enumerate(records_file.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                record = record_from_json(json.loads(line))
            except (ValueError, TypeError) as exc:
                raise UserError(f"{records_file}:{number}: not a JSON record ({exc})") from None
            missing = [f for f in ("school_code", "class_name") if f not in record]
            if missing:
                raise UserError(f"{records_file}:{number}: no {' or '.join(missing)}")
            records.append(record)
    if not records:
        raise UserError(f"{records_file} holds no records: one JSON object per line")
    records.sort(key=lambda r: (r["school_code"], r["class_name"]))
    messages, submission_ids = [], []
    chunks = list(batches(records, batch_size))
    console = Console(stderr=True, quiet=as_json)
    for chunk in track(chunks, "signing", console=console, transient=True):
        try:
            sid, value = sign_batch(registry, chunk, signer, sender_code=sender, vendor=vendor)
        except (ValueError, TypeError, KeyError) as exc:
            raise UserError(f"a record does not fit the StudentRecord schema: {exc}") from None
        messages.append(Outgoing(sid.encode(), value))
        submission_ids.append(sid)
    destination = topic or settings.submissions_topic
    asyncio.run(_send(settings.kafka_bootstrap, destination, messages))
    if as_json:
        sent = {"topic": destination, "records": len(records)}
        typer.echo(json.dumps(sent | {"submission_ids": submission_ids}))
        return
    console.print(f"published {len(records)} records in {len(messages)} messages")


def _password(variable: str | None) -> bytes | None:
    """From the environment, so the passphrase stays out of the command line and history."""
    if variable is None:
        return None
    value = os.environ.get(variable)
    if value is None:
        raise UserError(f"--key-password-env {variable}: that environment variable is not set")
    return value.encode()


async def _send(bootstrap: str, topic: str, messages: list[Outgoing]) -> None:
    async with bulk_producer(bootstrap) as producer:
        await send_all(producer, topic, messages)
