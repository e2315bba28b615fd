"""Consumer lag: committed offset vs log end, per partition, and who holds the partitions.

Operators use it as a health probe, and the demo and tests use it to know when the worker
has landed (or dead-lettered) everything: no message between the commit and the end of
any partition.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.errors import KafkaError

from hocba.kafka.clients import committed_reader, tool_admin, tool_consumer

# A lag this small is looked at for offsets that hold no message (`markers_only`); a larger
# one is counted from the offsets alone. Up to it, a look fetches at most a batch.
MARKERS_LOOKED_FOR = 1000


@dataclass(frozen=True, slots=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int  # -1 when the group never committed on this partition
    end: int
    # offsets between the commit and the end that hold no message the worker reads: the
    # markers and aborted records of transactions (`markers_only`)
    markers: int = 0

    @property
    def lag(self) -> int:
        # the end is read first: a commit made since may be past it
        return max(0, self.end - max(self.committed, 0) - self.markers)


async def partition_lags(bootstrap: str, group: str, topic: str) -> list[PartitionLag]:
    admin = tool_admin(bootstrap)
    consumer = tool_consumer(bootstrap)
    try:
        await admin.start()
        await consumer.start()
        tps = await topic_partitions(consumer, topic)
        ends = await true_end_offsets(consumer, tps)
        committed = await admin.list_consumer_group_offsets(group, partitions=tps) if tps else {}
        lags = [
            PartitionLag(
                topic,
                tp.partition,
                committed[tp].offset if committed.get(tp) else -1,
                ends[tp],
            )
            for tp in tps
        ]
    finally:
        await consumer.stop()
        await admin.close()
    looked_at = {
        TopicPartition(topic, p.partition): range(max(p.committed, 0), p.end)
        for p in lags
        if 0 < p.lag <= MARKERS_LOOKED_FOR
    }
    settled = await markers_only(bootstrap, looked_at)
    return [
        replace(p, markers=p.lag) if TopicPartition(topic, p.partition) in settled else p
        for p in lags
    ]


async def markers_only(
    bootstrap: str, offsets: Mapping[TopicPartition, range]
) -> set[TopicPartition]:
    """The partitions whose `offsets` hold no message the worker reads, all or none of them,
    as a `committed_reader` finds them.

    Every transaction ends in a marker that takes an offset and is never given to a consumer,
    an aborted one's records are skipped too, and Faust commits the offset after the last
    message it was given: after a vendor's transaction the group stays behind the end until
    a message follows. Those offsets are nothing left to land. An offset already gone (the
    fetch fails) or an open transaction (the fetch stops short) settles nothing."""
    if not offsets:
        return set()
    reader = committed_reader(bootstrap)
    settled: set[TopicPartition] = set()
    try:
        await reader.start()
        reader.assign(list(offsets))
        for tp, looked_at in offsets.items():
            reader.seek(tp, looked_at.start)
        pending = set(offsets)
        for _ in range(20):
            if not pending:
                break
            try:
                fetched = await reader.getmany(*pending, timeout_ms=50)
            except KafkaError:
                break
            pending -= {tp for tp, records in fetched.items() if records}  # a message is left
            for tp in list(pending):
                if await reader.position(tp) >= offsets[tp].stop:
                    settled.add(tp)
                    pending.discard(tp)
    finally:
        await reader.stop()
    return settled


async def topic_exists(bootstrap: str, topic: str) -> bool:
    """Reading a missing topic finds nothing, as reading an empty one does: a reader that
    found nothing asks this before it reports "none" for what may be a mistyped name."""
    consumer = tool_consumer(bootstrap)
    try:
        await consumer.start()  # inside: a broker that cannot be reached still gets a stop()
        return bool(await topic_partitions(consumer, topic))
    finally:
        await consumer.stop()


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    await consumer.topics()  # refreshes metadata, so a just-created topic is seen
    return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]


async def true_end_offsets(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """Log-end offsets, confirmed by reading the last batch.

    The embedded broker (Tansu 0.6) answers ListOffsets(latest) with the last *batch's* base
    offset + 1, not the last record's. Reading from that offset − 1 reads the whole last
    batch, after which the consumer's position is the true end; on Apache Kafka the two
    agree. The position, not the last record returned: a transaction's marker, the last
    batch of a partition after every transaction, is read past but never returned.
    """
    reported = await consumer.end_offsets(tps) if tps else {}
    ends = dict(reported)
    readable = [tp for tp in tps if reported[tp] > 0]
    if not readable:
        return ends
    consumer.assign(readable)
    for tp in readable:
        consumer.seek(tp, reported[tp] - 1)
    pending = set(readable)
    for _ in range(20):
        if not pending:
            break
        # every record fetched (no `max_poll_records` cut): the position is then past the batch
        await consumer.getmany(*pending, timeout_ms=250, max_records=sys.maxsize)
        for tp in list(pending):
            position = await consumer.position(tp)
            if position >= reported[tp]:
                ends[tp] = position
                pending.discard(tp)
    return ends


def total_lag(lags: list[PartitionLag]) -> int:
    return sum(p.lag for p in lags)


@dataclass(frozen=True, slots=True)
class GroupMember:
    member_id: str
    client_id: str
    host: str
    assignment: tuple[tuple[str, int], ...] | None  # (topic, partition); None: not reported

    def partitions(self, topic: str) -> list[int] | None:
        if self.assignment is None:
            return None
        return sorted(p for t, p in self.assignment if t == topic)


@dataclass(frozen=True, slots=True)
class GroupReport:
    """One consumer group on one topic: what `hocba lag` prints."""

    group: str
    topic: str
    partitions: list[PartitionLag]
    members: list[GroupMember] | None  # None: the broker does not describe its groups

    @property
    def lag(self) -> int:
        return total_lag(self.partitions)


async def group_report(bootstrap: str, group: str, topic: str) -> GroupReport:
    lags, members = await asyncio.gather(
        partition_lags(bootstrap, group, topic), group_members(bootstrap, group)
    )
    return GroupReport(group, topic, lags, members)


async def group_members(bootstrap: str, group: str) -> list[GroupMember] | None:
    """The group's members as its coordinator describes them, or None if it cannot say.

    Apache Kafka answers DescribeGroups with each member's client id, host and assignment.
    The embedded broker (Tansu 0.6) sends member ids only, with empty client id, host and
    assignment, and an error code for a group it has never seen: members are then listed
    without partitions, or not at all, rather than failing the probe.
    """
    admin = tool_admin(bootstrap)
    try:
        await admin.start()
        responses = await admin.describe_consumer_groups([group])
    except KafkaError:
        return None
    finally:
        await admin.close()
    described = [g for r in responses for g in r.to_object()["groups"] if g["group"] == group]
    if len(described) != 1 or described[0]["error_code"] != 0:
        return None
    return [_member(m) for m in described[0]["members"]]


def _member(described: dict[str, Any]) -> GroupMember:
    raw = described["member_assignment"]
    assignment = None
    if raw:
        decoded = ConsumerProtocolMemberAssignment.decode(raw)
        assignment = tuple((t, p) for t, parts in decoded.assignment for p in parts)
    return GroupMember(
        described["member_id"], described["client_id"], described["client_host"], assignment
    )
