"""The README's "Try the pieces by hand": `hocba demo --prepare` writes the inputs, a worker
runs on them, and a vendor's `hocba publish` of one Department's file lands every record."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hocba.kafka.broker import EmbeddedBroker
from hocba.kafka.topics import ensure_topics
from hocba.runner import settings_env, spawn_worker, stop_worker, wait_drained
from tests.conftest import isolated_settings
from tests.integration.harness import query

pytestmark = pytest.mark.integration


def hocba(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "hocba.cli.main", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_prepared_records_published_by_hand_all_land(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    inputs = json.loads(
        hocba("demo", "--prepare", str(tmp_path / "demo"), "--records", "300", "--json")
    )
    sender, records_file = next(iter(inputs["records"].items()))
    records = len(Path(records_file).read_text(encoding="utf-8").splitlines())
    settings = isolated_settings(
        tmp_path / "data",
        trust_dir=Path(inputs["trust_dir"]),
        reference_dir=Path(inputs["reference_dir"]),
    )
    topics = [settings.submissions_topic, settings.dlq_topic]
    asyncio.run(ensure_topics(broker.bootstrap, topics, settings.topic_partitions))
    worker = spawn_worker(settings, broker.bootstrap, tmp_path / "worker.log")
    try:
        leaf = Path(inputs["trust_dir"]) / "leaves" / sender
        published = hocba(
            "publish",
            records_file,
            "--key",
            f"{leaf}.key.pem",
            "--chain",
            f"{leaf}.chain.pem",
            "--sender",
            sender,
            "--json",
            env=settings_env(settings, broker.bootstrap),
        )
        wait_drained(settings, broker.bootstrap, worker, timeout_s=120)
    finally:
        assert stop_worker(worker) == 0
    assert records > 10
    landed = query(settings, "SELECT count() AS n FROM {db}.records FINAL")
    assert landed == [{"n": records}]
    assert query(settings, "SELECT count() AS n FROM {db}.dead_letters") == [{"n": 0}]
    sent = json.loads(published)["submission_ids"]
    audited = query(settings, "SELECT submission_id FROM {db}.submissions ORDER BY ALL")
    assert sorted(sent) == [row["submission_id"] for row in audited]  # each traceable
