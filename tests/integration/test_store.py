"""Both store backends against a real engine.

`chdb` is the embedded store; `client-on-chdb` drives `ServerStore`'s clickhouse-connect
calls against the chDB engine (clickhouse-connect's `chdb://` DSN), so its insert/query
code runs here too; `server` needs a real ClickHouse at HOCBA_CLICKHOUSE_URL.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest

from hocba.domain.columns import PROVINCE_COLUMNS, RECORD_COLUMNS, SUBMISSION_COLUMNS
from hocba.domain.messages import Submission
from hocba.landing import RecordStage, landing_parameters
from hocba.pipeline.codec import load_registry
from hocba.pipeline.record_sql import position
from hocba.pipeline.rows import arrow_table
from hocba.publishing import encode_payload
from hocba.settings import Settings
from hocba.store.base import Store
from hocba.store.chdb_store import ChdbStore
from hocba.store.factory import open_store
from hocba.store.schema import TABLES
from hocba.store.server_store import ServerStore
from tests.unit.test_validate import BASES

pytestmark = pytest.mark.integration

NOW = datetime(2025, 9, 5, 8, 0, 0, 125000, tzinfo=UTC)
_DEFAULTS: dict[str, Any] = {
    "String": "x",
    "UInt8": 3,
    "UInt16": 7,
    "UInt32": 1,
    "UInt64": 42,
    "Bool": True,
    "DateTime64(3, 'UTC')": NOW,
    "Date": date(2025, 1, 1),
}


def _default(clickhouse_type: str) -> Any:
    core = clickhouse_type
    if core.startswith("LowCardinality("):
        core = core[len("LowCardinality(") : -1]
    if core.startswith("Nullable("):
        return None
    if core.startswith("Array("):
        return []
    return _DEFAULTS[core]


def record(student: str, revision: int = 1, content_hash: str = "h1") -> dict[str, Any]:
    row = {name: _default(ch_type) for name, ch_type in RECORD_COLUMNS}
    row.update(school_year="2024-2025", school_code="79000701", grade=3, student_key=student)
    row.update(revision=revision, content_hash=content_hash, subject_scores=[8.5, None])
    return row


def key(row: dict[str, Any]) -> tuple[str, str, int, str]:
    return (row["school_year"], row["school_code"], row["grade"], row["student_key"])


def land(store: Store, rows: list[dict[str, Any]]) -> None:
    """Rows as they are (already enriched), for tests of what the store does with them."""
    store.insert_rows("records", arrow_table(RECORD_COLUMNS, rows))


def count(store: Store, database: str, final: bool = False) -> int:
    rows = store.query(f"SELECT count() AS n FROM {database}.records {'FINAL' if final else ''}")
    return int(rows[0]["n"])


@pytest.fixture
def database() -> str:
    return f"hocba_test_{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["chdb", "client-on-chdb", pytest.param("server", marks=pytest.mark.server)])
def store(request: pytest.FixtureRequest, tmp_path: Path, database: str) -> Iterator[Store]:
    url = os.environ.get("HOCBA_CLICKHOUSE_URL", "")
    if request.param == "chdb":
        opened: Store = ChdbStore(tmp_path / "chdb", database)
    elif request.param == "client-on-chdb":
        opened = ServerStore(f"chdb://{tmp_path / 'chdb'}", database)
    elif url:
        opened = ServerStore(url, database)
    else:
        pytest.skip("HOCBA_CLICKHOUSE_URL not set: ClickHouse server backend not tested")
    opened.ensure_schema()
    yield opened
    opened.close()
    if request.param == "server":
        admin = clickhouse_connect.get_client(dsn=url)
        admin.command(f"DROP DATABASE IF EXISTS {database}")
        admin.close()


def test_schema_is_created_idempotently(store: Store, database: str) -> None:
    store.ensure_schema()
    rows = store.query(
        "SELECT name, engine FROM system.tables WHERE database = {db:String}", {"db": database}
    )
    engines = {r["name"]: r["engine"] for r in rows}
    assert set(TABLES) <= set(engines)  # the statistics views live beside the tables
    assert engines["records"] == "ReplacingMergeTree"


def stage(store: Store, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stage each record as a message of its own, as the lander does."""
    stage = RecordStage.build(b"test-key", False, 5_000)
    payloads = [encode_payload(load_registry(), [r]) for r in records]
    stage.stage(store, payloads, ["SGD-2024-01"] * len(payloads), parts=2)  # two threads
    return store.staged()


