"""The embedded backend: chDB (ClickHouse in-process), persistent under one directory.

chDB facts this class is built around (chdb-core 26.9):
- One embedded server per process, bound to one directory: further sessions in the same
  process may open the same directory (they share the server), but a different directory is
  refused until every session is closed.
- The server locks `<dir>/status` (flock) and writes its PID there; a second process fails
  with a bare "Error initializing EmbeddedServer" (the "Cannot lock file" text only reaches
  stderr), so the lock is probed here to raise `StoreLockedError` naming the holder.
- Audit rows stream Arrow IPC bytes into `INSERT … FORMAT ArrowStream` (`send_insert`), the
  fastest path measured; `send_insert` refuses `INSERT … SELECT`, so a batch's Avro container
  is read with `file()` from a file beside the data. The dedup token of the records insert
  goes into its SETTINGS clause.
- Query parameters are handed to the engine as text, in the same escaped form a server's
  HTTP interface takes, so they are encoded with clickhouse-connect's own encoder.
- Close explicitly: a process that exits with a session open has been seen to segfault.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC
from pathlib import Path
from typing import Any

# chDB's jemalloc keeps freed pages for 5 s (`dirty_decay_ms:5000` in its build): every
# insert then left ~300 MB resident. Returning them at once (0 ms) kept the peak lowest but
# cost a third of the worker's CPU in the kernel (page faults, TLB shootdowns): 300 ms keeps
# the pages a batch frees for the next one. Over 1 M records: 18.1k records/s and 845 MB at
# 0 ms, 24.5k and 904 MB at 300 ms (`bench/RESULTS.md`). jemalloc reads this when the
# library loads, hence before the import; an operator's setting wins.
os.environ.setdefault("JE_MALLOC_CONF", "dirty_decay_ms:300,muzzy_decay_ms:0")

import pyarrow as pa
from chdb import session as chdb_session
from clickhouse_connect.driver.binding import format_bind_value, must_escape

from hocba.pipeline.record_sql import (
    STAGING_TABLE,
    land_sql,
    stage_sql,
    staged_request,
    staging_ddl,
    summary_sql,
)
from hocba.store.base import (
    StoreLockedError,
    check_database,
    check_table,
    check_token,
    replace_reference_rows,
)
from hocba.store.schema import schema_statements

# chdb ships no annotations; its objects are handled as Any behind this one typed seam.
_open_session: Callable[[str], Any] = chdb_session.Session


_ESCAPES = str.maketrans({c: "\\" + c for c in must_escape})


def _nested(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.translate(_ESCAPES) + "'"
    if isinstance(value, bool | int):
        return str(int(value))
    if isinstance(value, tuple):
        return "(" + ", ".join(map(_nested, value)) + ")"
    if isinstance(value, list):
        return "[" + ", ".join(map(_nested, value)) + "]"
    return str(format_bind_value(value, UTC, top_level=False))


def _literal(text: str) -> str:
    return "'" + text.translate(_ESCAPES) + "'"


def bind_value(value: Any) -> str:
    """clickhouse-connect's parameter text, with a fast path for arrays.

    Its generic escaper walks strings character by character (~25 µs per string); a batch's
    parameter arrays (senders, submission ids, positions) are strings, ints, tuples and
    lists, escaped here with the same rules through one `str.translate`.
    """
    if isinstance(value, list | tuple):
        return _nested(value)
    return str(format_bind_value(value, UTC))


class ChdbStore:
    """Meant to be owned by one landing thread; other threads (statistics) may share it, their
    calls are serialised by a lock rather than interleaved on the one engine connection."""

    def __init__(self, path: Path, database: str, staging: str = STAGING_TABLE) -> None:
        self._path = path
        self._database = check_database(database)
        self._staging = staging  # a second store on the directory stages beside the first
        self._lock = threading.Lock()
        path.mkdir(parents=True, exist_ok=True)
        # Asked before opening: chDB would print its own "Cannot lock file" to stderr first.
        holder = _lock_holder(path)
        if holder is None:
            try:
                # chDB compares engine paths literally: resolve, so spellings of one dir agree.
                self._session: Any = _open_session(str(path.resolve()))
                return
            except RuntimeError:
                holder = _lock_holder(path)  # taken since it was asked
                if holder is None:
                    raise
        raise StoreLockedError(
            f"chDB store {path} is in use by another process ({holder}); stop it, or "
            "query it through that process (e.g. the worker's HTTP port)"
        )

    def ensure_schema(self) -> None:
        for statement in schema_statements(self._database):
            self._run(statement)
        self._run(staging_ddl(self._database, self._staging))

    def stage_batch(
        self, containers: Sequence[bytes], structure: str, parameters: Mapping[str, Any]
    ) -> None:
        """chDB reads the containers from files next to its data, one thread per file
        (`send_insert` refuses `INSERT … SELECT`, so `input()` is not available here)."""
        folder = self._path.resolve()
        for n, data in enumerate(containers):
            (folder / f"{self._staging}-{n}.avro").write_bytes(data)
        numbers = ",".join(str(n) for n in range(len(containers)))
        files = f"{{{numbers}}}" if len(containers) > 1 else "0"
        pattern = f"{self._staging}-{files}.avro"
        source = f"file({_literal(str(folder / pattern))}, 'Avro', {_literal(structure)})"
        self._run(f"TRUNCATE TABLE `{self._database}`.`{self._staging}`")
        params = {k: bind_value(v) for k, v in parameters.items()}
        self._run(stage_sql(self._database, self._staging, source), "CSV", params)

    def staged(self, messages: Sequence[int] | None = None) -> list[dict[str, Any]]:
        return self.query(*staged_request(self._database, self._staging, messages))

    def staged_summary(self) -> list[dict[str, Any]]:
        return self.query(summary_sql(self._database, self._staging))

    def land_staged(self, parameters: Mapping[str, Any], dedup_token: str) -> None:
        settings = f" SETTINGS insert_deduplication_token = '{check_token(dedup_token)}'"
        sql = land_sql(self._database, self._staging, "positions" in parameters) + settings
        self._run(sql, "CSV", {k: bind_value(v) for k, v in parameters.items()})

    def insert_rows(self, table_name: str, table: pa.Table) -> None:
        self._insert(check_table(table_name), table)

    def replace_reference(self, table_name: str, table: pa.Table) -> None:
        replace_reference_rows(self._run, self._insert, self._database, table_name, table)

    def _insert(self, table_name: str, table: pa.Table) -> None:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        columns = ", ".join(f"`{name}`" for name in table.column_names)
        sql = f"INSERT INTO `{self._database}`.`{table_name}` ({columns})"
        with self._lock:
            inserter = self._open().send_insert(sql, "ArrowStream")
            try:
                inserter.append(sink.getvalue().to_pybytes())
                inserter.finish()
            finally:
                inserter.cancel()  # no-op after finish(); frees the connection on error

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        params = {k: bind_value(v) for k, v in (parameters or {}).items()}
        result: pa.Table = self._run(sql, "ArrowTable", params)
        return result.to_pylist()  # type: ignore[no-any-return]

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                self._session.close()
                self._session = None

    def _run(self, sql: str, fmt: str = "CSV", params: Mapping[str, str] | None = None) -> Any:
        with self._lock:
            return self._open().query(sql, fmt, params=dict(params or {}))

    def _open(self) -> Any:
        if self._session is None:
            raise RuntimeError(f"chDB store {self._path} is closed")
        return self._session


def _lock_holder(path: Path) -> str | None:
    """'PID: n' of another process holding `<path>/status`, or None if nobody else holds it
    (this process may: a lander's second store shares the engine opened by its first)."""
    status = path / "status"
    try:
        fd = os.open(status, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise
        first_line = os.read(fd, 256).decode(errors="replace").splitlines()[:1]
        if first_line == [f"PID: {os.getpid()}"]:
            return None
        return first_line[0] if first_line else "unknown PID"
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
