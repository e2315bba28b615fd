"""Avro single-object encoding (`C3 01` + CRC-64-AVRO fingerprint + body).

Every schema version kept under `avro/` is loaded, so a message written with any of them is
resolved by its fingerprint and read into the newest version (Avro resolution rules). A
message from an unknown writer schema is reported, not guessed at.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

MAGIC = b"\xc3\x01"
HEADER_LEN = 10
SCHEMA_FILES = ("StudentRecord.avsc", "RecordBatch.avsc", "Submission.avsc")
SUBMISSION = "vn.edu.hocba.Submission"
RECORD_BATCH = "vn.edu.hocba.RecordBatch"
STUDENT_RECORD = "vn.edu.hocba.StudentRecord"


class UnknownSchemaError(ValueError):
    """The fingerprint names no schema we keep."""


class NotSingleObjectError(ValueError):
    """The bytes do not start with the single-object marker."""


@dataclass(frozen=True, slots=True)
class SchemaVersion:
    version: str
    schemas: Mapping[str, Any]  # full name -> parsed schema
    fingerprints: Mapping[str, bytes]  # full name -> 8-byte fingerprint


@dataclass(frozen=True, slots=True)
class SchemaRegistry:
    """All versions, oldest first; the last is the reader schema."""

    versions: tuple[SchemaVersion, ...]
    writers: Mapping[bytes, tuple[str, Any]]  # fingerprint -> (full name, parsed schema)

    def reader(self, name: str) -> Any:
        return self.versions[-1].schemas[name]

    def writer_fingerprint(self, name: str) -> bytes:
        return self.versions[-1].fingerprints[name]


def default_schema_dir() -> Path:
    return Path(str(resources.files("hocba").joinpath("avro_schemas")))


def _inline(node: Any, named: Mapping[str, Any]) -> Any:
    """Replace references to other files' types by their definitions.

    Each schema is then self-contained: fastavro merges named types of writer and reader by
    name, so a v1 writer and a v2 reader sharing `StudentRecord` by reference would be read
    with the wrong definition.
    """
    if isinstance(node, str):
        return named.get(node, node)
    if isinstance(node, list):
        return [_inline(item, named) for item in node]
    if isinstance(node, dict):
        return {key: _inline(value, named) for key, value in node.items()}
    return node


def load_version(version_dir: Path) -> SchemaVersion:
    named: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    prints: dict[str, bytes] = {}
    for file_name in SCHEMA_FILES:
        raw = _inline(json.loads((version_dir / file_name).read_text(encoding="utf-8")), named)
        name = f"{raw['namespace']}.{raw['name']}"
        named[name] = raw
        parsed = fastavro.parse_schema(raw)
        schemas[name] = parsed
        prints[name] = bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))
    return SchemaVersion(version_dir.name, schemas, prints)


def load_registry(schema_dir: Path | None = None) -> SchemaRegistry:
    base = schema_dir or default_schema_dir()
    dirs = sorted(
        (d for d in base.iterdir() if d.is_dir() and d.name.startswith("v")),
        key=lambda d: int(d.name[1:]),
    )
    versions = tuple(load_version(d) for d in dirs)
    writers = {fp: (name, v.schemas[name]) for v in versions for name, fp in v.fingerprints.items()}
    return SchemaRegistry(versions, writers)


def encode(registry: SchemaRegistry, name: str, datum: Mapping[str, Any]) -> bytes:
    out = io.BytesIO()
    out.write(MAGIC)
    out.write(registry.writer_fingerprint(name))
    fastavro.schemaless_writer(out, registry.reader(name), datum)
    return out.getvalue()


def decode(registry: SchemaRegistry, name: str, data: bytes) -> dict[str, Any]:
    """Read `data` into the newest version of `name`; raises on anything that is not that."""
    if len(data) < HEADER_LEN or data[:2] != MAGIC:
        raise NotSingleObjectError("not Avro single-object encoding (no C3 01 marker)")
    writer = registry.writers.get(data[2:HEADER_LEN])
    if writer is None:
        raise UnknownSchemaError(f"unknown writer schema fingerprint {data[2:HEADER_LEN].hex()}")
    writer_name, writer_schema = writer
    if writer_name != registry.reader(name)["name"]:
        raise UnknownSchemaError(f"expected {name}, got a {writer_name}")
    reader = registry.reader(name)
    body = io.BytesIO(data[HEADER_LEN:])
    record = fastavro.schemaless_reader(
        body, writer_schema, None if writer_schema is reader else reader
    )
    if body.tell() != len(data) - HEADER_LEN:
        raise ValueError("trailing bytes after the Avro body")
    if not isinstance(record, dict):
        raise ValueError("not a record")
    return record
