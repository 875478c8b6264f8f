"""Elasticsearch date formats, parsing, printing and date math (strongroom.engine.dates)."""

from __future__ import annotations

import datetime
import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from strongroom.engine import dates
from strongroom.engine.dates import (
    DEFAULT_DYNAMIC_DATE_FORMATS,
    DEFAULT_FORMAT,
    DateFormat,
    DateFormatError,
    DateMathError,
    DateParseError,
    detect_dynamic_date,
    matches_dynamic_date,
    parse_date_math,
)

UTC = datetime.timezone.utc
PLUS1 = datetime.timezone(datetime.timedelta(hours=1))
MINUS0530 = datetime.timezone(-datetime.timedelta(hours=5, minutes=30))
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1

try:
    from zoneinfo import ZoneInfo

    PARIS: datetime.tzinfo | None = ZoneInfo("Europe/Paris")
except Exception:  # pragma: no cover - no tz database on this machine
    PARIS = None
needs_tzdata = pytest.mark.skipif(PARIS is None, reason="no IANA time zone database")


def ms(y: int, mo: int = 1, d: int = 1, h: int = 0, mi: int = 0, s: int = 0, milli: int = 0,
       tz: datetime.tzinfo = UTC) -> int:
    """Oracle: epoch millis through the standard library."""
    dt = datetime.datetime(y, mo, d, h, mi, s, milli * 1000, tzinfo=tz)
    return (dt - datetime.datetime(1970, 1, 1, tzinfo=UTC)) // datetime.timedelta(milliseconds=1)


# ------------------------------------------------------------------------------------------------
# Known answers: (value, format, expected epoch millis)

