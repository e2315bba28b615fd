"""What the pipeline needs from ClickHouse, and the parts both backends share.

Kept to a handful of methods so chDB (embedded) and a ClickHouse server are interchangeable
and a test double is a few lines. Parameters in `query()` use ClickHouse's own
`{name:Type}` placeholders, which both backends bind server-side: values never become SQL.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from hocba.store.schema import TABLES

if TYPE_CHECKING:  # only the backends need pyarrow itself; the CLI imports this module
    import pyarrow as pa

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOKEN = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


class StoreLockedError(RuntimeError):
    """The embedded store's directory is held by another process (chDB locks it)."""


class Store(Protocol):
    def ensure_schema(self) -> None: ...

    def insert_rows(self, table_name: str, table: pa.Table) -> None: ...

    def stage_batch(
        self, containers: Sequence[bytes], structure: str, parameters: Mapping[str, Any]
    ) -> None:
        """Replace the staged batch with the records of Avro containers (`record_sql`)."""

    def staged(self, messages: Sequence[int] | None = None) -> list[dict[str, Any]]:
        """Per staged record (of `messages` only, if given), in batch order: what landing
        decides on (`record_sql.staged_sql`)."""

    def staged_summary(self) -> list[dict[str, Any]]:
        """Per staged message, in batch order: its figures (`record_sql.summary_sql`)."""

    def land_staged(self, parameters: Mapping[str, Any], dedup_token: str) -> None:
        """Insert the staged records (those at `positions`, if given) into `records`."""

    def replace_reference(self, table_name: str, table: pa.Table) -> None: ...

    def query(
        self, sql: str, parameters: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


def check_database(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"invalid database name {name!r}")
    return name


def check_token(token: str) -> str:
    """The token is spliced into a SETTINGS clause on chDB, so only safe characters pass."""
    if not _TOKEN.match(token):
        raise ValueError(f"invalid deduplication token {token!r}")
    return token


def replace_reference_rows(
    run: Callable[[str], object],
    insert: Callable[[str, pa.Table], object],
    database: str,
    table_name: str,
    table: pa.Table,
) -> None:
    """Replace a reference table's rows with `table`, through a backend's `run` (one
    statement) and `insert` (Arrow rows into a table of the database).

    `REPLACE PARTITION` from a scratch table swaps the rows in one step, so readers never
    see a half-replaced table (the record stage joins the reference tables, and a `TRUNCATE`
    then insert left a moment with no schools, in which a concurrent batch would have
    dead-lettered every record). On a cluster it is also replicated
    (deploy/clickhouse/cluster.sql), while the scratch table stays a plain local MergeTree
    on the worker's node. An empty set is a `TRUNCATE`: ClickHouse refuses to replace from
    an empty table.
    """
    spec = TABLES[check_table(table_name, reference=True)]
    db = f"`{database}`"
    if table.num_rows == 0:
        run(f"TRUNCATE TABLE {db}.`{table_name}`")
        return
    fresh = f"{table_name}_next_{uuid.uuid4().hex[:12]}"
    run(
        f"CREATE TABLE {db}.`{fresh}` AS {db}.`{table_name}` ENGINE = MergeTree "
        f"ORDER BY ({', '.join(spec.order_by)})"
    )
    insert(fresh, table)
    run(f"ALTER TABLE {db}.`{table_name}` REPLACE PARTITION tuple() FROM {db}.`{fresh}`")
    run(f"DROP TABLE {db}.`{fresh}`")


def check_table(table_name: str, *, reference: bool = False) -> str:
    spec = TABLES.get(table_name)
    if spec is None or (reference and not spec.reference):
        kind = "reference table" if reference else "table"
        raise ValueError(f"unknown {kind} {table_name!r}")
    return table_name
