"""The lander stages a batch while the one before it lands (two stores, two threads).

Through the real `Lander` and chDB; the DLQ producer is a list: the dead letters' delivery
through the broker is tested elsewhere, and here only a send that fails once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError

from hocba import lander as lander_module
from hocba.backoff import Backpressure
from hocba.lander import Lander
from hocba.metrics import Metrics
from hocba.pipeline.codec import RECORD_BATCH, decode
from hocba.pipeline.process import Prepared, process_batch
from hocba.pipeline.seen import RecentlySeen
from hocba.publishing import encode_payload
from hocba.reference.loader import load_reference_dir, write_reference_dir
from hocba.settings import Settings
from tests.faults import FailsOnce
from tests.fuzz.test_fuzz_stages import World, raw

pytestmark = pytest.mark.integration


class Letters:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    async def send_and_wait(self, *args: Any) -> None:
        self.sent.append(args)


def _lander(
    world: World,
    data_dir: Path,
    fault_file: Path | None = None,
    reference_dir: Path | None = None,
    seen: RecentlySeen[bytes, bytes] | None = None,
) -> Lander:
    settings = Settings(
        data_dir=data_dir,
        trust_dir=world.scenario.trust_dir,
        reference_dir=reference_dir or world.scenario.reference_dir,
        store_fault_file=fault_file,
    )
    metrics = Metrics()
    return Lander(Letters(), settings, metrics, Backpressure(metrics.backpressure), seen)


def _batch(world: World, *chosen: dict[str, Any]) -> Prepared:
    """One signed message of the chosen records, through the CPU stage."""
    value = raw(world.envelope(encode_payload(world.registry, list(chosen))))
    return process_batch([value], world.ctx)


def _schools_unknown(world: World, tmp_path: Path) -> Path:
    """A reference directory in which every record's school is unknown, for a test to
    change into the world's own while a lander runs."""
    reference_dir = tmp_path / "reference"
    write_reference_dir(reference_dir, replace(world.scenario.reference, schools={}))
    return reference_dir


async def _landed_on_unknown_schools(world: World, tmp_path: Path) -> tuple[Lander, Path, Path]:
    """A lander whose store is open with the old tables in it (one batch landed), its
    reference directory, and the file that puts its store out while it exists."""
    reference_dir, fault = _schools_unknown(world, tmp_path), tmp_path / "store-is-out"
    lander = _lander(world, tmp_path / "state", fault, reference_dir)
    await lander.land(_batch(world, world.scenario.records[0]), 0)
    return lander, reference_dir, fault


def test_a_submission_landed_completely_is_not_staged_again(tmp_path: Path) -> None:
    """DESIGN §5 layer 1. The record lookup (layer 2) would audit the re-delivery with the same
    figures, so the pipeline's tests cannot tell whether layer 1 ran: what it skips can."""
    world = World(tmp_path / "world")
    prepared = process_batch([raw(world.valid[0]), raw(world.valid[1])], world.ctx)
    first = prepared.accepted[0].submission.submission_id

    async def scenario() -> tuple[Any, Any]:
        lander = _lander(world, tmp_path / "state", seen=RecentlySeen(16))
        try:
            await lander.land(replace(prepared, accepted=prepared.accepted[:1]), 0)
            again = await lander.stage_ahead(prepared, 1)  # the first again, and the second
            result = await lander.land(prepared, 1, asyncio.sleep(0, again))
            return again, result
        finally:
            await lander.stop()

    again, result = asyncio.run(scenario())
    assert [a.submission.submission_id for a in again.repeats] == [first]
    assert [a.submission.submission_id for a in again.staged] == [
        prepared.accepted[1].submission.submission_id
    ]
    assert (result.counts["records_landed"], result.counts["records_duplicate"]) == (4, 4)


