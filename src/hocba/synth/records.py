"""Whole StudentRecords in the exact shape fastavro reads for avro/v1/StudentRecord.avsc.

Records come in class-sized runs of one school, grade and homeroom teacher, because a
Department reports a class at a time and batching benchmarks should see that shape.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from hocba.pipeline import rules_data as data
from hocba.reference.model import School
from hocba.synth.names import person_name, pick
from hocba.synth.results import primary_results, secondary_promotion, secondary_results

_LEVEL_GRADES = {
    level: tuple(grade for grade, table in data.GRADES.items() if table.level == level)
    for level in data.SCALES
}
_ETHNICITIES = ("01",) * 86 + ("02", "03", "04", "05", "06", "07", "08", "09", "10", "12")
_PROVINCES = tuple(sorted(data.PROVINCE_CODES_2024))
_PARITY = {"MALE": 0, "FEMALE": 1}
_SERIAL_STEP = 387_419  # coprime with 10**6: ID serials are distinct for up to 10**6 records


@dataclass(frozen=True, slots=True)
class _Class:
    school: School
    grade: int
    name: str
    teacher: str
    school_year: str


def _record(rng: random.Random, cls: _Class, serial: int) -> dict[str, Any]:
    school, grade, first_year = cls.school, cls.grade, int(cls.school_year[:4])
    roll = rng.random()
    gender = "MALE" if roll < 0.497 else "FEMALE" if roll < 0.995 else "UNKNOWN"
    year = first_year - grade - 5 - (rng.random() < 0.08)  # some pupils are a year late
    born = date.fromordinal(date(year, 1, 1).toordinal() + int(rng.random() * 365))
    province = school.province_code_2024 if rng.random() < 0.92 else pick(rng, _PROVINCES)
    century_sex = (year // 100 - 19) * 2 + _PARITY.get(gender, serial % 2)
    results = (primary_results if grade <= 5 else secondary_results)(rng, grade, rng.random())
    absent = int(rng.expovariate(0.35)) if rng.random() > 0.003 else 50 + int(rng.random() * 30)
    stamp = int(rng.random() * 5000)  # day, hour and minute of the principal's confirmation
    record = {
        "personal_id": f"0{province}{century_sex}{year % 100:02d}{serial % 1_000_000:06d}",
        "student_code": f"{school.province_code_2024}{serial % 100_000_000:08d}",
        "full_name": person_name(rng, gender),
        "birth_date": born,
        "gender": gender,
        "ethnicity_code": pick(rng, _ETHNICITIES),
        "school_code": school.code,
        "school_year": cls.school_year,
        "grade": grade,
        "class_name": cls.name,
        "level": data.GRADES[grade].level,
        "revision": 1,
        **results,
        "disabled_not_assessed": False,
        "days_absent": min(absent, data.MAX_DAYS_ABSENT),
        "homeroom_teacher": cls.teacher,
        "principal_confirmed_at": datetime(
            first_year + 1, 5, 25 + stamp // 1000, 7 + stamp % 1000 // 100, stamp % 60, tzinfo=UTC
        ),
    }
    if grade > 5:
        record["promotion"] = secondary_promotion(record)
    return record


def generate_records(
    schools: Sequence[School],
    *,
    school_year: str = "2023-2024",
    count: int,
    seed: int = 0,
    grades: Sequence[int] | None = None,
) -> list[dict[str, Any]]:
    """`count` valid records in runs of 25-40 per class over the schools' (or the given) grades."""
    wanted = set(range(1, 13) if grades is None else grades)
    choices = [
        (school, grade)
        for school in schools
        for level in school.levels
        for grade in _LEVEL_GRADES[level]
        if grade in wanted
    ]
    if not choices:
        raise ValueError("no given school teaches any of the requested grades")
    rng = random.Random(seed)
    serial = rng.randrange(1_000_000)
    classes: dict[tuple[str, int], int] = {}
    records: list[dict[str, Any]] = []
    while len(records) < count:
        school, grade = pick(rng, choices)
        number = classes[school.code, grade] = classes.get((school.code, grade), 0) + 1
        teacher = person_name(rng, "FEMALE" if rng.random() < 0.75 else "MALE")
        cls = _Class(school, grade, f"{grade}A{number}", teacher, school_year)
        for _ in range(min(rng.randint(25, 40), count - len(records))):
            serial += _SERIAL_STEP
            records.append(_record(rng, cls, serial))
    return records