KNOWN: list[tuple[object, str, int]] = [
    # the default format, fast path and general path
    ("1989-06-03", DEFAULT_FORMAT, ms(1989, 6, 3)),
    ("2024-01-31T10:00:00Z", DEFAULT_FORMAT, ms(2024, 1, 31, 10)),
    ("2024-01-31T10:00:00.123Z", DEFAULT_FORMAT, ms(2024, 1, 31, 10, 0, 0, 123)),
    ("2024-01-31T10:00:00.123456789Z", DEFAULT_FORMAT, ms(2024, 1, 31, 10, 0, 0, 123)),
    ("2024-01-31T10:00:00,5Z", DEFAULT_FORMAT, ms(2024, 1, 31, 10, 0, 0, 500)),
    ("2024-01-31T10:00:00.9", DEFAULT_FORMAT, ms(2024, 1, 31, 10, 0, 0, 900)),
    ("2024-01-31T10:00:00+01:00", DEFAULT_FORMAT, ms(2024, 1, 31, 9)),
    ("2024-01-31T10:00:00.5-05:30", DEFAULT_FORMAT, ms(2024, 1, 31, 15, 30, 0, 500)),
    ("2024-01-31T10:00:00+0100", DEFAULT_FORMAT, ms(2024, 1, 31, 9)),
    ("2024-01-31T10:00:00+01", DEFAULT_FORMAT, ms(2024, 1, 31, 9)),
    ("2024-01-31T10:00:00-00:00", DEFAULT_FORMAT, ms(2024, 1, 31, 10)),
    ("2024-01-31T10:00:00+18:00", DEFAULT_FORMAT, ms(2024, 1, 30, 16)),
    ("2024-01-31T10:00", DEFAULT_FORMAT, ms(2024, 1, 31, 10)),
    ("2024-01-31T10:00+01:00", DEFAULT_FORMAT, ms(2024, 1, 31, 9)),
    ("2024-01-31T10", DEFAULT_FORMAT, ms(2024, 1, 31, 10)),
    ("2024-01-31T10Z", DEFAULT_FORMAT, ms(2024, 1, 31, 10)),
    ("2024-01", DEFAULT_FORMAT, ms(2024, 1, 1)),
    ("2024", DEFAULT_FORMAT, ms(2024)),
    ("0001-01-01", DEFAULT_FORMAT, ms(1)),
    ("0000-01-01", DEFAULT_FORMAT, ms(1) - 366 * 86_400_000),  # year 0 (1 BC) is a leap year
    ("0000-01-01T10:00:00+01:00", DEFAULT_FORMAT, ms(1) - 366 * 86_400_000 + 9 * 3_600_000),
    ("9999-12-31T23:59:59.999Z", DEFAULT_FORMAT, ms(9999, 12, 31, 23, 59, 59, 999)),
    ("+10000-01-01", DEFAULT_FORMAT, 253402300800000),
    ("-0001-12-31T23:59:59.999Z", DEFAULT_FORMAT, ms(1) - 366 * 86_400_000 - 1),
    ("+292278994-08-17T07:12:55.807Z", DEFAULT_FORMAT, INT64_MAX),
    ("-292275055-05-16T16:47:04.192Z", DEFAULT_FORMAT, INT64_MIN),
    ("1706695200000", DEFAULT_FORMAT, 1706695200000),  # falls through to epoch_millis
    (1706695200000, DEFAULT_FORMAT, 1706695200000),
    ("20240131", DEFAULT_FORMAT, 20240131),  # not basic_date: epoch millis, as in Elasticsearch
    (2024, DEFAULT_FORMAT, ms(2024)),  # a JSON number is parsed as its text, like Elasticsearch
    # epoch formats
    ("1706695200000", "epoch_millis", 1706695200000),
    (1706695200000, "epoch_millis", 1706695200000),
    ("-1", "epoch_millis", -1),
    ("1.5", "epoch_millis", 1),
    ("1.", "epoch_millis", 1),
    ("-1.5", "epoch_millis", -2),  # the instant -1.5 ms, floored like Instant.toEpochMilli
    (1.5, "epoch_millis", 1),
    (1706695200000.0, "epoch_millis", 1706695200000),
    ("9223372036854775807", "epoch_millis", INT64_MAX),
    ("-9223372036854775808", "epoch_millis", INT64_MIN),
    ("1706695200", "epoch_second", 1706695200000),
    (1706695200, "epoch_second", 1706695200000),
    ("1706695200.123456", "epoch_second", 1706695200123),
    ("1.5", "epoch_second", 1500),
    ("-1.5", "epoch_second", -1500),
    (1.25, "epoch_second", 1250),
    # named formats
    ("2024-1-5T3:4:5.6Z", "date_optional_time", ms(2024, 1, 5, 3, 4, 5, 600)),
    ("2024-1-5", "date_optional_time", ms(2024, 1, 5)),
    ("2024-01-31T10:00:00.123456789+01:00", "strict_date_optional_time_nanos",
     ms(2024, 1, 31, 9, 0, 0, 123)),
    ("2024-01-31", "iso8601", ms(2024, 1, 31)),
    ("20240131", "basic_date", ms(2024, 1, 31)),
    ("20240131T101112.123Z", "basic_date_time", ms(2024, 1, 31, 10, 11, 12, 123)),
    ("20240131T101112+0100", "basic_date_time_no_millis", ms(2024, 1, 31, 9, 11, 12)),
    ("2024060", "basic_ordinal_date", ms(2024, 2, 29)),
    ("2024060T101112.5Z", "basic_ordinal_date_time", ms(2024, 2, 29, 10, 11, 12, 500)),
    ("101112.123Z", "basic_time", ms(1970, 1, 1, 10, 11, 12, 123)),
    ("T101112Z", "basic_t_time_no_millis", ms(1970, 1, 1, 10, 11, 12)),
    ("2024-1-5", "date", ms(2024, 1, 5)),
    ("2024-01-05", "strict_date", ms(2024, 1, 5)),
    ("2024-01-31T7", "date_hour", ms(2024, 1, 31, 7)),
    ("2024-01-31T07", "strict_date_hour", ms(2024, 1, 31, 7)),
    ("2024-01-31T7:5", "date_hour_minute", ms(2024, 1, 31, 7, 5)),
    ("2024-01-31T07:05", "strict_date_hour_minute", ms(2024, 1, 31, 7, 5)),
    ("2024-01-31T10:30:15", "date_hour_minute_second", ms(2024, 1, 31, 10, 30, 15)),
    ("2024-01-31T10:30:15", "strict_date_hour_minute_second", ms(2024, 1, 31, 10, 30, 15)),
    ("2024-01-31T10:30:15.12", "date_hour_minute_second_millis", ms(2024, 1, 31, 10, 30, 15, 120)),
    ("2024-01-31T10:30:15.123", "strict_date_hour_minute_second_millis",
     ms(2024, 1, 31, 10, 30, 15, 123)),
    ("2024-01-31T10:30:15.123456", "date_hour_minute_second_fraction",
     ms(2024, 1, 31, 10, 30, 15, 123)),
    ("2024-01-31T10:30:15.1", "strict_date_hour_minute_second_fraction",
     ms(2024, 1, 31, 10, 30, 15, 100)),
    ("2024-01-31T10:30:15.123+01:00", "date_time", ms(2024, 1, 31, 9, 30, 15, 123)),
    ("2024-01-31T10:30:15.123Z", "strict_date_time", ms(2024, 1, 31, 10, 30, 15, 123)),
    ("2024-01-31T10:30:15Z", "strict_date_time", ms(2024, 1, 31, 10, 30, 15)),
    ("2024-01-31T10:30:15", "date_time_no_millis", ms(2024, 1, 31, 10, 30, 15)),
    ("2024-01-31T10:30:15-0130", "date_time_no_millis", ms(2024, 1, 31, 12, 0, 15)),
    ("2024-01-31T10:30:15+01:00", "strict_date_time_no_millis", ms(2024, 1, 31, 9, 30, 15)),
    ("7", "hour", ms(1970, 1, 1, 7)),
    ("07", "strict_hour", ms(1970, 1, 1, 7)),
    ("7:5", "hour_minute", ms(1970, 1, 1, 7, 5)),
    ("10:30", "strict_hour_minute", ms(1970, 1, 1, 10, 30)),
    ("10:30:15", "hour_minute_second", ms(1970, 1, 1, 10, 30, 15)),
    ("10:30:15", "strict_hour_minute_second", ms(1970, 1, 1, 10, 30, 15)),
    ("10:30:15.5", "hour_minute_second_millis", ms(1970, 1, 1, 10, 30, 15, 500)),
    ("10:30:15.5", "strict_hour_minute_second_millis", ms(1970, 1, 1, 10, 30, 15, 500)),
    ("10:30:15.123456", "hour_minute_second_fraction", ms(1970, 1, 1, 10, 30, 15, 123)),
    ("10:30:15.123", "strict_hour_minute_second_fraction", ms(1970, 1, 1, 10, 30, 15, 123)),
    ("2024-60", "ordinal_date", ms(2024, 2, 29)),
    ("2024-060", "strict_ordinal_date", ms(2024, 2, 29)),
    ("2024-366T10:30:15.1Z", "ordinal_date_time", ms(2024, 12, 31, 10, 30, 15, 100)),
    ("2024-060T10:30:15Z", "strict_ordinal_date_time_no_millis", ms(2024, 2, 29, 10, 30, 15)),
    ("10:30:15.123Z", "time", ms(1970, 1, 1, 10, 30, 15, 123)),
    ("10:30:15+01:00", "strict_time_no_millis", ms(1970, 1, 1, 9, 30, 15)),
    ("T10:30:15.123+01:00", "t_time", ms(1970, 1, 1, 9, 30, 15, 123)),
    ("T10:30:15Z", "strict_t_time_no_millis", ms(1970, 1, 1, 10, 30, 15)),
    ("2024", "year", ms(2024)),
    ("2024", "strict_year", ms(2024)),
    ("2024-3", "year_month", ms(2024, 3)),
    ("2024-03", "strict_year_month", ms(2024, 3)),
    ("2024-3-5", "year_month_day", ms(2024, 3, 5)),
    ("2024-03-05", "strict_year_month_day", ms(2024, 3, 5)),
    # java patterns
    ("2024-01-31 10:20:30", "yyyy-MM-dd HH:mm:ss", ms(2024, 1, 31, 10, 20, 30)),
    ("2024/01/31", "yyyy/MM/dd", ms(2024, 1, 31)),
    ("31/01/2024", "dd/MM/yyyy", ms(2024, 1, 31)),
    ("2024年01月31日", "yyyy年MM月dd日", ms(2024, 1, 31)),
    ("2024年1月5日 8時", "yyyy年M月d日 H時", ms(2024, 1, 5, 8)),
    ("1/5/2024 12:05 AM", "M/d/yyyy hh:mm a", ms(2024, 1, 5, 0, 5)),
    ("1/5/2024 12:05 PM", "M/d/yyyy h:mm a", ms(2024, 1, 5, 12, 5)),
    ("01/05/2024 07:05 PM", "MM/dd/yyyy hh:mm a", ms(2024, 1, 5, 19, 5)),
    ("05 Jan 2024", "dd MMM yyyy", ms(2024, 1, 5)),
    ("Wednesday, January 31, 2024", "EEEE, MMMM d, yyyy", ms(2024, 1, 31)),
    ("Wed, 31 Jan 2024 10:00:00 +0100", "EEE, dd MMM yyyy HH:mm:ss Z", ms(2024, 1, 31, 9)),
    ("2024-01-31T10:00:00.123+01:00", "yyyy-MM-dd'T'HH:mm:ss.SSSXXX", ms(2024, 1, 31, 9, 0, 0, 123)),
    ("2024-01-31T10:00:00.123Z", "yyyy-MM-dd'T'HH:mm:ss.SSSXXX", ms(2024, 1, 31, 10, 0, 0, 123)),
    ("2024-01-31T10:00:00.1234+00:00", "yyyy-MM-dd'T'HH:mm:ss.SSSSxxx", ms(2024, 1, 31, 10, 0, 0, 123)),
    ("2024-01-31T10:00:00+05", "yyyy-MM-dd'T'HH:mm:ssX", ms(2024, 1, 31, 5)),
    ("2024-01-31T10:00", "yyyy-MM-ddTHH:mm", ms(2024, 1, 31, 10)),  # bare T, as briefed
    ("20240131101112", "yyyyMMddHHmmss", ms(2024, 1, 31, 10, 11, 12)),
    ("24-01-31", "yy-MM-dd", ms(2024, 1, 31)),
    ("2024-01-31", "yyyy-MM-dd[ HH:mm]", ms(2024, 1, 31)),
    ("2024-01-31 10:20", "yyyy-MM-dd[ HH:mm]", ms(2024, 1, 31, 10, 20)),
    # Julius Caesar's last day: proleptic Gregorian, astronomical year -44 (45 BC is year -44)
    ("-0044-03-15", "uuuu-MM-dd", dates._days_from_civil(-44, 3, 15) * 86_400_000),
    ("2024-060", "uuuu-DDD", ms(2024, 2, 29)),
    ("it's 2024", "'it''s' yyyy", ms(2024)),
    ("'2024", "''yyyy", ms(2024)),
    ("10:20", "HH:mm", ms(1970, 1, 1, 10, 20)),
    # alternatives fall through in order
    ("1706695200000", "yyyy/MM/dd||epoch_millis", 1706695200000),
    ("2024-01-31", "dd/MM/yyyy||yyyy-MM-dd", ms(2024, 1, 31)),
    ("2024/01/31", "yyyy/MM/dd HH:mm:ss||yyyy/MM/dd||epoch_millis", ms(2024, 1, 31)),
    ("2024/01/31 10:11:12", "yyyy/MM/dd HH:mm:ss||yyyy/MM/dd||epoch_millis", ms(2024, 1, 31, 10, 11, 12)),
]


