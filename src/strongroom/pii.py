"""Detectors and validators for personal identifiers (PII).

Pure functions only: no I/O, no global state, no logging. Every function accepts any object and
answers ``False`` for a non-string instead of raising, except where stated.

Chinese resident identity numbers (居民身份证号码) follow GB 11643-1999:

    positions  1-6   administrative region code of the place of household registration
               7-14  date of birth, YYYYMMDD
               15-17 sequence code; the 17th digit is odd for men and even for women
               18    check character, ISO 7064 MOD 11-2 over the first 17 digits ("0"-"9" or "X")
"""

from __future__ import annotations

import datetime
import re

__all__ = [
    "PROVINCE_CODES",
    "is_mainland_mobile",
    "is_valid_national_id",
    "national_id_check_char",
]

# First two digits of a region code: the provincial-level divisions of GB/T 2260, plus 71 (Taiwan),
# 81 (Hong Kong) and 82 (Macao), and 83, which the 2018 residence permits for Taiwan residents use.
PROVINCE_CODES: frozenset[str] = frozenset(
    {
        "11", "12", "13", "14", "15",
        "21", "22", "23",
        "31", "32", "33", "34", "35", "36", "37",
        "41", "42", "43", "44", "45", "46",
        "50", "51", "52", "53", "54",
        "61", "62", "63", "64", "65",
        "71", "81", "82", "83",
    }
)  # fmt: skip

# ISO 7064 MOD 11-2: weight of position i (1-based, left to right) is 2**(18 - i) mod 11.
_WEIGHTS: tuple[int, ...] = tuple(pow(2, 17 - i, 11) for i in range(17))
# Check character for each value of (weighted sum mod 11).
_CHECK_CHARS = "10X98765432"

_EARLIEST_BIRTH_DATE = datetime.date(1900, 1, 1)

_MOBILE_RE = re.compile(
    r"(?:\+?86[ -]?)?"  # optional country code, optionally followed by one separator
    r"1[3-9][0-9]"  # network prefix
    r"(?:[0-9]{8}|([ -])[0-9]{4}\1[0-9]{4})",  # the rest, plain or grouped 3-4-4 with one separator kind
    re.ASCII,
)


def _is_ascii_digits(value: str) -> bool:
    return value.isascii() and value.isdigit()


def national_id_check_char(first17: str) -> str:
    """Return the GB 11643-1999 check character ("0"-"9" or "X") for the first 17 digits of an id.

    Raises ValueError unless ``first17`` is a string of exactly 17 ASCII digits.
    """
    if not isinstance(first17, str) or len(first17) != 17 or not _is_ascii_digits(first17):
        raise ValueError("first17 must be a string of exactly 17 ASCII digits")
    total = sum(int(digit) * weight for digit, weight in zip(first17, _WEIGHTS))
    return _CHECK_CHARS[total % 11]


def is_valid_national_id(value: object, *, today: datetime.date | None = None) -> bool:
    """True if ``value`` is a well-formed 18-character resident identity number.

    Checks: 17 ASCII digits followed by a digit or "X"/"x"; a known province code in positions 1-2;
    a real calendar date in positions 7-14 between 1900-01-01 and ``today`` (default: the local
    date now) inclusive; and the check character.
    """
    if not isinstance(value, str) or len(value) != 18:
        return False
    body, check = value[:17], value[17].upper()
    if not _is_ascii_digits(body) or not (check == "X" or ("0" <= check <= "9")):
        return False
    if body[:2] not in PROVINCE_CODES:
        return False
    try:
        birth = datetime.date(int(body[6:10]), int(body[10:12]), int(body[12:14]))
    except ValueError:
        return False
    if not _EARLIEST_BIRTH_DATE <= birth <= (today if today is not None else datetime.date.today()):
        return False
    return national_id_check_char(body) == check


def is_mainland_mobile(value: object) -> bool:
    """True if ``value`` is a mainland China mobile number: 11 digits matching ``1[3-9]\\d{9}``.

    Accepted decorations: a "+86" or "86" prefix (optionally followed by one space or dash), and
    3-4-4 grouping with spaces or with dashes ("138 1234 5678", "138-1234-5678"). Nothing else:
    no surrounding whitespace, no parentheses, no mixed separators inside the number.
    """
    return isinstance(value, str) and _MOBILE_RE.fullmatch(value) is not None
