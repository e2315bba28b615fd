"""Single-core ceilings of each stage alone, measured on the bench's own records.

Each function times one stage in isolation, so the pipeline's end-to-end rate can be read
as a ratio of what its parts could do. "Single-core" is enforced, not assumed: the bench
times them inside `on_one_core()`, which pins every thread of this process (ClickHouse's
query threads too) to one CPU, and the Faust pass-through process pins itself to that CPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro

from hocba.domain.messages import RawMessage, Submission
from hocba.landing import RecordStage, landing_parameters
from hocba.pipeline.codec import STUDENT_RECORD, SchemaRegistry, decode, encode
from hocba.pipeline.decode import decode_envelope
from hocba.pipeline.verify import Verifier, VerifyOk
from hocba.reference.model import ReferenceData
from hocba.reference.tables import mirror_reference
from hocba.store.chdb_store import ChdbStore

PASSTHROUGH_TIMEOUT_S = 300.0


def _pin_threads(cpus: set[int]) -> bool:
    """Whether every thread of this process now runs on `cpus` alone."""
    pinned = True
    for task in Path("/proc/self/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), cpus)
            pinned = pinned and os.sched_getaffinity(int(task.name)) == cpus
        except ProcessLookupError:  # a thread that ended meanwhile
            continue
        except OSError:  # a cpuset or a policy that refuses it
            pinned = False
    return pinned


@contextmanager
def on_one_core() -> Iterator[int | None]:
    """Every thread of this process on one CPU (threads started meanwhile inherit it);
    the CPU, or None where the system would not pin them all (the ceilings then say so)."""
    if not hasattr(os, "sched_setaffinity"):
        yield None
        return
    allowed = os.sched_getaffinity(0)
    cpu = min(allowed)
    try:
        yield cpu if _pin_threads({cpu}) else None
    finally:
        _pin_threads(allowed)


def per_second(count: int, work: Callable[[], object], min_seconds: float = 1.0) -> float:
    """The best rate of repeated rounds of `work` (each handles `count` items) over at least
    `min_seconds`: a ceiling, so a round slowed by a noisy neighbour must not lower it (the
    best round, as `timeit` advises; averaged, the same fastavro sample measured 9.4k to
    25.8k records/s in consecutive runs here)."""
    best, started = 0.0, time.perf_counter()
    while True:
        round_started = time.perf_counter()
        work()
        now = time.perf_counter()
        best = max(best, count / (now - round_started))
        if now - started >= min_seconds:
            return best


def fastavro_one_at_a_time(registry: SchemaRegistry, records: Sequence[dict[str, Any]]) -> float:
    encoded = [encode(registry, STUDENT_RECORD, r) for r in records]
    return per_second(len(encoded), lambda: [decode(registry, STUDENT_RECORD, e) for e in encoded])


def verify(verifier: Verifier, registry: SchemaRegistry, values: Sequence[bytes]) -> float:
    subs = [decode_envelope(RawMessage("t", 0, 0, 0, None, v), registry, 1 << 24) for v in values]
    now = datetime.now(UTC)
    failed = [r for r in (verifier.verify(s, now) for s in subs) if not isinstance(r, VerifyOk)]  # type: ignore[arg-type]
    if failed:  # a failure returns early: it would make a ceiling of the wrong work
        raise RuntimeError(f"{len(failed)} of the sample's signatures do not verify: {failed[0]}")
    return per_second(len(subs), lambda: [verifier.verify(s, now) for s in subs])  # type: ignore[arg-type]


def clickhouse_parse(records: Sequence[dict[str, Any]], registry: SchemaRegistry) -> float:
    """chDB reading the same records from an Avro object container, every column."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "records.avro"
        with path.open("wb") as out:
            fastavro.writer(out, registry.reader(STUDENT_RECORD), records)
        import chdb

        sql = f"SELECT * FROM file('{path}', Avro) FORMAT Null"
        return per_second(len(records), lambda: chdb.query(sql))


def clickhouse_record_stage(
    submissions: Sequence[Submission], reference: ReferenceData, data_dir: Path
) -> dict[str, float]:
    """A worker's batch through the lander's two ClickHouse steps, each alone: staging
    (building the containers, parse, validate, enrich) and the insert into `records` (new
    token each round)."""
    store = ChdbStore(data_dir, "bench_ceiling")
    store.ensure_schema()
    mirror_reference(store, reference)
    stage = RecordStage.build(b"bench-key", False, 5_000)
    payloads = [s.payload for s in submissions]
    senders = [s.sender_code for s in submissions]
    landing = landing_parameters(submissions, [(0, n) for n in range(len(submissions))])
    rounds = iter(range(1_000_000))
    try:
        stage.stage(store, payloads, senders)
        staged = store.staged()
        return {
            "clickhouse_stage_rows": per_second(
                len(staged), lambda: stage.stage(store, payloads, senders)
            ),
            "clickhouse_insert_rows": per_second(
                len(staged),
                lambda: store.land_staged(landing, f"bench-{next(rounds)}"),
            ),
        }
    finally:
        store.close()


def faust_passthrough(
    bootstrap: str, topic: str, messages: int, port: int, cpu: int | None
) -> float | None:
    """Run in a scratch directory: Faust creates `<app-id>-data/` where it starts. Killed
    after `PASSTHROUGH_TIMEOUT_S`, so a count that never arrives cannot hang the bench; it
    then has no ceiling (None), and the run keeps its other figures."""
    script = Path(__file__).with_name("faust_passthrough.py")
    scratch = tempfile.TemporaryDirectory(prefix="hocba-bench-passthrough-")
    pin = [] if cpu is None else [str(cpu)]
    process = subprocess.Popen(
        [sys.executable, str(script), bootstrap, topic, str(messages), str(port), *pin],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=scratch.name,
    )
    timer = threading.Timer(PASSTHROUGH_TIMEOUT_S, process.kill)
    timer.start()
    try:
        assert process.stdout is not None
        for line in process.stdout:  # Faust may print terminal control codes first
            if "{" in line:
                return float(json.loads(line[line.index("{") :])["per_s"])
        print(
            f"the Faust pass-through did not count {messages} messages within "
            f"{PASSTHROUGH_TIMEOUT_S:.0f} s: no Faust ceiling in this run",
            file=sys.stderr,
        )
        return None
    finally:
        timer.cancel()
        process.kill()
        process.wait()
        scratch.cleanup()
