"""Bulk producing with delivery awaited, for the vendor publisher and the DLQ replay.

aiokafka's default 16 KB batch is round-trip bound (DESIGN §10), so bulk sends use large
batches and a short linger.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum

from aiokafka import AIOKafkaProducer


@dataclass(frozen=True, slots=True)
class Outgoing:
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


# Dead letters carry the original message and hand-off items carry it once more with the
# verdict, so they are larger than the input topic's messages; aiokafka's default is 1 MB.
MAX_REQUEST_BYTES = 8_388_608


class Codec(StrEnum):
    """Kafka's codecs, as a producer's `compression.type` names them."""

    zstd = "zstd"
    lz4 = "lz4"
    gzip = "gzip"
    snappy = "snappy"
    none = "none"


@asynccontextmanager
async def bulk_producer(
    bootstrap: str, compression: Codec = Codec.none
) -> AsyncIterator[AIOKafkaProducer]:
    """`compression`: how the broker stores and moves the batches, as a vendor may choose."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        max_batch_size=1_048_576,
        linger_ms=5,
        max_request_size=MAX_REQUEST_BYTES,
        acks="all",
        compression_type=None if compression is Codec.none else compression.value,
    )
    try:
        await producer.start()  # inside: a broker that cannot be reached still gets a stop()
        yield producer
    finally:
        await producer.stop()


async def send_all(producer: AIOKafkaProducer, topic: str, messages: Iterable[Outgoing]) -> int:
    """Send and wait for every delivery; raises if any message was not stored."""
    futures = [
        await producer.send(topic, m.value, key=m.key, headers=list(m.headers) or None)
        for m in messages
    ]
    await asyncio.gather(*futures)
    return len(futures)


async def publish_all(
    bootstrap: str, topic: str, messages: Iterable[Outgoing], compression: Codec = Codec.none
) -> int:
    """Send every message on a producer of its own and wait for each delivery.

    The producer takes messages as it has room for them, so a generator (`hocba publish`
    signs as it reads) is held only as far as the messages in flight."""
    async with bulk_producer(bootstrap, compression) as producer:
        return await send_all(producer, topic, messages)
