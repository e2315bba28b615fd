"""The worker's Faust transport against the embedded broker (`kafka.worker_transport`)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiokafka.consumer.fetcher import READ_COMMITTED

from hocba import worker as worker_module
from hocba.kafka.broker import EmbeddedBroker
from hocba.kafka.offset_gaps import GapAfterFirstOffsetConsumer
from hocba.scenario import build_scenario
from tests.conftest import isolated_settings


def _started_fetcher(app: Any) -> Any:
    """The fetcher of the consumer the worker's transport makes, as it is once started:
    what it sends the broker."""

    async def start_and_stop() -> Any:
        consumer = app.consumer._thread._create_consumer(asyncio.get_running_loop())
        await consumer.start()
        try:
            return consumer._fetcher
        finally:
            await consumer.stop()

    return asyncio.run(start_and_stop())


def _worker_app(tmp_path: Path, bootstrap: str, **overrides: Any) -> Any:
    scenario = build_scenario(tmp_path / "in", records=20, provinces=("01",))
    settings = isolated_settings(
        tmp_path, trust_dir=scenario.trust_dir, reference_dir=scenario.reference_dir, **overrides
    )
    return worker_module.create_app(settings, bootstrap, worker_module.Role.VERIFY)


def test_the_worker_asks_the_broker_to_hold_a_fetch_for_its_setting_not_faust_s_1_5_s(
    broker: EmbeddedBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded broker holds a fetch that finds nothing for all of its wait, even when a
    message arrives meanwhile: Faust's fixed 1.5 s put up to 0.8 s between publishing and
    the worker. The setting must reach the fetcher the started consumer sends requests
    with, and the consumer must still record the offset gaps Faust leaves."""
    # the worker installs its batch reader in aiokafka for the whole process: not in tests'
    monkeypatch.setattr(worker_module, "read_any_batch", lambda limit: None)
    app = _worker_app(tmp_path, broker.bootstrap, fetch_max_wait_ms=37)
    assert isinstance(app.consumer, GapAfterFirstOffsetConsumer)
    assert _started_fetcher(app)._fetch_max_wait_ms == 37


def test_the_worker_reads_only_committed_records(
    broker: EmbeddedBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Faust asks for uncommitted records too, so a vendor's aborted transaction would land.
    The embedded broker has no transactions to abort (aiokafka's transactional producer is
    refused there), so what is checked is what the started fetcher asks for; aiokafka skips
    the aborted batches Apache Kafka then lists."""
    monkeypatch.setattr(worker_module, "read_any_batch", lambda limit: None)
    app = _worker_app(tmp_path, broker.bootstrap)
    assert _started_fetcher(app)._isolation_level == READ_COMMITTED
