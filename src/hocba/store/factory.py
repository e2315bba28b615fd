"""Picks the backend from settings: a ClickHouse server when a URL is configured, else chDB.

With `store_fault_file` set, the backend is wrapped in `FaultyStore`, so an outage can be
switched on and off from outside the process (tests, incident rehearsals).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from hocba.settings import Settings
from hocba.store.base import Store
from hocba.store.faulty import FaultyStore


def open_store(settings: Settings, slot: int = 0) -> Store:
    """The store, with its schema in place; the caller owns it and must `close()` it.

    A lander opens two, slots 0 and 1, to stage one batch while the other lands; each
    stages in a table of its own (a server store always does).

    The backends are imported here, not at the top: chDB maps ~250 MB when imported, and
    every process that imports the CLI (the worker's CPU child re-imports it when spawned,
    `hocba --help`) would pay that without ever opening a store.
    """
    store: Store
    if settings.clickhouse_url is not None:
        from hocba.store.server_store import ServerStore

        store = ServerStore(settings.clickhouse_url.get_secret_value(), settings.database)
    else:
        from hocba.pipeline.record_sql import STAGING_TABLE
        from hocba.store.chdb_store import ChdbStore

        staging = STAGING_TABLE if slot == 0 else f"{STAGING_TABLE}_{slot}"
        store = ChdbStore(settings.chdb_path, settings.database, staging)
    if settings.store_fault_file is not None:
        store = FaultyStore(store, settings.store_fault_file)
    try:
        store.ensure_schema()
    except BaseException:
        store.close()
        raise
    return store


@contextlib.contextmanager
def opened_store(settings: Settings) -> Iterator[Store]:
    """`open_store` for one block: closed on the way out (chDB must not outlive its user)."""
    store = open_store(settings)
    try:
        yield store
    finally:
        store.close()
