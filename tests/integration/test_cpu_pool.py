"""The CPU stage's child processes: every child, not only the one the parent's periodic
refresh happens to reach, works with reference data changed while it runs."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from hocba.cpu_pool import CpuPool
from hocba.domain.messages import RawMessage
from hocba.domain.reasons import Reason
from hocba.reference.loader import write_reference_dir
from hocba.scenario import build_scenario, department_code, signed_messages
from tests.integration.harness import without_reference

pytestmark = pytest.mark.integration

CHILDREN = 2


def test_every_child_sees_a_reference_change_without_a_refresh_call(tmp_path: Path) -> None:
    scenario = build_scenario(
        tmp_path / "in", records=60, provinces=("01",), schools_per_province=1
    )
    settings, _ = without_reference(
        tmp_path, scenario, department=department_code("01"), cpu_processes=CHILDREN
    )
    messages = [
        RawMessage("t", 0, offset, 0, m.key, m.value)
        for offset, m in enumerate(signed_messages(scenario, batch_size=30))
    ]

    async def prepare_everywhere(pool: CpuPool) -> list[Reason | None]:
        """Enough batches at once that every child takes some."""
        results = await asyncio.gather(*(pool.prepare(messages) for _ in range(4 * CHILDREN)))
        return [r.code for prepared, _ in results for r in prepared.rejected] or [None]

    pool = CpuPool(settings)
    try:
        assert len(_children_at_work(pool, CHILDREN)) == CHILDREN  # all up, the old data loaded
        assert set(asyncio.run(prepare_everywhere(pool))) == {Reason.VERIFY_SIGNER_NOT_AUTHORIZED}
        assert settings.reference_dir is not None
        write_reference_dir(settings.reference_dir, scenario.reference)
        assert asyncio.run(prepare_everywhere(pool)) == [None]
    finally:
        pool.stop()


def _children_at_work(pool: CpuPool, children: int, timeout_s: float = 60.0) -> set[int]:
    """The pids of the children, once each has taken a call (they start one by one)."""
    pids: set[int] = set()
    deadline = time.monotonic() + timeout_s
    while len(pids) < children and time.monotonic() < deadline:
        busy = [pool.pool.submit(_pid_after_a_pause) for _ in range(2 * children)]
        pids |= {f.result() for f in busy}
    return pids


def _pid_after_a_pause() -> int:
    """Runs in a child: long enough that the other children take the other calls."""
    time.sleep(0.3)
    return os.getpid()


def test_a_killed_child_is_replaced_and_the_batch_still_prepared(tmp_path: Path) -> None:
    scenario = build_scenario(tmp_path / "in", records=20, provinces=("01",))
    settings, _ = without_reference(tmp_path, scenario, cpu_processes=1)
    message = signed_messages(scenario, batch_size=20)[0]
    batch = [RawMessage("t", 0, 0, 0, message.key, message.value)]
    pool = CpuPool(settings)
    try:
        [victim] = _children_at_work(pool, 1)
        os.kill(victim, signal.SIGKILL)
        prepared, _ = asyncio.run(pool.prepare(batch))
        assert len(prepared.accepted) == 1
        assert _children_at_work(pool, 1) != {victim}  # a new child did it
    finally:
        pool.stop()
