"""Probes and shutdown as Kubernetes and operators see them: `/ready` is true for an idle
worker and follows ClickHouse while `/health` stays up, `hocba lag` sees the worker, and
SIGTERM in the middle of a burst loses and doubles nothing.

The outage is real for the worker process (`HOCBA_STORE_FAULT_FILE`, `hocba.store.faulty`).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from hocba.kafka.broker import EmbeddedBroker
from hocba.kafka.lag import partition_lags, total_lag
from hocba.runner import settings_env, spawn_worker, stop_worker, wait_drained
from hocba.scenario import build_scenario, signed_messages
from hocba.settings import Settings
from tests.conftest import isolated_settings
from tests.integration.harness import load_reference, publish, query

pytestmark = pytest.mark.integration
# SIGTERM → exit is one batch to finish, a commit and a group leave: a second or two. This is
# a guard against a hang (the worker is then SIGKILLed and exits non-zero), not a time asserted.
SHUTDOWN_GUARD_S = 60.0


def get(port: int, page: str) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body); a 503 is an answer here, not an error."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{page}", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_for_status(port: int, page: str, status: int, timeout_s: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            code, body = get(port, page)
        except OSError as error:  # not listening yet
            code, body = 0, {"error": str(error)}
        if code == status:
            return body
        assert time.monotonic() < deadline, f"{page} still answers {code} {body}"
        time.sleep(0.3)


def test_ready_follows_clickhouse_while_health_stays_up(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    scenario = build_scenario(
        tmp_path / "scenario", records=100, provinces=("01",), schools_per_province=1
    )
    fault = tmp_path / "clickhouse-down"
    settings = isolated_settings(
        tmp_path / "data",
        trust_dir=scenario.trust_dir,
        reference_dir=scenario.reference_dir,
        store_fault_file=fault,
    )
    load_reference(settings, scenario.reference)
    port = settings.web_port
    worker = spawn_worker(settings, broker.bootstrap, tmp_path / "worker.log")
    try:
        idle = wait_for_status(port, "/ready", 200, timeout_s=60)
        assert idle == _ready(clickhouse=True), "an idle worker must be ready, or rollouts hang"
        asyncio.run(publish(broker.bootstrap, settings, signed_messages(scenario, batch_size=25)))
        wait_drained(settings, broker.bootstrap, worker, timeout_s=90)
        assert get(port, "/ready") == (200, _ready(clickhouse=True))
        assert_lag_probe_sees_the_worker(settings, broker.bootstrap)

        fault.touch()
        down = wait_for_status(port, "/ready", 503)
        assert down == _ready(clickhouse=False)
        assert get(port, "/health")[0] == 200
        assert worker.poll() is None, "an unreachable ClickHouse must not stop the worker"

        fault.unlink()
        assert wait_for_status(port, "/ready", 200) == _ready(clickhouse=True)
    finally:
        assert stop_worker(worker) == 0


def assert_lag_probe_sees_the_worker(settings: Settings, bootstrap: str) -> None:
    """`hocba lag` while the worker runs: no lag, the worker is the group's one member (the
    embedded broker reports member ids only), the lander's group is shown and empty."""
    result = subprocess.run(
        [sys.executable, "-m", "hocba.cli.main", "lag", "--json", "--all-topics"],
        env={**os.environ, **settings_env(settings, bootstrap)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    report = json.loads(result.stdout)
    assert report["lag"] == 0
    assert [m["partitions"] for m in report["members"]] in ([None], [list(range(4))])
    assert report["lander"]["group"] == f"{settings.consumer_group}-lander"
    assert report["lander"]["members"] in ([], None)


def _ready(*, clickhouse: bool) -> dict[str, bool]:
    return {
        "ready": clickhouse,
        "partitions_assigned": True,
        "clickhouse": clickhouse,
        "not_backpressured": True,
    }


def _landed(port: int) -> int:
    """Records landed so far by the worker listening on `port` (0 until it listens)."""
    try:
        return int(get(port, "/health")[1]["totals"].get("records_landed", 0))
    except OSError:
        return 0


def _progress(settings: Settings, bootstrap: str) -> tuple[int, int]:
    """(messages acknowledged, messages left) on the input topic."""
    lags = asyncio.run(
        partition_lags(bootstrap, settings.consumer_group, settings.submissions_topic)
    )
    return sum(max(p.committed, 0) for p in lags), total_lag(lags)


def test_sigterm_mid_burst_exits_cleanly_and_restart_lands_everything_once(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    scenario = build_scenario(
        tmp_path / "scenario", records=1500, provinces=("01",), schools_per_province=2
    )
    # One message per batch: many small batches, so SIGTERM lands in the middle of them.
    settings = isolated_settings(
        tmp_path / "data",
        trust_dir=scenario.trust_dir,
        reference_dir=scenario.reference_dir,
        batch_max_messages=1,
    )
    load_reference(settings, scenario.reference)
    messages = signed_messages(scenario, batch_size=10)
    asyncio.run(publish(broker.bootstrap, settings, messages))
    log = tmp_path / "worker.log"
    worker = spawn_worker(settings, broker.bootstrap, log)
    try:
        deadline = time.monotonic() + 60
        while _landed(settings.web_port) == 0:
            assert worker.poll() is None and time.monotonic() < deadline, "nothing was landed"
            time.sleep(0.05)
        exit_code = stop_worker(worker, timeout_s=SHUTDOWN_GUARD_S)
    finally:
        stop_worker(worker)
    assert exit_code == 0, log.read_text(errors="replace")[-2000:]
    acked, left = _progress(settings, broker.bootstrap)
    assert left > 0, "the worker finished the burst before SIGTERM: the test proves nothing"

    restarted = spawn_worker(settings, broker.bootstrap, log)
    try:
        wait_drained(settings, broker.bootstrap, restarted, timeout_s=120)
    finally:
        assert stop_worker(restarted) == 0
    n = len(scenario.records)
    assert query(settings, "SELECT count() AS n FROM {db}.records FINAL") == [{"n": n}]
    assert query(settings, "SELECT count() AS n FROM {db}.records") == [{"n": n}]
    audit = query(settings, "SELECT outcome, count() AS n FROM {db}.submissions GROUP BY outcome")
    assert audit == [{"outcome": "accepted", "n": len(messages)}], (
        f"{acked} acknowledged before SIGTERM: a message landed but not committed is "
        "re-delivered and audited again as a duplicate"
    )
