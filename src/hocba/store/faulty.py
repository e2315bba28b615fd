"""Fault injection: a store that fails every call while a marker file exists.

Tests (and operators rehearsing an incident) need a real ClickHouse outage in a running
worker process, without mocks: `HOCBA_STORE_FAULT_FILE=/tmp/outage` makes every store call
raise `ConnectionError` while that file exists, and removing the file ends the outage. The
worker must then back off, stop acknowledging, and resume by itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hocba.store.base import Store

if TYPE_CHECKING:
    import pyarrow as pa

OUTAGE = "simulated ClickHouse outage"


class FaultyStore:
    """Wraps a `Store`; `close()` is never failed, so the wrapped store is always released."""

    def __init__(self, inner: Store, fault_file: Path) -> None:
        self._inner = inner
        self._fault_file = fault_file

    def _check(self) -> None:
        if self._fault_file.exists():
            raise ConnectionError(f"{OUTAGE} ({self._fault_file} exists)")

    def ensure_schema(self) -> None:
        self._check()
        self._inner.ensure_schema()

    def insert_rows(self, table_name: str, table: pa.Table) -> None:
        self._check()
        self._inner.insert_rows(table_name, table)

    def stage_batch(
        self, containers: Sequence[bytes], structure: str, parameters: Mapping[str, Any]
    ) -> None:
        self._check()
        self._inner.stage_batch(containers, structure, parameters)

    def staged(self, messages: Sequence[int] | None = None) -> list[dict[str, Any]]:
        self._check()
        return self._inner.staged(messages)

    def staged_summary(self) -> list[dict[str, Any]]:
        self._check()
        return self._inner.staged_summary()

    def land_staged(self, parameters: Mapping[str, Any], dedup_token: str) -> None:
        self._check()
        self._inner.land_staged(parameters, dedup_token)

    def replace_reference(self, table_name: str, table: pa.Table) -> None:
        self._check()
        self._inner.replace_reference(table_name, table)

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        self._check()
        return self._inner.query(sql, parameters)

    def close(self) -> None:
        self._inner.close()
