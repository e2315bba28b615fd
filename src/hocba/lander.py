"""The landing side of the worker: the one owner of the store, and the DLQ producer.

The store lives on a thread of its own (chDB is single-owner and a synchronous insert must
not block Faust's event loop). A batch is acknowledged by the caller only after `land`
returns: rows inserted, audit written, dead letters delivered.

Staging a batch does not depend on what is landed, so the next batch is staged on a second
thread, into a second store with its own staging table, while this one lands: alone, that
took the store from 23k to 28k records/s (bench/RESULTS.md). The stores are used in turn,
as slots 0 and 1; the caller stages a batch only once the batch before it in that slot has
landed, and lands the batches in order.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Mapping, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from hocba.backoff import Backpressure, retry_outage
from hocba.fingerprint import dir_fingerprint
from hocba.landing import (
    LandResult,
    RecordStage,
    StagedBatch,
    land_prepared,
    land_staged_batch,
    stage_prepared,
)
from hocba.metrics import Metrics
from hocba.pipeline.deadletter import DeadLetter
from hocba.pipeline.process import Accepted, Prepared
from hocba.reference.loader import load_reference_dir
from hocba.reference.model import ReferenceData
from hocba.reference.tables import mirror_reference
from hocba.settings import Settings
from hocba.store.base import Store
from hocba.store.factory import open_store

log = logging.getLogger("hocba.lander")
READY_PROBE_TIMEOUT_S = 5.0


def _signed(item: Accepted) -> bytes:
    """What layer 1 remembers of a submission besides its id: its signature's digest. The id
    is not signed, and a vendor may send other content under one already landed; that must
    reach the record lookup, not be dropped as a re-delivery. A re-delivery, or a replay,
    carries the very same signature (hashed: a few hundred bytes, not the message)."""
    return hashlib.sha256(item.submission.signature).digest()[:16]


class Lander:
    def __init__(
        self,
        producer: Any,
        settings: Settings,
        metrics: Metrics,
        backpressure: Backpressure,
        seen: MutableMapping[bytes, bytes] | None = None,
    ) -> None:
        self.producer = producer  # anything with Faust's `send_and_wait`
        self.settings = settings
        self.metrics = metrics
        self.backpressure = backpressure
        self.seen = seen  # submission id -> `_signed` once landed completely (DESIGN §5, layer 1)
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="hocba-store")
        self.stage_thread = ThreadPoolExecutor(1, thread_name_prefix="hocba-stage")
        self.stage = RecordStage.build(
            settings.pseudonym_key.get_secret_value().encode(),
            settings.keep_identity,
            settings.max_records_per_message,
        )
        self.stores: dict[int, Store] = {}  # by slot
        self.opening = asyncio.Lock()
        self.mirroring = asyncio.Lock()
        self.reference_fingerprint = ""  # of the reference files last mirrored
        # Read but not yet copied (the store refused): copied again without reading the
        # files again, ~0.5 s for a national school list, at every batch until it succeeds.
        self.reference_pending: tuple[str, ReferenceData] | None = None
        self.totals: dict[str, int] = {}

    async def _store(self, slot: int = 0) -> Store:
        async with self.opening:
            if slot not in self.stores:
                loop = asyncio.get_running_loop()
                self.stores[slot] = await retry_outage(
                    "opening the store",
                    lambda: loop.run_in_executor(self.thread, open_store, self.settings, slot),
                    self.backpressure,
                )
        return self.stores[slot]

    async def open(self) -> None:
        """Open the store (and create its tables) before the first message: until it is open
        `/ready` says ClickHouse is not there, and an idle topic must not hold up a rollout.
        The reference data is copied in now too: copied at the first batch, a national school
        list held that batch ~0.7 s while the messages behind it queued (`bench/RESULTS.md`).
        A copy that fails here is left to the first batch, as before: starting must not."""
        store = await self._store()
        try:
            await self._mirror_reference(store)
        except Exception as exc:  # e.g. a file replaced while it was listed
            log.error("copying the reference data at start failed, the first batch tries: %s", exc)

    async def stop(self) -> None:
        """A batch being staged ahead finishes first; waited for off the event loop, which
        still has the group to leave."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.stage_thread.shutdown)
        stores, self.stores = list(self.stores.values()), {}
        for store in stores:
            await loop.run_in_executor(self.thread, store.close)
        self.thread.shutdown()

    async def probe(self) -> bool:
        store = self.stores.get(0)
        if store is None:
            return False
        probe = asyncio.get_running_loop().run_in_executor(self.thread, store.query, "SELECT 1")
        try:
            return bool(await asyncio.wait_for(probe, READY_PROBE_TIMEOUT_S))
        except Exception:  # any failure of the probe means "not ready", never a crash
            return False

    def _redelivered(self, prepared: Prepared) -> frozenset[str]:
        """Ids whose every message in the batch is the one landed: staging skips by id, and a
        batch may hold a re-delivery beside other content sent under the same id."""
        if self.seen is None:
            return frozenset()
        same: set[str] = set()
        other: set[str] = set()
        for a in prepared.accepted:
            sid = a.submission.submission_id
            (same if self.seen.get(sid.encode()) == _signed(a) else other).add(sid)
        return frozenset(same - other)

    def _remember(self, prepared: Prepared, result: LandResult) -> None:
        """Only completely landed submissions: one with failed records must stay replayable."""
        if self.seen is None:
            return
        signed = {a.submission.submission_id: _signed(a) for a in prepared.accepted}
        for sid in result.complete:
            if sid in signed:
                self.seen[sid.encode()] = signed[sid]

    async def read(self, sql: str, parameters: Mapping[str, Any]) -> list[dict[str, Any]]:
        """A read-only query on the store's own thread (see hocba.store.remote)."""
        store = await self._store()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.thread, store.query, sql, parameters)

    async def _mirror_reference(self, store: Store) -> None:
        """Copy the reference directory into the store's reference tables whenever its files
        changed: the record stage joins them, analysts too, and `hocba reference load`
        cannot write them while we hold chDB. Checked before every batch, in every role (a
        `land` worker has no CPU stage of its own to notice a reload); a few stat calls."""
        directory = self.settings.reference_dir
        # One at a time: a batch staging beside a copy waits for it, rather than staging
        # against the old tables.
        async with self.mirroring:
            fingerprint = dir_fingerprint(directory)
            if directory is None or fingerprint == self.reference_fingerprint:
                return
            loop = asyncio.get_running_loop()
            pending = self.reference_pending
            if pending is None or pending[0] != fingerprint:
                try:
                    read = await loop.run_in_executor(self.thread, load_reference_dir, directory)
                except Exception as exc:  # a broken file: said once, until the files change
                    self.reference_fingerprint = fingerprint
                    log.error("the reference data does not load, the store keeps the last: %s", exc)
                    return
                pending = self.reference_pending = (fingerprint, read)
            try:
                await loop.run_in_executor(self.thread, mirror_reference, store, pending[1])
            except Exception as exc:  # keep the last good tables; landing must go on
                log.error("could not mirror the reference data into the store: %s", exc)
                return  # copied again at the next batch
            self.reference_fingerprint, self.reference_pending = fingerprint, None

    async def stage_ahead(self, prepared: Prepared, slot: int) -> StagedBatch:
        """Stage a batch ahead into the slot's store, for `land` with the same slot."""
        store = await self._store(slot)
        await self._mirror_reference(store)
        return await asyncio.get_running_loop().run_in_executor(
            self.stage_thread,
            stage_prepared,
            store,
            prepared,
            self.stage,
            self._redelivered(prepared),
        )

    async def land(
        self,
        prepared: Prepared,
        slot: int = 0,
        staging: Awaitable[StagedBatch] | None = None,
    ) -> LandResult:
        """Land a batch, staged ahead by `staging` (from `stage_ahead` with this slot) or here.

        If staging ahead failed, or landing fails, the batch is staged again and landed
        with the outage handling of landing (every step is idempotent, `land_prepared`).
        Each audit insert is then retried on its own: retrying the landing would decide
        again, find the records this batch landed, and audit them as duplicates."""
        store = await self._store(slot)
        ahead: list[StagedBatch] = []
        if staging is not None:
            try:
                ahead.append(await staging)
            except Exception as exc:  # e.g. the store is out: landing retries it below
                log.warning("staging ahead failed, staging again: %s", exc)
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        worker = self.settings.worker_name

        async def land_once() -> LandResult:
            if ahead:
                staged = ahead.pop()
                return await loop.run_in_executor(
                    self.thread, land_staged_batch, store, staged, self.stage, worker
                )
            # Staged here, at each try: the reference data copied first, since an outage
            # this batch waited out may have held back the copy of a change.
            await self._mirror_reference(store)
            redelivered = self._redelivered(prepared)  # staged ahead, it was asked there
            return await loop.run_in_executor(
                self.thread, land_prepared, store, prepared, self.stage, worker, redelivered
            )

        result = await retry_outage("landing", land_once, self.backpressure)
        for table_name, rows in result.audit.items():
            insert = partial(loop.run_in_executor, self.thread, store.insert_rows, table_name, rows)
            await retry_outage(f"auditing ({table_name})", insert, self.backpressure)
        self.metrics.insert_seconds.observe(time.perf_counter() - started)
        await retry_outage(
            "dead-lettering", lambda: self._send(result.dead_letters), self.backpressure
        )
        self._remember(prepared, result)
        self._observe(prepared, result)
        return result

    async def _send(self, letters: Sequence[DeadLetter]) -> None:
        await asyncio.gather(
            *(
                self.producer.send_and_wait(
                    self.settings.dlq_topic, d.key, d.value, None, None, list(d.headers)
                )
                for d in letters
            )
        )

    def _observe(self, prepared: Prepared, result: LandResult) -> None:
        self.metrics.count_messages(result.outcomes)
        self.metrics.count_records(result.counts)
        now_ms = time.time() * 1000
        for item in prepared.accepted:
            latency = max(0.0, (now_ms - item.submission.sent_at_ms) / 1000)
            self.metrics.end_to_end_seconds.observe(latency)
        for name, value in result.counts.items():
            self.totals[name] = self.totals.get(name, 0) + value
        for rejection in result.rejected:
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
