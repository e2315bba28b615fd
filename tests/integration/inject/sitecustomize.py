"""Loaded by a worker process started with this directory on PYTHONPATH (Python imports
`sitecustomize` at start), to change what a batch's CPU stage does:

- HOCBA_TEST_FAIL_BATCH=N: the Nth batch raises, as a bug would, so a test can watch what
  the worker does with an error that is not the input's fault; after
  HOCBA_TEST_FAIL_DELAY_S seconds if set, while the batches behind it go ahead. With
  HOCBA_TEST_FAIL_CANCELLED set it ends cancelled instead, as if something had cancelled it.
- HOCBA_TEST_BATCH_DELAY_S=S: every batch takes S seconds longer, so that a topic lasts
  long enough for a test to do something while batches are in flight.
"""

import asyncio
import os

from hocba.worker import Ingestor

_failing_batch = int(os.environ.get("HOCBA_TEST_FAIL_BATCH", "0"))
_delay_s = float(os.environ.get("HOCBA_TEST_BATCH_DELAY_S", "0"))
_prepare = Ingestor.prepare
_batches = 0


async def _prepare_or_fail(self, messages, *rest):  # type: ignore[no-untyped-def]
    global _batches
    _batches += 1
    this_batch = _batches  # others are counted while this one sleeps
    await asyncio.sleep(_delay_s)
    if this_batch == _failing_batch:
        await asyncio.sleep(float(os.environ.get("HOCBA_TEST_FAIL_DELAY_S", "0")))
        if os.environ.get("HOCBA_TEST_FAIL_CANCELLED"):
            raise asyncio.CancelledError
        raise RuntimeError("a bug, injected by the test")
    return await _prepare(self, messages, *rest)


Ingestor.prepare = _prepare_or_fail  # type: ignore[method-assign]
