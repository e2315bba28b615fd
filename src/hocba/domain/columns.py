"""The columns of `hocba.records`: the one list the DDL, the Arrow batch and enrichment share.

Keeping names and ClickHouse types in one tuple means a new column is one line here, and
the schema, the insert and the tests cannot drift apart.
"""

from __future__ import annotations

RECORD_KEY: tuple[str, ...] = ("school_year", "school_code", "grade", "student_key")
RecordKey = tuple[str, str, int, str]  # the values of RECORD_KEY, in that order

# (name, ClickHouse type). Enrichment fills the first block, landing fills the last.
ENRICHED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("school_year", "LowCardinality(String)"),
    ("school_code", "String"),
    ("grade", "UInt8"),
    ("student_key", "String"),  # keyed HMAC-SHA256 of personal_id, hex
    ("revision", "UInt32"),
    ("content_hash", "String"),  # sha256 hex of ClickHouse's text of the record as received
    ("student_code", "String"),
    ("level", "LowCardinality(String)"),  # PRIMARY | LOWER_SECONDARY | UPPER_SECONDARY
    ("level_code", "LowCardinality(String)"),  # 02 | 03 | 04 (Decision 4998/QĐ-BGDĐT)
    ("class_name", "String"),
    ("gender", "LowCardinality(String)"),  # UNKNOWN | MALE | FEMALE
    ("ethnicity_code", "LowCardinality(String)"),
    ("birth_year", "UInt16"),
    ("age_at_year_start", "UInt8"),
    ("on_time_grade", "Bool"),
    ("birth_province_code_2024", "LowCardinality(String)"),  # personal-ID prefix, former code
    ("school_name", "String"),
    ("school_type", "LowCardinality(String)"),  # public | private
    ("province_code_2024", "LowCardinality(String)"),  # 63-province statistics code
    ("province_name_2024", "LowCardinality(String)"),
    ("province_code_2025", "LowCardinality(String)"),  # 34-province statistics code
    ("province_name_2025", "LowCardinality(String)"),
    ("learning_result", "LowCardinality(String)"),  # '' when absent
    ("conduct_result", "LowCardinality(String)"),
    ("promotion", "LowCardinality(String)"),
    ("completed_grade_programme", "Bool"),
    ("completed_primary", "Bool"),
    ("disabled_not_assessed", "Bool"),
    ("days_absent", "UInt16"),
    ("subject_codes", "Array(String)"),
    ("subject_scores", "Array(Nullable(Float32))"),
    ("subject_assessments", "Array(String)"),
    ("personal_id", "Nullable(String)"),  # only when the operator opts in
    ("full_name", "Nullable(String)"),  # only when the operator opts in
)

LANDING_COLUMNS: tuple[tuple[str, str], ...] = (
    ("submission_id", "String"),
    ("sender_code", "LowCardinality(String)"),
    ("vendor", "LowCardinality(String)"),
    ("sent_at", "DateTime64(3, 'UTC')"),
    ("kafka_partition", "UInt16"),
    ("kafka_offset", "UInt64"),
    ("landed_at", "DateTime64(3, 'UTC')"),
)

RECORD_COLUMNS: tuple[tuple[str, str], ...] = ENRICHED_COLUMNS + LANDING_COLUMNS

# Kafka coordinates are `topic`, `kafka_partition`, `kafka_offset` everywhere: bare `partition`
# and `offset` are SQL keywords, and one spelling across tables keeps joins obvious.
SUBMISSION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("submission_id", "String"),
    ("sender_code", "LowCardinality(String)"),
    ("vendor", "LowCardinality(String)"),
    ("signer_fingerprint", "String"),  # sha256 hex of the leaf certificate, '' if unverified
    ("topic", "LowCardinality(String)"),
    ("kafka_partition", "UInt16"),
    ("kafka_offset", "UInt64"),
    ("outcome", "LowCardinality(String)"),  # accepted | duplicate | partial | dead_lettered
    ("reason", "LowCardinality(String)"),  # a Reason code, '' when accepted
    ("records_total", "UInt32"),
    ("records_landed", "UInt32"),
    ("records_duplicate", "UInt32"),
    ("records_stale", "UInt32"),
    ("records_failed", "UInt32"),
    ("sent_at", "DateTime64(3, 'UTC')"),
    ("received_at", "DateTime64(3, 'UTC')"),
)

DEAD_LETTER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("submission_id", "String"),  # '' when the envelope could not be decoded
    ("sender_code", "LowCardinality(String)"),
    ("code", "LowCardinality(String)"),  # a Reason code
    ("stage", "LowCardinality(String)"),
    ("detail", "String"),
    ("record_errors", "String"),  # JSON list of {index, code, detail}
    ("topic", "LowCardinality(String)"),
    ("kafka_partition", "UInt16"),
    ("kafka_offset", "UInt64"),
    ("failed_at", "DateTime64(3, 'UTC')"),
    ("worker", "LowCardinality(String)"),
    ("original_size", "UInt32"),
)

# Reference tables mirror `hocba.reference.model`, one column per dataclass field.
PROVINCE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("code", "LowCardinality(String)"),
    ("name", "String"),
    ("edition", "UInt16"),
)

PROVINCE_MAPPING_COLUMNS: tuple[tuple[str, str], ...] = (
    ("province_code_2024", "LowCardinality(String)"),
    ("province_code_2025", "LowCardinality(String)"),
)

SCHOOL_COLUMNS: tuple[tuple[str, str], ...] = (
    ("code", "String"),
    ("name", "String"),
    ("levels", "Array(String)"),
    ("school_type", "LowCardinality(String)"),
    ("province_code_2024", "LowCardinality(String)"),
    ("province_code_2025", "LowCardinality(String)"),
    ("commune_code", "String"),
)

DEPARTMENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("code", "String"),
    ("name", "String"),
    ("edition", "UInt16"),
    ("province_code", "LowCardinality(String)"),
    ("valid_from", "Date"),
    ("valid_to", "Nullable(Date)"),
    ("account_registered", "Bool"),
    ("certificate_approved", "Bool"),
)

EXPECTED_ENROLLMENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("province_code_2024", "LowCardinality(String)"),
    ("school_year", "LowCardinality(String)"),
    ("grade", "UInt8"),
    ("expected", "UInt32"),
)
