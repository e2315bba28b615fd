"""Consumer lag: committed offset vs log end, per partition.

Operators use it as a health probe, and the demo and tests use it to know when the worker
has landed (or dead-lettered) everything: committed == end on every partition.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


@dataclass(frozen=True, slots=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int  # -1 when the group never committed on this partition
    end: int

    @property
    def lag(self) -> int:
        return self.end - max(self.committed, 0)


async def partition_lags(bootstrap: str, group: str, topic: str) -> list[PartitionLag]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        tps = await topic_partitions(consumer, topic)
        ends = await true_end_offsets(consumer, tps)
        committed = await admin.list_consumer_group_offsets(group, partitions=tps) if tps else {}
        return [
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


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    await consumer.topics()  # refreshes metadata, so a just-created topic is seen
    return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]


async def true_end_offsets(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """Log-end offsets, confirmed by reading the last batch.

    The embedded broker (Tansu 0.6) answers ListOffsets(latest) with the last *batch's* base
    offset + 1, not the last record's. Reading from that offset − 1 returns the whole last
    batch, whose highest offset + 1 is the true end; on Apache Kafka the two agree.
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
        fetched = await consumer.getmany(*pending, timeout_ms=250)
        for tp, records in fetched.items():
            if records:
                ends[tp] = max(ends[tp], records[-1].offset + 1)
                pending.discard(tp)
    return ends


def total_lag(lags: list[PartitionLag]) -> int:
    return sum(p.lag for p in lags)
