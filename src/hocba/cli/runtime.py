"""Shared by commands: settings, a broker (the configured one or an embedded one), and the
check that a command writing a demo tree does not write over anything."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

from hocba.cli.errors import UserError
from hocba.kafka.broker import embedded_broker
from hocba.kafka.topics import LARGE_MESSAGES, ensure_topics
from hocba.settings import Settings


def load_settings() -> Settings:
    return Settings()


@contextlib.contextmanager
def kafka(settings: Settings) -> Iterator[str]:
    """Yield a bootstrap address: HOCBA_KAFKA_BOOTSTRAP, or an embedded broker for the block."""
    if settings.kafka_bootstrap:
        yield settings.kafka_bootstrap
        return
    with embedded_broker(settings.data_dir / "logs") as broker:
        yield broker.bootstrap


def create_topics(settings: Settings, bootstrap: str) -> None:
    """The worker's topics, where they do not exist yet (a cluster creates its own first,
    deploy/kubernetes/topics.yaml)."""

    async def create() -> None:
        partitions, replication = settings.topic_partitions, settings.topic_replication
        inputs = [settings.submissions_topic]
        await ensure_topics(bootstrap, inputs, partitions, replication=replication)
        larger = [settings.dlq_topic, settings.landing_topic]
        await ensure_topics(bootstrap, larger, partitions, LARGE_MESSAGES, replication)

    asyncio.run(create())


def require_empty_dir(directory: Path) -> None:
    """Demo trees hold an approved-certificate register and keys: written into a real trust
    dir they would approve the demo keys and drop the real register."""
    if directory.exists() and any(directory.iterdir()):
        raise UserError(f"{directory} is not empty: name a new or empty directory")
