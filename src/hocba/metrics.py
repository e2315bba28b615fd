"""Prometheus metrics of the worker (DESIGN §6), in a registry of its own.

A registry per worker (not the process-global default) keeps tests that build several
workers in one process independent, and `/metrics` renders exactly these.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from hocba.fingerprint import dir_fingerprint
from hocba.kafka.lag import PartitionLag
from hocba.trust.store import load_crls, past_next_update


def _utc_now() -> datetime:
    return datetime.now(UTC)


_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.messages = Counter(
            "hocba_messages",
            "Messages by outcome and reason code",
            ["outcome", "reason"],
            registry=r,
        )
        self.records = Counter(
            "hocba_records",
            "Records by outcome (landed, duplicate, stale, failed)",
            ["outcome"],
            registry=r,
        )
        self.batch_messages = Histogram(
            "hocba_batch_messages",
            "Messages per batch",
            buckets=(1, 5, 10, 25, 50, 100, 200, 500),
            registry=r,
        )
        self.process_seconds = Histogram(
            "hocba_process_seconds", "CPU stages per batch", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.verify_seconds = Histogram(
            "hocba_verify_seconds", "Verify stage per batch", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.insert_seconds = Histogram(
            "hocba_insert_seconds",
            "Landing (lookup + inserts) per batch",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.end_to_end_seconds = Histogram(
            "hocba_end_to_end_seconds",
            "Landed time − sent_at per message",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.lag = Gauge("hocba_consumer_lag", "Input lag per partition", ["partition"], registry=r)
        self.backpressure = Gauge(
            "hocba_backpressure",
            "1 while landing or dead-lettering is failing and consumption is paused",
            registry=r,
        )
        # Ages are computed when scraped, so they grow between reloads; NaN until a context
        # is loaded (a `land` worker loads none).
        self.context_loaded_at = math.nan
        trust_age = Gauge(
            "hocba_trust_store_age_seconds", "Since the trust store was (re)loaded", registry=r
        )
        reference_age = Gauge(
            "hocba_reference_age_seconds", "Since the reference data was (re)loaded", registry=r
        )
        for age in (trust_age, reference_age):
            age.set_function(lambda: time.time() - self.context_loaded_at)
        # Read from the trust dir when scraped (`watch_crls`): a CRL goes stale by time alone,
        # with no file changing. NaN where no trust dir is read (a `land` worker).
        self.stale_crls = Gauge(
            "hocba_crls_past_next_update",
            "CRLs in the trust dir past their next update: later revocations are unknown",
            registry=r,
        )
        self.stale_crls.set_function(lambda: math.nan)
        self.reload_failing = Gauge(
            "hocba_reload_failing",
            "1 while changed trust or reference files do not load, or cannot be listed "
            "(the previous ones stay)",
            registry=r,
        )
        self.reload_failing.set_function(lambda: math.nan)

    def count_messages(self, outcomes: Mapping[tuple[str, str], int]) -> None:
        for (outcome, reason), n in outcomes.items():
            self.messages.labels(outcome, reason).inc(n)

    def count_records(self, counts: Mapping[str, int]) -> None:
        for outcome in ("landed", "duplicate", "stale", "failed"):
            self.records.labels(outcome).inc(counts.get(f"records_{outcome}", 0))

    def set_lag(self, lags: list[PartitionLag]) -> None:
        for p in lags:
            self.lag.labels(str(p.partition)).set(p.lag)

    def watch_crls(self, trust_dir: Path, clock: Callable[[], datetime] = _utc_now) -> None:
        """Judged at each scrape by `clock` (a parameter so that tests can move time). The
        files are parsed again only when they change: a scrape runs on the worker's event
        loop, and a CRL can list hundreds of thousands of revoked certificates."""
        parsed: dict[str, tuple[x509.CertificateRevocationList, ...]] = {}  # by fingerprint

        def stale() -> float:
            try:
                fingerprint = dir_fingerprint(trust_dir / "crls")
                if fingerprint not in parsed:
                    parsed.clear()
                    parsed[fingerprint] = load_crls(trust_dir)
                return len(past_next_update(parsed[fingerprint], clock()))
            except (OSError, ValueError):  # an unreadable CRL is the reload's to report
                return math.nan

        self.stale_crls.set_function(stale)

    def context_loaded(self, loaded_at: float) -> None:
        """The trust store and reference data in force were loaded at `loaded_at` (epoch s)."""
        self.context_loaded_at = loaded_at

    def render(self) -> bytes:
        return generate_latest(self.registry)