def land_staged(
    store: Store, staged: list[dict[str, Any]], token: str, subset: bool = False
) -> None:
    """Every staged record, or (`subset`) only those in `staged`, by their positions."""
    messages = range(1 + max(r["m"] for r in staged))
    submissions = [
        Submission(f"s{m}", "SGD-2024-01", "v", 1_700_000_000_000, b"", b"", "", ())
        for m in messages
    ]
    positions = [position(r["m"], r["idx"]) for r in staged] if subset else None
    parameters = landing_parameters(submissions, [(0, m) for m in messages], positions)
    store.land_staged(parameters, token)


def test_staged_rows_carry_what_is_landed_under_their_exact_key(store: Store) -> None:
    pupil = BASES["g4"]
    land_staged(store, stage(store, [pupil]), "first")
    correction = {**pupil, "revision": 2}
    next_grade = {**pupil, "grade": 5}  # the same student under another key
    classmate = {**pupil, "personal_id": pupil["personal_id"][:-1] + "9"}
    staged = stage(store, [correction, next_grade, classmate])
    assert [(r["revision"], r["landed_revision"]) for r in staged] == [(2, 1), (1, 0), (1, 0)]
    assert staged[0]["landed_hash"] != staged[0]["content_hash"]  # the correction changed it
    assert staged[0]["student_key"] == staged[1]["student_key"] != staged[2]["student_key"]


def test_landing_the_same_staged_batch_twice_under_one_token_inserts_once(
    store: Store, database: str
) -> None:
    staged = stage(store, [BASES["g4"], BASES["g7"], BASES["g11"]])
    land_staged(store, staged, "batch-1")
    land_staged(store, staged, "batch-1")
    assert count(store, database) == 3
    land_staged(store, staged[1:2], "batch-2", subset=True)
    rows = store.query(f"SELECT student_key, kafka_offset FROM {database}.records")
    assert sorted(r["kafka_offset"] for r in rows) == [0, 1, 1, 2]  # the subset: message 1
    assert (count(store, database), count(store, database, final=True)) == (4, 3)


def test_server_stores_stage_in_tables_of_their_own(tmp_path: Path, database: str) -> None:
    """Every worker lands directly on a server: two batches staged at once must not mix,
    and a store's staging tables go when it closes."""
    url = f"chdb://{tmp_path / 'chdb'}"
    first, second = ServerStore(url, database), ServerStore(url, database)
    first.ensure_schema()
    try:
        stage(first, [BASES["g4"]])
        stage(second, [BASES["g7"], BASES["g11"]])
        assert (len(first.staged()), len(second.staged())) == (1, 2)
    finally:
        first.close()
        second.close()
    check = ServerStore(url, database)
    try:
        tables = check.query(
            "SELECT name FROM system.tables WHERE database = {db:String}"
            " AND name LIKE 'record_staging%'",
            {"db": database},
        )
    finally:
        check.close()
    assert tables == []


def test_a_server_store_makes_its_staging_tables_again_after_a_failure(
    tmp_path: Path, database: str
) -> None:
    """They live on one server. Made once, a store whose next request reached another (a
    restarted server, a reconnect through a service) retried the missing table for ever."""
    url = f"chdb://{tmp_path / 'chdb'}"
    store, other = ServerStore(url, database), ServerStore(url, database)
    store.ensure_schema()
    try:
        stage(store, [BASES["g4"]])
        staging = other.query(
            "SELECT name FROM system.tables WHERE database = {db:String}"
            " AND name LIKE 'record_staging%'",
            {"db": database},
        )
        admin = clickhouse_connect.get_client(dsn=url)
        for row in staging:  # as if this server had never seen them
            admin.command(f"DROP TABLE `{database}`.`{row['name']}`")
        with pytest.raises(Exception, match=r"UNKNOWN_TABLE|does not exist"):
            stage(store, [BASES["g7"]])
        assert [r["grade"] for r in stage(store, [BASES["g7"]])] == [BASES["g7"]["grade"]]
    finally:
        store.close()
        other.close()


def test_the_same_rows_landed_twice_collapse_under_final(store: Store, database: str) -> None:
    rows = [record(f"s{i}") for i in range(10)]
    land(store, rows)
    land(store, rows)  # an identical block: ClickHouse drops it by its hash
    assert count(store, database) == 10
    land(store, [{**r, "kafka_offset": 7} for r in rows])  # re-read at another offset
    assert count(store, database) == 20
    assert count(store, database, final=True) == 10


