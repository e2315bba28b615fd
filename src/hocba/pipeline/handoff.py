"""The hand-off from verifying workers to the one lander, as bytes on an internal topic.

chDB has a single owner, so on the embedded default several verifying workers send what
they prepared (one message per input message) to `hocba.landing`, and one lander process
lands it (DESIGN §5). The encoding is JSON: a verified message travels as its submission's
fields and its payload (base64), which the lander stages in ClickHouse, and with its original
bytes (base64), so the lander can dead-letter them unchanged. The topic is internal: nothing
here is trusted input from vendors.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from hocba.domain.messages import RawMessage, RecordError, Rejection, Submission
from hocba.domain.reasons import Reason
from hocba.pipeline.process import Accepted


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


def _message(msg: RawMessage) -> dict[str, Any]:
    return {
        "topic": msg.topic,
        "partition": msg.partition,
        "offset": msg.offset,
        "timestamp_ms": msg.timestamp_ms,
        "key": _b64(msg.key),
        "value": _b64(msg.value),
        "headers": [[k, _b64(v)] for k, v in msg.headers],
    }


def _raw(data: dict[str, Any]) -> RawMessage:
    return RawMessage(
        data["topic"],
        data["partition"],
        data["offset"],
        data["timestamp_ms"],
        _unb64(data["key"]),
        _unb64(data["value"]) or b"",
        tuple((k, _unb64(v) or b"") for k, v in data["headers"]),
    )


def _errors(errors: tuple[RecordError, ...]) -> list[list[Any]]:
    return [[e.index, str(e.code), e.detail] for e in errors]


def _unerrors(data: list[list[Any]]) -> tuple[RecordError, ...]:
    return tuple(RecordError(i, Reason(code), detail) for i, code, detail in data)


def encode_item(item: Accepted | Rejection) -> bytes:
    if isinstance(item, Rejection):
        body: dict[str, Any] = {
            "kind": "rejected",
            "message": _message(item.message),
            "code": str(item.code),
            "detail": item.detail,
            "errors": _errors(item.record_errors),
            "submission_id": item.submission_id,
            "sender_code": item.sender_code,
        }
    else:
        sub = item.submission
        body = {
            "kind": "accepted",
            "message": _message(item.message),
            "submission": [
                sub.submission_id,
                sub.sender_code,
                sub.vendor,
                sub.sent_at_ms,
                sub.signature_algorithm,
            ],
            "payload": _b64(sub.payload),
            "signer": item.signer_fingerprint,
        }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def decode_item(data: bytes) -> Accepted | Rejection:
    body = json.loads(data)
    message = _raw(body["message"])
    if body["kind"] == "rejected":
        return Rejection(
            message,
            Reason(body["code"]),
            body["detail"],
            _unerrors(body["errors"]),
            body["submission_id"],
            body["sender_code"],
        )
    sid, sender, vendor, sent_at_ms, algorithm = body["submission"]
    payload = _unb64(body["payload"]) or b""
    submission = Submission(sid, sender, vendor, sent_at_ms, payload, b"", algorithm, ())
    return Accepted(message, submission, body["signer"])
