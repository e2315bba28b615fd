"""Loaded by a worker process started with this directory on PYTHONPATH (Python imports
`sitecustomize` at start), to change what a batch's CPU stage does:

- HOCBA_TEST_FAIL_BATCH=N: the Nth batch raises, as a bug would, so a test can watch what
  the worker does with an error that is not the input's fault; after
  HOCBA_TEST_FAIL_DELAY_S seconds if set, while the batches behind it go ahead. With
  HOCBA_TEST_FAIL_CANCELLED set it ends cancelled instead, as if something had cancelled it.
- HOCBA_TEST_HOLD_BATCH=N: the Nth batch waits until the file HOCBA_TEST_HOLD_UNTIL names
  exists, and says so on stderr first, so that a test can act while it is in flight.
"""

import asyncio
import os
import sys
from pathlib import Path

from hocba.worker import Ingestor

_failing_batch = int(os.environ.get("HOCBA_TEST_FAIL_BATCH", "0"))
_held_batch = int(os.environ.get("HOCBA_TEST_HOLD_BATCH", "0"))
_prepare = Ingestor.prepare
_batches = 0


async def _prepare_or_fail(self, messages, *rest):  # type: ignore[no-untyped-def]
    global _batches
    _batches += 1
    this_batch = _batches  # others are counted while this one waits
    if this_batch == _held_batch:
        release = Path(os.environ["HOCBA_TEST_HOLD_UNTIL"])
        print(f"the test holds batch {this_batch}", file=sys.stderr, flush=True)
        while not release.exists():
            await asyncio.sleep(0.05)
    if this_batch == _failing_batch:
        await asyncio.sleep(float(os.environ.get("HOCBA_TEST_FAIL_DELAY_S", "0")))
        if os.environ.get("HOCBA_TEST_FAIL_CANCELLED"):
            raise asyncio.CancelledError
        raise RuntimeError("a bug, injected by the test")
    return await _prepare(self, messages, *rest)


Ingestor.prepare = _prepare_or_fail  # type: ignore[method-assign]
