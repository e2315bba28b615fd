"""Run the real pipeline for a test: publish, worker process until drained, read results."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from hocba.kafka.broker import free_port
from hocba.kafka.producer import Outgoing, publish_all
from hocba.kafka.read import TopicRecord, read_topic
from hocba.kafka.topics import ensure_topics
from hocba.reference.loader import write_reference_dir
from hocba.reference.model import ReferenceData
from hocba.reference.tables import mirror_reference
from hocba.runner import spawn_worker, stop_worker, wait_drained
from hocba.scenario import Scenario
from hocba.settings import Settings
from hocba.store.factory import opened_store
from tests.conftest import isolated_settings

# On a worker's PYTHONPATH: its `sitecustomize` changes what each batch does (its docstring)
INJECT = Path(__file__).parent / "inject"


@dataclass(frozen=True)
class Run:
    settings: Settings
    dead_letters: list[TopicRecord]
    worker_exit_code: int  # 0 when every worker exited cleanly, else the first other code


def without_reference(
    tmp_path: Path,
    scenario: Scenario,
    *,
    school: str = "",
    department: str = "",
    **overrides: object,
) -> tuple[Settings, ReferenceData]:
    """Settings whose reference directory holds the scenario's data minus `school` or
    `department`, and that data: their records or messages are dead-lettered until loaded."""
    ref = scenario.reference
    without = replace(
        ref,
        schools={c: s for c, s in ref.schools.items() if c != school},
        departments={c: d for c, d in ref.departments.items() if c != department},
    )
    reference_dir = tmp_path / "reference"
    write_reference_dir(reference_dir, without)
    settings = isolated_settings(
        tmp_path / "data",
        trust_dir=scenario.trust_dir,
        reference_dir=reference_dir,
        **overrides,
    )
    return settings, without


def load_reference(settings: Settings, reference: ReferenceData) -> None:
    with opened_store(settings) as store:
        mirror_reference(store, reference)


async def create_topics(bootstrap: str, settings: Settings) -> None:
    topics = [settings.submissions_topic, settings.dlq_topic, settings.landing_topic]
    await ensure_topics(bootstrap, topics, settings.topic_partitions)


async def publish(bootstrap: str, settings: Settings, messages: Sequence[Outgoing]) -> None:
    await create_topics(bootstrap, settings)
    await publish_all(bootstrap, settings.submissions_topic, messages)


def run_pipeline(
    settings: Settings,
    bootstrap: str,
    messages: Sequence[Outgoing],
    log_path: Path,
    timeout_s: float = 180,
    verifiers: int = 0,
) -> Run:
    """`messages` published, then `run_workers`."""
    asyncio.run(publish(bootstrap, settings, messages))
    return run_workers(settings, bootstrap, log_path, timeout_s, verifiers)


def run_workers(
    settings: Settings, bootstrap: str, log_path: Path, timeout_s: float = 180, verifiers: int = 0
) -> Run:
    """One `all` worker, or (`verifiers` > 0) that many `verify` workers and one lander, until
    everything on the topic is landed or dead-lettered."""
    if verifiers:
        workers = [spawn_worker(settings, bootstrap, log_path, role="land")] + [
            spawn_worker(
                settings.model_copy(update={"web_port": free_port()}),
                bootstrap,
                log_path.with_suffix(f".{n}.log"),
                role="verify",
            )
            for n in range(verifiers)
        ]
    else:
        workers = [spawn_worker(settings, bootstrap, log_path)]
    try:
        wait_drained(settings, bootstrap, workers, handoff=verifiers > 0, timeout_s=timeout_s)
    finally:
        codes = [stop_worker(w) for w in workers]
    # The first failure: a worker killed by a signal exits negative, so max() would hide it.
    code = next((c for c in codes if c != 0), 0)
    return Run(settings, asyncio.run(read_topic(bootstrap, settings.dlq_topic)), code)


def wait_for_line(log: Path, text: str, timeout_s: float = 20) -> None:
    """Block until `text` is in a worker's `log`."""
    deadline = time.monotonic() + timeout_s
    while text not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"{text!r} never appeared in {log}"
        time.sleep(0.1)


def query(settings: Settings, sql: str) -> list[dict[str, object]]:
    with opened_store(settings) as store:
        return store.query(sql.replace("{db}", settings.database))


def rows_landed_again(settings: Settings) -> int:
    """Rows of `records` that came from a message re-sent later, which must never land.

    Counting rows cannot tell: FINAL keeps one per key whatever was inserted, and merges do
    the same without it. But the last inserted of a revision wins, so a copy of a message
    re-sent later (its submission id again, a higher offset) that landed again shows here."""
    rows = query(
        settings,
        "SELECT count() AS n FROM {db}.records AS r FINAL INNER JOIN"
        " (SELECT submission_id, min(kafka_offset) AS first FROM {db}.submissions"
        " GROUP BY submission_id) AS s ON r.submission_id = s.submission_id"
        " WHERE r.kafka_offset != s.first",
    )
    landed_again = rows[0]["n"]
    assert isinstance(landed_again, int)
    return landed_again


__all__ = [
    "INJECT",
    "Run",
    "load_reference",
    "query",
    "replace",
    "rows_landed_again",
    "run_pipeline",
    "wait_for_line",
]


@contextlib.contextmanager
def chdb_held(path: Path) -> Iterator[None]:
    """Another process holding the chDB store at `path`, as a worker does, for the block."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path\n"
            "from hocba.store.chdb_store import ChdbStore\n"
            "s = ChdbStore(Path(sys.argv[1]), 'hocba'); print('held', flush=True); time.sleep(60)",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield
    finally:
        holder.kill()
        holder.wait()
