"""Year-end results drawn around one latent strength per pupil, then graded by the circulars.

One strength in [0, 1) per pupil keeps a pupil's marks correlated, as in real classes; the
overall result is derived from the marks by the circulars' own criteria (Circular 27/2020
art. 9, Circular 22/2021 arts. 9 and 14) so every record is internally consistent.
"""

from __future__ import annotations

import random
from typing import Any

from hocba.pipeline import rules_data as data
from hocba.pipeline.validate import is_promotion_eligible

_WEAK = 0.02  # share of pupils who fail something
_OPTIONAL_SHARE = {"NGOAI_NGU_1": 0.7, "TIENG_DAN_TOC": 0.03, "NGOAI_NGU_2": 0.05}
_QUALITY_CODES = data.QUALITIES + data.COMPETENCIES
_COMMENTS: dict[str | None, tuple[str, ...]] = {
    "HOAN_THANH_TOT": ("Nắm vững kiến thức, vận dụng tốt", "Tích cực, sáng tạo trong học tập"),
    "HOAN_THANH": ("Hoàn thành các nội dung học tập", "Cần cẩn thận hơn khi làm bài"),
    "CHUA_HOAN_THANH": ("Chưa đạt một số yêu cầu, cần cố gắng nhiều hơn",),
    "DAT": ("Tham gia đầy đủ, tích cực các hoạt động", "Đạt yêu cầu cần đạt của môn học"),
    "CHUA_DAT": ("Chưa đạt yêu cầu, cần rèn luyện thêm",),
    None: (
        "Học tập chăm chỉ, có nhiều tiến bộ trong năm học",
        "Nắm được kiến thức cơ bản, cần tích cực phát biểu hơn",
        "Tiếp thu bài tốt, vận dụng linh hoạt",
    ),
}


def _subject(code: str, score: float | None, assessment: str | None, roll: float) -> dict[str, Any]:
    comments = _COMMENTS[assessment]
    comment = comments[int(roll * len(comments))]
    return {"subject_code": code, "score": score, "assessment": assessment, "comment": comment}


def _taken(rng: random.Random, table: data.GradeSubjects) -> list[str]:
    codes = list(table.compulsory) + rng.sample(table.electives, table.elective_count)
    return codes + [c for c in table.optional if rng.random() < _OPTIONAL_SHARE.get(c, 0.0)]


def _primary_result(marks: set[str], lowest_test: int) -> str:
    if marks <= {"HOAN_THANH_TOT", "TOT"} and lowest_test >= 7:
        return "HOAN_THANH_XUAT_SAC" if lowest_test >= 9 else "HOAN_THANH_TOT"
    if "CHUA_HOAN_THANH" in marks or "CAN_CO_GANG" in marks or lowest_test < 5:
        return "CHUA_HOAN_THANH"
    return "HOAN_THANH"


def primary_results(rng: random.Random, grade: int, strength: float) -> dict[str, Any]:
    table = data.GRADES[grade]
    weak = strength < _WEAK
    subjects, marks, lowest_test = [], set(), 10
    for code in _taken(rng, table):
        roll = rng.random()
        if weak and roll < 0.5:
            mark = "CHUA_HOAN_THANH"
        else:
            mark = "HOAN_THANH_TOT" if strength + 0.3 * roll >= 0.55 else "HOAN_THANH"
        score = None
        if code in table.scored:
            test = 3 + int(3 * roll) if weak else min(10, int(5 + 5.5 * strength + 1.5 * roll))
            lowest_test, score = min(lowest_test, test), float(test)
        marks.add(mark)
        subjects.append(_subject(code, score, mark, roll))
    qualities = []
    for code in _QUALITY_CODES:
        roll = rng.random()
        if weak and roll < 0.3:
            level = "CAN_CO_GANG"
        else:
            level = "TOT" if strength + 0.4 * roll >= 0.5 else "DAT"
        marks.add(level)
        qualities.append({"code": code, "level": level})
    result = _primary_result(marks, lowest_test)
    completed = result != "CHUA_HOAN_THANH"
    return {
        "subjects": subjects,
        "qualities_competencies": qualities,
        "learning_result": result,
        "conduct_result": None,
        "promotion": "PROMOTED" if completed else None,
        "completed_grade_programme": completed,
        "completed_primary": completed and grade == 5,
    }


def _secondary_result(scores: list[float], failed_comments: int) -> str:
    def at_least(limit: float) -> int:
        return sum(score >= limit for score in scores)

    if not failed_comments and min(scores) >= 6.5 and at_least(8.0) >= 6:
        return "TOT"
    if not failed_comments and min(scores) >= 5.0 and at_least(6.5) >= 6:
        return "KHA"
    if failed_comments <= 1 and at_least(5.0) >= 6 and min(scores) >= 3.5:
        return "DAT"
    return "CHUA_DAT"


def secondary_results(rng: random.Random, grade: int, strength: float) -> dict[str, Any]:
    table = data.GRADES[grade]
    weak = strength < _WEAK
    mean = 4.0 if weak else 5.6 + 4.0 * strength
    subjects, scores, failed = [], [], 0
    for code in _taken(rng, table):
        roll = rng.random()
        if code in table.scored:
            score = round(min(10.0, max(0.0, mean + 2.4 * roll - 1.2)), 1)
            scores.append(score)
            subjects.append(_subject(code, score, None, roll))
        else:
            passed = not weak or roll >= 0.5
            failed += not passed
            subjects.append(_subject(code, None, "DAT" if passed else "CHUA_DAT", roll))
    roll = rng.random()
    conduct = (
        "TOT" if roll < 0.76 else "KHA" if roll < 0.94 else "DAT" if roll < 0.992 else "CHUA_DAT"
    )
    return {
        "subjects": subjects,
        "qualities_competencies": [],
        "learning_result": _secondary_result(scores, failed),
        "conduct_result": conduct,
        "promotion": None,  # decided by `secondary_promotion` once days absent are known
        "completed_grade_programme": False,
        "completed_primary": False,
    }


def secondary_promotion(record: dict[str, Any]) -> str | None:
    """Promoted when eligible; else, by Circular 22 art. 14, repeating for absences, re-assessment
    for learning and summer training for conduct. Grade 12 ends in graduation, not promotion."""
    if record["grade"] == 12:
        return None
    if is_promotion_eligible(record):
        return "PROMOTED"
    if record["days_absent"] > data.SCALES[record["level"]].promotion_max_absent:
        return "REPEAT_YEAR"
    return "REASSESSMENT" if record["learning_result"] == "CHUA_DAT" else "SUMMER_TRAINING"
