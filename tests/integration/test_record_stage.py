"""The record stage in ClickHouse (`record_sql`): every rule, every enriched column.

The reason codes are held to `validate.py`'s on every case of its rule tests and on
generated and corrupted records; the enriched columns to the values the former Python
enrichment produced. All through the real engine (chDB) and the store's own methods.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from hocba.domain.columns import ENRICHED_COLUMNS
from hocba.domain.messages import RawMessage
from hocba.domain.reasons import Reason
from hocba.landing import RecordStage, stage_prepared
from hocba.pipeline.codec import RECORD_BATCH, decode, load_registry
from hocba.pipeline.process import process_batch
from hocba.pipeline.record_sql import STAGING_TABLE
from hocba.pipeline.rows import dedup_token
from hocba.pipeline.validate import validate_record
from hocba.publishing import encode_payload
from hocba.reference.loader import default_departments, load_reference_dir
from hocba.reference.model import ReferenceData, School
from hocba.reference.tables import mirror_reference
from hocba.store.chdb_store import ChdbStore
from hocba.synth import CORRUPTION_KINDS, corrupt_record, generate_records
from tests.fuzz.test_fuzz_stages import LANDING, World, land_and_audit, raw
from tests.unit.test_validate import _SCHOOLS, BASES, CASES

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

KEY = b"test-pseudonym-key"
TAN_AN = School("TH-72-001", "Trường TH Tân An", ("PRIMARY",), "public", "80", "80")
Record = dict[str, Any]


class Stager:
    """Stages batches with the lander's own `RecordStage` into one chDB store."""

    def __init__(self, store: ChdbStore, reference: ReferenceData) -> None:
        self.store = store
        self.registry = load_registry()
        mirror_reference(store, reference)

    def stage(
        self,
        messages: Sequence[Sequence[Record]],
        sender: str = "SGD-2024-80",
        key: bytes = KEY,
        keep_identity: bool = False,
    ) -> list[dict[str, Any]]:
        stage = RecordStage.build(key, keep_identity, 5_000)
        payloads = [encode_payload(self.registry, records) for records in messages]
        stage.stage(self.store, payloads, [sender] * len(payloads), parts=3)  # three threads
        return self.store.query(f"SELECT * FROM test.`{STAGING_TABLE}` ORDER BY m, idx")

    def row(self, record: Record, **options: Any) -> dict[str, Any]:
        (row,) = self.stage([[record]], **options)
        return row


def _reference(*schools: School) -> ReferenceData:
    departments = default_departments(2024) + default_departments(2025)
    return replace(
        load_reference_dir(None),
        schools={s.code: s for s in schools},
        departments={d.code: d for d in departments},
    )


