"""Faults a test injects into a function of ours (not into Kafka or ClickHouse)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class FailsOnce(Generic[P, R]):
    """`call`, except that its first call raises `error`: e.g. a directory listing that
    meets a file replaced while it was listed. `failed` says whether that call came."""

    def __init__(self, call: Callable[P, R], error: Exception) -> None:
        self._call = call
        self._error: Exception | None = error

    @property
    def failed(self) -> bool:
        return self._error is None

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return self._call(*args, **kwargs)