@pytest.mark.parametrize(("value", "spec", "expected"), KNOWN, ids=[f"{k[1]}|{k[0]}" for k in KNOWN])
def test_known_answers(value: object, spec: str, expected: int) -> None:
    assert DateFormat.compile(spec).parse(value) == expected  # type: ignore[arg-type]


def test_days_from_civil_matches_the_standard_library() -> None:
    for y in (1, 4, 100, 400, 1582, 1900, 1969, 1970, 2000, 2024, 9999):
        for m, d in ((1, 1), (2, 28), (3, 1), (12, 31)):
            expected = datetime.date(y, m, d).toordinal() - dates._EPOCH_ORDINAL
            assert dates._days_from_civil(y, m, d) == expected
            assert dates._civil_from_days(expected) == (y, m, d)


def test_zoneless_values_use_tz_and_explicit_zones_win() -> None:
    f = DateFormat.compile(DEFAULT_FORMAT)
    assert f.parse("2024-01-31T10:00:00", tz=PLUS1) == ms(2024, 1, 31, 9)
    assert f.parse("2024-01-31", tz=MINUS0530) == ms(2024, 1, 31, 5, 30)
    assert f.parse("2024-01-31T10:00:00Z", tz=PLUS1) == ms(2024, 1, 31, 10)
    assert f.parse("2024-01-31T10:00:00-05:30", tz=PLUS1) == ms(2024, 1, 31, 15, 30)
    assert f.parse("2024-01", tz=PLUS1) == ms(2023, 12, 31, 23)  # general path honours tz too
    assert f.parse(1706695200000, tz=PLUS1) == 1706695200000  # epochs are instants
    j = DateFormat.compile("yyyy-MM-dd HH:mm")
    assert j.parse("2024-01-31 10:00", tz=MINUS0530) == ms(2024, 1, 31, 15, 30)


