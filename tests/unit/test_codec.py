"""The single-object codec: round trip, unknown fingerprint, truncation, schema evolution."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hocba.domain.messages import RawMessage
from hocba.domain.reasons import Reason
from hocba.pipeline.codec import (
    MAGIC,
    RECORD_BATCH,
    SUBMISSION,
    NotSingleObjectError,
    UnknownSchemaError,
    decode,
    default_schema_dir,
    encode,
    load_registry,
)
from hocba.pipeline.decode import decode_envelope
from hocba.synth import demo_schools, generate_records

REGISTRY = load_registry()


@pytest.fixture(scope="module")
def records() -> list[dict]:
    schools = demo_schools(["01"], 1, 1, former_to_current={"01": "01"})
    return generate_records(schools, count=3, seed=3)


def envelope(payload: bytes) -> dict:
    from datetime import UTC, datetime

    return {
        "submission_id": "7c0f3f7e-0000-4000-8000-000000000001",
        "sender_code": "SGD-2024-01",
        "vendor": "v",
        "sent_at": datetime(2024, 6, 1, tzinfo=UTC),
        "payload": payload,
        "signature": b"sig",
        "signature_algorithm": "ED25519",
        "certificate_chain": [b"der"],
    }


def test_round_trip_keeps_every_field(records: list[dict]) -> None:
    data = encode(REGISTRY, RECORD_BATCH, {"records": records})
    assert data[:2] == MAGIC
    assert decode(REGISTRY, RECORD_BATCH, data)["records"] == records


def test_fingerprint_matches_the_avro_spec_vector() -> None:
    from fastavro.schema import fingerprint

    assert fingerprint('"null"', "CRC-64-AVRO") == "8a8f25cce724dd63"


def test_the_published_fingerprints_never_change() -> None:
    """Vendors' producers compute these from avro/v1 in their own languages: an edit to a
    published schema would turn every message into decode.unknown_schema. The values were
    computed independently with avsc 5.7 (JavaScript): its canonical form and the spec's
    Rabin CRC-64, little-endian as single-object encoding writes it."""
    [v1] = [v for v in REGISTRY.versions if v.version == "v1"]
    assert {name: fp.hex() for name, fp in v1.fingerprints.items()} == PUBLISHED_V1


PUBLISHED_V1 = {
    "vn.edu.hocba.StudentRecord": "7a49516af8ac4128",
    "vn.edu.hocba.RecordBatch": "b7c0b0f68e92659f",
    "vn.edu.hocba.Submission": "3b01164a971e7f03",
}


def test_unknown_fingerprint_is_reported(records: list[dict]) -> None:
    data = bytearray(encode(REGISTRY, RECORD_BATCH, {"records": records}))
    data[2] ^= 0xFF
    with pytest.raises(UnknownSchemaError):
        decode(REGISTRY, RECORD_BATCH, bytes(data))


def test_not_avro_is_reported() -> None:
    with pytest.raises(NotSingleObjectError):
        decode(REGISTRY, RECORD_BATCH, b"{'json': true}")


def test_wrong_record_type_is_reported(records: list[dict]) -> None:
    data = encode(REGISTRY, RECORD_BATCH, {"records": records})
    with pytest.raises(UnknownSchemaError):
        decode(REGISTRY, SUBMISSION, data)


@pytest.mark.parametrize("cut", [11, 50, -1])
def test_truncated_bytes_become_a_dead_letter_reason(cut: int) -> None:
    data = encode(REGISTRY, SUBMISSION, envelope(b"x" * 40))
    message = RawMessage("t", 0, 0, 0, None, data[:cut])
    result = decode_envelope(message, REGISTRY, 1_000_000)
    assert getattr(result, "code", None) is Reason.DECODE_MALFORMED


def test_oversized_message_is_rejected_before_decoding() -> None:
    message = RawMessage("t", 0, 0, 0, None, MAGIC + b"\0" * 2000)
    assert (
        getattr(decode_envelope(message, REGISTRY, 1000), "code", None) is Reason.DECODE_TOO_LARGE
    )


def test_v1_data_is_read_into_a_newer_v2_schema(tmp_path: Path, records: list[dict]) -> None:
    """Schema evolution: a v2 reader adds a defaulted field; v1 messages still decode."""
    base = tmp_path / "avro"
    shutil.copytree(default_schema_dir() / "v1", base / "v1")
    shutil.copytree(base / "v1", base / "v2")
    schema_file = base / "v2" / "StudentRecord.avsc"
    schema = json.loads(schema_file.read_text())
    schema["fields"].append({"name": "nickname", "type": "string", "default": "-"})
    schema_file.write_text(json.dumps(schema))
    evolved = load_registry(base)

    v1_bytes = encode(REGISTRY, RECORD_BATCH, {"records": records})
    read = decode(evolved, RECORD_BATCH, v1_bytes)["records"]
    assert [r["nickname"] for r in read] == ["-"] * len(records)
    assert read[0]["personal_id"] == records[0]["personal_id"]
    # Submission is the same in v1 and v2, so it has one fingerprint: 3 + 2 writer schemas.
    assert len(evolved.writers) == 5
