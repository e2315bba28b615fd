"""The Ministry's assessment rules as tables, so that a new circular is a data change.

Sources: subjects by grade from the 2018 general education programme (Circular
32/2018/TT-BGDĐT; upper secondary: compulsory subjects + 4 electives, Circular 13/2022);
primary scales from Circular 27/2020/TT-BGDĐT; secondary scales from Circular 22/2021/TT-BGDĐT;
personal ID prefixes from Decree 137/2015 and Circular 07/2016/TT-BCA (DESIGN §7).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


def _codes(table: str) -> tuple[str, ...]:
    """Code lists are written as whitespace-separated text: tables read better than tuples."""
    return tuple(table.split())


# The 63 former (2024-edition) statistics codes: a personal ID's prefix is `0` + one of them.
PROVINCE_CODES_2024 = frozenset(
    _codes(
        """01 02 04 06 08 10 11 12 14 15 17 19 20 22 24 25 26 27 30 31 33 34 35 36 37 38 40 42
        44 45 46 48 49 51 52 54 56 58 60 62 64 66 67 68 70 72 74 75 77 79 80 82 83 84 86 87 89
        91 92 93 94 95 96"""
    )
)

# Age (school-year start year minus birth year) is grade + 5 when on time. One year early
# (exceptional early entry) to five years late (late entry, repeated years, and the up-to-3-year
# allowance for ethnic-minority and disabled pupils) is accepted.
AGE_OFFSET_MIN = 4
AGE_OFFSET_MAX = 10
MAX_DAYS_ABSENT = 366
SCHOOL_YEAR_FIRST_MIN = 2000
SCHOOL_YEAR_FIRST_MAX = 2099

# The three levels a school may teach and their codes in the reference data and reports.
LEVEL_CODES: Mapping[str, str] = {"PRIMARY": "02", "LOWER_SECONDARY": "03", "UPPER_SECONDARY": "04"}


@dataclass(frozen=True, slots=True)
class GradeSubjects:
    """Which subjects a grade's record may carry; `scored` ones carry a periodic/average score."""

    level: str
    compulsory: tuple[str, ...]
    optional: tuple[str, ...]
    scored: frozenset[str]
    electives: tuple[str, ...] = ()
    elective_count: int = 0

    @property
    def allowed(self) -> frozenset[str]:
        return frozenset(self.compulsory + self.optional + self.electives)


@dataclass(frozen=True, slots=True)
class LevelScale:
    """One circular's scales. An empty assessment set means that field must be null."""

    score_whole: bool
    score_min: float
    scored_assessments: frozenset[str]
    comment_assessments: frozenset[str]
    learning_results: tuple[str, ...]  # best first
    passing_learning: frozenset[str]
    conduct_results: tuple[str, ...]  # best first; empty: conduct is not assessed
    passing_conduct: frozenset[str]
    quality_codes: frozenset[str]  # empty: qualities are not recorded at this level
    quality_levels: frozenset[str]
    promotion_max_absent: int


QUALITIES = ("PC_YEU_NUOC", "PC_NHAN_AI", "PC_CHAM_CHI", "PC_TRUNG_THUC", "PC_TRACH_NHIEM")
COMPETENCIES = (
    "NL_TU_CHU_TU_HOC",
    "NL_GIAO_TIEP_HOP_TAC",
    "NL_GIAI_QUYET_VAN_DE_SANG_TAO",
    "NL_NGON_NGU",
    "NL_TINH_TOAN",
    "NL_KHOA_HOC",
    "NL_CONG_NGHE",
    "NL_TIN_HOC",
    "NL_THAM_MI",
    "NL_THE_CHAT",
)

_PRIMARY_ASSESSMENTS = frozenset({"HOAN_THANH_TOT", "HOAN_THANH", "CHUA_HOAN_THANH"})
_SECONDARY_RESULTS = ("TOT", "KHA", "DAT", "CHUA_DAT")

SCALES: dict[str, LevelScale] = {
    "PRIMARY": LevelScale(
        score_whole=True,
        score_min=1.0,
        scored_assessments=_PRIMARY_ASSESSMENTS,
        comment_assessments=_PRIMARY_ASSESSMENTS,
        learning_results=("HOAN_THANH_XUAT_SAC", "HOAN_THANH_TOT", "HOAN_THANH", "CHUA_HOAN_THANH"),
        passing_learning=frozenset({"HOAN_THANH_XUAT_SAC", "HOAN_THANH_TOT", "HOAN_THANH"}),
        conduct_results=(),
        passing_conduct=frozenset(),
        quality_codes=frozenset(QUALITIES + COMPETENCIES),
        quality_levels=frozenset({"TOT", "DAT", "CAN_CO_GANG"}),
        promotion_max_absent=MAX_DAYS_ABSENT,
    ),
}
SCALES["LOWER_SECONDARY"] = SCALES["UPPER_SECONDARY"] = LevelScale(
    score_whole=False,
    score_min=0.0,
    scored_assessments=frozenset(),
    comment_assessments=frozenset({"DAT", "CHUA_DAT"}),
    learning_results=_SECONDARY_RESULTS,
    passing_learning=frozenset({"TOT", "KHA", "DAT"}),
    conduct_results=_SECONDARY_RESULTS,
    passing_conduct=frozenset({"TOT", "KHA", "DAT"}),
    quality_codes=frozenset(),
    quality_levels=frozenset(),
    promotion_max_absent=45,
)

