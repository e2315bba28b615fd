"""The register of approved certificates (DESIGN §3).

A certificate that chains to a trusted root is still not allowed to send: the Ministry approves
each Department's signing certificate individually and can suspend or withdraw it without
waiting for the CA to revoke it. The register is a JSON object keyed by the leaf's SHA-256
fingerprint (lowercase hex), edited by operators, so it is validated strictly on load.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType

_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


class CertStatus(StrEnum):
    APPROVED = "approved"
    SUSPENDED = "suspended"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True, slots=True)
class RegisterEntry:
    department_code: str
    approved_on: date
    status: CertStatus = CertStatus.APPROVED


@dataclass(frozen=True, slots=True)
class Register:
    entries: Mapping[str, RegisterEntry] = field(default_factory=lambda: MappingProxyType({}))

    def get(self, fingerprint: str) -> RegisterEntry | None:
        return self.entries.get(fingerprint)


def _checked_fingerprint(fingerprint: str) -> str:
    if not _FINGERPRINT.fullmatch(fingerprint):
        raise ValueError(f"not a lowercase hex SHA-256 fingerprint: {fingerprint!r}")
    return fingerprint


def _frozen(entries: Mapping[str, RegisterEntry]) -> Register:
    return Register(MappingProxyType(dict(entries)))


def add(register: Register, fingerprint: str, entry: RegisterEntry) -> Register:
    """A new register with `entry` for `fingerprint` (replacing any previous entry)."""
    return _frozen({**register.entries, _checked_fingerprint(fingerprint): entry})


class WithdrawnError(ValueError):
    """A withdrawn certificate's status cannot change: withdrawal is for good (a lost key,
    a re-keyed Department); registering it again is a deliberate `add`."""


def set_status(register: Register, fingerprint: str, status: CertStatus) -> Register:
    """A new register with the status changed; an unknown fingerprint is a `KeyError`."""
    entry = register.entries[fingerprint]
    if entry.status is CertStatus.WITHDRAWN and status is not CertStatus.WITHDRAWN:
        raise WithdrawnError(f"{fingerprint} was withdrawn, for good")
    return add(
        register, fingerprint, RegisterEntry(entry.department_code, entry.approved_on, status)
    )


def load_register(path: Path) -> Register:
    raw = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: the register must be a JSON object")
    return _frozen(
        {
            _checked_fingerprint(fp): RegisterEntry(
                department_code=str(item["department_code"]),
                approved_on=date.fromisoformat(item["approved_on"]),
                status=CertStatus(item["status"]),
            )
            for fp, item in raw.items()
        }
    )


def save_register(path: Path, register: Register) -> None:
    """Write atomically: a worker reloading the trust dir must never read half a register."""
    body = {
        fp: {
            "department_code": e.department_code,
            "approved_on": e.approved_on.isoformat(),
            "status": e.status.value,
        }
        for fp, e in sorted(register.entries.items())
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(body, out, indent=2, ensure_ascii=False)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
