"""The Ministry assessment rules: one valid and several invalid cases per rule, then properties."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hocba.domain.reasons import Reason, Stage
from hocba.pipeline.validate import validate_record
from hocba.synth import CORRUPTION_KINDS, corrupt_record, demo_schools, generate_records

Record = dict[str, Any]
PE, HT = "GIAO_DUC_THE_CHAT", "HOAN_THANH"
_PATRIOTIC = {"code": "PC_YEU_NUOC", "level": "TOT"}
_PROVINCES = ("01", "79", "96")
_SCHOOLS = demo_schools(_PROVINCES, 7, seed=1, former_to_current={p: p for p in _PROVINCES})


def _find(grade: int, promotion: str | None = "PROMOTED", school_year: str = "2023-2024") -> Record:
    records = generate_records(
        _SCHOOLS, count=300, seed=grade, grades=[grade], school_year=school_year
    )
    return next(r for r in records if r["promotion"] == promotion)


BASES = {
    "g1": _find(1),
    "g4": _find(4),
    "g7": _find(7),
    "g11": _find(11),
    "g12_2000": _find(12, promotion=None, school_year="2000-2001"),
}


def _set(**fields: Any) -> Callable[[Record], Record]:
    return lambda r: {**r, **fields}


def _sub(code: str, **fields: Any) -> Callable[[Record], Record]:
    """Changes the subject `code`, appending it (unscored, assessed) when the record lacks it."""

    def mutate(record: Record) -> Record:
        subjects = [dict(s) for s in record["subjects"]]
        if not any(s["subject_code"] == code for s in subjects):
            subjects.append(
                {"subject_code": code, "score": None, "assessment": None, "comment": None}
            )
        for s in subjects:
            if s["subject_code"] == code:
                s.update(fields)
        return {**record, "subjects": subjects}

    return mutate


def _born(offset: int) -> Callable[[Record], Record]:
    """Birth year = school-year start - grade - offset, with the personal ID kept consistent."""

    def mutate(record: Record) -> Record:
        year = int(record["school_year"][:4]) - record["grade"] - offset
        pid = record["personal_id"]
        century_sex = (year // 100 - 19) * 2 + int(pid[3]) % 2
        new_pid = f"{pid[:3]}{century_sex}{year % 100:02d}{pid[6:]}"
        return {**record, "birth_date": date(year, 3, 1), "personal_id": new_pid}

    return mutate


def _pid(transform: Callable[[str], str]) -> Callable[[Record], Record]:
    return lambda r: {**r, "personal_id": transform(r["personal_id"])}


def _qualities(transform: Callable[[list[Record]], list[Record]]) -> Callable[[Record], Record]:
    return lambda r: {**r, "qualities_competencies": transform(list(r["qualities_competencies"]))}


def _quality(**fields: Any) -> Callable[[Record], Record]:
    return _qualities(lambda q: [{**q[0], **fields}, *q[1:]])


def _then(*mutations: Callable[[Record], Record]) -> Callable[[Record], Record]:
    def mutate(record: Record) -> Record:
        for m in mutations:
            record = m(record)
        return record

    return mutate


def _duplicate_subject(record: Record) -> Record:
    return {**record, "subjects": record["subjects"] + record["subjects"][:1]}


_EXEMPT = _set(disabled_not_assessed=True)


def _flip_sex(pid: str) -> str:
    return pid[:3] + str(int(pid[3]) ^ 1) + pid[4:]


CASES: list[tuple[str, str, Callable[[Record], Record], str | None]] = [
    # grade <-> level
    ("valid primary", "g4", _set(), None),
    ("valid lower secondary", "g7", _set(), None),
    ("valid upper secondary, born 1980s", "g12_2000", _set(), None),
    ("grade 4 as lower secondary", "g4", _set(level="LOWER_SECONDARY"), "grade_level"),
    ("grade 13", "g11", _set(grade=13), "grade_level"),
    ("grade as text", "g4", _set(grade="4"), "grade_level"),
    ("grade as bool", "g1", _set(grade=True), "grade_level"),
    # school year
    ("years not consecutive", "g4", _set(school_year="2023-2025"), "school_year"),
    ("slash separator", "g4", _set(school_year="2023/2024"), "school_year"),
    ("short years", "g4", _set(school_year="23-24"), "school_year"),
    ("before 2000", "g4", _set(school_year="1999-2000"), "school_year"),
    ("full-width digits", "g4", _set(school_year="２０２３-２０２４"), "school_year"),
    # revision
    ("revision 7", "g7", _set(revision=7), None),
    ("revision 0", "g7", _set(revision=0), "revision"),
    ("revision as text", "g7", _set(revision="2"), "revision"),
    # days absent
    ("no absence", "g7", _set(days_absent=0), None),
    ("absent all year (primary)", "g4", _set(days_absent=366), None),
    ("negative absence", "g7", _set(days_absent=-1), "days_absent"),
    ("367 days absent", "g4", _set(days_absent=367), "days_absent"),
    # birth date
    ("a year early", "g4", _born(4), None),
    ("five years late", "g11", _born(10), None),
    ("two years early", "g4", _born(3), "birth_date"),
    ("six years late", "g7", _born(11), "birth_date"),
    ("birth date as text", "g4", _set(birth_date="2014-01-01"), "birth_date"),
    # personal ID
    ("unknown gender, given digit", "g4", _set(gender="UNKNOWN"), None),
    ("unknown gender, other digit", "g4", _then(_pid(_flip_sex), _set(gender="UNKNOWN")), None),
    ("11 digits", "g4", _pid(lambda p: p[:-1]), "personal_id"),
    ("13 digits", "g4", _pid(lambda p: p + "0"), "personal_id"),
    ("a letter", "g4", _pid(lambda p: p[:-1] + "A"), "personal_id"),
    ("prefix not starting with 0", "g4", _pid(lambda p: "1" + p[1:]), "personal_id"),
    ("province 03 never existed", "g4", _pid(lambda p: "003" + p[3:]), "personal_id"),
    ("sex digit contradicts gender", "g7", _pid(_flip_sex), "personal_id"),
    ("1900s digit for a 2010s birth", "g7", _pid(lambda p: p[:3] + "0" + p[4:]), "personal_id"),
    ("1980s birth, 2000s digit", "g12_2000", _pid(lambda p: p[:3] + "2" + p[4:]), "personal_id"),
    ("year digits differ", "g7", _pid(lambda p: p[:4] + "99" + p[6:]), "personal_id"),
    # subjects allowed for the grade
    ("optional language, grade 1", "g1", _sub("NGOAI_NGU_1", assessment=HT), None),
    ("physics in primary", "g4", _sub("VAT_LI", assessment="HOAN_THANH"), "subject_not_allowed"),
    ("Vietnamese in secondary", "g7", _sub("TIENG_VIET"), "subject_not_allowed"),
    ("KHTN in upper secondary", "g11", _sub("KHTN"), "subject_not_allowed"),
    ("unknown code", "g11", _sub("XYZ"), "subject_not_allowed"),
    ("duplicate subject", "g4", _duplicate_subject, "subject_not_allowed"),
    # scores
    ("primary test 1", "g4", _sub("TOAN", score=1.0), None),
    ("primary test 10", "g4", _sub("TOAN", score=10.0), None),
    ("secondary average 0.0", "g7", _sub("TOAN", score=0.0), None),
    ("secondary average 6.7", "g11", _sub("TOAN", score=6.7), None),
    ("primary test 0", "g4", _sub("TOAN", score=0.0), "score"),
    ("primary test 7.5", "g4", _sub("TOAN", score=7.5), "score"),
    ("primary test 11", "g4", _sub("TOAN", score=11.0), "score"),
    ("primary test missing", "g4", _sub("TOAN", score=None), "score"),
    ("score on Ethics (primary)", "g4", _sub("DAO_DUC", score=8.0), "score"),
    ("optional language tested", "g1", _sub("NGOAI_NGU_1", score=8.0, assessment=HT), "score"),
    ("secondary two decimals", "g7", _sub("TOAN", score=7.25), "score"),
    ("secondary 10.1", "g11", _sub("TOAN", score=10.1), "score"),
    ("secondary NaN", "g11", _sub("TOAN", score=float("nan")), "score"),
    ("secondary average missing", "g7", _sub("NGU_VAN", score=None), "score"),
    ("score on PE (secondary)", "g7", _sub(PE, score=9.0), "score"),
    ("not assessed: no score", "g4", _then(_EXEMPT, _sub("TOAN", score=None)), None),
    ("not assessed: no assessment", "g7", _then(_EXEMPT, _sub(PE, assessment=None)), None),
    ("not assessed: no qualities", "g4", _then(_EXEMPT, _set(qualities_competencies=[])), None),
    ("not assessed: no results", "g11", _then(_EXEMPT, _set(learning_result=None)), None),
    ("not assessed: bad score", "g4", _then(_EXEMPT, _sub("TOAN", score=0.0)), "score"),
    # subject assessments
    ("primary not completed", "g4", _sub("DAO_DUC", assessment="CHUA_HOAN_THANH"), None),
    ("secondary scale in primary", "g4", _sub("DAO_DUC", assessment="DAT"), "assessment"),
    ("primary assessment missing", "g4", _sub("TOAN", assessment=None), "assessment"),
    ("assessment on a scored subject", "g7", _sub("TOAN", assessment="DAT"), "assessment"),
    ("primary scale in secondary", "g11", _sub(PE, assessment=HT), "assessment"),
    ("comment-only subject unassessed", "g7", _sub(PE, assessment=None), "assessment"),
    # qualities and competencies
    ("one quality to improve", "g4", _quality(level="CAN_CO_GANG"), None),
    ("a competency missing", "g4", _qualities(lambda q: q[1:]), "qualities"),
    ("a quality twice", "g4", _qualities(lambda q: [*q, q[0]]), "qualities"),
    ("unknown quality", "g4", _quality(code="PC_X"), "qualities"),
    ("unknown level", "g4", _quality(level="KHA"), "qualities"),
    ("qualities in secondary", "g7", _qualities(lambda q: [*q, _PATRIOTIC]), "qualities"),
    # learning result
    ("primary excellent", "g4", _set(learning_result="HOAN_THANH_XUAT_SAC"), None),
    ("secondary scale in primary", "g4", _set(learning_result="TOT"), "learning_result"),
    ("primary result missing", "g4", _set(learning_result=None), "learning_result"),
    ("primary scale in secondary", "g7", _set(learning_result="HOAN_THANH"), "learning_result"),
    # conduct result
    ("secondary conduct fair", "g11", _set(conduct_result="KHA"), None),
    ("conduct in primary", "g4", _set(conduct_result="TOT"), "conduct_result"),
    ("secondary conduct missing", "g7", _set(conduct_result=None), "conduct_result"),
    # promotion
    ("no decision yet", "g7", _set(promotion=None), None),
    ("conduct failed", "g7", _set(conduct_result="CHUA_DAT", promotion="SUMMER_TRAINING"), None),
    ("46 days absent, repeating", "g11", _set(days_absent=46, promotion="REPEAT_YEAR"), None),
    ("eligible but repeating", "g7", _set(promotion="REPEAT_YEAR"), "promotion"),
    ("46 days absent but promoted", "g7", _set(days_absent=46), "promotion"),
    ("learning failed but promoted", "g11", _set(learning_result="CHUA_DAT"), "promotion"),
    ("not completed but promoted", "g4", _set(learning_result="CHUA_HOAN_THANH"), "promotion"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("base", "mutate", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_rule(base: str, mutate: Callable[[Record], Record], expected: str | None) -> None:
    """`expected` is the failing rule's reason code without its `validate.` stage prefix."""
    error = validate_record(mutate(BASES[base]), 3)
    assert (error and error.code) == (expected and Reason(f"validate.{expected}")), error
    assert error is None or error.index == 3


def test_malformed_record_is_an_error_not_an_exception() -> None:
    error = validate_record({"grade": 4, "level": "PRIMARY"}, 0)
    assert error is not None
    assert error.code == Reason.VALIDATE_SCHOOL_YEAR
    assert "malformed" in error.detail


def test_corruption_kinds_are_exactly_the_validate_reasons() -> None:
    assert set(CORRUPTION_KINDS) == {r.value for r in Reason if r.stage is Stage.VALIDATE}


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), first_year=st.integers(2000, 2098))
def test_generated_records_are_valid(seed: int, first_year: int) -> None:
    year = f"{first_year}-{first_year + 1}"
    for record in generate_records(_SCHOOLS, count=60, seed=seed, school_year=year):
        assert validate_record(record, 0) is None, record


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(CORRUPTION_KINDS))
def test_a_corruption_fails_its_own_rule(seed: int, kind: str) -> None:
    for record in generate_records(_SCHOOLS, count=45, seed=seed):
        error = validate_record(corrupt_record(record, kind), 0)
        assert error is not None
        assert error.code == kind, error