# Circular 27/2020 art. 7: periodic tests (1-10) only in these subjects, and only where they are
# compulsory: the optional foreign language of grades 1-2 is assessed without a test.
_PRIMARY_TESTED = frozenset(
    _codes("TIENG_VIET TOAN NGOAI_NGU_1 LICH_SU_DIA_LI KHOA_HOC TIN_HOC_CONG_NGHE")
)
# Circular 22/2021 art. 5: assessed by comment only (Đạt / Chưa đạt); every other subject is scored.
_COMMENT_ONLY = frozenset(
    _codes(
        """GIAO_DUC_THE_CHAT AM_NHAC MI_THUAT NGHE_THUAT HOAT_DONG_TRAI_NGHIEM
        NOI_DUNG_GIAO_DUC_DIA_PHUONG"""
    )
)


def _primary(compulsory: str, optional: str) -> GradeSubjects:
    taught = _codes(compulsory)
    return GradeSubjects("PRIMARY", taught, _codes(optional), _PRIMARY_TESTED & frozenset(taught))


def _secondary(
    level: str, compulsory: str, optional: str, electives: str = "", elective_count: int = 0
) -> GradeSubjects:
    taught = _codes(compulsory) + _codes(optional) + _codes(electives)
    return GradeSubjects(
        level,
        _codes(compulsory),
        _codes(optional),
        frozenset(taught) - _COMMENT_ONLY,
        _codes(electives),
        elective_count,
    )


_ARTS_PE = "GIAO_DUC_THE_CHAT AM_NHAC MI_THUAT HOAT_DONG_TRAI_NGHIEM"
_PRIMARY_1_2 = _primary(
    f"TIENG_VIET TOAN DAO_DUC TU_NHIEN_XA_HOI {_ARTS_PE}", "NGOAI_NGU_1 TIENG_DAN_TOC"
)
_PRIMARY_3 = _primary(
    f"TIENG_VIET TOAN NGOAI_NGU_1 DAO_DUC TU_NHIEN_XA_HOI TIN_HOC_CONG_NGHE {_ARTS_PE}",
    "TIENG_DAN_TOC",
)
_PRIMARY_4_5 = _primary(
    "TIENG_VIET TOAN NGOAI_NGU_1 DAO_DUC LICH_SU_DIA_LI KHOA_HOC TIN_HOC_CONG_NGHE " + _ARTS_PE,
    "TIENG_DAN_TOC",
)
_SECONDARY_COMMON = "GIAO_DUC_THE_CHAT HOAT_DONG_TRAI_NGHIEM NOI_DUNG_GIAO_DUC_DIA_PHUONG"
_LOWER_SECONDARY = _secondary(
    "LOWER_SECONDARY",
    "NGU_VAN TOAN NGOAI_NGU_1 GDCD LICH_SU_DIA_LI KHTN CONG_NGHE TIN_HOC AM_NHAC MI_THUAT "
    + _SECONDARY_COMMON,
    "TIENG_DAN_TOC NGOAI_NGU_2 NGHE_THUAT",
)
_UPPER_SECONDARY = _secondary(
    "UPPER_SECONDARY",
    f"NGU_VAN TOAN NGOAI_NGU_1 LICH_SU GD_QUOC_PHONG_AN_NINH {_SECONDARY_COMMON}",
    "TIENG_DAN_TOC NGOAI_NGU_2",
    "DIA_LI GD_KINH_TE_PHAP_LUAT VAT_LI HOA_HOC SINH_HOC CONG_NGHE TIN_HOC AM_NHAC MI_THUAT",
    elective_count=4,
)

GRADES: dict[int, GradeSubjects] = {
    1: _PRIMARY_1_2,
    2: _PRIMARY_1_2,
    3: _PRIMARY_3,
    4: _PRIMARY_4_5,
    5: _PRIMARY_4_5,
    **dict.fromkeys(range(6, 10), _LOWER_SECONDARY),
    **dict.fromkeys(range(10, 13), _UPPER_SECONDARY),
}
# Precomputed because `allowed` is looked up once per subject on the hot path.
ALLOWED: dict[int, frozenset[str]] = {grade: table.allowed for grade, table in GRADES.items()}
ALL_SUBJECTS = frozenset().union(*ALLOWED.values())