def test_other_content_under_a_landed_submission_id_is_not_taken_for_a_redelivery(
    tmp_path: Path,
) -> None:
    """The id is not signed: a vendor re-sending a corrected class under the same id had its
    change dropped as a re-delivery, audited as duplicates, until the worker restarted."""
    world = World(tmp_path / "world")
    records = decode(world.registry, RECORD_BATCH, world.submission.payload)["records"]
    original = process_batch(
        [raw(world.envelope(encode_payload(world.registry, records)))], world.ctx
    )
    corrected = [{**r, "revision": r["revision"] + 1} for r in records]
    resent = process_batch(
        [raw(world.envelope(encode_payload(world.registry, corrected)))], world.ctx
    )
    [item] = resent.accepted
    same_id = replace(item.submission, submission_id=original.accepted[0].submission.submission_id)
    resent = replace(resent, accepted=(replace(item, submission=same_id),))

    async def scenario(state: str, then: Any) -> Any:
        lander = _lander(world, tmp_path / state, seen=RecentlySeen(16))
        try:
            await lander.land(original, 0)
            return await lander.land(then, 0)
        finally:
            await lander.stop()

    alone = asyncio.run(scenario("alone", resent))
    assert alone.counts["records_landed"] == len(records)  # corrections, not duplicates
    both = replace(original, accepted=(*original.accepted, *resent.accepted))
    beside_its_redelivery = asyncio.run(scenario("beside", both))
    assert beside_its_redelivery.counts["records_landed"] == len(records)
    assert beside_its_redelivery.counts["records_duplicate"] == len(records)


def test_a_batch_staged_ahead_still_sees_the_batch_before_it_land(tmp_path: Path) -> None:
    """Batch 2 is staged before batch 1 lands; its dedupe lookup runs after, so a record of
    batch 1 sent again counts as a duplicate, and a correction of another lands."""
    world = World(tmp_path / "world")
    records = decode(world.registry, RECORD_BATCH, world.submission.payload)["records"]
    first, second, third = records[:3]

    def batch(*messages: list[dict[str, Any]]) -> Any:
        values = [raw(world.envelope(encode_payload(world.registry, m))) for m in messages]
        return process_batch(values, world.ctx)

    async def scenario() -> tuple[Any, Any, int]:
        lander = _lander(world, tmp_path / "state")
        try:
            one = batch([first, second])
            two = batch([first, third], [{**second, "revision": second["revision"] + 1}])
            staged_one = asyncio.ensure_future(lander.stage_ahead(one, 0))
            staged_two = asyncio.ensure_future(lander.stage_ahead(two, 1))
            await asyncio.gather(staged_one, staged_two)  # both staged, nothing landed
            landed_one = await lander.land(one, 0, staged_one)
            landed_two = await lander.land(two, 1, staged_two)
            rows = await lander.read("SELECT count() AS n FROM hocba.records FINAL", {})
            return landed_one, landed_two, rows[0]["n"]
        finally:
            await lander.stop()

    landed_one, landed_two, keys = asyncio.run(scenario())
    assert landed_one.counts["records_landed"] == 2
    assert (landed_two.counts["records_landed"], landed_two.counts["records_duplicate"]) == (2, 1)
    assert keys == 3


def test_a_batch_whose_staging_ahead_failed_is_staged_again_and_lands(tmp_path: Path) -> None:
    world = World(tmp_path / "world")
    fault = tmp_path / "store-is-out"

    async def scenario() -> Any:
        lander = _lander(world, tmp_path / "state", fault)
        try:
            await lander.land(process_batch([raw(world.valid[0])], world.ctx))  # opens slot 0
            prepared = process_batch([raw(v) for v in world.valid[1:]], world.ctx)
            fault.touch()
            staging = asyncio.ensure_future(lander.stage_ahead(prepared, 0))
            await asyncio.wait([staging])
            assert isinstance(staging.exception(), Exception)
            fault.unlink()
            return await lander.land(prepared, 0, staging)
        finally:
            await lander.stop()

    result = asyncio.run(scenario())
    assert result.outcomes == Counter({("accepted", ""): len(world.valid) - 1})


def test_the_reference_data_is_in_the_store_once_the_lander_is_open(tmp_path: Path) -> None:
    """Copied at the first batch instead, a national school list held that batch while the
    messages behind it queued: the copy belongs to starting up, before `/ready`."""
    world = World(tmp_path / "world")

    async def scenario() -> list[dict[str, Any]]:
        lander = _lander(world, tmp_path / "state")
        try:
            await lander.open()
            return await lander.read("SELECT count() AS n FROM hocba.schools", {})
        finally:
            await lander.stop()

    assert asyncio.run(scenario()) == [{"n": len(world.scenario.reference.schools)}]


