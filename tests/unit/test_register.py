"""The approved-certificate register: pure updates, strict loading, atomic saving."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from hocba.trust.register import (
    CertStatus,
    Register,
    RegisterEntry,
    WithdrawnError,
    add,
    load_register,
    save_register,
    set_status,
)

FP_A = "a" * 64
FP_B = "0123456789abcdef" * 4
ENTRY = RegisterEntry("SGD-2024-01", date(2024, 8, 12))


def test_add_and_set_status_return_new_registers() -> None:
    empty = Register()
    one = add(empty, FP_A, ENTRY)
    suspended = set_status(one, FP_A, CertStatus.SUSPENDED)
    assert empty.get(FP_A) is None
    assert one.get(FP_A) == ENTRY
    assert suspended.get(FP_A) == RegisterEntry(
        "SGD-2024-01", date(2024, 8, 12), CertStatus.SUSPENDED
    )


def test_a_withdrawn_certificate_stays_withdrawn_unless_added_again() -> None:
    withdrawn = set_status(add(Register(), FP_A, ENTRY), FP_A, CertStatus.WITHDRAWN)
    for status in (CertStatus.APPROVED, CertStatus.SUSPENDED):
        with pytest.raises(WithdrawnError):
            set_status(withdrawn, FP_A, status)
    assert add(withdrawn, FP_A, ENTRY).get(FP_A) == ENTRY  # a deliberate re-registration


def test_set_status_of_unknown_fingerprint_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        set_status(Register(), FP_A, CertStatus.WITHDRAWN)


@pytest.mark.parametrize("bad", ["A" * 64, "ab:cd", "a" * 63, ""])
def test_fingerprints_must_be_lowercase_hex_sha256(bad: str) -> None:
    with pytest.raises(ValueError, match="fingerprint"):
        add(Register(), bad, ENTRY)


def test_save_then_load_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "register.json"
    register = add(
        add(Register(), FP_A, ENTRY),
        FP_B,
        RegisterEntry("SGD-2025-79", date(2025, 7, 1), CertStatus.WITHDRAWN),
    )
    save_register(path, register)
    assert dict(load_register(path).entries) == dict(register.entries)
    assert json.loads(path.read_text())[FP_B] == {
        "department_code": "SGD-2025-79",
        "approved_on": "2025-07-01",
        "status": "withdrawn",
    }
    assert [p.name for p in tmp_path.iterdir()] == ["register.json"]  # no temp file left


def test_save_replaces_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "register.json"
    save_register(path, add(Register(), FP_A, ENTRY))
    save_register(path, add(Register(), FP_B, ENTRY))
    assert set(load_register(path).entries) == {FP_B}


@pytest.mark.parametrize(
    "body",
    [
        [],
        {FP_A: {"department_code": "X", "approved_on": "2024-13-01", "status": "approved"}},
        {FP_A: {"department_code": "X", "approved_on": "2024-01-01", "status": "maybe"}},
        {FP_A: {"department_code": "X", "status": "approved"}},
        {"not-hex": {"department_code": "X", "approved_on": "2024-01-01", "status": "approved"}},
    ],
)
def test_load_rejects_malformed_registers(tmp_path: Path, body: object) -> None:
    path = tmp_path / "register.json"
    path.write_text(json.dumps(body))
    with pytest.raises((ValueError, KeyError)):
        load_register(path)
