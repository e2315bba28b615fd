"""The benchmark: N signed records through the embedded stack, with per-stage ceilings.

    python bench/run.py [--records 200000] [--batch-records 50] [--workers 1]
                        [--algorithms rsa,ecdsa,ed25519] [--compression zstd]
                        [--rate R] [--no-ceilings] [--keep] [--json]

Publishes N realistic signed records in messages of B records, runs W worker processes
(W = 1: one `all` worker; W > 1: W verifying workers and the one lander, DESIGN.md §5), and
reports end-to-end records/s (first consumed → last landed), latency, peak RSS, the
single-core ceiling of each stage measured in the same run, and each stage's share of the
machine's time. Figures, never assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))

import ceilings

from hocba.cli.progress import landing_progress
from hocba.domain.messages import Submission
from hocba.kafka.broker import embedded_broker, free_port
from hocba.kafka.producer import Codec, Outgoing, bulk_producer, send_all
from hocba.kafka.topics import ensure_topics
from hocba.pipeline.codec import SUBMISSION, decode, encode, load_registry
from hocba.pipeline.verify import Verifier
from hocba.reference.tables import reference_tables
from hocba.runner import spawn_worker, stop_worker, wait_drained
from hocba.scenario import Scenario, build_scenario, signed_messages
from hocba.settings import Settings
from hocba.store.base import Store
from hocba.store.factory import open_store
from hocba.trust.pki import KEY_ALGORITHMS, RSA
from hocba.trust.store import load_trust_store

CEILING_SAMPLE = 2_000
ROOT = Path(__file__).resolve().parents[1]
# The pipeline's stages that have a ceiling, and what each counts: a stage's share of the
# machine's time is the rate the run achieved over its ceiling, over the machine's cores.
PIPELINE_STAGES = {
    "faust_passthrough_messages": "messages",
    "verify_messages": "messages",
    "clickhouse_stage_rows": "records",
    "clickhouse_insert_rows": "records",
}


def _at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text}: must be {minimum} or more")
        return value

    return parse


_at_least_one = _at_least(1)


def _algorithms(text: str) -> tuple[str, ...]:
    chosen = tuple(a.strip().lower() for a in text.split(",") if a.strip())
    unknown = [a for a in chosen if a not in KEY_ALGORITHMS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"{text!r}: choose from {', '.join(KEY_ALGORITHMS)}, e.g. rsa,ecdsa"
        )
    return chosen


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=_at_least_one, default=200_000)
    parser.add_argument(
        "--batch-records",
        type=_at_least_one,
        default=50,
        help="records per message (a message never spans two classes, so at most a class)",
    )
    parser.add_argument(
        "--workers",
        type=_at_least_one,
        default=1,
        help="worker processes (above 1: that many verifying workers and one lander)",
    )
    parser.add_argument(
        "--algorithms",
        type=_algorithms,
        default=(RSA,),
        help="signature key types, comma-separated, used in turn message by message: "
        f"{','.join(KEY_ALGORITHMS)} (default rsa: RSA-2048)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="publish at this many records/s while the workers run (latency "
        "runs); 0 = publish everything first (throughput runs)",
    )
    parser.add_argument(
        "--compression",
        type=Codec,
        choices=list(Codec),
        default=Codec.none,
        help="publish with this Kafka codec, as vendors may (default: none)",
    )
    parser.add_argument(
        "--preload",
        type=_at_least(0),
        default=0,
        metavar="N",
        help="land N records of other pupils before the run, as late in a school year: each "
        "batch's landed-key lookup reads more of `records` as it grows (e.g. 18000000, a "
        "national year's year-end records; ~30 s)",
    )
    parser.add_argument("--no-ceilings", action="store_true", help="skip the stage ceilings")
    parser.add_argument(
        "--keep", action="store_true", help="keep the run's directory (logs, chDB) and say where"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser.parse_args(argv)


def _status_kb(pid: int, field: str = "VmRSS") -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next(
        (int(line.split()[1]) for line in status.splitlines() if line.startswith(f"{field}:")),
        0,
    )


def _with_children(pid: int) -> list[int]:
    """The worker and the processes it started (CPU children, multiprocessing's tracker),
    whichever of its threads started them."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += map(int, (task / "children").read_text().split())
        except OSError:
            continue
    return [pid, *children]


def _cpu_ticks() -> tuple[int, int, int]:
    """The machine's busy, stolen and total CPU time so far, in clock ticks (`/proc/stat`;
    guest time is counted in user already). Steal is time the hypervisor gave this VM's
    CPUs to its neighbours: neither the pipeline's work nor idle."""
    first_line = Path("/proc/stat").read_text().split("\n", 1)[0]
    user, nice, system, idle, iowait, irq, softirq, steal = map(int, first_line.split()[1:9])
    busy = user + nice + system + irq + softirq
    return busy, steal, busy + steal + idle + iowait


def task_stat(text: str) -> tuple[str, int]:
    """A thread's name and CPU time so far (user + system, clock ticks) from its
    `/proc/PID/task/TID/stat`; the name sits in parentheses and may hold any of them."""
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    return name, int(fields[11]) + int(fields[12])


def _thread_ticks(pid: int) -> Iterator[tuple[int, str, int]]:
    """Each thread of `pid`: its id, its name, and its CPU time so far in clock ticks."""
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            name, ticks = task_stat((task / "stat").read_text())
        except OSError:
            continue
        yield int(task.name), name, ticks


MERGE_THREAD = "MergeMutate"  # ClickHouse's name for the threads of its merge pool


def _process_ticks(pid: int) -> int | None:
    """A process's CPU time so far in clock ticks, every thread's, ended ones included;
    None once the process has ended."""
    try:
        return task_stat(Path(f"/proc/{pid}/stat").read_text())[1]
    except OSError:
        return None


class ResourceWatcher:
    """Peak resident memory of each worker, its child processes included (sampled every
    200 ms: resident sizes of processes can be summed at one instant, their peaks cannot),
    and never below the kernel's own peak of the worker process (`VmHWM`), which a sample
    can miss. It samples how busy the machine is too, so that what the stages' ceilings do
    not account for can be told apart from idle time: how much of it ClickHouse's
    background merges took (work no stage's ceiling includes, 9–17 % of the machine), and
    each of `processes` (the broker, the bench itself), which are not the pipeline's."""

    def __init__(self, workers: dict[str, int], processes: dict[str, int]) -> None:
        self.workers, self._stop = workers, threading.Event()
        self.processes = processes
        self._process_seen = dict.fromkeys(processes, 0)  # ticks at the last sample it ran
        self.peak_kb = dict.fromkeys(workers, 0)
        # epoch seconds, then clock ticks so far: busy, steal, total, the workers' merging,
        # and each of `processes`
        self.cpu: list[tuple[float, dict[str, int]]] = []
        self.merge_ticks = 0
        self._ticks_seen: dict[int, int] = {}  # thread id -> its CPU ticks at the last sample
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.sample()

    def sample(self) -> None:
        for name, pid in self.workers.items():
            family = _with_children(pid)
            total = sum(_status_kb(p) for p in family)
            self.peak_kb[name] = max(self.peak_kb[name], total)
            self.credit(thread for p in family for thread in _thread_ticks(p))
        busy, steal, total = _cpu_ticks()
        ticks = {"busy": busy, "steal": steal, "total": total, "merges": self.merge_ticks}
        for name, pid in self.processes.items():
            counted = _process_ticks(pid)
            if counted is not None:  # one that ended keeps its last count
                self._process_seen[name] = counted
        self.cpu.append((time.time(), ticks | self._process_seen))

    def credit(self, threads: Iterable[tuple[int, str, int]]) -> None:
        """A thread's CPU time since the last sample counts as merging if the thread is one
        of ClickHouse's merge pool (it keeps that name for its life); a thread id used again
        by a new thread starts from nothing."""
        for tid, name, ticks in threads:
            if name == MERGE_THREAD:
                seen = self._ticks_seen.get(tid, 0)
                self.merge_ticks += ticks - seen if ticks >= seen else ticks
            self._ticks_seen[tid] = ticks

    def machine_time(self, first: datetime, last: datetime) -> dict[str, float] | None:
        """The shares of the machine's CPU time between `first` and `last` that were busy,
        stolen, spent in the workers' merges and in each of `processes`; None for a run
        shorter than two samples."""
        since, until = first.timestamp(), last.timestamp()
        inside = [ticks for at, ticks in self.cpu if since <= at <= until]
        if len(inside) < 2:
            return None
        start, end = inside[0], inside[-1]
        total = end["total"] - start["total"]
        if not total:
            return None
        return {name: (end[name] - start[name]) / total for name in end if name != "total"}

    def stop(self) -> dict[str, float]:
        """Worker name → peak MB; while the workers still run."""
        self._stop.set()
        self._thread.join()
        return {
            name: max(kb, _status_kb(self.workers[name], "VmHWM")) / 1024
            for name, kb in self.peak_kb.items()
        }


def scrape_sums(port: int) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        s.name: s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name.endswith("_seconds_sum")
    }


