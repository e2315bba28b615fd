"""Shared by commands: settings, and a broker (the configured one or an embedded one)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from hocba.kafka.broker import embedded_broker
from hocba.kafka.topics import ensure_topics
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
    asyncio.run(
        ensure_topics(
            bootstrap,
            [settings.submissions_topic, settings.dlq_topic],
            settings.topic_partitions,
        )
    )
