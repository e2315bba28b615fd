"""The bench's figures are computed as issue 8 defines them: the ratio against fastavro per
worker, each stage's share from its ceiling, the workers' clocks per process that keeps
them, and a worker's batch as a worker would take it."""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

from hocba.settings import Settings

BENCH = Path(__file__).resolve().parents[2] / "bench" / "run.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = module
    spec.loader.exec_module(module)
    return module


FIGURES = {"elapsed_s": 10.0, "landed": 200_000, "landed_messages": 6_000, "p50": 0.8, "p99": 1.6}
CEILINGS = {
    "faust_passthrough_messages": 4_000.0,
    "verify_messages": 20_000.0,
    "fastavro_decode_records": 10_000.0,
    "clickhouse_parse_rows": 150_000.0,
    "clickhouse_stage_rows": 50_000.0,
    "clickhouse_insert_rows": 200_000.0,
}


def _report(
    bench: ModuleType,
    workers: int,
    ceilings: dict[str, float],
    sums: list[dict[str, float]],
    machine: dict[str, float] | None = None,
) -> dict[str, object]:
    args = bench.parse_args(["--workers", str(workers), "--records", "200000"])
    assert isinstance(args, argparse.Namespace)
    result = bench.report(args, 6_100, FIGURES, sums, ceilings, {"worker": 700.0}, machine)
    assert isinstance(result, dict)
    return result


def test_ratio_and_stage_shares_follow_the_issues_definitions(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench.os, "cpu_count", lambda: 2)
    machine = {"busy": 0.9, "steal": 0.04, "merges": 0.12, "broker": 0.06, "bench": 0.01}
    result = _report(bench, 1, CEILINGS, [], machine)
    assert result["records_per_s"] == 20_000
    assert result["messages_per_s"] == 600  # landed messages, not published ones
    assert result["ratio"] == 2.0  # 20,000 ÷ (1 worker × 10,000)
    assert result["records_per_message"] == pytest.approx(33.3)
    assert result["stage_share"] == {
        "faust_passthrough_messages": 0.075,  # 600 ÷ 4,000 ÷ 2 cores
        "verify_messages": 0.015,
        "clickhouse_stage_rows": 0.2,
        "clickhouse_insert_rows": 0.05,
        "clickhouse_merges": 0.12,  # measured from the workers' threads, not a ceiling
        "broker": 0.06,  # measured from its process, as the bench's own
        "bench_process": 0.01,
        "other": 0.37,  # busy, but in none of the stages timed alone, nor measured above
        "steal": 0.04,
        "idle": 0.06,
    }
    assert _report(bench, 1, CEILINGS, [])["stage_share"]["rest"] == 0.66  # machine unknown
    two = _report(bench, 2, CEILINGS, [])
    assert two["ratio"] == 1.0  # 20,000 ÷ (2 workers × 10,000)
    # a message passes through Faust in a verifier and again in the lander
    assert two["stage_share"]["faust_passthrough_messages"] == 0.15


def test_workers_clocks_are_shared_per_process_that_keeps_them(bench: ModuleType) -> None:
    verifier = {"hocba_process_seconds_sum": 6.0, "hocba_verify_seconds_sum": 4.0}
    lander = {"hocba_insert_seconds_sum": 5.0}
    result = _report(bench, 2, CEILINGS, [lander, verifier, verifier])
    # two verifiers share the CPU stage's 12 s; the one lander alone lands
    assert result["worker_busy_share"] == {"process": 0.6, "verify": 0.4, "insert": 0.5}


def test_without_ceilings_there_is_no_ratio_rather_than_a_zero(bench: ModuleType) -> None:
    result = _report(bench, 1, {}, [])
    assert (result["decode_ceiling_per_s"], result["ratio"], result["stage_share"]) == (
        None,
        None,
        {},
    )


def test_the_ceilings_batch_is_cut_as_a_worker_cuts_its_batches(bench: ModuleType) -> None:
    values = [n.to_bytes(2, "big") * 20_000 for n in range(1_000)]  # 40 KB classes
    settings = Settings(batch_max_messages=1_000, batch_max_bytes=8 << 20)
    batch = bench.a_workers_batch(values, settings)
    assert len(batch) == (8 << 20) // 40_000
    assert max(values.index(v) for v in batch) > 800  # spread over the run, not its start
    one_record_messages = [b"x" * 900] * 5_000
    assert len(bench.a_workers_batch(one_record_messages, settings)) == 1_000


@pytest.mark.parametrize("flag", ["--records", "--batch-records", "--workers"])
def test_counts_below_one_are_refused(bench: ModuleType, flag: str) -> None:
    with pytest.raises(SystemExit):
        bench.parse_args([flag, "0"])


def test_a_negative_preload_is_refused_and_none_is_the_default(bench: ModuleType) -> None:
    with pytest.raises(SystemExit):
        bench.parse_args(["--preload", "-1"])
    assert bench.parse_args([]).preload == 0


