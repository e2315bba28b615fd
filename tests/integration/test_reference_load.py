"""`hocba reference load` reaches a running worker: a school missing from the reference data
is added through the command, and a replay of its dead letters lands the records once. The
same load publishes to the compacted reference topics, which end up holding exactly the
current reference data."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from hocba.kafka.broker import EmbeddedBroker
from hocba.kafka.read import read_topic
from hocba.reference import publish as topics
from hocba.reference.loader import write_reference_dir
from hocba.reference.model import ReferenceData, School
from hocba.runner import settings_env, spawn_worker, stop_worker, wait_drained
from hocba.scenario import build_scenario, signed_messages
from tests.integration.harness import load_reference, publish, query, without_reference

pytestmark = pytest.mark.integration


def hocba(env: dict[str, str], *args: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-m", "hocba.cli.main", *args, "--json"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    parsed: dict[str, object] = json.loads(result.stdout)
    return parsed


def test_a_loaded_school_reaches_the_running_worker(broker: EmbeddedBroker, tmp_path: Path) -> None:
    scenario = build_scenario(
        tmp_path / "in", records=150, provinces=("01",), schools_per_province=2
    )
    missing = sorted(scenario.reference.schools)[0]
    settings, without = without_reference(
        tmp_path, scenario, school=missing, reference_topic_prefix=f"{tmp_path.name}.reference"
    )
    load_reference(settings, without)
    env = settings_env(settings, broker.bootstrap)
    school_file = tmp_path / "new" / "schools.csv"
    write_reference_dir(
        school_file.parent, ReferenceData(schools={missing: scenario.reference.schools[missing]})
    )

    asyncio.run(publish(broker.bootstrap, settings, signed_messages(scenario, batch_size=20)))
    log = tmp_path / "worker.log"
    worker = spawn_worker(settings, broker.bootstrap, log)
    try:
        wait_drained(settings, broker.bootstrap, worker, timeout_s=120)
        letters = asyncio.run(read_topic(broker.bootstrap, settings.dlq_topic))
        assert letters and {d.headers["hocba.error.code"] for d in letters} == {
            "enrich.unknown_school"
        }

        loaded = hocba(env, "reference", "load", str(school_file))
        assert loaded["rows"] == 1
        assert loaded["total"] == {
            "schools": len(scenario.reference.schools),
            "departments": len(without.departments),
            "expected_enrollment": len(without.expected_enrollment),
        }
        assert "running worker" in str(loaded["mirror"])
        schools_topic = f"{settings.reference_topic_prefix}.schools"
        assert loaded["published"] == {
            schools_topic: {"upserts": len(scenario.reference.schools), "tombstones": 0},
            f"{settings.reference_topic_prefix}.departments": {
                "upserts": len(without.departments),
                "tombstones": 0,
            },
            f"{settings.reference_topic_prefix}.provinces": {"upserts": 97, "tombstones": 0},
        }
        published = asyncio.run(topics.latest_values(broker.bootstrap, schools_topic))
        assert json.loads(published[missing.encode()])["code"] == missing
        deadline = time.monotonic() + 20
        while log.read_text().count("reference data reloaded") < 1:
            assert time.monotonic() < deadline, "the worker never reloaded"
            time.sleep(0.2)

        replayed = hocba(env, "dlq", "replay", "--reason", "enrich.unknown_school")
        assert replayed["sent"] == len(letters)
        wait_drained(settings, broker.bootstrap, worker, timeout_s=60)
    finally:
        assert stop_worker(worker) == 0
    landed = query(settings, "SELECT count() AS n FROM {db}.records FINAL")
    assert landed == [{"n": len(scenario.records)}]
    mirrored = query(settings, f"SELECT count() AS n FROM {{db}}.schools WHERE code = '{missing}'")
    assert mirrored == [{"n": 1}], "the worker mirrors reloaded reference data into ClickHouse"


def test_the_topics_follow_replacements_with_tombstones(broker: EmbeddedBroker) -> None:
    school = School("S1", "TH A", ("PRIMARY",), "public", "10", "15")
    first = ReferenceData(schools={"S1": school, "S2": replace(school, code="S2")})
    second = ReferenceData(
        schools={"S1": replace(school, name="TH B"), "S3": replace(school, code="S3")}
    )

    def load(ref: ReferenceData) -> dict[str, tuple[int, int]]:
        plans = asyncio.run(topics.plan_publication(broker.bootstrap, "tombstones.reference", ref))
        asyncio.run(topics.publish(broker.bootstrap, plans))
        return {p.topic.rsplit(".", 1)[1]: (p.upserts, p.tombstones) for p in plans}

    assert load(first)["schools"] == (2, 0)
    assert load(second)["schools"] == (2, 1)  # S1 renamed, S3 new, S2 gone
    assert load(second)["schools"] == (0, 0)
    latest = asyncio.run(topics.latest_values(broker.bootstrap, "tombstones.reference.schools"))
    assert {k: json.loads(v)["name"] for k, v in latest.items()} == {b"S1": "TH B", b"S3": "TH A"}
