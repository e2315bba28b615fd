"""Reference files (schools, departments, expected enrollment) in, `ReferenceData` out.

Operators edit these files by hand or export them from spreadsheets, so every row is checked
and the first bad one stops the load with its file and line: a wrong province code would
otherwise mis-attribute records silently in every national figure. Column names are the
field names of the dataclasses in `model.py`, so a file written here loads back unchanged.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from hocba.pipeline.rules_data import LEVEL_CODES
from hocba.pipeline.validate import school_year_problem
from hocba.reference.model import Department, ExpectedEnrollment, ReferenceData, School
from hocba.reference.provinces import former_to_current, provinces_2024, provinces_2025

T = TypeVar("T")
Row = Mapping[str, Any]

SCHOOL_TYPES = frozenset({"public", "private"})
_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_EDITIONS = {
    2024: (provinces_2024, date(2004, 1, 1), date(2025, 6, 30)),
    2025: (provinces_2025, date(2025, 7, 1), None),
}


class ReferenceDataError(ValueError):
    """A reference file that cannot be used; the message names the file and line."""


def _rows(path: Path) -> Iterator[tuple[str, object]]:
    """(location, row) pairs; CSV skips `#` comment lines but keeps their line numbers."""
    text = path.read_text(encoding="utf-8-sig")
    location = str(path)
    try:
        if path.suffix.lower() == ".csv":
            reader = csv.reader("" if line.startswith("#") else line for line in text.splitlines())
            header = next((cells for cells in reader if cells), [])
            for cells in filter(None, reader):
                location = f"{path}:{reader.line_num}"
                if len(cells) != len(header):
                    raise ValueError(f"{len(cells)} cells under {len(header)} columns")
                yield location, dict(zip(header, cells, strict=True))
        elif text.lstrip().startswith("["):
            for number, row in enumerate(json.loads(text), 1):
                yield f"{path}: item {number}", row
        else:
            for number, line in enumerate(text.splitlines(), 1):
                location = f"{path}:{number}"
                if line.strip():
                    yield location, json.loads(line)
    except ValueError as exc:
        raise ReferenceDataError(f"{location}: {exc}") from exc


def _text(row: Row, key: str, default: str | None = None) -> str:
    value = row.get(key)
    text = "" if value is None else str(value).strip()
    if not text and default is None:
        raise ValueError(f"missing {key}")
    return text or default or ""


def _one_of(row: Row, key: str, allowed: Iterable[str], default: str | None = None) -> str:
    text = _text(row, key, default)
    # Spreadsheets turn province code "01" into the number 1: restore the leading zero.
    value = text.zfill(2) if text.isdigit() else text
    if value not in allowed:
        raise ValueError(f"unknown {key} {text!r}")
    return value


def _bool(row: Row, key: str, default: bool) -> bool:
    text = _text(row, key, str(default)).lower()
    if text not in _BOOLS:
        raise ValueError(f"{key} must be true or false, not {text!r}")
    return _BOOLS[text]


def _int(row: Row, key: str, low: int, high: int) -> int:
    text = _text(row, key)
    if not text.isdigit():
        raise ValueError(f"{key} {text!r} is not a whole number")
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{key} {value} outside {low}..{high}")
    return value


def _date(row: Row, key: str) -> date | None:
    text = _text(row, key, "")
    return date.fromisoformat(text) if text else None


def _school(row: Row) -> School:
    code_2024 = _one_of(row, "province_code_2024", provinces_2024())
    current = former_to_current()[code_2024]
    code_2025 = _one_of(row, "province_code_2025", provinces_2025(), default=current)
    if code_2025 != current:
        raise ValueError(f"province_code_2025 {code_2025}: former {code_2024} became {current}")
    levels = row.get("levels")
    names = levels if isinstance(levels, list) else _text(row, "levels").split("|")
    return School(
        code=_text(row, "code"),
        name=_text(row, "name"),
        levels=tuple(_one_of({"levels": name}, "levels", LEVEL_CODES) for name in names),
        school_type=_one_of(row, "school_type", SCHOOL_TYPES),
        province_code_2024=code_2024,
        province_code_2025=code_2025,
        commune_code=_text(row, "commune_code", ""),
    )


def _department(row: Row) -> Department:
    edition = _int(row, "edition", 2024, 2025)
    valid_from, valid_to = _date(row, "valid_from"), _date(row, "valid_to")
    if valid_from is None or (valid_to is not None and valid_to < valid_from):
        raise ValueError("valid_from is missing or after valid_to")
    # Dates reaching into another edition's period would list the Department in both
    # editions' reports, its province counted twice.
    _, begins, ends = _EDITIONS[edition]
    if ends is not None and (valid_to is None or valid_to > ends):
        raise ValueError(f"edition {edition} ended on {ends}: valid_to must be on or before it")
    if edition > min(_EDITIONS) and valid_from < begins:
        raise ValueError(f"edition {edition} began on {begins}: valid_from must be on or after it")
    return Department(
        code=_text(row, "code"),
        name=_text(row, "name"),
        edition=edition,
        province_code=_one_of(row, "province_code", _EDITIONS[edition][0]()),
        valid_from=valid_from,
        valid_to=valid_to,
        account_registered=_bool(row, "account_registered", True),
        certificate_approved=_bool(row, "certificate_approved", False),
    )


def _expected(row: Row) -> ExpectedEnrollment:
    school_year = _text(row, "school_year")
    problem = school_year_problem(school_year)
    if problem:
        raise ValueError(problem)
    return ExpectedEnrollment(
        province_code_2024=_one_of(row, "province_code_2024", provinces_2024()),
        school_year=school_year,
        grade=_int(row, "grade", 1, 12),
        expected=_int(row, "expected", 0, 10_000_000),
    )


KINDS = ("schools", "departments", "expected_enrollment")


def _files(directory: Path | None, stem: str) -> list[Path]:
    """`stem.csv` or `stem.json` in `directory` (neither: none); both is ambiguous."""
    candidates = [] if directory is None else [directory / f"{stem}.{e}" for e in ("csv", "json")]
    paths = [p for p in candidates if p.is_file()]
    if len(paths) > 1:
        raise ReferenceDataError(f"{directory}: both {stem}.csv and {stem}.json; keep one")
    return paths


def _load(paths: list[Path], parse: Callable[[Row], T], key: Callable[[T], Hashable]) -> list[T]:
    """Every row of `paths`, parsed; duplicate keys refused."""
    items: dict[Hashable, T] = {}
    for location, row in (pair for path in paths for pair in _rows(path)):
        try:
            if not isinstance(row, Mapping):
                raise ValueError("expected an object")
            item = parse(row)
            if key(item) in items:
                raise ValueError(f"duplicate {key(item)}")
        except ValueError as exc:
            raise ReferenceDataError(f"{location}: {exc}") from exc
        items[key(item)] = item
    return list(items.values())


def _reference(files: Mapping[str, list[Path]]) -> ReferenceData:
    schools = _load(files.get("schools", []), _school, lambda s: s.code)
    departments = _load(files.get("departments", []), _department, lambda d: d.code)
    expected = _load(
        files.get("expected_enrollment", []),
        _expected,
        lambda e: (e.province_code_2024, e.school_year, e.grade),
    )
    return ReferenceData(
        provinces_2024=provinces_2024(),
        provinces_2025=provinces_2025(),
        former_to_current=former_to_current(),
        schools={s.code: s for s in schools},
        departments={d.code: d for d in departments},
        expected_enrollment=tuple(expected),
    )


def load_reference_dir(path: Path | None) -> ReferenceData:
    """The built-in provinces plus whatever reference files `path` holds (None: none)."""
    if path is not None and not path.is_dir():
        raise ReferenceDataError(f"{path}: not a directory")
    return _reference({stem: _files(path, stem) for stem in KINDS})


def load_reference_file(path: Path, kind: str) -> ReferenceData:
    """One file read as `kind` (one of `KINDS`) whatever its name, with the directory's checks,
    so `hocba reference load` can refuse it before the workers' directory is touched."""
    if kind not in KINDS:
        raise ReferenceDataError(f"{path}: kind must be one of {', '.join(KINDS)}, not {kind}")
    return _reference({kind: [path]})


