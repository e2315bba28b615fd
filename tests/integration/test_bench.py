"""The benchmark itself runs end to end on a small input: every record lands, messages signed
with all three key types verify, and the JSON carries the figures issue 8 asks for."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RECORDS = 400


def test_the_bench_lands_every_record_with_mixed_key_algorithms_published_compressed() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "bench/run.py",
            "--records",
            str(RECORDS),
            "--batch-records",
            "10",
            "--algorithms",
            "rsa,ecdsa,ed25519",
            "--compression",
            "zstd",
            "--no-ceilings",
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout)
    assert (figures["records"], figures["landed"]) == (RECORDS, RECORDS)
    assert figures["algorithms"] == ["rsa", "ecdsa", "ed25519"]
    assert figures["compression"] == "zstd"
    assert figures["records_per_s"] > 0 and figures["peak_rss_mb_by_worker"]["worker"] > 0
    assert {
        "messages",
        "workers",
        "batch_records",
        "ceilings",
        "decode_ceiling_per_s",
        "ratio",
        "p50_latency_s",
        "p99_latency_s",
        "peak_rss_mb",
        "records_per_message",
        "latency_from",
        "environment",
    } <= set(figures)
