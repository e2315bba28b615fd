"""The worker's own metrics, read back from its registry as Prometheus would scrape them."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hocba import metrics as metrics_module
from hocba.metrics import Metrics
from hocba.trust.store import load_crls


def _sample(metrics: Metrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name)
    assert value is not None, f"{name} is not exported"
    return value


def test_context_ages_grow_between_reloads_and_restart_at_a_reload() -> None:
    metrics = Metrics()
    assert math.isnan(_sample(metrics, "hocba_trust_store_age_seconds"))  # nothing loaded yet

    metrics.context_loaded(time.time() - 100)
    first = _sample(metrics, "hocba_trust_store_age_seconds")
    time.sleep(0.05)
    assert _sample(metrics, "hocba_trust_store_age_seconds") >= first + 0.05 > 100
    assert _sample(metrics, "hocba_reference_age_seconds") >= first

    metrics.context_loaded(time.time())
    assert _sample(metrics, "hocba_reference_age_seconds") < 1


def _crl(directory: Path, name: str, next_update: datetime) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer)
        .last_update(next_update - timedelta(days=7))
        .next_update(next_update)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.crl").write_bytes(crl.public_bytes(serialization.Encoding.DER))


def test_a_crl_going_stale_shows_without_any_file_changing(tmp_path: Path) -> None:
    metrics = Metrics()
    assert math.isnan(_sample(metrics, "hocba_crls_past_next_update"))  # no trust dir watched
    now = datetime.now(UTC)
    clock = [now]
    _crl(tmp_path / "crls", "fresh", now + timedelta(days=1))
    _crl(tmp_path / "crls", "due", now + timedelta(hours=1))
    metrics.watch_crls(tmp_path, clock=lambda: clock[0])
    assert _sample(metrics, "hocba_crls_past_next_update") == 0
    clock[0] = now + timedelta(hours=2)  # no file changes: only time passes
    assert _sample(metrics, "hocba_crls_past_next_update") == 1
    (tmp_path / "crls" / "fresh.crl").write_bytes(b"half a file")
    assert math.isnan(_sample(metrics, "hocba_crls_past_next_update"))


def test_crls_are_parsed_again_only_when_their_files_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parses: list[Path] = []

    def counted(trust_dir: Path) -> tuple[x509.CertificateRevocationList, ...]:
        parses.append(trust_dir)
        return load_crls(trust_dir)

    monkeypatch.setattr(metrics_module, "load_crls", counted)
    metrics = Metrics()
    now = datetime.now(UTC)
    _crl(tmp_path / "crls", "due", now - timedelta(hours=1))
    metrics.watch_crls(tmp_path)
    assert [_sample(metrics, "hocba_crls_past_next_update") for _ in range(3)] == [1, 1, 1]
    assert len(parses) == 1
    _crl(tmp_path / "crls", "also_due", now - timedelta(hours=2))
    assert _sample(metrics, "hocba_crls_past_next_update") == 2
    assert len(parses) == 2
