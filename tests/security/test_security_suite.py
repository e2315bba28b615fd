"""The security suite: every hostile message, through the real broker and worker, is refused.

One worker run carries one message per case of `messages.EXPECTED`: each bad one must be
dead-lettered, unchanged, with its own reason code; each good one must land; and the worker
must survive them all. The last tests check how the trust store reads CRL files.
"""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from hocba.kafka.broker import EmbeddedBroker
from hocba.kafka.read import TopicRecord
from hocba.scenario import Scenario, build_scenario
from hocba.trust.register import CertStatus, load_register, save_register, set_status
from hocba.trust.store import load_trust_store
from tests.conftest import isolated_settings
from tests.integration.harness import Run, load_reference, query, run_pipeline
from tests.security.messages import (
    BAD,
    DETAIL,
    EXPECTED,
    GOOD,
    PROVINCES,
    SUSPENDED,
    Case,
    build_cases,
    leaf_fingerprint,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return build_scenario(
        tmp_path_factory.mktemp("security"), records=90, provinces=PROVINCES, schools_per_province=1
    )


@pytest.fixture(scope="module")
def cases(scenario: Scenario) -> dict[str, Case]:
    return build_cases(scenario)


@pytest.fixture(scope="module")
def run(
    broker: EmbeddedBroker,
    scenario: Scenario,
    cases: dict[str, Case],
    tmp_path_factory: pytest.TempPathFactory,
) -> Run:
    register_path = scenario.trust_dir / "register.json"
    suspended = leaf_fingerprint(scenario.signers[SUSPENDED])
    register = set_status(load_register(register_path), suspended, CertStatus.SUSPENDED)
    save_register(register_path, register)
    data_dir = tmp_path_factory.mktemp("data")
    settings = isolated_settings(
        data_dir, trust_dir=scenario.trust_dir, reference_dir=scenario.reference_dir
    )
    load_reference(settings, scenario.reference)
    messages = [case.outgoing for case in cases.values()]
    return run_pipeline(settings, broker.bootstrap, messages, data_dir / "worker.log")


@pytest.fixture(scope="module")
def dead_letters(run: Run) -> dict[str, TopicRecord]:
    return {(d.key or b"").decode(): d for d in run.dead_letters}


@pytest.mark.parametrize("name", BAD)
def test_bad_message_is_dead_lettered_with_its_reason(
    name: str, dead_letters: dict[str, TopicRecord], cases: dict[str, Case]
) -> None:
    letter = dead_letters.get(name)
    assert letter is not None, f"{name} was not dead-lettered"
    expected = EXPECTED[name]
    assert expected is not None
    detail = letter.headers["hocba.error.detail"]
    assert letter.headers["hocba.error.code"] == expected.value, detail
    assert DETAIL.get(name, "") in detail
    assert letter.headers["hocba.error.stage"] == expected.stage.value
    assert letter.value == cases[name].value


@pytest.mark.parametrize("name", GOOD)
def test_good_message_lands(
    name: str, run: Run, dead_letters: dict[str, TopicRecord], cases: dict[str, Case]
) -> None:
    assert name not in dead_letters
    case = cases[name]
    rows = query(
        run.settings,
        "SELECT count() AS n FROM {db}.records FINAL"
        f" WHERE submission_id = '{case.submission_id}'",
    )
    assert rows == [{"n": case.records_to_land}]


def test_each_bad_message_is_dead_lettered_once_and_nothing_else(run: Run) -> None:
    keys = Counter((d.key or b"").decode() for d in run.dead_letters)
    assert keys == Counter(BAD)


def test_only_the_good_messages_land(run: Run, cases: dict[str, Case]) -> None:
    rows = query(run.settings, "SELECT DISTINCT submission_id AS sid FROM {db}.records")
    assert {r["sid"] for r in rows} == {cases[name].submission_id for name in GOOD}


def test_the_worker_stayed_up(run: Run) -> None:
    assert run.worker_exit_code == 0


def test_crls_may_be_der(scenario: Scenario, tmp_path: Path) -> None:
    trust_dir = shutil.copytree(scenario.trust_dir, tmp_path / "trust")
    for pem in (trust_dir / "crls").glob("*.pem"):
        crl = x509.load_pem_x509_crl(pem.read_bytes())
        pem.with_suffix(".der").write_bytes(crl.public_bytes(Encoding.DER))
        pem.unlink()
    assert len(load_trust_store(trust_dir).crls) == 2


def test_an_expired_crl_is_reported_not_silent(
    scenario: Scenario, caplog: pytest.LogCaptureFixture
) -> None:
    fresh = load_trust_store(scenario.trust_dir)
    assert fresh.expired_crls == ()
    last = max(crl.next_update_utc or datetime.max.replace(tzinfo=UTC) for crl in fresh.crls)
    with caplog.at_level(logging.WARNING, logger="hocba.trust"):
        stale = load_trust_store(scenario.trust_dir, now=last + timedelta(seconds=1))
    issuers = tuple(crl.issuer.rfc4514_string() for crl in fresh.crls)
    assert stale.expired_crls == issuers
    assert all(issuer in caplog.text for issuer in issuers)
    assert len(stale.crls) == len(fresh.crls)  # still applied: stale is better than none
