"""`hocba dlq inspect|replay`: what is in the dead-letter topic, and re-publish after a fix."""

from __future__ import annotations

import asyncio
import difflib
import json
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from hocba.cli.errors import UserError, friendly, missing_topic
from hocba.cli.runtime import load_settings
from hocba.cli.tables import print_whole
from hocba.domain.messages import RawMessage, Submission
from hocba.domain.reasons import Reason
from hocba.kafka.lag import topic_exists
from hocba.kafka.read import TopicRecord, read_topic
from hocba.kafka.replay import (
    failed_at_ms,
    latest_attempts,
    plan_replay,
    replay_count,
    republish,
)
from hocba.pipeline.codec import SchemaRegistry, load_registry
from hocba.pipeline.decode import decode_envelope, decode_payload
from hocba.settings import Settings

app = typer.Typer(
    help=(
        "Inspect the dead-letter topic and replay messages after a fix (see docs/operators-dlq.md)."
    ),
    no_args_is_help=True,
)
UNDECODABLE = "(undecodable)"


def _bootstrap(settings: Settings) -> str:
    if not settings.kafka_bootstrap:
        raise UserError("set HOCBA_KAFKA_BOOTSTRAP to the broker holding the DLQ (host:port)")
    return settings.kafka_bootstrap


def _dead_letters(bootstrap: str, settings: Settings) -> list[TopicRecord]:
    """Every dead letter; a mistyped HOCBA_DLQ_TOPIC is refused, not read as zero of them."""
    letters = asyncio.run(read_topic(bootstrap, settings.dlq_topic))
    if not letters and not asyncio.run(topic_exists(bootstrap, settings.dlq_topic)):
        raise missing_topic(settings.dlq_topic, bootstrap, "HOCBA_DLQ_TOPIC")
    return letters


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def _envelope(letter: TopicRecord, registry: SchemaRegistry, settings: Settings) -> Any:
    raw = RawMessage(
        letter.headers.get("hocba.source.topic", ""),
        letter.partition,
        letter.offset,
        letter.timestamp_ms,
        letter.key,
        letter.value,
    )
    return raw, decode_envelope(raw, registry, settings.max_message_bytes)


def _sender(letter: TopicRecord, registry: SchemaRegistry, settings: Settings) -> str:
    _, envelope = _envelope(letter, registry, settings)
    return envelope.sender_code if isinstance(envelope, Submission) else UNDECODABLE


def _key(letter: TopicRecord) -> str:
    return (letter.key or b"").decode("utf-8", "replace")


def describe(letter: TopicRecord, registry: SchemaRegistry, settings: Settings) -> dict[str, Any]:
    """One dead letter decoded as far as it goes: headers, then envelope, then records."""
    out: dict[str, Any] = {
        "dlq_partition": letter.partition,
        "dlq_offset": letter.offset,
        "key": _key(letter),
        "size": len(letter.value),
        "headers": dict(letter.headers),
    }
    raw, envelope = _envelope(letter, registry, settings)
    if not isinstance(envelope, Submission):
        out["envelope"] = None
        return out
    out["envelope"] = {
        "submission_id": envelope.submission_id,
        "sender_code": envelope.sender_code,
        "vendor": envelope.vendor,
        "sent_at": _iso(envelope.sent_at_ms),
        "signature_algorithm": envelope.signature_algorithm,
        "certificates": len(envelope.certificate_chain),
        "payload_bytes": len(envelope.payload),
    }
    records = decode_payload(raw, envelope, registry, settings.max_records_per_message)
    out["records"] = len(records) if isinstance(records, tuple) else None
    return out


def summarize(
    letters: Sequence[TopicRecord], registry: SchemaRegistry, settings: Settings, samples: int
) -> dict[str, Any]:
    senders = Counter(_sender(d, registry, settings) for d in letters)
    times = [failed_at_ms(d) for d in letters]
    return {
        "topic": settings.dlq_topic,
        "dead_letters": len(letters),
        "messages": len(latest_attempts(letters)),
        "by_reason": dict(Counter(d.headers.get("hocba.error.code", "") for d in letters)),
        "by_sender": dict(senders),
        "first_failed_at": _iso(min(times)) if times else None,
        "last_failed_at": _iso(max(times)) if times else None,
        "samples": [describe(d, registry, settings) for d in letters[:samples]],
    }


def _print_summary(summary: dict[str, Any]) -> None:
    console = Console()
    first, last = summary["first_failed_at"], summary["last_failed_at"]
    console.print(
        f"[bold]{summary['dead_letters']}[/] dead letters ({summary['messages']} distinct "
        f"messages) in {summary['topic']}" + (f", failed {first} … {last}" if first else "")
    )
    for title, counts in (("reason", summary["by_reason"]), ("sender", summary["by_sender"])):
        table = Table(title, "dead letters")
        for name, n in sorted(counts.items(), key=lambda kv: -kv[1]):
            table.add_row(name, str(n))
        print_whole(table)  # reason codes and senders are copied into the next command
    for sample in summary["samples"]:
        console.print_json(json.dumps(sample, ensure_ascii=False))


