"""Reference data → the Arrow tables that mirror it in ClickHouse (DESIGN §5).

Analysts join `records` with these, and the statistics need expected enrolment and the
Department list, so the store gets the same reference data the worker enriches with.
"""

from __future__ import annotations

from dataclasses import asdict

import pyarrow as pa

from hocba.domain.columns import (
    DEPARTMENT_COLUMNS,
    EXPECTED_ENROLLMENT_COLUMNS,
    PROVINCE_COLUMNS,
    PROVINCE_MAPPING_COLUMNS,
    SCHOOL_COLUMNS,
)
from hocba.pipeline.rows import arrow_table
from hocba.reference.model import ReferenceData
from hocba.store.base import Store


def reference_tables(ref: ReferenceData) -> dict[str, pa.Table]:
    provinces = [*ref.provinces_2024.values(), *ref.provinces_2025.values()]
    return {
        "provinces": arrow_table(PROVINCE_COLUMNS, [asdict(p) for p in provinces]),
        "province_mapping": arrow_table(
            PROVINCE_MAPPING_COLUMNS,
            [
                {"province_code_2024": old, "province_code_2025": new}
                for old, new in ref.former_to_current.items()
            ],
        ),
        "schools": arrow_table(
            SCHOOL_COLUMNS, [asdict(s) | {"levels": list(s.levels)} for s in ref.schools.values()]
        ),
        "departments": arrow_table(
            DEPARTMENT_COLUMNS, [asdict(d) for d in ref.departments.values()]
        ),
        "expected_enrollment": arrow_table(
            EXPECTED_ENROLLMENT_COLUMNS, [asdict(e) for e in ref.expected_enrollment]
        ),
    }


def mirror_reference(store: Store, ref: ReferenceData) -> None:
    """Replace every reference table in the store with `ref`."""
    for name, table in reference_tables(ref).items():
        store.replace_reference(name, table)
