"""What a stage receives and what it hands on.

Messages are frozen and copied, never mutated (as in Bytewax): a rejection carries the very
`RawMessage` it came from, so a dead letter always has the original bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from hocba.domain.reasons import Reason, Stage

# A Kafka batch that no reader could read reaches the stages as one stand-in message carrying
# this header, "<reason code> <detail>" (`hocba.kafka.fetch_reader`).
UNREADABLE_BATCH_HEADER = "hocba.kafka.unreadable"


@dataclass(frozen=True, slots=True)
class RawMessage:
    """One Kafka record exactly as consumed: value and key are the bytes on the wire."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()

    def header(self, name: str) -> bytes | None:
        return next((v for k, v in self.headers if k == name), None)


@dataclass(frozen=True, slots=True)
class Submission:
    """The decoded envelope; `payload` is kept as bytes because the signature covers them."""

    submission_id: str
    sender_code: str
    vendor: str
    sent_at_ms: int
    payload: bytes
    signature: bytes
    signature_algorithm: str
    certificate_chain: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class RecordError:
    """One failed record inside an otherwise landed batch (`hocba.error.records`)."""

    index: int
    code: Reason
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Rejection:
    """A dead letter to be: the original message, why, and which records failed."""

    message: RawMessage
    code: Reason
    detail: str
    record_errors: tuple[RecordError, ...] = ()
    submission_id: str = ""
    sender_code: str = ""

    @property
    def stage(self) -> Stage:
        return self.code.stage