def test_correction_replaces_the_row_under_final(store: Store, database: str) -> None:
    land(store, [record("a", 1, "old"), record("b", 1, "b")])
    land(store, [record("a", 2, "new")])
    rows = store.query(
        f"SELECT student_key, revision, content_hash, subject_scores, sent_at"
        f" FROM {database}.records FINAL ORDER BY student_key"
    )
    assert [(r["student_key"], r["revision"], r["content_hash"]) for r in rows] == [
        ("a", 2, "new"),
        ("b", 1, "b"),
    ]
    assert rows[0]["subject_scores"] == [8.5, None]
    assert rows[0]["sent_at"] == NOW


def test_reference_replace_leaves_only_the_new_set(store: Store, database: str) -> None:
    old = [
        {"code": "01", "name": "Hà Nội", "edition": 2024},
        {"code": "02", "name": "X", "edition": 2024},
    ]
    new = [{"code": "01", "name": "Thành phố Hà Nội", "edition": 2025}]
    store.replace_reference("provinces", arrow_table(PROVINCE_COLUMNS, old))
    store.replace_reference("provinces", arrow_table(PROVINCE_COLUMNS, new))
    assert store.query(f"SELECT code, name, edition FROM {database}.provinces") == new
    leftovers = store.query(
        "SELECT name FROM system.tables WHERE database = {db:String} AND name LIKE '%_next_%'",
        {"db": database},
    )
    assert leftovers == []  # the scratch table was dropped
    store.replace_reference("provinces", arrow_table(PROVINCE_COLUMNS, []))
    assert store.query(f"SELECT count() AS n FROM {database}.provinces") == [{"n": 0}]


def test_only_reference_tables_can_be_replaced(store: Store) -> None:
    with pytest.raises(ValueError, match="unknown reference table 'records'"):
        store.replace_reference("records", arrow_table(RECORD_COLUMNS, [record("a")]))


def test_audit_rows_round_trip(store: Store, database: str) -> None:
    row = {name: _default(ch_type) for name, ch_type in SUBMISSION_COLUMNS}
    row.update(submission_id="sub-1", outcome="accepted", kafka_offset=2**40)
    store.insert_rows("submissions", arrow_table(SUBMISSION_COLUMNS, [row]))
    rows = store.query(
        f"SELECT * FROM {database}.submissions WHERE submission_id = {{id:String}}", {"id": "sub-1"}
    )
    assert rows == [row]


def test_unsafe_token_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="deduplication token"):
        store.land_staged({}, "x' , max_threads = '1")


def test_second_process_gets_store_locked_error(tmp_path: Path) -> None:
    path = tmp_path / "chdb"
    holder = ChdbStore(path, "hocba")
    try:
        code = (
            "import sys; from pathlib import Path\n"
            "from hocba.store.chdb_store import ChdbStore\n"
            "from hocba.store.base import StoreLockedError\n"
            "try:\n"
            "    ChdbStore(Path(sys.argv[1]), 'hocba')\n"
            "except StoreLockedError as exc:\n"
            "    print(exc)\n"
            "    sys.exit(3)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120
        )
    finally:
        holder.close()
    assert done.returncode == 3, done.stderr
    assert str(path) in done.stdout
    assert f"PID: {os.getpid()}" in done.stdout
    assert "Cannot lock file" not in done.stderr  # asked before chDB, which would print it


def test_open_store_defaults_to_chdb_with_schema(tmp_path: Path) -> None:
    store = open_store(Settings(data_dir=tmp_path, database="hocba_factory"))
    try:
        assert isinstance(store, ChdbStore)
        assert store.query("SELECT count() AS n FROM hocba_factory.records") == [{"n": 0}]
    finally:
        store.close()
    assert (tmp_path / "chdb").is_dir()


@pytest.mark.parametrize(("scheme", "tls"), [("https", True), ("http", False)])
def test_the_url_scheme_decides_tls(scheme: str, tls: bool) -> None:
    """clickhouse-connect reads host, port and credentials from a DSN, not its scheme: an
    https URL on a port other than 443/8443 went out as plain HTTP, the password in clear.
    A local listener sees the first bytes: a TLS handshake starts with 0x16."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    first: list[bytes] = []

    def accept() -> None:
        connection, _ = listener.accept()
        with connection:
            first.append(connection.recv(1))

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    with pytest.raises(ConnectionError, match=f"cannot reach ClickHouse at 127.0.0.1:{port}"):
        timeouts = "connect_timeout=2&send_receive_timeout=2"  # DSN parameters, as a user may
        ServerStore(f"{scheme}://u:secret@127.0.0.1:{port}/?{timeouts}", "hocba")
    thread.join(timeout=10)
    listener.close()
    assert (first[0] == b"\x16") is tls
