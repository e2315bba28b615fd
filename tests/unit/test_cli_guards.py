"""Mistakes an operator or vendor makes at the command line end in one line saying what to
do, exit code 2, and nothing changed, never a traceback or a silent success."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hocba.cli.main import app
from hocba.publishing import record_to_json
from hocba.reference.loader import default_departments, write_reference_dir
from hocba.reference.model import ReferenceData
from hocba.synth import demo_schools, generate_records
from hocba.trust import pki as demo
from hocba.trust.pki import DemoPki, generate_demo_pki

CODE = "SGD-2024-01"
ONE_RECORD = '{"school_code": "0100001", "class_name": "1A"}\n'


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


@pytest.fixture(scope="module")
def departments(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("reference")
    known = {d.code: d for d in default_departments()}
    write_reference_dir(directory, ReferenceData(departments=known))
    return directory


def test_trust_add_refuses_a_department_the_reference_data_does_not_know(
    pki: DemoPki, departments: Path, tmp_path: Path
) -> None:
    trust = shutil.copytree(pki.trust_dir, tmp_path / "trust")
    before = register(trust)
    leaf = str(pki.leaves[CODE].chain_path)
    env = {"HOCBA_TRUST_DIR": str(trust), "HOCBA_REFERENCE_DIR": str(departments)}
    code, out = hocba("trust", "add", leaf, "--department", "SGD-2024-O1", **env)
    assert code == 2 and "--department SGD-2024-O1 is not a Department in" in out
    assert "; did you mean SGD-2024-" in " ".join(out.split())
    assert register(trust) == before
    code, out = hocba("trust", "add", leaf, "--department", CODE, HOCBA_TRUST_DIR=str(trust))
    assert code == 0 and f"{CODE} was not checked against the Departments" in out


def test_a_withdrawn_mistaken_registration_may_be_made_again_for_the_right_department(
    pki: DemoPki, departments: Path, tmp_path: Path
) -> None:
    trust = shutil.copytree(pki.trust_dir, tmp_path / "trust")
    leaf = pki.leaves[CODE]  # registered for CODE: say that was the mistake
    env = {"HOCBA_TRUST_DIR": str(trust), "HOCBA_REFERENCE_DIR": str(departments)}
    right = "SGD-2024-15"
    code, out = hocba("trust", "add", str(leaf.chain_path), "--department", right, **env)
    assert code == 2 and "withdraw it first if that registration was a mistake" in out
    assert hocba("trust", "withdraw", leaf.fingerprint, **env)[0] == 0
    code, out = hocba("trust", "add", str(leaf.chain_path), "--department", right, **env)
    assert code == 0, out
    [entry] = [r for r in register(trust) if r["fingerprint"] == leaf.fingerprint]
    assert (entry["department_code"], entry["status"]) == (right, "approved")


def test_a_fingerprint_may_be_given_as_tools_print_it(pki: DemoPki, tmp_path: Path) -> None:
    trust = shutil.copytree(pki.trust_dir, tmp_path / "trust")
    fingerprint = pki.leaves[CODE].fingerprint
    shouting = ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
    code, out = hocba("trust", "suspend", shouting, HOCBA_TRUST_DIR=str(trust))
    assert code == 0, out
    assert {r["fingerprint"]: r["status"] for r in register(trust)}[fingerprint] == "suspended"


def test_trust_list_prints_fingerprints_whole_in_80_columns(pki: DemoPki) -> None:
    """As piped or on a small terminal: a fingerprint cut to `…` is refused by `suspend`."""
    done = subprocess.run(
        [sys.executable, "-m", "hocba.cli.main", "trust", "list"],
        env={"HOCBA_TRUST_DIR": str(pki.trust_dir), "PATH": "/usr/bin:/bin", "COLUMNS": "80"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "…" not in done.stdout
    assert f"│ {pki.leaves[CODE].fingerprint} │ {CODE} │" in done.stdout


def test_stats_refuses_two_output_formats(tmp_path: Path) -> None:
    code, out = hocba("stats", "--json", "--csv", HOCBA_DATA_DIR=str(tmp_path))
    assert code == 2
    assert out.splitlines() == ["error: --json and --csv are two output formats: give one of them"]
    assert list(tmp_path.iterdir()) == []


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
    leaf = pki.leaves[CODE]
    code, out = publish(tmp_path, lines, leaf.key_path, leaf.chain_path, CODE)
    assert code == 2 and problem in out


def publish(
    tmp_path: Path, lines: str, key: Path, chain: Path, sender: str, *args: str, **env: str
) -> tuple[int, str]:
    """`hocba publish` of `lines`, to a broker nobody listens on: each mistake must be
    found before anything is sent."""
    records = tmp_path / "records.jsonl"
    records.write_text(lines, encoding="utf-8")
    return hocba(
        "publish",
        str(records),
        "--key",
        str(key),
        "--chain",
        str(chain),
        "--sender",
        sender,
        *args,
        HOCBA_KAFKA_BOOTSTRAP="127.0.0.1:1",
        **env,
    )


def test_publish_refuses_a_batch_larger_than_the_worker_reads(pki: DemoPki, tmp_path: Path) -> None:
    """It would be sent, then dead-lettered as decode.too_large where the vendor cannot see."""
    schools = demo_schools(["01"], 1, former_to_current={"01": "01"})
    lines = "".join(
        json.dumps(record_to_json(r), ensure_ascii=False) + "\n"
        for r in generate_records(schools, count=30, seed=1)
    )
    leaf = pki.leaves[CODE]
    limit = {"HOCBA_MAX_MESSAGE_BYTES": "20000"}  # a class of 30 is ~30 KB; one record ~1 KB
    code, out = publish(tmp_path, lines, leaf.key_path, leaf.chain_path, CODE, **limit)
    assert code == 2
    assert "over the 20,000 the Ministry's worker reads" in " ".join(out.split())
    smaller = ("--batch-size", "5")
    fits = publish(tmp_path, lines, leaf.key_path, leaf.chain_path, CODE, *smaller, **limit)
    assert "cannot reach Kafka" in fits[1]  # past every check, to the broker


def test_publish_refuses_a_key_that_is_not_the_chains(pki: DemoPki, tmp_path: Path) -> None:
    chain = pki.leaves[demo.ECDSA].chain_path
    code, out = publish(tmp_path, ONE_RECORD, pki.leaves[CODE].key_path, chain, CODE)
    assert code == 2 and "is not the key of" in out


def test_publish_refuses_a_sender_that_is_not_the_certificates(
    pki: DemoPki, tmp_path: Path
) -> None:
    """Every message would be dead-lettered as verify.signer_not_authorized."""
    leaf = pki.leaves[CODE]
    code, out = publish(tmp_path, ONE_RECORD, leaf.key_path, leaf.chain_path, "SGD-2024-79")
    assert code == 2
    assert f"is {CODE}'s certificate (its common name), not --sender SGD-2024-79's" in " ".join(
        out.split()
    )


@pytest.mark.parametrize("command", ["inspect", "replay"])
def test_a_mistyped_reason_code_is_not_zero_dead_letters(command: str) -> None:
    code, out = hocba(
        "dlq", command, "--reason", "enrich.unknwn_school", HOCBA_KAFKA_BOOTSTRAP="127.0.0.1:1"
    )
    assert code == 2 and "is not a reason code" in out
    assert "enrich.unknown_school" in out  # the suggestion