@needs_tzdata
def test_named_zone_gap_and_overlap_resolve_like_java() -> None:
    f = DateFormat.compile(DEFAULT_FORMAT)
    assert f.parse("2024-01-31T10:00:00", tz=PARIS) == ms(2024, 1, 31, 9)
    assert f.parse("2024-07-01T10:00:00", tz=PARIS) == ms(2024, 7, 1, 8)
    # 02:30 does not exist on 2024-03-31 in Paris: java moves it forward by the gap (03:30+02:00).
    assert f.parse("2024-03-31T02:30:00", tz=PARIS) == ms(2024, 3, 31, 1, 30)
    # 02:30 happens twice on 2024-10-27: java takes the earlier instant (+02:00).
    assert f.parse("2024-10-27T02:30:00", tz=PARIS) == ms(2024, 10, 27, 0, 30)
    # Years datetime cannot hold still get the zone's rules (400-year cycles repeat exactly).
    assert f.parse("+12024-07-01T10:00:00", tz=PARIS) == f.parse("+12024-07-01T08:00:00Z")
    assert f.parse("-0500-07-01T10:00:00", tz=PARIS) == f.parse("-0500-07-01T09:50:39Z")  # LMT


# ------------------------------------------------------------------------------------------------
# Rejections

@pytest.mark.parametrize("value", [
    "2024-13-01", "2024-02-30", "2023-02-29", "2024-00-10", "2024-01-00", "abc", "", " 2024-01-31",
    "2024-01-31 ", "2024-01-31 10:00:00", "2024-1-01", "2024-01-1", "24-01-01", "+2024-01-01",
    "2024-01-31T24:00:00", "2024-01-31T10:60", "2024-01-31T10:00:60", "2024-01-31T10:00:00.",
    "2024-01-31T10:00:00.1234567890Z", "2024-01-31T10:00:00+19:00", "2024-01-31T10:00:00+01:60",
    "2024-01-31T10:00:00+18:01", "2024-01-31T10:00:00z", "2024-01-31T10:00:00 Z",
    "2024-01-31T10:00.5", "2024-01-31T1:00", "١٩٨٩-٠٦-٠٣", "1989-06-0３", "2024-W05-3",
    "+292278994-08-17T07:12:55.808Z", "-292275055-05-16T16:47:04.191Z", "9223372036854775808",
    "1e3", "0x10", "true",
])
def test_default_format_rejects(value: str) -> None:
    with pytest.raises(DateParseError):
        DateFormat.compile(DEFAULT_FORMAT).parse(value)


@pytest.mark.parametrize(("value", "spec"), [
    ("2024-1-05", "strict_date"), ("2024-01-5", "strict_date_optional_time"),
    ("2024-1", "strict_year_month"), ("2024-1-5", "strict_year_month_day"), ("7", "strict_hour"),
    ("7:05", "strict_hour_minute"), ("2024-01-31T7", "strict_date_hour"),
    ("2024-01-31T10:30:15", "date_time"),  # date_time wants millis and a zone
    ("2024-01-31T10:30:15.123", "strict_date_time"), ("2023-366", "ordinal_date"),
    ("+1.5", "epoch_millis"), ("1.1234567", "epoch_millis"), ("1e3", "epoch_millis"), ("", "epoch_millis"),
    ("1.1234567891", "epoch_second"), ("10000000000000000", "epoch_second"),
    (True, "epoch_millis"), (float("nan"), "epoch_millis"), (float("inf"), DEFAULT_FORMAT),
    (None, DEFAULT_FORMAT), (1 << 63, "epoch_millis"), (-(1 << 63) - 1, "epoch_millis"),
    (1 << 60, "epoch_second"),
    ("1/5/24", "M/d/yyyy"), ("05 jan 2024", "dd MMM yyyy"), ("05 Janu 2024", "dd MMM yyyy"),
    ("Tue, 31 Jan 2024", "EEE, dd MMM yyyy"),  # 2024-01-31 was a Wednesday
    ("13:00 PM", "hh:mm a"), ("00:00 AM", "hh:mm a"),
    ("2024-01-31T10:00:00.12Z", "yyyy-MM-dd'T'HH:mm:ss.SSSX"),  # SSS means exactly 3 digits
    ("2024-01-31 10:00:00Z", "yyyy-MM-dd HH:mm:ss Z"),  # pattern letter Z wants +HHMM
    ("2024-01-31T10:00:00+00", "yyyy-MM-dd'T'HH:mm:ssXXX"), ("0000-01-01", "yyyy-MM-dd"),
    ("2024-01-31 ", "yyyy-MM-dd"), ("2024-01-31 10", "yyyy-MM-dd[ HH:mm]"),
    ("2024/01/31 10:00", "yyyy/MM/dd HH:mm:ss||yyyy/MM/dd||epoch_millis"),
])
def test_formats_reject(value: object, spec: str) -> None:
    with pytest.raises(DateParseError):
        DateFormat.compile(spec).parse(value)  # type: ignore[arg-type]


