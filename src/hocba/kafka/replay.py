"""Choose dead letters to replay and re-publish their original bytes (DESIGN §4).

Selection is pure and works on one *generation* per original message: a replayed message
that fails again is dead-lettered again with its `hocba.replay.count`, so the DLQ holds
one entry per attempt. Only the latest attempt (highest count) of each original (same key
and bytes) is considered, so an older entry can never restart the count: each replay
raises it by one and a message is refused once it reached `max_replays`. That is the loop
guard.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from hocba.kafka.producer import Outgoing, bulk_producer, send_all
from hocba.kafka.read import TopicRecord
from hocba.pipeline.deadletter import HEADER_PREFIX, REPLAY_COUNT, parse_replay_count

CHUNK = 500  # messages per delivery wait, so progress moves on long replays


@dataclass(frozen=True, slots=True)
class ReplayPlan:
    to_send: tuple[TopicRecord, ...]  # latest attempts, to re-publish
    refused: tuple[TopicRecord, ...]  # already replayed max_replays times
    superseded: int  # older attempts of messages that were replayed since


def replay_count(letter: TopicRecord) -> int:
    return parse_replay_count(letter.headers.get(REPLAY_COUNT))


def failed_at_ms(letter: TopicRecord) -> int:
    """`hocba.failed_at` when readable, else the DLQ record's own timestamp."""
    try:
        return int(datetime.fromisoformat(letter.headers["hocba.failed_at"]).timestamp() * 1000)
    except (KeyError, ValueError):
        return letter.timestamp_ms


def original_id(letter: TopicRecord) -> str:
    digest = hashlib.sha256(len(letter.key or b"").to_bytes(8, "big"))
    digest.update(letter.key or b"")
    digest.update(letter.value)
    return digest.hexdigest()


def latest_attempts(letters: Iterable[TopicRecord]) -> list[TopicRecord]:
    """One entry per original message: the highest replay count, then the latest failure."""
    latest: dict[str, TopicRecord] = {}
    for letter in letters:
        key = original_id(letter)
        seen = latest.get(key)
        rank = (replay_count(letter), failed_at_ms(letter))
        if seen is None or rank > (replay_count(seen), failed_at_ms(seen)):
            latest[key] = letter
    return sorted(latest.values(), key=lambda d: (d.partition, d.offset))


def plan_replay(
    letters: Sequence[TopicRecord],
    *,
    reason: str,
    since_ms: int | None = None,
    max_replays: int = 3,
) -> ReplayPlan:
    latest = latest_attempts(letters)
    chosen = [
        d
        for d in latest
        if d.headers.get("hocba.error.code") == reason
        and (since_ms is None or failed_at_ms(d) >= since_ms)
    ]
    return ReplayPlan(
        to_send=tuple(d for d in chosen if replay_count(d) < max_replays),
        refused=tuple(d for d in chosen if replay_count(d) >= max_replays),
        superseded=len(letters) - len(latest),
    )


def replay_message(letter: TopicRecord) -> Outgoing:
    """The original key and bytes; our headers dropped, the replay count raised by one."""
    kept = [
        (name, value) for name, value in letter.raw_headers if not name.startswith(HEADER_PREFIX)
    ]
    count = str(replay_count(letter) + 1).encode()
    return Outgoing(letter.key, letter.value, (*kept, (REPLAY_COUNT, count)))


async def republish(
    bootstrap: str,
    topic: str,
    letters: Sequence[TopicRecord],
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Publish every chosen letter and wait for delivery; returns how many were sent."""
    sent = 0
    async with bulk_producer(bootstrap) as producer:
        for start in range(0, len(letters), CHUNK):
            chunk = letters[start : start + CHUNK]
            sent += await send_all(producer, topic, [replay_message(d) for d in chunk])
            if on_progress is not None:
                on_progress(sent)
    return sent
