"""Enrichment: every `records` column, the derived values, the pseudonym and the hash."""

from __future__ import annotations

import copy
import hashlib
import hmac
import io
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import fastavro
import pytest

from hocba.domain.columns import ENRICHED_COLUMNS
from hocba.domain.messages import RecordError
from hocba.domain.reasons import Reason
from hocba.pipeline.enrich import content_hash, department_may_send_for, enrich_record
from hocba.reference.loader import default_departments, load_reference_dir
from hocba.reference.model import ReferenceData, School

SCHEMA = fastavro.schema.load_schema(
    str(Path(__file__).parents[2] / "avro" / "v1" / "StudentRecord.avsc")
)
KEY = b"test-pseudonym-key"
SCHOOL = School("TH-72-001", "Trường TH Tân An", ("PRIMARY",), "public", "80", "80")


def _record(**changes: Any) -> dict[str, Any]:
    """A StudentRecord exactly as fastavro reads it back (field order, types)."""
    record: dict[str, Any] = {
        "personal_id": "080215001234",
        "student_code": "HS-0001",
        "full_name": "Nguyễn Thị Lan",
        "birth_date": date(2015, 9, 5),
        "gender": "FEMALE",
        "ethnicity_code": "01",
        "school_code": SCHOOL.code,
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
        "principal_confirmed_at": datetime(2024, 5, 30, 8, 0, tzinfo=UTC),
    } | changes
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, SCHEMA, record)
    buffer.seek(0)
    decoded = fastavro.schemaless_reader(buffer, SCHEMA, SCHEMA)
    assert isinstance(decoded, dict)
    return decoded


@pytest.fixture(scope="module")
def ref() -> ReferenceData:
    return replace(load_reference_dir(None), schools={SCHOOL.code: SCHOOL})


def _enrich(ref: ReferenceData, record: dict[str, Any], keep: bool = False) -> dict[str, Any]:
    row = enrich_record(record, ref, pseudonym_key=KEY, keep_identity=keep)
    assert isinstance(row, dict)
    return row


def test_row_has_exactly_the_enriched_columns_with_their_types(ref: ReferenceData) -> None:
    row = _enrich(ref, _record())
    assert tuple(row) == tuple(name for name, _ in ENRICHED_COLUMNS)
    python_type = {"String": str, "UInt8": int, "UInt16": int, "UInt32": int, "Bool": bool}
    for name, ch_type in ENRICHED_COLUMNS:
        base = ch_type.removeprefix("LowCardinality(").rstrip(")")
        if base in python_type:
            assert type(row[name]) is python_type[base], name
        elif base.startswith("Array("):
            assert isinstance(row[name], list), name
        else:
            assert row[name] is None, name


def test_values_come_from_record_school_and_provinces(ref: ReferenceData) -> None:
    row = _enrich(ref, _record())
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
    ref: ReferenceData, birth_date: date, grade: int, age: int, on_time: bool
) -> None:
    row = _enrich(ref, _record(birth_date=birth_date, grade=grade))
    assert (row["birth_year"], row["age_at_year_start"]) == (birth_date.year, age)
    assert row["on_time_grade"] is on_time


def test_pseudonym_is_the_keyed_hmac_and_identity_is_dropped(ref: ReferenceData) -> None:
    row = _enrich(ref, _record())
    expected = hmac.new(KEY, b"080215001234", hashlib.sha256).hexdigest()
    assert row["student_key"] == expected
    assert (row["personal_id"], row["full_name"]) == (None, None)
    other = enrich_record(_record(), ref, pseudonym_key=b"other", keep_identity=False)
    assert isinstance(other, dict) and other["student_key"] != expected


def test_identity_is_kept_only_on_request(ref: ReferenceData) -> None:
    row = _enrich(ref, _record(), keep=True)
    assert (row["personal_id"], row["full_name"]) == ("080215001234", "Nguyễn Thị Lan")


def test_unknown_school_is_a_record_error(ref: ReferenceData) -> None:
    error = enrich_record(
        _record(school_code="NOPE"), ref, pseudonym_key=KEY, keep_identity=False, index=7
    )
    assert isinstance(error, RecordError)
    assert (error.index, error.code) == (7, Reason.ENRICH_UNKNOWN_SCHOOL)
    assert "NOPE" in error.detail


def test_content_hash_covers_every_field_and_ignores_object_identity() -> None:
    record = _record()
    assert content_hash(record) == content_hash(copy.deepcopy(record))
    changed = copy.deepcopy(record)
    changed["subjects"][2]["comment"] = "Giỏi lắm"
    assert content_hash(changed) != content_hash(record)
    assert content_hash(_record(birth_date=date(2015, 9, 6))) != content_hash(record)


def test_content_hash_is_stable_across_processes() -> None:
    script = (
        "import sys, tests.unit.test_enrich as t; sys.stdout.write(t.content_hash(t._record()))"
    )
    env = os.environ | {"PYTHONHASHSEED": "12345"}
    root = Path(__file__).parents[2]
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == content_hash(_record())


def test_department_may_send_only_for_schools_of_its_province_in_its_edition() -> None:
    departments = {d.code: d for d in default_departments(2024) + default_departments(2025)}
    in_former_tay_ninh = replace(SCHOOL, province_code_2024="72")
    assert department_may_send_for(departments["SGD-2024-72"], in_former_tay_ninh)
    assert department_may_send_for(departments["SGD-2025-80"], in_former_tay_ninh)
    assert not department_may_send_for(departments["SGD-2024-80"], in_former_tay_ninh)
    assert department_may_send_for(departments["SGD-2024-80"], SCHOOL)
