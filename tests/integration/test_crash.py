"""Crash and rebalance safety: SIGKILL workers at random points, restart them, or have a
verifier join mid-topic, and count every record once.

20,000 records in ~50-record messages, ~5 % of messages re-sent byte for byte, corrections
(some corrected twice) published later, and a few bad messages. A worker is killed three
times at a random moment after it has handled a batch (its ~3 s start-up is not what is
tested), then runs until drained; in the hand-off layout the verifier is killed while it
hands off and the lander twice while it lands. At-least-once delivery plus idempotent
landing must give: one row per record key, the latest revision for every corrected record,
and an audit row for every published offset whose figures add up. A verifier that joins
while another has a batch in flight takes partitions from it once that batch is done.
"""

from __future__ import annotations

import asyncio
import random
import re
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from hocba.kafka.broker import EmbeddedBroker, free_port
from hocba.kafka.producer import Outgoing
from hocba.kafka.read import read_topic
from hocba.publishing import batches
from hocba.runner import spawn_worker, stop_worker, wait_drained
from hocba.scenario import Scenario, bad_messages, build_scenario, signed_messages
from hocba.settings import Settings
from hocba.store.chdb_store import ChdbStore
from hocba.synth import make_correction
from tests.conftest import isolated_settings
from tests.integration.harness import (
    INJECT,
    load_reference,
    publish,
    query,
    rows_landed_again,
    wait_for_line,
)

pytestmark = pytest.mark.integration
RECORDS = 20_000
KILLS = 3
SEED = 20_240_812
BATCH = 50


def corrections(scenario: Scenario, rng: random.Random) -> tuple[Scenario, Scenario, int]:
    """Scenarios holding revision-2 and revision-3 records, and how many distinct ones."""
    chosen = rng.sample(list(scenario.records), 300)
    second = [make_correction(r) for r in chosen]
    third = [make_correction(r) for r in second[:100]]
    by_class = sorted(second, key=lambda r: (r["school_code"], r["class_name"]))
    return (
        Scenario(**{**_fields(scenario), "records": tuple(by_class)}),
        Scenario(**{**_fields(scenario), "records": tuple(third)}),
        len(chosen),
    )


def _fields(scenario: Scenario) -> dict[str, object]:
    return {name: getattr(scenario, name) for name in Scenario.__dataclass_fields__}


def record_counts(scenario: Scenario, messages: list[Outgoing]) -> dict[bytes, int]:
    """Records per message: `signed_messages` signs `batches(...)` in this very order."""
    chunks = batches(scenario.records, BATCH)
    return {m.value: len(chunk) for m, chunk in zip(messages, chunks, strict=True)}


def wait_until_ready(log: Path, lives: int, worker: subprocess.Popen[bytes]) -> None:
    """Block until this life's Faust worker is consuming: start-up (~3 s) is not the target."""
    deadline = time.monotonic() + 60
    while log.read_text(errors="replace").count("Worker ready") < lives:
        assert worker.poll() is None and time.monotonic() < deadline, f"not ready, see {log}"
        time.sleep(0.1)


