"""The ClickHouse DDL, generated from the column tuples in `hocba.domain.columns`.

Plain SQL that runs unchanged on chDB and on a ClickHouse server; every statement is
`IF NOT EXISTS`, so `ensure_schema()` can run at every start.

Engines:
- `records`: ReplacingMergeTree(revision) on the record key, so a correction (higher
  revision) replaces the row under `FINAL`/after merges. `non_replicated_deduplication_window`
  makes ClickHouse remember the last block ids, so an insert that repeats an
  `insert_deduplication_token` is dropped (replicated tables do this by default).
  `merge_selector_base = 10` (ClickHouse's default is 5) makes each merge take more parts,
  so a row is rewritten fewer times on its way into a large part: a school year arrives as
  thousands of batch-sized inserts, and at 5 the merges of `records` took ~17 % of the
  embedded worker's machine; at 10 they take half as much CPU, for more parts between
  merges (12 active parts after 1 M records instead of ~7; `bench/RESULTS.md`).
  `index_granularity = 1024` (default 8192): every batch looks up which of its keys are
  already landed (`record_sql.summary_sql`), and ClickHouse reads a whole granule of each
  part for every key it finds a granule for, so with the default the lookup read most of the
  table once it held a national year (18 M records: ~0.3 s of CPU per 7,500-record batch,
  against 0.01 s into an empty table); 1024-row granules cut that to ~0.1 s.
- `submissions`, `dead_letters`: append-only MergeTree audit logs, with the same window, so
  that an audit insert retried after its reply was lost is dropped (stores created before
  this window keep appending such a retry).
- Reference tables: plain MergeTree, replaced wholesale on each load (filled beside the old
  set, then swapped in by `REPLACE PARTITION`, `store.base.replace_reference_rows`): small, loaded
  as a complete set, and a replace leaves no stale row that a ReplacingMergeTree would keep
  until the key is rewritten.
"""

from __future__ import annotations

from dataclasses import dataclass

from hocba.domain.columns import (
    DEAD_LETTER_COLUMNS,
    DEPARTMENT_COLUMNS,
    EXPECTED_ENROLLMENT_COLUMNS,
    PROVINCE_COLUMNS,
    PROVINCE_MAPPING_COLUMNS,
    RECORD_COLUMNS,
    RECORD_KEY,
    SCHOOL_COLUMNS,
    SUBMISSION_COLUMNS,
)
from hocba.stats.views import view_statements

DEDUP_WINDOW = 10_000  # inserts whose block ids a table remembers
RECORDS_MERGE_SELECTOR_BASE = 10  # wider merges of `records`: each row rewritten fewer times
RECORDS_INDEX_GRANULARITY = 1024  # rows per index mark: what a landed-key lookup reads per hit


@dataclass(frozen=True, slots=True)
class TableSpec:
    name: str
    columns: tuple[tuple[str, str], ...]
    engine: str
    order_by: tuple[str, ...]
    partition_by: str = ""
    settings: str = ""
    reference: bool = False  # replaced wholesale by `Store.replace_reference`


TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec(
            "records",
            RECORD_COLUMNS,
            "ReplacingMergeTree(revision)",
            RECORD_KEY,
            partition_by="school_year",
            settings=f"non_replicated_deduplication_window = {DEDUP_WINDOW}, "
            f"merge_selector_base = {RECORDS_MERGE_SELECTOR_BASE}, "
            f"index_granularity = {RECORDS_INDEX_GRANULARITY}",
        ),
        # The audit logs remember block hashes too: an insert that committed but whose reply
        # was lost is retried by the lander with the very same rows, and dropped.
        TableSpec(
            "submissions",
            SUBMISSION_COLUMNS,
            "MergeTree",
            ("sender_code", "received_at", "submission_id"),
            partition_by="toYYYYMM(received_at)",
            settings=f"non_replicated_deduplication_window = {DEDUP_WINDOW}",
        ),
        TableSpec(
            "dead_letters",
            DEAD_LETTER_COLUMNS,
            "MergeTree",
            ("code", "failed_at"),
            partition_by="toYYYYMM(failed_at)",
            settings=f"non_replicated_deduplication_window = {DEDUP_WINDOW}",
        ),
        TableSpec("provinces", PROVINCE_COLUMNS, "MergeTree", ("edition", "code"), reference=True),
        TableSpec(
            "province_mapping",
            PROVINCE_MAPPING_COLUMNS,
            "MergeTree",
            ("province_code_2024",),
            reference=True,
        ),
        TableSpec("schools", SCHOOL_COLUMNS, "MergeTree", ("code",), reference=True),
        TableSpec("departments", DEPARTMENT_COLUMNS, "MergeTree", ("code",), reference=True),
        TableSpec(
            "expected_enrollment",
            EXPECTED_ENROLLMENT_COLUMNS,
            "MergeTree",
            ("province_code_2024", "school_year", "grade"),
            reference=True,
        ),
    )
}


def create_table_sql(database: str, spec: TableSpec) -> str:
    columns = ",\n    ".join(f"`{name}` {ch_type}" for name, ch_type in spec.columns)
    clauses = [
        f"CREATE TABLE IF NOT EXISTS `{database}`.`{spec.name}` (\n    {columns}\n)",
        f"ENGINE = {spec.engine}",
    ]
    if spec.partition_by:
        clauses.append(f"PARTITION BY {spec.partition_by}")
    clauses.append(f"ORDER BY ({', '.join(spec.order_by)})")
    if spec.settings:
        clauses.append(f"SETTINGS {spec.settings}")
    return "\n".join(clauses)


def schema_statements(database: str) -> list[str]:
    """Database, tables, then the statistics views that read them (`hocba.stats.views`)."""
    return [
        f"CREATE DATABASE IF NOT EXISTS `{database}`",
        *(create_table_sql(database, spec) for spec in TABLES.values()),
        *view_statements(database),
    ]
