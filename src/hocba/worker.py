"""The Faust worker: thin wiring around the pure pipeline, the lander and the hand-off.

Roles (DESIGN §5, one owner of chDB):
- `all` (default): verify and land in one process — the embedded default with one worker,
  and every worker when a ClickHouse server is configured.
- `verify`: verify and hand prepared batches to `hocba.landing` — for several workers on
  the embedded default.
- `land`: the single lander that consumes `hocba.landing` and owns the store.

The input topic is read as raw bytes (Faust never decodes, so it can never ack a message it
failed to decode), batches are taken with `noack_take`, and events are acked by hand only
after their rows are landed (or durably handed off) and their dead letters delivered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import faust
import mode
from prometheus_client import CONTENT_TYPE_LATEST

from hocba.backoff import Backpressure, retry_outage
from hocba.context import ContextLoader
from hocba.cpu_pool import CpuPool
from hocba.domain.messages import RawMessage, Rejection
from hocba.domain.reasons import Reason
from hocba.kafka.fetch_reader import read_any_batch
from hocba.kafka.lag import partition_lags
from hocba.kafka.producer import MAX_REQUEST_BYTES
from hocba.kafka.worker_transport import use_worker_transport
from hocba.lander import Lander
from hocba.landing import StagedBatch
from hocba.metrics import Metrics
from hocba.pipeline.batching import by_size
from hocba.pipeline.codec import SchemaRegistry, load_registry
from hocba.pipeline.handoff import decode_item, encode_item
from hocba.pipeline.process import Accepted, Prepared, process_batch
from hocba.pipeline.seen import RecentlySeen
from hocba.settings import Settings, lander_group
from hocba.store.remote import is_read_only, rows_to_arrow

log = logging.getLogger("hocba.worker")
MAX_IN_FLIGHT = 3  # batches taken but not yet landed: the store always has the next one
STREAM_BUFFER_BATCHES = 2  # takes' worth of events Faust may prefetch


class Role(StrEnum):
    ALL = "all"
    VERIFY = "verify"
    LAND = "land"


def raw_message(message: Any) -> RawMessage:
    """Faust's message as the pipeline's; a record in Kafka's oldest format has no time."""
    headers = message.headers or ()
    pairs = headers.items() if isinstance(headers, dict) else headers
    return RawMessage(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=int((message.timestamp or 0) * 1000),
        key=message.key,
        value=message.value or b"",
        headers=tuple((k, bytes(v or b"")) for k, v in pairs),
    )


