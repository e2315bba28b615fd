"""Messages a vendor compressed, with every codec Kafka has, land like any other.

Kafka keeps the producer's codec (`compression.type=producer`), so the worker must read
them all. aiokafka reads lz4, snappy and zstd only with cramjam installed: without it, one
such message made the worker's fetcher crash before any stage saw it, at every restart.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from hocba.kafka.broker import EmbeddedBroker
from hocba.kafka.read import read_topic
from hocba.kafka.topics import ensure_topics
from hocba.runner import spawn_worker, stop_worker, wait_drained
from hocba.scenario import build_scenario, signed_messages
from tests.conftest import isolated_settings
from tests.integration.harness import load_reference, query

pytestmark = pytest.mark.integration

CODECS = ("gzip", "snappy", "lz4", "zstd")


def test_messages_compressed_with_each_kafka_codec_land(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    scenario = build_scenario(tmp_path / "in", records=40, provinces=("01",))
    settings = isolated_settings(
        tmp_path / "data", trust_dir=scenario.trust_dir, reference_dir=scenario.reference_dir
    )
    load_reference(settings, scenario.reference)
    messages = signed_messages(scenario, batch_size=10)
    assert len(messages) >= len(CODECS)

    async def publish_compressed() -> None:
        topics = [settings.submissions_topic, settings.dlq_topic, settings.landing_topic]
        await ensure_topics(broker.bootstrap, topics, settings.topic_partitions)
        for codec, message in zip(itertools.cycle(CODECS), messages):
            producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, compression_type=codec)
            await producer.start()
            try:
                await producer.send_and_wait(
                    settings.submissions_topic, message.value, key=message.key
                )
            finally:
                await producer.stop()

    asyncio.run(publish_compressed())
    worker = spawn_worker(settings, broker.bootstrap, tmp_path / "worker.log")
    try:
        wait_drained(settings, broker.bootstrap, worker, timeout_s=120)
    finally:
        assert stop_worker(worker) == 0
    landed = query(settings, "SELECT count() AS n FROM {db}.records FINAL")
    assert landed == [{"n": len(scenario.records)}]
    assert asyncio.run(read_topic(broker.bootstrap, settings.dlq_topic)) == []
