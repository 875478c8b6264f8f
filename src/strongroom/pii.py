"""Detectors and validators for personal identifiers (PII).

Pure functions only: no I/O, no global state, no logging. Every function accepts any object and
answers ``False`` for a non-string instead of raising, except where stated.

The ``is_*`` validators judge a value exactly as given (no stripping). ``detect`` is the entry point
for ingestion: it strips the value, also accepts ints, and names every detector that fires on the
*whole* value (an identifier inside a sentence is not a match). See ``DETECTORS`` for the names.

Chinese resident identity numbers (居民身份证号码) follow GB 11643-1999:

    positions  1-6   administrative region code of the place of household registration
               7-14  date of birth, YYYYMMDD
               15-17 sequence code; the 17th digit is odd for men and even for women
               18    check character, ISO 7064 MOD 11-2 over the first 17 digits ("0"-"9" or "X")
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "DETECTORS",
    "PROVINCE_CODES",
    "detect",
    "find_in_document",
    "is_bank_card",
    "is_email",
    "is_mainland_mobile",
    "is_passport_like",
    "is_valid_national_id",
    "national_id_check_char",
]

# Names ``detect`` reports, in the order it reports them.
DETECTORS: tuple[str, ...] = ("national_id", "mobile", "bank_card", "email", "passport")

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


# --------------------------------------------------------------------------- bank cards

_CARD_MIN_DIGITS, _CARD_MAX_DIGITS = 13, 19
_CARD_MAX_LENGTH = 2 * _CARD_MAX_DIGITS - 1  # every digit followed by a separator except the last
# Luhn: the value a digit contributes when it is doubled (2*d, minus 9 when that has two digits).
_LUHN_DOUBLED: tuple[int, ...] = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        total += _LUHN_DOUBLED[digit] if position % 2 else digit
    return total % 10 == 0


def _plausible_issuer(digits: str) -> bool:
    two, four = digits[:2], digits[:4]
    if two in ("34", "37"):  # American Express: always 15 digits
        return len(digits) == 15
    return (
        two == "62"  # China UnionPay
        or two[0] == "4"  # Visa
        or "51" <= two <= "55"  # Mastercard
        or "2221" <= four <= "2720"  # Mastercard 2-series
        or "3528" <= four <= "3589"  # JCB
    )  # Equal-length digit strings compare like the numbers they spell.


def is_bank_card(value: object) -> bool:
    """True if ``value`` looks like a payment card number (PAN) that could have been issued.

    Rules, all required:

    * 13-19 ASCII digits, written plainly or in groups separated by single spaces or by single
      dashes (one kind per number: "6222 0212 3456 7890", "4111-1111-1111-1111"; group sizes are
      free, so Amex's 4-6-5 is fine). No surrounding whitespace, no other characters.
    * An issuer prefix: China UnionPay 62; Visa 4; Mastercard 51-55 or 2221-2720; American
      Express 34 or 37, with exactly 15 digits; JCB 3528-3589. Other networks (Discover, Diners,
      Maestro, ...) are not recognised.
    * The Luhn (mod 10) check digit.
    * Not a single repeated digit ("4444 4444 4444 4444 4", which passes Luhn, is a placeholder).
    """
    if not isinstance(value, str) or not _CARD_MIN_DIGITS <= len(value) <= _CARD_MAX_LENGTH:
        return False
    if value[0] not in "23456" or not value.isascii():  # Cheap: every accepted prefix starts so.
        return False
    separator = " " if " " in value else "-"
    if separator == " " and "-" in value:
        return False  # mixed separators
    groups = value.split(separator)
    if not all(group.isdigit() for group in groups):  # An empty group means a doubled/edge separator.
        return False
    digits = "".join(groups) if len(groups) > 1 else value
    if not _CARD_MIN_DIGITS <= len(digits) <= _CARD_MAX_DIGITS or digits.count(digits[0]) == len(digits):
        return False
    return _plausible_issuer(digits) and _luhn_ok(digits)


# --------------------------------------------------------------------------- e-mail addresses

_EMAIL_MAX_LENGTH = 254  # RFC 5321 path limit (256) minus the angle brackets
_LOCAL_MAX_LENGTH = 64
_DOMAIN_MAX_LENGTH = 253
_ATEXT = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+/=?^_`{|}~-")
_LDH = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-")


def _is_host_label(label: str) -> bool:
    return 0 < len(label) <= 63 and label[0] != "-" and label[-1] != "-" and set(label) <= _LDH


def is_email(value: object) -> bool:
    """True if ``value`` is a plausible e-mail address ``local@domain.tld`` (pragmatic, not RFC 5322).

    Rules, all required:

    * ASCII only, at most 254 characters, exactly one "@", no whitespace anywhere.
    * Local part: 1-64 characters, dot-separated non-empty atoms of letters, digits and
      ``!#$%&'*+/=?^_`{|}~-`` (no leading, trailing or doubled dot).
    * Domain: at most 253 characters, at least two dot-separated labels, each 1-63 letters, digits
      or hyphens, not starting or ending with a hyphen; no trailing dot.
    * Top-level label: at least 2 letters, or an IDNA A-label ("xn--...").

    Not accepted: quoted local parts, comments, IP-address literals ("user@[10.0.0.1]"), and
    internationalised addresses (a domain must be written in its "xn--" form).
    """
    if not isinstance(value, str) or not 6 <= len(value) <= _EMAIL_MAX_LENGTH or not value.isascii():
        return False
    local, _, domain = value.partition("@")
    if not 0 < len(local) <= _LOCAL_MAX_LENGTH or len(domain) > _DOMAIN_MAX_LENGTH:
        return False
    if not all(atom and set(atom) <= _ATEXT for atom in local.split(".")):
        return False  # "@", whitespace and control characters are not atext: a second "@" fails here
    labels = domain.split(".")
    if len(labels) < 2 or not all(_is_host_label(label) for label in labels):
        return False  # "@" in the domain fails the label check too
    tld = labels[-1]
    return (len(tld) >= 2 and tld.isalpha()) or tld[:4].lower() == "xn--"


# --------------------------------------------------------------------------- passports

_PASSPORT_RE = re.compile(r"[A-Za-z]{1,2}[0-9]{7,8}")


def is_passport_like(value: object) -> bool:
    """True if ``value`` has the shape of a passport number: 1-2 letters, then 7-8 digits.

    Letters may be upper- or lower-case. The shape covers the Chinese passport numbers
    (ordinary "E" or "G" + 8 digits, e.g. "E12345678"; the 2012+ "E" + letter + 7 digits, e.g.
    "EA1234567"; public-affairs, service and diplomatic "P", "S", "D" + 7 digits) and the
    generic form many other countries use. It is a shape check only: there is no check digit, so
    other codes of the same shape (order numbers, say) match too.
    """
    return isinstance(value, str) and 8 <= len(value) <= 10 and _PASSPORT_RE.fullmatch(value) is not None


# --------------------------------------------------------------------------- detection

_MAX_IDENTIFIER_LENGTH = 64  # Longer (stripped) values are never identifiers, except e-mail addresses.
_INT_LIMIT = 10**_MAX_IDENTIFIER_LENGTH  # ints with more digits are never identifiers


def _national_id_text(text: str) -> bool:
    return len(text) == 18 and is_valid_national_id(text)


def _mobile_text(text: str) -> bool:
    # is_mainland_mobile's notations, plus the international call prefix "0086" in place of "+86".
    if not 11 <= len(text) <= 18:
        return False
    if text.startswith("0086"):
        text = "+86" + text[4:]
    return is_mainland_mobile(text)


# The detectors that can fire on a value without an "@", in DETECTORS order.
_NON_EMAIL_CHECKS: tuple[tuple[str, Callable[[str], bool]], ...] = (
    ("national_id", _national_id_text),
    ("mobile", _mobile_text),
    ("bank_card", is_bank_card),
    ("passport", is_passport_like),
)


def detect(value: object) -> tuple[str, ...]:
    """The names of the detectors that fire on the whole of ``value``, in ``DETECTORS`` order.

    Accepts ``str`` and ``int``; anything else (``bool``, ``float``, ``bytes``, ``None``, ...)
    gives ``()``. Never raises. An ``int`` is judged by its decimal digits (JSON often carries phone
    numbers as numbers); a negative int, or one of more than 64 digits, gives ``()``.

    A string is stripped of surrounding whitespace first, then judged as a whole: "call
    13812345678 now" is not a match. Stripped strings longer than 64 characters give ``()``,
    except e-mail addresses (up to 254). Non-ASCII strings give ``()``: no detector accepts them.

    * "national_id": ``is_valid_national_id`` (today's date bounds the birth date).
    * "mobile": ``is_mainland_mobile``, or the same with "0086" in place of "+86"
      ("0086 138 1234 5678").
    * "bank_card": ``is_bank_card``.
    * "email": ``is_email``.
    * "passport": ``is_passport_like``.

    More than one name can fire: an 18-digit identity number may also pass as a UnionPay or Visa
    card number.
    """
    if isinstance(value, str):
        text = value.strip()
    elif isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value < _INT_LIMIT:  # Also keeps str() away from huge ints (it can raise).
            return ()
        text = str(value)
    else:
        return ()
    if not text or len(text) > _EMAIL_MAX_LENGTH or not text.isascii():
        return ()
    if "@" in text:  # Only an e-mail address holds an "@".
        return ("email",) if is_email(text) else ()
    if len(text) > _MAX_IDENTIFIER_LENGTH:
        return ()
    return tuple(name for name, check in _NON_EMAIL_CHECKS if check(text))


def find_in_document(document: object, fields: Mapping[str, Any]) -> dict[str, str]:
    """Every path of ``document`` (a parsed JSON value; dotted paths, arrays flattened) whose value
    ``detect`` names, each with the first detector that fired on its first such value; paths that
    ``fields`` maps as protected are skipped. ``fields``: path → an object whose ``protect`` is
    ``"none"`` for a plain field (a mapping's fields)."""
    found: dict[str, str] = {}
    _find(document, "", fields, found)
    return found


def _find(value: object, path: str, fields: Mapping[str, Any], found: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            _find(child, f"{path}.{key}" if path else key, fields, found)
        return
    if isinstance(value, list):
        for item in value:
            _find(item, path, fields, found)
        return
    if path in found:
        return
    field = fields.get(path)
    if field is not None and field.protect != "none":
        return
    names = detect(value)
    if names:
        found[path] = names[0]
