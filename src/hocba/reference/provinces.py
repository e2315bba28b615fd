"""The built-in province lists: 63 former provinces, 34 current ones, and the mapping between.

They ship as CSV files in `hocba.reference.data` (sources cited in their header comments) so
that a reviewer can check them against the legal texts line by line. They are read once and
handed out as read-only mappings: every school, department and record shares the same
instances, and no caller can alter the national lists by accident.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from types import MappingProxyType

from hocba.reference.model import Province

_DATA_PACKAGE = "hocba.reference.data"


def _rows(filename: str) -> list[dict[str, str]]:
    text = files(_DATA_PACKAGE).joinpath(filename).read_text(encoding="utf-8")
    return list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))


def _provinces(filename: str, edition: int) -> Mapping[str, Province]:
    provinces = {
        row["code"]: Province(code=row["code"], name=row["name"], edition=edition)
        for row in _rows(filename)
    }
    return MappingProxyType(provinces)


@cache
def provinces_2024() -> Mapping[str, Province]:
    """The 63 provinces by statistics code (Decision 124/2004/QĐ-TTg), until 30 June 2025."""
    return _provinces("provinces_2024.csv", 2024)


@cache
def provinces_2025() -> Mapping[str, Province]:
    """The 34 provinces by statistics code (Decision 19/2025/QĐ-TTg), since 1 July 2025."""
    return _provinces("provinces_2025.csv", 2025)


@cache
def former_to_current() -> Mapping[str, str]:
    """Former (2024) statistics code -> the current (2025) code of the province it joined."""
    mapping = {row["code_2024"]: row["code_2025"] for row in _rows("province_mapping.csv")}
    return MappingProxyType(mapping)
