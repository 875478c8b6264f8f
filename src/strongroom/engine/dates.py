"""Elasticsearch date handling: `format` specs, parsing to epoch milliseconds, printing, date math.

Elasticsearch `date` fields hold epoch milliseconds (UTC, int64). A mapping's `format` is one or
more alternatives joined by `||`; each is a built-in name or a java.time DateTimeFormatter pattern.
Parsing tries the alternatives in order; printing (`key_as_string`, docvalue fields) uses the first.

Pure standard library. Every alternative is compiled once into a regular expression plus field
extractors (no `strptime`: it is slow and locale-dependent); `DateFormat.compile` caches by spec.
`strict_date_optional_time` has a fast path for the common shapes (`2024-01-31`,
`2024-01-31T10:00:00Z`, `...T10:00:00.123+01:00`).

Semantics, following Elasticsearch 8 (java.time, ResolverStyle.STRICT):

* Values without a zone are UTC, or in `tz` when one is given. Missing fields default to
  1970-01-01T00:00:00.000; with `round_up` (the `lte`/`gt` bound of a range query) missing hour,
  minute, second and fraction default to 23:59:59.999 instead, as Elasticsearch does.
* Out-of-range fields are errors, not rollovers: 2024-02-30, month 13, hour 24, minute 60.
* Fractions beyond milliseconds are truncated (floored) to the millisecond, as are fractional
  `epoch_millis` (`"1.5"` -> 1, `"-1.5"` -> -2, i.e. java `Instant.toEpochMilli`).
* Range: epoch milliseconds are computed arithmetically (days-from-civil), not through
  `datetime`, so every year whose instant fits in a signed 64-bit millisecond count works
  (about -292275055 .. 292278994). Anything that does not fit raises DateParseError.
  Time zones with rules (zoneinfo) are evaluated through `datetime`; years outside 1..9999 are
  shifted by whole 400-year Gregorian cycles (which repeat exactly) to look their offset up.
* `tz` is a PEP 495 tzinfo: `zoneinfo.ZoneInfo` or `datetime.timezone` (not pytz). Wall-clock
  times resolve like java's ZonedDateTime: a time in a DST gap moves forward by the gap, a time in
  an overlap takes the earlier instant (date math keeps the offset already in force).
* Date math (`parse_date_math`) follows Elasticsearch's JavaDateMathParser, including its error
  messages; y/M/w/d arithmetic and every rounding is wall-clock in `tz`, h/m/s are exact durations.

Named formats: epoch_millis, epoch_second, date_optional_time, strict_date_optional_time,
strict_date_optional_time_nanos (parsed to millis, truncating), iso8601, and the basic_*, date*,
hour*, ordinal_date*, time*, t_time*, year* families with their strict_ variants. Strict variants
require zero-padded fields; the lenient ones accept 1-digit months, days, hours and so on.

Java patterns: letters y u Y(taken as y) M/L (MMM/MMMM: English month names) d D H h K k m s
S (fraction, exactly as many digits as letters) a E (English day names; checked against the date,
as java's strict resolver does) Z X x (offsets); 'quoted' literals ('' is a quote); [optional]
sections; any other non-letter character (including CJK text such as 年月日) is a literal.

Deliberately not supported (DateFormatError "... is not supported" at compile time):
* week-based formats (week_date, weekyear*, basic_week_date* and their strict_ variants) and the
  pattern letters w W e c F Q q G A n N g B p (Y is read as the year, not the week-based year);
* zone names and region ids: pattern letters z v V O, and region ids such as `Europe/Paris`
  inside values (only `Z` and numeric offsets are parsed; `tz` itself may be any zone);
* narrow (5-letter) month and day names, and `ZZZZ` (localized GMT offset).

Deliberate differences from Elasticsearch:
* a bare `T` in a pattern is accepted as a literal (java requires `'T'`);
* `h` without `a` is read as AM (java leaves such a time unresolved and silently drops it);
* dates without a month but with a time of day keep their year (java falls back to 1970).

Beyond the briefed API: `DateMathError` (bad date math; a ValueError like the others) and
`detect_dynamic_date`, which returns the matching dynamic format (the new field's `format`).

`DEFAULT_DYNAMIC_DATE_FORMATS` is what Elasticsearch 8 really uses (RootObjectMapper): its
documentation says `yyyy/MM/dd HH:mm:ss Z||yyyy/MM/dd Z`, but with java.time `Z` that would demand
an offset and never match `2015/09/02`; the dynamically created field's format is
`yyyy/MM/dd HH:mm:ss||yyyy/MM/dd||epoch_millis`.
"""

from __future__ import annotations

import datetime
import functools
import re
from collections.abc import Callable, Sequence
from typing import Final, Protocol

__all__ = [
    "DEFAULT_DYNAMIC_DATE_FORMATS",
    "DEFAULT_FORMAT",
    "DateFormat",
    "DateFormatError",
    "DateMathError",
    "DateParseError",
    "detect_dynamic_date",
    "matches_dynamic_date",
    "parse_date_math",
]

DEFAULT_FORMAT: Final = "strict_date_optional_time||epoch_millis"
DEFAULT_DYNAMIC_DATE_FORMATS: Final = (
    "strict_date_optional_time",
    "yyyy/MM/dd HH:mm:ss||yyyy/MM/dd||epoch_millis",
)


class DateFormatError(ValueError):
    """An invalid `format` spec (unknown or unsupported pattern letter, bad quoting, ...)."""


class DateParseError(ValueError):
    """A value that none of the format's alternatives can parse."""

    def __init__(self, value: object, spec: str) -> None:
        super().__init__(f"failed to parse date field [{value}] with format [{spec}]")
        self.value = value
        self.spec = spec


class DateMathError(ValueError):
    """An invalid date math expression (bad operator, unit, rounding, or an overflowing result)."""


# ---------------------------------------------------------------------------------------------
# Calendar arithmetic on plain ints (proleptic Gregorian, astronomical years: 0 = 1 BC).

_MS_PER_DAY: Final = 86_400_000
_INT64_MIN: Final = -(1 << 63)
_INT64_MAX: Final = (1 << 63) - 1
_date: Final = datetime.date
_EPOCH_ORDINAL: Final = _date(1970, 1, 1).toordinal()
_DAYS_IN_MONTH: Final = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 (H. Hinnant's algorithm; Python's floor division handles y < 0)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m - 3 if m > 2 else m + 9) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def _civil_from_days(z: int) -> tuple[int, int, int]:
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (m <= 2), m, d


def _is_leap(y: int) -> bool:
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def _days_in_month(y: int, m: int) -> int:
    return 29 if m == 2 and _is_leap(y) else _DAYS_IN_MONTH[m]


# ---------------------------------------------------------------------------------------------
# Time zones. "local" millis are wall-clock fields encoded as if they were UTC.

