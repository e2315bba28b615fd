"""The Faust worker: thin wiring around the pure pipeline and the store.

The input topic is read as raw bytes (Faust never decodes, so it can never ack a message it
failed to decode), batches are taken with `noack_take`, and events are acked by hand only
after their rows are landed and their dead letters delivered. CPU work runs in a thread,
the store is owned by one thread of its own (chDB is single-owner), so Faust's event loop
keeps heart-beating while a batch is processed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

import faust

from hocba.context import ContextLoader
from hocba.domain.messages import RawMessage
from hocba.kafka.lag import partition_lags
from hocba.landing import LandResult, land_prepared
from hocba.metrics import Metrics
from hocba.pipeline.deadletter import DeadLetter
from hocba.pipeline.process import Prepared, process_batch
from hocba.settings import Settings
from hocba.store.base import Store
from hocba.store.factory import open_store

log = logging.getLogger("hocba.worker")
T = TypeVar("T")
MAX_BACKOFF_S = 30.0
READY_PROBE_TIMEOUT_S = 5.0


def raw_message(message: Any) -> RawMessage:
    headers = message.headers or ()
    pairs = headers.items() if isinstance(headers, dict) else headers
    return RawMessage(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=int(message.timestamp * 1000),
        key=message.key,
        value=message.value or b"",
        headers=tuple((k, bytes(v or b"")) for k, v in pairs),
    )


class Ingestor:
    """Owns the two threads and the store; one `handle` call per batch of events."""

    def __init__(self, app: faust.App, settings: Settings, bootstrap: str) -> None:
        self.app = app
        self.settings = settings
        self.bootstrap = bootstrap
        self.cpu = ThreadPoolExecutor(1, thread_name_prefix="hocba-cpu")
        self.store_thread = ThreadPoolExecutor(1, thread_name_prefix="hocba-store")
        self.contexts = ContextLoader(settings)
        self.metrics = Metrics()
        self.store: Store | None = None
        self.totals: dict[str, int] = {}
        self.backpressured = False

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.store = await self._retry(
            "opening the store",
            lambda: loop.run_in_executor(self.store_thread, open_store, self.settings),
        )
        await loop.run_in_executor(self.cpu, self.contexts.current)

    async def stop(self) -> None:
        store, self.store = self.store, None
        if store is not None:
            await asyncio.get_running_loop().run_in_executor(self.store_thread, store.close)
        self.cpu.shutdown()
        self.store_thread.shutdown()

    async def refresh(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self.cpu, self.contexts.refresh)
        self.metrics.set_ages(self.contexts.loaded_at)

    async def update_lag(self) -> None:
        lags = await partition_lags(
            self.bootstrap, self.settings.consumer_group, self.settings.submissions_topic
        )
        self.metrics.set_lag(lags)

    async def ready(self) -> dict[str, bool]:
        """Broker reachable with partitions assigned, store answering, not backing off."""
        assigned = bool(self.app.consumer.assignment()) if self.app.consumer else False
        store_ok = False
        store = self.store
        if store is not None:
            loop = asyncio.get_running_loop()
            probe = loop.run_in_executor(self.store_thread, store.query, "SELECT 1 AS ok")
            try:
                store_ok = bool(await asyncio.wait_for(probe, READY_PROBE_TIMEOUT_S))
            except Exception:  # any failure of the probe means "not ready", never a crash
                store_ok = False
        return {
            "partitions_assigned": assigned,
            "clickhouse": store_ok,
            "not_backpressured": not self.backpressured,
        }

    async def handle(self, messages: Sequence[RawMessage]) -> LandResult:
        loop = asyncio.get_running_loop()
        if self.store is None:
            await self.start()
        store = self.store
        assert store is not None, "the store is opened by start()"
        ctx = self.contexts.current()
        prepared = await loop.run_in_executor(self.cpu, process_batch, messages, ctx)
        started = time.perf_counter()
        result = await self._retry(
            "landing",
            lambda: loop.run_in_executor(
                self.store_thread, land_prepared, store, prepared, self.settings.worker_name
            ),
        )
        self.metrics.insert_seconds.observe(time.perf_counter() - started)
        await self._retry("dead-lettering", lambda: self._send_dead_letters(result.dead_letters))
        self._observe(prepared, result)
        return result

    def _observe(self, prepared: Prepared, result: LandResult) -> None:
        m = self.metrics
        m.batch_messages.observe(len(prepared.accepted) + len(prepared.rejected))
        m.process_seconds.observe(prepared.clock.total_s)
        m.verify_seconds.observe(prepared.clock.verify_s)
        m.count_messages(result.outcomes)
        m.count_records(result.counts)
        now_ms = time.time() * 1000
        for item in prepared.accepted:
            m.end_to_end_seconds.observe(max(0.0, (now_ms - item.submission.sent_at_ms) / 1000))
        for name, value in result.counts.items():
            self.totals[name] = self.totals.get(name, 0) + value
        for rejection in prepared.rejected:
            msg = rejection.message
            log.info(
                "dead-lettered",
                extra={
                    "code": str(rejection.code),
                    "submission_id": rejection.submission_id,
                    "topic": msg.topic,
                    "partition": msg.partition,
                    "offset": msg.offset,
                },
            )

    async def _send_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        producer = self.app.producer
        await asyncio.gather(
            *(
                producer.send_and_wait(
                    self.settings.dlq_topic, d.key, d.value, None, None, list(d.headers)
                )
                for d in letters
            )
        )

    async def _retry(self, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """Retry an outage forever with backoff: good records are never dead-lettered for it.

        Not acking while we wait is the back-pressure: the take buffer fills and Faust
        stops fetching.
        """
        backoff = 0.5
        while True:
            try:
                result = await attempt()
            except Exception as exc:  # an outage, not bad data: bad data never raises here
                self.backpressured = True
                self.metrics.backpressure.set(1)
                log.warning(
                    "%s failed (%s: %s); retrying in %.1fs",
                    what,
                    type(exc).__name__,
                    exc,
                    backoff,
                    extra={"backpressure": True},
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
            else:
                if backoff > 0.5:
                    log.info("%s recovered", what)
                self.backpressured = False
                self.metrics.backpressure.set(0)
                return result


def create_app(settings: Settings, bootstrap: str) -> tuple[faust.App, Ingestor]:
    app = faust.App(
        settings.consumer_group,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        datadir=str(settings.faust_dir),
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_heartbeat_interval=settings.broker_heartbeat_interval_s,
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.topic_partitions,
        topic_allow_declare=True,
        producer_max_batch_size=1_048_576,
        producer_linger_ms=5,
    )
    ingestor = Ingestor(app, settings, bootstrap)
    submissions = app.topic(
        settings.submissions_topic,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )

    @app.agent(submissions)
    async def ingest(stream: Any) -> None:
        try:
            async for events in stream.noack_take(
                settings.batch_max_messages, within=settings.batch_max_ms / 1000
            ):
                await ingestor.handle([raw_message(e.message) for e in events])
                for event in events:
                    await stream.ack(event)
        finally:
            await ingestor.stop()

    @app.timer(interval=2.0)
    async def reload_trust_and_reference() -> None:
        await ingestor.refresh()

    @app.timer(interval=10.0)
    async def measure_lag() -> None:
        try:
            await ingestor.update_lag()
        except Exception as exc:  # a metric must never take the worker down
            log.warning("could not measure lag: %s", exc)

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        return web.json(
            {"status": "ok", "totals": ingestor.totals, "at": datetime.now(UTC).isoformat()}
        )

    @app.page("/ready")
    async def ready(web: Any, request: Any) -> Any:
        checks = await ingestor.ready()
        return web.json(
            {"ready": all(checks.values()), **checks}, status=200 if all(checks.values()) else 503
        )

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        return web.bytes(
            ingestor.metrics.render(), content_type="text/plain; version=0.0.4; charset=utf-8"
        )

    return app, ingestor