def test_a_reference_copy_that_fails_at_start_is_left_to_the_first_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file replaced while it was listed (a ConfigMap swap) must not stop the start."""
    listing = FailsOnce(lander_module.dir_fingerprint, FileNotFoundError("schools.csv"))
    monkeypatch.setattr(lander_module, "dir_fingerprint", listing)
    world = World(tmp_path / "world")

    async def scenario() -> Any:
        lander = _lander(world, tmp_path / "state")
        try:
            await lander.open()
            return await lander.land(_batch(world, world.scenario.records[0]), 0)
        finally:
            await lander.stop()

    assert asyncio.run(scenario()).counts["records_landed"] == 1
    assert listing.failed


def test_a_reference_copy_the_store_refused_is_made_at_the_next_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It was counted as done: the store kept the old tables until the files changed again.
    The retry copies what was read, without reading a national school list again."""
    reads: list[Path] = []

    def counted(directory: Path) -> Any:
        reads.append(directory)
        return load_reference_dir(directory)

    monkeypatch.setattr(lander_module, "load_reference_dir", counted)
    world = World(tmp_path / "world")
    records = world.scenario.records

    async def scenario() -> Any:
        lander, reference_dir, fault = await _landed_on_unknown_schools(world, tmp_path)
        try:
            write_reference_dir(reference_dir, world.scenario.reference)
            fault.touch()
            with contextlib.suppress(Exception):  # the copy fails, as does the staging
                await lander.stage_ahead(_batch(world, records[1]), 0)
            fault.unlink()
            return await lander.land(_batch(world, records[2]), 0)
        finally:
            await lander.stop()

    assert asyncio.run(scenario()).counts["records_landed"] == 1
    assert len(reads) == 2  # the first copy, then the changed files once


def test_a_batch_that_waits_out_an_outage_lands_with_the_reference_changed_meanwhile(
    tmp_path: Path,
) -> None:
    """The copy was tried once before the outage's retries: the batch then landed against
    the old tables (here: every school unknown) once the store was back."""
    world = World(tmp_path / "world")
    records = world.scenario.records

    async def scenario() -> Any:
        lander, reference_dir, fault = await _landed_on_unknown_schools(world, tmp_path)
        try:
            fault.touch()
            write_reference_dir(reference_dir, world.scenario.reference)
            landing = asyncio.ensure_future(lander.land(_batch(world, records[1]), 0))
            for _ in range(1200):  # its first try fails: an outage (a guard against a hang)
                if lander.backpressure.active:
                    break
                await asyncio.sleep(0.05)
            assert lander.backpressure.active
            fault.unlink()
            return await landing
        finally:
            await lander.stop()

    assert asyncio.run(scenario()).counts["records_landed"] == 1


def test_batches_staged_side_by_side_both_see_a_reference_change(tmp_path: Path) -> None:
    """The first batch after a change copies the reference data into the store; the batch
    staged beside it must wait for that copy, not stage against the old tables."""
    world = World(tmp_path / "world")
    reference_dir = _schools_unknown(world, tmp_path)
    records = world.scenario.records

    async def scenario() -> list[Any]:
        lander = _lander(world, tmp_path / "state", reference_dir=reference_dir)
        try:
            for slot in (0, 1):  # both stores open, the old tables copied in
                warm = _batch(world, records[slot])
                await lander.land(warm, slot, lander.stage_ahead(warm, slot))
            write_reference_dir(reference_dir, world.scenario.reference)
            one, two = _batch(world, records[2], records[3]), _batch(world, records[4], records[5])
            staged = [
                asyncio.ensure_future(lander.stage_ahead(b, s)) for s, b in enumerate([one, two])
            ]
            return [await lander.land(b, s, staged[s]) for s, b in enumerate([one, two])]
        finally:
            await lander.stop()

    landed = asyncio.run(scenario())
    assert [r.counts["records_landed"] for r in landed] == [2, 2]


