"""The worker's own metrics, read back from its registry as Prometheus would scrape them."""

from __future__ import annotations

import math
import time

from hocba.metrics import Metrics


def _age(metrics: Metrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name)
    assert value is not None, f"{name} is not exported"
    return value


def test_context_ages_grow_between_reloads_and_restart_at_a_reload() -> None:
    metrics = Metrics()
    assert math.isnan(_age(metrics, "hocba_trust_store_age_seconds"))  # nothing loaded yet

    metrics.context_loaded(time.time() - 100)
    first = _age(metrics, "hocba_trust_store_age_seconds")
    time.sleep(0.05)
    assert _age(metrics, "hocba_trust_store_age_seconds") >= first + 0.05 > 100
    assert _age(metrics, "hocba_reference_age_seconds") >= first

    metrics.context_loaded(time.time())
    assert _age(metrics, "hocba_reference_age_seconds") < 1