REGISTRY = load_registry()


def restamped(message: Outgoing) -> Outgoing:
    """The envelope with `sent_at` = now, so latency starts at publishing, not at signing
    (the signature covers the payload only, so it stays valid)."""
    envelope = decode(REGISTRY, SUBMISSION, message.value)
    envelope["sent_at"] = datetime.now(UTC)
    return Outgoing(message.key, encode(REGISTRY, SUBMISSION, envelope), message.headers)


def wait_ready(ports: list[int], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    for port in ports:
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2):
                    break
            except OSError:
                time.sleep(0.2)


async def publish(
    bootstrap: str,
    topic: str,
    messages: list[Outgoing],
    rate: float,
    per_message: float,
    compression: Codec,
) -> None:
    """All at once (`rate` 0), or paced at `rate` records/s given `per_message` records
    per message on average (class-sized messages hold fewer than --batch-records)."""
    async with bulk_producer(bootstrap, compression) as producer:
        if rate <= 0:  # each stamped as it is sent: latency starts at publishing
            await send_all(producer, topic, (restamped(m) for m in messages))
            return
        interval = per_message / rate
        started = time.perf_counter()
        deliveries = []
        for n, message in enumerate(messages):
            await asyncio.sleep(max(0.0, started + n * interval - time.perf_counter()))
            stamped = restamped(message)
            deliveries.append(await producer.send(topic, stamped.value, key=stamped.key))
        await asyncio.gather(*deliveries)


