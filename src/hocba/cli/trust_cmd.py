"""`hocba trust`: the register of approved Department certificates (DESIGN §3).

A running worker reloads the register within seconds, so `suspend` and `withdraw` take
effect without a restart.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

import typer
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from rich.console import Console
from rich.table import Table

from hocba.cli.errors import UserError, friendly
from hocba.cli.runtime import load_settings
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

app = typer.Typer(
    help="Approve, suspend and withdraw Department certificates.", no_args_is_help=True
)


def _register_path() -> Path:
    trust_dir = load_settings().trust_dir
    if trust_dir is None:
        raise UserError("set HOCBA_TRUST_DIR to the trust directory (holds register.json)")
    return trust_dir / "register.json"


def _load(path: Path) -> Register:
    return load_register(path) if path.exists() else Register()


def _fingerprint(cert_path: Path) -> str:
    data = cert_path.read_bytes()
    cert = (
        x509.load_pem_x509_certificate(data)
        if b"-----BEGIN" in data
        else x509.load_der_x509_certificate(data)
    )
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


@app.command("add")
@friendly
def add_cmd(
    cert: Path = typer.Argument(
        ...,
        exists=True,
        help="the leaf certificate (PEM or DER; a chain file's first certificate is used)",
    ),
    department: str = typer.Option(..., help="Department code, e.g. SGD-2024-01"),
    approved_on: str = typer.Option(date.today().isoformat(), help="approval date (ISO)"),
) -> None:
    """Approve a Department's signing certificate.

    Example: hocba trust add pki/leaves/SGD-2024-01.chain.pem --department SGD-2024-01
    """
    path = _register_path()
    fingerprint = _fingerprint(cert)
    entry = RegisterEntry(department, date.fromisoformat(approved_on))
    save_register(path, add(_load(path), fingerprint, entry))
    typer.echo(f"approved {fingerprint} for {department}")


def _change(fingerprint: str, status: CertStatus) -> None:
    path = _register_path()
    register = _load(path)
    if fingerprint not in register.entries:
        raise UserError(f"{fingerprint} is not in {path}; see `hocba trust list`")
    try:
        save_register(path, set_status(register, fingerprint, status))
    except WithdrawnError as exc:
        raise UserError(
            f"{exc}: a re-keyed Department's new certificate is approved with `hocba trust "
            "add`; to undo a withdrawal made by mistake, `hocba trust add` this one again"
        ) from None
    typer.echo(f"{fingerprint} is now {status.value}")


@app.command("suspend")
@friendly
def suspend(fingerprint: str = typer.Argument(..., help="leaf SHA-256 (hex)")) -> None:
    """Stop accepting a certificate for now (reversible with `trust approve`)."""
    _change(fingerprint, CertStatus.SUSPENDED)


@app.command("withdraw")
@friendly
def withdraw(fingerprint: str = typer.Argument(..., help="leaf SHA-256 (hex)")) -> None:
    """Stop accepting a certificate for good."""
    _change(fingerprint, CertStatus.WITHDRAWN)


@app.command("approve")
@friendly
def approve(fingerprint: str = typer.Argument(..., help="leaf SHA-256 (hex)")) -> None:
    """Accept a suspended certificate again (a withdrawn one stays withdrawn)."""
    _change(fingerprint, CertStatus.APPROVED)


@app.command("list")
@friendly
def list_cmd(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Every registered certificate with its Department, approval date and status."""
    register = _load(_register_path())
    rows = [
        {
            "fingerprint": fp,
            "department_code": e.department_code,
            "approved_on": e.approved_on.isoformat(),
            "status": e.status.value,
        }
        for fp, e in sorted(register.entries.items(), key=lambda i: i[1].department_code)
    ]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    table = Table("fingerprint", "department", "approved on", "status")
    for row in rows:
        table.add_row(row["fingerprint"], row["department_code"], row["approved_on"], row["status"])
    Console().print(table)


@app.command("show")
@friendly
def show(fingerprint: str = typer.Argument(..., help="leaf SHA-256 (hex)")) -> None:
    """One certificate's register entry."""
    entry = _load(_register_path()).get(fingerprint)
    if entry is None:
        raise UserError(f"{fingerprint} is not registered")
    typer.echo(
        json.dumps(
            {
                "fingerprint": fingerprint,
                "department_code": entry.department_code,
                "approved_on": entry.approved_on.isoformat(),
                "status": entry.status.value,
            }
        )
    )