@pytest.fixture(scope="module")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory for the module: chDB opens one per process at a time."""
    return tmp_path_factory.mktemp("stage") / "chdb"


@pytest.fixture(scope="module")
def stager(chdb_dir: Path) -> Iterator[Stager]:
    store = ChdbStore(chdb_dir, "test")
    store.ensure_schema()
    try:
        yield Stager(store, _reference(TAN_AN, *_SCHOOLS))
    finally:
        store.close()


def _record(**changes: Any) -> Record:
    return {
        "personal_id": "080215001234",
        "student_code": "HS-0001",
        "full_name": "Nguyễn Thị Lan",
        "birth_date": date(2015, 9, 5),
        "gender": "FEMALE",
        "ethnicity_code": "01",
        "school_code": TAN_AN.code,
        "school_year": "2023-2024",
        "grade": 3,
        "class_name": "3A",
        "level": "PRIMARY",
        "revision": 2,
        "subjects": [
            {"subject_code": "TIENG_VIET", "score": 9.0, "assessment": "HOAN_THANH_TOT"},
            {"subject_code": "DAO_DUC", "score": None, "assessment": "HOAN_THANH"},
            {"subject_code": "TOAN", "score": 10.0, "assessment": None, "comment": "Giỏi"},
        ],
        "learning_result": "HOAN_THANH_TOT",
        "promotion": "PROMOTED",
        "completed_grade_programme": True,
        "days_absent": 3,
    } | changes


def _encodable(mutate: Callable[[Record], Record], base: str) -> Record | None:
    """A rule case as it arrives: what Avro carries of it, read back as the old pipeline
    read it (a grade as text cannot be sent at all; a grade `True` arrives as 1)."""
    registry = load_registry()
    try:
        payload = encode_payload(registry, [mutate(BASES[base])])
    except (TypeError, ValueError, AttributeError):
        return None
    record: Record = decode(registry, RECORD_BATCH, payload)["records"][0]
    return record


ENCODABLE = [(name, rec) for name, base, mutate, _ in CASES if (rec := _encodable(mutate, base))]


def test_every_rule_case_gets_the_same_reason_code_as_validate_py(stager: Stager) -> None:
    assert len(ENCODABLE) > 80  # nearly every case of the rule tests can be sent
    sender = "SGD-2024-01"
    staged = stager.stage([[record] for _, record in ENCODABLE], sender=sender)
    got = {name: row["code"] for (name, _), row in zip(ENCODABLE, staged, strict=True)}
    expected = {}
    for name, record in ENCODABLE:
        error = validate_record(record, 0)
        expected[name] = str(error.code) if error else ""
    assert got == expected


def test_generated_records_pass_and_each_corruption_fails_its_own_rule(stager: Stager) -> None:
    records = generate_records(_SCHOOLS, count=400, seed=11)
    assert {r["code"] for r in stager.stage([records])} == {""}
    corrupted = [corrupt_record(r, kind) for r in records[:60] for kind in CORRUPTION_KINDS]
    codes = [r["code"] for r in stager.stage([corrupted])]
    assert codes == [str(validate_record(r, 0).code) for r in corrupted]  # type: ignore[union-attr]


def test_rows_are_numbered_by_message_and_position(stager: Stager) -> None:
    staged = stager.stage([[_record()], [_record(), _record(revision=3)]])
    assert [(r["m"], r["idx"]) for r in staged] == [(0, 0), (1, 0), (1, 1)]


def test_values_come_from_record_school_and_provinces(stager: Stager) -> None:
    row = stager.row(_record())
    assert row["level_code"] == "02"
    assert (row["school_name"], row["school_type"]) == ("Trường TH Tân An", "public")
    assert (row["province_code_2024"], row["province_name_2024"]) == ("80", "Long An")
    assert (row["province_code_2025"], row["province_name_2025"]) == ("80", "Tây Ninh")
    assert row["birth_province_code_2024"] == "80"
    assert (row["learning_result"], row["conduct_result"], row["promotion"]) == (
        "HOAN_THANH_TOT",
        "",
        "PROMOTED",
    )
    assert (row["revision"], row["days_absent"], row["completed_primary"]) == (2, 3, False)
    assert row["subject_codes"] == ["TIENG_VIET", "DAO_DUC", "TOAN"]
    assert row["subject_scores"] == [9.0, None, 10.0]
    assert row["subject_assessments"] == ["HOAN_THANH_TOT", "HOAN_THANH", ""]
    assert set(row) >= {name for name, _ in ENRICHED_COLUMNS}


@pytest.mark.parametrize(
    ("birth_date", "grade", "age", "on_time"),
    [
        (date(2015, 9, 5), 3, 8, True),  # birthday on opening day counts
        (date(2015, 9, 6), 3, 7, True),  # turns 8 later in the calendar year
        (date(2015, 1, 1), 2, 8, False),  # a year behind
        (date(2016, 12, 31), 3, 6, False),  # a year ahead
    ],
)
def test_age_at_school_year_start_and_on_time_grade(
    stager: Stager, birth_date: date, grade: int, age: int, on_time: bool
) -> None:
    row = stager.row(_record(birth_date=birth_date, grade=grade))
    assert (row["birth_year"], row["age_at_year_start"]) == (birth_date.year, age)
    assert row["on_time_grade"] is on_time


@pytest.mark.parametrize("key", [KEY, b"k" * 64, b"a longer key than the block " * 3])
def test_pseudonym_is_the_keyed_hmac_and_identity_is_dropped(stager: Stager, key: bytes) -> None:
    row = stager.row(_record(), key=key)
    expected = hmac.new(key, b"080215001234", hashlib.sha256).hexdigest()
    assert row["student_key"] == expected
    assert (row["personal_id"], row["full_name"]) == (None, None)
    assert stager.row(_record(), key=b"other")["student_key"] != expected


def test_identity_is_kept_only_on_request(stager: Stager) -> None:
    row = stager.row(_record(), keep_identity=True)
    assert (row["personal_id"], row["full_name"]) == ("080215001234", "Nguyễn Thị Lan")


def test_unknown_school_is_flagged_after_the_rules(stager: Stager) -> None:
    valid = BASES["g4"]
    assert stager.row(valid)["code"] == ""
    assert stager.row({**valid, "school_code": "NOPE"})["code"] == Reason.ENRICH_UNKNOWN_SCHOOL
    broken = stager.row({**valid, "school_code": "NOPE", "revision": 0})
    assert broken["code"] == Reason.VALIDATE_REVISION


def test_content_hash_covers_every_field(stager: Stager) -> None:
    record = _record()
    changed = _record(subjects=[{**s, "comment": "Giỏi lắm"} for s in record["subjects"]])
    hashes = [r["content_hash"] for r in stager.stage([[record, record, changed]])]
    hashes.append(stager.row(_record(birth_date=date(2015, 9, 6)))["content_hash"])
    assert hashes[0] == hashes[1] and len(set(hashes)) == 3


@pytest.mark.parametrize(
    ("sender", "authorised"),
    [("SGD-2024-72", True), ("SGD-2025-80", True), ("SGD-2024-80", False)],
)
def test_department_may_send_only_for_schools_of_its_province_in_its_edition(
    stager: Stager, sender: str, authorised: bool
) -> None:
    """The school lies in former Tây Ninh (72), now part of Tây Ninh (80)."""
    school = replace(TAN_AN, code="TH-72-002", province_code_2024="72")
    mirror_reference(stager.store, _reference(school))
    try:
        row = stager.row(_record(school_code=school.code), sender=sender)
    finally:
        mirror_reference(stager.store, _reference(TAN_AN, *_SCHOOLS))
    assert row["authorised"] is authorised


@pytest.mark.parametrize("timestamp_ms", [2**62, -(2**62)], ids=["far-future", "far-past"])
def test_a_wild_kafka_timestamp_does_not_stop_landing(
    stager: Stager, tmp_path: Path, timestamp_ms: int
) -> None:
    """A producer may stamp any 64-bit number; the audit row takes the receipt time then,
    instead of failing the insert (which would be retried for ever)."""
    message = replace(raw(b"not avro"), timestamp_ms=timestamp_ms)
    context = World(tmp_path / "world").ctx
    result = land_and_audit(stager.store, process_batch([message], context), "test")
    assert [r.code for r in result.rejected] == [Reason.DECODE_NOT_AVRO]
    [row] = stager.store.query(
        "SELECT sent_at, received_at FROM test.submissions WHERE kafka_offset = 0"
        " AND reason = 'decode.not_avro' ORDER BY received_at DESC LIMIT 1"
    )
    assert row["sent_at"] == row["received_at"]


def test_unreadable_payloads_are_blamed_alone_and_their_neighbours_land(
    stager: Stager, tmp_path: Path
) -> None:
    """A short payload fails the whole container in ClickHouse; landing finds each culprit
    and stages the rest again, so only the culprits become dead letters."""
    world = World(tmp_path / "world")
    payload = world.submission.payload
    short = raw(world.envelope(payload[: len(payload) // 2]))
    overcounted = raw(world.envelope(payload[:10] + bytes([payload[10] + 2]) + payload[11:]))
    good = [raw(v) for v in world.valid[1:3]]
    batch = [good[0], short, overcounted, good[1]]
    mirror_reference(stager.store, world.ctx.reference)
    try:
        result = land_and_audit(stager.store, process_batch(batch, world.ctx), "test")
    finally:
        mirror_reference(stager.store, _reference(TAN_AN, *_SCHOOLS))
    assert [(r.message, r.code) for r in result.rejected] == [
        (short, Reason.DECODE_MALFORMED),
        (overcounted, Reason.DECODE_MALFORMED),
    ]
    assert result.outcomes[("accepted", "")] == 2


def test_each_message_is_summed_up_with_the_dedup_token_of_its_records(stager: Stager) -> None:
    records = generate_records(_SCHOOLS, count=31, seed=5)
    failing = corrupt_record(records.pop(), CORRUPTION_KINDS[0])  # under a key of its own
    stager.stage([records[:10], [records[10], records[10]], [failing, *records[11:]]])
    rows = stager.store.staged()
    summary = stager.store.staged_summary()
    figures = [(s["m"], s["records"], s["failed"], s["contested"]) for s in summary]
    assert figures == [(0, 10, 0, 0), (1, 2, 0, 2), (2, 20, 1, 0)]
    tokens = [dedup_token([r for r in rows if r["m"] == m]) for m in range(3)]
    assert [s["token"] for s in summary] == tokens
    assert stager.store.staged([1]) == [r for r in rows if r["m"] == 1]


def test_only_contested_messages_are_read_and_each_record_is_decided_once(
    stager: Stager, chdb_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Landed keys and keys staged twice send a message down the record-by-record path;
    the rest land whole on their summary, and together they count as `classify` says."""
    world = World(tmp_path / "world")
    first, second, third, fourth, fifth = world.scenario.records[:5]

    def message(*batch: Record) -> RawMessage:
        return raw(world.envelope(encode_payload(world.registry, list(batch))))

    store = ChdbStore(chdb_dir, "contested")  # beside the stager's: a database of its own
    store.ensure_schema()
    mirror_reference(store, world.ctx.reference)
    read: list[Sequence[int] | None] = []
    store_staged = store.staged

    def staged(messages: Sequence[int] | None = None) -> list[dict[str, Any]]:
        read.append(messages)
        return store_staged(messages)

    monkeypatch.setattr(store, "staged", staged)
    try:
        land_and_audit(store, process_batch([message(first, second)], world.ctx), "t")
        correction = {**first, "revision": first["revision"] + 1}
        batch = [
            message(correction, third),  # a correction, and a key staged twice
            message(third, fourth),  # the second copy: a duplicate
            message(second),  # landed before: a duplicate
            message(fourth | {"revision": fourth["revision"] + 1}),  # newer than its twin
            message(fifth),  # new and alone: decided on its summary, never read
        ]
        result = land_and_audit(store, process_batch(batch, world.ctx), "t")
        final = "SELECT count() AS n, sum(revision) AS revisions FROM contested.records FINAL"
        landed = store.query(final)[0]
    finally:
        store.close()
    assert read == [[0, 1, 2, 3]]  # not the first batch (all new), nor message 4 (fresh)
    assert (result.counts["records_landed"], result.counts["records_duplicate"]) == (5, 2)
    assert result.counts["records_stale"] == 0
    assert result.outcomes == {("accepted", ""): 4, ("duplicate", ""): 1}
    revisions = sum(r["revision"] for r in (first, second, third, fourth, fifth)) + 2
    assert landed == {"n": 5, "revisions": revisions}  # both corrections are what remains