_ONE_MS: Final = datetime.timedelta(milliseconds=1)
_EPOCH_UTC: Final = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_EPOCH_NAIVE: Final = datetime.datetime(1970, 1, 1)
_CYCLE_MS: Final = 146097 * _MS_PER_DAY  # 400 Gregorian years: calendar and weekdays repeat
_SAFE_LO_MS: Final = _days_from_civil(2, 1, 1) * _MS_PER_DAY
_SAFE_HI_MS: Final = _days_from_civil(9998, 1, 1) * _MS_PER_DAY
_fixed_offsets: dict[datetime.tzinfo, int | None] = {}


def _fixed_offset_ms(tz: datetime.tzinfo) -> int | None:
    """The zone's constant offset in ms, or None when it depends on the date (zoneinfo)."""
    try:
        return _fixed_offsets[tz]
    except KeyError:
        pass
    except TypeError:  # unhashable tzinfo
        off = tz.utcoffset(None)
        return None if off is None else off // _ONE_MS
    off = tz.utcoffset(None)
    result = None if off is None else off // _ONE_MS
    if len(_fixed_offsets) < 4096:
        _fixed_offsets[tz] = result
    return result


def _cycle_shift(ms: int) -> int:
    """A multiple of 400 years moving `ms` into years 2..9997, where `datetime` can work."""
    if ms < _SAFE_LO_MS:
        return ((_SAFE_LO_MS - ms) // _CYCLE_MS + 1) * _CYCLE_MS
    if ms >= _SAFE_HI_MS:
        return -((ms - _SAFE_HI_MS) // _CYCLE_MS + 1) * _CYCLE_MS
    return 0


def _offset_at_utc(utc_ms: int, tz: datetime.tzinfo | None) -> int:
    """UTC offset in ms of `tz` at the instant `utc_ms`."""
    if tz is None:
        return 0
    fixed = _fixed_offset_ms(tz)
    if fixed is not None:
        return fixed
    ms = utc_ms + _cycle_shift(utc_ms)
    off = (_EPOCH_UTC + datetime.timedelta(milliseconds=ms)).astimezone(tz).utcoffset()
    return 0 if off is None else off // _ONE_MS


def _local_to_utc(local_ms: int, tz: datetime.tzinfo | None, prefer_ms: int | None = None) -> int:
    """Resolve wall-clock time in `tz` like java's ZonedDateTime.ofLocal.

    In a DST gap the time is pushed forward by the gap (the pre-transition offset is used); in an
    overlap the offset `prefer_ms` is kept when valid, else the earlier instant is chosen.
    """
    if tz is None:
        return local_ms
    fixed = _fixed_offset_ms(tz)
    if fixed is not None:
        return local_ms - fixed
    naive = _EPOCH_NAIVE + datetime.timedelta(milliseconds=local_ms + _cycle_shift(local_ms))
    off0 = naive.replace(tzinfo=tz).utcoffset()
    off1 = naive.replace(tzinfo=tz, fold=1).utcoffset()
    ms0 = 0 if off0 is None else off0 // _ONE_MS
    ms1 = 0 if off1 is None else off1 // _ONE_MS
    # PEP 495: in an overlap fold=0 is the earlier instant (larger offset); in a gap fold=0 is the
    # offset from before the transition, which is exactly java's "shift forward by the gap".
    if ms1 < ms0 and prefer_ms == ms1:
        return local_ms - ms1
    return local_ms - ms0


# ---------------------------------------------------------------------------------------------
# Field extraction. Each capturing group of a compiled alternative feeds one slot.

(_S_YEAR, _S_MONTH, _S_DAY, _S_DOY, _S_HOUR, _S_HOUR_AMPM, _S_AMPM,
 _S_MINUTE, _S_SECOND, _S_NANO, _S_OFFSET, _S_DOW) = range(12)
_NSLOTS: Final = 12

_MONTHS_SHORT: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS_FULL: Final = ("January", "February", "March", "April", "May", "June", "July",
                       "August", "September", "October", "November", "December")
_DAYS_SHORT: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_DAYS_FULL: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@functools.lru_cache(maxsize=512)
def _offset_seconds(text: str) -> int | None:
    """`Z`, `+HH`, `+HHmm`, `+HH:mm`, `+HH:mm:ss`, ... -> seconds east of UTC (None if invalid)."""
    if text == "Z":
        return 0
    digits = text[1:].replace(":", "")
    hh, mm, ss = int(digits[0:2]), int(digits[2:4] or 0), int(digits[4:6] or 0)
    total = hh * 3600 + mm * 60 + ss
    if mm > 59 or ss > 59 or total > 18 * 3600:
        return None
    return -total if text[0] == "-" else total


def _conv_yoe(g: str) -> int | None:  # year-of-era (pattern letter y): 1 and up
    v = int(g)
    return v if v >= 1 else None


def _conv_clock_hour_ampm(g: str) -> int | None:  # h: 1..12 -> hour-of-am-pm 0..11
    v = int(g)
    return v % 12 if 1 <= v <= 12 else None


def _conv_hour_ampm(g: str) -> int | None:  # K: 0..11
    v = int(g)
    return v if v <= 11 else None


def _conv_clock_hour_day(g: str) -> int | None:  # k: 1..24 -> 0..23
    v = int(g)
    return v % 24 if 1 <= v <= 24 else None


def _conv_fraction(g: str) -> int:  # digits after the decimal point -> nanoseconds
    return int(g.ljust(9, "0"))


_CODES: Final[dict[str, tuple[int, Callable[[str], int | None]]]] = {
    "year": (_S_YEAR, int),
    "yoe": (_S_YEAR, _conv_yoe),
    "year2": (_S_YEAR, lambda g: 2000 + int(g)),
    "month": (_S_MONTH, int),
    "month_short": (_S_MONTH, {n: i + 1 for i, n in enumerate(_MONTHS_SHORT)}.get),
    "month_full": (_S_MONTH, {n: i + 1 for i, n in enumerate(_MONTHS_FULL)}.get),
    "day": (_S_DAY, int),
    "doy": (_S_DOY, int),
    "hour": (_S_HOUR, int),
    "clock_hour_day": (_S_HOUR, _conv_clock_hour_day),
    "clock_hour_ampm": (_S_HOUR_AMPM, _conv_clock_hour_ampm),
    "hour_ampm": (_S_HOUR_AMPM, _conv_hour_ampm),
    "ampm": (_S_AMPM, {"AM": 0, "PM": 1}.get),
    "minute": (_S_MINUTE, int),
    "second": (_S_SECOND, int),
    "fraction": (_S_NANO, _conv_fraction),
    "offset": (_S_OFFSET, _offset_seconds),
    "dow_short": (_S_DOW, {n: i + 1 for i, n in enumerate(_DAYS_SHORT)}.get),
    "dow_full": (_S_DOW, {n: i + 1 for i, n in enumerate(_DAYS_FULL)}.get),
}


def _resolve(v: list[int | None], tz: datetime.tzinfo | None, round_up: bool) -> int | None:
    """Validate parsed fields (java STRICT resolver rules) and turn them into epoch millis."""
    year, month, day, doy, hour, hour_ampm, ampm, minute, second, nano, offset, dow = v
    if year is None:
        year = 1970
    if doy is not None:
        if not 1 <= doy <= (366 if _is_leap(year) else 365):
            return None
        days = _days_from_civil(year, 1, 1) + doy - 1
        if month is not None or day is not None:
            _, m2, d2 = _civil_from_days(days)
            if (month is not None and month != m2) or (day is not None and day != d2):
                return None
    else:
        if month is None:
            month = 1
        if day is None:
            day = 1
        if 0 < year < 10000:
            try:  # datetime.date validates month and day, in C
                days = _date(year, month, day).toordinal() - _EPOCH_ORDINAL
            except ValueError:
                return None
        elif 1 <= month <= 12 and 1 <= day <= _days_in_month(year, month):
            days = _days_from_civil(year, month, day)
        else:
            return None
    if dow is not None and (days + 3) % 7 + 1 != dow:  # 1970-01-01 was a Thursday (4)
        return None
    if hour_ampm is not None:
        derived = hour_ampm + 12 * (ampm or 0)
        if hour is not None and hour != derived:
            return None
        hour = derived
    elif hour is not None and ampm is not None and hour // 12 != ampm:
        return None
    if hour is None:
        hour = 23 if round_up else 0
    elif hour > 23:
        return None
    if minute is None:
        minute = 59 if round_up else 0
    elif minute > 59:
        return None
    if second is None:
        second = 59 if round_up else 0
    elif second > 59:
        return None
    if nano is None:
        nano = 999_999_999 if round_up else 0
    local = days * _MS_PER_DAY + ((hour * 60 + minute) * 60 + second) * 1000 + nano // 1_000_000
    if offset is not None:
        utc = local - offset * 1000
    elif tz is None:
        utc = local
    else:
        utc = _local_to_utc(local, tz)
    return utc if _INT64_MIN <= utc <= _INT64_MAX else None


# ---------------------------------------------------------------------------------------------
# Printing. A printer is a list of functions over the broken-down local time.

class _Fields:
    __slots__ = ("year", "month", "day", "hour", "minute", "second", "milli", "offset", "days")

    def __init__(self, millis: int, tz: datetime.tzinfo | None) -> None:
        off = _offset_at_utc(millis, tz)
        days, tod = divmod(millis + off, _MS_PER_DAY)
        self.year, self.month, self.day = _civil_from_days(days)
        self.hour, tod = divmod(tod, 3_600_000)
        self.minute, tod = divmod(tod, 60_000)
        self.second, self.milli = divmod(tod, 1000)
        self.offset = off // 1000  # seconds
        self.days = days


_Printer = Callable[[_Fields], str]


def _print_offset(seconds: int, pattern: str, no_offset: str) -> str:
    """Java appendOffset(pattern, noOffsetText) printing."""
    if seconds == 0:
        return no_offset
    sign = "-" if seconds < 0 else "+"
    hh, rest = divmod(abs(seconds), 3600)
    mm, ss = divmod(rest, 60)
    colon = ":" if ":" in pattern else ""
    out = f"{sign}{hh:02d}"
    body = pattern[3:].replace(":", "")  # "", "mm", "MM", "MMss", ...
    if body[:2] == "MM" or (body[:2] == "mm" and (mm or ss)):
        out += f"{colon}{mm:02d}"
        if body[2:] == "ss" and ss:
            out += f"{colon}{ss:02d}"
    return out


def _year_printer(count: int, signed: bool) -> _Printer:
    def print_year(f: _Fields) -> str:
        y = f.year if signed else (f.year if f.year > 0 else 1 - f.year)  # year-of-era for 'y'
        if count == 2:
            return f"{y % 100:02d}"
        s = str(abs(y)).zfill(count)
        if y < 0:
            return "-" + s
        return "+" + s if count >= 4 and len(s) > count else s

    return print_year


def _field_printer(letter: str, count: int) -> _Printer:
    if letter in "yY":
        return _year_printer(count, signed=False)
    if letter == "u":
        return _year_printer(count, signed=True)
    if letter in "ML":
        if count == 3:
            return lambda f: _MONTHS_SHORT[f.month - 1]
        if count == 4:
            return lambda f: _MONTHS_FULL[f.month - 1]
        return lambda f: str(f.month).zfill(count)
    simple: dict[str, Callable[[_Fields], int]] = {
        "d": lambda f: f.day,
        "H": lambda f: f.hour,
        "m": lambda f: f.minute,
        "s": lambda f: f.second,
        "h": lambda f: f.hour % 12 or 12,
        "K": lambda f: f.hour % 12,
        "k": lambda f: f.hour or 24,
        "D": lambda f: f.days - _days_from_civil(f.year, 1, 1) + 1,
    }
    if letter in simple:
        get = simple[letter]
        return lambda f: str(get(f)).zfill(count)
    if letter == "S":
        return lambda f: f"{f.milli:03d}000000"[:count]
    if letter == "a":
        return lambda f: "AM" if f.hour < 12 else "PM"
    if letter == "E":
        names = _DAYS_FULL if count == 4 else _DAYS_SHORT
        return lambda f: names[(f.days + 3) % 7]
    pattern, no_offset = _offset_style(letter, count)
    return lambda f: _print_offset(f.offset, pattern, no_offset)


# ---------------------------------------------------------------------------------------------
# Java pattern compilation.

_D2: Final = "[0-9]{2}"
_OFFSET_REGEX: Final = {
    "+HH": f"[+-]{_D2}",
    "+HHmm": f"[+-]{_D2}(?:{_D2})?",
    "+HHMM": f"[+-]{_D2}{_D2}",
    "+HH:mm": f"[+-]{_D2}(?::{_D2})?",
    "+HH:MM": f"[+-]{_D2}:{_D2}",
    "+HHMMss": f"[+-]{_D2}{_D2}(?:{_D2})?",
    "+HH:MM:ss": f"[+-]{_D2}:{_D2}(?::{_D2})?",
}
_OFFSET_STYLES: Final = ("+HHmm", "+HHMM", "+HH:MM", "+HHMMss", "+HH:MM:ss")
_UNSUPPORTED_LETTERS: Final = frozenset("GQqwWecFAnNVvzOpBg")
_RESERVED: Final = frozenset("{}#")


def _offset_style(letter: str, count: int) -> tuple[str, str]:
    """(java offset pattern, text used for a zero offset) for pattern letters Z, X and x."""
    if letter == "Z":
        return ("+HHMM", "+0000") if count <= 3 else ("+HH:MM:ss", "Z")
    pattern = _OFFSET_STYLES[count - 1]
    if letter == "X":
        return pattern, "Z"
    return pattern, ("+00", "+0000", "+00:00", "+0000", "+00:00")[count - 1]


def _names_regex(names: Sequence[str]) -> str:
    return "(" + "|".join(sorted(names, key=len, reverse=True)) + ")"


def _field_regex(letter: str, count: int) -> tuple[str, str]:
    """Regex (exactly one capturing group) and field code for `count` repetitions of `letter`."""
    def too_many() -> DateFormatError:
        return DateFormatError(f"Too many pattern letters: {letter}")

    if letter in "yYu":
        signed = letter == "u"
        code = "year" if signed else "yoe"
        sign = "-?" if signed else ""
        if count == 2:
            return f"({_D2})", "year2"
        if count < 4:
            return f"({sign}[0-9]{{{count},9}})", code
        width = f"[0-9]{{{count}}}"
        if count >= 9:
            return f"({sign}{width})", code
        neg = f"|-[0-9]{{{count},9}}" if signed else ""
        return f"({width}|\\+[0-9]{{{count + 1},9}}{neg})", code  # java SignStyle.EXCEEDS_PAD
    if letter in "ML":
        if count <= 2:
            return ("([0-9]{1,2})" if count == 1 else f"({_D2})"), "month"
        if count == 3:
            return _names_regex(_MONTHS_SHORT), "month_short"
        if count == 4:
            return _names_regex(_MONTHS_FULL), "month_full"
        if count == 5:
            raise DateFormatError("narrow month names (MMMMM) are not supported")
        raise too_many()
    two_digit = {"d": "day", "H": "hour", "m": "minute", "s": "second",
                 "h": "clock_hour_ampm", "K": "hour_ampm", "k": "clock_hour_day"}
    if letter in two_digit:
        if count > 2:
            raise too_many()
        return ("([0-9]{1,2})" if count == 1 else f"({_D2})"), two_digit[letter]
    if letter == "D":
        if count > 3:
            raise too_many()
        return f"([0-9]{{{count},3}})", "doy"
    if letter == "S":
        if count > 9:
            raise DateFormatError(f"Fraction width must be from 1 to 9 but was {count}")
        return f"([0-9]{{{count}}})", "fraction"
    if letter == "a":
        if count > 1:
            raise too_many()
        return "(AM|PM)", "ampm"
    if letter == "E":
        if count <= 3:
            return _names_regex(_DAYS_SHORT), "dow_short"
        if count == 4:
            return _names_regex(_DAYS_FULL), "dow_full"
        if count == 5:
            raise DateFormatError("narrow day names (EEEEE) are not supported")
        raise too_many()
    if letter in "ZXx":
        if count > 5:
            raise too_many()
        if letter == "Z" and count == 4:
            raise DateFormatError("localized offsets (ZZZZ) are not supported")
        pattern, no_offset = _offset_style(letter, count)
        return f"({re.escape(no_offset)}|{_OFFSET_REGEX[pattern]})", "offset"
    raise AssertionError(letter)  # pragma: no cover - letters are screened by the tokenizer


# A token: ("lit", text) | ("field", letter, count) | ("opt", tokens)
_Token = tuple


def _tokenize(pattern: str) -> list[_Token]:
    """Split a java DateTimeFormatter pattern (DateTimeFormatterBuilder.appendPattern rules)."""
    stack: list[list[_Token]] = [[]]
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "T":  # java rejects a bare T; accepted here as the literal it obviously means
            stack[-1].append(("lit", c))
            i += 1
        elif "A" <= c <= "Z" or "a" <= c <= "z":
            j = i
            while j < n and pattern[j] == c:
                j += 1
            if c in _UNSUPPORTED_LETTERS:
                raise DateFormatError(f"pattern letter [{c}] is not supported")
            if c not in "yuYMLdDHhKkmsSaEZXx":
                raise DateFormatError(f"Unknown pattern letter: {c}")
            stack[-1].append(("field", c, j - i))
            i = j
        elif c == "'":  # quoted literal; '' inside it is a quote, and '' alone is one too
            j = i + 1
            while j < n:
                if pattern[j] == "'":
                    if j + 1 < n and pattern[j + 1] == "'":
                        j += 1
                    else:
                        break
                j += 1
            if j >= n:
                raise DateFormatError(f"Pattern ends with an incomplete string literal: {pattern}")
            quoted = pattern[i + 1:j]
            stack[-1].append(("lit", quoted.replace("''", "'") if quoted else "'"))
            i = j + 1
        elif c == "[":
            stack.append([])
            i += 1
        elif c == "]":
            if len(stack) == 1:
                raise DateFormatError("Pattern invalid as it contains ] without previous [")
            inner = stack.pop()
            stack[-1].append(("opt", tuple(inner)))
            i += 1
        elif c in _RESERVED:
            raise DateFormatError(f"Pattern includes reserved character: '{c}'")
        else:
            stack[-1].append(("lit", c))
            i += 1
    while len(stack) > 1:  # java closes unterminated optional sections
        inner = stack.pop()
        stack[-1].append(("opt", tuple(inner)))
    return stack[0]


def _build(tokens: Sequence[_Token], codes: list[str], printers: list[_Printer]) -> str:
    """Regex for `tokens`; appends field codes and printers in group order."""
    parts: list[str] = []
    for tok in tokens:
        if tok[0] == "lit":
            parts.append(re.escape(tok[1]))
            text = tok[1]
            printers.append(lambda f, text=text: text)
        elif tok[0] == "field":
            rx, code = _field_regex(tok[1], tok[2])
            parts.append(rx)
            codes.append(code)
            printers.append(_field_printer(tok[1], tok[2]))
        else:
            parts.append("(?:" + _build(tok[1], codes, printers) + ")?")
    return "".join(parts)


def _compile_printer(pattern: str) -> tuple[_Printer, ...]:
    printers: list[_Printer] = []
    _build(_tokenize(pattern), [], printers)
    return tuple(printers)


# ---------------------------------------------------------------------------------------------
# Parsers (one per `||` alternative).

class _Parser(Protocol):
    def parse(self, text: str, tz: datetime.tzinfo | None, round_up: bool) -> int | None: ...
    def parse_int(self, value: int, tz: datetime.tzinfo | None, round_up: bool) -> int | None: ...
    def format(self, millis: int, tz: datetime.tzinfo | None) -> str: ...


class _RegexParser:
    """One alternative compiled to a regex (or several, tried in order) plus a printer."""

    __slots__ = ("_alternatives", "_printers")

    def __init__(self, alternatives: Sequence[tuple[str, Sequence[str]]],
                 printers: tuple[_Printer, ...]) -> None:
        compiled = []
        for regex, codes in alternatives:
            rx = re.compile(regex)
            assert rx.groups == len(codes), (regex, codes)
            handlers = tuple(_CODES[c] for c in codes)
            slots = tuple(slot for slot, _ in handlers)
            # Only int() conversions and no field twice: the loop can skip the checks.
            plain = all(conv is int for _, conv in handlers) and len(set(slots)) == len(slots)
            compiled.append((rx.fullmatch, handlers, slots if plain else None))
        self._alternatives = tuple(compiled)
        self._printers = printers

    def parse(self, text: str, tz: datetime.tzinfo | None, round_up: bool) -> int | None:
        for match, handlers, plain_slots in self._alternatives:
            m = match(text)
            if m is None:
                continue
            vals: list[int | None] = [None] * _NSLOTS
            if plain_slots is not None:
                for g, slot in zip(m.groups(), plain_slots):
                    if g is not None:
                        vals[slot] = int(g)
                result = _resolve(vals, tz, round_up)
                if result is not None:
                    return result
                continue
            for g, (slot, conv) in zip(m.groups(), handlers):
                if g is None:
                    continue
                value = conv(g)
                if value is None:
                    break
                old = vals[slot]
                if old is not None and old != value:  # the same field twice, disagreeing
                    break
                vals[slot] = value
            else:
                result = _resolve(vals, tz, round_up)
                if result is not None:
                    return result
        return None

    def parse_int(self, value: int, tz: datetime.tzinfo | None, round_up: bool) -> int | None:
        return self.parse(str(value), tz, round_up)

    def format(self, millis: int, tz: datetime.tzinfo | None) -> str:
        f = _Fields(millis, tz)
        return "".join(p(f) for p in self._printers)


# strict_date_optional_time's fast path hands `yyyy-MM-dd` and `yyyy-MM-ddTHH:mm[:ss[.f]][zone]` to
# the C-implemented fromisoformat, after character checks that make its acceptance and its result
# coincide with this format's: it reads ASCII digits only, truncates the fraction as we do, and
# raises for year 0000, hour 24 or Feb 30, which then take the general path (which decides).
_date_fromisoformat: Final = datetime.date.fromisoformat
_datetime_fromisoformat: Final = datetime.datetime.fromisoformat


# What may follow `HH:mm[:ss]` on the fast path: a fraction of 1..9 digits (after seconds only),
# then `Z` or `±HH:mm` up to 18:00.
# (fromisoformat alone would also take `+01:60`, `+19:00`, a bare `.` or 10+ fraction digits.)
_ISO_TAIL: Final = re.compile(
    r"(?:[.,]([0-9]{1,9}))?(Z|[+-](?:0[0-9]|1[0-7]):[0-5][0-9]|[+-]18:00)?").fullmatch


class _IsoParser(_RegexParser):
    """strict_date_optional_time, with fast paths for parsing and printing."""

    __slots__ = ()

    def parse(self, text: str, tz: datetime.tzinfo | None, round_up: bool) -> int | None:
        n = len(text)
        if n >= 10 and text[4] == "-" and text[7] == "-" and not round_up:
            if n == 10:
                try:
                    ms = (_date_fromisoformat(text).toordinal() - _EPOCH_ORDINAL) * _MS_PER_DAY
                except ValueError:
                    return _RegexParser.parse(self, text, tz, round_up)
                return ms if tz is None else _local_to_utc(ms, tz)
            if n >= 16 and text[10] == "T" and text[13] == ":":
                if n >= 19 and text[16] == ":":
                    tail, fraction_ok = text[19:], True
                else:
                    tail, fraction_ok = text[16:], False
                offset: int | None = None  # ms east of UTC, when the text has a zone
                naive_end = n
                if not tail:
                    pass
                elif tail == "Z" or (  # or `.123Z`, as JavaScript's toISOString writes
                        fraction_ok and tail[-1] == "Z" and tail[0] == "." and 2 < len(tail) <= 11
                        and tail[1:-1].isdigit() and tail.isascii()):
                    offset, naive_end = 0, n - 1
                else:
                    m = _ISO_TAIL(tail)
                    if m is None or (m.group(1) is not None and not fraction_ok):
                        return _RegexParser.parse(self, text, tz, round_up)
                    zone = m.group(2)
                    if zone is not None:
                        seconds = 0 if zone == "Z" else _offset_seconds(zone)
                        if seconds is None:
                            return None
                        offset, naive_end = seconds * 1000, n - len(zone)
                try:  # the naive part only: cheaper than letting fromisoformat build a tzinfo
                    delta = _datetime_fromisoformat(text[:naive_end]) - _EPOCH_NAIVE
                except ValueError:  # year 0000, Feb 30, hour 24, ...: the general path decides
                    return _RegexParser.parse(self, text, tz, round_up)
                ms = delta.days * _MS_PER_DAY + delta.seconds * 1000 + delta.microseconds // 1000
                if offset is not None:
                    return ms - offset
                return ms if tz is None else _local_to_utc(ms, tz)
        return _RegexParser.parse(self, text, tz, round_up)

    def format(self, millis: int, tz: datetime.tzinfo | None) -> str:
        if tz is None and -62135596800000 <= millis <= 253402300799999:  # years 1..9999 UTC
            dt = _EPOCH_NAIVE + datetime.timedelta(milliseconds=millis)
            return dt.isoformat(timespec="milliseconds") + "Z"
        return _RegexParser.format(self, millis, tz)


_EPOCH_MILLIS_RE: Final = re.compile(r"(-)?([0-9]{1,19})(?:\.([0-9]{0,6}))?").fullmatch
_EPOCH_SECOND_RE: Final = re.compile(r"(-)?([0-9]{1,19})(?:\.([0-9]{0,9}))?").fullmatch


class _EpochParser:
    """epoch_millis / epoch_second: optional minus, up to 19 digits, optional fraction."""

    __slots__ = ("_seconds",)

    def __init__(self, seconds: bool) -> None:
        self._seconds = seconds

    def parse(self, text: str, tz: datetime.tzinfo | None, round_up: bool) -> int | None:
        m = (_EPOCH_SECOND_RE if self._seconds else _EPOCH_MILLIS_RE)(text)
        if m is None:
            return None
        minus, whole, frac = m.groups()
        if self._seconds:
            nanos = int(whole) * 1_000_000_000 + (int(frac.ljust(9, "0")) if frac else 0)
        else:
            nanos = int(whole) * 1_000_000 + (int(frac.ljust(6, "0")) if frac else 0)
        millis = (-nanos if minus else nanos) // 1_000_000  # floor, like Instant.toEpochMilli
        if round_up and self._seconds and not frac:
            millis += 999  # Elasticsearch rounds a whole epoch second up to its last millisecond
        return millis if _INT64_MIN <= millis <= _INT64_MAX else None

    def parse_int(self, value: int, tz: datetime.tzinfo | None, round_up: bool) -> int | None:
        millis = value * 1000 + (999 if round_up else 0) if self._seconds else value
        return millis if _INT64_MIN <= millis <= _INT64_MAX else None

    def format(self, millis: int, tz: datetime.tzinfo | None) -> str:
        if not self._seconds:
            return str(millis)
        secs, ms = divmod(abs(millis), 1000)
        text = f"{secs}.{ms:03d}".rstrip("0") if ms else str(secs)
        return "-" + text if millis < 0 else text


# ---------------------------------------------------------------------------------------------
# Named formats. Templates are regexes with {PLACEHOLDER}s, each one a capturing group.

_PLACEHOLDERS: Final = {
    "Y4": (r"([0-9]{4}|\+[0-9]{5,9}|-[0-9]{4,9})", "year"),  # 4+ digits, java EXCEEDS_PAD
    "Y4N": (r"(-?[0-9]{4})", "year"),
    "Y15": (r"(-?[0-9]{1,5})", "year"),
    "Y": (r"(-?[0-9]{1,9})", "year"),
    "MM": (r"([0-9]{2})", "month"), "M": (r"([0-9]{1,2})", "month"),
    "dd": (r"([0-9]{2})", "day"), "d": (r"([0-9]{1,2})", "day"),
    "DDD": (r"([0-9]{3})", "doy"), "D": (r"([0-9]{1,3})", "doy"),
    "HH": (r"([0-9]{2})", "hour"), "H": (r"([0-9]{1,2})", "hour"),
    "mm": (r"([0-9]{2})", "minute"), "m": (r"([0-9]{1,2})", "minute"),
    "ss": (r"([0-9]{2})", "second"), "s": (r"([0-9]{1,2})", "second"),
    "F19": (r"([0-9]{1,9})", "fraction"),
    "F13": (r"([0-9]{1,3})", "fraction"),
    "F39": (r"([0-9]{3,9})", "fraction"),
    # appendZoneOrOffsetId (offsets only) or appendOffset("+HHmm", "Z")
    "Z": (r"(Z|[+-][0-9]{2}(?::[0-9]{2}(?::[0-9]{2})?|[0-9]{2})?)", "offset"),
}
_PLACEHOLDER_RE: Final = re.compile(r"\{(\w+)\}")


def _expand(template: str) -> tuple[str, list[str]]:
    codes: list[str] = []

    def substitute(m: re.Match[str]) -> str:
        regex, code = _PLACEHOLDERS[m.group(1)]
        codes.append(code)
        return regex

    return _PLACEHOLDER_RE.sub(substitute, template), codes


# Building blocks, transcribed from Elasticsearch's DateFormatters.
_YMD_STRICT = "{Y4}(?:-{MM}(?:-{dd})?)?"  # STRICT_YEAR_MONTH_DAY_FORMATTER: month, day optional
_YMD_LENIENT = "{Y15}(?:-{M}(?:-{d})?)?"  # DATE_FORMATTER
_ISO_PRINTER = "uuuu-MM-dd'T'HH:mm:ss.SSSXXX"

_NAMED: Final[dict[str, tuple[tuple[str, ...], str]]] = {
    "strict_date_optional_time": (
        (_YMD_STRICT + r"(?:T(?:{HH}(?::{mm}(?::{ss}(?:[.,]{F19})?)?)?)?{Z}?)?",), _ISO_PRINTER),
    "strict_date_optional_time_nanos": (
        (_YMD_STRICT + r"(?:T{HH}:{mm}:{ss}(?:[.,]{F39})?{Z}?)?",), _ISO_PRINTER),
    "date_optional_time": (
        (_YMD_LENIENT + r"(?:T(?:{H}(?::{m}(?::{s})?(?:[.,]{F19})?{Z}?)?)?)?",), _ISO_PRINTER),
    "basic_date": (("{Y4N}{MM}{dd}",), "uuuuMMdd"),
    "basic_date_time": ((r"{Y4N}{MM}{dd}T{HH}{mm}{ss}\.{F19}{Z}",), "uuuuMMdd'T'HHmmss.SSSXXX"),
    "basic_date_time_no_millis": (("{Y4N}{MM}{dd}T{HH}{mm}{ss}{Z}",), "uuuuMMdd'T'HHmmssXXX"),
    "basic_ordinal_date": (("{Y4}{DDD}",), "uuuuDDD"),
    "basic_ordinal_date_time": ((r"{Y4}{DDD}T{HH}{mm}{ss}\.{F19}{Z}",), "uuuuDDD'T'HHmmss.SSSXXX"),
    "basic_ordinal_date_time_no_millis": (("{Y4}{DDD}T{HH}{mm}{ss}{Z}",), "uuuuDDD'T'HHmmssXXX"),
    "basic_time": ((r"{HH}{mm}{ss}\.{F19}{Z}",), "HHmmss.SSSXXX"),
    "basic_time_no_millis": (("{HH}{mm}{ss}{Z}",), "HHmmssXXX"),
    "basic_t_time": ((r"T{HH}{mm}{ss}\.{F19}{Z}",), "'T'HHmmss.SSSXXX"),
    "basic_t_time_no_millis": (("T{HH}{mm}{ss}{Z}",), "'T'HHmmssXXX"),
    "date": ((_YMD_LENIENT,), "uuuu-MM-dd"),
    "strict_date": (("{Y4}-{MM}-{dd}",), "uuuu-MM-dd"),
    "date_hour": ((_YMD_LENIENT + "T{H}",), "uuuu-MM-dd'T'HH"),
    "strict_date_hour": (("{Y4}-{MM}-{dd}T{HH}",), "uuuu-MM-dd'T'HH"),
    "date_hour_minute": ((_YMD_LENIENT + "T{H}:{m}",), "uuuu-MM-dd'T'HH:mm"),
    "strict_date_hour_minute": (("{Y4}-{MM}-{dd}T{HH}:{mm}",), "uuuu-MM-dd'T'HH:mm"),
    "date_hour_minute_second": ((_YMD_LENIENT + "T{H}:{m}:{s}",), "uuuu-MM-dd'T'HH:mm:ss"),
    "strict_date_hour_minute_second": (("{Y4}-{MM}-{dd}T{HH}:{mm}:{ss}",), "uuuu-MM-dd'T'HH:mm:ss"),
    "date_hour_minute_second_millis": (
        (_YMD_LENIENT + r"T{H}:{m}:{s}\.{F13}",), "uuuu-MM-dd'T'HH:mm:ss.SSS"),
    "strict_date_hour_minute_second_millis": (
        (_YMD_STRICT + r"T{HH}:{mm}:{ss}\.{F19}",), "uuuu-MM-dd'T'HH:mm:ss.SSS"),
    "date_hour_minute_second_fraction": (
        (_YMD_LENIENT + r"T{H}:{m}:{s}\.{F19}",), "uuuu-MM-dd'T'HH:mm:ss.SSS"),
    "strict_date_hour_minute_second_fraction": (
        (_YMD_STRICT + r"T{HH}:{mm}:{ss}\.{F19}",), "uuuu-MM-dd'T'HH:mm:ss.SSS"),
    "date_time": ((_YMD_LENIENT + r"T{H}:{m}(?::{s}\.{F19})?{Z}",), _ISO_PRINTER),
    "strict_date_time": ((_YMD_STRICT + r"T{HH}:{mm}:{ss}(?:\.{F19})?{Z}",), _ISO_PRINTER),
    "date_time_no_millis": ((_YMD_LENIENT + "T{H}:{m}(?::{s})?{Z}?",), "uuuu-MM-dd'T'HH:mm:ssXXX"),
    "strict_date_time_no_millis": (
        (_YMD_STRICT + "T{HH}:{mm}:{ss}{Z}",), "uuuu-MM-dd'T'HH:mm:ssXXX"),
    "hour": (("{H}",), "HH"),
    "strict_hour": (("{HH}",), "HH"),
    "hour_minute": (("{H}:{m}",), "HH:mm"),
    "strict_hour_minute": (("{HH}:{mm}",), "HH:mm"),
    "hour_minute_second": (("{H}:{m}:{s}",), "HH:mm:ss"),
    "strict_hour_minute_second": (("{HH}:{mm}:{ss}",), "HH:mm:ss"),
    "hour_minute_second_millis": ((r"{H}:{m}:{s}\.{F13}",), "HH:mm:ss.SSS"),
    "strict_hour_minute_second_millis": ((r"{HH}:{mm}:{ss}\.{F19}",), "HH:mm:ss.SSS"),
    "hour_minute_second_fraction": ((r"{H}:{m}:{s}\.{F19}",), "HH:mm:ss.SSS"),
    "strict_hour_minute_second_fraction": ((r"{HH}:{mm}:{ss}\.{F19}",), "HH:mm:ss.SSS"),
    "ordinal_date": (("{Y4}-{D}",), "uuuu-DDD"),
    "strict_ordinal_date": (("{Y4}-{DDD}",), "uuuu-DDD"),
    "ordinal_date_time": (
        (r"{Y4}-{D}T{H}:{m}(?::{s}\.{F19})?{Z}",), "uuuu-DDD'T'HH:mm:ss.SSSXXX"),
    "strict_ordinal_date_time": (
        (r"{Y4}-{DDD}T{HH}:{mm}(?::{ss}\.{F19})?{Z}",), "uuuu-DDD'T'HH:mm:ss.SSSXXX"),
    "ordinal_date_time_no_millis": (("{Y4}-{D}T{H}:{m}:{s}{Z}",), "uuuu-DDD'T'HH:mm:ssXXX"),
    "strict_ordinal_date_time_no_millis": (
        ("{Y4}-{DDD}T{HH}:{mm}:{ss}{Z}",), "uuuu-DDD'T'HH:mm:ssXXX"),
    "time": ((r"{H}:{m}:{s}\.{F19}{Z}",), "HH:mm:ss.SSSXXX"),
    "strict_time": ((r"{HH}:{mm}:{ss}\.{F19}{Z}",), "HH:mm:ss.SSSXXX"),
    "time_no_millis": (("{H}:{m}:{s}{Z}",), "HH:mm:ssXXX"),
    "strict_time_no_millis": (("{HH}:{mm}:{ss}{Z}",), "HH:mm:ssXXX"),
    "t_time": ((r"T{H}:{m}:{s}\.{F19}{Z}",), "'T'HH:mm:ss.SSSXXX"),
    "strict_t_time": ((r"T{HH}:{mm}:{ss}\.{F19}{Z}",), "'T'HH:mm:ss.SSSXXX"),
    "t_time_no_millis": (("T{H}:{m}:{s}{Z}",), "'T'HH:mm:ssXXX"),
    "strict_t_time_no_millis": (("T{HH}:{mm}:{ss}{Z}",), "'T'HH:mm:ssXXX"),
    "year": (("{Y}",), "u"),
    "strict_year": (("{Y4}",), "uuuu"),
    "year_month": (("{Y}-{M}",), "uuuu-MM"),
    "strict_year_month": (("{Y4}-{MM}",), "uuuu-MM"),
    "year_month_day": (("{Y}-{M}-{d}",), "uuuu-MM-dd"),
    "strict_year_month_day": ((_YMD_STRICT,), "uuuu-MM-dd"),
}
_NAMED["iso8601"] = _NAMED["strict_date_optional_time"]

_WEEK_BASED: Final = frozenset({
    "basic_week_date", "strict_basic_week_date", "basic_week_date_time",
    "strict_basic_week_date_time", "basic_week_date_time_no_millis",
    "strict_basic_week_date_time_no_millis", "week_date", "strict_week_date", "week_date_time",
    "strict_week_date_time", "week_date_time_no_millis", "strict_week_date_time_no_millis",
    "weekyear", "week_year", "strict_weekyear", "weekyear_week", "strict_weekyear_week",
    "weekyear_week_day", "strict_weekyear_week_day",
})


@functools.lru_cache(maxsize=1024)
def _compile_alternative(name: str) -> _Parser:
    """One `||` alternative (already stripped) -> parser. Raises DateFormatError."""
    if name == "epoch_millis":
        return _EpochParser(seconds=False)
    if name == "epoch_second":
        return _EpochParser(seconds=True)
    if name in _WEEK_BASED:
        raise DateFormatError(f"Invalid format: [{name}]: week-based formats are not supported")
    named = _NAMED.get(name)
    try:
        if named is not None:
            templates, printer = named
            cls = _IsoParser if printer == _ISO_PRINTER and name in (
                "strict_date_optional_time", "iso8601") else _RegexParser
            return cls([_expand(t) for t in templates], _compile_printer(printer))
        codes: list[str] = []
        printers: list[_Printer] = []
        regex = _build(_tokenize(name), codes, printers)
        return _RegexParser([(regex, codes)], tuple(printers))
    except DateFormatError as e:
        raise DateFormatError(f"Invalid format: [{name}]: {e}") from None


# ---------------------------------------------------------------------------------------------
# Public API.

def _float_text(value: float) -> str:
    text = repr(value)
    if "e" in text and value.is_integer() and abs(value) < 1e19:  # 1e+16 -> "10000000000000000"
        return str(int(value))
    return text


class DateFormat:
    """A compiled `format` spec: alternatives joined by `||`, tried in order."""

    __slots__ = ("spec", "_parsers", "_parse_first", "_parse_rest")

    spec: str

    def __init__(self, spec: str) -> None:
        if not isinstance(spec, str):
            raise DateFormatError(f"Invalid format: [{spec}]: a format must be a string")
        parsers = []
        for part in spec.split("||"):
            name = part.strip()
            if not name:
                raise DateFormatError(f"Invalid format: [{spec}]: No date pattern provided")
            parsers.append(_compile_alternative(name))
        self.spec = spec
        self._parsers: tuple[_Parser, ...] = tuple(parsers)
        self._parse_first = parsers[0].parse  # bound methods, looked up once
        self._parse_rest = tuple(p.parse for p in parsers[1:])

    @classmethod
    def compile(cls, spec: str) -> DateFormat:
        """The (cached) DateFormat for `spec`; raises DateFormatError."""
        if cls is DateFormat and isinstance(spec, str):
            return _compile_cached(spec)
        return cls(spec)

    def parse(self, value: str | int | float, *, tz: datetime.tzinfo | None = None) -> int:
        """Epoch milliseconds (UTC) of `value`; `tz` applies to values without a zone."""
        if type(value) is str:
            result = self._parse_first(value, tz, False)
            if result is not None:
                return result
            for parse in self._parse_rest:
                result = parse(value, tz, False)
                if result is not None:
                    return result
            raise DateParseError(value, self.spec)
        return self._parse(value, tz, False)

    def _parse(self, value: object, tz: datetime.tzinfo | None, round_up: bool) -> int:
        """Like parse(); `round_up` fills missing time fields with their maximum (lte/gt bounds)."""
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int):
            for parser in self._parsers:
                result = parser.parse_int(value, tz, round_up)
                if result is not None:
                    return result
            raise DateParseError(value, self.spec)
        elif isinstance(value, float):
            text = _float_text(value)
        elif isinstance(value, str):
            text = value
        else:
            raise DateParseError(value, self.spec)
        for parser in self._parsers:
            result = parser.parse(text, tz, round_up)
            if result is not None:
                return result
        raise DateParseError(text, self.spec)

    def format(self, millis: int, *, tz: datetime.tzinfo | None = None) -> str:
        """Render with the first alternative, in `tz` (UTC by default)."""
        return self._parsers[0].format(millis, tz)

    def __repr__(self) -> str:
        return f"DateFormat({self.spec!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DateFormat) and other.spec == self.spec

    def __hash__(self) -> int:
        return hash(self.spec)


@functools.lru_cache(maxsize=1024)
def _compile_cached(spec: str) -> DateFormat:
    return DateFormat(spec)


# Strings java's Long.parseLong or Double.parseDouble accept: Elasticsearch never date-detects them.
_JAVA_NUMBER: Final = re.compile(
    r"[\x00-\x20]*[+-]?(?:NaN|Infinity"
    r"|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fFdD]?"
    r"|0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+[fFdD]?)[\x00-\x20]*"
).fullmatch


def detect_dynamic_date(value: str, formats: Sequence[str] = DEFAULT_DYNAMIC_DATE_FORMATS) -> str | None:
    """The first of `formats` that parses `value` (dynamic mapping's date detection), else None.

    Like Elasticsearch, strings that read as numbers are never dates.
    """
    if _JAVA_NUMBER(value):
        return None
    for spec in formats:
        try:
            DateFormat.compile(spec).parse(value)
        except DateParseError:
            continue
        return spec
    return None


def matches_dynamic_date(value: str, formats: Sequence[str] = DEFAULT_DYNAMIC_DATE_FORMATS) -> bool:
    """Whether dynamic mapping would map the string `value` as a date."""
    return detect_dynamic_date(value, formats) is not None


_HOUR_MS: Final = 3_600_000
_TIME_UNIT_MS: Final = {"h": _HOUR_MS, "H": _HOUR_MS, "m": 60_000, "s": 1000}
_MAX_INT32: Final = (1 << 31) - 1


def parse_date_math(expr: str, *, now_millis: int, fmt: DateFormat, round_up: bool = False,
                    tz: datetime.tzinfo | None = None) -> int:
    """Evaluate Elasticsearch date math: `now` or `<date>||`, then `+N<unit>`, `-N<unit>`, `/<unit>`.

    Units y M w d h H m s. `/unit` rounds down to the start of the unit, or with `round_up` to its
    last millisecond (used for `lte` and `gt`). Without `||`, `expr` is a plain date parsed with
    `fmt`, missing time fields rounding up when `round_up` is set. Calendar arithmetic and rounding
    happen in `tz` (UTC by default); `now` itself is unaffected by `tz`.
    Raises DateParseError (bad date) or DateMathError (bad math).
    """
    if expr.startswith("now"):
        utc, math = now_millis, expr[3:]
    else:
        idx = expr.find("||")
        if idx < 0:
            return fmt._parse(expr, tz, round_up)
        utc, math = fmt._parse(expr[:idx], tz, False), expr[idx + 2:]
    i, n = 0, len(math)
    while i < n:
        op = math[i]
        i += 1
        if op not in "+-/":
            raise DateMathError(f"operator not supported for date math [{math}]")
        if i >= n:
            raise DateMathError(f"truncated date math [{math}]")
        j = i
        while j < n and "0" <= math[j] <= "9":
            j += 1
        if j == i:
            num = 1
        else:
            if j >= n:
                raise DateMathError(f"truncated date math [{math}]")
            num = int(math[i:j])
            if num > _MAX_INT32:
                raise DateMathError(f"number out of range in date math [{math}]")
        i = j
        if op == "/" and num != 1:
            raise DateMathError(f"rounding `/` can only be used on single unit types [{math}]")
        unit = math[i]
        i += 1
        if unit not in "yMwdhHms":
            raise DateMathError(f"unit [{unit}] not supported for date math [{math}]")
        utc = _round(utc, unit, round_up, tz) if op == "/" else _add(
            utc, unit, num if op == "+" else -num, tz)
    if not _INT64_MIN <= utc <= _INT64_MAX:
        raise DateMathError(f"date math [{expr}] is outside the supported date range")
    return utc


def _add(utc: int, unit: str, amount: int, tz: datetime.tzinfo | None) -> int:
    """ZonedDateTime.plusX: exact durations for h/m/s, wall-clock calendar arithmetic otherwise."""
    if unit in _TIME_UNIT_MS:
        return utc + amount * _TIME_UNIT_MS[unit]
    off = _offset_at_utc(utc, tz)
    days, tod = divmod(utc + off, _MS_PER_DAY)
    if unit in "yM":
        y, m, d = _civil_from_days(days)
        if unit == "y":
            y += amount
        else:
            y, m0 = divmod(y * 12 + m - 1 + amount, 12)
            m = m0 + 1
        days = _days_from_civil(y, m, min(d, _days_in_month(y, m)))  # Jan 31 + 1M = Feb 28/29
    else:
        days += amount * (7 if unit == "w" else 1)
    return _local_to_utc(days * _MS_PER_DAY + tod, tz, off)


def _round(utc: int, unit: str, round_up: bool, tz: datetime.tzinfo | None) -> int:
    """Round down to the start of `unit` in `tz`, or (round_up) to the unit's last millisecond."""
    off = _offset_at_utc(utc, tz)
    local = utc + off
    if unit in _TIME_UNIT_MS:
        size = _TIME_UNIT_MS[unit]
        start = _local_to_utc(local - local % size, tz, off)
        return start + size - 1 if round_up else start
    days = local // _MS_PER_DAY
    if unit == "d":
        first, following = days, days + 1
    elif unit == "w":
        first = days - (days + 3) % 7  # back to Monday
        following = first + 7
    else:
        y, m, _ = _civil_from_days(days)
        if unit == "y":
            first, following = _days_from_civil(y, 1, 1), _days_from_civil(y + 1, 1, 1)
        else:
            first = _days_from_civil(y, m, 1)
            following = _days_from_civil(y + (m == 12), m % 12 + 1, 1)
    start = _local_to_utc(first * _MS_PER_DAY, tz, off)
    if not round_up:
        return start
    return _local_to_utc(following * _MS_PER_DAY, tz, _offset_at_utc(start, tz)) - 1
