"""End to end on the real broker and chDB: signed batches land, bad messages dead-letter."""

from __future__ import annotations

import asyncio

import pytest

from hocba.kafka.broker import EmbeddedBroker
from hocba.kafka.producer import Outgoing
from hocba.kafka.read import read_topic
from hocba.scenario import Scenario, bad_messages, build_scenario, signed_messages
from hocba.store.factory import opened_store
from hocba.summary import national_summary
from tests.conftest import isolated_settings
from tests.integration.harness import Run, query, rows_landed_again, run_pipeline

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return build_scenario(
        tmp_path_factory.mktemp("scenario"),
        records=400,
        provinces=("01", "74", "79"),  # Bình Dương (74) is part of TP. Hồ Chí Minh (79) since 2025
        schools_per_province=3,
    )


@pytest.fixture(scope="module")
def published(scenario: Scenario) -> tuple[list[Outgoing], list[Outgoing]]:
    good = signed_messages(scenario, batch_size=25)
    return good, bad_messages(scenario, good)


@pytest.fixture(
    scope="module",
    params=[(0, False), (2, False), (0, True)],
    ids=["one-worker", "two-verifiers+lander", "one-worker+faust-dedupe-table"],
)
def run(
    request: pytest.FixtureRequest,
    broker: EmbeddedBroker,
    scenario: Scenario,
    published: tuple[list[Outgoing], list[Outgoing]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Run:
    data_dir = tmp_path_factory.mktemp("data")
    verifiers, dedupe_table = request.param
    settings = isolated_settings(
        data_dir,
        trust_dir=scenario.trust_dir,
        reference_dir=scenario.reference_dir,
        dedupe_table=dedupe_table,
    )
    # No `load_reference`: every landing role must copy the reference directory into the
    # store itself, since ClickHouse enriches the records from those tables.
    good, bad = published
    return run_pipeline(
        settings, broker.bootstrap, [*good, *bad], data_dir / "worker.log", verifiers=verifiers
    )


def test_every_good_record_lands_once(run: Run, scenario: Scenario) -> None:
    rows = query(
        run.settings,
        "SELECT count() AS n, uniqExact(student_key) AS students FROM {db}.records FINAL",
    )
    landed_from_the_mixed_batch = 2
    assert rows[0]["n"] == len(scenario.records) + landed_from_the_mixed_batch
    assert rows[0]["students"] == rows[0]["n"]
    assert rows_landed_again(run.settings) == 0


def test_the_dedupe_table_remembers_each_submission_landed_completely(
    run: Run, broker: EmbeddedBroker, published: tuple[list[Outgoing], list[Outgoing]]
) -> None:
    """Layer 1 (DESIGN §5) on Faust's table: what it remembers is in its changelog topic.
    The record lookup would count a re-delivery the same way, so only this shows it ran."""
    if not run.settings.dedupe_table:
        pytest.skip("the in-process memory of landed submissions: tests/integration/test_lander")
    group = run.settings.consumer_group
    changelog = f"{group}-{group}-landed-submissions-changelog"
    remembered = {r.key for r in asyncio.run(read_topic(broker.bootstrap, changelog))}
    good, _ = published
    assert remembered == {m.key for m in good}


def test_records_are_enriched_with_both_province_editions(run: Run) -> None:
    rows = query(
        run.settings,
        "SELECT province_code_2024 AS p24, province_name_2024 AS name24,"
        " province_code_2025 AS p25, province_name_2025 AS name25"
        " FROM {db}.records FINAL GROUP BY ALL ORDER BY p24",
    )
    assert [tuple(r.values()) for r in rows] == [
        ("01", "Hà Nội", "01", "Hà Nội"),
        ("74", "Bình Dương", "79", "TP. Hồ Chí Minh"),
        ("79", "TP. Hồ Chí Minh", "79", "TP. Hồ Chí Minh"),
    ]


def test_bad_messages_are_dead_lettered_with_reason_and_original_bytes(
    run: Run, published: tuple[list[Outgoing], list[Outgoing]]
) -> None:
    _, bad = published
    by_key = {d.key: d for d in run.dead_letters}
    assert set(by_key) == {b"garbage", b"tampered", b"mixed"}
    assert by_key[b"garbage"].headers["hocba.error.code"] == "decode.not_avro"
    assert by_key[b"tampered"].headers["hocba.error.code"] == "verify.signature_invalid"
    assert by_key[b"tampered"].headers["hocba.error.stage"] == "verify"
    originals = {m.key: m.value for m in bad}
    for key, letter in by_key.items():
        assert letter.value == originals[key]
        for header in (
            "hocba.source.topic",
            "hocba.source.partition",
            "hocba.source.offset",
            "hocba.failed_at",
            "hocba.worker",
            "hocba.replay.count",
        ):
            assert header in letter.headers


def test_one_invalid_record_lands_the_rest_and_names_the_record(run: Run) -> None:
    mixed = next(d for d in run.dead_letters if d.key == b"mixed")
    assert mixed.headers["hocba.error.code"] == "validate.grade_level"
    assert mixed.headers["hocba.error.records"] == '[{"index": 0, "code": "validate.grade_level"}]'
    audit = query(
        run.settings,
        "SELECT outcome, records_total, records_failed,"
        " records_duplicate FROM {db}.submissions"
        " WHERE kafka_offset = "
        + mixed.headers["hocba.source.offset"]
        + " AND kafka_partition = "
        + mixed.headers["hocba.source.partition"],
    )
    assert audit == [
        {"outcome": "partial", "records_total": 3, "records_failed": 1, "records_duplicate": 0}
    ]


def test_exact_duplicate_message_is_counted_not_dead_lettered(run: Run) -> None:
    outcomes = query(
        run.settings,
        "SELECT outcome, count() AS n FROM {db}.submissions GROUP BY outcome ORDER BY outcome",
    )
    assert {r["outcome"]: r["n"] for r in outcomes}["duplicate"] == 1


def test_worker_stops_cleanly(run: Run) -> None:
    assert run.worker_exit_code == 0


def test_the_demo_summary_adds_up(run: Run, scenario: Scenario) -> None:
    with opened_store(run.settings) as store:
        summary = national_summary(store, run.settings.database)
    landed = len(scenario.records) + 2  # and the mixed batch's two valid records
    counted = query(run.settings, "SELECT count() AS n FROM {db}.records FINAL")[0]["n"]
    assert summary.records == landed == counted
    assert [r["province_code_2024"] for r in summary.by_province_level] == ["01", "74", "79"]
    assert {r["code"]: r["messages"] for r in summary.dead_letters} == {
        "decode.not_avro": 1,
        "verify.signature_invalid": 1,
        "validate.grade_level": 1,
    }
    outcomes = {r["outcome"]: r for r in summary.outcomes}
    assert sum(r["records_landed"] for r in outcomes.values()) == landed
    assert outcomes["duplicate"]["messages"] == 1
