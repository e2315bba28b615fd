"""Hot reload of the trust store: an operator's change reaches a running worker, no restart.

End to end: a certificate withdrawn with `hocba trust withdraw` while the worker runs stops
being accepted within seconds. Unit level: a broken trust dir keeps the last good context.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hocba import context as context_module
from hocba.cli.main import app
from hocba.context import ContextLoader
from hocba.domain.messages import RawMessage
from hocba.domain.reasons import Reason
from hocba.kafka.broker import EmbeddedBroker
from hocba.kafka.producer import Outgoing
from hocba.kafka.read import TopicRecord, read_topic
from hocba.pipeline.process import Accepted, process_message
from hocba.runner import spawn_worker, stop_worker, wait_drained
from hocba.scenario import Scenario, build_scenario
from hocba.settings import Settings
from hocba.trust.register import RegisterEntry, add, load_register, save_register
from tests.conftest import isolated_settings
from tests.faults import FailsOnce
from tests.integration.harness import load_reference, publish, query
from tests.security.messages import SENDER, envelope, leaf_fingerprint, province_records

pytestmark = pytest.mark.integration
RELOADED = "trust store / reference data reloaded"  # what the worker logs on a reload


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return build_scenario(
        tmp_path_factory.mktemp("reload"), records=20, provinces=("01",), schools_per_province=1
    )


def _message(scenario: Scenario, key: str, records: slice) -> tuple[str, Outgoing]:
    sid, value = envelope(scenario.signers[SENDER], province_records(scenario, "01")[records])
    return sid, Outgoing(key.encode(), value)


def _withdraw(trust_dir: Path, fingerprint: str) -> None:
    """As an operator would: the CLI, pointed at the trust dir by the environment."""
    result = CliRunner().invoke(
        app, ["trust", "withdraw", fingerprint], env={"HOCBA_TRUST_DIR": str(trust_dir)}
    )
    assert result.exit_code == 0, result.output


def _wait_for_line(log_path: Path, line: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while line not in log_path.read_text(encoding="utf-8", errors="replace"):
        if time.monotonic() > deadline:
            pytest.fail(f"no {line!r} in {log_path} after {timeout_s:.0f}s")
        time.sleep(0.2)


@dataclass(frozen=True)
class ReloadRun:
    settings: Settings
    submission_ids: dict[str, str]  # Kafka key -> submission id
    dead_letters: list[TopicRecord]
    worker_exit_code: int


@pytest.fixture(scope="module")
def withdrawn_mid_run(
    broker: EmbeddedBroker, scenario: Scenario, tmp_path_factory: pytest.TempPathFactory
) -> ReloadRun:
    """Publish one good message, withdraw its certificate, publish another; the worker runs on."""
    data_dir = tmp_path_factory.mktemp("data")
    settings = isolated_settings(
        data_dir, trust_dir=scenario.trust_dir, reference_dir=scenario.reference_dir
    )
    load_reference(settings, scenario.reference)
    before_sid, before = _message(scenario, "before", slice(0, 3))
    after_sid, after = _message(scenario, "after", slice(3, 6))
    log_path = data_dir / "worker.log"
    asyncio.run(publish(broker.bootstrap, settings, [before]))
    worker = spawn_worker(settings, broker.bootstrap, log_path)
    try:
        wait_drained(settings, broker.bootstrap, worker, timeout_s=60)
        _withdraw(scenario.trust_dir, leaf_fingerprint(scenario.signers[SENDER]))
        _wait_for_line(log_path, RELOADED, timeout_s=15)
        asyncio.run(publish(broker.bootstrap, settings, [after]))
        wait_drained(settings, broker.bootstrap, worker, timeout_s=60)
    finally:
        code = stop_worker(worker)
    return ReloadRun(
        settings,
        {"before": before_sid, "after": after_sid},
        asyncio.run(read_topic(broker.bootstrap, settings.dlq_topic)),
        code,
    )


def test_a_message_before_the_withdrawal_lands(withdrawn_mid_run: ReloadRun) -> None:
    rows = query(
        withdrawn_mid_run.settings,
        "SELECT submission_id AS sid, count() AS n FROM {db}.records GROUP BY sid",
    )
    assert rows == [{"sid": withdrawn_mid_run.submission_ids["before"], "n": 3}]


def test_a_message_after_the_withdrawal_is_dead_lettered(withdrawn_mid_run: ReloadRun) -> None:
    letters = [(d.key, d.headers["hocba.error.code"]) for d in withdrawn_mid_run.dead_letters]
    assert letters == [(b"after", Reason.VERIFY_CERT_NOT_APPROVED.value)]
    assert "withdrawn" in withdrawn_mid_run.dead_letters[0].headers["hocba.error.detail"]


def test_the_worker_was_not_restarted(withdrawn_mid_run: ReloadRun) -> None:
    assert withdrawn_mid_run.worker_exit_code == 0


@pytest.mark.parametrize(
    ("broken", "garbage"),
    [("register.json", b'{"half an edit": '), ("anchors/root.pem", b"-----BEGIN CERTIFICATE")],
)
def test_a_broken_trust_dir_keeps_the_last_good_context(
    scenario: Scenario,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    broken: str,
    garbage: bytes,
) -> None:
    trust_dir = shutil.copytree(scenario.trust_dir, tmp_path / "trust")
    register = trust_dir / "register.json"
    fingerprint = leaf_fingerprint(scenario.signers[SENDER])  # withdrawn if the run came first
    entry = load_register(register).entries[fingerprint]
    approved = RegisterEntry(entry.department_code, entry.approved_on)  # registered afresh
    save_register(register, add(load_register(register), fingerprint, approved))
    loader = ContextLoader(
        isolated_settings(tmp_path, trust_dir=trust_dir, reference_dir=scenario.reference_dir)
    )
    good = loader.current()
    _, message = _message(scenario, "m", slice(0, 3))
    raw = RawMessage("t", 0, 0, 0, message.key, message.value)
    original = (trust_dir / broken).read_bytes()
    (trust_dir / broken).write_bytes(garbage)
    with caplog.at_level(logging.ERROR, logger="hocba.context"):
        assert loader.refresh() is False
    assert "reload failed" in caplog.text
    assert loader.reload_failed  # hocba_reload_failing: 1 until the files are fixed
    assert loader.current() is good
    assert isinstance(process_message(raw, loader.current(), datetime.now(UTC)), Accepted)
    (trust_dir / broken).write_bytes(original)
    assert loader.refresh() is True
    assert not loader.reload_failed
    assert loader.current() is not good


def test_a_listing_that_fails_keeps_the_context_says_so_and_is_tried_at_the_next_refresh(
    scenario: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file replaced while it was listed raised out of the reload timer (and, in a CPU
    child, out of the batch about to be verified). The context in force stays, the reload
    metric says it may differ from the files while they cannot be listed, and a change
    made meanwhile is loaded at the next refresh."""
    trust_dir = shutil.copytree(scenario.trust_dir, tmp_path / "trust")
    loader = ContextLoader(
        isolated_settings(tmp_path, trust_dir=trust_dir, reference_dir=scenario.reference_dir)
    )
    good = loader.current()
    listing = FailsOnce(context_module.dir_fingerprint, FileNotFoundError("register.json"))
    monkeypatch.setattr(context_module, "dir_fingerprint", listing)
    assert loader.refresh() is False
    assert listing.failed
    assert loader.current() is good
    assert loader.reload_failed  # hocba_reload_failing: 1 while the files cannot be listed
    register = trust_dir / "register.json"
    register.write_bytes(register.read_bytes() + b"\n")  # a change made meanwhile
    assert loader.refresh() is True
    assert not loader.reload_failed
    assert loader.current() is not good
