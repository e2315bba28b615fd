"""`hocba trust`: the register of approved Department certificates (DESIGN §3).

A running worker reloads the register within seconds, so `suspend` and `withdraw` take
effect without a restart.
"""

from __future__ import annotations

import difflib
import json
from datetime import UTC, date, datetime
from pathlib import Path

import typer
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from rich.table import Table

from hocba.cli.errors import UserError, friendly
from hocba.cli.runtime import load_settings
from hocba.cli.tables import print_whole
from hocba.reference.loader import load_reference_dir
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
    if not trust_dir.is_dir():
        raise UserError(
            f"HOCBA_TRUST_DIR {trust_dir} is not a directory: point it at the trust directory "
            "(anchors/, crls/, register.json), or make a demo one with `hocba pki demo`"
        )
    return trust_dir / "register.json"


def _normalized(fingerprint: str) -> str:
    """As tools print it: `AB:CD:…` or upper case is the same fingerprint."""
    return fingerprint.replace(":", "").strip().lower()


FINGERPRINT = typer.Argument(
    ...,
    help="the leaf's SHA-256 fingerprint (hex; case and colons do not matter)",
    callback=_normalized,
)


def _load(path: Path) -> Register:
    if not path.exists():
        return Register()
    try:
        return load_register(path)
    except ValueError as exc:
        raise UserError(f"{path} is not a valid register: {exc}") from None


def _certificate(cert_path: Path) -> x509.Certificate:
    data = cert_path.read_bytes()
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise UserError(f"{cert_path} is not a certificate (PEM or DER): {exc}") from None


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return bool(certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


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
    certificate = _certificate(cert)
    if _is_ca(certificate):
        raise UserError(
            f"{cert} is a CA certificate: the register holds Departments' signing certificates "
            "(CAs belong in anchors/ or intermediates/)"
        )
    try:
        approved = date.fromisoformat(approved_on)
    except ValueError:
        raise UserError(f"--approved-on {approved_on!r}: give a date as YYYY-MM-DD") from None
    fingerprint = certificate.fingerprint(hashes.SHA256()).hex()  # as pki and verify take it
    unchecked = _check_department(department)
    register = _load(path)
    known = register.get(fingerprint)
    if (
        known is not None
        and known.department_code != department
        and known.status is not CertStatus.WITHDRAWN  # a withdrawn mistake may be redone
    ):
        raise UserError(
            f"{fingerprint} is registered for {known.department_code}: a certificate signs for "
            "one Department; withdraw it first if that registration was a mistake"
        )
    save_register(path, add(register, fingerprint, RegisterEntry(department, approved)))
    typer.echo(f"approved {fingerprint} for {department}")
    if unchecked:
        typer.echo(f"warning: {unchecked}", err=True)
    if certificate.not_valid_after_utc < datetime.now(UTC):
        typer.echo(f"warning: it expired on {certificate.not_valid_after_utc:%Y-%m-%d}", err=True)


def _check_department(code: str) -> str | None:
    """Refuse a code the reference data does not know: a mistyped one would approve a
    certificate for no Department, and its messages would all be dead-lettered. Returns
    why it could not be checked, if so."""
    reference_dir = load_settings().reference_dir
    if reference_dir is None:
        return f"HOCBA_REFERENCE_DIR is not set: {code} was not checked against the Departments"
    known = load_reference_dir(reference_dir).departments
    if code not in known:
        close = difflib.get_close_matches(code, list(known), n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise UserError(f"--department {code} is not a Department in {reference_dir}{hint}")
    return None


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
def suspend(fingerprint: str = FINGERPRINT) -> None:
    """Stop accepting a certificate for now (reversible with `trust approve`)."""
    _change(fingerprint, CertStatus.SUSPENDED)


@app.command("withdraw")
@friendly
def withdraw(fingerprint: str = FINGERPRINT) -> None:
    """Stop accepting a certificate for good."""
    _change(fingerprint, CertStatus.WITHDRAWN)


@app.command("approve")
@friendly
def approve(fingerprint: str = FINGERPRINT) -> None:
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
    print_whole(table)


@app.command("show")
@friendly
def show(fingerprint: str = FINGERPRINT) -> None:
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