class Ingestor:
    """The CPU side: envelopes and signatures, on a thread of this process (the default) or in
    child processes (`HOCBA_CPU_PROCESSES`), with hot-reloaded context. Since ClickHouse
    reads the records, a child no longer pays on two cores (17.7k records/s on a thread,
    16.8k with a child, ~200 MB more): it is for verify-heavy loads on more cores."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.metrics = metrics
        self.loaded_at = 0.0
        self.contexts = ContextLoader(settings)
        # Loaded now, so a worker without a usable trust store or reference data stops at
        # start with the reason, instead of failing every batch it takes.
        self.contexts.current()
        self.pool = CpuPool(settings) if settings.cpu_processes else None
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="hocba-cpu")

    async def prepare(
        self, messages: Sequence[RawMessage], received_at: datetime | None = None
    ) -> Prepared:
        loop = asyncio.get_running_loop()
        if self.pool is not None:
            prepared, loaded_at = await self.pool.prepare(messages, received_at)
        else:
            ctx = await loop.run_in_executor(self.thread, self.contexts.current)
            prepared = await loop.run_in_executor(
                self.thread, process_batch, messages, ctx, received_at
            )
            loaded_at = self.contexts.loaded_at
        self._loaded(loaded_at)
        self.metrics.batch_messages.observe(len(messages))
        self.metrics.process_seconds.observe(prepared.clock.total_s)
        self.metrics.verify_seconds.observe(prepared.clock.verify_s)
        return prepared

    async def refresh(self) -> None:
        """This process's context is refreshed in pool mode too: its `reload_failed` is what
        /metrics reports (children load the same files)."""
        await asyncio.get_running_loop().run_in_executor(self.thread, self.contexts.refresh)
        if self.pool is not None:
            self._loaded(await self.pool.refresh())
        else:
            self._loaded(self.contexts.loaded_at)

    def _loaded(self, loaded_at: float) -> None:
        """A new trust/reference context took effect: update its age."""
        if loaded_at > self.loaded_at:  # children report in any order; only newer counts
            self.metrics.context_loaded(loaded_at)
            self.loaded_at = loaded_at

    def stop(self) -> None:
        if self.pool is not None:
            self.pool.stop()
        self.thread.shutdown()


def arrived_at(events: Sequence[Any]) -> datetime | None:
    """When the first of `events` reached this consumer, from the arrival time Faust's
    monitor stamps on each message (`time_in`, on the monotonic clock); None without it. A
    batch is taken until it is full or `HOCBA_BATCH_MAX_MS` passes, and may wait behind
    others: its audit rows should say when the pipeline received it, not when it was cut."""
    stamps = [t for t in (getattr(e.message, "time_in", None) for e in events) if t is not None]
    if not stamps:
        return None
    return datetime.now(UTC) - timedelta(seconds=time.monotonic() - min(stamps))


def from_handoff(events: Sequence[Any], registry: SchemaRegistry) -> Prepared:
    """Landing messages back into one batch; an undecodable one is dead-lettered, not lost.

    A batch has one `received_at`, for all its audit rows: the earliest its items carry, when
    the pipeline first received any of them; the lander's own time only when none carries one
    (items of format 1, from older verifiers)."""
    accepted: list[Accepted] = []
    rejected: list[Rejection] = []
    received: list[datetime] = []
    for event in events:
        verdict: Accepted | Rejection
        try:
            item = decode_item(event.message.value, registry)
        except Exception as exc:  # internal topic corruption: keep the bytes, say why
            verdict = Rejection(
                raw_message(event.message),
                Reason.INTERNAL_ERROR,
                f"undecodable hand-off message: {exc}",
            )
        else:
            verdict = item.verdict
            if item.received_at is not None:
                received.append(item.received_at)
        (accepted if isinstance(verdict, Accepted) else rejected).append(verdict)  # type: ignore[arg-type]
    return Prepared(tuple(accepted), tuple(rejected), min(received, default=datetime.now(UTC)))


def _seen_table(app: faust.App, group: str, settings: Settings) -> Any:
    """Layer 1 of deduplication (DESIGN §5): submission ids landed completely, one changelog
    write per message (`HOCBA_DEDUPE_TABLE=true`, for Apache Kafka; otherwise an in-process
    LRU, see `hocba.pipeline.seen`). Keys are the raw id bytes, so when vendors key messages by
    submission id (as `hocba publish` does) the table is co-partitioned with the input and a
    re-delivered submission is dropped before any lookup; otherwise layer 2 catches it."""
    if not settings.dedupe_table:
        return RecentlySeen[bytes, bytes]()
    return app.Table(
        f"{group}-landed-submissions",
        schema=faust.Schema(
            key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        ),
        partitions=settings.topic_partitions,
        use_partitioner=True,
    )


LOOPBACK = ("127.0.0.1", "::1")  # the store's pages answer local callers only


def _raw_topic(app: faust.App, name: str) -> Any:
    return app.topic(
        name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )


def create_app(settings: Settings, bootstrap: str, role: Role = Role.ALL) -> faust.App:
    group = lander_group(settings.consumer_group) if role is Role.LAND else settings.consumer_group
    datadir = settings.faust_dir / role.value
    datadir.mkdir(parents=True, exist_ok=True)
    # What a verifying worker reads is the vendors' topic, which takes twice the messages it
    # accepts (deploy/kubernetes/topics.yaml); a larger record came compressed, and is
    # dead-lettered without its bytes. A lander reads only its own hand-off items.
    read_any_batch(None if role is Role.LAND else 2 * settings.max_message_bytes)
    app = faust.App(
        group,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        datadir=str(datadir),
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_heartbeat_interval=settings.broker_heartbeat_interval_s,
        # Checked, so that a batch whose CRC does not match is dead-lettered whole with that
        # reason and its bytes (fetch_reader), not read as it is. aiokafka decompresses a
        # batch when a poll reaches it: a bounded poll bounds the records handed over at once.
        broker_check_crcs=True,
        broker_max_poll_records=settings.batch_max_messages,
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        topic_allow_declare=True,
        producer_max_batch_size=1_048_576,
        producer_max_request_size=MAX_REQUEST_BYTES,
        producer_linger_ms=5,
        # Faust prefetches up to 4,096 events by default: with class-sized messages (~40 KB)
        # a backlog could put ~160 MB of it in the worker's memory. Two takes ahead keep
        # the store fed just as well.
        stream_buffer_maxsize=STREAM_BUFFER_BATCHES * settings.batch_max_messages,
        # An error that escapes the agent is a bug (bad input becomes a dead letter): stop the
        # worker, so nothing after it is taken, and let its supervisor restart it from the
        # last commit. Restarting only the agent left a stream that no one landed.
        agent_supervisor=mode.CrashingSupervisor,
    )
    use_worker_transport(app, settings.fetch_max_wait_ms)
    metrics = Metrics()
    backpressure = Backpressure(metrics.backpressure)
    lander = (
        Lander(app.producer, settings, metrics, backpressure, _seen_table(app, group, settings))
        if role is not Role.VERIFY
        else None
    )
    ingestor = Ingestor(settings, metrics) if role is not Role.LAND else None
    if ingestor is not None and settings.trust_dir is not None:
        metrics.watch_crls(settings.trust_dir)
        contexts = ingestor.contexts
        metrics.reload_failing.set_function(lambda: float(contexts.reload_failed))
    registry = load_registry()  # the lander reads the envelopes of handed-off messages
    source = settings.landing_topic if role is Role.LAND else settings.submissions_topic

    async def hand_off(prepared: Prepared) -> None:
        items: list[Accepted | Rejection] = [*prepared.accepted, *prepared.rejected]
        await asyncio.gather(
            *(
                app.producer.send_and_wait(
                    settings.landing_topic,
                    i.message.key,
                    encode_item(i, prepared.received_at),
                    None,
                    None,
                    None,
                )
                for i in items
            )
        )

    async def prepare(events: Sequence[Any]) -> Prepared:
        if ingestor is None:
            return from_handoff(events, registry)
        return await ingestor.prepare([raw_message(e.message) for e in events], arrived_at(events))

    async def deliver(
        prepared: Prepared, slot: int, staging: asyncio.Future[StagedBatch] | None
    ) -> None:
        if lander is not None:
            await lander.land(prepared, slot, staging)
        else:
            await retry_outage("hand-off", lambda: hand_off(prepared), backpressure)

    @app.agent(_raw_topic(app, source))
    async def ingest(stream: Any) -> None:
        """Queue the next batches for the CPU stage while earlier ones land.

        Each take is cut into batches by size (`by_size`). A batch goes to the CPU stage as
        soon as it is cut, without waiting for the one before it to come back: the stage
        then starts on the next batch the moment it returns one (awaiting each in turn left
        a CPU child idle ~30 % of the time while results crossed the pipe and the next
        batch was taken). Deliveries still run one after
        another in batch order (the store thread is sequential, so each dedupe lookup sees
        the batches before it), and each delivery acks its own events when it is done, so
        the last batch of a burst is acked without waiting for the next one. A lander stages
        a batch while the one before it lands, in two slots used in turn (`Lander`).

        The stream is `noack()`: `noack_take` alone turns acks back on when it ends, and
        Faust's background reader would then ack every later event unread.
        """
        stream = stream.noack()
        in_flight: deque[asyncio.Task[None]] = deque()
        stopping = False  # the deliveries still in flight are cancelled below

        def crash_on_error(delivery: asyncio.Task[None]) -> None:
            """Stop the worker at once: the loop below would see the error only when the
            next take arrives, at the end of a burst never, and the worker would sit idle.
            A delivery cancelled while the app runs too: each delivery waits for the one
            before it, so every batch behind it would end cancelled, unacked, and silent."""
            if not delivery.cancelled():
                if (error := delivery.exception()) is not None:
                    app.add_future(app.crash(error))
            elif not (stopping or app.should_stop):  # Faust stopping cancels the one awaited
                cancelled = RuntimeError("a batch's delivery was cancelled while the worker ran")
                app.add_future(app.crash(cancelled))

        batches = 0

        async def land_then_ack(
            previous: asyncio.Task[None] | None,
            two_back: asyncio.Task[None] | None,
            slot: int,
            events: Sequence[Any],
            preparing: asyncio.Future[Prepared],
        ) -> None:
            prepared = await preparing
            staging = None
            if lander is not None:
                if two_back is not None:  # it landed from the slot staged in now
                    await asyncio.shield(two_back)
                staging = asyncio.ensure_future(lander.stage_ahead(prepared, slot))
            if previous is not None:
                await asyncio.shield(previous)
            await deliver(prepared, slot, staging)
            for event in events:
                await stream.ack(event)

        try:
            if lander is not None:
                await lander.open()
            async for taken in stream.noack_take(
                settings.batch_max_messages, within=settings.batch_max_ms / 1000
            ):
                for events in by_size(taken, settings.batch_max_bytes):
                    preparing = asyncio.ensure_future(prepare(events))
                    previous = in_flight[-1] if in_flight else None
                    two_back = in_flight[-2] if len(in_flight) > 1 else None
                    landing = land_then_ack(previous, two_back, batches % 2, events, preparing)
                    batches += 1
                    in_flight.append(asyncio.ensure_future(landing))
                    in_flight[-1].add_done_callback(crash_on_error)
                    while in_flight and (len(in_flight) > MAX_IN_FLIGHT or in_flight[0].done()):
                        await in_flight.popleft()
            while in_flight:
                await in_flight.popleft()
        finally:
            stopping = True
            for delivery in in_flight:
                delivery.cancel()
            if lander is not None:
                await lander.stop()
            if ingestor is not None:
                ingestor.stop()

    if ingestor is not None:

        @app.timer(interval=2.0)
        async def reload_trust_and_reference() -> None:
            await ingestor.refresh()

    @app.timer(interval=10.0)
    async def measure_lag() -> None:
        try:
            metrics.set_lag(await partition_lags(bootstrap, group, source))
        except Exception as exc:  # a metric must never take the worker down
            log.warning("could not measure lag: %s", exc)

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        totals = lander.totals if lander is not None else {}
        return web.json(
            {
                "status": "ok",
                "role": role.value,
                "totals": totals,
                "at": datetime.now(UTC).isoformat(),
            }
        )

    @app.page("/ready")
    async def ready(web: Any, request: Any) -> Any:
        checks = {
            "partitions_assigned": bool(app.consumer.assignment()),
            "clickhouse": await lander.probe() if lander is not None else True,
            "not_backpressured": not backpressure.active,
        }
        ok = all(checks.values())
        return web.json({"ready": ok, **checks}, status=200 if ok else 503)

    @app.page("/store")
    async def store_identity(web: Any, request: Any) -> Any:
        """Which chDB store this worker owns: `hocba stats` asks the worker on its port
        only if it is the one holding the store it was pointed at."""
        if lander is None or request.remote not in LOOPBACK:
            return web.json({"error": "not served here"}, status=403)
        return web.json({"chdb_path": str(settings.chdb_path.resolve())})

    @app.page("/store/query")
    class StoreQuery(faust.web.View):
        """Read-only SQL for `hocba stats` while this worker owns the chDB store."""

        async def post(self, request: Any) -> Any:
            if lander is None or request.remote not in LOOPBACK:
                return self.json({"error": "not served here"}, status=403)
            body = await request.json()
            if not is_read_only(body.get("sql", "")):
                return self.json({"error": "only one SELECT is answered"}, status=400)
            try:
                rows = await lander.read(body["sql"], body.get("parameters") or {})
            except Exception as exc:  # a bad query is the caller's error, not the worker's
                return self.json({"error": f"{type(exc).__name__}: {exc}"}, status=400)
            return self.bytes(
                rows_to_arrow(rows),
                headers={"Content-Type": "application/vnd.apache.arrow.stream"},
            )

    @app.page("/metrics")
    async def render_metrics(web: Any, request: Any) -> Any:
        return web.bytes(metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    return app
