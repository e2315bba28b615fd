"""The Avro container the record stage hands ClickHouse, read back by fastavro."""

from __future__ import annotations

import io

import fastavro

from hocba.pipeline.codec import default_schema_dir, load_registry
from hocba.pipeline.record_sql import (
    batch_schema_json,
    batch_structure,
    container,
    containers,
    hmac_pads,
)
from hocba.publishing import encode_payload
from tests.unit.test_validate import BASES


def test_the_container_holds_each_payload_behind_its_position() -> None:
    registry = load_registry()
    schema = batch_schema_json(default_schema_dir() / registry.versions[-1].version)
    messages = [[BASES["g4"]], [BASES["g7"], BASES["g11"]], [BASES["g1"]]]
    data = container(schema, [encode_payload(registry, records) for records in messages])
    read = list(fastavro.reader(io.BytesIO(data)))
    assert [r["m"] for r in read] == [0, 1, 2]
    assert [[s["personal_id"] for s in r["records"]] for r in read] == [
        [s["personal_id"] for s in records] for records in messages
    ]


def test_a_batch_in_several_containers_is_numbered_across_them() -> None:
    registry = load_registry()
    schema = batch_schema_json(default_schema_dir() / registry.versions[-1].version)
    payloads = [encode_payload(registry, [BASES[b]]) for b in ("g1", "g4", "g7", "g11", "g4")]
    parts = containers(schema, payloads, 2)
    read = [[r["m"] for r in fastavro.reader(io.BytesIO(part))] for part in parts]
    assert read == [[0, 1, 2], [3, 4]]
    assert containers(schema, payloads[:1], 4) == [container(schema, payloads[:1])]
    assert containers(schema, [], 2) == []


def test_the_structure_names_every_field_with_clickhouse_types() -> None:
    structure = batch_structure(batch_schema_json(default_schema_dir() / "v1"))
    assert structure.startswith("m Int32, records Array(Tuple(personal_id String,")
    for expected in ("birth_date Date32", "Nullable(DateTime64(3))", "Enum8('UNKNOWN' = 0"):
        assert expected in structure


def test_hmac_pads_are_the_key_xored_into_the_block() -> None:
    pads = hmac_pads(b"\x01\x02\x03")  # RFC 2104: 0x36 and 0x5c, each key byte XORed in
    assert pads["hmac_inner"] == "373435" + "36" * 61
    assert pads["hmac_outer"] == "5d5e5f" + "5c" * 61
