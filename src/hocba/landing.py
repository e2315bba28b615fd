"""Land one prepared batch: stage its records in ClickHouse, decide, insert the records.

Runs on the lander's threads, never on Faust's event loop: staging on one, landing on the
other, batch after batch (`Lander`). ClickHouse parses, validates and enriches every record
of the batch into a staging table (`record_sql`) and sums it up per message. A message whose
records all pass and whose keys are new lands whole, decided on its summary alone; only the
others' records are read back, and Python decides on them: which messages are dead
letters, which records failed a rule (their detail written by `validate.py`), which are
new, duplicates or corrections (`dedupe`). Then one insert of the records to land. The
audit rows and dead letters are returned for the lander to write and send. Landing raises
only when the store fails, and the lander then retries it whole until the records are in
(every step is idempotent: staging is replaced, the records insert carries a deterministic
token, the dedupe lookup sees what an earlier try landed), then each audit insert alone.
"""

from __future__ import annotations

import logging
import os
from collections import Counter, defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hocba.domain.columns import DEAD_LETTER_COLUMNS, SUBMISSION_COLUMNS, RecordKey
from hocba.domain.messages import RecordError, Rejection, Submission
from hocba.domain.reasons import Reason
from hocba.pipeline.audit import (
    dead_letter_row,
    redelivered_submission_row,
    rejected_submission_row,
    submission_row,
)
from hocba.pipeline.codec import SchemaRegistry, default_schema_dir, load_registry
from hocba.pipeline.deadletter import DeadLetter, to_dead_letter
from hocba.pipeline.decode import decode_payload, first_block_count
from hocba.pipeline.dedupe import Classified, classify, record_key
from hocba.pipeline.process import Accepted, Prepared
from hocba.pipeline.record_sql import (
    batch_schema_json,
    batch_structure,
    containers,
    hmac_pads,
    position,
)
from hocba.pipeline.rows import arrow_table, batch_token, dedup_token
from hocba.pipeline.validate import validate_record
from hocba.store.base import Store

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger("hocba.landing")
MAX_STAGE_PARTS = 4  # ClickHouse threads staging one batch; measured on two cores only


@dataclass(frozen=True, slots=True)
class RecordStage:
    """What staging a batch needs besides the batch: built once per lander."""

    registry: SchemaRegistry
    schema_json: str
    structure: str
    pseudonym_pads: Mapping[str, str]
    keep_identity: bool
    max_records: int
    parts: int = 1  # containers per batch, read in parallel

    @classmethod
    def build(cls, pseudonym_key: bytes, keep_identity: bool, max_records: int) -> RecordStage:
        registry = load_registry()
        newest = default_schema_dir() / registry.versions[-1].version
        schema_json = batch_schema_json(newest)
        return cls(
            registry,
            schema_json,
            batch_structure(schema_json),
            hmac_pads(pseudonym_key),
            keep_identity,
            max_records,
            min(MAX_STAGE_PARTS, os.cpu_count() or 1),
        )

    def stage(
        self,
        store: Store,
        payloads: Sequence[bytes],
        senders: Sequence[str],
        parts: int | None = None,
    ) -> None:
        """Replace the store's staged batch with these payloads, each with its sender."""
        parameters = {
            **self.pseudonym_pads,
            "keep_identity": self.keep_identity,
            "senders": list(senders),
        }
        batch = containers(self.schema_json, payloads, parts or self.parts)
        store.stage_batch(batch, self.structure, parameters)


@dataclass(frozen=True, slots=True)
class Checked:
    """A message after staging: the records to consider landing (`rows`; None when all of
    them land, decided on the summary), and those that failed."""

    item: Accepted
    m: int  # position in the staged batch
    summary: Mapping[str, Any]  # its row of `record_sql.summary_sql`
    rows: tuple[dict[str, Any], ...] | None
    record_errors: tuple[RecordError, ...] = ()

    @property
    def records_total(self) -> int:
        return int(self.summary["records"])

    def decide(self, landed: dict[RecordKey, tuple[int, str]]) -> tuple[Classified, str]:
        """What lands of this message, and its dedup token; `landed` learns what it lands."""
        if self.rows is None:
            every = Classified((), self.records_total, 0, 0, 0)
            return every, self.summary["token"]
        result = classify(self.rows, landed)
        for row in result.to_land:
            landed[record_key(row)] = (row["revision"], row["content_hash"])
        return result, dedup_token(result.to_land)


