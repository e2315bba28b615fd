"""The server backend: a ClickHouse server over HTTP(S) through clickhouse-connect.

Every worker process can hold its own client (no directory lock, unlike chDB). Inserts send
the Arrow table as is (`insert_arrow`), queries come back as Arrow (`query_arrow`), so rows
have the same Python types as `ChdbStore` returns. The dedup token travels as the
`insert_deduplication_token` setting; async inserts must stay off for it to apply.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import clickhouse_connect
import pyarrow as pa

from hocba.domain.columns import RecordKey
from hocba.store.base import (
    check_database,
    check_table,
    check_token,
    fetch_landed_state,
)
from hocba.store.schema import schema_statements


class ServerStore:
    def __init__(self, url: str, database: str) -> None:
        self._database = check_database(database)
        self._client = clickhouse_connect.get_client(dsn=url, autogenerate_session_id=False)

    def ensure_schema(self) -> None:
        for statement in schema_statements(self._database):
            self._client.command(statement)

    def insert_records(self, table: pa.Table, dedup_token: str) -> None:
        self._client.insert_arrow(
            "records",
            table,
            database=self._database,
            settings={
                "insert_deduplication_token": check_token(dedup_token),
                "insert_deduplicate": 1,
                "async_insert": 0,
            },
        )

    def insert_rows(self, table_name: str, table: pa.Table) -> None:
        self._client.insert_arrow(check_table(table_name), table, database=self._database)

    def landed_state(self, keys: Sequence[RecordKey]) -> dict[RecordKey, tuple[int, str]]:
        return fetch_landed_state(self.query, self._database, keys)

    def replace_reference(self, table_name: str, table: pa.Table) -> None:
        check_table(table_name, reference=True)
        self._client.command(f"TRUNCATE TABLE `{self._database}`.`{table_name}`")
        self.insert_rows(table_name, table)

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        result: pa.Table = self._client.query_arrow(
            sql, parameters=dict(parameters or {}), use_strings=True
        )
        return result.to_pylist()  # type: ignore[no-any-return]

    def close(self) -> None:
        self._client.close()
