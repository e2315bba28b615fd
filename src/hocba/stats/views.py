"""Statistics DDL: the incremental progress aggregate and the views analysts query.

Why this split between incremental and `FINAL`:
- Progress counts (records received per province, grade, sender) are kept incrementally in
  `progress`, an AggregatingMergeTree fed by a materialized view on every insert into
  `records`. It stores `uniqExactState` of the record key, so a re-delivered batch and a
  correction (same key, higher revision) add no new key: merging the states gives the exact
  number of distinct records without `FINAL` or `OPTIMIZE`, even before any merge. The MV
  sees every inserted block, including blocks a dedup token later drops on some versions, so
  a plain counter (SummingMergeTree) would over-count; the key set cannot.
- Outcome distributions depend on the *latest* revision's values, which a block-local MV
  cannot know, so `outcomes` reads `records FINAL` (dedupe at query time). Those questions
  are analytical, not the steering committee's dashboard line, and tolerate FINAL's cost.
- The MV only sees rows inserted after it exists: a store whose `records` predates it needs
  one backfill (`INSERT INTO progress SELECT … FROM records`, see docs/analysts.md).

Level by grade comes from the curriculum table `pipeline.rules_data.GRADES`, so the SQL and
the validator agree. `{db}` stands for the quoted database name in every statement.
"""

from __future__ import annotations

from hocba.pipeline.rules_data import GRADES

_GRADES = ", ".join(str(g) for g in GRADES)
_LEVELS = ", ".join(f"'{GRADES[g].level}'" for g in GRADES)
LEVEL_OF_GRADE = f"transform(grade, [{_GRADES}], [{_LEVELS}], '')"


def opening_day(school_year: str) -> str:
    """SQL for the opening day (5 September of its first year) of the school year expression
    `school_year`: the Departments valid on that day are the ones the year is reported by."""
    return f"toDate(concat(substring({school_year}, 1, 4), '-09-05'))"


# Half away from zero on an exact decimal, as a person rounds (Float64 rounds half to even).
COVERAGE_PCT = "if(expected = 0, NULL, round(toDecimal128(records, 6) * 100 / expected, 2))"

PROGRESS_TABLE = """
CREATE TABLE IF NOT EXISTS {db}.progress (
    school_year LowCardinality(String),
    province_code_2024 LowCardinality(String),
    province_code_2025 LowCardinality(String),
    grade UInt8,
    sender_code LowCardinality(String),
    record_keys AggregateFunction(uniqExact, String, UInt8, String),
    last_landed_at SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY school_year
ORDER BY (school_year, province_code_2024, province_code_2025, grade, sender_code)
"""

PROGRESS_MV = """
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.progress_mv TO {db}.progress AS
SELECT school_year, province_code_2024, province_code_2025, grade, sender_code,
    uniqExactState(school_code, grade, student_key) AS record_keys,
    max(landed_at) AS last_landed_at
FROM {db}.records
GROUP BY school_year, province_code_2024, province_code_2025, grade, sender_code
"""

COVERAGE_VIEW = f"""
CREATE VIEW IF NOT EXISTS {{db}}.coverage AS
SELECT school_year, province_code_2024, max(province_code_2025) AS province_code_2025,
    grade, {LEVEL_OF_GRADE} AS level,
    sum(received) AS records, sum(enrolled) AS expected,
    {COVERAGE_PCT} AS coverage_pct,
    max(landed) AS last_landed_at
FROM (
    SELECT school_year, province_code_2024, province_code_2025, grade,
        uniqExactMerge(record_keys) AS received, toUInt64(0) AS enrolled,
        CAST(max(last_landed_at), 'Nullable(DateTime64(3, \\'UTC\\'))') AS landed
    FROM {{db}}.progress
    GROUP BY school_year, province_code_2024, province_code_2025, grade
    UNION ALL
    SELECT e.school_year, e.province_code_2024, m.province_code_2025, e.grade,
        toUInt64(0), sum(e.expected), CAST(NULL, 'Nullable(DateTime64(3, \\'UTC\\'))')
    FROM {{db}}.expected_enrollment AS e
    LEFT JOIN {{db}}.province_mapping AS m ON m.province_code_2024 = e.province_code_2024
    GROUP BY e.school_year, e.province_code_2024, m.province_code_2025, e.grade
)
GROUP BY school_year, province_code_2024, grade
"""

