"""The worker's Faust transport against the embedded broker (`kafka.worker_transport`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hocba import worker as worker_module
from hocba.kafka.broker import EmbeddedBroker
from hocba.kafka.offset_gaps import GapAfterFirstOffsetConsumer
from hocba.scenario import build_scenario
from tests.conftest import isolated_settings


def test_the_worker_asks_the_broker_to_hold_a_fetch_for_its_setting_not_faust_s_1_5_s(
    broker: EmbeddedBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded broker holds a fetch that finds nothing for all of its wait, even when a
    message arrives meanwhile: Faust's fixed 1.5 s put up to 0.8 s between publishing and
    the worker. The setting must reach the fetcher the started consumer sends requests
    with, and the consumer must still record the offset gaps Faust leaves."""
    # the worker installs its batch reader in aiokafka for the whole process: not in tests'
    monkeypatch.setattr(worker_module, "read_any_batch", lambda limit: None)
    scenario = build_scenario(tmp_path / "in", records=20, provinces=("01",))
    settings = isolated_settings(
        tmp_path,
        trust_dir=scenario.trust_dir,
        reference_dir=scenario.reference_dir,
        fetch_max_wait_ms=37,
    )
    app = worker_module.create_app(settings, broker.bootstrap, worker_module.Role.VERIFY)

    async def fetch_wait() -> int:
        consumer = app.consumer._thread._create_consumer(asyncio.get_running_loop())
        await consumer.start()
        try:
            return int(consumer._fetcher._fetch_max_wait_ms)
        finally:
            await consumer.stop()

    assert isinstance(app.consumer, GapAfterFirstOffsetConsumer)
    assert asyncio.run(fetch_wait()) == 37
