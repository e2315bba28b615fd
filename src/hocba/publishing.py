"""Vendor side, pure: JSON records → batches per school and class → signed Submissions.

A Department's report is naturally a batch (one class), and one signature then covers many
records (DESIGN §2), so records are grouped by (school, class) and cut at `batch_size`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from functools import partial
from itertools import groupby
from typing import Any

from hocba.pipeline.codec import RECORD_BATCH, SUBMISSION, SchemaRegistry, encode
from hocba.trust.signing import Signer, sign

SignFunction = Callable[[bytes], bytes]


def record_from_json(obj: Mapping[str, Any]) -> dict[str, Any]:
    """JSON has no dates: accept ISO strings for the two date/time fields."""
    record = dict(obj)
    if isinstance(record.get("birth_date"), str):
        record["birth_date"] = date.fromisoformat(record["birth_date"])
    confirmed = record.get("principal_confirmed_at")
    if isinstance(confirmed, str):
        parsed = datetime.fromisoformat(confirmed)
        record["principal_confirmed_at"] = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return record


def record_to_json(record: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(record)
    out["birth_date"] = record["birth_date"].isoformat()
    if record.get("principal_confirmed_at") is not None:
        out["principal_confirmed_at"] = record["principal_confirmed_at"].isoformat()
    return out


def batches(
    records: Iterable[Mapping[str, Any]], batch_size: int
) -> Iterator[list[Mapping[str, Any]]]:
    """Group consecutive records of one (school, class), at most `batch_size` per batch."""

    def by_class(r: Mapping[str, Any]) -> tuple[str, str]:
        return r["school_code"], r["class_name"]

    for _, group in groupby(records, key=by_class):
        chunk: list[Mapping[str, Any]] = []
        for record in group:
            chunk.append(record)
            if len(chunk) == batch_size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


def encode_payload(registry: SchemaRegistry, records: Sequence[Mapping[str, Any]]) -> bytes:
    return encode(registry, RECORD_BATCH, {"records": list(records)})


def build_submission(
    registry: SchemaRegistry,
    payload: bytes,
    *,
    sign: SignFunction,
    algorithm: str,
    chain_der: Sequence[bytes],
    sender_code: str,
    vendor: str,
) -> tuple[str, bytes]:
    """Return (submission id, envelope bytes); the signature covers exactly `payload`."""
    sid = str(uuid.uuid4())
    envelope = {
        "submission_id": sid,
        "sender_code": sender_code,
        "vendor": vendor,
        "sent_at": datetime.now(UTC),
        "payload": payload,
        "signature": sign(payload),
        "signature_algorithm": algorithm,
        "certificate_chain": list(chain_der),
    }
    return sid, encode(registry, SUBMISSION, envelope)


def sign_batch(
    registry: SchemaRegistry,
    records: Sequence[Mapping[str, Any]],
    signer: Signer,
    *,
    sender_code: str,
    vendor: str,
) -> tuple[str, bytes]:
    """One batch of records → (submission id, signed envelope bytes)."""
    return build_submission(
        registry,
        encode_payload(registry, records),
        sign=partial(sign, signer),
        algorithm=signer.algorithm,
        chain_der=signer.chain_der,
        sender_code=sender_code,
        vendor=vendor,
    )
