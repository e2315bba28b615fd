"""`hocba pki`: demo certificates for trying the pipeline and for the security tests."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from hocba.cli.errors import friendly
from hocba.cli.runtime import require_empty_dir
from hocba.cli.tables import print_whole

app = typer.Typer(
    help="Demo PKI: a root and issuing CA and Department certificates.", no_args_is_help=True
)


@app.command("demo")
@friendly
def demo(
    out_dir: Path = typer.Argument(Path("pki"), help="directory to write (becomes a trust dir)"),
    department: list[str] = typer.Option(
        ["SGD-2024-01"],
        "--department",
        "-d",
        help="Department code to issue a signing certificate for (repeatable)",
    ),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Create a demo trust dir: root CA, issuing CA, CRL, approved-certificate register,
    an RSA-2048 leaf per Department, ECDSA P-256 and Ed25519 leaves, and the bad leaves
    (expired, not yet valid, revoked, under a revoked intermediate, untrusted, SHA-1,
    RSA-1024, not for signing, unregistered) the security tests need.

    Then: HOCBA_TRUST_DIR=pki hocba worker, and sign with
    `hocba publish --key pki/leaves/<code>.key.pem --chain pki/leaves/<code>.chain.pem`.
    """
    from hocba.trust.pki import generate_demo_pki

    require_empty_dir(out_dir)
    pki = generate_demo_pki(out_dir, department)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    name: {
                        "key": str(f.key_path),
                        "chain": str(f.chain_path),
                        "department": f.department_code,
                        "algorithm": f.algorithm,
                        "fingerprint": f.fingerprint,
                    }
                    for name, f in pki.leaves.items()
                }
            )
        )
        return
    table = Table("leaf", "department", "algorithm", "key", "chain", title=f"demo PKI in {out_dir}")
    for name, f in pki.leaves.items():
        table.add_row(name, f.department_code, f.algorithm, str(f.key_path), str(f.chain_path))
    print_whole(table)  # paths are for copying: never cut or folded