def test_parse_error_message_is_elasticsearch_s() -> None:
    with pytest.raises(DateParseError) as info:
        DateFormat.compile(DEFAULT_FORMAT).parse("abc")
    assert str(info.value) == (
        "failed to parse date field [abc] with format [strict_date_optional_time||epoch_millis]")
    assert info.value.value == "abc" and info.value.spec == DEFAULT_FORMAT
    with pytest.raises(DateParseError, match=re.escape("failed to parse date field [] with format [yyyy]")):
        DateFormat.compile("yyyy").parse("")
    with pytest.raises(DateParseError, match=re.escape("[1e+300] with format [dd/MM/yyyy]")):
        DateFormat.compile("dd/MM/yyyy").parse(1e300)
    assert isinstance(info.value, ValueError)


# ------------------------------------------------------------------------------------------------
# Format specs

@pytest.mark.parametrize(("spec", "message"), [
    ("abc", "Invalid format: [abc]: Unknown pattern letter: b"),
    ("yyyy-MM-dd'T", "incomplete string literal"),
    ("yyyy]", "without previous ["),
    ("yyyy#", "reserved character"),
    ("dddd", "Too many pattern letters: d"),
    ("MMMMMM", "Too many pattern letters: M"),
    ("SSSSSSSSSS", "Invalid format: [SSSSSSSSSS]"),
    ("aa", "Too many pattern letters: a"),
    ("ZZZZZZ", "Too many pattern letters: Z"),
    ("xyz", "Invalid format: [xyz]: pattern letter [z] is not supported"),
    ("YYYY-ww", "pattern letter [w] is not supported"),
    ("G yyyy", "pattern letter [G] is not supported"),
    ("week_date", "Invalid format: [week_date]: week-based formats are not supported"),
    ("strict_weekyear_week_day", "not supported"),
    ("", "No date pattern provided"),
    ("   ", "No date pattern provided"),
    ("yyyy||", "Invalid format: [yyyy||]: No date pattern provided"),
    ("yyyy-MM-dd||dateOptionalTime", "Invalid format: [dateOptionalTime]"),
])
def test_invalid_format_specs(spec: str, message: str) -> None:
    with pytest.raises(DateFormatError, match=re.escape(message)):
        DateFormat.compile(spec)
    with pytest.raises(ValueError):
        DateFormat(spec)


def test_compile_is_cached_and_keeps_the_spec() -> None:
    spec = " yyyy-MM-dd || epoch_millis "
    f = DateFormat.compile(spec)
    assert f is DateFormat.compile(spec)
    assert f.spec == spec and f == DateFormat(spec) and hash(f) == hash(DateFormat(spec))
    assert f.parse("2024-01-31") == ms(2024, 1, 31) and f.parse("5") == 5
    assert DateFormat.compile(DEFAULT_FORMAT).spec == "strict_date_optional_time||epoch_millis"


# ------------------------------------------------------------------------------------------------
# Printing (with the first alternative)

@pytest.mark.parametrize(("spec", "millis", "tz", "expected"), [
    (DEFAULT_FORMAT, ms(2024, 1, 31, 10), None, "2024-01-31T10:00:00.000Z"),
    (DEFAULT_FORMAT, ms(2024, 1, 31, 10, 0, 0, 5), PLUS1, "2024-01-31T11:00:00.005+01:00"),
    (DEFAULT_FORMAT, ms(2024, 1, 31, 10), MINUS0530, "2024-01-31T04:30:00.000-05:30"),
    (DEFAULT_FORMAT, -1, None, "1969-12-31T23:59:59.999Z"),
    (DEFAULT_FORMAT, 253402300800000, None, "+10000-01-01T00:00:00.000Z"),
    (DEFAULT_FORMAT, INT64_MIN, None, "-292275055-05-16T16:47:04.192Z"),
    ("epoch_millis||strict_date_optional_time", 1706695200123, PLUS1, "1706695200123"),
    ("epoch_second", 1706695200123, None, "1706695200.123"),
    ("epoch_second", 1706695200100, None, "1706695200.1"),
    ("epoch_second", 1706695200000, None, "1706695200"),
    ("epoch_second", -1500, None, "-1.5"),
    ("strict_date", ms(2024, 1, 31, 23), PLUS1, "2024-02-01"),
    ("date_time_no_millis", ms(2024, 1, 31, 10), None, "2024-01-31T10:00:00Z"),
    ("basic_date_time", ms(2024, 1, 31, 10, 0, 0, 7), None, "20240131T100000.007Z"),
    ("ordinal_date", ms(2024, 12, 31), None, "2024-366"),
    ("hour_minute", ms(2024, 12, 31, 7, 5), None, "07:05"),
    ("year", ms(2024, 12, 31), None, "2024"),
    ("yyyy-MM-dd HH:mm:ss", ms(2024, 1, 31, 10, 20, 30), None, "2024-01-31 10:20:30"),
    ("yyyy年MM月dd日", ms(2024, 1, 31), None, "2024年01月31日"),
    ("EEE, d MMM yyyy h:mm a Z", ms(2024, 1, 31, 19, 5), PLUS1, "Wed, 31 Jan 2024 8:05 PM +0100"),
    ("EEEE MMMM yy", ms(2024, 1, 31), None, "Wednesday January 24"),
    ("yyyy-MM-dd'T'HH:mm:ss.SSSSSSxxx", ms(2024, 1, 31, 0, 0, 0, 123), None,
     "2024-01-31T00:00:00.123000+00:00"),
    ("HH:mmX", ms(2024, 1, 31), MINUS0530, "18:30-0530"),
    ("HH:mmX", ms(2024, 1, 31), None, "00:00Z"),
    ("yyyy-MM-dd[ HH:mm]", ms(2024, 1, 31, 10, 20), None, "2024-01-31 10:20"),
    ("uuuu yyyy", dates._days_from_civil(-44, 3, 15) * 86_400_000, None, "-0044 0045"),
])
def test_format(spec: str, millis: int, tz: datetime.tzinfo | None, expected: str) -> None:
    assert DateFormat.compile(spec).format(millis, tz=tz) == expected