# Over the grades with expected enrolment in the year, as `hocba stats` (stats.report): a
# grade nobody expected would add records without enrolment, and make senders of them.
NATIONAL_PROGRESS_VIEW = f"""
CREATE VIEW IF NOT EXISTS {{db}}.national_progress AS
SELECT c.school_year AS school_year,
    count() AS departments_total,
    countIf(d.account_registered) AS departments_registered,
    countIf(d.certificate_approved) AS departments_with_approved_certificate,
    countIf((c.school_year, d.code) IN (
        SELECT school_year, sender_code FROM {{db}}.progress
        WHERE (school_year, grade) IN (SELECT school_year, grade FROM {{db}}.expected_enrollment)
    )) AS departments_sending,
    any(c.records) AS records, any(c.expected) AS expected,
    {COVERAGE_PCT} AS coverage_pct
FROM (
    SELECT school_year, sum(records) AS records, sum(expected) AS expected
    FROM {{db}}.coverage
    WHERE (school_year, grade) IN (SELECT school_year, grade FROM {{db}}.expected_enrollment)
    GROUP BY school_year
) AS c
CROSS JOIN {{db}}.departments AS d
WHERE d.valid_from <= {opening_day("c.school_year")}
    AND (d.valid_to IS NULL OR d.valid_to >= {opening_day("c.school_year")})
GROUP BY c.school_year
"""

FRESHNESS_VIEW = """
CREATE VIEW IF NOT EXISTS {db}.freshness AS
SELECT school_year, sender_code, max(last_landed_at) AS last_landed_at,
    uniqExactMerge(record_keys) AS records
FROM {db}.progress
GROUP BY school_year, sender_code
"""

OUTCOMES_VIEW = """
CREATE VIEW IF NOT EXISTS {db}.outcomes AS
SELECT school_year, province_code_2024, province_name_2024, province_code_2025,
    province_name_2025, level, grade, gender, ethnicity_code, school_type,
    learning_result, conduct_result, promotion, completed_grade_programme, completed_primary,
    count() AS records
FROM {db}.records FINAL
GROUP BY school_year, province_code_2024, province_name_2024, province_code_2025,
    province_name_2025, level, grade, gender, ethnicity_code, school_type,
    learning_result, conduct_result, promotion, completed_grade_programme, completed_primary
"""

DEAD_LETTERS_VIEW = """
CREATE VIEW IF NOT EXISTS {db}.dead_letters_by_reason AS
SELECT code, stage, sender_code, count() AS messages, max(failed_at) AS last_failed_at
FROM {db}.dead_letters
GROUP BY code, stage, sender_code
"""

STATEMENTS: tuple[str, ...] = (
    PROGRESS_TABLE,
    PROGRESS_MV,
    COVERAGE_VIEW,
    NATIONAL_PROGRESS_VIEW,
    FRESHNESS_VIEW,
    OUTCOMES_VIEW,
    DEAD_LETTERS_VIEW,
)


def render(sql: str, database: str) -> str:
    """`sql` with `{db}` replaced by the quoted database (ClickHouse's own `{name:Type}`
    parameters also use braces, so this is a plain replace, not `str.format`)."""
    return sql.replace("{db}", f"`{database}`").strip()


def view_statements(database: str) -> list[str]:
    """Run after the tables exist: the MV and the views read `records` and the references."""
    return [render(statement, database) for statement in STATEMENTS]
