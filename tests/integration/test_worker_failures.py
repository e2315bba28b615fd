"""A worker that cannot do its job stops, and commits nothing it has not landed.

Bad input never gets here (it becomes a dead letter); these are a missing trust store and
an error in the worker's own code (injected through `inject/sitecustomize.py`).
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from hocba.kafka.broker import EmbeddedBroker
from hocba.kafka.lag import PartitionLag, partition_lags
from hocba.runner import spawn_worker, stop_worker
from hocba.scenario import build_scenario, signed_messages
from hocba.settings import Settings
from tests.conftest import isolated_settings
from tests.integration.harness import INJECT, publish, query

pytestmark = pytest.mark.integration


def wait_exit(worker: subprocess.Popen[bytes], timeout_s: float = 60.0) -> int:
    try:
        return worker.wait(timeout_s)
    finally:
        stop_worker(worker)


def run_failing_worker(
    broker: EmbeddedBroker, tmp_path: Path, inject: dict[str, str], **settings_: object
) -> tuple[Settings, int, list[PartitionLag]]:
    """600 records of one province, published; a worker that fails as `inject` says, run
    until it stops: its settings, the messages published, and its commits."""
    scenario = build_scenario(tmp_path / "in", records=600, provinces=("01",))
    settings = isolated_settings(
        tmp_path / "data",
        trust_dir=scenario.trust_dir,
        reference_dir=scenario.reference_dir,
        **settings_,
    )
    messages = signed_messages(scenario, batch_size=20)
    asyncio.run(publish(broker.bootstrap, settings, messages))
    worker = spawn_worker(
        settings,
        broker.bootstrap,
        tmp_path / "worker.log",
        extra_env={"PYTHONPATH": str(INJECT), **inject},
    )
    assert wait_exit(worker) != 0
    lags = asyncio.run(
        partition_lags(broker.bootstrap, settings.consumer_group, settings.submissions_topic)
    )
    return settings, len(messages), lags


def test_an_error_in_the_worker_stops_it_before_anything_is_committed(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    settings, published, lags = run_failing_worker(broker, tmp_path, {"HOCBA_TEST_FAIL_BATCH": "1"})
    assert "a bug, injected by the test" in (tmp_path / "worker.log").read_text()
    assert sum(p.end for p in lags) == published
    assert [p.committed for p in lags if p.committed > 0] == []  # nothing was landed
    assert query(settings, "SELECT count() AS n FROM {db}.records") == [{"n": 0}]


def test_a_batch_cancelled_while_the_worker_runs_stops_it_rather_than_every_batch_behind(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """Each batch's delivery waits for the one before it: one cancelled would cancel all
    the rest, none acked, and the worker would sit there consuming nothing."""
    inject = {"HOCBA_TEST_FAIL_BATCH": "1", "HOCBA_TEST_FAIL_CANCELLED": "1"}
    settings, published, lags = run_failing_worker(broker, tmp_path, inject)
    assert "a batch's delivery was cancelled while the worker ran" in (
        (tmp_path / "worker.log").read_text()
    )
    assert sum(p.end for p in lags) == published
    assert [p.committed for p in lags if p.committed > 0] == []
    assert query(settings, "SELECT count() AS n FROM {db}.records") == [{"n": 0}]


def test_batches_behind_one_that_fails_late_commit_nothing_they_did_not_land(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """Batches land and are acked in order: the second of several fails two seconds late,
    while those behind it are prepared and staged. Whatever was committed when the worker
    stopped, every offset below a partition's commit is landed or dead-lettered (it has
    its audit row)."""
    settings, published, lags = run_failing_worker(
        broker,
        tmp_path,
        {"HOCBA_TEST_FAIL_BATCH": "2", "HOCBA_TEST_FAIL_DELAY_S": "2"},
        batch_max_bytes=60_000,  # a few messages per batch: several batches in flight
    )
    audited = {
        (int(row["p"]), int(row["o"]))
        for row in query(
            settings,
            "SELECT kafka_partition AS p, kafka_offset AS o FROM {db}.submissions",
        )
    }
    committed = {(p.partition, offset) for p in lags for offset in range(max(p.committed, 0))}
    assert audited  # the first batch landed before the failure
    assert committed <= audited
    assert len(audited) < published  # the failing batch and those behind it did not


@pytest.mark.parametrize(
    ("missing", "error"),
    [
        ("trust", "error: HOCBA_TRUST_DIR is not set"),
        # without Departments every message would be dead-lettered, each as the sender's fault
        ("reference", "error: HOCBA_REFERENCE_DIR is not set"),
        ("departments", "holds no Departments (departments.csv or .json)"),
    ],
)
def test_a_worker_without_its_trust_or_reference_data_does_not_start(
    broker: EmbeddedBroker, tmp_path: Path, missing: str, error: str
) -> None:
    scenario = build_scenario(tmp_path / "in", records=10, provinces=("01",))
    if missing == "departments":
        for departments in scenario.reference_dir.glob("departments.*"):
            departments.unlink()
    settings = isolated_settings(
        tmp_path / "data",
        trust_dir=None if missing == "trust" else scenario.trust_dir,
        reference_dir=None if missing == "reference" else scenario.reference_dir,
    )
    worker = spawn_worker(settings, broker.bootstrap, tmp_path / "worker.log")
    assert wait_exit(worker) == 2
    assert error in (tmp_path / "worker.log").read_text()