def spawn(
    settings: Settings,
    bootstrap: str,
    log: Path,
    role: str = "all",
    extra_env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    configured = settings.model_copy(update={"web_port": port})
    return spawn_worker(configured, bootstrap, log, extra_env, role), port


LANDED_A_MESSAGE = rb"^hocba_messages_total\{.*\} [1-9]"  # a lander, or a worker that lands
PREPARED_A_BATCH = rb"^hocba_process_seconds_count [1-9]"  # a verifier


def handled(port: int, metric: bytes = LANDED_A_MESSAGE) -> bool:
    """Whether the worker on `port` says, by `metric`, that it has handled a batch."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            return re.search(metric, r.read(), re.M) is not None
    except OSError:  # not listening yet
        return False


def wait_until_handled(
    port: int, worker: subprocess.Popen[bytes], metric: bytes = LANDED_A_MESSAGE
) -> None:
    """Block until this life has handled a batch, so the kill hits work in progress."""
    deadline = time.monotonic() + 60
    while not handled(port, metric):
        assert worker.poll() is None and time.monotonic() < deadline, "never handled a batch"
        time.sleep(0.05)


def child_pids(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def running(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def assert_exit_soon(pids: list[int], timeout_s: float = 10.0) -> None:
    """A SIGKILLed worker's CPU child must not linger (it would hold ~300 MB forever)."""
    deadline = time.monotonic() + timeout_s
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [p for p in alive if running(p)]
    assert not alive, f"orphaned child processes {alive} outlived their worker"


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return build_scenario(
        tmp_path_factory.mktemp("crash"),
        records=RECORDS,
        provinces=("01", "79", "48"),
        schools_per_province=3,
    )


@dataclass(frozen=True)
class Workload:
    published: list[Outgoing]
    sizes: dict[bytes, int]  # records per message value, for those whose records are read
    corrected: int  # distinct records corrected at least once
    corrected_twice: int


def workload(scenario: Scenario, rng: random.Random) -> Workload:
    good = signed_messages(scenario, batch_size=BATCH)
    resent = rng.sample(good, len(good) // 20)
    second, third, corrected = corrections(scenario, rng)
    sizes = {
        **record_counts(scenario, good),
        **record_counts(second, later_second := signed_messages(second, batch_size=BATCH)),
        **record_counts(third, later_third := signed_messages(third, batch_size=BATCH)),
    }
    bad = bad_messages(scenario, good)
    sizes[bad[3].value] = 3  # the mixed message: one invalid record, two new students
    published = [*good, *resent, *bad, *later_second, *later_third]
    return Workload(published, sizes, corrected, len(third.records))


def published(
    broker: EmbeddedBroker,
    scenario: Scenario,
    tmp_path: Path,
    rng: random.Random,
    **overrides: object,
) -> tuple[Settings, Workload]:
    """The workload, published; and settings (`overrides` laid over a test's own) whose store
    holds the scenario's reference data."""
    settings = isolated_settings(
        tmp_path / "data",
        trust_dir=scenario.trust_dir,
        reference_dir=scenario.reference_dir,
        **overrides,
    )
    load_reference(settings, scenario.reference)
    work = workload(scenario, rng)
    asyncio.run(publish(broker.bootstrap, settings, work.published))
    return settings, work


def kill(worker: subprocess.Popen[bytes], log: Path) -> None:
    assert worker.poll() is None, f"worker died on its own, see {log}"
    worker.kill()
    worker.wait()


def test_sigkill_at_random_points_counts_every_record_once(
    broker: EmbeddedBroker, scenario: Scenario, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    # not the default: the child must die with its SIGKILLed worker
    settings, work = published(broker, scenario, tmp_path, rng, cpu_processes=1)
    bootstrap, log = broker.bootstrap, tmp_path / "worker.log"

    workers: dict[str, subprocess.Popen[bytes]] = {}  # the one alive, stopped at the end
    try:
        for life in range(1, KILLS + 1):
            workers["worker"], port = spawn(settings, bootstrap, log)
            wait_until_ready(log, life, workers["worker"])
            wait_until_handled(port, workers["worker"])
            time.sleep(rng.uniform(0.0, 0.5))  # a random point while it lands
            assert workers["worker"].poll() is None, f"worker died on its own, see {log}"
            children = child_pids(workers["worker"].pid)
            assert children, "the worker should have started its CPU child"
            kill(workers.pop("worker"), log)
            assert_exit_soon(children)
        workers["worker"], _ = spawn(settings, bootstrap, log)
        wait_drained(settings, bootstrap, workers["worker"], timeout_s=120)
    finally:
        exit_codes = {role: stop_worker(worker) for role, worker in workers.items()}
    assert exit_codes == {"worker": 0}
    assert landed_twice(settings), "no kill hit landed-but-uncommitted work"
    assert_counted_once(settings, bootstrap, work)


def test_sigkill_of_the_verifier_and_the_lander_counts_every_record_once(
    broker: EmbeddedBroker, scenario: Scenario, tmp_path: Path
) -> None:
    """The hand-off layout (DESIGN.md §5). A verifier killed while it hands off has not
    committed what it handed off, and hands it off again; the lander then meets each of
    those messages twice, and must land and count their records once."""
    rng = random.Random(SEED + 1)
    # ~20 batches a pass: each kill falls well inside the topic
    settings, work = published(broker, scenario, tmp_path, rng, batch_max_messages=20)
    bootstrap = broker.bootstrap
    lander_log, verifier_log = tmp_path / "lander.log", tmp_path / "verify.log"

    workers: dict[str, subprocess.Popen[bytes]] = {}  # those alive, stopped at the end
    try:
        workers["lander"], lander_port = spawn(settings, bootstrap, lander_log, "land")
        workers["verifier"], verifier_port = spawn(settings, bootstrap, verifier_log, "verify")
        wait_until_handled(verifier_port, workers["verifier"], PREPARED_A_BATCH)
        time.sleep(rng.uniform(0.0, 0.1))  # a random point while it hands off
        kill(workers.pop("verifier"), verifier_log)
        workers["verifier"], _ = spawn(settings, bootstrap, verifier_log, "verify")
        for _ in range(2):
            wait_until_handled(lander_port, workers["lander"])
            time.sleep(rng.uniform(0.0, 0.5))  # a random point while it lands
            kill(workers.pop("lander"), lander_log)
            workers["lander"], lander_port = spawn(settings, bootstrap, lander_log, "land")
        wait_drained(settings, bootstrap, list(workers.values()), handoff=True, timeout_s=180)
    finally:
        exit_codes = {role: stop_worker(worker) for role, worker in workers.items()}
    assert exit_codes == {"verifier": 0, "lander": 0}
    handed_off = asyncio.run(read_topic(bootstrap, settings.landing_topic))
    assert len(handed_off) > len(work.published), "the kill hit no uncommitted hand-off"
    assert landed_twice(settings), "no kill hit landed-but-uncommitted work"
    assert_counted_once(settings, bootstrap, work)


# aiokafka's line as a member gives up the partitions it held (the first join gives up none)
GIVING_UP_PARTITIONS = "Revoking previously assigned partitions frozenset("


def test_a_verifier_joining_while_a_batch_is_in_flight_counts_every_record_once(
    broker: EmbeddedBroker, scenario: Scenario, tmp_path: Path
) -> None:
    """The first verifier holds its third batch (the test's injection) until the second's
    join has made it give up its partitions. Faust then waits for the events taken to be
    acked, so the first finishes that batch and commits before the second reads on from
    its commit: nothing handed off twice or skipped."""
    settings, work = published(
        broker, scenario, tmp_path, random.Random(SEED + 2), batch_max_messages=5
    )
    bootstrap, release = broker.bootstrap, tmp_path / "release"
    hold = {
        "PYTHONPATH": str(INJECT),
        "HOCBA_TEST_HOLD_BATCH": "3",
        "HOCBA_TEST_HOLD_UNTIL": str(release),
    }
    first_log, second_log = tmp_path / "verify0.log", tmp_path / "verify1.log"
    workers: dict[str, subprocess.Popen[bytes]] = {}
    try:
        workers["lander"], _ = spawn(settings, bootstrap, tmp_path / "lander.log", "land")
        workers["first"], _ = spawn(settings, bootstrap, first_log, "verify", hold)
        wait_for_line(first_log, "the test holds batch 3", timeout_s=60)
        workers["second"], second_port = spawn(settings, bootstrap, second_log, "verify")
        wait_for_line(first_log, GIVING_UP_PARTITIONS, timeout_s=60)
        release.touch()
        wait_drained(settings, bootstrap, list(workers.values()), handoff=True, timeout_s=180)
        took_part = handled(second_port, PREPARED_A_BATCH)
    finally:
        exit_codes = {role: stop_worker(worker) for role, worker in workers.items()}
    assert exit_codes == {"lander": 0, "first": 0, "second": 0}
    assert took_part, "the second verifier was given no partition with work left"
    assert_counted_once(settings, bootstrap, work)


def landed_twice(settings: Settings) -> bool:
    """Whether some message was landed (audited) twice: work done again after a kill."""
    rows = query(
        settings,
        "SELECT max(seen) > 1 AS twice FROM (SELECT count() AS seen FROM {db}.submissions"
        " GROUP BY kafka_partition, kafka_offset)",
    )
    return bool(rows[0]["twice"])


def assert_counted_once(settings: Settings, bootstrap: str, work: Workload) -> None:
    keys = RECORDS + 2  # the mixed bad message lands two new students
    landed = query(
        settings,
        "SELECT count() AS n, uniqExact(school_year, school_code, grade, student_key) AS keys"
        " FROM {db}.records FINAL",
    )
    assert landed == [{"n": keys, "keys": keys}]
    assert rows_landed_again(settings) == 0
    revisions = query(
        settings, "SELECT revision, count() AS n FROM {db}.records FINAL GROUP BY revision"
    )
    assert {r["revision"]: r["n"] for r in revisions} == {
        1: keys - work.corrected,
        2: work.corrected - work.corrected_twice,
        3: work.corrected_twice,
    }

    audit = query(
        settings,
        "SELECT kafka_partition, kafka_offset, count() AS seen,"
        " argMin(outcome, received_at) AS outcome, any(records_total) AS total,"
        " argMin(records_landed + records_duplicate + records_stale + records_failed,"
        " received_at) AS accounted"
        " FROM {db}.submissions GROUP BY kafka_partition, kafka_offset",
    )
    published = work.published
    assert len(audit) == len(published)  # every published offset was seen, re-seen is fine
    assert all(a["total"] == a["accounted"] for a in audit)
    # garbage and the tampered message are rejected before their records are read
    assert sum(a["total"] for a in audit) == sum(work.sizes.get(m.value, 0) for m in published)
    outcomes = Counter(a["outcome"] for a in audit)
    # Garbage and the tampered message are dead-lettered. The mixed one is partial, unless a
    # kill fell between its records' insert and its audit row: the retry, the first to be
    # audited, then finds its two good records landed (duplicates) and dead-letters it.
    assert outcomes["dead_lettered"] + outcomes["partial"] == 3 and outcomes["partial"] <= 1
    assert sum(outcomes.values()) == len(published)

    letters = asyncio.run(read_topic(bootstrap, settings.dlq_topic))
    first_codes = {
        (d.headers["hocba.source.partition"], d.headers["hocba.source.offset"]): d.headers[
            "hocba.error.code"
        ]
        for d in letters
    }
    assert sorted(first_codes.values()) == [
        "decode.not_avro",
        "validate.grade_level",
        "verify.signature_invalid",
    ]


def test_a_store_left_by_a_killed_process_opens_again(tmp_path: Path) -> None:
    """chDB's lock is an flock on `<dir>/status`: the kernel drops it with the process, and
    the PID left in the file must not be mistaken for a live holder."""
    path = tmp_path / "chdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; "
            "from hocba.store.chdb_store import ChdbStore; "
            f"s = ChdbStore(Path({str(path)!r}), 'db'); s.ensure_schema(); "
            "print('open', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
    )
    assert holder.stdout is not None and holder.stdout.readline() == b"open\n"
    holder.kill()
    holder.wait()
    assert f"PID: {holder.pid}" in (path / "status").read_text()
    store = ChdbStore(path, "db")
    try:
        store.ensure_schema()
        assert store.query("SELECT 1 AS x") == [{"x": 1}]
    finally:
        store.close()
