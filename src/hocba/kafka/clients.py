"""The Kafka clients the tools use (lag, topic reads and checks, topic creation).

Their requests (metadata, offsets, group descriptions, topic creation) are answered in
milliseconds. A listener that is not Kafka (a wrong port) never answers, and aiokafka's
default of 40 s would hold an operator, or a `lag --max-lag` probe, that long without a word.
The producers keep the default: a large batch on a busy cluster may take longer.
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from hocba.kafka.fetch_reader import read_any_batch

REQUEST_TIMEOUT_MS = 10_000


def tool_consumer(bootstrap: str) -> AIOKafkaConsumer:
    """A consumer that reads and looks up offsets, and never commits."""
    read_any_batch()
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, request_timeout_ms=REQUEST_TIMEOUT_MS
    )


def committed_reader(bootstrap: str) -> AIOKafkaConsumer:
    """A consumer that reads what the worker reads (committed records only) a little at a
    time, and fails rather than jump elsewhere when an offset is gone: for a look at what
    lies between a group's commit and the end of a partition."""
    read_any_batch()
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        request_timeout_ms=REQUEST_TIMEOUT_MS,
        isolation_level="read_committed",
        auto_offset_reset="none",
        max_partition_fetch_bytes=65_536,  # a larger first batch still comes whole
    )


def tool_admin(bootstrap: str) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=REQUEST_TIMEOUT_MS)
