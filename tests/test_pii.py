"""Tests for strongroom.pii: resident identity numbers and mainland mobile numbers."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.pii import (
    PROVINCE_CODES,
    is_mainland_mobile,
    is_valid_national_id,
    national_id_check_char,
)

# GB 11643-1999 weights for positions 1-17 (2**(18-i) mod 11) and the check character for each
# value of (weighted sum mod 11), written out here so the hand computations below can be followed:
#   weights:      7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2
#   sum mod 11:   0 1 2 3 4 5 6 7 8 9 10
#   check char:   1 0 X 9 8 7 6 5 4 3 2


def with_check(first17: str) -> str:
    return first17 + national_id_check_char(first17)


# --------------------------------------------------------------------------- check character


@pytest.mark.parametrize(
    ("first17", "expected"),
    [
        # The example in GB 11643-1999 (Beijing Chaoyang, born 1949-12-31, woman):
        # 1*7 + 1*9 + 0*10 + 1*5 + 0*8 + 5*4 + 1*2 + 9*1 + 4*6 + 9*3 + 1*7 + 2*9 + 3*10 + 1*5 + 0*8
        #   + 0*4 + 2*2 = 167; 167 mod 11 = 2 -> "X".
        ("11010519491231002", "X"),
        # The other example in GB 11643-1999 (born 1880-01-01):
        # 4*7 + 4*9 + 0*10 + 5*5 + 2*8 + 4*4 + 1*2 + 8*1 + 8*6 + 0*3 + 0*7 + 1*9 + 0*10 + 1*5 + 0*8
        #   + 0*4 + 1*2 = 195; 195 mod 11 = 8 -> "4".
        ("44052418800101001", "4"),
        # 3*7 + 1*9 + 0*10 + 1*5 + 1*8 + 5*4 + 1*2 + 9*1 + 8*6 + 5*3 + 0*7 + 6*9 + 1*10 + 6*5 + 1*8
        #   + 2*4 + 3*2 = 253; 253 mod 11 = 0 -> "1".
        ("31011519850616123", "1"),
        # 2*7 + 3*9 + 0*10 + 1*5 + 0*8 + 0*4 + 1*2 + 9*1 + 8*6 + 0*3 + 0*7 + 1*9 + 0*10 + 1*5 + 0*8
        #   + 0*4 = 119 for the first 16 digits; the 17th digit (weight 2) then decides:
        ("23010019800101001", "1"),  # 119 + 2 = 121; 121 mod 11 = 0 -> "1"
        ("23010019800101002", "X"),  # 119 + 4 = 123; 123 mod 11 = 2 -> "X"
        ("23010019800101003", "8"),  # 119 + 6 = 125; 125 mod 11 = 4 -> "8"
        ("23010019800101004", "6"),  # 119 + 8 = 127; 127 mod 11 = 6 -> "6"
        ("23010019800101007", "0"),  # 119 + 14 = 133; 133 mod 11 = 1 -> "0"
        # All zeros: sum 0 -> "1". All ones: sum of the weights = 100; 100 mod 11 = 1 -> "0".
        ("00000000000000000", "1"),
        ("11111111111111111", "0"),
    ],
)
def test_check_char_known_answers(first17: str, expected: str) -> None:
    assert national_id_check_char(first17) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "1101051949123100",  # 16 digits
        "110105194912310021",  # 18 digits
        "1101051949123100X",  # a letter
        "11010519491231 02",  # a space
        "１１０１０５１９４９１２３１００２",  # full-width digits
        "١١٠١٠٥١٩٤٩١٢٣١٠٠٢",  # Arabic-Indic digits (str.isdigit() is true for them)
        None,
        11010519491231002,
        b"11010519491231002",
    ],
)
def test_check_char_rejects_anything_but_17_ascii_digits(bad: object) -> None:
    with pytest.raises(ValueError):
        national_id_check_char(bad)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- whole ids


@pytest.mark.parametrize(
    "value",
    [
        "11010519491231002X",  # the GB 11643-1999 example
        "11010519491231002x",  # lower-case check character
        "310115198506161231",
        "230100198001010011",
        "230100198001010038",
        "230100198001010046",
        "230100198001010070",
        with_check("81000019900101001"),  # Hong Kong resident permit prefix
        with_check("83000019900101002"),  # Taiwan resident permit prefix
        with_check("65010019000101001"),  # earliest accepted birth date
    ],
)
def test_valid_ids(value: str) -> None:
    assert is_valid_national_id(value)


def test_birth_date_bounds() -> None:
    today = datetime.date(2024, 6, 15)
    assert is_valid_national_id(with_check("11010520240615001"), today=today)
    assert not is_valid_national_id(with_check("11010520240616001"), today=today)  # tomorrow
    assert not is_valid_national_id(with_check("11010518991231001"), today=today)  # before 1900
    # The other GB 11643-1999 example has a correct check character but a birth year of 1880.
    assert not is_valid_national_id("440524188001010014")
    # Without ``today`` the clock decides: a birth date next year is in the future.
    next_year = datetime.date.today().year + 1
    assert not is_valid_national_id(with_check(f"110105{next_year}0101001"))


@pytest.mark.parametrize(
    "value",
    [
        "110105194912310021",  # wrong check character (X expected)
        "110105194912310020",
        "31011519850616123X",  # X where "1" is due
        "310115198506161232",
        with_check("11010519900230001"),  # 30 February
        with_check("11010519000229001"),  # 1900 was not a leap year
        with_check("11010519901301001"),  # month 13
        with_check("11010519900100001"),  # day 0
        with_check("11010519900431001"),  # 31 April
        with_check("00010519900101001"),  # region 00
        with_check("16010519900101001"),  # region 16 is unassigned
        with_check("72010519900101001"),
        with_check("84010519900101001"),
        with_check("99010519900101001"),
        "11010519491231002",  # 17 characters
        "11010519491231002X0",  # 19 characters
        "1101051949123100XX",  # X in the body
        "1101051949123100A2",  # a letter in the body
        "11010519491231002Y",  # a check character that is neither a digit nor X
        "A1010519491231002X",
        "11010519491231002X ",  # trailing space
        " 11010519491231002X",
        "１１０１０５１９４９１２３１００２Ｘ",  # full-width
        "",
        None,
        110105194912310021,
    ],
)
def test_invalid_ids(value: object) -> None:
    assert not is_valid_national_id(value)


def test_province_codes() -> None:
    expected = {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46}
    expected |= {50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83}
    assert PROVINCE_CODES == {str(code) for code in expected}


# --------------------------------------------------------------------------- properties

_EARLIEST = datetime.date(1900, 1, 1)


@st.composite
def valid_first17(draw: st.DrawFn) -> str:
    province = draw(st.sampled_from(sorted(PROVINCE_CODES)))
    rest_of_region = draw(st.integers(min_value=0, max_value=9999))
    birth = draw(st.dates(min_value=_EARLIEST, max_value=datetime.date.today()))
    sequence = draw(st.integers(min_value=0, max_value=999))
    return f"{province}{rest_of_region:04d}{birth:%Y%m%d}{sequence:03d}"


@given(valid_first17())
def test_appending_the_check_char_gives_a_valid_id(first17: str) -> None:
    value = first17 + national_id_check_char(first17)
    assert is_valid_national_id(value)
    assert is_valid_national_id(value.lower())


@given(valid_first17(), st.data())
def test_changing_any_single_character_invalidates(first17: str, data: st.DataObject) -> None:
    value = first17 + national_id_check_char(first17)
    position = data.draw(st.integers(min_value=0, max_value=17), label="position")
    alphabet = "0123456789X" if position == 17 else "0123456789"
    replacement = data.draw(st.sampled_from([c for c in alphabet if c != value[position]]), label="new")
    changed = value[:position] + replacement + value[position + 1 :]
    assert not is_valid_national_id(changed)


@given(st.text(max_size=20))
def test_arbitrary_text_never_raises(value: str) -> None:
    assert isinstance(is_valid_national_id(value), bool)
    assert isinstance(is_mainland_mobile(value), bool)


# --------------------------------------------------------------------------- mobile numbers


@pytest.mark.parametrize(
    "value",
    [
        "13812345678",
        "15012345678",
        "17612345678",
        "18912345678",
        "19912345678",
        "14712345678",  # 1[3-9] admits 14x and 16x too
        "16612345678",
        "138 1234 5678",
        "138-1234-5678",
        "+8613812345678",
        "8613812345678",
        "+86 13812345678",
        "+86-13812345678",
        "+86 138 1234 5678",
        "86-138-1234-5678",
        "+86-138 1234 5678",  # the prefix separator is independent of the grouping separator
    ],
)
def test_mobile_accepts(value: str) -> None:
    assert is_mainland_mobile(value)


@pytest.mark.parametrize(
    "value",
    [
        "12812345678",  # second digit 2
        "10812345678",
        "23812345678",  # does not start with 1
        "1381234567",  # 10 digits
        "138123456789",  # 12 digits
        "138-1234 5678",  # mixed separators
        "138 12345678",  # partial grouping
        "1381-234-5678",  # wrong grouping
        "138--1234--5678",
        "138.1234.5678",
        "(138)12345678",
        "+87 13812345678",  # not the Chinese country code
        "+86+8613812345678",
        "+86 ",
        "+86  13812345678",  # two separators after the prefix
        " 13812345678",
        "13812345678 ",
        "13812345678\n",
        "１３８１２３４５６７８",  # full-width digits
        "1381234567a",
        "",
        None,
        13812345678,
    ],
)
def test_mobile_rejects(value: object) -> None:
    assert not is_mainland_mobile(value)


@given(st.integers(min_value=3, max_value=9), st.integers(min_value=0, max_value=999_999_999))
def test_every_plain_mobile_number_is_accepted_in_all_notations(second: int, rest: int) -> None:
    number = f"1{second}{rest:09d}"
    grouped = f"{number[:3]} {number[3:7]} {number[7:]}"
    for value in (number, "+86" + number, "86" + number, "+86 " + grouped, grouped.replace(" ", "-")):
        assert is_mainland_mobile(value), value
