"""Turn a `Rejection` into the dead-letter message of DESIGN §4.

The value is the original bytes, unchanged, and the key the original key, so a replay after
a fix re-publishes exactly what the vendor sent (its headers too); everything we know goes in
headers of our own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from hocba.domain.messages import Rejection

HEADER_PREFIX = "hocba."  # our headers; a vendor's other headers travel along untouched
REPLAY_COUNT = "hocba.replay.count"
MAX_DETAIL = 1000  # characters of a reason's detail kept in a header or an audit row


@dataclass(frozen=True, slots=True)
class DeadLetter:
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


def parse_replay_count(raw: bytes | str | None) -> int:
    """The replay count header as a number: a message whose header is missing or unreadable
    (a vendor may send any header) counts as never replayed."""
    try:
        return max(int(raw), 0) if raw else 0
    except ValueError:
        return 0


def record_errors_json(rejection: Rejection) -> str:
    return json.dumps([{"index": e.index, "code": str(e.code)} for e in rejection.record_errors])


def to_dead_letter(rejection: Rejection, worker: str, failed_at: datetime) -> DeadLetter:
    msg = rejection.message
    headers: list[tuple[str, str]] = [
        ("hocba.error.code", str(rejection.code)),
        ("hocba.error.stage", str(rejection.stage)),
        ("hocba.error.detail", rejection.detail[:MAX_DETAIL]),
        ("hocba.source.topic", msg.topic),
        ("hocba.source.partition", str(msg.partition)),
        ("hocba.source.offset", str(msg.offset)),
        ("hocba.source.timestamp", str(msg.timestamp_ms)),
        ("hocba.failed_at", failed_at.astimezone(UTC).isoformat(timespec="milliseconds")),
        ("hocba.worker", worker),
        (REPLAY_COUNT, str(parse_replay_count(msg.header(REPLAY_COUNT)))),
    ]
    if rejection.record_errors:
        headers.append(("hocba.error.records", record_errors_json(rejection)))
    # The vendor's own headers (a trace id, say) go along, so a replay sends them again;
    # the hocba.* ones of an earlier failure are replaced by this one's.
    theirs = tuple((k, v) for k, v in msg.headers if not k.startswith(HEADER_PREFIX))
    return DeadLetter(msg.key, msg.value, theirs + tuple((k, v.encode()) for k, v in headers))
