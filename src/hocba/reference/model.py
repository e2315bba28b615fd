"""Reference data as frozen values: what enrichment and authorisation look things up in.

Province codes always carry their system and edition in the name (`province_code_2024` is
the 63-province statistics code, `province_code_2025` the 34-province one, DESIGN §7),
because the same two digits can name different provinces in the two editions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True, slots=True)
class Province:
    code: str  # two-digit statistics code
    name: str
    edition: int  # 2024 = the 63 former provinces, 2025 = the 34 since 1 July 2025


@dataclass(frozen=True, slots=True)
class School:
    code: str
    name: str
    levels: tuple[str, ...]  # subset of PRIMARY, LOWER_SECONDARY, UPPER_SECONDARY
    school_type: str  # public | private
    province_code_2024: str
    province_code_2025: str
    commune_code: str = ""


@dataclass(frozen=True, slots=True)
class Department:
    """A Department of Education and Training (Sở GD&ĐT) of one province in one edition."""

    code: str  # e.g. "SGD-2024-01": edition and statistics code of its province
    name: str
    edition: int
    province_code: str  # statistics code in `edition`
    valid_from: date
    valid_to: date | None = None
    account_registered: bool = True
    certificate_approved: bool = False


@dataclass(frozen=True, slots=True)
class ExpectedEnrollment:
    province_code_2024: str
    school_year: str
    grade: int
    expected: int


@dataclass(frozen=True, slots=True)
class ReferenceData:
    provinces_2024: Mapping[str, Province] = field(default_factory=dict)
    provinces_2025: Mapping[str, Province] = field(default_factory=dict)
    former_to_current: Mapping[str, str] = field(default_factory=dict)  # 2024 code -> 2025 code
    schools: Mapping[str, School] = field(default_factory=dict)
    departments: Mapping[str, Department] = field(default_factory=dict)
    expected_enrollment: tuple[ExpectedEnrollment, ...] = ()