def _cell(value: object) -> str:
    if isinstance(value, tuple):
        return "|".join(value)
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)


def _write_csv(path: Path, items: Sequence[Any], cls: type) -> None:
    names = [f.name for f in dataclasses.fields(cls)]
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(names)
        writer.writerows([_cell(getattr(item, n)) for n in names] for item in items)


def write_reference_dir(path: Path, ref: ReferenceData) -> None:
    """Write schools, departments and expected enrollment as CSV that loads back unchanged."""
    path.mkdir(parents=True, exist_ok=True)
    _write_csv(path / "schools.csv", list(ref.schools.values()), School)
    _write_csv(path / "departments.csv", list(ref.departments.values()), Department)
    _write_csv(path / "expected_enrollment.csv", ref.expected_enrollment, ExpectedEnrollment)


def default_departments(edition: int = 2024) -> list[Department]:
    """One Department per province of `edition`, valid for that edition's whole period."""
    if edition not in _EDITIONS:
        raise ValueError(f"edition must be one of {sorted(_EDITIONS)}, not {edition}")
    provinces, valid_from, valid_to = _EDITIONS[edition]
    return [
        Department(
            code=f"SGD-{edition}-{p.code}",
            name=f"Sở GD&ĐT {p.name}",
            edition=edition,
            province_code=p.code,
            valid_from=valid_from,
            valid_to=valid_to,
        )
        for p in provinces().values()
    ]