def test_a_record_changed_without_a_higher_revision_is_dead_lettered_not_dropped(
    stager: Stager, chdb_dir: Path, tmp_path: Path
) -> None:
    """Counted as a duplicate, the change would be lost and nobody told."""
    world = World(tmp_path / "world")
    first, second = world.scenario.records[:2]

    def message(*batch: Record) -> RawMessage:
        return raw(world.envelope(encode_payload(world.registry, list(batch))))

    store = ChdbStore(chdb_dir, "conflict")  # beside the stager's: a database of its own
    store.ensure_schema()
    mirror_reference(store, world.ctx.reference)
    try:
        land_and_audit(store, process_batch([message(first)], world.ctx), "t")
        changed = {**first, "days_absent": first["days_absent"] + 1}  # same revision
        result = land_and_audit(store, process_batch([message(second, changed)], world.ctx), "t")
        alone = land_and_audit(store, process_batch([message(changed)], world.ctx), "t")
        kept = store.query("SELECT days_absent FROM conflict.records FINAL ORDER BY student_key")
    finally:
        store.close()
    nothing_landed = {k: n for k, n in alone.outcomes.items() if n}  # as for failed rules
    assert nothing_landed == {("dead_lettered", "dedupe.revision_conflict"): 1}
    [letter] = result.rejected
    assert letter.code is Reason.DEDUPE_REVISION_CONFLICT
    assert [(e.index, e.code) for e in letter.record_errors] == [
        (1, Reason.DEDUPE_REVISION_CONFLICT)
    ]
    assert {k: n for k, n in result.outcomes.items() if n} == {
        ("partial", "dedupe.revision_conflict"): 1
    }
    assert result.counts["records_landed"] == 1  # the other record of the message
    assert sorted(r["days_absent"] for r in kept) == sorted(
        [first["days_absent"], second["days_absent"]]
    )


