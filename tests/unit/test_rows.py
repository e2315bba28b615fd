from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
import pytest

from hocba.domain.columns import DEPARTMENT_COLUMNS, RECORD_COLUMNS
from hocba.pipeline.rows import arrow_field, arrow_schema, arrow_table, batch_token, dedup_token

SENT = datetime(2025, 9, 5, 7, 30, 1, 250000, tzinfo=UTC)


def record(student_key: str = "ab" * 32, revision: int = 1, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "school_year": "2024-2025",
        "school_code": "79000701",
        "grade": 3,
        "student_key": student_key,
        "revision": revision,
        "content_hash": "cd" * 32,
        "student_code": "HS0001",
        "level": "PRIMARY",
        "level_code": "02",
        "class_name": "3A",
        "gender": "FEMALE",
        "ethnicity_code": "01",
        "birth_year": 2016,
        "age_at_year_start": 8,
        "on_time_grade": True,
        "birth_province_code_2024": "79",
        "school_name": "Trường Tiểu học Lê Văn Tám",
        "school_type": "public",
        "province_code_2024": "79",
        "province_name_2024": "Thành phố Hồ Chí Minh",
        "province_code_2025": "29",
        "province_name_2025": "Thành phố Hồ Chí Minh",
        "learning_result": "",
        "conduct_result": "",
        "promotion": "PROMOTED",
        "completed_grade_programme": True,
        "completed_primary": False,
        "disabled_not_assessed": False,
        "days_absent": 4,
        "subject_codes": ["TV", "TO"],
        "subject_scores": [9.5, None],
        "subject_assessments": ["T", "H"],
        "personal_id": None,
        "full_name": "Nguyễn Thị An",
        "submission_id": "sub-1",
        "sender_code": "SGD-2024-79",
        "vendor": "vendor-a",
        "sent_at": SENT,
        "kafka_partition": 2,
        "kafka_offset": 10_000_000_000,
        "landed_at": SENT,
    }
    row.update(overrides)
    return row


@pytest.mark.parametrize(
    ("clickhouse_type", "arrow_type", "nullable"),
    [
        ("LowCardinality(String)", pa.string(), False),
        ("Nullable(String)", pa.string(), True),
        ("UInt8", pa.uint8(), False),
        ("UInt64", pa.uint64(), False),
        ("Bool", pa.bool_(), False),
        ("Date", pa.date32(), False),
        ("Nullable(Date)", pa.date32(), True),
        ("DateTime64(3, 'UTC')", pa.timestamp("ms", tz="UTC"), False),
        ("Array(String)", pa.list_(pa.string()), False),
        ("Array(Nullable(Float32))", pa.list_(pa.float32()), False),
    ],
)
def test_clickhouse_types_map_to_exact_arrow_types(
    clickhouse_type: str, arrow_type: pa.DataType, nullable: bool
) -> None:
    field = arrow_field("c", clickhouse_type)
    assert field.type == arrow_type
    assert field.nullable is nullable


@pytest.mark.parametrize("clickhouse_type", ["Decimal(9, 2)", "DateTime64(2, 'UTC')", "UUID"])
def test_unmapped_types_are_refused(clickhouse_type: str) -> None:
    with pytest.raises(ValueError, match="no Arrow mapping"):
        arrow_field("c", clickhouse_type)


def test_a_records_table_has_every_column_with_its_type_and_values() -> None:
    rows = [record(), record(student_key="ef" * 32, full_name=None)]
    table = arrow_table(RECORD_COLUMNS, rows)
    assert table.schema == arrow_schema(RECORD_COLUMNS)
    assert table.column_names == [name for name, _ in RECORD_COLUMNS]
    assert table.to_pylist() == rows


def test_null_in_a_non_nullable_column_is_refused() -> None:
    with pytest.raises(ValueError, match="'school_code' is not Nullable"):
        arrow_table(RECORD_COLUMNS, [record(school_code=None)])


def test_missing_column_is_refused() -> None:
    row = record()
    del row["landed_at"]
    with pytest.raises(KeyError, match="landed_at"):
        arrow_table(RECORD_COLUMNS, [row])


def test_out_of_range_integer_is_refused() -> None:
    with pytest.raises((pa.ArrowInvalid, OverflowError)):
        arrow_table(RECORD_COLUMNS, [record(grade=256)])


def test_reference_rows_with_dates_and_nullable_dates() -> None:
    row = {
        "code": "SGD-2024-79",
        "name": "Sở GD&ĐT TP. Hồ Chí Minh",
        "edition": 2024,
        "province_code": "79",
        "valid_from": date(2020, 1, 1),
        "valid_to": None,
        "account_registered": True,
        "certificate_approved": False,
    }
    table = arrow_table(DEPARTMENT_COLUMNS, [row])
    assert table.schema.field("valid_to").nullable
    assert table.to_pylist() == [row]


def test_empty_batch_gives_an_empty_typed_table() -> None:
    table = arrow_table(RECORD_COLUMNS, [])
    assert table.num_rows == 0
    assert table.schema == arrow_schema(RECORD_COLUMNS)


def test_dedup_token_ignores_order_and_kafka_coordinates() -> None:
    a, b = record(student_key="01" * 32), record(student_key="02" * 32)
    redelivered = [record(student_key=r["student_key"], kafka_offset=99) for r in (b, a)]
    assert dedup_token([a, b]) == dedup_token(redelivered)
    assert len(dedup_token([a, b])) == 64


@pytest.mark.parametrize(
    "change", [{"revision": 2}, {"content_hash": "ee" * 32}, {"grade": 4}, {"school_code": "x"}]
)
def test_dedup_token_changes_with_what_is_landed(change: dict[str, Any]) -> None:
    assert dedup_token([record()]) != dedup_token([record(**change)])


def test_batch_token_names_the_messages_landed_in_any_order() -> None:
    tokens = [dedup_token([record(student_key=f"{n:02}" * 32)]) for n in range(3)]
    assert batch_token(tokens) == batch_token(tokens[::-1]) != batch_token(tokens[:2])
    assert len(batch_token(tokens)) == 64