Insert = Callable[[str, Any], None]


def land_with_a_faulty_store(
    tmp_path: Path, faulty: Callable[[Insert], Insert], sql: str
) -> tuple[Any, list[dict[str, Any]], World]:
    """Land the world's valid messages through a store whose inserts `faulty` wraps, then
    read `sql`: a real chDB store, with one fault injected where a connection would fail."""
    world = World(tmp_path / "world")
    prepared = process_batch([raw(v) for v in world.valid], world.ctx)

    async def scenario() -> tuple[Any, list[dict[str, Any]]]:
        lander = _lander(world, tmp_path / "state")
        try:
            await lander.open()
            store = lander.stores[0]
            store.insert_rows = faulty(store.insert_rows)  # type: ignore[method-assign]
            result = await lander.land(prepared)
            return result, await lander.read(sql, {})
        finally:
            await lander.stop()

    return (*asyncio.run(scenario()), world)


def test_an_audit_insert_that_failed_is_retried_without_deciding_again(tmp_path: Path) -> None:
    """The records landed, then writing the audit failed. Retrying the whole landing would
    find the batch's own records landed and audit them as duplicates."""
    outage = [ConnectionError("the connection dropped")]

    def fail_once(insert: Insert) -> Insert:
        def insert_after_one_outage(table_name: str, rows: Any) -> None:
            if table_name == "submissions" and outage:
                raise outage.pop()
            insert(table_name, rows)

        return insert_after_one_outage

    sql = "SELECT outcome, sum(records_landed) AS landed FROM hocba.submissions GROUP BY outcome"
    result, audit, _ = land_with_a_faulty_store(tmp_path, fail_once, sql)
    assert not outage  # the insert did fail once
    landed = result.counts["records_landed"]
    assert landed > 0
    assert audit == [{"outcome": "accepted", "landed": landed}]


def test_an_audit_insert_whose_reply_was_lost_is_not_written_twice(tmp_path: Path) -> None:
    """The insert committed, then the connection dropped: the retry sends the same rows."""
    lost = [ConnectionError("the reply was lost")]

    def lose_one_reply(insert: Insert) -> Insert:
        def insert_then_lose_the_reply(table_name: str, rows: Any) -> None:
            insert(table_name, rows)
            if table_name == "submissions" and lost:
                raise lost.pop()

        return insert_then_lose_the_reply

    sql = "SELECT count() AS n FROM hocba.submissions"
    _, rows, world = land_with_a_faulty_store(tmp_path, lose_one_reply, sql)
    assert not lost  # the reply was lost once
    assert rows == [{"n": len(world.valid)}]


def test_dead_letters_whose_send_failed_are_sent_again_without_deciding_again(
    tmp_path: Path,
) -> None:
    """The DLQ's broker did not answer: the batch waits (back-pressure, so the worker acks
    nothing) and the letters are sent again; landing is not retried, which would find the
    batch audited and its messages decided on already."""
    world = World(tmp_path / "world")
    sql = "SELECT outcome, count() AS n FROM hocba.submissions GROUP BY outcome"

    async def scenario() -> tuple[Any, Letters, list[dict[str, Any]]]:
        lander = _lander(world, tmp_path / "state", reference_dir=_schools_unknown(world, tmp_path))
        letters = lander.producer
        out = FailsOnce(letters.send_and_wait, KafkaConnectionError("the DLQ's broker is out"))
        letters.send_and_wait = out
        try:
            landing = asyncio.ensure_future(lander.land(_batch(world, world.scenario.records[0])))
            for _ in range(1200):  # a guard against a hang, not a time
                if lander.backpressure.active or landing.done():
                    break
                await asyncio.sleep(0.01)
            assert out.failed and lander.backpressure.active and not landing.done()
            result = await landing
            return result, letters, await lander.read(sql, {})
        finally:
            await lander.stop()

    result, letters, audit = asyncio.run(scenario())
    codes = [dict(d.headers)["hocba.error.code"] for d in result.dead_letters]
    assert codes == [b"enrich.unknown_school"]
    assert len(letters.sent) == 1  # sent once it could be
    assert audit == [{"outcome": "dead_lettered", "n": 1}]
