"""Ministry assessment rules for one decoded StudentRecord (Circulars 27/2020 and 22/2021).

Each rule is a pure check returning a human-readable detail when it fails, paired with its
reason code in `RULES`; the order matters because later rules trust what earlier ones checked
(the grade before the subject tables, the birth date before the personal ID that encodes it).
The scales and subject lists live in `rules_data`, so a new circular is a data change.
`disabled_not_assessed` pupils may leave assessments empty, but what they do carry must be valid.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from hocba.domain.messages import RecordError
from hocba.domain.reasons import Reason
from hocba.pipeline import rules_data as data

Check = Callable[[Mapping[str, Any]], str | None]

_LEVEL_OF_GRADE = {grade: table.level for grade, table in data.GRADES.items()}
_GENDER_PARITY = {"MALE": 0, "FEMALE": 1}


def _grade_level(record: Mapping[str, Any]) -> str | None:
    grade = record["grade"]
    if type(grade) is int and _LEVEL_OF_GRADE.get(grade) == record["level"]:
        return None
    return f"grade {grade!r} does not belong to level {record['level']!r}"


def school_year_problem(year: object) -> str | None:
    """Why `year` is not a school year like 2023-2024, or None; `hocba stats` asks it too."""
    if type(year) is str and len(year) == 9 and year[4] == "-" and year.isascii():
        first, second = year[:4], year[5:]
        if (
            first.isdigit()
            and second.isdigit()
            and int(second) == int(first) + 1
            and data.SCHOOL_YEAR_FIRST_MIN <= int(first) <= data.SCHOOL_YEAR_FIRST_MAX
        ):
            return None
    return f"school year {year!r} is not YYYY-YYYY with consecutive plausible years"


def _school_year(record: Mapping[str, Any]) -> str | None:
    return school_year_problem(record["school_year"])


def _revision(record: Mapping[str, Any]) -> str | None:
    revision = record["revision"]
    return None if type(revision) is int and revision >= 1 else f"revision {revision!r} < 1"


def _days_absent(record: Mapping[str, Any]) -> str | None:
    days = record["days_absent"]
    if type(days) is int and 0 <= days <= data.MAX_DAYS_ABSENT:
        return None
    return f"days absent {days!r} outside 0..{data.MAX_DAYS_ABSENT}"


def _birth_date(record: Mapping[str, Any]) -> str | None:
    born = record["birth_date"]
    if not isinstance(born, date):
        return f"birth date {born!r} is not a date"
    grade = record["grade"]
    age = int(record["school_year"][:4]) - born.year
    if grade + data.AGE_OFFSET_MIN <= age <= grade + data.AGE_OFFSET_MAX:
        return None
    return f"age {age} at the start of the school year is implausible for grade {grade}"


def _personal_id(record: Mapping[str, Any]) -> str | None:
    pid = record["personal_id"]
    if not (type(pid) is str and len(pid) == 12 and pid.isascii() and pid.isdigit()):
        return "personal ID is not 12 digits"
    if pid[0] != "0" or pid[1:3] not in data.PROVINCE_CODES_2024:
        return f"personal ID prefix {pid[:3]} is not a province code"
    year = record["birth_date"].year
    century_sex = ord(pid[3]) - 48
    if 1900 + 100 * (century_sex // 2) != year - year % 100:
        return f"personal ID century digit {century_sex} does not match birth year {year}"
    if century_sex % 2 != _GENDER_PARITY.get(record["gender"], century_sex % 2):
        return f"personal ID sex digit {century_sex} does not match gender {record['gender']}"
    if int(pid[4:6]) != year % 100:
        return f"personal ID year digits {pid[4:6]} do not match birth year {year}"
    return None


def _subjects_allowed(record: Mapping[str, Any]) -> str | None:
    allowed = data.ALLOWED[record["grade"]]
    codes = [subject["subject_code"] for subject in record["subjects"]]
    for code in codes:
        if code not in allowed:
            return f"subject {code!r} is not taught in grade {record['grade']}"
    return None if len(set(codes)) == len(codes) else "a subject appears twice"


def _score_ok(score: float, scale: data.LevelScale) -> bool:
    if not scale.score_min <= score <= 10.0:
        return False
    if scale.score_whole:
        return score == int(score)
    return abs(score * 10 - round(score * 10)) < 1e-6


def _scores(record: Mapping[str, Any]) -> str | None:
    scored = data.GRADES[record["grade"]].scored
    scale = data.SCALES[record["level"]]
    for subject in record["subjects"]:
        score, code = subject["score"], subject["subject_code"]
        if code not in scored:
            if score is not None:
                return f"{code} is assessed by comment but has a score"
        elif score is None:
            if not record["disabled_not_assessed"]:
                return f"{code} has no score"
        elif not _score_ok(score, scale):
            return f"{code} score {score!r} is off the scale"
    return None


def _assessments(record: Mapping[str, Any]) -> str | None:
    scored = data.GRADES[record["grade"]].scored
    scale = data.SCALES[record["level"]]
    for subject in record["subjects"]:
        code, assessment = subject["subject_code"], subject["assessment"]
        allowed = scale.scored_assessments if code in scored else scale.comment_assessments
        if assessment is None:
            if allowed and not record["disabled_not_assessed"]:
                return f"{code} has no assessment"
        elif assessment not in allowed:
            return f"{code} assessment {assessment!r} is not on this level's scale"
    return None


def _qualities(record: Mapping[str, Any]) -> str | None:
    scale = data.SCALES[record["level"]]
    items = record["qualities_competencies"]
    for item in items:
        if item["code"] not in scale.quality_codes or item["level"] not in scale.quality_levels:
            return f"quality {item['code']!r} level {item['level']!r} is not on this level's scale"
    seen = {item["code"] for item in items}
    if len(seen) != len(items):
        return "a quality or competency appears twice"
    if len(seen) != len(scale.quality_codes) and not record["disabled_not_assessed"]:
        return f"{len(seen)} of {len(scale.quality_codes)} qualities and competencies assessed"
    return None


def _learning_result(record: Mapping[str, Any]) -> str | None:
    result = record["learning_result"]
    if result is None:
        return None if record["disabled_not_assessed"] else "learning result missing"
    if result in data.SCALES[record["level"]].learning_results:
        return None
    return f"learning result {result!r} is not on this level's scale"


def _conduct_result(record: Mapping[str, Any]) -> str | None:
    results = data.SCALES[record["level"]].conduct_results
    conduct = record["conduct_result"]
    if not results:
        return None if conduct is None else "conduct is not assessed at this level"
    if conduct is None:
        return None if record["disabled_not_assessed"] else "conduct result missing"
    return None if conduct in results else f"conduct result {conduct!r} is not on the scale"


def is_promotion_eligible(record: Mapping[str, Any]) -> bool:
    """Circular 22 art. 14 (and its primary counterpart): results passing, absences within limit."""
    scale = data.SCALES[record["level"]]
    return (
        record["learning_result"] in scale.passing_learning
        and (not scale.conduct_results or record["conduct_result"] in scale.passing_conduct)
        and record["days_absent"] <= scale.promotion_max_absent
    )


def _promotion(record: Mapping[str, Any]) -> str | None:
    promotion = record["promotion"]
    if promotion is None or record["disabled_not_assessed"]:
        return None
    if (promotion == "PROMOTED") == is_promotion_eligible(record):
        return None
    return f"promotion {promotion} contradicts the results and days absent"


RULES: tuple[tuple[Reason, Check], ...] = (
    (Reason.VALIDATE_GRADE_LEVEL, _grade_level),
    (Reason.VALIDATE_SCHOOL_YEAR, _school_year),
    (Reason.VALIDATE_REVISION, _revision),
    (Reason.VALIDATE_DAYS_ABSENT, _days_absent),
    (Reason.VALIDATE_BIRTH_DATE, _birth_date),
    (Reason.VALIDATE_PERSONAL_ID, _personal_id),
    (Reason.VALIDATE_SUBJECT_NOT_ALLOWED, _subjects_allowed),
    (Reason.VALIDATE_SCORE, _scores),
    (Reason.VALIDATE_ASSESSMENT, _assessments),
    (Reason.VALIDATE_QUALITIES, _qualities),
    (Reason.VALIDATE_LEARNING_RESULT, _learning_result),
    (Reason.VALIDATE_CONDUCT_RESULT, _conduct_result),
    (Reason.VALIDATE_PROMOTION, _promotion),
)


def validate_record(record: Mapping[str, Any], index: int) -> RecordError | None:
    """The first failing rule as data; a value of the wrong type fails that rule, never raises."""
    for reason, check in RULES:
        try:
            detail = check(record)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            detail = f"malformed: {exc!r}"
        if detail is not None:
            return RecordError(index=index, code=reason, detail=detail)
    return None
