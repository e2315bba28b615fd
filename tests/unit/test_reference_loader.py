"""Reference files: happy paths in CSV and JSON, a round trip, and errors that name the line."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from hocba.reference.loader import (
    ReferenceDataError,
    default_departments,
    load_reference_dir,
    write_reference_dir,
)

SCHOOLS_CSV = """# Demo schools
code,name,levels,school_type,province_code_2024,province_code_2025,commune_code
S72,THCS Tây Ninh,LOWER_SECONDARY|UPPER_SECONDARY,public,72,,
# a comment between rows keeps line numbers honest
S80,TH Long An,PRIMARY,private,80,80,27700
S01,TH Hà Nội,PRIMARY,public,1,,
"""
DEPARTMENT_JSON = json.dumps(
    {"code": "D1", "name": "Sở GD&ĐT Lào Cai", "edition": 2025, "province_code": "15"}
    | {"valid_from": "2025-07-01", "certificate_approved": True}
)


def _write(directory: Path, name: str, text: str) -> Path:
    (directory / name).write_text(text, encoding="utf-8")
    return directory


def test_no_directory_gives_the_builtin_provinces_only() -> None:
    ref = load_reference_dir(None)
    assert (len(ref.provinces_2024), len(ref.provinces_2025), len(ref.former_to_current)) == (
        63,
        34,
        63,
    )
    assert not ref.schools and not ref.departments and not ref.expected_enrollment


def test_schools_csv_derives_the_current_province_and_restores_leading_zeros(
    tmp_path: Path,
) -> None:
    schools = load_reference_dir(_write(tmp_path, "schools.csv", SCHOOLS_CSV)).schools
    assert schools["S72"].levels == ("LOWER_SECONDARY", "UPPER_SECONDARY")
    assert (schools["S72"].province_code_2024, schools["S72"].province_code_2025) == ("72", "80")
    assert (schools["S80"].school_type, schools["S80"].commune_code) == ("private", "27700")
    assert (schools["S01"].province_code_2024, schools["S01"].province_code_2025) == ("01", "01")


def test_json_list_and_json_lines_are_both_accepted(tmp_path: Path) -> None:
    listed = load_reference_dir(_write(tmp_path, "departments.json", f"[{DEPARTMENT_JSON}]"))
    lines_dir = tmp_path / "lines"
    lines_dir.mkdir()
    lines = load_reference_dir(_write(lines_dir, "departments.json", DEPARTMENT_JSON + "\n\n"))
    assert listed.departments == lines.departments
    department = listed.departments["D1"]
    assert (department.edition, department.province_code, department.valid_to) == (2025, "15", None)
    assert department.certificate_approved and department.account_registered


def test_written_reference_loads_back_unchanged(tmp_path: Path) -> None:
    source = _write(tmp_path, "schools.csv", SCHOOLS_CSV)
    enrollment = "province_code_2024,school_year,grade,expected\n80,2023-2024,1,25000\n"
    _write(source, "expected_enrollment.csv", enrollment + "72,2023-2024,5,18000\n")
    departments = {d.code: d for d in default_departments(2024)}
    ref = replace(load_reference_dir(source), departments=departments)
    write_reference_dir(tmp_path / "out", ref)
    again = load_reference_dir(tmp_path / "out")
    assert again.schools == ref.schools
    assert again.departments == ref.departments
    assert again.expected_enrollment == ref.expected_enrollment
    assert len(again.expected_enrollment) == 2


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("schools.csv", SCHOOLS_CSV.replace(",public,72,", ",public,99,"), r"schools\.csv:3: .*99"),
        (
            "schools.csv",
            SCHOOLS_CSV.replace("PRIMARY,private", "KINDERGARTEN,private"),
            r":5: .*KINDERGARTEN",
        ),
        ("schools.csv", SCHOOLS_CSV.replace("S01,", "S72,"), r"schools\.csv:6: duplicate S72"),
        (
            "schools.csv",
            SCHOOLS_CSV.replace(",private,80,80,", ",private,80,82,"),
            r":5: .*became 80",
        ),
        ("schools.csv", SCHOOLS_CSV.replace("27700", "277,00"), r":5: 8 cells under 7 columns"),
        ("schools.csv", SCHOOLS_CSV.replace(",public,1,", ",state,1,"), r":6: unknown school_type"),
        ("departments.json", DEPARTMENT_JSON + '\n{"code": ', r"departments\.json:2: Expecting"),
        (
            "departments.csv",
            "code,name,edition,province_code,valid_from\nD,Sở,2025,02,2025-07-01\n",
            r"departments\.csv:2: unknown province_code '02'",
        ),
        (  # a former-province Department open-ended: it would report in both editions
            "departments.csv",
            "code,name,edition,province_code,valid_from\nD,Sở,2024,01,2004-01-01\n",
            r"departments\.csv:2: edition 2024 ended on 2025-06-30",
        ),
        (
            "departments.csv",
            "code,name,edition,province_code,valid_from\nD,Sở,2025,01,2025-01-01\n",
            r"departments\.csv:2: edition 2025 began on 2025-07-01",
        ),
        (
            "expected_enrollment.csv",
            "province_code_2024,school_year,grade,expected\n01,2023-2025,1,10\n",
            r":2: school year '2023-2025' is not YYYY-YYYY",
        ),
        (  # as the record rules read a school year: every record of 1999-2000 is refused
            "expected_enrollment.csv",
            "province_code_2024,school_year,grade,expected\n01,1999-2000,1,10\n",
            r":2: school year '1999-2000' is not YYYY-YYYY",
        ),
        (
            "expected_enrollment.csv",
            "province_code_2024,school_year,grade,expected\n01,2023-2024,three,10\n",
            r"expected_enrollment\.csv:2: grade 'three' is not a whole number",
        ),
    ],
)
def test_bad_rows_are_refused_naming_file_and_line(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    with pytest.raises(ReferenceDataError, match=message):
        load_reference_dir(_write(tmp_path, name, text))


def test_both_csv_and_json_of_one_kind_is_ambiguous(tmp_path: Path) -> None:
    _write(tmp_path, "schools.csv", SCHOOLS_CSV)
    with pytest.raises(ReferenceDataError, match="keep one"):
        load_reference_dir(_write(tmp_path, "schools.json", "[]"))


@pytest.mark.parametrize(
    ("edition", "count", "valid_from", "valid_to"),
    [(2024, 63, date(2004, 1, 1), date(2025, 6, 30)), (2025, 34, date(2025, 7, 1), None)],
)
def test_default_departments_cover_every_province_of_the_edition(
    edition: int, count: int, valid_from: date, valid_to: date | None
) -> None:
    departments = default_departments(edition)
    assert len(departments) == count
    assert {(d.valid_from, d.valid_to, d.edition) for d in departments} == {
        (valid_from, valid_to, edition)
    }
    first = departments[0]
    assert (first.code, first.name, first.province_code) == (
        f"SGD-{edition}-01",
        "Sở GD&ĐT Hà Nội",
        "01",
    )


def test_default_departments_name_the_province_of_their_edition() -> None:
    names = {d.code: d.name for d in default_departments(2024) + default_departments(2025)}
    assert names["SGD-2024-80"] == "Sở GD&ĐT Long An"
    assert names["SGD-2025-80"] == "Sở GD&ĐT Tây Ninh"
    with pytest.raises(ValueError, match="edition"):
        default_departments(2030)
