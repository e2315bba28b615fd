"""Reference data → the compacted topics `<prefix>.schools|departments|provinces`.

Workers read the reference directory (docs/reference-data.md says why: Faust global tables
never get past the group join on the embedded broker), so these topics are the system of
record for every other consumer: key = code, value = JSON, the latest value per key is the
current state. A load sends only what differs from the topic's latest values, plus a
tombstone (null value) for each key no longer in the reference data, so an unchanged load
sends nothing and a compacted topic holds exactly the current reference data.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass

from hocba.kafka.producer import bulk_producer
from hocba.kafka.read import read_topic
from hocba.kafka.topics import COMPACTED, ensure_topics
from hocba.reference.model import ReferenceData

TOPIC_KINDS = ("schools", "departments", "provinces")
CHUNK = 2_000  # messages awaited together: large batches, and progress a bar can show

Change = tuple[bytes, bytes | None]  # (key, JSON value); None is a tombstone


@dataclass(frozen=True, slots=True)
class TopicPlan:
    topic: str
    changes: tuple[Change, ...]

    @property
    def upserts(self) -> int:
        return sum(value is not None for _, value in self.changes)

    @property
    def tombstones(self) -> int:
        return len(self.changes) - self.upserts


def _json(value: Mapping[str, object]) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str).encode()


def reference_entries(ref: ReferenceData) -> dict[str, dict[bytes, bytes]]:
    """Per topic kind, key → JSON value. Province keys carry the edition (`2024-15`, `2025-15`)
    because the codes collide (15 was Yên Bái and is now Lào Cai); a former province's value
    names the current province it became (`province_code_2025`)."""
    provinces_2024 = {
        f"2024-{p.code}".encode(): _json(
            asdict(p) | {"province_code_2025": ref.former_to_current[p.code]}
        )
        for p in ref.provinces_2024.values()
    }
    provinces_2025 = {
        f"2025-{p.code}".encode(): _json(asdict(p)) for p in ref.provinces_2025.values()
    }
    return {
        "schools": {s.code.encode(): _json(asdict(s)) for s in ref.schools.values()},
        "departments": {d.code.encode(): _json(asdict(d)) for d in ref.departments.values()},
        "provinces": provinces_2024 | provinces_2025,
    }


def changes(current: Mapping[bytes, bytes], wanted: Mapping[bytes, bytes]) -> tuple[Change, ...]:
    """What turns a topic whose latest values are `current` into `wanted`."""
    upserts = [(k, v) for k, v in wanted.items() if current.get(k) != v]
    return (*upserts, *((k, None) for k in current if k not in wanted))


async def latest_values(bootstrap: str, topic: str) -> dict[bytes, bytes]:
    """Key → latest value of a keyed topic, tombstoned keys left out (read from the start)."""
    values: dict[bytes, bytes] = {}
    for record in await read_topic(bootstrap, topic):
        if record.key is None:
            continue
        if record.value:
            values[record.key] = record.value
        else:
            values.pop(record.key, None)
    return values


async def plan_publication(
    bootstrap: str, prefix: str, ref: ReferenceData, replication: int = 1
) -> list[TopicPlan]:
    """Create the compacted topics if missing (one partition: small, and one order per key)
    and work out each one's changes against its latest values."""
    topics = [f"{prefix}.{kind}" for kind in TOPIC_KINDS]
    await ensure_topics(bootstrap, topics, 1, COMPACTED, replication)
    current = await asyncio.gather(*(latest_values(bootstrap, t) for t in topics))
    wanted = reference_entries(ref)
    return [
        TopicPlan(topic, changes(now, wanted[kind]))
        for topic, kind, now in zip(topics, TOPIC_KINDS, current, strict=True)
    ]


async def publish(
    bootstrap: str, plans: list[TopicPlan], on_sent: Callable[[int], None] | None = None
) -> None:
    """Send every change and wait for its delivery; `on_sent(n)` after each chunk of n."""
    async with bulk_producer(bootstrap) as producer:
        for plan in plans:
            for start in range(0, len(plan.changes), CHUNK):
                chunk = plan.changes[start : start + CHUNK]
                await asyncio.gather(
                    *[await producer.send(plan.topic, value, key=key) for key, value in chunk]
                )
                if on_sent is not None:
                    on_sent(len(chunk))
