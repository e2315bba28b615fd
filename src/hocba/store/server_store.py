"""The server backend: a ClickHouse server over HTTP(S) through clickhouse-connect.

Every worker process can hold its own client (no directory lock, unlike chDB). Audit rows go
in as Arrow tables (`insert_arrow`), a batch's Avro container as it is (`raw_insert`), and
queries come back as Arrow (`query_arrow`), so rows have the same Python types as `ChdbStore`
returns. The dedup token travels as the `insert_deduplication_token` setting; async inserts
must stay off for it to apply.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import clickhouse_connect
import pyarrow as pa

from hocba.pipeline.record_sql import STAGING_TABLE, land_sql, stage_sql, staged_sql, staging_ddl
from hocba.store.base import (
    check_database,
    check_table,
    check_token,
)
from hocba.store.schema import schema_statements


class ServerStore:
    def __init__(self, url: str, database: str, lander: str = "") -> None:
        self._database = check_database(database)
        self._client = clickhouse_connect.get_client(dsn=url, autogenerate_session_id=False)
        # Every worker lands directly on a server, so each stages batches in a table of its own.
        self._staging = check_database(
            f"{STAGING_TABLE}_{hashlib.sha256(lander.encode()).hexdigest()[:12]}"
        )

    def ensure_schema(self) -> None:
        for statement in schema_statements(self._database):
            self._client.command(statement)
        self._client.command(staging_ddl(self._database, self._staging))

    def stage_batch(self, container: bytes, structure: str, parameters: Mapping[str, Any]) -> None:
        """The container goes in as it is (`raw_insert … FORMAT Avro`) into a Memory table of
        this lander's, then is staged from there: one path for HTTP and the chdb backend
        (which takes no binary request body)."""
        raw = check_database(
            f"{self._staging}_{hashlib.sha256(structure.encode()).hexdigest()[:8]}"
        )
        table = f"`{self._database}`.`{raw}`"
        self._client.command(f"CREATE TABLE IF NOT EXISTS {table} ({structure}) ENGINE = Memory")
        self._client.command(f"TRUNCATE TABLE {table}")
        self._client.raw_insert(f"{self._database}.{raw}", insert_block=container, fmt="Avro")
        self._client.command(f"TRUNCATE TABLE `{self._database}`.`{self._staging}`")
        sql = stage_sql(self._database, self._staging, table)
        self._client.command(sql, parameters=dict(parameters))

    def staged(self) -> list[dict[str, Any]]:
        return self.query(staged_sql(self._database, self._staging))

    def land_staged(self, parameters: Mapping[str, Any], dedup_token: str) -> None:
        self._client.command(
            land_sql(self._database, self._staging, "positions" in parameters),
            parameters=dict(parameters),
            settings={
                "insert_deduplication_token": check_token(dedup_token),
                "insert_deduplicate": 1,
                "async_insert": 0,
            },
        )

    def insert_rows(self, table_name: str, table: pa.Table) -> None:
        self._client.insert_arrow(check_table(table_name), table, database=self._database)

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