def test_the_runs_hocba_variables_are_recorded_keys_and_addresses_by_name(
    bench: ModuleType,
) -> None:
    environ = {
        "HOCBA_BATCH_MAX_BYTES": "16777216",
        "HOCBA_PSEUDONYM_KEY": "secret",
        "HOCBA_CLICKHOUSE_URL": "http://user:pass@host:8123/",
        "PATH": "/usr/bin",
    }
    assert bench.hocba_variables(environ) == {
        "HOCBA_BATCH_MAX_BYTES": "16777216",
        "HOCBA_CLICKHOUSE_URL": "(set)",
        "HOCBA_PSEUDONYM_KEY": "(set)",
    }


def test_the_machine_was_busy_and_stolen_as_its_ticks_say_between_first_and_last(
    bench: ModuleType,
) -> None:
    watcher = bench.ResourceWatcher({}, {})
    watcher.stop()
    names = ("busy", "steal", "total", "merges", "broker", "bench")
    watcher.cpu = [
        (at, dict(zip(names, ticks, strict=True)))
        for at, ticks in [
            (100.0, (0, 0, 0, 0, 0, 0)),
            (101.0, (50, 10, 200, 5, 3, 1)),
            (102.0, (230, 30, 400, 45, 19, 3)),
            (103.0, (600, 30, 600, 90, 30, 4)),
        ]
    ]
    first, last = (datetime.fromtimestamp(t, UTC) for t in (100.5, 102.5))
    # between the samples inside the window only: (230 - 50) / 200, (30 - 10) / 200, ...
    assert watcher.machine_time(first, last) == {
        "busy": 0.9,
        "steal": 0.1,
        "merges": 0.2,
        "broker": 0.08,
        "bench": 0.01,
    }
    assert watcher.machine_time(first, first) is None


def test_a_process_cpu_time_counts_its_every_thread(bench: ModuleType) -> None:
    before = bench._process_ticks(os.getpid())
    spin = threading.Thread(target=lambda: _spin(0.4))  # ~40 clock ticks, on another thread
    spin.start()
    spin.join()
    assert bench._process_ticks(os.getpid()) - before >= 20
    assert bench._process_ticks(2**22 + 1) is None  # above the kernel's largest process id


def test_a_threads_time_counts_as_merging_while_clickhouse_names_it_so(
    bench: ModuleType,
) -> None:
    watcher = bench.ResourceWatcher({}, {})
    watcher.stop()
    watcher.credit([(1, "ThreadPool", 100), (2, "MergeMutate", 50)])  # first seen: all of it
    watcher.credit([(1, "MergeMutate", 130), (2, "ThreadPool", 80), (3, "MergeMutate", 7)])
    assert watcher.merge_ticks == 50 + 30 + 7


def _spin(cpu_s: float) -> None:
    started = time.thread_time()
    while time.thread_time() - started < cpu_s:
        pass


def test_a_threads_cpu_time_is_read_from_proc(bench: ModuleType) -> None:
    def mine() -> int:
        me = threading.get_native_id()
        return next(ticks for tid, _, ticks in bench._thread_ticks(os.getpid()) if tid == me)

    before = mine()
    _spin(0.4)  # ~40 clock ticks of this thread's CPU
    assert mine() - before >= 20
    # a thread's name may hold spaces and parentheses of its own
    name, ticks = bench.task_stat("77 (a (b) c)) S 1 77 77 0 -1 4 10 0 0 0 5 3 0 0 20 0 1")
    assert (name, ticks) == ("a (b) c)", 8)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity here")
def test_ceilings_are_timed_with_every_thread_on_one_cpu_and_freed_after(
    bench: ModuleType,
) -> None:
    ceilings = sys.modules["ceilings"]  # imported by the bench from its own directory
    allowed = os.sched_getaffinity(0)
    release, started = threading.Event(), threading.Event()
    earlier = threading.Thread(target=lambda: (started.set(), release.wait(10)))
    earlier.start()
    started.wait(10)
    seen: dict[str, set[int]] = {}
    with ceilings.on_one_core() as cpu:
        later = threading.Thread(target=lambda: seen.update(later=os.sched_getaffinity(0)))
        later.start()
        later.join()
        assert earlier.native_id is not None
        seen |= {
            "main": os.sched_getaffinity(0),
            "earlier": os.sched_getaffinity(earlier.native_id),
        }
    release.set()
    earlier.join()
    assert cpu is not None
    assert seen == {"main": {cpu}, "earlier": {cpu}, "later": {cpu}}
    assert os.sched_getaffinity(0) == allowed


def test_a_workers_allocator_settings_are_read_from_what_it_started_with(
    bench: ModuleType,
) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "JE_MALLOC_CONF": "dirty_decay_ms:0", "X": "y"}
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"], env=env)
    try:
        assert bench.allocator_variables(child.pid) == {"JE_MALLOC_CONF": "dirty_decay_ms:0"}
    finally:
        child.kill()
        child.wait()
    assert bench.allocator_variables(child.pid) == {}  # ended


def test_a_process_that_ended_keeps_its_last_cpu_count(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its share would otherwise go negative: its count would fall back to nothing."""
    counts = iter([50, None])
    monkeypatch.setattr(bench, "_process_ticks", lambda pid: next(counts))
    watcher = bench.ResourceWatcher({}, {"broker": 1})
    watcher.stop()
    watcher.cpu.clear()
    watcher.sample()
    watcher.sample()
    assert [ticks["broker"] for _, ticks in watcher.cpu] == [50, 50]
