"""Blind tokens: keyed HMAC-SHA256 stand-ins for the values of one protected field.

A `Tokenizer` holds one field's token key of one variant (`DataKeys.token_key(field, variant)`),
so the same value in two fields, or in two variants of one field, gives unrelated tokens.

Token: HMAC-SHA256(key, tag + NFKC(value)), truncated to 16 bytes, base32, lowercase, no padding
(26 characters of a-z and 2-7: safe as a keyword term). The tag separates the kinds of token that
share one key:

    exact and terms   b"x|" + value
    prefixes          b"p" + decimal length + b"|" + prefix   (length in code points)
    date parts        b"dy|" + "YYYY", b"dm|" + "YYYY-MM", b"dd|" + "YYYY-MM-DD"

Leaks (to whoever holds the index files): equal values give equal tokens, so a reader learns which
documents share a value and how often each value occurs, and, with prefixes or date parts, which
share a prefix, a year or a month. Never the values themselves.

Nothing here puts a value into an error message.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from .keyed import KeyedMac

TOKEN_BYTES = 16
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_B32 = "abcdefghijklmnopqrstuvwxyz234567"
_PAIRS = [a + b for a in _B32 for b in _B32]  # 10 bits → two base32 characters
MEMO_ENTRIES = 100_000  # per tokenizer: names and CJK bigrams repeat, HMACs are the cost of ingest


def _b32(mac: bytes, p: list[str] = _PAIRS) -> str:
    """RFC 4648 base32 of 16 bytes, lowercase, unpadded (26 characters): 13 lookups of 10 bits each,
    written out (3x faster than a generator or `base64.b32encode`; ingest mints a token per term)."""
    n = int.from_bytes(mac, "big") << 2  # 130 bits: 13 pairs of characters
    return (p[n >> 120] + p[(n >> 110) & 0x3FF] + p[(n >> 100) & 0x3FF] + p[(n >> 90) & 0x3FF]
            + p[(n >> 80) & 0x3FF] + p[(n >> 70) & 0x3FF] + p[(n >> 60) & 0x3FF] + p[(n >> 50) & 0x3FF]
            + p[(n >> 40) & 0x3FF] + p[(n >> 30) & 0x3FF] + p[(n >> 20) & 0x3FF] + p[(n >> 10) & 0x3FF]
            + p[n & 0x3FF])


class Tokenizer:
    """Deterministic keyed tokens for one field and variant."""

    __slots__ = ("_mac", "_memos", "_exact")

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) != 32:
            raise ValueError("a token key is 32 bytes")
        self._mac = KeyedMac(key)
        self._memos: dict[bytes, dict[str, str]] = {}  # per tag: text → token
        self._exact = self._memo(b"x|")

    def _memo(self, tag: bytes) -> dict[str, str]:
        memo = self._memos.get(tag)
        if memo is None:
            memo = self._memos[tag] = {}
        return memo

    def _mint(self, tag: bytes, text: str, memo: dict[str, str]) -> str:
        normalized = text if text.isascii() else unicodedata.normalize("NFKC", text)  # NFKC keeps ASCII as is
        token = _b32(self._mac.digest(tag + normalized.encode("utf-8", "surrogatepass"))[:TOKEN_BYTES])
        if len(memo) >= MEMO_ENTRIES:
            memo.clear()
        memo[text] = token
        return token

    def _token(self, tag: bytes, text: str) -> str:
        memo = self._memo(tag)
        token = memo.get(text)
        return token if token is not None else self._mint(tag, text, memo)

    def exact(self, value: str) -> str:
        """The token of a whole value (keyword equality)."""
        token = self._exact.get(value)
        return token if token is not None else self._mint(b"x|", value, self._exact)

    def terms(self, tokens: list[str]) -> list[str]:
        """The tokens of analyzed terms, in order, so positions (and phrases) survive."""
        memo = self._exact
        out = []
        for text in tokens:
            token = memo.get(text)
            out.append(token if token is not None else self._mint(b"x|", text, memo))
        return out

    def prefixes(self, value: str, lengths: tuple[int, ...]) -> list[str]:
        """Tokens of the value's prefixes of the given lengths (code points, after NFKC), in the
        order given. Lengths longer than the value give no token, so a short value does not match
        a longer prefix query."""
        if any(type(n) is not int or n < 1 for n in lengths):
            raise ValueError("prefix lengths are positive integers")
        normalized = value if value.isascii() else unicodedata.normalize("NFKC", value)
        return [self._token(b"p%d|" % n, normalized[:n]) for n in lengths if n <= len(normalized)]

    def date_parts(self, iso_date: str) -> list[str]:
        """Tokens of the year, the year and month, and the full date of a "YYYY-MM-DD" date."""
        if not isinstance(iso_date, str) or not _ISO_DATE.fullmatch(iso_date):
            raise ValueError("date tokens need a date written YYYY-MM-DD")
        try:
            date.fromisoformat(iso_date)
        except ValueError:
            raise ValueError("date tokens need a valid calendar date written YYYY-MM-DD") from None
        return [self._token(b"dy|", iso_date[:4]), self._token(b"dm|", iso_date[:7]),
                self._token(b"dd|", iso_date)]

    def __repr__(self) -> str:
        return "Tokenizer(<key hidden>)"
