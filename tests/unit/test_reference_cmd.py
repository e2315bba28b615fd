"""`hocba reference load|show` on a real directory and a real chDB store (no broker: the
topics are covered by tests/integration/test_reference_load.py), and the pure publication
diff: what a load sends to the compacted topics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from hocba.cli.main import app
from hocba.reference.loader import load_reference_dir
from hocba.reference.provinces import former_to_current, provinces_2024, provinces_2025
from hocba.reference.publish import changes, reference_entries
from hocba.settings import Settings
from hocba.store.factory import opened_store

HEADER = "code,name,levels,school_type,province_code_2024,province_code_2025,commune_code\n"
TWO_SCHOOLS = HEADER + "S01,TH Hà Nội,PRIMARY,public,01,,\nS15,TH Yên Bái,PRIMARY,public,15,,\n"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str | None]:
    return {
        "HOCBA_REFERENCE_DIR": str(tmp_path / "reference"),
        "HOCBA_DATA_DIR": str(tmp_path / "data"),
        "HOCBA_DATABASE": "hocba_reference_cmd",
        "HOCBA_KAFKA_BOOTSTRAP": None,
        "HOCBA_CLICKHOUSE_URL": None,
    }


def hocba(env: dict[str, str | None], *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def loaded(env: dict[str, str | None], *args: str) -> dict[str, object]:
    result = hocba(env, "reference", "load", *args, "--json")
    assert result.exit_code == 0, result.output
    parsed: dict[str, object] = json.loads(result.stdout)
    return parsed


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_merge_by_code_then_replace(tmp_path: Path, env: dict[str, str | None]) -> None:
    first = loaded(env, str(write(tmp_path / "in" / "schools.csv", TWO_SCHOOLS)), "--create")
    assert (first["kind"], first["rows"], first["published"]) == ("schools", 2, None)
    assert first["mirror"] == "reference tables replaced"
    renamed = HEADER + "S01,TH Nguyễn Trãi,PRIMARY,public,01,,\n"
    update = write(tmp_path / "in" / "update.csv", renamed)

    merged = loaded(env, str(update), "--kind", "schools")
    schools = load_reference_dir(tmp_path / "reference").schools
    assert merged["total"] == {"schools": 2, "departments": 0, "expected_enrollment": 0}
    assert (schools["S01"].name, schools["S15"].name) == ("TH Nguyễn Trãi", "TH Yên Bái")

    assert stored_schools(env) == [("S01", "TH Nguyễn Trãi"), ("S15", "TH Yên Bái")]

    loaded(env, str(update), "--kind", "schools", "--replace")
    assert list(load_reference_dir(tmp_path / "reference").schools) == ["S01"]
    assert stored_schools(env) == [("S01", "TH Nguyễn Trãi")]


def stored_schools(env: dict[str, str | None]) -> list[tuple[str, str]]:
    """What ClickHouse enriches records from: the load must have replaced it, not only the
    directory."""
    data_dir, database = Path(str(env["HOCBA_DATA_DIR"])), str(env["HOCBA_DATABASE"])
    settings = Settings(data_dir=data_dir, database=database, clickhouse_url=None)
    with opened_store(settings) as store:
        rows = store.query(f"SELECT code, name FROM {settings.database}.schools ORDER BY code")
    return [(row["code"], row["name"]) for row in rows]


def test_a_broker_that_cannot_be_reached_says_what_did_change(
    tmp_path: Path, env: dict[str, str | None]
) -> None:
    schools = write(tmp_path / "in" / "schools.csv", TWO_SCHOOLS)
    result = hocba(
        {**env, "HOCBA_KAFKA_BOOTSTRAP": "127.0.0.1:1"},
        "reference",
        "load",
        str(schools),
        "--create",
    )
    assert result.exit_code == 2
    assert "and ClickHouse are updated, but publishing to Kafka failed" in result.output
    assert "cannot reach Kafka at 127.0.0.1:1" in result.output
    assert list(load_reference_dir(tmp_path / "reference").schools) == ["S01", "S15"]


def test_a_bad_row_names_the_operators_file_and_line_and_changes_nothing(
    tmp_path: Path, env: dict[str, str | None]
) -> None:
    bad = write(tmp_path / "in" / "schools.csv", TWO_SCHOOLS + "S99,TH X,PRIMARY,public,99,,\n")
    result = hocba(env, "reference", "load", str(bad), "--create")
    assert result.exit_code == 2
    assert f"{bad}:4: unknown province_code_2024 '99'" in " ".join(result.output.split())
    assert not (tmp_path / "reference").exists()


def test_a_missing_directory_is_refused_without_create(
    tmp_path: Path, env: dict[str, str | None]
) -> None:
    """A mistyped HOCBA_REFERENCE_DIR would have been created, holding this one file, and
    every Department and expected enrolment replaced with nothing."""
    result = hocba(
        env, "reference", "load", str(write(tmp_path / "in" / "schools.csv", TWO_SCHOOLS))
    )
    assert result.exit_code == 2
    assert "does not exist: check the variable, or pass --create" in " ".join(result.output.split())
    assert not (tmp_path / "reference").exists()
    assert not (tmp_path / "data").exists()  # nor was the store touched


def test_dry_run_validates_only_and_the_kind_comes_from_the_name(
    tmp_path: Path, env: dict[str, str | None]
) -> None:
    dry = loaded(env, str(write(tmp_path / "in" / "schools-2025.csv", TWO_SCHOOLS)), "--dry-run")
    assert (dry["kind"], dry["rows"]) == ("schools", 2)
    assert not (tmp_path / "reference").exists()
    nameless = hocba(env, "reference", "load", str(write(tmp_path / "list.csv", TWO_SCHOOLS)))
    assert nameless.exit_code == 2 and "--kind" in nameless.output


def test_show_counts_and_samples_one_kind(tmp_path: Path, env: dict[str, str | None]) -> None:
    loaded(env, str(write(tmp_path / "in" / "schools.csv", TWO_SCHOOLS)), "--create")
    result = hocba(env, "reference", "show", "--kind", "schools", "--sample", "1", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["counts"]["schools"] == 2 and shown["counts"]["provinces_2025"] == 34
    assert shown["sample"] == {
        "schools": [
            {
                "code": "S01",
                "name": "TH Hà Nội",
                "levels": "PRIMARY",
                "school_type": "public",
                "province_code_2024": "01",
                "province_code_2025": "01",
                "commune_code": "",
            }
        ]
    }


def test_province_keys_name_their_edition_because_codes_collide() -> None:
    ref = load_reference_dir(None)
    provinces = reference_entries(ref)["provinces"]
    assert len(provinces) == len(provinces_2024()) + len(provinces_2025())
    yen_bai, lao_cai = json.loads(provinces[b"2024-15"]), json.loads(provinces[b"2025-15"])
    assert (yen_bai["name"], lao_cai["name"]) == ("Yên Bái", "Lào Cai")
    assert json.loads(provinces[b"2024-10"])["province_code_2025"] == former_to_current()["10"]


def test_changes_send_only_differences_and_tombstone_removed_keys() -> None:
    current = {b"S01": b'{"v": 1}', b"S02": b'{"v": 2}', b"S03": b'{"v": 3}'}
    wanted = {b"S01": b'{"v": 1}', b"S02": b'{"v": 20}', b"S04": b'{"v": 4}'}
    assert sorted(changes(current, wanted), key=lambda c: c[0]) == [
        (b"S02", b'{"v": 20}'),
        (b"S03", None),
        (b"S04", b'{"v": 4}'),
    ]
    assert changes(wanted, wanted) == ()