@needs_tzdata
def test_format_in_a_named_zone() -> None:
    f = DateFormat.compile(DEFAULT_FORMAT)
    assert f.format(ms(2024, 7, 1, 8), tz=PARIS) == "2024-07-01T10:00:00.000+02:00"
    assert f.format(ms(2024, 1, 1, 8), tz=PARIS) == "2024-01-01T09:00:00.000+01:00"


# ------------------------------------------------------------------------------------------------
# Properties

int64 = st.integers(min_value=INT64_MIN, max_value=INT64_MAX)
fixed_zones = st.sampled_from([None, UTC, PLUS1, MINUS0530,
                               datetime.timezone(datetime.timedelta(hours=14))])


@settings(max_examples=100, deadline=None)
@given(millis=int64, tz=fixed_zones)
def test_strict_date_optional_time_round_trips(millis: int, tz: datetime.tzinfo | None) -> None:
    f = DateFormat.compile(DEFAULT_FORMAT)
    assert f.parse(f.format(millis, tz=tz)) == millis


@settings(max_examples=60, deadline=None)
@given(millis=int64)
def test_epoch_formats_round_trip(millis: int) -> None:
    for spec in ("epoch_millis", "epoch_second||strict_date_optional_time"):
        f = DateFormat.compile(spec)
        assert f.parse(f.format(millis)) == millis
    assert DateFormat.compile("epoch_millis").parse(millis) == millis


@settings(max_examples=60, deadline=None)
@given(millis=st.integers(min_value=ms(2), max_value=253402300799999), tz=fixed_zones)
def test_java_pattern_round_trips(millis: int, tz: datetime.tzinfo | None) -> None:
    # From year 2: `yyyy` is year-of-era, so local times in 1 BC would not come back.
    f = DateFormat.compile("EEE dd MMM yyyy hh:mm:ss.SSS a XXX")
    assert f.parse(f.format(millis, tz=tz)) == millis


ISO_PIECES = st.sampled_from([
    "2024", "0000", "9999", "-", "T", ":", ".", ",", "Z", "+", "01", "1", "12", "13", "29", "30",
    "31", "24", "59", "60", "00", "123", "123456789", "1234567890", "18", "19", "+01:00", "-05:30",
    "+18:00", "+0100", " ", "x",
])


@settings(max_examples=120, deadline=None)
@given(pieces=st.lists(ISO_PIECES, min_size=1, max_size=10),
       tz=st.sampled_from([None, PLUS1]))
def test_fast_path_agrees_with_the_general_parser(pieces: list[str], tz: datetime.tzinfo | None) -> None:
    text = "".join(pieces)
    parser = dates._compile_alternative("strict_date_optional_time")
    assert isinstance(parser, dates._IsoParser)
    assert parser.parse(text, tz, False) == dates._RegexParser.parse(parser, text, tz, False)


@settings(max_examples=60, deadline=None)
@given(y=st.integers(1, 9999), mo=st.integers(1, 12), d=st.integers(1, 28), h=st.integers(0, 23),
       mi=st.integers(0, 59), s=st.integers(0, 59), frac=st.text("0123456789", min_size=0, max_size=9),
       zone=st.sampled_from(["", "Z", "+01:00", "-05:30", "+1800", "-03"]), hms=st.booleans())
def test_fast_path_agrees_on_valid_dates(y: int, mo: int, d: int, h: int, mi: int, s: int, frac: str,
                                         zone: str, hms: bool) -> None:
    time = f"{h:02d}:{mi:02d}" + (f":{s:02d}" + (f".{frac}" if frac else "") if hms else "")
    text = f"{y:04d}-{mo:02d}-{d:02d}T{time}{zone}"
    parser = dates._compile_alternative("strict_date_optional_time")
    fast = parser.parse(text, None, False)
    assert fast is not None and fast == dates._RegexParser.parse(parser, text, None, False)


