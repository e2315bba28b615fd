"""The built-in 63/34 province lists against DESIGN §7 and the legal texts it cites."""

from __future__ import annotations

import pytest

from hocba.reference.provinces import former_to_current, provinces_2024, provinces_2025

# fmt: off
FORMER_CODES = (  # Decision 124/2004/QĐ-TTg, less Hà Tây (28)
    "01", "02", "04", "06", "08", "10", "11", "12", "14", "15", "17", "19", "20", "22", "24",
    "25", "26", "27", "30", "31", "33", "34", "35", "36", "37", "38", "40", "42", "44", "45",
    "46", "48", "49", "51", "52", "54", "56", "58", "60", "62", "64", "66", "67", "68", "70",
    "72", "74", "75", "77", "79", "80", "82", "83", "84", "86", "87", "89", "91", "92", "93",
    "94", "95", "96",
)
# fmt: on
UNCHANGED = ("01", "04", "11", "12", "14", "20", "22", "38", "40", "42", "46")
MERGES = {  # DESIGN §7, new <- old
    "08": ("02", "08"),
    "15": ("10", "15"),
    "19": ("06", "19"),
    "24": ("24", "27"),
    "25": ("17", "25", "26"),
    "31": ("30", "31"),
    "33": ("33", "34"),
    "37": ("35", "36", "37"),
    "44": ("44", "45"),
    "48": ("48", "49"),
    "51": ("51", "62"),
    "52": ("52", "64"),
    "56": ("56", "58"),
    "66": ("54", "66"),
    "68": ("60", "67", "68"),
    "75": ("70", "75"),
    "79": ("74", "77", "79"),
    "80": ("72", "80"),
    "82": ("82", "87"),
    "86": ("83", "84", "86"),
    "91": ("89", "91"),
    "92": ("92", "93", "94"),
    "96": ("95", "96"),
}
# Codes that name a different province after 1 July 2025: (former name, current name).
COLLISIONS = {
    "15": ("Yên Bái", "Lào Cai"),
    "24": ("Bắc Giang", "Bắc Ninh"),
    "44": ("Quảng Bình", "Quảng Trị"),
    "52": ("Bình Định", "Gia Lai"),
    "80": ("Long An", "Tây Ninh"),
    "82": ("Tiền Giang", "Đồng Tháp"),
    "91": ("Kiên Giang", "An Giang"),
}


def test_there_are_63_former_provinces_with_the_2004_codes() -> None:
    assert tuple(sorted(provinces_2024())) == FORMER_CODES
    assert {p.edition for p in provinces_2024().values()} == {2024}
    assert provinces_2024()["46"].name == "Thừa Thiên Huế"
    assert provinces_2024()["79"].name == "TP. Hồ Chí Minh"


def test_there_are_34_current_provinces() -> None:
    current = provinces_2025()
    assert len(current) == 34
    assert {p.edition for p in current.values()} == {2025}
    assert sorted(current) == sorted((*UNCHANGED, *MERGES))
    assert current["46"].name == "Huế"


def test_every_former_province_maps_to_one_existing_current_one() -> None:
    mapping = former_to_current()
    assert tuple(sorted(mapping)) == FORMER_CODES
    assert set(mapping.values()) == set(provinces_2025())


def test_mapping_is_exactly_the_design_merge_list() -> None:
    expected = {code: code for code in UNCHANGED}
    for new, olds in MERGES.items():
        expected.update((old, new) for old in olds)
    assert dict(former_to_current()) == expected


@pytest.mark.parametrize("code", sorted(COLLISIONS))
def test_colliding_codes_map_to_themselves_under_a_new_name(code: str) -> None:
    former_name, current_name = COLLISIONS[code]
    assert former_to_current()[code] == code
    assert provinces_2024()[code].name == former_name
    assert provinces_2025()[code].name == current_name


def test_unchanged_provinces_keep_code_and_name_except_hue() -> None:
    for code in UNCHANGED:
        assert former_to_current()[code] == code
        if code != "46":
            assert provinces_2024()[code].name == provinces_2025()[code].name


def test_lists_are_cached_and_read_only() -> None:
    assert provinces_2024() is provinces_2024()
    with pytest.raises(TypeError):
        former_to_current()["02"] = "01"  # type: ignore[index]
