"""Operators' view of a real run: lag, Prometheus counters, readiness, scale-out."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hocba.kafka.broker import EmbeddedBroker, free_port
from hocba.kafka.fetch_reader import TolerantMemoryRecords
from hocba.kafka.producer import Outgoing
from hocba.kafka.read import read_topic
from hocba.runner import settings_env, spawn_worker, stop_worker, wait_drained
from hocba.scenario import (
    Scenario,
    bad_messages,
    build_scenario,
    signed_messages,
    write_records_by_department,
)
from tests.conftest import isolated_settings
from tests.integration.harness import chdb_held, load_reference, publish, query

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return build_scenario(
        tmp_path_factory.mktemp("ops"), records=600, provinces=("01", "48"), schools_per_province=3
    )


def hocba(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hocba.cli.main", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_lag_is_exact_before_and_zero_after_consumption(
    broker: EmbeddedBroker, scenario: Scenario, tmp_path: Path
) -> None:
    settings = isolated_settings(
        tmp_path, trust_dir=scenario.trust_dir, reference_dir=scenario.reference_dir
    )
    messages = signed_messages(scenario, batch_size=20)
    asyncio.run(publish(broker.bootstrap, settings, messages))
    env = settings_env(settings, broker.bootstrap)

    before = hocba("lag", "--json", env=env)
    assert before.returncode == 0, before.stderr
    assert json.loads(before.stdout)["lag"] == len(messages)
    over = hocba("lag", "--max-lag", "5", env=env)
    assert over.returncode == 1
    assert over.stderr.splitlines() == [f"lag {len(messages)} is over --max-lag 5"]
    probe = hocba("lag", "--json", "--max-lag", "5", env=env)
    assert probe.returncode == 1
    assert json.loads(probe.stdout) | {"partitions": None, "members": None} == {
        "group": settings.consumer_group,
        "topic": settings.submissions_topic,
        "lag": len(messages),
        "partitions": None,
        "members": None,
        "max_lag": 5,
        "ok": False,
    }
    within = hocba("lag", "--json", "--max-lag", str(len(messages)), env=env)
    assert within.returncode == 0, within.stderr
    assert (json.loads(within.stdout)["ok"], within.stderr) == (True, "")
    mistyped = hocba("lag", "--topic", "hocba.submisions", "--max-lag", "0", env=env)
    assert mistyped.returncode == 2  # "cannot ask", not lag 0
    assert "topic hocba.submisions does not exist" in mistyped.stderr
    unreachable = hocba("lag", env={**env, "HOCBA_KAFKA_BOOTSTRAP": "127.0.0.1:1"})
    assert unreachable.returncode == 2
    assert unreachable.stderr.splitlines() == [
        "error: cannot reach Kafka at 127.0.0.1:1: is the broker up, and HOCBA_KAFKA_BOOTSTRAP "
        "right?"
    ]

    load_reference(settings, scenario.reference)
    worker = spawn_worker(settings, broker.bootstrap, tmp_path / "worker.log")
    try:
        wait_drained(settings, broker.bootstrap, worker, timeout_s=120)
    finally:
        stop_worker(worker)
    after = json.loads(hocba("lag", "--json", env=env).stdout)
    assert after["lag"] == 0
    assert all(p["committed"] == p["end"] for p in after["partitions"])


def test_metrics_match_the_audit_and_ready_reports(
    broker: EmbeddedBroker, scenario: Scenario, tmp_path: Path
) -> None:
    settings = isolated_settings(
        tmp_path, trust_dir=scenario.trust_dir, reference_dir=scenario.reference_dir
    )
    good = signed_messages(scenario, batch_size=30)
    load_reference(settings, scenario.reference)
    asyncio.run(publish(broker.bootstrap, settings, [*good, *bad_messages(scenario, good)]))
    worker = spawn_worker(settings, broker.bootstrap, tmp_path / "worker.log")
    try:
        wait_drained(settings, broker.bootstrap, worker, timeout_s=120)
        metrics = scrape(settings.web_port)
        with urllib.request.urlopen(f"http://127.0.0.1:{settings.web_port}/ready") as response:
            ready = json.loads(response.read())
    finally:
        stop_worker(worker)
    audit = query(
        settings,
        "SELECT outcome, reason, count() AS n FROM {db}.submissions GROUP BY outcome, reason",
    )
    for row in audit:
        labels = (("outcome", row["outcome"]), ("reason", row["reason"]))
        assert metrics[("hocba_messages_total", labels)] == row["n"], row
    landed = query(settings, "SELECT count() AS n FROM {db}.records")[0]["n"]
    assert metrics[("hocba_records_total", (("outcome", "landed"),))] == landed
    assert metrics[("hocba_reload_failing", ())] == 0  # wired: NaN if nothing was watched
    assert metrics[("hocba_crls_past_next_update", ())] == 0
    assert 0 < metrics[("hocba_trust_store_age_seconds", ())] < 600
    assert ready == {
        "ready": True,
        "partitions_assigned": True,
        "clickhouse": True,
        "not_backpressured": True,
    }


def _assigned(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as response:
            return bool(json.loads(response.read())["partitions_assigned"])
    except OSError:  # not listening yet, or 503 while not ready
        return False


def test_killing_one_of_two_verifiers_moves_its_partitions(
    broker: EmbeddedBroker, scenario: Scenario, tmp_path: Path
) -> None:
    """Both verifiers own partitions; one is killed; the second half of the input, spread
    over every partition, can only land if the survivor took the dead one's partitions."""
    settings = isolated_settings(
        tmp_path, trust_dir=scenario.trust_dir, reference_dir=scenario.reference_dir
    )
    messages: list[Outgoing] = signed_messages(scenario, batch_size=5)
    first, second = messages[: len(messages) // 2], messages[len(messages) // 2 :]
    load_reference(settings, scenario.reference)
    asyncio.run(publish(broker.bootstrap, settings, first))
    lander = spawn_worker(settings, broker.bootstrap, tmp_path / "lander.log", role="land")
    ports = [free_port(), free_port()]
    verifiers = [
        spawn_worker(
            settings.model_copy(update={"web_port": port}),
            broker.bootstrap,
            tmp_path / f"verify{n}.log",
            role="verify",
        )
        for n, port in enumerate(ports)
    ]
    try:
        deadline = time.monotonic() + 60
        while not all(_assigned(p) for p in ports):
            assert time.monotonic() < deadline, "the two verifiers never shared the partitions"
            time.sleep(0.2)
        wait_drained(settings, broker.bootstrap, [lander, *verifiers], handoff=True, timeout_s=120)
        verifiers[0].kill()
        verifiers[0].wait()
        asyncio.run(publish(broker.bootstrap, settings, second))
        wait_drained(
            settings, broker.bootstrap, [lander, verifiers[1]], handoff=True, timeout_s=180
        )
    finally:
        exit_codes = [stop_worker(process) for process in (*verifiers, lander)]
    assert exit_codes[1:] == [0, 0], "the surviving verifier and the lander stop cleanly"
    counts = query(
        settings, "SELECT count() AS n, uniqExact(student_key) AS s FROM {db}.records FINAL"
    )[0]
    assert counts == {"n": len(scenario.records), "s": len(scenario.records)}
    landed = query(settings, "SELECT count() AS n FROM {db}.records")[0]["n"]
    assert landed == len(scenario.records), "a re-delivered batch must not land again"


def test_stats_asks_the_running_worker_that_owns_the_store(
    broker: EmbeddedBroker, scenario: Scenario, tmp_path: Path
) -> None:
    settings = isolated_settings(
        tmp_path, trust_dir=scenario.trust_dir, reference_dir=scenario.reference_dir
    )
    load_reference(settings, scenario.reference)
    asyncio.run(publish(broker.bootstrap, settings, signed_messages(scenario, batch_size=30)))
    worker = spawn_worker(settings, broker.bootstrap, tmp_path / "worker.log")
    try:
        wait_drained(settings, broker.bootstrap, worker, timeout_s=120)
        env = settings_env(settings, broker.bootstrap)
        result = hocba("stats", "--json", env=env)
        other = tmp_path / "other"
        with chdb_held(other / "chdb"):  # held too, but not by the worker on that port
            elsewhere = hocba("stats", "--json", env={**env, "HOCBA_DATA_DIR": str(other)})
    finally:
        stop_worker(worker)
    assert result.returncode == 0, result.stderr
    assert elsewhere.returncode == 2, elsewhere.stdout[:200]  # not the running worker's figures
    assert f"no worker holding it answers on HOCBA_WEB_PORT {settings.web_port}" in (
        elsewhere.stderr
    )
    national = json.loads(result.stdout)["national"]
    assert national["records"] == len(scenario.records)
    assert national["departments_sending"] == 2


def test_publish_refuses_a_topic_that_does_not_exist(
    broker: EmbeddedBroker, scenario: Scenario, tmp_path: Path
) -> None:
    """The broker would create it, and no worker reads it: a typo would look like success."""
    code, path = next(iter(write_records_by_department(scenario, tmp_path / "records").items()))
    leaf = scenario.trust_dir / "leaves" / code
    keys = ["--key", f"{leaf}.key.pem", "--chain", f"{leaf}.chain.pem", "--sender", code]
    env = {"HOCBA_KAFKA_BOOTSTRAP": broker.bootstrap}
    done = hocba("publish", str(path), *keys, "--topic", "hocba.submision", env=env)
    assert done.returncode == 2, done.stdout
    assert f"topic hocba.submision does not exist on {broker.bootstrap}: check --topic" in (
        done.stderr
    )


def _codecs_stored(bootstrap: str, topic: str, monkeypatch: pytest.MonkeyPatch) -> set[int]:
    """The codec of each batch the broker keeps on `topic` (0: none, 4: zstd), as the
    consumer's reader meets them."""
    codecs: set[int] = set()
    next_batch = TolerantMemoryRecords.next_batch

    def noting(self: TolerantMemoryRecords) -> Any:
        batch = next_batch(self)
        if batch is not None:
            codecs.add(batch.compression_type)
        return batch

    monkeypatch.setattr(TolerantMemoryRecords, "next_batch", noting)
    assert asyncio.run(read_topic(bootstrap, topic))
    return codecs


@pytest.mark.parametrize(("flag", "codec"), [((), 4), (("--compression", "none"), 0)])
def test_publish_compresses_with_zstd_unless_told_otherwise(
    broker: EmbeddedBroker,
    scenario: Scenario,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    flag: tuple[str, ...],
    codec: int,
) -> None:
    code, path = next(iter(write_records_by_department(scenario, tmp_path / "records").items()))
    leaf = scenario.trust_dir / "leaves" / code
    keys = ["--key", f"{leaf}.key.pem", "--chain", f"{leaf}.chain.pem", "--sender", code]
    settings = isolated_settings(tmp_path)
    asyncio.run(publish(broker.bootstrap, settings, []))  # the topics
    env = settings_env(settings, broker.bootstrap)
    done = hocba("publish", str(path), *keys, *flag, env=env)
    assert done.returncode == 0, done.stderr
    assert _codecs_stored(broker.bootstrap, settings.submissions_topic, monkeypatch) == {codec}