UNITS = st.sampled_from("yMwdhHms")
math_zones = st.sampled_from([None, PLUS1, MINUS0530] + ([PARIS] if PARIS is not None else []))


@settings(max_examples=100, deadline=None)
@given(millis=st.integers(min_value=-62135596800000 + 10**12, max_value=253402300799999 - 10**12),
       unit=UNITS, tz=math_zones)
def test_rounding_brackets_the_value(millis: int, unit: str, tz: datetime.tzinfo | None) -> None:
    f = DateFormat.compile("epoch_millis")
    down = parse_date_math(f"{millis}||/{unit}", now_millis=0, fmt=f, tz=tz)
    up = parse_date_math(f"{millis}||/{unit}", now_millis=0, fmt=f, tz=tz, round_up=True)
    assert down <= millis <= up
    # the same through `now`
    assert parse_date_math(f"now/{unit}", now_millis=millis, fmt=f, tz=tz) == down
    assert parse_date_math(f"now/{unit}", now_millis=millis, fmt=f, tz=tz, round_up=True) == up
    if tz is not PARIS and unit in "dhHms":  # no DST: a unit is a fixed length
        size = {"d": 86_400_000, "h": 3_600_000, "H": 3_600_000, "m": 60_000, "s": 1000}[unit]
        assert up - down + 1 == size


@settings(max_examples=60, deadline=None)
@given(y=st.integers(5, 9990), mo=st.integers(1, 12), d=st.integers(1, 31), n=st.integers(-40, 40))
def test_month_arithmetic_clamps_the_day(y: int, mo: int, d: int, n: int) -> None:
    assume(d <= dates._days_in_month(y, mo))
    f = DateFormat.compile("strict_date")
    got = parse_date_math(f"{y:04d}-{mo:02d}-{d:02d}||{'+' if n >= 0 else '-'}{abs(n)}M",
                          now_millis=0, fmt=f)
    ty, tm = divmod(y * 12 + mo - 1 + n, 12)
    tm += 1
    assert got == ms(ty, tm, min(d, dates._days_in_month(ty, tm)))


# ------------------------------------------------------------------------------------------------
# Date math known answers

NOW = ms(2024, 1, 31, 10, 20, 30, 456)  # a Wednesday


@pytest.mark.parametrize(("expr", "round_up", "expected"), [
    ("now", False, NOW),
    ("now", True, NOW),
    ("now+1d", False, NOW + 86_400_000),
    ("now+d", False, NOW + 86_400_000),  # a missing number means 1
    ("now-1y/d", False, ms(2023, 1, 31)),
    ("now-1y/d", True, ms(2023, 1, 31, 23, 59, 59, 999)),
    ("now/d", True, ms(2024, 1, 31, 23, 59, 59, 999)),
    ("now/M", False, ms(2024, 1, 1)),
    ("now/M", True, ms(2024, 1, 31, 23, 59, 59, 999)),
    ("now/w", False, ms(2024, 1, 29)),
    ("now/w", True, ms(2024, 2, 4, 23, 59, 59, 999)),
    ("now/y", False, ms(2024)),
    ("now/y", True, ms(2024, 12, 31, 23, 59, 59, 999)),
    ("now-2h/h", False, ms(2024, 1, 31, 8)),
    ("now/H", True, ms(2024, 1, 31, 10, 59, 59, 999)),
    ("now+90m", False, NOW + 90 * 60_000),
    ("now/m", False, ms(2024, 1, 31, 10, 20)),
    ("now/s", True, ms(2024, 1, 31, 10, 20, 30, 999)),
    ("now+1M", False, ms(2024, 2, 29, 10, 20, 30, 456)),  # Jan 31 + 1M clamps to Feb 29
    ("now+13M-1y", False, ms(2024, 2, 28, 10, 20, 30, 456)),  # via 2025-02-28, in order
    ("now-1w+2d-3h+4m-5s", False, NOW - 5 * 86_400_000 - 3 * 3_600_000 + 4 * 60_000 - 5000),
    ("now/d+1d", False, ms(2024, 2, 1)),
    ("2024-01-31||+1M/d", False, ms(2024, 2, 29)),
    ("2024-01-31||+1M", False, ms(2024, 2, 29)),
    ("2023-01-31||+1M", False, ms(2023, 2, 28)),
    ("2024-02-29||+1y", False, ms(2025, 2, 28)),
    ("2024-02-29||-4y", False, ms(2020, 2, 29)),
    ("2024-01-31T10:20:30Z||/M", True, ms(2024, 1, 31, 23, 59, 59, 999)),
    ("2024-01-31||", False, ms(2024, 1, 31)),
    ("2024-01-31||", True, ms(2024, 1, 31)),  # with `||` the anchor is not rounded up
    # a plain date: missing time fields round up for lte/gt, as in Elasticsearch
    ("2024-01-31", False, ms(2024, 1, 31)),
    ("2024-01-31", True, ms(2024, 1, 31, 23, 59, 59, 999)),
    ("2024-01-31T10", True, ms(2024, 1, 31, 10, 59, 59, 999)),
    ("2024-01-31T10:20:30Z", True, ms(2024, 1, 31, 10, 20, 30, 999)),
    ("2024-01-31T10:20:30.1Z", True, ms(2024, 1, 31, 10, 20, 30, 100)),
    ("2024-01", True, ms(2024, 1, 1, 23, 59, 59, 999)),  # month and day default to 1, not max
    ("1706695200000", True, 1706695200000),
])
def test_date_math_known_answers(expr: str, round_up: bool, expected: int) -> None:
    f = DateFormat.compile(DEFAULT_FORMAT)
    assert parse_date_math(expr, now_millis=NOW, fmt=f, round_up=round_up) == expected


