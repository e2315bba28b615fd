"""Single-field corruptions (one per validation rule) and corrections of valid records.

Each corruption breaks only the field its rule checks, leaving everything the earlier rules
check intact, so `validate_record` must answer with exactly that rule's reason code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hocba.pipeline import rules_data as data
from hocba.pipeline.validate import is_promotion_eligible

Corruption = Callable[[dict[str, Any]], None]
_OTHER_LEVEL = {
    "PRIMARY": "UPPER_SECONDARY",
    "LOWER_SECONDARY": "PRIMARY",
    "UPPER_SECONDARY": "LOWER_SECONDARY",
}


def _first_subject(record: Mapping[str, Any], scored: bool) -> dict[str, Any]:
    table = data.GRADES[record["grade"]]
    subjects: list[dict[str, Any]] = record["subjects"]
    return next(s for s in subjects if (s["subject_code"] in table.scored) == scored)


def _by_level(field: str, primary: Any, secondary: Any) -> Corruption:
    def corrupt(record: dict[str, Any]) -> None:
        record[field] = primary if record["level"] == "PRIMARY" else secondary

    return corrupt


def _birth_date(record: dict[str, Any]) -> None:
    born = record["birth_date"]
    record["birth_date"] = born.replace(year=born.year - 20, day=1)


def _subject_code(record: dict[str, Any]) -> None:
    foreign = data.ALL_SUBJECTS - data.ALLOWED[record["grade"]]
    record["subjects"][0]["subject_code"] = min(foreign)


def _score(record: dict[str, Any]) -> None:
    _first_subject(record, scored=True)["score"] = 10.5 if record["level"] == "PRIMARY" else 7.25


def _assessment(record: dict[str, Any]) -> None:
    wrong_scale = "DAT" if record["level"] == "PRIMARY" else "HOAN_THANH"
    _first_subject(record, scored=False)["assessment"] = wrong_scale


def _qualities(record: dict[str, Any]) -> None:
    items = record["qualities_competencies"]
    if items:
        items[0]["code"] = "PC_KHONG_RO"
    else:
        items.append({"code": data.QUALITIES[0], "level": "TOT"})


def _promotion(record: dict[str, Any]) -> None:
    record["promotion"] = "REPEAT_YEAR" if is_promotion_eligible(record) else "PROMOTED"


_CORRUPTIONS: dict[str, Corruption] = {
    "validate.grade_level": lambda r: r.update(level=_OTHER_LEVEL[r["level"]]),
    "validate.school_year": lambda r: r.update(school_year=f"{r['school_year'][:4]}-2099"),
    "validate.revision": lambda r: r.update(revision=0),
    "validate.days_absent": lambda r: r.update(days_absent=data.MAX_DAYS_ABSENT + 1),
    "validate.birth_date": _birth_date,
    "validate.personal_id": lambda r: r.update(personal_id="003" + r["personal_id"][3:]),
    "validate.subject_not_allowed": _subject_code,
    "validate.score": _score,
    "validate.assessment": _assessment,
    "validate.qualities": _qualities,
    "validate.learning_result": _by_level("learning_result", "TOT", "HOAN_THANH"),
    "validate.conduct_result": _by_level("conduct_result", "TOT", None),
    "validate.promotion": _promotion,
}
CORRUPTION_KINDS = tuple(_CORRUPTIONS)


def _copy(record: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **record,
        "subjects": [dict(s) for s in record["subjects"]],
        "qualities_competencies": [dict(q) for q in record["qualities_competencies"]],
    }


def corrupt_record(record: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """A copy of a valid record that fails first the rule `kind` (a `validate.*` reason code)."""
    copy = _copy(record)
    _CORRUPTIONS[kind](copy)
    return copy


def make_correction(record: Mapping[str, Any]) -> dict[str, Any]:
    """The next revision, as a school sends after fixing one score; still a valid record."""
    copy = _copy(record)
    copy["revision"] = record["revision"] + 1
    subject = _first_subject(copy, scored=True)
    step = 1.0 if copy["level"] == "PRIMARY" else 0.1
    score = 5.0 if subject["score"] is None else subject["score"]
    subject["score"] = round(score - step if score + step > 10.0 else score + step, 1)
    return copy
