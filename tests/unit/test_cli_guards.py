"""Mistakes an operator or vendor makes at the command line end in one line saying what to
do, exit code 2, and nothing changed, never a traceback or a silent success."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hocba.cli.main import app
from hocba.trust import pki as demo
from hocba.trust.pki import DemoPki, generate_demo_pki

CODE = "SGD-2024-01"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DemoPki:
    return generate_demo_pki(tmp_path_factory.mktemp("pki"), (CODE,))


def hocba(*args: str, **env: str) -> tuple[int, str]:
    """(exit code, stdout and stderr)."""
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.output


def register(trust_dir: Path) -> list[dict[str, str]]:
    code, out = hocba("trust", "list", "--json", HOCBA_TRUST_DIR=str(trust_dir))
    assert code == 0, out
    rows: list[dict[str, str]] = json.loads(out)
    return rows


def test_a_demo_pki_is_never_written_over_a_trust_dir(pki: DemoPki, tmp_path: Path) -> None:
    trust = shutil.copytree(pki.trust_dir, tmp_path / "trust")
    before = (trust / "register.json").read_bytes()
    code, out = hocba("pki", "demo", str(trust))
    assert code == 2 and "is not empty" in out
    assert (trust / "register.json").read_bytes() == before


def test_a_missing_trust_dir_is_named(tmp_path: Path) -> None:
    code, out = hocba("trust", "list", HOCBA_TRUST_DIR=str(tmp_path / "nowhere"))
    assert code == 2 and "is not a directory" in out


def test_trust_add_refuses_a_ca_and_another_departments_certificate(
    pki: DemoPki, tmp_path: Path
) -> None:
    trust = shutil.copytree(pki.trust_dir, tmp_path / "trust")
    env = {"HOCBA_TRUST_DIR": str(trust)}
    before = register(trust)
    code, out = hocba("trust", "add", str(pki.root_path), "--department", CODE, **env)
    assert code == 2 and "is a CA certificate" in out
    leaf = str(pki.leaves[CODE].chain_path)
    code, out = hocba("trust", "add", leaf, "--department", "SGD-2024-79", **env)
    assert code == 2 and f"is registered for {CODE}" in out
    assert register(trust) == before


def test_a_fingerprint_may_be_given_as_tools_print_it(pki: DemoPki, tmp_path: Path) -> None:
    trust = shutil.copytree(pki.trust_dir, tmp_path / "trust")
    fingerprint = pki.leaves[CODE].fingerprint
    shouting = ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
    code, out = hocba("trust", "suspend", shouting, HOCBA_TRUST_DIR=str(trust))
    assert code == 0, out
    assert {r["fingerprint"]: r["status"] for r in register(trust)}[fingerprint] == "suspended"


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        ("", "holds no records"),
        ('{"school_code": "0100001"}\n', "records.jsonl:1: no class_name"),
        ("not json\n", "records.jsonl:1: not a JSON record"),
        (
            '\n{"school_code": "0100001", "class_name": "1A"}\n',
            "records.jsonl:2: does not fit the StudentRecord schema: no value and no default for",
        ),
    ],
)
def test_publish_names_the_file_and_line_of_a_bad_record(
    pki: DemoPki, tmp_path: Path, lines: str, problem: str
) -> None:
    records = tmp_path / "records.jsonl"
    records.write_text(lines, encoding="utf-8")
    leaf = pki.leaves[CODE]
    code, out = hocba(
        "publish",
        str(records),
        "--key",
        str(leaf.key_path),
        "--chain",
        str(leaf.chain_path),
        "--sender",
        CODE,
        HOCBA_KAFKA_BOOTSTRAP="127.0.0.1:1",
    )
    assert code == 2 and problem in out


def test_publish_refuses_a_key_that_is_not_the_chains(pki: DemoPki, tmp_path: Path) -> None:
    records = tmp_path / "records.jsonl"
    records.write_text('{"school_code": "0100001", "class_name": "1A"}\n', encoding="utf-8")
    code, out = hocba(
        "publish",
        str(records),
        "--key",
        str(pki.leaves[CODE].key_path),
        "--chain",
        str(pki.leaves[demo.ECDSA].chain_path),
        "--sender",
        CODE,
        HOCBA_KAFKA_BOOTSTRAP="127.0.0.1:1",
    )
    assert code == 2 and "is not the key of" in out


@pytest.mark.parametrize("command", ["inspect", "replay"])
def test_a_mistyped_reason_code_is_not_zero_dead_letters(command: str) -> None:
    code, out = hocba(
        "dlq", command, "--reason", "enrich.unknwn_school", HOCBA_KAFKA_BOOTSTRAP="127.0.0.1:1"
    )
    assert code == 2 and "is not a reason code" in out
    assert "enrich.unknown_school" in out  # the suggestion