@dataclass(frozen=True, slots=True)
class LandResult:
    dead_letters: tuple[DeadLetter, ...] = ()
    rejected: tuple[Rejection, ...] = ()  # what the dead letters were made from
    complete: frozenset[str] = frozenset()  # submissions whose every record is landed
    counts: Mapping[str, int] = field(default_factory=dict)
    outcomes: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (outcome, reason)
    audit: Mapping[str, pa.Table] = field(default_factory=dict)  # table -> rows to insert


def _reject(
    item: Accepted, code: Reason, detail: str, errors: Sequence[RecordError] = ()
) -> Rejection:
    sub = item.submission
    return Rejection(item.message, code, detail, tuple(errors), sub.submission_id, sub.sender_code)


def _partial_rejection(checked: Checked, errors: Sequence[RecordError]) -> Rejection:
    """The one dead letter of a message that landed only some of its records (DESIGN §4)."""
    first = errors[0]
    detail = (
        f"{len(errors)} of {checked.records_total} records failed; "
        f"first: record {first.index}: {first.detail}"
    )
    return _reject(checked.item, first.code, detail, errors)


def _record_errors(checked: Checked, result: Classified) -> tuple[RecordError, ...]:
    """The message's failed records, rule failures and revision conflicts, in record order."""
    if not result.conflicts:  # nearly every message: its rule failures are in order already
        return checked.record_errors
    conflicts = (
        RecordError(
            row["idx"],
            Reason.DEDUPE_REVISION_CONFLICT,
            f"revision {row['revision']} of this record is already landed (or earlier in "
            "this message) with other content: a changed record needs a higher revision",
        )
        for row in result.conflicts
    )
    return tuple(sorted((*checked.record_errors, *conflicts), key=lambda e: e.index))


def landing_parameters(
    submissions: Sequence[Submission],
    coordinates: Sequence[tuple[int, int]],
    positions: Sequence[int] | None = None,
) -> dict[str, Any]:
    """The landing columns of each staged message, by its position in the batch, with its
    Kafka (partition, offset); `positions` (`record_sql.position`) when only those land."""
    return {
        **({"positions": list(positions)} if positions is not None else {}),
        "submission_ids": [s.submission_id for s in submissions],
        "senders": [s.sender_code for s in submissions],
        "vendors": [s.vendor for s in submissions],
        "sent_at_ms": [s.sent_at_ms for s in submissions],
        "partitions": [partition for partition, _ in coordinates],
        "offsets": [offset for _, offset in coordinates],
    }


def _positions(landing: Sequence[tuple[Checked, Classified]]) -> list[int]:
    """The staged positions of the records that land: a message decided on its summary
    lands all of its records, the others those `classify` chose."""
    found = []
    for message, result in landing:
        if message.rows is None:
            found += [position(message.m, idx) for idx in range(message.records_total)]
        else:
            found += [position(row["m"], row["idx"]) for row in result.to_land]
    return found


def _stage_batch(store: Store, stage: RecordStage, items: Sequence[Accepted]) -> None:
    subs = [i.submission for i in items]
    stage.stage(store, [s.payload for s in subs], [s.sender_code for s in subs])


def _unreadable(
    store: Store, stage: RecordStage, items: Sequence[Accepted], error: Exception
) -> list[Rejection]:
    """ClickHouse refused the batch: the messages whose payloads are at fault, each with the
    reason Python's decoder gives (or ClickHouse's own, where only it refuses one); none if
    the store itself failed, which the caller then retries."""
    found: list[Rejection] = []
    for item in items:
        records = decode_payload(item.message, item.submission, stage.registry, stage.max_records)
        if isinstance(records, Rejection):
            found.append(records)
    if found:
        return found
    store.query("SELECT 1")  # raises while the store is out: the batch is retried, not blamed
    for item in items:
        try:
            _stage_batch(store, stage, [item])
        except Exception as alone:  # this message alone is refused: its payload is at fault,
            store.query("SELECT 1")  # unless the store went out meanwhile (then: retried)
            detail = f"payload: ClickHouse could not read it: {alone}"
            found.append(_reject(item, Reason.DECODE_MALFORMED, detail[:2000]))
    if not found:
        raise error
    return found


def _staged(
    store: Store, stage: RecordStage, items: Sequence[Accepted]
) -> tuple[list[Accepted], list[Rejection]]:
    """Stage the batch: the messages staged, and those rejected as unreadable.

    One unreadable payload fails the whole container, so then the culprits are found and
    the rest is staged again (each round blames at least one message, or raises).
    """
    try:
        _stage_batch(store, stage, items)
    except Exception as exc:
        rejected = _unreadable(store, stage, items, exc)
        blamed = {id(r.message) for r in rejected}
        readable = [i for i in items if id(i.message) not in blamed]
        if not readable:
            return [], rejected
        staged_items, more = _staged(store, stage, readable)
        return staged_items, rejected + more
    return list(items), []