def test_date_math_time_zones() -> None:
    f = DateFormat.compile(DEFAULT_FORMAT)
    assert parse_date_math("now/d", now_millis=NOW, fmt=f, tz=PLUS1) == ms(2024, 1, 30, 23)
    assert parse_date_math("now/d", now_millis=NOW, fmt=f, tz=MINUS0530, round_up=True) == ms(
        2024, 2, 1, 5, 29, 59, 999)
    assert parse_date_math("now/h", now_millis=NOW, fmt=f, tz=MINUS0530) == ms(2024, 1, 31, 9, 30)
    # the anchor is read in tz too
    assert parse_date_math("2024-01-31||/d", now_millis=0, fmt=f, tz=PLUS1) == ms(2024, 1, 30, 23)
    assert parse_date_math("2024-01-31", now_millis=0, fmt=f, tz=PLUS1, round_up=True) == ms(
        2024, 1, 31, 22, 59, 59, 999)
    e = DateFormat.compile("epoch_second")
    assert parse_date_math("1706695200", now_millis=0, fmt=e, round_up=True) == 1706695200999
    assert parse_date_math("1706695200.5", now_millis=0, fmt=e, round_up=True) == 1706695200500


@needs_tzdata
def test_date_math_across_daylight_saving_time() -> None:
    f = DateFormat.compile(DEFAULT_FORMAT)
    # 2024-03-31 in Paris lasts 23 hours
    assert parse_date_math("2024-03-31T12:00:00||/d", now_millis=0, fmt=f, tz=PARIS) == ms(
        2024, 3, 30, 23)
    assert parse_date_math("2024-03-31T12:00:00||/d", now_millis=0, fmt=f, tz=PARIS,
                           round_up=True) == ms(2024, 3, 31, 21, 59, 59, 999)
    # days are wall-clock days, hours are exact hours
    assert parse_date_math("2024-03-30T12:00:00||+1d", now_millis=0, fmt=f, tz=PARIS) == ms(
        2024, 3, 31, 10)
    assert parse_date_math("2024-03-30T12:00:00||+24h", now_millis=0, fmt=f, tz=PARIS) == ms(
        2024, 3, 31, 11)
    # rounding inside the repeated hour keeps the offset in force (java's preferred offset)
    second_0230 = ms(2024, 10, 27, 1, 30)  # 02:30+01:00, after the clocks went back
    assert parse_date_math("now/h", now_millis=second_0230, fmt=f, tz=PARIS) == ms(2024, 10, 27, 1)
    assert parse_date_math("now/h", now_millis=second_0230 - 3_600_000, fmt=f, tz=PARIS) == ms(
        2024, 10, 27, 0)


@pytest.mark.parametrize(("expr", "error", "message"), [
    ("now+", DateMathError, "truncated date math [+]"),
    ("now+1", DateMathError, "truncated date math [+1]"),
    ("now*1d", DateMathError, "operator not supported for date math [*1d]"),
    ("nowfoo", DateMathError, "operator not supported for date math [foo]"),
    ("now+1x", DateMathError, "unit [x] not supported for date math [+1x]"),
    ("now/2d", DateMathError, "rounding `/` can only be used on single unit types [/2d]"),
    ("now+99999999999d", DateMathError, "out of range"),
    ("now+2147483647y", DateMathError, "outside the supported date range"),
    ("2024-13-01||+1d", DateParseError,
     "failed to parse date field [2024-13-01] with format [strict_date_optional_time||epoch_millis]"),
    ("||+1d", DateParseError, "failed to parse date field []"),
    ("2024-13-01", DateParseError, "failed to parse date field [2024-13-01]"),
])
def test_invalid_date_math(expr: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        parse_date_math(expr, now_millis=NOW, fmt=DateFormat.compile(DEFAULT_FORMAT))


# ------------------------------------------------------------------------------------------------
# Dynamic date detection

@pytest.mark.parametrize(("value", "expected"), [
    ("2015-09-02", "strict_date_optional_time"),
    ("2015-09-02T10:11:12.123Z", "strict_date_optional_time"),
    ("2015-09", "strict_date_optional_time"),
    ("2015/09/02", DEFAULT_DYNAMIC_DATE_FORMATS[1]),
    ("2015/09/02 10:11:12", DEFAULT_DYNAMIC_DATE_FORMATS[1]),
    ("2015", None),  # numbers are never dates, even though `yyyy` and epoch_millis would parse them
    ("1441152000000", None),
    ("-12", None),
    ("1.5e3", None),
    ("NaN", None),
    ("hello", None),
    ("2015/9/2", None),
    ("02/09/2015", None),
    ("", None),
])
def test_dynamic_date_detection(value: str, expected: str | None) -> None:
    assert detect_dynamic_date(value) == expected
    assert matches_dynamic_date(value) is (expected is not None)


def test_dynamic_date_detection_with_custom_formats() -> None:
    assert matches_dynamic_date("31.01.2024", ["dd.MM.yyyy"])
    assert not matches_dynamic_date("31.01.2024")
    assert detect_dynamic_date("2024-01-31", ["dd.MM.yyyy", "yyyy-MM-dd"]) == "yyyy-MM-dd"