PRELOADED = "preloaded"  # the submission id of `--preload`'s records: not the run's


def preload(store: Store, scenario: Scenario, count: int) -> None:
    """`count` records of other pupils, landed before the run, so that each batch's keys fall
    among a year's keys as in a national table: in the run's school year, spread over the
    run's schools and one more school per ~450 records (a school's pupils) in each of the
    run's provinces, every grade. Only the key columns and the submission id are filled.
    Then ClickHouse's own merges are waited for, so that the run finds the few large parts
    they leave (the lookup reads each part: one part would flatter it), and does not merge
    one bulk insert's parts during the run, work no year owes."""
    run_codes = sorted({r["school_code"] for r in scenario.records})
    provinces = sorted({code[:2] for code in run_codes})
    others = max(1, count // 450)
    codes = (
        "arrayConcat({run:Array(String)}, arrayMap(i -> concat({provinces:Array(String)}"
        f"[i % {len(provinces)} + 1], leftPad(toString(50000 + intDiv(i, {len(provinces)})"
        f" % 50000), 5, '0')), range({others})))"
    )
    schools = len(run_codes) + others
    store.query(
        "INSERT INTO hocba.records (school_year, school_code, grade, student_key, submission_id)"
        f" SELECT {{year:String}}, {codes}[number % {schools} + 1],"
        f" toUInt8(intDiv(number, {schools}) % 12 + 1), hex(cityHash64(number)), {{id:String}}"
        f" FROM numbers({count})",
        {
            "year": scenario.records[0]["school_year"],
            "id": PRELOADED,
            "run": run_codes,
            "provinces": provinces,
        },
    )
    wait_for_merges(store)


def wait_for_merges(store: Store, quiet_s: float = 21.0, timeout_s: float = 600.0) -> None:
    """Until no merge runs and the parts stay as they are for `quiet_s`: ClickHouse looks
    for merges again only every 10 s or so when it found none, and lowers its threshold for
    parts older than 10 s. After `timeout_s` the run goes on, and says so."""
    deadline, parts, quiet_since = time.monotonic() + timeout_s, None, time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(3)
        now = store.query(
            "SELECT (SELECT count() FROM system.merges WHERE database = 'hocba') AS merging,"
            " (SELECT arraySort(groupArray(name)) FROM system.parts"
            " WHERE database = 'hocba' AND active) AS parts"
        )[0]
        if now["merging"] or now["parts"] != parts:
            parts, quiet_since = now["parts"], time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_s:
            return
    print(f"merges still running after {timeout_s:.0f} s; the run starts anyway", file=sys.stderr)


def end_to_end(settings: Settings) -> dict[str, Any]:
    store = open_store(settings)
    try:
        run = f"submission_id != '{PRELOADED}'"
        row = store.query(
            "SELECT (SELECT min(received_at) FROM hocba.submissions) AS first,"
            " max(landed_at) AS last, count() AS records,"
            f" uniqExact(submission_id) AS messages FROM hocba.records WHERE {run}"
        )[0]
        latency = store.query(
            "SELECT quantilesExact(0.5, 0.99)(l) AS q FROM (SELECT submission_id,"
            " dateDiff('millisecond', any(sent_at), max(landed_at)) / 1000 AS l"
            f" FROM hocba.records WHERE {run} GROUP BY submission_id)"
        )[0]["q"]
    finally:
        store.close()
    # the columns are UTC; the store may hand them back without their zone
    first, last = (row[k].replace(tzinfo=row[k].tzinfo or UTC) for k in ("first", "last"))
    return {
        "first": first,
        "last": last,
        "elapsed_s": (last - first).total_seconds(),
        "landed": row["records"],
        "landed_messages": row["messages"],
        "p50": round(latency[0], 3),
        "p99": round(latency[1], 3),
    }


def measure_ceilings(
    scenario: Scenario,
    values: list[bytes],
    settings: Settings,
    bootstrap: str,
    messages: int,
    data_dir: Path,
) -> tuple[dict[str, float], bool]:
    """Stage → ceiling per second, and whether they were timed pinned to one CPU."""
    registry = load_registry()
    step = max(1, len(scenario.records) // CEILING_SAMPLE)  # every level and grade, not one school
    sample = list(scenario.records[::step][:CEILING_SAMPLE])
    assert settings.trust_dir is not None
    verifier = Verifier(load_trust_store(settings.trust_dir))
    envelopes = [decode(registry, SUBMISSION, v) for v in a_workers_batch(values, settings)]
    submissions = [
        Submission(e["submission_id"], e["sender_code"], e["vendor"], 0, e["payload"], b"", "", ())
        for e in envelopes
    ]
    with ceilings.on_one_core() as cpu:
        measured: dict[str, float | None] = {
            "faust_passthrough_messages": ceilings.faust_passthrough(
                bootstrap, settings.submissions_topic, messages, free_port(), cpu
            ),
            "verify_messages": ceilings.verify(verifier, registry, values[:500]),
            "fastavro_decode_records": ceilings.fastavro_one_at_a_time(registry, sample),
            "clickhouse_parse_rows": ceilings.clickhouse_parse(sample * 10, registry),
            **ceilings.clickhouse_record_stage(
                submissions, scenario.reference, data_dir / "ceiling-chdb"
            ),
        }
    return {k: v for k, v in measured.items() if v is not None}, cpu is not None


def a_workers_batch(values: list[bytes], settings: Settings) -> list[bytes]:
    """Messages spread over the run (every level and grade, not one school), as many as a
    worker takes at once: up to `batch_max_messages`, cut at `batch_max_bytes`."""
    average = sum(map(len, values)) / len(values)
    fits = max(1, int(settings.batch_max_bytes // average))
    count = min(len(values), settings.batch_max_messages, fits)
    return values[:: max(1, len(values) // count)][:count]


def environment() -> dict[str, Any]:
    """What the figures were measured on: they compare only within a run (README)."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:  # no git: a copy of the sources
        commit = ""
    packages = ("chdb-core", "fastavro", "faust-streaming", "aiokafka", "cryptography")
    return {
        "commit": commit or "unknown",
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        **{name: _version(name) for name in packages},
        "hocba_variables": hocba_variables(os.environ),
    }


ALLOCATOR_VARIABLES = ("JE_MALLOC_CONF", "MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_")


def allocator_variables(pid: int) -> dict[str, str]:
    """The allocator settings (chDB's jemalloc, glibc's malloc) process `pid` started with:
    they change its speed and peak. A worker's own default, set once it runs
    (`store.chdb_store`), shows here only because the bench, which opened the store first,
    passed it on."""
    try:
        entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return {}
    started_with = dict(e.decode(errors="replace").split("=", 1) for e in entries if b"=" in e)
    return {name: started_with[name] for name in ALLOCATOR_VARIABLES if name in started_with}


def hocba_variables(environ: Mapping[str, str]) -> dict[str, str]:
    """The `HOCBA_*` settings the run's workers read besides the bench's own: they change
    what is measured. Keys and addresses are named, not shown."""
    return {
        name: "(set)" if any(word in name for word in ("KEY", "URL")) else value
        for name, value in sorted(environ.items())
        if name.startswith("HOCBA_")
    }


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="hocba-bench-"))
    try:
        result = measure(args, root, console)
    except BaseException:
        console.print(f"the run failed; its logs and chDB store are kept in {root}")
        raise
    if args.keep:
        console.print(f"the run's logs and chDB store are kept in {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return result


def measure(args: argparse.Namespace, root: Path, console: Console) -> dict[str, Any]:
    with console.status("generating and signing records…"):
        scenario = build_scenario(
            root / "input",
            records=args.records,
            schools_per_province=max(4, args.records // 8_000),
            algorithms=args.algorithms,
        )
        messages = signed_messages(scenario, args.batch_records, algorithms=args.algorithms)
    settings = Settings(
        # the embedded stack in a fresh directory, whatever HOCBA_* says; the variables that
        # tune the workers still apply, and `environment.hocba_variables` lists them
        clickhouse_url=None,
        database="hocba",
        data_dir=root,
        trust_dir=scenario.trust_dir,
        reference_dir=scenario.reference_dir,
        web_port=free_port(),
        broker_session_timeout_s=2.0,
        broker_heartbeat_interval_s=0.5,
    )
    store = open_store(settings)
    for name, table in reference_tables(scenario.reference).items():
        store.replace_reference(name, table)
    if args.preload > 0:
        with console.status(f"landing {args.preload:,} records of other pupils first…"):
            preload(store, scenario, args.preload)
    store.close()
    with embedded_broker(root / "logs") as broker:
        topics = [settings.submissions_topic, settings.dlq_topic, settings.landing_topic]
        asyncio.run(ensure_topics(broker.bootstrap, topics, settings.topic_partitions))
        if args.rate <= 0:
            asyncio.run(
                publish(
                    broker.bootstrap, settings.submissions_topic, messages, 0, 1, args.compression
                )
            )
        workers, ports = start_workers(settings, broker.bootstrap, args.workers, root)
        allocators = allocator_variables(workers[0].pid)
        watcher = ResourceWatcher(
            worker_names(workers), {"broker": broker.process.pid, "bench": os.getpid()}
        )
        publisher = None
        if args.rate > 0:
            wait_ready(ports)
            publisher = threading.Thread(
                target=lambda: asyncio.run(
                    publish(
                        broker.bootstrap,
                        settings.submissions_topic,
                        messages,
                        args.rate,
                        args.records / len(messages),
                        args.compression,
                    )
                )
            )
            publisher.start()
        try:
            with landing_progress(console) as progress:
                task = progress.add_task("landing", total=len(messages))
                if publisher is not None:
                    publisher.join()
                wait_drained(
                    settings,
                    broker.bootstrap,
                    workers,
                    handoff=args.workers > 1,
                    timeout_s=3600,
                    on_progress=lambda d, t: progress.update(task, completed=d, total=t),
                )
            sums = [scrape_sums(p) for p in ports]
        finally:
            peaks_mb = watcher.stop()
            for worker in workers:
                stop_worker(worker)
        figures = end_to_end(settings)
        stage_ceilings, pinned = (
            ({}, None)  # nothing timed, nothing pinned
            if args.no_ceilings
            else measure_ceilings(
                scenario,
                [m.value for m in messages],
                settings,
                broker.bootstrap,
                len(messages),
                root,
            )
        )
    machine = watcher.machine_time(figures["first"], figures["last"])
    result = report(args, len(messages), figures, sums, stage_ceilings, peaks_mb, machine)
    return result | {
        "ceilings_on_one_core": pinned,
        "environment": environment() | {"allocator_variables": allocators},
    }


def start_workers(
    settings: Settings, bootstrap: str, count: int, root: Path
) -> tuple[list[Any], list[int]]:
    if count == 1:
        return [spawn_worker(settings, bootstrap, root / "worker.log")], [settings.web_port]
    lander = spawn_worker(settings, bootstrap, root / "lander.log", role="land")
    ports = [settings.web_port]
    workers = [lander]
    for n in range(count):
        port = free_port()
        ports.append(port)
        workers.append(
            spawn_worker(
                settings.model_copy(update={"web_port": port}),
                bootstrap,
                root / f"verify{n}.log",
                role="verify",
            )
        )
    return workers, ports


def worker_names(workers: list[Any]) -> dict[str, int]:
    """`start_workers` order: one `all` worker, or the lander and then the verifiers."""
    if len(workers) == 1:
        return {"worker": workers[0].pid}
    return {"lander": workers[0].pid} | {f"verify{n}": w.pid for n, w in enumerate(workers[1:])}


def report(
    args: argparse.Namespace,
    messages: int,
    figures: dict[str, float],
    sums: list[dict[str, float]],
    stage_ceilings: dict[str, float],
    peaks_mb: dict[str, float],
    machine: dict[str, float] | None = None,
) -> dict[str, Any]:
    elapsed = figures["elapsed_s"]
    records_per_s = figures["landed"] / elapsed if elapsed else 0.0
    messages_per_s = figures["landed_messages"] / elapsed if elapsed else 0.0
    decode_ceiling = stage_ceilings.get("fastavro_decode_records")
    achieved = {"messages": messages_per_s, "records": records_per_s}
    # with a hand-off, a message passes through Faust twice: in a verifier, in the lander
    passes = {"faust_passthrough_messages": 2 if args.workers > 1 else 1}
    cores = os.cpu_count() or 1
    stage_share = {
        stage: round(passes.get(stage, 1) * achieved[unit] / stage_ceilings[stage] / cores, 3)
        for stage, unit in PIPELINE_STAGES.items()
        if stage_ceilings.get(stage)
    }
    return {
        "records": args.records,
        "messages": messages,
        "workers": args.workers,
        "processes": len(peaks_mb),  # above one worker, the verifiers and their lander
        "batch_records": args.batch_records,
        "records_per_message": round(figures["landed"] / max(1, figures["landed_messages"]), 1),
        "algorithms": list(args.algorithms),
        "compression": args.compression.value,
        "rate": args.rate,
        "preload": args.preload,
        "landed": figures["landed"],
        "elapsed_s": round(elapsed, 2),
        "records_per_s": round(records_per_s),
        "messages_per_s": round(messages_per_s),
        "ceilings": {k: round(v) for k, v in stage_ceilings.items()},
        "decode_ceiling_per_s": round(decode_ceiling) if decode_ceiling else None,
        "ratio": round(records_per_s / (args.workers * decode_ceiling), 2)
        if decode_ceiling
        else None,
        "p50_latency_s": figures["p50"],
        "p99_latency_s": figures["p99"],
        "latency_from": "publishing, per message (paced by --rate)"
        if args.rate > 0
        else "publishing, per message: everything is published before the workers start, "
        "so the latency includes the wait in the queue (measure latency with --rate)",
        "peak_rss_mb": round(max(peaks_mb.values(), default=0.0)),
        "peak_rss_mb_by_worker": {name: round(mb) for name, mb in peaks_mb.items()},
        "machine_busy_share": None if machine is None else round(machine["busy"], 3),
        "machine_steal_share": None if machine is None else round(machine["steal"], 3),
        "stage_share": stage_share | unaccounted(stage_share, machine),
        "worker_busy_share": busy_shares(sums, elapsed, args.workers),
    }


def unaccounted(
    stage_share: dict[str, float], machine: dict[str, float] | None
) -> dict[str, float]:
    """The machine's time the ceilings do not account for: ClickHouse's background merges
    (`clickhouse_merges`, measured from the workers' threads), the embedded `broker` and the
    `bench_process` itself (its sampling and polling, and its publishing when paced), both
    measured from `/proc`, `other` busy time (the kernel's work for the workers, Python's
    decisions, the stages running slower together than alone), time `steal`-en by the VM's
    neighbours, and `idle`; one `rest` when the machine's time is unknown."""
    if not stage_share:
        return {}
    accounted = sum(stage_share.values())
    if machine is None:
        return {"rest": round(1 - accounted, 3)}
    busy, steal = machine["busy"], machine["steal"]
    measured = {
        "clickhouse_merges": machine["merges"],
        "broker": machine["broker"],
        "bench_process": machine["bench"],
    }
    return {name: round(share, 3) for name, share in measured.items()} | {
        "other": round(busy - accounted - sum(measured.values()), 3),
        "steal": round(steal, 3),
        "idle": round(1 - busy - steal, 3),
    }


def busy_shares(sums: list[dict[str, float]], elapsed: float, workers: int) -> dict[str, float]:
    """The workers' own clocks (`hocba_*_seconds`), as a share of the run per process that
    keeps each: the CPU stage (`process`, of which `verify`) runs in every verifying worker,
    landing (`insert`: staged batches into `records`, and the audit rows) in the one
    process that owns the store. Staging ahead runs beside landing and has no clock."""
    if not elapsed:
        return {}
    per_process = {"process": workers, "verify": workers, "insert": 1}
    return {
        name: round(sum(s.get(f"hocba_{name}_seconds_sum", 0.0) for s in sums) / elapsed / n, 3)
        for name, n in per_process.items()
    }


def show(result: dict[str, Any], console: Console) -> None:
    table = Table("figure", "value", title="hocba benchmark")
    for key in (
        "records",
        "messages",
        "records_per_message",
        "workers",
        "batch_records",
        "algorithms",
        "compression",
        "preload",
        "elapsed_s",
        "records_per_s",
        "messages_per_s",
        "decode_ceiling_per_s",
        "ratio",
        "p50_latency_s",
        "p99_latency_s",
        "latency_from",
        "peak_rss_mb",
        "machine_busy_share",
        "machine_steal_share",
    ):
        table.add_row(key, str(result[key]))
    for name, mb in result["peak_rss_mb_by_worker"].items():
        table.add_row(f"peak RSS MB: {name} with its child processes", str(mb))
    cores = "1 core" if result["ceilings_on_one_core"] else "not pinned to one core"
    for stage, value in result["ceilings"].items():
        table.add_row(f"ceiling: {stage} /s ({cores})", f"{value:,}")
    for stage, share in result["stage_share"].items():
        table.add_row(f"share of the machine's time: {stage}", f"{share:.1%}")
    for stage, share in result["worker_busy_share"].items():
        table.add_row(f"busy share of its workers: {stage}", f"{share:.1%}")
    for name, value in result["environment"].items():
        table.add_row(f"environment: {name}", str(value))
    console.print(table)


def main() -> None:
    args = parse_args()
    console = Console(stderr=True)
    result = run(args, console)
    if args.json:
        print(json.dumps(result))
    else:
        show(result, Console())


if __name__ == "__main__":
    main()
