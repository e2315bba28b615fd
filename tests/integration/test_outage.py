"""A ClickHouse outage during ingestion: nothing good is dead-lettered, no offset moves past
unlanded records, and ingestion completes by itself once the store is back.

The outage is real for the worker process: `HOCBA_STORE_FAULT_FILE` makes every store call
fail while the file exists (`hocba.store.faulty`).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from hocba.kafka.broker import EmbeddedBroker
from hocba.kafka.lag import partition_lags
from hocba.kafka.read import read_topic
from hocba.runner import spawn_worker, stop_worker, wait_drained
from hocba.scenario import build_scenario, signed_messages
from tests.conftest import isolated_settings
from tests.integration.harness import load_reference, publish, query

pytestmark = pytest.mark.integration
STORE_TRIED_GUARD_S = 60.0  # the worker meets the outage at its next batch: a guard, not a time


def test_outage_holds_offsets_and_recovers_without_dead_letters(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    scenario = build_scenario(
        tmp_path / "scenario", records=300, provinces=("01",), schools_per_province=2
    )
    fault = tmp_path / "clickhouse-down"
    settings = isolated_settings(
        tmp_path / "data",
        trust_dir=scenario.trust_dir,
        reference_dir=scenario.reference_dir,
        store_fault_file=fault,
    )
    load_reference(settings, scenario.reference)
    messages = signed_messages(scenario, batch_size=25)
    before, during = messages[: len(messages) // 2], messages[len(messages) // 2 :]
    bootstrap, log = broker.bootstrap, tmp_path / "worker.log"
    worker = spawn_worker(settings, bootstrap, log)
    try:
        asyncio.run(publish(bootstrap, settings, before))
        wait_drained(settings, bootstrap, worker, timeout_s=90)
        fault.touch()  # the store was open and landing: now every call fails
        asyncio.run(publish(bootstrap, settings, during))
        deadline = time.monotonic() + STORE_TRIED_GUARD_S
        # three tries of the store, which must neither exit nor dead-letter
        while log.read_text(errors="replace").count("simulated ClickHouse outage") < 3:
            assert time.monotonic() < deadline, "the worker did not keep trying the store"
            time.sleep(0.2)
        assert worker.poll() is None, "the worker must wait out an outage, not exit"
        lags = asyncio.run(
            partition_lags(bootstrap, settings.consumer_group, settings.submissions_topic)
        )
        assert sum(p.lag for p in lags) == len(during)
        assert asyncio.run(read_topic(bootstrap, settings.dlq_topic)) == []
        fault.unlink()
        wait_drained(settings, bootstrap, worker, timeout_s=90)
    finally:
        assert stop_worker(worker) == 0
    assert asyncio.run(read_topic(bootstrap, settings.dlq_topic)) == []
    rows = query(
        settings,
        "SELECT count() AS n, uniqExact(school_year, school_code, grade, student_key) AS keys"
        " FROM {db}.records FINAL",
    )
    assert rows == [{"n": len(scenario.records), "keys": len(scenario.records)}]
    outcomes = query(
        settings, "SELECT outcome, count() AS n FROM {db}.submissions GROUP BY outcome"
    )
    assert outcomes == [{"outcome": "accepted", "n": len(messages)}]
