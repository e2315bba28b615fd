"""A message larger than the worker will read (1 MiB by default) is dead-lettered whole, its
original bytes included, by one worker and through the verify → land hand-off alike; the
topics the worker creates take such dead letters."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from hocba.cli.runtime import create_topics
from hocba.kafka.broker import EmbeddedBroker
from hocba.kafka.producer import MAX_REQUEST_BYTES, Outgoing
from hocba.scenario import build_scenario, signed_messages
from tests.conftest import isolated_settings
from tests.integration.harness import query, run_pipeline

pytestmark = pytest.mark.integration

BIG = b"\xc3\x01" + bytes(1_500_000)  # single-object magic, then more than 1 MiB


@pytest.mark.parametrize("verifiers", [0, 1], ids=["one-worker", "verifier+lander"])
def test_a_message_over_the_limit_is_dead_lettered_with_its_bytes(
    broker: EmbeddedBroker, tmp_path: Path, verifiers: int
) -> None:
    scenario = build_scenario(tmp_path / "in", records=40, provinces=("01",))
    settings = isolated_settings(
        tmp_path / "data", trust_dir=scenario.trust_dir, reference_dir=scenario.reference_dir
    )
    good = signed_messages(scenario, batch_size=20)
    run = run_pipeline(
        settings,
        broker.bootstrap,
        [Outgoing(b"big", BIG), *good],
        tmp_path / "worker.log",
        timeout_s=120,
        verifiers=verifiers,
    )
    assert run.worker_exit_code == 0
    [letter] = run.dead_letters
    assert letter.headers["hocba.error.code"] == "decode.too_large"
    assert letter.value == BIG
    assert query(settings, "SELECT count() AS n FROM {db}.records") == [{"n": 40}]


def test_the_worker_creates_topics_that_take_more_than_its_input(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """On a broker's default limit, the dead letter of a message near it would be refused."""
    settings = isolated_settings(tmp_path)
    create_topics(settings, broker.bootstrap)
    larger = [settings.dlq_topic, settings.landing_topic]
    limits = asyncio.run(message_limits(broker.bootstrap, [settings.submissions_topic, *larger]))
    assert limits[settings.submissions_topic] != str(MAX_REQUEST_BYTES)  # the broker's default
    assert [limits[t] for t in larger] == [str(MAX_REQUEST_BYTES)] * 2


def test_the_topics_a_worker_creates_take_the_replication_asked(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """A worker starting before the cluster's topic operator created its topics unreplicated;
    production sets HOCBA_TOPIC_REPLICATION=3 (the embedded broker reports what it was asked)."""
    settings = isolated_settings(tmp_path).model_copy(update={"topic_replication": 3})
    create_topics(settings, broker.bootstrap)
    topics = [settings.submissions_topic, settings.dlq_topic, settings.landing_topic]
    assert asyncio.run(replication_factors(broker.bootstrap, topics)) == dict.fromkeys(topics, 3)


async def replication_factors(bootstrap: str, topics: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    return {t["topic"]: len(t["partitions"][0]["replicas"]) for t in described}


async def message_limits(bootstrap: str, topics: list[str]) -> dict[str, str | None]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t) for t in topics]
        )
    finally:
        await admin.close()
    return {
        name: next((e[1] for e in entries if e[0] == "max.message.bytes"), None)
        for _, _, _, name, entries in response.resources
    }