def _known_reason(code: str | None) -> str | None:
    """A mistyped code would match nothing and report zero dead letters, as if all were well."""
    known = [r.value for r in Reason]
    if code is not None and code not in known:
        close = difflib.get_close_matches(code, known, n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else "; see `hocba dlq inspect`"
        raise typer.BadParameter(f"{code!r} is not a reason code{hint}")
    return code


@app.command()
@friendly
def inspect(
    reason: str = typer.Option(
        None,
        help="only dead letters with this code, e.g. decode.not_avro",
        callback=_known_reason,
    ),
    samples: int = typer.Option(3, min=0, help="sample messages to decode and show"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Count dead letters by reason and sender, show the time range and decoded samples.

    Example: HOCBA_KAFKA_BOOTSTRAP=127.0.0.1:9092 hocba dlq inspect --reason
    enrich.unknown_school --samples 2
    """
    settings = load_settings()
    letters = _dead_letters(_bootstrap(settings), settings)
    if reason:
        letters = [d for d in letters if d.headers.get("hocba.error.code") == reason]
    summary = summarize(letters, load_registry(), settings, samples)
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False))
    else:
        _print_summary(summary)


def _since_ms(since: str | None) -> int | None:
    if since is None:
        return None
    try:
        parsed = datetime.fromisoformat(since)
    except ValueError:
        raise UserError(
            f"--since {since!r} is not an ISO date/time, e.g. 2024-06-01T08:00"
        ) from None
    return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp() * 1000)


def _listing(
    letters: Sequence[TopicRecord], registry: SchemaRegistry, settings: Settings
) -> list[dict[str, Any]]:
    """What a dry run would send, so the operator checks whose messages go back before any do."""
    return [
        {
            "partition": d.partition,  # where the dead letter is in the DLQ, as in `inspect`
            "offset": d.offset,
            "key": _key(d),
            "sender_code": _sender(d, registry, settings),
            "reason": d.headers.get("hocba.error.code", ""),
            "replay_count": replay_count(d),
        }
        for d in letters
    ]


def _print_listing(listed: list[dict[str, Any]], topic: str) -> None:
    table = Table(
        "DLQ partition",
        "offset",
        "key",
        "sender",
        "reason",
        "replay count",
        title=f"would replay to {topic}",
    )
    for row in listed:
        table.add_row(*(str(value) for value in row.values()))
    print_whole(table)


@app.command()
@friendly
def replay(
    reason: str = typer.Option(
        ..., help="replay dead letters with this code", callback=_known_reason
    ),
    since: str = typer.Option(None, help="only those failed at/after this ISO time (UTC default)"),
    max_replays: int = typer.Option(3, min=1, help="refuse messages replayed this many times"),
    dry_run: bool = typer.Option(False, "--dry-run", help="show what would be sent, send nothing"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Re-publish dead letters' original bytes to the input topic, after fixing the cause.

    Each message goes back with its original key and bytes and `hocba.replay.count` raised
    by one; a message already replayed --max-replays times is refused (reported, not sent).
    Records that landed before count as duplicates, so replaying twice changes no figure.

    Example: HOCBA_KAFKA_BOOTSTRAP=127.0.0.1:9092 hocba dlq replay --reason
    enrich.unknown_school --since 2024-06-01T00:00 --dry-run
    """
    settings = load_settings()
    bootstrap = _bootstrap(settings)
    letters = _dead_letters(bootstrap, settings)
    plan = plan_replay(letters, reason=reason, since_ms=_since_ms(since), max_replays=max_replays)
    sent = 0
    if plan.to_send and not dry_run:
        with Progress(
            TextColumn("replaying"),
            BarColumn(),
            MofNCompleteColumn(),
            console=Console(stderr=True),
            disable=as_json or len(plan.to_send) < 1000,
        ) as progress:
            task = progress.add_task("replay", total=len(plan.to_send))
            sent = asyncio.run(
                republish(
                    bootstrap,
                    settings.submissions_topic,
                    plan.to_send,
                    lambda done: progress.update(task, completed=done),
                )
            )
    report = {
        "reason": reason,
        "topic": settings.submissions_topic,
        "dry_run": dry_run,
        "selected": len(plan.to_send),
        "sent": sent,
        "refused": len(plan.refused),
        "superseded": plan.superseded,
        "refused_offsets": [
            {"partition": d.partition, "offset": d.offset, "replay_count": replay_count(d)}
            for d in plan.refused
        ],
    }
    listed = _listing(plan.to_send, load_registry(), settings) if dry_run else []
    if as_json:
        typer.echo(json.dumps(report | ({"to_send": listed} if dry_run else {})))
        return
    if listed:
        _print_listing(listed, settings.submissions_topic)
    console = Console(stderr=True)
    verb = "would replay" if dry_run else "replayed"
    console.print(f"{verb} {len(plan.to_send) if dry_run else sent} messages with {reason}")
    if plan.refused:
        console.print(
            f"[yellow]refused {len(plan.refused)} already replayed {max_replays} times[/]: "
            f"fix them at the source, see `hocba dlq inspect --reason {reason}`"
        )
