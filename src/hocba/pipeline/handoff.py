"""The hand-off from verifying workers to the one lander, as bytes on an internal topic.

chDB has a single owner, so on the embedded default several verifying workers send what
they prepared (one message per input message) to `hocba.landing`, and one lander process
lands it (DESIGN §5). Each item is one Avro record (schemaless, behind a format byte): bytes
stay bytes, where the JSON with base64 it replaced made every payload 2.7 times its size on
the topic and cost the lander a third of its event loop. A verified message travels as its
original bytes, which the lander can dead-letter unchanged and whose envelope holds the
payload it stages; the payload travels on its own only when the verifier re-encoded it from
an older schema version. The topic is internal: nothing here is trusted input from vendors.

Format 2 adds when the verifier received the vendor's message, so that audit rows tell when
the pipeline first received it, not when the lander read the item. Writers write format 2;
format 1, from verifiers older than this, is still read, through a rolling upgrade.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import fastavro

from hocba.domain.messages import RawMessage, RecordError, Rejection
from hocba.domain.reasons import Reason
from hocba.pipeline.codec import SchemaRegistry
from hocba.pipeline.decode import read_envelope
from hocba.pipeline.process import Accepted

FORMAT = b"\x02"  # the first byte of every item: a later format is told apart, never misread


def _record(name: str, /, **fields: Any) -> dict[str, Any]:
    """An Avro record type; `fields` in order, name → type."""
    return {
        "type": "record",
        "name": name,
        "fields": [{"name": n, "type": t} for n, t in fields.items()],
    }


def _array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


_MESSAGE = _record(
    "Message",
    topic="string",
    partition="int",
    offset="long",
    timestamp_ms="long",
    key=["null", "bytes"],
    value="bytes",
    headers=_array(_record("Header", name="string", value="bytes")),
)
_VERIFIED = _record("Verified", signer="string", rewritten_payload=["null", "bytes"])
_REFUSED = _record(
    "Refused",
    code="string",
    detail="string",
    submission_id="string",
    sender_code="string",
    errors=_array(_record("FailedRecord", index="int", code="string", detail="string")),
)


def _item(**fields: Any) -> Any:
    """A format's schema: format 1's fields, then `fields`, which a later format appends."""
    return fastavro.parse_schema(
        {
            **_record(
                "HandoffItem",
                message=_MESSAGE,
                accepted=["null", _VERIFIED],
                rejected=["null", _REFUSED],
                **fields,
            ),
            "namespace": "hocba.internal",
        }
    )


_SCHEMAS = {  # by format byte
    b"\x01": _item(),
    FORMAT: _item(received_at={"type": "long", "logicalType": "timestamp-millis"}),
}


@dataclass(frozen=True, slots=True)
class HandedOff:
    """A verifier's verdict on one vendor message, and when the verifier received that message
    (None in a format-1 item, which did not say)."""

    verdict: Accepted | Rejection
    received_at: datetime | None


def _message(msg: RawMessage) -> dict[str, Any]:
    return {
        "topic": msg.topic,
        "partition": msg.partition,
        "offset": msg.offset,
        "timestamp_ms": msg.timestamp_ms,
        "key": msg.key,
        "value": msg.value,
        "headers": [{"name": k, "value": v} for k, v in msg.headers],
    }


def _raw(data: dict[str, Any]) -> RawMessage:
    return RawMessage(
        data["topic"],
        data["partition"],
        data["offset"],
        data["timestamp_ms"],
        data["key"],
        data["value"],
        tuple((h["name"], h["value"]) for h in data["headers"]),
    )


def encode_item(item: Accepted | Rejection, received_at: datetime) -> bytes:
    """`received_at` is the verifier's (`Prepared.received_at`, timezone-aware), kept to the
    millisecond as the audit tables keep it."""
    body: dict[str, Any] = {
        "message": _message(item.message),
        "accepted": None,
        "rejected": None,
        "received_at": received_at,
    }
    if isinstance(item, Rejection):
        body["rejected"] = {
            "code": str(item.code),
            "detail": item.detail,
            "submission_id": item.submission_id,
            "sender_code": item.sender_code,
            "errors": [
                {"index": e.index, "code": str(e.code), "detail": e.detail}
                for e in item.record_errors
            ],
        }
    else:
        rewritten = item.submission.payload if item.payload_rewritten else None
        body["accepted"] = {"signer": item.signer_fingerprint, "rewritten_payload": rewritten}
    out = io.BytesIO()
    out.write(FORMAT)
    fastavro.schemaless_writer(out, _SCHEMAS[FORMAT], body)
    return out.getvalue()


def decode_item(data: bytes, registry: SchemaRegistry) -> HandedOff:
    """Raises on bytes that are not a hand-off item (the caller dead-letters them).

    An item whose vendor message is readable but whose verdict is not (a reason code or a
    schema version of verifiers newer than this lander, in a rolling upgrade) is that
    message's dead letter, `internal.error`: its original bytes, replayable once the lander
    is upgraded, rather than the item's bytes, which no replay could land."""
    schema = _SCHEMAS.get(data[:1])
    if schema is None:
        formats = " or ".join(map(repr, _SCHEMAS))
        raise ValueError(f"not a hand-off item of format {formats} (first byte {data[:1]!r})")
    body = fastavro.schemaless_reader(io.BytesIO(data[1:]), schema, None)
    assert isinstance(body, dict)
    message = _raw(body["message"])
    verdict: Accepted | Rejection
    try:
        verdict = _verdict(body, message, registry)
    except Exception as exc:
        detail = f"this lander cannot read the verifier's verdict ({type(exc).__name__}: {exc})"
        detail += ": upgrade it to the verifiers' version, then replay"
        verdict = Rejection(message, Reason.INTERNAL_ERROR, detail)
    return HandedOff(verdict, body.get("received_at"))


def _verdict(
    body: dict[str, Any], message: RawMessage, registry: SchemaRegistry
) -> Accepted | Rejection:
    refused = body["rejected"]
    if refused is not None:
        errors = tuple(
            RecordError(e["index"], Reason(e["code"]), e["detail"]) for e in refused["errors"]
        )
        sid, sender = refused["submission_id"], refused["sender_code"]
        return Rejection(message, Reason(refused["code"]), refused["detail"], errors, sid, sender)
    verified = body["accepted"]
    submission = read_envelope(registry, message.value)  # verified upstream: only read here
    rewritten = verified["rewritten_payload"]
    if rewritten is not None:
        submission = replace(submission, payload=rewritten)
    return Accepted(message, submission, verified["signer"], rewritten is not None)