_CONTESTED_FIGURES = ("failed", "outside", "contested")


def _contested(summaries: Mapping[int, Mapping[str, Any]]) -> list[int]:
    """The messages landing must read record by record: some failed, are outside the
    sender's province, or have a key already landed or staged twice."""
    return [m for m, summary in summaries.items() if any(summary[n] for n in _CONTESTED_FIGURES)]


def _details(
    item: Accepted, failed: Sequence[Mapping[str, Any]], stage: RecordStage
) -> list[RecordError]:
    """Reason codes come from ClickHouse; the human-readable detail from `validate.py`,
    reading the (rare) message with failed records once more in Python."""
    records = decode_payload(item.message, item.submission, stage.registry, stage.max_records)
    errors = []
    for row in failed:
        code, index = Reason(row["code"]), row["idx"]
        if code is Reason.ENRICH_UNKNOWN_SCHOOL:
            detail = f"school {row['school_code']!r} is not in the reference data"
        else:
            python = (
                None if isinstance(records, Rejection) else validate_record(records[index], index)
            )
            if python is not None and python.code is code:
                detail = python.detail
            else:  # the two statements of the rules disagree: keep ClickHouse's, say so
                log.warning("rule %s failed in ClickHouse only (record %d)", code, index)
                detail = f"failed {code} (checked by ClickHouse)"
        errors.append(RecordError(index, code, detail))
    return errors


def _check(
    item: Accepted,
    m: int,
    summary: Mapping[str, Any] | None,
    rows: Sequence[dict[str, Any]] | None,
    stage: RecordStage,
) -> Checked | Rejection:
    """Per message, in the order of DESIGN §1's stages: decode, authorise, validate.
    `rows` are its staged records if they were read (`_contested`)."""
    if summary is None:  # no record staged
        return _reject(item, Reason.DECODE_EMPTY_BATCH, "the batch holds no record")
    if summary["records"] > stage.max_records:
        detail = f"{summary['records']} records > limit {stage.max_records}"
        return _reject(item, Reason.DECODE_TOO_LARGE, detail)
    if rows is None:
        return Checked(item, m, summary, None)
    if any(r["code"] == Reason.DECODE_MALFORMED for r in rows):  # not UTF-8, say where
        decoded = decode_payload(item.message, item.submission, stage.registry, stage.max_records)
        if isinstance(decoded, Rejection):
            return decoded
        return _reject(item, Reason.DECODE_MALFORMED, "payload: a string is not valid UTF-8")
    outside = next((r for r in rows if not r["authorised"]), None)
    if outside is not None:
        detail = (
            f"record {outside['idx']}: school {outside['school_code']} is outside the "
            f"sender's province {outside['department_province']}"
        )
        return _reject(item, Reason.VERIFY_SIGNER_NOT_AUTHORIZED, detail)
    failed = [r for r in rows if r["code"]]
    good = tuple(r for r in rows if not r["code"])
    errors = _details(item, failed, stage) if failed else []
    if errors and not good:
        first = errors[0]
        detail = f"all {len(errors)} records failed; first: {first.detail}"
        return _reject(item, first.code, detail, errors)
    return Checked(item, m, summary, good, tuple(errors))


@dataclass(frozen=True, slots=True)
class StagedBatch:
    """A batch in the store's staging table, waiting to land (`stage_prepared`)."""

    prepared: Prepared
    staged: list[Accepted]  # in staging order: a message's position is its `m`
    unreadable: list[Rejection]
    repeats: list[Accepted]  # landed completely before: not staged


def stage_prepared(
    store: Store, prepared: Prepared, stage: RecordStage, redelivered: Collection[str] = ()
) -> StagedBatch:
    """Stage a batch. Nothing here depends on what is landed, so the next batch may be staged
    (in a store of its own) while this one lands.

    Submissions in `redelivered` were landed completely before (DESIGN §5, layer 1): they
    are audited as duplicates without staging, an insert or a dead letter.
    """
    fresh = [a for a in prepared.accepted if a.submission.submission_id not in redelivered]
    repeats = [a for a in prepared.accepted if a.submission.submission_id in redelivered]
    staged_items, unreadable = _staged(store, stage, fresh) if fresh else ([], [])
    return StagedBatch(prepared, staged_items, unreadable, repeats)


