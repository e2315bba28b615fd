"""Run a worker as a separate process and wait until it has drained its input.

The demo, the tests and the benchmark all need "start a real worker, wait until every
message is landed or dead-lettered, stop it cleanly"; this is that, once. Drained means the
group's committed offset equals the log end on every partition, which the worker only
reaches after landing (DESIGN §1).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from hocba.kafka.lag import partition_lags, total_lag
from hocba.settings import Settings, lander_group


class WorkerDiedError(RuntimeError):
    """The worker process exited before its input was drained."""


def settings_env(settings: Settings, bootstrap: str) -> dict[str, str]:
    """The environment that makes a child process see the same settings (laid over one
    without `HOCBA_CLICKHOUSE_URL`, `worker_env`: without a URL here, none applies)."""
    env = {
        f"HOCBA_{name.upper()}": str(value)
        for name, value in settings.model_dump().items()
        if value is not None and name not in ("clickhouse_url", "pseudonym_key")
    }
    env["HOCBA_KAFKA_BOOTSTRAP"] = bootstrap
    env["HOCBA_PSEUDONYM_KEY"] = settings.pseudonym_key.get_secret_value()
    if settings.clickhouse_url is not None:
        env["HOCBA_CLICKHOUSE_URL"] = settings.clickhouse_url.get_secret_value()
    return env


def spawn_worker(
    settings: Settings,
    bootstrap: str,
    log_path: Path,
    extra_env: Mapping[str, str] | None = None,
    role: str = "all",
) -> subprocess.Popen[bytes]:
    """Start `hocba worker --role ROLE` with these settings; its output goes to `log_path`.

    glibc gives every thread that allocates its own 64 MB arena, and the worker's threads
    (store, results from the CPU child, Kafka) each kept one: two arenas cut the peak by
    ~50 MB at the same speed (bench/RESULTS.md). The container image sets the same.
    """
    env = worker_env(settings, bootstrap, os.environ, extra_env or {})
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "hocba.cli.main", "worker", "--role", role],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def worker_env(
    settings: Settings,
    bootstrap: str,
    environ: Mapping[str, str],
    extra_env: Mapping[str, str],
) -> dict[str, str]:
    """This process's environment with the settings laid over it. A server URL in the
    environment that the settings do not hold (the bench pins the embedded store) must not
    reach the worker, which would land elsewhere than its parent reads."""
    inherited = {k: v for k, v in environ.items() if k != "HOCBA_CLICKHOUSE_URL"}
    return {
        "MALLOC_ARENA_MAX": "2",
        **inherited,
        **settings_env(settings, bootstrap),
        **extra_env,
    }


def stop_worker(process: subprocess.Popen[bytes], timeout_s: float = 30.0) -> int:
    """SIGTERM: the worker finishes its batch, commits and leaves the group."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout_s)
    return process.returncode


async def _remaining(settings: Settings, bootstrap: str, handoff: bool) -> tuple[int, int]:
    """(messages published, messages not yet landed), the lander's queue included."""
    lags = await partition_lags(bootstrap, settings.consumer_group, settings.submissions_topic)
    remaining = total_lag(lags)
    if handoff:
        landing = await partition_lags(
            bootstrap, lander_group(settings.consumer_group), settings.landing_topic
        )
        remaining += total_lag(landing)
    return sum(p.end for p in lags), remaining


def wait_drained(
    settings: Settings,
    bootstrap: str,
    processes: subprocess.Popen[bytes] | Sequence[subprocess.Popen[bytes]] = (),
    *,
    handoff: bool = False,
    timeout_s: float = 600.0,
    on_progress: Callable[[int, int], None] | None = None,
) -> None:
    """Block until nothing is left to land; report (done, total) as it goes.

    With `handoff` (verifying workers + one lander) the lander's group must be drained too.
    """
    watched = [processes] if isinstance(processes, subprocess.Popen) else list(processes)
    deadline = time.monotonic() + timeout_s
    while True:
        total, remaining = asyncio.run(_remaining(settings, bootstrap, handoff))
        if on_progress is not None:
            on_progress(max(0, total - remaining), total)
        if remaining == 0 and total > 0:
            return
        died = next((p for p in watched if p.poll() is not None), None)
        if died is not None:
            raise WorkerDiedError(
                f"a worker exited with code {died.returncode} with {remaining} messages not landed"
            )
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{remaining} of {total} messages still not landed after {timeout_s:.0f}s"
            )
        time.sleep(0.5)
