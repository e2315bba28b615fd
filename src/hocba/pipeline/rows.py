"""Rows → Arrow tables typed exactly like the ClickHouse columns, and the batch's dedup token.

Batches are built column-wise as Arrow because that is the fastest way into both chDB and
a ClickHouse server (DESIGN §9); SQL text is never built from values. The Arrow types are
derived from the same `(name, ClickHouse type)` tuples as the DDL, so the two cannot drift.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from hocba.domain.columns import RECORD_KEY

_SCALARS: dict[str, pa.DataType] = {
    "String": pa.string(),
    "Bool": pa.bool_(),
    "UInt8": pa.uint8(),
    "UInt16": pa.uint16(),
    "UInt32": pa.uint32(),
    "UInt64": pa.uint64(),
    "Int8": pa.int8(),
    "Int16": pa.int16(),
    "Int32": pa.int32(),
    "Int64": pa.int64(),
    "Float32": pa.float32(),
    "Float64": pa.float64(),
    "Date": pa.date32(),
}
_WRAPPED = re.compile(r"^(LowCardinality|Nullable|Array)\((.*)\)$")
_DATETIME64 = re.compile(r"^DateTime64\((\d)(?:,\s*'([^']+)')?\)$")
_TIME_UNITS = {0: "s", 3: "ms", 6: "us", 9: "ns"}


def arrow_field(name: str, clickhouse_type: str) -> pa.Field:
    """The Arrow field for a ClickHouse column; only `Nullable(...)` admits nulls."""
    match = _WRAPPED.match(clickhouse_type)
    if match is None:
        return pa.field(name, _scalar(clickhouse_type), nullable=False)
    wrapper, inner = match.groups()
    if wrapper == "LowCardinality":
        return arrow_field(name, inner)
    if wrapper == "Nullable":
        return arrow_field(name, inner).with_nullable(True)
    item = arrow_field("item", inner)
    return pa.field(name, pa.list_(item.with_nullable(True)), nullable=False)


def _scalar(clickhouse_type: str) -> pa.DataType:
    if clickhouse_type in _SCALARS:
        return _SCALARS[clickhouse_type]
    match = _DATETIME64.match(clickhouse_type)
    if match is None or int(match.group(1)) not in _TIME_UNITS:
        raise ValueError(f"no Arrow mapping for ClickHouse type {clickhouse_type!r}")
    return pa.timestamp(_TIME_UNITS[int(match.group(1))], tz=match.group(2))


def arrow_schema(columns: Sequence[tuple[str, str]]) -> pa.Schema:
    return pa.schema([arrow_field(name, ch_type) for name, ch_type in columns])


def arrow_table(columns: Sequence[tuple[str, str]], rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """Every row must carry every column; a null in a non-Nullable column is an error.

    ClickHouse would silently store a default ('' or 0) for such a null, hiding a bug
    upstream, so it is refused here instead.
    """
    schema = arrow_schema(columns)
    arrays = []
    for field in schema:
        array = pa.array([row[field.name] for row in rows], type=field.type)
        if array.null_count and not field.nullable:
            raise ValueError(
                f"column {field.name!r} is not Nullable but has {array.null_count} nulls"
            )
        arrays.append(array)
    return pa.Table.from_arrays(arrays, schema=schema)


def dedup_token(rows: Sequence[Mapping[str, Any]]) -> str:
    """A token that names what a message lands: record keys, revisions, content hashes.

    Order-independent and blind to Kafka coordinates, so a re-delivered message (same
    records, maybe re-read at another offset after a rebalance) gets the same token.
    `record_sql.token_sql` computes the same in ClickHouse.
    """
    entries = sorted(
        "\x1f".join(str(row[name]) for name in (*RECORD_KEY, "revision", "content_hash"))
        for row in rows
    )
    return hashlib.sha256("\x1e".join(entries).encode()).hexdigest()


def batch_token(message_tokens: Iterable[str]) -> str:
    """The records insert's deduplication token: what each message of the batch lands, in
    any order, so a re-delivered batch is dropped by ClickHouse if it ever got that far."""
    return hashlib.sha256("\x1e".join(sorted(message_tokens)).encode()).hexdigest()
