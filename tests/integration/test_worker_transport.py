"""The worker's Faust transport against the embedded broker (`kafka.worker_transport`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import faust

from hocba.kafka.broker import EmbeddedBroker
from hocba.kafka.worker_transport import use_worker_transport


def test_the_worker_asks_the_broker_to_hold_a_fetch_for_its_setting_not_faust_s_1_5_s(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """The embedded broker holds a fetch that finds nothing for all of its wait, even when a
    message arrives meanwhile: Faust's fixed 1.5 s put up to 0.8 s between publishing and
    the worker. The wait must reach the fetcher the started consumer sends requests with."""
    app = faust.App("fetch-wait", broker=f"kafka://{broker.bootstrap}", datadir=str(tmp_path))
    use_worker_transport(app, fetch_max_wait_ms=37)

    async def fetch_wait() -> int:
        consumer = app.consumer._thread._create_consumer(asyncio.get_running_loop())
        await consumer.start()
        try:
            return int(consumer._fetcher._fetch_max_wait_ms)
        finally:
            await consumer.stop()

    assert asyncio.run(fetch_wait()) == 37
