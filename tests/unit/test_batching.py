"""Taken events are cut into batches by the bytes of their messages, in order."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from hocba.pipeline.batching import by_size


def _event(size: int, tag: str) -> Any:
    return SimpleNamespace(message=SimpleNamespace(value=b"x" * size), tag=tag)


def _tags(batches: list[list[Any]]) -> list[str]:
    return ["".join(e.tag for e in batch) for batch in batches]


def test_small_messages_stay_in_one_batch() -> None:
    events = [_event(10, t) for t in "abcdef"]
    assert _tags(list(by_size(events, 100))) == ["abcdef"]


def test_a_batch_is_cut_before_it_would_exceed_the_limit() -> None:
    events = [_event(40, t) for t in "abcde"]
    assert _tags(list(by_size(events, 100))) == ["ab", "cd", "e"]


def test_a_message_larger_than_the_limit_is_a_batch_of_its_own() -> None:
    events = [_event(10, "a"), _event(500, "B"), _event(10, "c")]
    assert _tags(list(by_size(events, 100))) == ["a", "B", "c"]


def test_a_message_without_a_value_counts_as_empty() -> None:
    events = [SimpleNamespace(message=SimpleNamespace(value=None), tag="n"), _event(99, "a")]
    assert _tags(list(by_size(events, 100))) == ["na"]
