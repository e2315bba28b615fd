"""The cluster DDL in deploy/ cannot drift from the single-server schema the workers create."""

from __future__ import annotations

import re
from pathlib import Path

import chdb
import pytest

from hocba.stats.views import STATEMENTS
from hocba.store.schema import (
    RECORDS_INDEX_GRANULARITY,
    RECORDS_MERGE_SELECTOR_BASE,
    TABLES,
    create_table_sql,
)

CLUSTER_SQL = Path(__file__).parents[2] / "deploy" / "clickhouse" / "cluster.sql"


def statements() -> list[str]:
    code = "\n".join(
        line for line in CLUSTER_SQL.read_text().splitlines() if not line.startswith("--")
    )
    return [s.strip() for s in code.split(";\n") if s.strip()]


def create_table(name: str) -> str:
    """The statement that defines `name`'s columns: `<name>_local` when it is sharded."""
    for local in (f"{name}_local", name):
        found = [
            s for s in statements() if s.startswith(f"CREATE TABLE IF NOT EXISTS hocba.{local} ")
        ]
        if found and "(" in found[0].splitlines()[0]:
            return found[0]
    raise AssertionError(f"no CREATE TABLE for {name} in {CLUSTER_SQL}")


@pytest.mark.parametrize("name", list(TABLES))
def test_tables_have_the_same_columns_and_order_by(name: str) -> None:
    spec = TABLES[name]
    sql = create_table(name)
    columns = re.findall(r"^\s+`(\w+)` (.+?),?$", sql, flags=re.MULTILINE)
    assert tuple(columns) == spec.columns
    assert f"ORDER BY ({', '.join(spec.order_by)})" in sql
    assert "ENGINE = Replicated" in sql
    if name == "records":
        assert re.search(r"ReplicatedReplacingMergeTree\(.*, revision\)", sql)
        for setting in (
            f"merge_selector_base = {RECORDS_MERGE_SELECTOR_BASE}",
            f"index_granularity = {RECORDS_INDEX_GRANULARITY}",
        ):
            assert setting in sql
            assert setting in create_table_sql("hocba", spec)


def test_every_object_the_workers_create_exists_on_the_cluster() -> None:
    defined = {
        m.group(1)
        for s in statements()
        if (m := re.match(r"CREATE (?:TABLE|VIEW|MATERIALIZED VIEW) IF NOT EXISTS hocba\.(\w+)", s))
    }
    views = {m.group(1) for s in STATEMENTS if (m := re.search(r"IF NOT EXISTS \{db\}\.(\w+)", s))}
    assert set(TABLES) | views <= defined
    assert all("ON CLUSTER '{cluster}'" in s for s in statements())


def test_every_statement_parses() -> None:
    for sql in statements():
        literal = sql.rstrip(";").replace("\\", "\\\\").replace("'", "\\'")
        chdb.query(f"SELECT formatQuery('{literal}')", "CSV")
