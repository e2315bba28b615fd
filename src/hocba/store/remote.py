"""Read-only queries through a running worker, for a chDB store that the worker owns.

chDB locks its directory, so `hocba stats` cannot open a store a worker is using; the
worker answers SELECTs on its HTTP port instead (loopback only), on the same thread that
owns the store. Only `query` is offered: everything that writes stays with the worker.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    import pyarrow as pa

READ_ONLY_PREFIXES = ("select", "with")


def rows_to_arrow(rows: list[dict[str, Any]]) -> bytes:
    """Rows travel as Arrow IPC, so dates, times and numbers keep their types.

    pyarrow is imported by the two functions that use it: `hocba stats` imports this
    module, and every process importing the CLI (the worker's CPU child too) would map
    pyarrow and numpy (~35 MB) for nothing.
    """
    import pyarrow as pa

    table = pa.Table.from_pylist(rows)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def arrow_to_rows(data: bytes) -> list[dict[str, Any]]:
    import pyarrow as pa

    rows: list[dict[str, Any]] = pa.ipc.open_stream(data).read_all().to_pylist()
    return rows


def is_read_only(sql: str) -> bool:
    return sql.lstrip().lower().startswith(READ_ONLY_PREFIXES) and ";" not in sql.rstrip("; \n")


class WorkerStore:
    def __init__(self, base_url: str, timeout_s: float = 60.0) -> None:
        self.url = base_url.rstrip("/") + "/store/query"
        self.timeout_s = timeout_s

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        body = json.dumps({"sql": sql, "parameters": dict(parameters or {})}, default=str)
        request = urllib.request.Request(
            self.url, data=body.encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return arrow_to_rows(response.read())
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"the worker refused the query: {exc.read().decode()}") from None

    def close(self) -> None:
        """Nothing to release: each query is one HTTP request."""

    def _read_only(self) -> NoReturn:
        raise RuntimeError("a store reached through a worker is read-only")

    def ensure_schema(self) -> None:
        self._read_only()

    def insert_rows(self, table_name: str, table: pa.Table) -> None:
        self._read_only()

    def replace_reference(self, table_name: str, table: pa.Table) -> None:
        self._read_only()

    def stage_batch(
        self, containers: Sequence[bytes], structure: str, parameters: Mapping[str, Any]
    ) -> None:
        self._read_only()

    def staged(self, messages: Sequence[int] | None = None) -> list[dict[str, Any]]:
        self._read_only()

    def staged_summary(self) -> list[dict[str, Any]]:
        self._read_only()

    def land_staged(self, parameters: Mapping[str, Any], dedup_token: str) -> None:
        self._read_only()


def worker_holding(base_url: str, chdb_path: Path) -> bool:
    """Whether the worker at `base_url` owns the chDB store at `chdb_path`. Any worker may
    listen on the port asked (another data directory's, another database's): only the
    store's owner may answer for it."""
    try:
        with urllib.request.urlopen(base_url.rstrip("/") + "/store", timeout=2) as response:
            held: object = json.loads(response.read()).get("chdb_path")
    except (OSError, ValueError):
        return False
    return held == str(chdb_path.resolve())
