#!/usr/bin/env python3
"""Set up and run the project with nothing but Python 3.11+: `python3 dev.py demo|test`.

Creates `.venv`, installs the project into it (again only when pyproject.toml changed), then
runs the demo or the checks. `.ci/run` calls `python3 dev.py test`, the same as a developer.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".hocba-installed"


def run(*args: str | Path) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    subprocess.run([str(a) for a in args], cwd=ROOT, check=True)


def setup() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this file runs under any python3
        sys.exit(f"hocba needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not (BIN / "python").exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    pyproject = ROOT / "pyproject.toml"
    if not STAMP.exists() or STAMP.stat().st_mtime < pyproject.stat().st_mtime:
        run(BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip")
        run(BIN / "python", "-m", "pip", "install", "--quiet", "-e", ".[dev]")
        STAMP.touch()


def main(argv: list[str]) -> None:
    command = argv[0] if argv else "help"
    if command == "demo":
        setup()
        run(BIN / "hocba", "demo", *argv[1:])
    elif command == "test":
        setup()
        run(BIN / "ruff", "check", "src", "tests", "bench", "dev.py")
        run(BIN / "ruff", "format", "--check", "src", "tests", "bench", "dev.py")
        run(BIN / "mypy")
        run(BIN / "pytest", *argv[1:])
    elif command == "setup":
        setup()
    else:
        print(__doc__)
        print("commands: demo [hocba demo options] | test [pytest options] | setup")
        sys.exit(0 if command == "help" else 2)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except subprocess.CalledProcessError as exc:
        sys.exit(exc.returncode)
