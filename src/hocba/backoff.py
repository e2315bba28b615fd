"""Retry an outage forever, with capped exponential backoff, and say so while it lasts.

Used for everything whose failure is the infrastructure's, not the data's (the store, the
DLQ and hand-off producers): good records are never dead-lettered because a dependency is
down, and not acking while we wait is the back-pressure.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from prometheus_client import Gauge

log = logging.getLogger("hocba.backoff")
T = TypeVar("T")
FIRST_DELAY_S = 0.5
MAX_DELAY_S = 30.0


@dataclass
class Backpressure:
    gauge: Gauge
    active: bool = False

    def set(self, active: bool) -> None:
        self.active = active
        self.gauge.set(1 if active else 0)


async def retry_outage(what: str, attempt: Callable[[], Awaitable[T]], state: Backpressure) -> T:
    delay = FIRST_DELAY_S
    while True:
        try:
            result = await attempt()
        except Exception as exc:  # an outage, not bad data: bad data never raises here
            state.set(True)
            log.warning(
                "%s failed (%s: %s); retrying in %.1fs",
                what,
                type(exc).__name__,
                exc,
                delay,
                extra={"backpressure": True},
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_DELAY_S)
        else:
            if state.active:
                log.info("%s recovered", what)
            state.set(False)
            return result
