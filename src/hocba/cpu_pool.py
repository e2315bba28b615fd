"""The CPU stage (envelopes, signatures) in child processes: `HOCBA_CPU_PROCESSES` ≥ 1.

It holds the GIL, as Faust's event loop and landing's Python do; in a child it runs beside
them (DESIGN §9: verification and landing must not block the event loop). Since ClickHouse
reads the records, this stage is light and the default is a thread; children pay on larger
pods with many small messages. Each child owns its own hot-reloaded context (trust store,
reference data) and reports when that context was loaded, so the parent can expose its age
(`hocba_*_age_seconds`). A spawned (not forked) child: the parent runs chDB and
Kafka threads.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from typing import Any, TypeVar

from hocba.context import ContextLoader
from hocba.domain.messages import RawMessage
from hocba.logs import JsonFormatter
from hocba.logs import configure as configure_logging
from hocba.pipeline.process import Prepared, process_batch
from hocba.settings import Settings

T = TypeVar("T")
log = logging.getLogger("hocba.cpu_pool")
_loader: ContextLoader | None = None


def _exit_with_parent(parent: int) -> None:
    """A SIGKILLed worker cannot stop its child; the child notices it was orphaned and exits."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _start_child(settings: Settings, level: int, json_lines: bool) -> None:
    global _loader
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    configure_logging(logging.getLevelName(level), json_lines)
    _loader = ContextLoader(settings)
    _loader.current()


def _refresh() -> float:
    assert _loader is not None, "the pool initializer builds the context"
    _loader.refresh()
    return _loader.loaded_at


def _prepare(
    messages: Sequence[RawMessage], received_at: datetime | None
) -> tuple[Prepared, float]:
    """With several children the parent's periodic refresh reaches only one of them, so each
    child also looks for changed files (a few stat calls) before every batch."""
    assert _loader is not None, "the pool initializer builds the context"
    _loader.refresh()
    return process_batch(messages, _loader.current(), received_at), _loader.loaded_at


class CpuPool:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        """Start the child now, while Faust joins its group, not at the first batch."""
        root = logging.getLogger()
        json_lines = any(isinstance(h.formatter, JsonFormatter) for h in root.handlers)
        pool = ProcessPoolExecutor(
            self.settings.cpu_processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_child,
            initargs=(self.settings, root.level, json_lines),
        )
        pool.submit(time.monotonic)
        return pool

    async def _call(self, func: Callable[..., T], *args: Any) -> T:
        """A child that died (killed, say) is replaced at once; one that keeps dying (it
        cannot start) is replaced after a growing pause, not in a tight loop."""
        loop = asyncio.get_running_loop()
        pause = 0.0
        while True:
            try:
                return await loop.run_in_executor(self.pool, func, *args)
            except BrokenProcessPool:
                log.error("the CPU child process died; starting a new one in %.0f s", pause)
                await asyncio.sleep(pause)
                pause = min(max(1.0, pause * 2), 30.0)
                self.pool = self._new_pool()

    async def prepare(
        self, messages: Sequence[RawMessage], received_at: datetime | None = None
    ) -> tuple[Prepared, float]:
        return await self._call(_prepare, list(messages), received_at)

    async def refresh(self) -> float:
        """Let the child reload a changed trust store or reference data; its load time."""
        return await self._call(_refresh)

    def stop(self) -> None:
        self.pool.shutdown(cancel_futures=True)
