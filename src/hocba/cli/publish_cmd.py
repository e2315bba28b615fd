"""`hocba publish`: the vendor side — JSON lines → signed Avro batches → Kafka."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path

import rich.progress
import typer
from rich.console import Console
from rich.progress import Progress

from hocba.cli.errors import UserError, friendly, missing_topic
from hocba.cli.runtime import load_settings
from hocba.kafka.lag import topic_exists
from hocba.kafka.producer import Codec, Outgoing, publish_all
from hocba.pipeline.codec import load_registry
from hocba.publishing import batches, sign_batch
from hocba.records_file import BadLine, index_records, records_by_class
from hocba.trust.signing import load_signer

# An envelope beside its records and chain: ids, times, the payload's header and the
# signature (512 bytes for RSA-4096), rounded up.
ENVELOPE_BYTES = 1024


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
    rsa_pss: bool = typer.Option(
        False, "--rsa-pss", help="with an RSA key: sign RSA_PSS_SHA256 instead of PKCS#1 v1.5"
    ),
    compression: Codec = typer.Option(
        Codec.zstd,
        help="how the broker stores and moves the messages (the worker reads every codec): "
        "records compress well, and the broker then does a fraction of the work",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="print the submission ids sent (to trace a message later)"
    ),
) -> None:
    """Sign and publish records, one message per class batch.

    Every line is checked first (JSON, the StudentRecord schema), so a bad line stops the
    command before anything is sent and names its line number. The file is then read a class
    at a time: a Department's whole year needs no more memory than a few classes.

    Example: HOCBA_KAFKA_BOOTSTRAP=127.0.0.1:9092 hocba publish records.jsonl
    --key pki/leaves/SGD-2024-01.key.pem --chain pki/leaves/SGD-2024-01.chain.pem
    --sender SGD-2024-01
    """
    settings = load_settings()
    if not settings.kafka_bootstrap:
        raise UserError("set HOCBA_KAFKA_BOOTSTRAP to the broker to publish to (host:port)")
    registry = load_registry()
    signer = load_signer(key, chain, rsa_pss=rsa_pss, password=_password(key_password_env))
    if signer.named_department not in (None, sender):
        raise UserError(
            f"{chain} is {signer.named_department}'s certificate (its common name), not "
            f"--sender {sender}'s: every message would be dead-lettered as "
            "verify.signer_not_authorized"
        )
    console = Console(stderr=True, quiet=as_json)
    with rich.progress.open(
        records_file, "rb", description="checking", console=console, transient=True
    ) as lines:
        try:
            index = index_records(lines, registry)
        except BadLine as exc:
            raise UserError(f"{records_file}:{exc.number}: {exc.problem}") from None
    if not index.records:
        raise UserError(f"{records_file} holds no records: one JSON object per line")
    (school, class_name), records_bytes = index.largest_batch(batch_size)
    message_bytes = records_bytes + sum(map(len, signer.chain_der)) + ENVELOPE_BYTES
    if message_bytes > settings.max_message_bytes:
        raise UserError(
            f"class {class_name} of school {school} makes a message of about "
            f"{message_bytes:,} bytes with --batch-size {batch_size}, over the "
            f"{settings.max_message_bytes:,} the Ministry's worker reads "
            "(HOCBA_MAX_MESSAGE_BYTES): give a smaller --batch-size"
        )
    destination = topic or settings.submissions_topic
    if not asyncio.run(topic_exists(settings.kafka_bootstrap, destination)):  # else created
        check = "--topic" if topic else "HOCBA_SUBMISSIONS_TOPIC"  # and read by no worker
        raise missing_topic(destination, settings.kafka_bootstrap, check)
    submission_ids: list[str] = []
    with records_file.open("rb") as handle, Progress(console=console, transient=True) as bar:
        signing = bar.add_task("signing and sending", total=index.records)

        def signed() -> Iterator[Outgoing]:
            for chunk in batches(records_by_class(handle, index), batch_size):
                sid, value = sign_batch(registry, chunk, signer, sender_code=sender, vendor=vendor)
                submission_ids.append(sid)
                bar.advance(signing, len(chunk))
                yield Outgoing(sid.encode(), value)

        asyncio.run(publish_all(settings.kafka_bootstrap, destination, signed(), compression))
    if as_json:
        sent = {"topic": destination, "records": index.records}
        typer.echo(json.dumps(sent | {"submission_ids": submission_ids}))
        return
    console.print(f"published {index.records} records in {len(submission_ids)} messages")


def _password(variable: str | None) -> bytes | None:
    """From the environment, so the passphrase stays out of the command line and history."""
    if variable is None:
        return None
    value = os.environ.get(variable)
    if value is None:
        raise UserError(f"--key-password-env {variable}: that environment variable is not set")
    return value.encode()