@pytest.mark.parametrize("text", [b"0100001", b"TIENG_VIET"], ids=["school_code", "subject"])
def test_text_that_is_not_utf8_is_malformed_and_never_lands(
    stager: Stager, tmp_path: Path, text: bytes
) -> None:
    """ClickHouse reads such bytes as they are; Python's decoder refuses them. Found by the
    payload fuzz test: the staged rows could not even be read back."""
    world = World(tmp_path / "world")
    payload = world.submission.payload
    assert text in payload
    broken = raw(world.envelope(payload.replace(text, b"\x80" + text[1:], 1)))
    batch = [raw(world.valid[1]), broken]
    mirror_reference(stager.store, world.ctx.reference)
    try:
        result = land_and_audit(stager.store, process_batch(batch, world.ctx), "test")
    finally:
        mirror_reference(stager.store, _reference(TAN_AN, *_SCHOOLS))
    assert [(r.message, r.code) for r in result.rejected] == [(broken, Reason.DECODE_MALFORMED)]
    assert result.outcomes[("dead_lettered", Reason.DECODE_MALFORMED)] == 1  # the one


def staged_hash(directory: str) -> str:
    """The content hash chDB stages for a record with a confirmation time. Run in a process
    of its own by the test below: chDB takes its time zone from TZ when it starts."""
    world = World(Path(directory) / "world")
    confirmed = datetime(2024, 5, 29, 9, 30, tzinfo=UTC)
    record = {**world.scenario.records[0], "principal_confirmed_at": confirmed}
    store = ChdbStore(Path(directory) / "chdb", "zone")
    store.ensure_schema()
    mirror_reference(store, world.ctx.reference)
    value = raw(world.envelope(encode_payload(world.registry, [record])))
    stage_prepared(store, process_batch([value], world.ctx), LANDING)
    [row] = store.staged()
    store.close()
    return str(row["content_hash"])


def test_a_records_hash_is_the_same_in_every_time_zone(tmp_path: Path) -> None:
    """The hash decides duplicates and revision conflicts: a worker in another zone (or a
    move to a server configured otherwise) must not turn every re-sent record into a
    conflict."""
    hashes = [
        subprocess.run(
            [
                sys.executable,
                "-c",
                "from tests.integration.test_record_stage import staged_hash; "
                f"print(staged_hash({str(tmp_path / zone.replace('/', '-'))!r}))",
            ],
            env={**os.environ, "TZ": zone},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout.strip()
        for zone in ("UTC", "Asia/Ho_Chi_Minh")
    ]
    assert len(hashes[0]) == 64 and hashes[0] == hashes[1]
