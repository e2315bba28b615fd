"""Plausible demo schools for the 63 former provinces."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from hocba.reference.model import School
from hocba.synth.names import NAMESAKES, pick

# Cycled, not drawn, so that three schools a province already cover the three levels; the mix
# leans to primary as the real ~15k primary / ~10k lower / ~2.4k upper secondary schools do.
_KINDS = (
    (("PRIMARY",), "Trường Tiểu học"),
    (("LOWER_SECONDARY",), "Trường THCS"),
    (("UPPER_SECONDARY",), "Trường THPT"),
    (("PRIMARY",), "Trường Tiểu học"),
    (("LOWER_SECONDARY",), "Trường THCS"),
    (("PRIMARY", "LOWER_SECONDARY"), "Trường Tiểu học và THCS"),
    (("PRIMARY",), "Trường Tiểu học"),
)


def demo_schools(
    province_codes_2024: Sequence[str],
    per_province: int,
    seed: int = 0,
    *,
    former_to_current: Mapping[str, str],
) -> list[School]:
    """`per_province` schools per former province, coded `<province><5 digits>`, mostly public.

    `former_to_current` (2024 code -> 2025 code) is a parameter, not an import, so that this
    generator does not depend on how the reference data are loaded.
    """
    rng = random.Random(seed)
    schools = []
    for province in province_codes_2024:
        for number in range(1, per_province + 1):
            levels, kind = _KINDS[(number - 1) % len(_KINDS)]
            schools.append(
                School(
                    code=f"{province}{number:05d}",
                    name=f"{kind} {pick(rng, NAMESAKES)}",
                    levels=levels,
                    school_type="private" if rng.random() < 0.07 else "public",
                    province_code_2024=province,
                    province_code_2025=former_to_current[province],
                )
            )
    return schools
