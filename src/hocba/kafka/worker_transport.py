"""The Faust transport the worker consumes with: Faust's aiokafka driver, changed thrice.

- Offsets that hold no message are committed past right after offset 0 too
  (`offset_gaps`).
- A fetch that finds nothing new is held by the broker for `fetch_max_wait_ms`, not
  Faust's fixed 1.5 s. Apache Kafka answers such a fetch as soon as a message arrives, so
  there the wait only paces the polls of an idle partition; the embedded broker (Tansu)
  answers when the wait is up. There a message published into a caught-up partition waited
  0.35 s at the median and 0.79 s at the 99th percentile before Faust saw it, half of the
  end-to-end latency at half the maximum rate (bench/RESULTS.md, "Latency at half the
  maximum rate").
- Records of a transaction its producer aborted are skipped (`read_committed`), and those of
  one still open are read once it commits. Faust reads them all unless its own producer is
  transactional (`processing_guarantee="exactly_once"`, which the worker does not use: it
  lands into ClickHouse, not into Kafka). A vendor that publishes a class in a transaction
  and aborts it has not sent it; landed, its records would count in the statistics.
"""

from __future__ import annotations

from typing import Any, cast

import aiokafka
import faust
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Transport

from hocba.kafka.offset_gaps import GapAfterFirstOffsetConsumer


class WorkerConsumerThread(AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Faust passes fetch_max_wait_ms=1500 to the constructor; aiokafka hands the value
        # to its fetcher in start(), so it is replaced between the two. (Faust's client-only
        # consumer is made elsewhere; a worker never is one.)
        consumer._fetch_max_wait_ms = cast(WorkerTransport, transport).fetch_max_wait_ms
        consumer._isolation_level = "read_committed"  # the same way: it too reaches the fetcher
        return consumer


class WorkerConsumer(GapAfterFirstOffsetConsumer):
    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return WorkerConsumerThread(self, loop=self.loop, beacon=self.beacon)


class WorkerTransport(Transport):
    Consumer = WorkerConsumer

    def __init__(self, *args: Any, fetch_max_wait_ms: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fetch_max_wait_ms = fetch_max_wait_ms


def use_worker_transport(app: faust.App, fetch_max_wait_ms: int) -> None:
    """Have `app` consume through `WorkerTransport`; before the app starts."""
    app.transport = WorkerTransport(
        app.conf.broker_consumer, app, fetch_max_wait_ms=fetch_max_wait_ms
    )
