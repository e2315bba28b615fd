"""The dead-letter workflow on the real broker and chDB, through the `hocba dlq` CLI.

Records of a school missing from the reference data are dead-lettered; a replay before the
fix fails again (with the replay count carried into the new dead letter); once the school
is added (hot-reloaded by the running worker) a replay lands them exactly once, and a
second replay of the same dead letters changes no figure.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hocba.cli.main import app
from hocba.kafka.broker import EmbeddedBroker
from hocba.kafka.read import TopicRecord, read_topic
from hocba.kafka.topics import ensure_topics
from hocba.reference.loader import write_reference_dir
from hocba.runner import settings_env, spawn_worker, stop_worker, wait_drained
from hocba.scenario import Scenario, build_scenario, department_code, signed_messages
from hocba.settings import Settings
from tests.conftest import isolated_settings
from tests.integration.harness import load_reference, publish, query, wait_for_line

pytestmark = pytest.mark.integration
REASON = "enrich.unknown_school"


def cli(settings: Settings, bootstrap: str, *args: str) -> dict[str, Any]:
    result = CliRunner().invoke(
        app, ["dlq", *args, "--json"], env=settings_env(settings, bootstrap)
    )
    assert result.exit_code == 0, result.output
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def dead_letters(settings: Settings, bootstrap: str) -> list[TopicRecord]:
    return asyncio.run(read_topic(bootstrap, settings.dlq_topic))


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return build_scenario(
        tmp_path_factory.mktemp("dlq"), records=240, provinces=("01", "79"), schools_per_province=2
    )


def test_a_missing_dlq_topic_is_not_zero_dead_letters(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    mistyped = isolated_settings(tmp_path).dlq_topic.replace(".dlq", ".dql")
    settings = isolated_settings(tmp_path, dlq_topic=mistyped)
    env = settings_env(settings, broker.bootstrap)
    for args in (["inspect"], ["replay", "--reason", REASON], ["inspect", "--json"]):
        result = CliRunner().invoke(app, ["dlq", *args], env=env)
        assert result.exit_code == 2, result.output
        assert result.stderr.splitlines() == [
            f"error: topic {mistyped} does not exist on {broker.bootstrap}: check HOCBA_DLQ_TOPIC"
        ]
    asyncio.run(ensure_topics(broker.bootstrap, [settings.dlq_topic], 1))
    empty = CliRunner().invoke(app, ["dlq", "inspect"], env=env)
    assert empty.exit_code == 0, empty.output
    assert empty.stdout.splitlines()[0] == f"0 dead letters (0 distinct messages) in {mistyped}"
    assert "None" not in empty.stdout


def test_unknown_school_is_replayed_after_the_fix_and_lands_once(
    broker: EmbeddedBroker, scenario: Scenario, tmp_path: Path
) -> None:
    missing = sorted(scenario.reference.schools)[0]
    missing_records = sum(r["school_code"] == missing for r in scenario.records)
    sender = department_code(scenario.reference.schools[missing].province_code_2024)
    without = replace(
        scenario.reference,
        schools={c: s for c, s in scenario.reference.schools.items() if c != missing},
    )
    reference_dir = tmp_path / "reference"
    write_reference_dir(reference_dir, without)
    settings = isolated_settings(
        tmp_path / "data", trust_dir=scenario.trust_dir, reference_dir=reference_dir
    )
    load_reference(settings, without)
    messages = signed_messages(scenario, batch_size=20)
    bootstrap, log = broker.bootstrap, tmp_path / "worker.log"
    asyncio.run(publish(bootstrap, settings, messages))
    worker = spawn_worker(settings, bootstrap, log)
    try:
        wait_drained(settings, bootstrap, worker, timeout_s=120)
        first = dead_letters(settings, bootstrap)
        n = len(first)
        assert n > 0 and {d.headers["hocba.error.code"] for d in first} == {REASON}

        # a dry run lists what it would send, and sends nothing
        dry = cli(settings, bootstrap, "replay", "--reason", REASON, "--dry-run")
        assert (dry["selected"], dry["sent"]) == (n, 0)
        assert sorted(dry["to_send"], key=lambda m: (m["partition"], m["offset"])) == [
            {
                "partition": d.partition,
                "offset": d.offset,
                "key": (d.key or b"").decode(),
                "sender_code": sender,
                "reason": REASON,
                "replay_count": 0,
            }
            for d in sorted(first, key=lambda d: (d.partition, d.offset))
        ]
        table = CliRunner().invoke(
            app,
            ["dlq", "replay", "--reason", REASON, "--dry-run"],
            env=settings_env(settings, bootstrap) | {"COLUMNS": "80"},
        )
        assert table.exit_code == 0, table.output
        listed = [line for line in table.stdout.splitlines() if REASON in line]
        assert len(listed) == n and all(sender in line for line in listed)
        assert f"would replay {n} messages with {REASON}" in table.stderr
        assert len(dead_letters(settings, bootstrap)) == n

        # a replay before the fix fails again: the new dead letter carries count 1
        assert cli(settings, bootstrap, "replay", "--reason", REASON)["sent"] == n
        wait_drained(settings, bootstrap, worker, timeout_s=60)
        letters = dead_letters(settings, bootstrap)
        assert sorted(d.headers["hocba.replay.count"] for d in letters) == ["0"] * n + ["1"] * n
        guarded = cli(
            settings, bootstrap, "replay", "--reason", REASON, "--max-replays", "1", "--dry-run"
        )
        assert (guarded["selected"], guarded["refused"], guarded["sent"]) == (0, n, 0)

        summary = cli(settings, bootstrap, "inspect", "--samples", "1")
        assert (summary["dead_letters"], summary["messages"]) == (2 * n, n)
        assert summary["by_reason"] == {REASON: 2 * n}
        assert summary["by_sender"] == {sender: 2 * n}
        assert summary["samples"][0]["envelope"]["sender_code"] == sender
        assert summary["samples"][0]["records"] > 0

        write_reference_dir(reference_dir, scenario.reference)
        wait_for_line(log, "reference data reloaded")
        for _ in range(2):  # the second replay of the same dead letters changes nothing
            assert cli(settings, bootstrap, "replay", "--reason", REASON)["sent"] == n
            wait_drained(settings, bootstrap, worker, timeout_s=60)
        assert len(dead_letters(settings, bootstrap)) == 2 * n
    finally:
        assert stop_worker(worker) == 0
    load_reference(settings, scenario.reference)
    landed = query(
        settings,
        "SELECT count() AS n, countIf(school_code = '" + missing + "') AS fixed,"
        " uniqExact(school_year, school_code, grade, student_key) AS keys"
        " FROM {db}.records FINAL",
    )
    assert landed == [
        {"n": len(scenario.records), "fixed": missing_records, "keys": len(scenario.records)}
    ]
    replays = query(
        settings,
        "SELECT outcome, sum(records_landed) AS landed, sum(records_duplicate) AS duplicate"
        " FROM {db}.submissions WHERE outcome != 'dead_lettered' AND sender_code = '"
        + sender
        + "' AND kafka_offset >= 0 GROUP BY outcome ORDER BY outcome",
    )
    assert {r["outcome"]: (r["landed"], r["duplicate"]) for r in replays}["duplicate"] == (
        0,
        missing_records,
    )
