"""docs/vendors.md states what the code does: reason codes, record rules, schema fingerprints.

Vendors build publishers in other languages from that page alone, so a code renamed, a rule
table changed or a schema edited must fail here until the page says the same.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from hocba.domain.limits import MAX_CERTIFICATE_BYTES, MAX_CHAIN_LENGTH
from hocba.domain.reasons import Reason
from hocba.pipeline import rules_data
from hocba.pipeline.codec import MAGIC, RECORD_BATCH, decode, load_registry
from hocba.pipeline.decode import MAX_TEXT_LENGTH
from hocba.pipeline.validate import validate_record
from hocba.publishing import encode_payload, record_from_json
from hocba.records_file import index_records
from hocba.settings import Settings
from hocba.trust.store import MAX_PATH_DEPTH

PAGE = Path(__file__).parents[2] / "docs" / "vendors.md"
TEXT = PAGE.read_text(encoding="utf-8")
FINGERPRINT_ROW = re.compile(
    r"^\| `(vn\.edu\.hocba\.\w+)` \| `([0-9a-f]{16})` \| `((?:[0-9a-f]{2} ){9}[0-9a-f]{2})` "
    r"\| `0x([0-9a-f]{16})`",
    re.MULTILINE,
)
SUBJECT_ROW = re.compile(r"^\| `([A-Z0-9_]+)` \|((?: [^|]+ \|){5})$", re.MULTILINE)
GRADE_COLUMNS = ((1, 2), (3,), (4, 5), (6, 7, 8, 9), (10, 11, 12))


def _code_spans() -> set[str]:
    """Inline code outside the fenced blocks, whose triple backticks would pair wrongly."""
    prose = re.sub(r"^```.*?^```", "", TEXT, flags=re.DOTALL | re.MULTILINE)
    return set(re.findall(r"`([^`\n]+)`", prose))


def test_every_reason_code_is_documented() -> None:
    missing = [reason.value for reason in Reason if reason.value not in _code_spans()]
    assert not missing, f"docs/vendors.md does not name {missing}"


def test_the_reason_table_has_one_row_per_code() -> None:
    table = TEXT.split("## 9. Reason codes", 1)[1]
    rows = re.findall(r"^\| `([a-z]+\.[a-z_]+)` \|", table, re.MULTILINE)
    assert sorted(rows) == sorted(reason.value for reason in Reason)


def test_every_subject_quality_and_competency_code_is_documented() -> None:
    codes = rules_data.ALL_SUBJECTS | set(rules_data.QUALITIES) | set(rules_data.COMPETENCIES)
    missing = sorted(codes - _code_spans())
    assert not missing, f"docs/vendors.md does not name {missing}"


def _matrix() -> dict[str, list[str]]:
    return {
        code: [cell.strip() for cell in cells.strip(" |").split("|")]
        for code, cells in SUBJECT_ROW.findall(TEXT)
    }


def test_the_subject_table_is_rules_data() -> None:
    matrix = _matrix()
    assert set(matrix) == rules_data.ALL_SUBJECTS
    for column, grades in enumerate(GRADE_COLUMNS):
        for grade in grades:
            table = rules_data.GRADES[grade]
            for code, cells in matrix.items():
                expected = "—"
                if code in table.allowed:
                    expected = "S" if code in table.scored else "C"
                    expected += " opt" if code in table.optional else ""
                    expected += " el" if code in table.electives else ""
                assert cells[column] == expected, f"{code} in grade {grade}"


def test_the_personal_id_prefixes_are_the_province_codes() -> None:
    [listed] = re.findall(r"province statistics codes \(([\d\s]+)\)", TEXT)
    assert set(listed.split()) == rules_data.PROVINCE_CODES_2024
    assert f"the {len(rules_data.PROVINCE_CODES_2024)} former" in TEXT


def test_the_quality_counts_are_rules_data() -> None:
    total = len(rules_data.QUALITIES) + len(rules_data.COMPETENCIES)
    assert f"all {total}" in TEXT
    assert f"{len(rules_data.QUALITIES)} qualities" in TEXT


def test_fingerprints_and_headers_are_what_the_code_computes() -> None:
    newest = load_registry().versions[-1]
    rows = FINGERPRINT_ROW.findall(TEXT)
    assert {name for name, *_ in rows} == set(newest.fingerprints)
    for name, shown, header, as_number in rows:
        fingerprint = newest.fingerprints[name]
        assert shown == fingerprint.hex(), name
        assert bytes.fromhex(header) == MAGIC + fingerprint, name
        assert int(as_number, 16) == int.from_bytes(fingerprint, "little"), name
    assert f"there is one version, {newest.version}" in TEXT


def test_every_header_quoted_in_the_page_is_a_real_one() -> None:
    newest = load_registry().versions[-1]
    real = {(MAGIC + fp).hex(" ") for fp in newest.fingerprints.values()}
    quoted = set(re.findall(r"c3 01(?: [0-9a-f]{2}){8}", TEXT))
    assert quoted and quoted <= real
    payload_header = (MAGIC + newest.fingerprints[RECORD_BATCH]).hex(" ")
    assert f"so it starts `{payload_header}`" in TEXT


@pytest.mark.parametrize(
    ("shown", "value"),
    [
        ("1,048,576 bytes (`HOCBA_MAX_MESSAGE_BYTES`)", "max_message_bytes"),
        ("5,000 (`HOCBA_MAX_RECORDS_PER_MESSAGE`)", "max_records_per_message"),
        ("± 300 s (`HOCBA_CLOCK_SKEW_S`)", "clock_skew_s"),
    ],
)
def test_the_limits_are_the_defaults(shown: str, value: str) -> None:
    assert shown in TEXT
    number = int(re.sub(r"\D", "", shown.split("(")[0]))
    assert number == Settings.model_fields[value].default


def test_the_fixed_limits_are_the_code_constants() -> None:
    assert f"| any string | {MAX_TEXT_LENGTH:,} " in TEXT
    each = f"each at most {MAX_CERTIFICATE_BYTES:,} bytes"
    assert f"| certificates in `certificate_chain` | {MAX_CHAIN_LENGTH}, {each} |" in TEXT
    assert f"at most {MAX_CHAIN_LENGTH} certificates ({MAX_CHAIN_LENGTH + 1} is" in TEXT
    assert f"{each} of DER" in TEXT
    assert f"at most {MAX_PATH_DEPTH} CAs between the leaf and the root" in TEXT


def _example_record() -> dict[str, Any]:
    [block] = re.findall(r"^```json\n(.*?)^```", TEXT, re.DOTALL | re.MULTILINE)
    record: dict[str, Any] = json.loads(block)
    return record


def test_the_example_record_is_published_and_passes_every_rule() -> None:
    registry = load_registry()
    line = json.dumps(_example_record(), ensure_ascii=False).encode() + b"\n"
    assert index_records([line], registry).records == 1
    payload = encode_payload(registry, [record_from_json(_example_record())])
    [record] = decode(registry, RECORD_BATCH, payload)["records"]
    assert isinstance(record["birth_date"], date)
    assert validate_record(record, 0) is None