def land_prepared(
    store: Store,
    prepared: Prepared,
    stage: RecordStage,
    worker: str,
    redelivered: Collection[str] = (),
) -> LandResult:
    """Stage the batch, then land it (`land_staged_batch`)."""
    return land_staged_batch(
        store, stage_prepared(store, prepared, stage, redelivered), stage, worker
    )


def land_staged_batch(
    store: Store, batch: StagedBatch, stage: RecordStage, worker: str
) -> LandResult:
    """Classify every staged record that passed against what is landed, then insert; the
    audit rows are returned, not written, so that a failure writing them cannot make a
    retry decide again (it would find its own records landed, and audit them as duplicates).

    What is landed under each staged key (layer 2) is looked up in ClickHouse: in the
    summary for every message, and with the records of those read back (`_contested`).
    Batches must land in order, each after the one before it, for that lookup to see them.
    """
    now = datetime.now(UTC)
    prepared, staged_items, repeats = batch.prepared, batch.staged, batch.repeats
    summaries = {row["m"]: row for row in store.staged_summary()} if staged_items else {}
    contested = _contested(summaries)
    by_message: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for staged_row in store.staged(contested) if contested else ():
        by_message[staged_row["m"]].append(staged_row)
    checked: list[Checked] = []
    rejections = list(prepared.rejected) + batch.unreadable
    for m, item in enumerate(staged_items):
        verdict = _check(item, m, summaries.get(m), by_message.get(m), stage)
        (rejections if isinstance(verdict, Rejection) else checked).append(verdict)  # type: ignore[arg-type]
    landed = {
        record_key(r): (r["landed_revision"], r["landed_hash"])
        for rows in by_message.values()
        for r in rows
        if r["landed_revision"]
    }
    audits = [rejected_submission_row(r, prepared.received_at) for r in rejections]
    repeated_records = [first_block_count(stage.registry, a.submission.payload) for a in repeats]
    audits += [
        redelivered_submission_row(a, prepared.received_at, n)
        for a, n in zip(repeats, repeated_records, strict=True)
    ]
    outcomes = Counter(("dead_lettered", str(r.code)) for r in rejections)
    outcomes[("duplicate", "")] += len(repeats)
    counts = Counter(
        messages=len(prepared.accepted) + len(prepared.rejected),
        records_duplicate=sum(repeated_records),
        dead_lettered=len(rejections),
    )
    landing: list[tuple[Checked, Classified]] = []
    tokens = []
    complete = []
    for message in checked:
        result, token = message.decide(landed)
        lands = result.new + result.corrections
        if lands:
            landing.append((message, result))
            tokens.append(token)
        errors = _record_errors(message, result)
        if errors:
            rejections.append(_partial_rejection(message, errors))
        else:
            complete.append(message.item.submission.submission_id)
        # A message that lands nothing and fails records is dead-lettered, as `_check` makes
        # one whose every record failed a rule: "partial" means some records landed.
        outcome = (
            ("partial" if lands else "dead_lettered")
            if errors
            else ("accepted" if lands else "duplicate")
        )
        counts["dead_lettered"] += outcome == "dead_lettered"
        reason = str(errors[0].code) if errors else ""
        outcomes[(outcome, reason)] += 1
        figures = {
            "records_landed": lands,
            "records_duplicate": result.duplicates,
            "records_stale": result.stale,
            "records_failed": len(errors),
        }
        audits.append(
            submission_row(
                message.item,
                prepared.received_at,
                outcome=outcome,
                reason=reason,
                records_total=message.records_total,
                **figures,
            )
        )
        counts.update(figures)
    if landing:
        staged = sum(int(summary["records"]) for summary in summaries.values())
        every = counts["records_landed"] == staged  # else a positions filter, at a cost
        parameters = landing_parameters(
            [i.submission for i in staged_items],
            [(i.message.partition, i.message.offset) for i in staged_items],
            None if every else _positions(landing),
        )
        store.land_staged(parameters, batch_token(tokens))
    audit = {"submissions": arrow_table(SUBMISSION_COLUMNS, audits)}
    if rejections:
        rows = [dead_letter_row(r, worker, now) for r in rejections]
        audit["dead_letters"] = arrow_table(DEAD_LETTER_COLUMNS, rows)
    letters = tuple(to_dead_letter(r, worker, now) for r in rejections)
    return LandResult(letters, tuple(rejections), frozenset(complete), counts, outcomes, audit)
