"""Enrichment: one decoded, validated record in, one `records` row (as a dict) out.

Pure and per record, so it stays on the hot path's budget: a few dict look-ups, one HMAC
and one SHA-256, no I/O. The row carries both province editions (DESIGN §7) because a
two-digit code alone is ambiguous across 1 July 2025, and it replaces the personal ID with a
keyed pseudonym: without the key nobody can test a guessed ID against the stored column.
"""

from __future__ import annotations

import hashlib
import hmac
import marshal
from collections.abc import Mapping
from datetime import date
from typing import Any

from hocba.domain.messages import RecordError
from hocba.domain.reasons import Reason
from hocba.reference.loader import LEVEL_CODES
from hocba.reference.model import Department, ReferenceData, School

# Vietnamese school years start in September; 5 September is the national opening day.
_YEAR_START_MONTH_DAY = (9, 5)
# Children enter grade 1 in the calendar year they turn 6, so grade g is "on time" at g + 5.
_GRADE_AGE_OFFSET = 5


def student_key(personal_id: str, pseudonym_key: bytes) -> str:
    """Keyed pseudonym of a personal ID: HMAC-SHA256, hex."""
    return hmac.digest(pseudonym_key, personal_id.encode(), "sha256").hex()


def content_hash(record: Mapping[str, Any]) -> str:
    """SHA-256 of the whole record, so any change to any field (a correction) changes it.

    The bytes are `marshal` format 2 of the field values in reader-schema order (as fastavro
    gives them), dates as ISO text: format 2 depends on values alone (format 3+ adds
    back-references that depend on reference counts) and costs half of `repr`.
    """
    values = [v.isoformat() if isinstance(v, date) else v for v in record.values()]
    return hashlib.sha256(marshal.dumps(values, 2)).hexdigest()


def department_may_send_for(department: Department, school: School) -> bool:
    """Whether the school lies in the department's province, in the department's edition."""
    if department.edition == 2024:
        return department.province_code == school.province_code_2024
    return department.province_code == school.province_code_2025


def enrich_record(
    record: Mapping[str, Any],
    ref: ReferenceData,
    *,
    pseudonym_key: bytes,
    keep_identity: bool,
    index: int = -1,
) -> dict[str, Any] | RecordError:
    """The row for `record`, keyed exactly by `ENRICHED_COLUMNS`, or why it cannot be made.

    `index` is the record's position in its batch, copied into the RecordError so the
    dead letter points at the right record; callers that re-index errors may leave it.
    """
    school = ref.schools.get(record["school_code"])
    if school is None:
        detail = f"school {record['school_code']!r} is not in the reference data"
        return RecordError(index=index, code=Reason.ENRICH_UNKNOWN_SCHOOL, detail=detail)
    personal_id: str = record["personal_id"]
    birth_date = record["birth_date"]
    first_year = int(record["school_year"][:4])
    not_yet = (birth_date.month, birth_date.day) > _YEAR_START_MONTH_DAY
    province_2024 = ref.provinces_2024.get(school.province_code_2024)
    province_2025 = ref.provinces_2025.get(school.province_code_2025)
    subjects = record["subjects"]
    return {
        "school_year": record["school_year"],
        "school_code": school.code,
        "grade": record["grade"],
        "student_key": student_key(personal_id, pseudonym_key),
        "revision": record["revision"],
        "content_hash": content_hash(record),
        "student_code": record["student_code"],
        "level": record["level"],
        "level_code": LEVEL_CODES[record["level"]],
        "class_name": record["class_name"],
        "gender": record["gender"],
        "ethnicity_code": record["ethnicity_code"],
        "birth_year": birth_date.year,
        # Clamped: validation rejects implausible birth dates; UInt8 must not underflow.
        "age_at_year_start": max(0, first_year - birth_date.year - not_yet),
        "on_time_grade": first_year - birth_date.year == record["grade"] + _GRADE_AGE_OFFSET,
        "birth_province_code_2024": personal_id[1:3],
        "school_name": school.name,
        "school_type": school.school_type,
        "province_code_2024": school.province_code_2024,
        "province_name_2024": province_2024.name if province_2024 else "",
        "province_code_2025": school.province_code_2025,
        "province_name_2025": province_2025.name if province_2025 else "",
        "learning_result": record["learning_result"] or "",
        "conduct_result": record["conduct_result"] or "",
        "promotion": record["promotion"] or "",
        "completed_grade_programme": record["completed_grade_programme"],
        "completed_primary": record["completed_primary"],
        "disabled_not_assessed": record["disabled_not_assessed"],
        "days_absent": record["days_absent"],
        "subject_codes": [s["subject_code"] for s in subjects],
        "subject_scores": [s["score"] for s in subjects],
        "subject_assessments": [s["assessment"] or "" for s in subjects],
        "personal_id": personal_id if keep_identity else None,
        "full_name": record["full_name"] if keep_identity else None,
    }
