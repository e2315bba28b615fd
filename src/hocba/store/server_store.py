"""The server backend: a ClickHouse server over HTTP(S) through clickhouse-connect.

Every worker process can hold its own client (no directory lock, unlike chDB). Audit rows go
in as Arrow tables (`insert_arrow`), a batch's Avro container as it is (`raw_insert`), and
queries come back as Arrow (`query_arrow`), so rows have the same Python types as `ChdbStore`
returns. The dedup token travels as the `insert_deduplication_token` setting; async inserts
must stay off for it to apply.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import clickhouse_connect
import pyarrow as pa
from clickhouse_connect.driver.exceptions import ClickHouseError

from hocba.pipeline.record_sql import (
    STAGING_TABLE,
    land_sql,
    stage_sql,
    staged_request,
    staging_ddl,
    summary_sql,
)
from hocba.store.base import (
    check_database,
    check_table,
    check_token,
    replace_reference_rows,
)
from hocba.store.schema import schema_statements


def _connect(url: str) -> Any:
    """A client, or one line on why not: clickhouse-connect's message is a paragraph."""
    parts = urlsplit(url)
    # clickhouse-connect takes host, port and credentials from the DSN but not its scheme:
    # https://host/ would go out as plain HTTP to port 8123, the password in clear.
    interface = parts.scheme if parts.scheme in ("http", "https") else None
    try:
        return clickhouse_connect.get_client(
            dsn=url, interface=interface, autogenerate_session_id=False
        )
    except ClickHouseError as exc:
        cause = re.search(r"\[Errno -?\d+\] [^\"')]+|Code: \d+\. DB::Exception: [^.(]+", str(exc))
        raise ConnectionError(
            f"cannot reach ClickHouse at {parts.hostname}:{parts.port or 'default port'} "
            f"({cause[0] if cause else type(exc).__name__}): is it up, and "
            "HOCBA_CLICKHOUSE_URL right?"
        ) from None


# On a cluster `records`, `submissions` and `dead_letters` are Distributed tables: an insert
# returns only once the shard has the rows, so an offset is never committed before they land
# (deploy/clickhouse/cluster.sql). A single server ignores it.
ON_EVERY_SHARD = {"distributed_foreground_insert": 1}


class ServerStore:
    def __init__(self, url: str, database: str) -> None:
        self._database = check_database(database)
        self._client = _connect(url)
        # Every worker lands directly on a server: each store stages in tables of its own,
        # made at its first batch and dropped when it closes (a killed worker leaves two
        # empty Memory tables behind; `record_staging_*` may be dropped when no worker runs).
        self._staging = f"{STAGING_TABLE}_{uuid.uuid4().hex[:12]}"
        self._raw = f"{self._staging}_avro"
        self._raw_structure = ""

    def ensure_schema(self) -> None:
        for statement in schema_statements(self._database):
            self._client.command(statement)

    def stage_batch(
        self, containers: Sequence[bytes], structure: str, parameters: Mapping[str, Any]
    ) -> None:
        """The containers go in as they are (`raw_insert … FORMAT Avro`, one block each) into
        a Memory table, then are staged from there: one path for HTTP and clickhouse-connect's
        chdb backend (which takes no binary request body)."""
        raw = f"`{self._database}`.`{self._raw}`"
        try:
            if structure != self._raw_structure:
                self._client.command(staging_ddl(self._database, self._staging))
                self._client.command(f"CREATE OR REPLACE TABLE {raw} ({structure}) ENGINE = Memory")
                self._raw_structure = structure
            self._client.command(f"TRUNCATE TABLE {raw}")
            for data in containers:
                self._client.raw_insert(
                    f"{self._database}.{self._raw}", insert_block=data, fmt="Avro"
                )
            self._client.command(f"TRUNCATE TABLE `{self._database}`.`{self._staging}`")
            sql = stage_sql(self._database, self._staging, raw)
            self._client.command(sql, parameters=dict(parameters))
        except Exception:
            # The staging tables live on one server: made again at the retry, in case it
            # is another one now (a restarted server, or a reconnect through a service).
            self._raw_structure = ""
            raise

    def staged(self, messages: Sequence[int] | None = None) -> list[dict[str, Any]]:
        return self.query(*staged_request(self._database, self._staging, messages))

    def staged_summary(self) -> list[dict[str, Any]]:
        return self.query(summary_sql(self._database, self._staging))

    def land_staged(self, parameters: Mapping[str, Any], dedup_token: str) -> None:
        self._client.command(
            land_sql(self._database, self._staging, "positions" in parameters),
            parameters=dict(parameters),
            settings={
                "insert_deduplication_token": check_token(dedup_token),
                "insert_deduplicate": 1,
                "async_insert": 0,
                **ON_EVERY_SHARD,
            },
        )

    def insert_rows(self, table_name: str, table: pa.Table) -> None:
        self._client.insert_arrow(
            check_table(table_name), table, database=self._database, settings=ON_EVERY_SHARD
        )

    def replace_reference(self, table_name: str, table: pa.Table) -> None:
        def insert(name: str, rows: pa.Table) -> None:
            self._client.insert_arrow(name, rows, database=self._database)

        replace_reference_rows(self._client.command, insert, self._database, table_name, table)

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        result: pa.Table = self._client.query_arrow(
            sql, parameters=dict(parameters or {}), use_strings=True
        )
        return result.to_pylist()  # type: ignore[no-any-return]

    def close(self) -> None:
        if self._raw_structure:
            # Best effort: a server that is gone keeps two empty Memory tables, nothing more.
            with contextlib.suppress(Exception):
                for table in (self._staging, self._raw):
                    self._client.command(f"DROP TABLE IF EXISTS `{self._database}`.`{table}`")
        self._client.close()
