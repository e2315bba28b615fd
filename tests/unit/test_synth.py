"""The synthetic generator: deterministic, shaped like the Avro contract, realistic enough."""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hocba.pipeline.validate import validate_record
from hocba.synth import demo_schools, generate_records, make_correction

_SCHEMA = fastavro.parse_schema(
    json.loads((Path(__file__).parents[2] / "avro/v1/StudentRecord.avsc").read_text("utf-8"))
)
_PROVINCES = ("01", "02", "79", "80")
_MAPPING = {"01": "01", "02": "08", "79": "79", "80": "80"}
_SCHOOLS = demo_schools(_PROVINCES, 7, seed=5, former_to_current=_MAPPING)


def _avro(record: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, _SCHEMA, record)
    return out.getvalue()


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    return generate_records(_SCHOOLS, count=3000, seed=11)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_deterministic_per_seed(seed: int) -> None:
    first = generate_records(_SCHOOLS, count=50, seed=seed)
    assert first == generate_records(_SCHOOLS, count=50, seed=seed)
    assert first != generate_records(_SCHOOLS, count=50, seed=seed + 1)


def test_avro_round_trip_gives_back_the_same_dict(records: list[dict[str, Any]]) -> None:
    for record in records[::50]:
        decoded = fastavro.schemaless_reader(io.BytesIO(_avro(record)), _SCHEMA)
        assert isinstance(decoded, dict)
        assert decoded == record
        assert set(decoded) == set(record)


def test_field_types_match_what_fastavro_reads(records: list[dict[str, Any]]) -> None:
    record = records[0]
    assert type(record["birth_date"]) is date
    assert isinstance(record["principal_confirmed_at"], datetime)
    assert record["principal_confirmed_at"].tzinfo is UTC
    assert record["gender"] in {"MALE", "FEMALE", "UNKNOWN"}


def test_about_one_kilobyte_encoded(records: list[dict[str, Any]]) -> None:
    sizes = [len(_avro(r)) for r in records[::10]]
    assert 800 <= sum(sizes) / len(sizes) <= 1300


def test_count_grades_and_school_levels(records: list[dict[str, Any]]) -> None:
    schools = {s.code: s for s in _SCHOOLS}
    assert len(records) == 3000
    assert {r["level"] for r in records} == {"PRIMARY", "LOWER_SECONDARY", "UPPER_SECONDARY"}
    assert {r["grade"] for r in records} <= set(range(1, 13))
    assert all(r["level"] in schools[r["school_code"]].levels for r in records)
    only = generate_records(_SCHOOLS, count=100, seed=1, grades=[4, 5])
    assert {r["grade"] for r in only} == {4, 5}


def test_no_school_teaches_the_grades() -> None:
    primary_only = [s for s in _SCHOOLS if s.levels == ("PRIMARY",)]
    with pytest.raises(ValueError, match="grades"):
        generate_records(primary_only, count=10, grades=[10])


def test_realistic_identities(records: list[dict[str, Any]]) -> None:
    schools = {s.code: s for s in _SCHOOLS}
    genders = Counter(r["gender"] for r in records)
    assert 0.45 < genders["MALE"] / len(records) < 0.55
    assert sum(r["ethnicity_code"] == "01" for r in records) / len(records) > 0.75
    home = sum(
        r["personal_id"][1:3] == schools[r["school_code"]].province_code_2024 for r in records
    )
    assert home / len(records) > 0.85
    assert len({r["personal_id"] for r in records}) == len(records)
    assert all(re.fullmatch(rf"{r['grade']}A\d+", r["class_name"]) for r in records)
    assert all(len(r["full_name"].split()) == 3 for r in records)


def test_class_runs_share_school_and_teacher(records: list[dict[str, Any]]) -> None:
    by_class: dict[tuple[str, str], set[str]] = {}
    for r in records:
        by_class.setdefault((r["school_code"], r["class_name"]), set()).add(r["homeroom_teacher"])
    assert all(len(teachers) == 1 for teachers in by_class.values())
    assert len(records) / len(by_class) >= 25


def test_both_assessment_models_are_spread(records: list[dict[str, Any]]) -> None:
    results = Counter((r["level"] == "PRIMARY", r["learning_result"]) for r in records)
    for result in ("HOAN_THANH_XUAT_SAC", "HOAN_THANH_TOT", "HOAN_THANH"):
        assert results[True, result] > 50
    for result in ("TOT", "KHA", "DAT"):
        assert results[False, result] > 50
    assert Counter(r["promotion"] for r in records)["PROMOTED"] / len(records) > 0.85


def test_correction_is_the_next_valid_revision_with_one_score_changed(
    records: list[dict[str, Any]],
) -> None:
    for record in records[::100]:
        corrected = make_correction(record)
        assert corrected["revision"] == record["revision"] + 1
        changed = [
            (a["score"], b["score"])
            for a, b in zip(record["subjects"], corrected["subjects"], strict=True)
            if a != b
        ]
        assert len(changed) == 1 and changed[0][0] != changed[0][1]
        assert validate_record(corrected, 0) is None
        assert {**corrected, "revision": 1, "subjects": record["subjects"]} == record


def test_demo_schools() -> None:
    schools = demo_schools(_PROVINCES, 3, seed=2, former_to_current=_MAPPING)
    assert schools == demo_schools(_PROVINCES, 3, seed=2, former_to_current=_MAPPING)
    assert len({s.code for s in schools}) == len(schools) == 12
    assert all(re.fullmatch(re.escape(s.province_code_2024) + r"\d{5}", s.code) for s in schools)
    assert all(s.province_code_2025 == _MAPPING[s.province_code_2024] for s in schools)
    assert all(
        s.name.startswith("Trường ") and s.school_type in {"public", "private"} for s in schools
    )
    for province in _PROVINCES:
        levels = {lvl for s in schools if s.province_code_2024 == province for lvl in s.levels}
        assert levels == {"PRIMARY", "LOWER_SECONDARY", "UPPER_SECONDARY"}
