"""The mapping proposal of ``strongroom load``: sample a file's rows, find the personal columns, protect them.

Pure functions over rows already read (``dict`` of column → value: strings from CSV, Python values
from xlsx, JSON or parquet). No I/O, no logging; nothing here ever prints or returns a sampled value,
only column names, fractions and formats.

Profiling (``profile``) reads the first ``sample`` rows and, per column in first-seen order, counts
the non-empty values (``None``, blank strings and NaN are empty; list elements count one by one),
infers a type and gathers evidence:

* Type. A type is chosen only when *every* non-empty sampled value fits it, since one value that
  does not parse would make its whole row fail to load: ``boolean`` (bools, "true"/"false"),
  ``long`` (ints; digit strings without a leading zero and of at most 18 digits — "007" and
  20-digit numbers are codes), ``double`` (floats, or numbers mixed with ints), ``date`` (date
  objects, ISO dates and datetimes, 2024-1-2, 2024/1/2, 2024.1.2, 2024年1月2日, 2024-01-02 03:04:05;
  the profile notes the ``format`` to map, several joined by ``||``), ``object`` (dicts: mapped
  ``enabled: false``, so they live only in the sealed ``_source``), else a string type: ``text``
  when values are long (mean over 32 characters, or any over 256) or multi-word with many distinct
  values (half contain whitespace, and more than 20 distinct and more than half distinct, or every
  value distinct and longer than 16 characters on average: sentences in a small sample), else
  ``keyword`` (short strings, codes, low cardinality). 8-digit dates (19900101) stay ``long``: they
  cannot be told from numbers.
* Detectors (``strongroom.pii.detect``, whole values only; integral floats are judged as ints,
  since spreadsheets store phone numbers as numbers): the fraction of values each one accepts.
* Heuristics: Chinese personal names (2–4 CJK characters starting with one of ~150 common single
  or 32 compound surnames, not ending in a place marker such as 市 or 路, so "常州市" is not a
  name); Latin names ("Zhang Wei", "Mary J. Smith"), counted only with a header hint, because
  product names look alike; addresses (CJK text of 6–80 characters with at least two distinct
  markers of 省 市 区 县 镇 乡 村 路 街 巷 号 楼 室 and no sentence punctuation — one marker is a
  place name, like a city column's "北京市", not an address — or a Latin street pattern such as
  "12 Baker Street"); free text (strings of 2+ characters that are not numbers or dates); and
  identifiers embedded in longer text (an ID number, mobile number or e-mail inside a sentence,
  which the ingest detectors, judging whole values, do not see).
* Birth dates: a date column counts as a birth date when its header says so and ≥ 20% of values
  are dates, or when ≥ 60% of its dates equal the birth date (digits 7–14) of a valid national ID
  in the same row, whatever the header.
* Header hints, from the column name (CJK words as substrings; English as words, after splitting
  snake_case and camelCase, so "hotel" is not "tel" and "product_name" is not a person's name).

A column is PII of a kind when ≥ 60% of its non-empty sampled values match the kind's detector,
or the header hint agrees and ≥ 20% match; names and addresses need their heuristic on ≥ 50%
(or hint and ≥ 20%); notes need a notes header and ≥ 20% free text, or embedded identifiers in
≥ 20% of values. When several kinds qualify the strongest evidence wins (ties: national_id,
mobile, bank_card, email, passport, birth_date, name, address, notes). Thresholds below 100% leave
room for typos and blanks; the 20% floor with a hint is there so that a header alone never decides
(a column called "phone" holding "n/a" is not a phone column) and so that a few stray values
(5% ID-like numbers in a reference column) never protect a column on their own.

One rule looks across columns (``assess``): a ``text`` column beside a column of national IDs,
mobiles or names is taken as notes about those people ("free text beside personal identifiers"),
because that is where people write what they know about a person.

Protection (``propose``; see docs/protection.md for what each level leaks):

* national_id → keyword blind, ``blind_prefixes [6]`` (region-code searches);
* mobile → keyword blind, ``blind_prefixes [3, 7]`` (carrier and area searches);
* bank_card, email, passport → keyword blind;
* name, address → text blind (CJK bigram terms: match and match_phrase keep working);
* birth_date → date blind (year, year-month and day terms; date ranges with both bounds); keyword
  blind when not every value parses as a date;
* notes → text blind, so that case notes stay searchable by words and phrases, as in the demo's
  residents; encrypt (not indexed at all) when the mean value is longer than 1,000 characters:
  such values are documents rather than notes, the number and order of their blind terms leak the
  most, and they are read with their record rather than searched;
* every other column → plain, with its inferred type.

The index body is strict (``dynamic: strict``, so no column slips in unmapped) and keeps
``index.pii_detection: reject``, so a later value that looks like an identifier in a plain field is
refused. A column named in ``allow_plain`` is left plain whatever it holds, and the proposal records
it (``plain_overrides``); if such a column holds values the ingest detectors fire on, the body sets
``pii_detection: warn`` instead, since ``reject`` would refuse every row and make the override
useless — the finding says so. Plain columns with a few detector hits get a note: under ``reject``
those rows will be refused.

Field names come from column names (``field_names``): NFKC, stripped, ASCII lower-cased, every run of
characters other than letters, digits and "_" (in any script, so CJK stays) becomes "_", leading and
trailing "_" dropped, at most 100 characters; an empty result becomes ``column_<position>``;
duplicates get ``_2``, ``_3``.
"""

from __future__ import annotations

import datetime
import decimal
import json
import math
import re
import unicodedata
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from ..pii import DETECTORS, detect, is_valid_national_id

__all__ = [
    "KINDS",
    "Assessment",
    "ColumnProfile",
    "Finding",
    "Proposal",
    "assess",
    "check_mapping",
    "field_names",
    "header_hints",
    "profile",
    "propose",
    "resolve_columns",
]

# Every kind of personal data, in tie-breaking order.
KINDS: tuple[str, ...] = (*DETECTORS, "birth_date", "name", "address", "notes")

DETECTOR_THRESHOLD = 0.6  # share of non-empty values a detector must accept, without a header hint
HEURISTIC_THRESHOLD = 0.5  # same, for the name and address heuristics
HINTED_THRESHOLD = 0.2  # with a header hint that agrees
EMBEDDED_THRESHOLD = 0.2  # identifiers inside free text
ENCRYPT_NOTES_LENGTH = 1_000  # mean characters above which notes are encrypted rather than blind

# --------------------------------------------------------------------------- header hints

# CJK hints match as substrings of the column name; English ones as words or word runs ("national
# id" → "nationalid"). Hints in _WHOLE_HINTS only match the whole name ("name", not "product_name").
_CJK_HINTS: dict[str, tuple[str, ...]] = {
    "name": ("姓名", "名字", "全名", "真实姓名"),
    "national_id": ("身份证", "证件号", "身份号码", "公民身份"),
    "mobile": ("手机", "电话", "联系方式", "移动号码"),
    "address": ("地址", "住址", "住所", "居住地", "户籍地"),
    "email": ("邮箱", "电子邮件", "邮件", "电邮"),
    "bank_card": ("银行卡", "卡号", "银行账号", "账号", "信用卡"),
    "passport": ("护照",),
    "birth_date": ("出生", "生日"),
    "notes": ("病历", "病情", "案件", "案情", "备注", "诊断", "笔录", "病史"),
}
_WORD_HINTS: dict[str, frozenset[str]] = {
    "name": frozenset({"fullname", "firstname", "lastname", "surname", "givenname", "familyname", "realname",
                       "personname", "patientname", "customername", "residentname", "contactname", "xingming"}),
    "national_id": frozenset({"nationalid", "idcard", "idcardno", "idcardnumber", "idnumber", "idno", "citizenid",
                              "residentid", "identitycard", "identityno", "identitynumber", "shenfenzheng", "sfz"}),
    "mobile": frozenset({"phone", "mobile", "tel", "telephone", "cellphone", "cell", "phoneno", "mobileno"}),
    "address": frozenset({"address", "addr", "street", "residence"}),
    "email": frozenset({"email", "mail", "emailaddress"}),
    "bank_card": frozenset({"card", "cardno", "cardnumber", "bankcard", "bankaccount", "iban", "creditcard"}),
    "passport": frozenset({"passport", "passportno", "passportnumber"}),
    "birth_date": frozenset({"birth", "birthday", "birthdate", "dob", "dateofbirth", "born"}),
    "notes": frozenset({"notes", "note", "remark", "remarks", "memo", "comment", "comments", "casenotes",
                        "diagnosis", "medicalrecord", "narrative"}),
}
_WHOLE_HINTS: dict[str, frozenset[str]] = {"name": frozenset({"name"})}


def _words(column: str) -> list[str]:
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", unicodedata.normalize("NFKC", column))
    return [w for w in re.split(r"[^a-z0-9]+", text.lower()) if w]


def header_hints(column: str) -> tuple[str, ...]:
    """The kinds a column name suggests, in ``KINDS`` order."""
    text = unicodedata.normalize("NFKC", column)
    words = _words(column)
    runs = {"".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, min(len(words), i + 3) + 1)}
    whole = "".join(words)
    found = []
    for kind in KINDS:
        if (any(h in text for h in _CJK_HINTS.get(kind, ())) or runs & _WORD_HINTS.get(kind, frozenset())
                or whole in _WHOLE_HINTS.get(kind, ())):
            found.append(kind)
    return tuple(found)


# --------------------------------------------------------------------------- content heuristics

# About the 150 most common Chinese surnames (together some 90% of people), and compound ones.
SURNAMES: frozenset[str] = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付傅方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
    "常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴"
)
COMPOUND_SURNAMES: frozenset[str] = frozenset({
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒", "夏侯",
    "轩辕", "令狐", "端木", "独孤", "南宫", "西门", "百里", "呼延", "澹台", "公冶", "申屠", "太史", "闻人",
    "赫连", "万俟", "钟离", "濮阳", "淳于", "单于",
})
_ADDRESS_MARKERS = "省市区县镇乡村路街巷号楼室"
_NOT_NAME_ENDINGS = frozenset(_ADDRESS_MARKERS + "州道")
_CJK_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+")
_SENTENCE_PUNCTUATION = frozenset("。！？；!?;")
_LATIN_NAME_RE = re.compile(r"[A-Z][a-z'’-]+(?: [A-Z]\.?)?(?: [A-Z][a-z'’-]+){1,2}")
_LATIN_STREET_RE = re.compile(
    r"\b\d{1,6}[A-Za-z]?,? (?:[A-Za-z0-9.'-]+ ){0,4}(?:street|st|road|rd|avenue|ave|lane|ln|boulevard|blvd|drive|dr"
    r"|court|ct|way|place|pl|square|sq|terrace|crescent|highway|hwy)\b\.?",
    re.IGNORECASE,
)
_EMBEDDED_ID_RE = re.compile(r"(?<![0-9])[1-9][0-9]{16}[0-9Xx](?![0-9A-Za-z])")
_EMBEDDED_MOBILE_RE = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")
_EMBEDDED_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


def is_chinese_name(text: str) -> bool:
    """2–4 CJK characters starting with a common surname, not ending in a place marker."""
    if not 2 <= len(text) <= 4 or _CJK_RE.fullmatch(text) is None or text[-1] in _NOT_NAME_ENDINGS:
        return False
    return text[0] in SURNAMES or (len(text) >= 3 and text[:2] in COMPOUND_SURNAMES)


def is_latin_name(text: str) -> bool:
    return len(text) <= 60 and _LATIN_NAME_RE.fullmatch(text) is not None


def is_address(text: str) -> bool:
    """A CJK address with two or more distinct markers (one marker is a place name), or a Latin street."""
    if not 6 <= len(text) <= 120 or _SENTENCE_PUNCTUATION & set(text):
        return False
    if _CJK_RE.search(text):
        return len(text) <= 80 and len(set(text) & set(_ADDRESS_MARKERS)) >= 2
    return _LATIN_STREET_RE.search(text) is not None


def _has_embedded_identifier(text: str) -> bool:
    if any(is_valid_national_id(m.group().upper()) for m in _EMBEDDED_ID_RE.finditer(text)):
        return True
    return _EMBEDDED_MOBILE_RE.search(text) is not None or _EMBEDDED_EMAIL_RE.search(text) is not None


# --------------------------------------------------------------------------- value shapes

_INT64 = 2**63
_LONG_RE = re.compile(r"[+-]?(?:0|[1-9][0-9]{0,17})")
_DOUBLE_RE = re.compile(r"[+-]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][+-]?[0-9]+)?")
_TIME = r"(?:T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)"
# (regex, format) in the order tried; groups 1-3 are year, month, day.
_DATE_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})"), "strict_date"),
    (re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})" + _TIME), "strict_date_optional_time"),
    (re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})"), "yyyy-M-d"),
    (re.compile(r"([0-9]{4})/([0-9]{1,2})/([0-9]{1,2})"), "yyyy/M/d"),
    (re.compile(r"([0-9]{4})\.([0-9]{1,2})\.([0-9]{1,2})"), "yyyy.M.d"),
    (re.compile(r"([0-9]{4})年([0-9]{1,2})月([0-9]{1,2})日"), "yyyy'年'M'月'd'日'"),
    (re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2}) [0-9]{2}:[0-9]{2}:[0-9]{2}"), "yyyy-MM-dd HH:mm:ss"),
    (re.compile(r"([0-9]{4})/([0-9]{1,2})/([0-9]{1,2}) [0-9]{2}:[0-9]{2}:[0-9]{2}"), "yyyy/M/d HH:mm:ss"),
)
# A format that accepts everything another accepts replaces it in a column's format.
_SUBSUMES = {"yyyy-M-d": "strict_date", "strict_date_optional_time": "strict_date"}
_OBJECT_FORMAT = "strict_date_optional_time"  # date and datetime objects: their isoformat()


def _parse_date(text: str) -> tuple[str, datetime.date] | None:
    for regex, spec in _DATE_SHAPES:
        match = regex.fullmatch(text)
        if match is not None:
            try:
                return spec, datetime.date(int(match[1]), int(match[2]), int(match[3]))
            except ValueError:
                return None  # 2024-02-30: not a date, and no other shape will take it
    return None


@dataclass(frozen=True)
class _Shape:
    family: str  # boolean, long, double, date, string, object
    text: str  # what the detectors and heuristics judge
    date_format: str | None = None
    date: datetime.date | None = None


def _shape(value: Any) -> _Shape | None:
    """None for an empty value."""
    if value is None:
        return None
    if isinstance(value, bool):
        return _Shape("boolean", str(value).lower())
    if isinstance(value, int):
        return _Shape("long" if -_INT64 <= value < _INT64 else "string", str(value))
    if isinstance(value, float | decimal.Decimal):
        if not math.isfinite(value):
            return None
        return _Shape("double", str(int(value)) if value == int(value) else str(value))
    if isinstance(value, datetime.datetime | datetime.date):
        day = value.date() if isinstance(value, datetime.datetime) else value
        return _Shape("date", value.isoformat(), _OBJECT_FORMAT, day)
    if isinstance(value, dict):
        return _Shape("object", "")
    text = (value if isinstance(value, str) else str(value)).strip()
    if not text:
        return None
    if text.lower() in ("true", "false"):
        return _Shape("boolean", text)
    if _LONG_RE.fullmatch(text):
        return _Shape("long", text)
    if _DOUBLE_RE.fullmatch(text) and not (text.lstrip("+-")[:1] == "0" and text.lstrip("+-")[1:2].isdigit()):
        return _Shape("double", text)
    parsed = _parse_date(text)
    if parsed is not None:
        return _Shape("date", text, parsed[0], parsed[1])
    return _Shape("string", text)


def _judged(value: Any, shape: _Shape) -> Any:
    """What ``detect`` gets: ints stay ints, integral floats become ints (spreadsheets), else text."""
    if shape.family == "long" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if shape.family == "double" and isinstance(value, float | decimal.Decimal) and value == int(value):
        return int(value)
    return shape.text


def _flatten(value: Any) -> Iterator[Any]:
    if isinstance(value, list | tuple):
        for item in value:
            yield from _flatten(item)
    else:
        yield value


# --------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class ColumnProfile:
    """What the sample says about one column. ``evidence`` maps each kind of ``KINDS`` (and the
    helper measures ``date``, ``free_text``, ``embedded``, ``latin_name``) to the fraction of the
    non-empty values that showed it. No sampled value is kept."""

    name: str
    count: int  # non-empty values seen
    type: str  # boolean, long, double, date, keyword, text, object
    date_format: str | None  # the `format` to map, when type is date
    distinct: int
    mean_length: float
    max_length: int
    evidence: Mapping[str, float]
    hints: tuple[str, ...]  # kinds the header suggests
    kind: str | None  # the kind of personal data, by this column alone (see `assess` for all rules)
    kind_evidence: float  # the share of values that decided `kind` (0.0 without one)
    reason: str  # why `kind` (or why not)


class _Tally:
    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0
        self.families: dict[str, int] = {}
        self.formats: dict[str, int] = {}
        self.distinct: set[str] = set()
        self.total_length = 0
        self.max_length = 0
        self.whitespace = 0
        self.hits: dict[str, int] = {}
        self.id_birth_matches = 0

    def add(self, value: Any, shape: _Shape, row_births: set[datetime.date]) -> None:
        self.count += 1
        self.families[shape.family] = self.families.get(shape.family, 0) + 1
        text = shape.text
        self.distinct.add(text)
        self.total_length += len(text)
        self.max_length = max(self.max_length, len(text))
        if any(c.isspace() for c in text):
            self.whitespace += 1
        found: set[str] = set(detect(_judged(value, shape)))
        if shape.family == "date":
            assert shape.date_format is not None
            self.formats[shape.date_format] = self.formats.get(shape.date_format, 0) + 1
            found.add("date")
            if shape.date in row_births:
                self.id_birth_matches += 1
        if shape.family == "string":
            if is_chinese_name(text):
                found.add("name")
            elif is_latin_name(text):
                found.add("latin_name")
            if is_address(text):
                found.add("address")
            if len(text) >= 2:
                found.add("free_text")
            if not found & set(DETECTORS) and len(text) > 18 and _has_embedded_identifier(text):
                found.add("embedded")
        for kind in found:
            self.hits[kind] = self.hits.get(kind, 0) + 1

    def result(self) -> ColumnProfile:
        n = self.count
        evidence = {k: (self.hits.get(k, 0) / n if n else 0.0)
                    for k in (*DETECTORS, "name", "latin_name", "address", "date", "free_text", "embedded")}
        date_share = evidence["date"]
        evidence["birth_date"] = self.id_birth_matches / n if n else 0.0
        hints = header_hints(self.name)
        column_type, date_format = self._type()
        kind, strength, reason = _classify(evidence, hints, date_share)
        evidence["notes"] = evidence["free_text"] if "notes" in hints else evidence["embedded"]
        return ColumnProfile(
            name=self.name, count=n, type=column_type, date_format=date_format, distinct=len(self.distinct),
            mean_length=self.total_length / n if n else 0.0, max_length=self.max_length,
            evidence={k: round(v, 4) for k, v in evidence.items()}, hints=hints, kind=kind,
            kind_evidence=round(strength, 4), reason=reason,
        )

    def _type(self) -> tuple[str, str | None]:
        families = set(self.families)
        if not families:
            return "keyword", None
        if families == {"object"}:
            return "object", None
        if families == {"boolean"}:
            return "boolean", None
        if families == {"long"}:
            return "long", None
        if families <= {"long", "double"}:
            return "double", None
        if families == {"date"}:
            formats = sorted(self.formats, key=lambda f: -self.formats[f])
            formats = [f for f in formats if not any(_SUBSUMES.get(other) == f for other in formats)]
            return "date", "||".join(formats)
        mean = self.total_length / self.count
        many = len(self.distinct) > 20 and len(self.distinct) > self.count / 2
        # Sentences in a small sample (a few e-mails): multi-word, none repeated, not short.
        sentences = len(self.distinct) == self.count and mean > 16
        if mean > 32 or self.max_length > 256 or (self.whitespace >= self.count / 2 and (many or sentences)):
            return "text", None
        return "keyword", None


def _classify(evidence: Mapping[str, float], hints: tuple[str, ...], date_share: float
              ) -> tuple[str | None, float, str]:
    """(kind, evidence, reason) by the rules of the module docstring, for one column alone."""
    candidates: list[tuple[float, int, str, str]] = []

    def consider(kind: str, share: float, threshold: float, what: str) -> None:
        if share >= threshold:
            candidates.append((share, -KINDS.index(kind), kind, f"{share:.0%} of values {what}"))
        elif kind in hints and share >= HINTED_THRESHOLD:
            candidates.append((share, -KINDS.index(kind), kind, f"header says {kind}; {share:.0%} of values {what}"))

    for kind in DETECTORS:
        consider(kind, evidence[kind], DETECTOR_THRESHOLD, f"are valid {kind.replace('_', ' ')}s")
    if "birth_date" in hints and date_share >= HINTED_THRESHOLD:
        candidates.append((date_share, -KINDS.index("birth_date"), "birth_date",
                           f"header says birth date; {date_share:.0%} of values are dates"))
    elif evidence["birth_date"] >= DETECTOR_THRESHOLD:
        share = evidence["birth_date"]
        candidates.append((share, -KINDS.index("birth_date"), "birth_date",
                           f"{share:.0%} of values are the birth date of the row's national ID"))
    name_share = evidence["name"] + (evidence["latin_name"] if "name" in hints else 0.0)
    consider("name", name_share, HEURISTIC_THRESHOLD, "look like personal names")
    consider("address", evidence["address"], HEURISTIC_THRESHOLD, "look like addresses")
    if "notes" in hints and evidence["free_text"] >= HINTED_THRESHOLD:
        share = evidence["free_text"]
        candidates.append((share, -KINDS.index("notes"), "notes", f"header says notes; {share:.0%} of values are text"))
    elif evidence["embedded"] >= EMBEDDED_THRESHOLD:
        share = evidence["embedded"]
        candidates.append((share, -KINDS.index("notes"), "notes",
                           f"{share:.0%} of values hold an identifier inside free text"))
    if not candidates:
        return None, 0.0, "no personal data found"
    share, _, kind, reason = max(candidates)
    return kind, share, reason


def profile(rows: Iterable[Mapping[str, Any]], *, sample: int = 10_000) -> list[ColumnProfile]:
    """Profile the first ``sample`` rows, one ``ColumnProfile`` per column in first-seen order.

    Reads no more than ``sample`` rows from ``rows``. Non-string column names are named by ``str()``.
    """
    if isinstance(sample, bool) or not isinstance(sample, int) or sample < 1:
        raise ValueError("sample must be a positive integer")
    tallies: dict[str, _Tally] = {}
    for row in islice(rows, sample):
        shaped: list[tuple[_Tally, Any, _Shape]] = []
        births: set[datetime.date] = set()
        for key, raw in row.items():
            name = key if isinstance(key, str) else str(key)
            tally = tallies.get(name)
            if tally is None:
                tally = tallies[name] = _Tally(name)
            for value in _flatten(raw):
                shape = _shape(value)
                if shape is None:
                    continue
                shaped.append((tally, value, shape))
                if shape.family in ("string", "long") and len(shape.text) == 18:
                    candidate = shape.text.upper()
                    if is_valid_national_id(candidate):
                        births.add(datetime.date(int(candidate[6:10]), int(candidate[10:12]), int(candidate[12:14])))
        for tally, value, shape in shaped:
            tally.add(value, shape, births)
    return [tally.result() for tally in tallies.values()]


# --------------------------------------------------------------------------- assessment


@dataclass(frozen=True)
class Assessment:
    column: str
    kind: str | None
    evidence: float
    reason: str


_PERSON_KINDS = frozenset({"national_id", "mobile", "name"})


def assess(profiles: Iterable[ColumnProfile]) -> list[Assessment]:
    """Each column's kind of personal data: its own (``ColumnProfile.kind``), or notes for a free-text
    column beside a column of national IDs, mobiles or names."""
    profiles = list(profiles)
    people = [p.name for p in profiles if p.kind in _PERSON_KINDS]
    out = []
    for p in profiles:
        if p.kind is None and p.type == "text" and people:
            out.append(Assessment(p.name, "notes", p.evidence.get("free_text", 0.0),
                                  f"free text beside personal identifiers ({', '.join(people[:3])})"))
        else:
            out.append(Assessment(p.name, p.kind, p.kind_evidence, p.reason))
    return out


# --------------------------------------------------------------------------- field names

_FIELD_CHAR_RUN = re.compile(r"[^\w]+|_+")
_MAX_FIELD_LENGTH = 100


def field_names(columns: Iterable[str]) -> dict[str, str]:
    """column → field name (the rules of the module docstring). Deterministic in the column order."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for position, column in enumerate(columns, start=1):
        text = unicodedata.normalize("NFKC", column).strip()
        text = "".join(c.lower() if c.isascii() else c for c in text)
        base = _FIELD_CHAR_RUN.sub("_", text).strip("_")[:_MAX_FIELD_LENGTH].rstrip("_") or f"column_{position}"
        candidate, n = base, 1
        while candidate in taken:
            n += 1
            candidate = f"{base}_{n}"
        taken.add(candidate)
        out[column] = candidate
    return out


# --------------------------------------------------------------------------- proposals

_PROTECTION: dict[str, dict[str, Any]] = {
    "national_id": {"type": "keyword", "protect": "blind", "blind_prefixes": [6]},
    "mobile": {"type": "keyword", "protect": "blind", "blind_prefixes": [3, 7]},
    "bank_card": {"type": "keyword", "protect": "blind"},
    "email": {"type": "keyword", "protect": "blind"},
    "passport": {"type": "keyword", "protect": "blind"},
    "name": {"type": "text", "protect": "blind"},
    "address": {"type": "text", "protect": "blind"},
    "notes": {"type": "text", "protect": "blind"},
}


@dataclass(frozen=True)
class Finding:
    """The decision for one column. ``kind`` is what it looks like (None: nothing personal), even when
    ``allow_plain`` left it plain; ``definition`` is its mapping."""

    column: str
    field: str
    kind: str | None
    evidence: float
    protection: str  # none, blind, encrypt
    definition: Mapping[str, Any]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "field": self.field, "kind": self.kind, "evidence": self.evidence,
                "protection": self.protection, "definition": dict(self.definition), "reason": self.reason}


@dataclass(frozen=True)
class Proposal:
    body: dict[str, Any]  # the index body for PUT /<index>
    columns: dict[str, str]  # field → column
    findings: list[Finding]
    plain_overrides: tuple[str, ...] = ()  # columns that look personal but allow_plain left plain
    notes: list[str] = field(default_factory=list)  # index-wide remarks (pii_detection changes)

    def table(self) -> str:
        """An aligned table: column, field, type, protection, why (wide CJK characters count two)."""
        header = ("column", "field", "type", "protection", "why")
        rows = [header]
        for f in self.findings:
            level = f.protection
            if f.definition.get("blind_prefixes"):
                level += " prefixes " + ",".join(str(n) for n in f.definition["blind_prefixes"])
            kind = f.definition.get("type", "object")
            if f.definition.get("format"):
                kind += f" ({f.definition['format']})"
            rows.append((f.column, f.field, kind, level, f.reason))
        widths = [max(_width(r[i]) for r in rows) for i in range(len(header) - 1)]
        lines = []
        for row in rows:
            cells = [cell + " " * (widths[i] - _width(cell)) for i, cell in enumerate(row[:-1])]
            lines.append("  ".join([*cells, row[-1]]).rstrip())
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps({"body": self.body, "columns": self.columns,
                           "findings": [f.to_dict() for f in self.findings],
                           "plain_overrides": list(self.plain_overrides), "notes": self.notes},
                          ensure_ascii=False, indent=2)


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def _plain_definition(p: ColumnProfile) -> dict[str, Any]:
    if p.type == "object":
        return {"type": "object", "enabled": False}
    if p.type == "date":
        return {"type": "date", "format": p.date_format}
    return {"type": p.type}


def _protected_definition(kind: str, p: ColumnProfile) -> dict[str, Any]:
    if kind == "birth_date":
        if p.type == "date":
            return {"type": "date", "format": p.date_format, "protect": "blind"}
        return {"type": "keyword", "protect": "blind"}
    definition = dict(_PROTECTION[kind])
    if kind == "notes" and p.mean_length > ENCRYPT_NOTES_LENGTH:
        definition["protect"] = "encrypt"
    return definition


def _check_allow_plain(allow_plain: Collection[str], columns: Mapping[str, str]) -> set[str]:
    """allow_plain names columns (or their field names); → the column names. Unknown names raise."""
    by_field = {f: c for c, f in columns.items()}
    chosen, unknown = set(), []
    for name in allow_plain:
        if name in columns:
            chosen.add(name)
        elif name in by_field:
            chosen.add(by_field[name])
        else:
            unknown.append(name)
    if unknown:
        raise ValueError(f"allow_plain names no column of the file: {sorted(unknown)}")
    return chosen


def propose(profiles: Iterable[ColumnProfile], *, allow_plain: Collection[str] = ()) -> Proposal:
    """The proposed index body for the profiled columns (rules in the module docstring).

    Raises ValueError when ``allow_plain`` names a column that is not in ``profiles``.
    """
    profiles = list(profiles)
    names = field_names(p.name for p in profiles)
    plain = _check_allow_plain(allow_plain, names)
    properties: dict[str, Any] = {}
    findings: list[Finding] = []
    overrides: list[str] = []
    notes: list[str] = []
    pii_detection = "reject"
    for p, a in zip(profiles, assess(profiles)):
        name = names[p.name]
        stray = [k for k in DETECTORS if p.evidence.get(k, 0.0) > 0 and k != a.kind]
        if a.kind is not None and p.name not in plain:
            definition = _protected_definition(a.kind, p)
            reason = f"{a.kind}: {a.reason}"
        else:
            definition = _plain_definition(p)
            if p.count == 0:
                reason = "no values in the sample; plain"
            elif a.kind is not None:
                reason = f"looks like {a.kind} ({a.reason}) but allow_plain leaves it plain"
                overrides.append(p.name)
            elif p.name in plain:
                reason = "allow_plain: plain"
            else:
                reason = "plain"
            detected = ([a.kind] if a.kind in DETECTORS else []) + stray
            if p.name in plain and detected:
                pii_detection = "warn"
                reason += "; pii_detection set to warn, since reject would refuse its rows"
            elif stray:
                shares = ", ".join(f"{p.evidence[k]:.0%} {k}" for k in stray)
                reason += f"; some values look like personal data ({shares}): pii_detection reject will refuse those rows"
        properties[name] = definition
        findings.append(Finding(p.name, name, a.kind, a.evidence, definition.get("protect", "none"), definition,
                                reason))
    if pii_detection == "warn":
        notes.append("index.pii_detection is warn, not reject: allow_plain keeps values that look like "
                     f"identifiers plain in {sorted(c for c in plain)}; they are logged (field and detector only)")
    body = {
        "settings": {"index": {"number_of_shards": 1, "pii_detection": pii_detection}},
        "mappings": {"dynamic": "strict", "properties": properties},
    }
    return Proposal(body=body, columns={f: c for c, f in names.items()}, findings=findings,
                    plain_overrides=tuple(overrides), notes=notes)


# --------------------------------------------------------------------------- operator mappings


@dataclass(frozen=True)
class _Mapped:
    definition: Mapping[str, Any] | None  # None: not in the mapping
    dynamic: str  # of the closest enclosing object: "true", "false", "strict"
    indexed: bool  # False under an object with enabled: false


def _dynamic(value: Any, inherited: str) -> str:
    if value is None:
        return inherited
    return {"true": "true", True: "true", "false": "false", False: "false", "strict": "strict"}.get(value, inherited)


def _flatten_mapping(node: Mapping[str, Any], prefix: str, dynamic: str, indexed: bool,
                     out: dict[str, _Mapped], objects: dict[str, tuple[str, bool]]) -> None:
    dynamic = _dynamic(node.get("dynamic"), dynamic)
    indexed = indexed and node.get("enabled", True) not in (False, "false")
    objects[prefix] = (dynamic, indexed)
    properties = node.get("properties") or {}
    if not isinstance(properties, Mapping):
        return
    for raw, definition in properties.items():
        if not isinstance(definition, Mapping):
            continue
        path = ".".join(p for p in (prefix, str(raw)) if p)
        is_object = definition.get("type") in (None, "object") and (
            "properties" in definition or definition.get("type") == "object" or not definition)
        if is_object:
            _flatten_mapping(definition, path, dynamic, indexed, out, objects)
        else:
            out[path] = _Mapped(definition, dynamic, indexed)


def resolve_columns(mapping_body: Mapping[str, Any], columns: Iterable[str]) -> dict[str, str]:
    """column → the field of ``mapping_body`` that holds it: the column name itself when the mapping
    has that path, else its derived name (``field_names``). Accepts an index body or a mappings body."""
    columns = list(columns)
    fields, _ = _mapped_fields(mapping_body)
    derived = field_names(columns)
    return {c: (c if c in fields else derived[c]) for c in columns}


def _mapped_fields(mapping_body: Mapping[str, Any]) -> tuple[dict[str, _Mapped], dict[str, tuple[str, bool]]]:
    if not isinstance(mapping_body, Mapping):
        raise ValueError("the mapping must be a JSON object")  # noqa: TRY004 (a file's content, not a type error)
    mappings = mapping_body.get("mappings", mapping_body)
    if not isinstance(mappings, Mapping):
        raise ValueError("[mappings] must be a JSON object")  # noqa: TRY004
    out: dict[str, _Mapped] = {}
    objects: dict[str, tuple[str, bool]] = {}
    _flatten_mapping(mappings, "", "true", True, out, objects)
    return out, objects


def check_mapping(mapping_body: Mapping[str, Any], profiles: Iterable[ColumnProfile], *,
                  allow_plain: Collection[str] = ()) -> list[str]:
    """Problems of an operator's mapping for these columns; an empty list means it is fine.

    One problem per column that looks personal (``assess``) and would be stored unprotected — its
    field missing under dynamic mapping (true), or mapped with ``protect`` none or absent — unless
    named in ``allow_plain``; and one per column whose field is missing under a strict mapping
    (its rows would be refused). A missing field under ``dynamic: false`` or a field inside an
    object with ``enabled: false`` is kept only in the sealed ``_source``: not a problem. Messages
    name columns, fields and kinds, never values. Raises ValueError for a body that is not an object
    or an ``allow_plain`` name that is no column.
    """
    profiles = list(profiles)
    fields, objects = _mapped_fields(mapping_body)
    resolved = resolve_columns(mapping_body, [p.name for p in profiles])
    plain = _check_allow_plain(allow_plain, resolved)
    problems: list[str] = []
    for p, a in zip(profiles, assess(profiles)):
        path = resolved[p.name]
        mapped = fields.get(path)
        what = f"column [{p.name}] looks like {a.kind} ({a.reason})"
        if mapped is None:
            parent = path.rsplit(".", 1)[0] if "." in path else ""
            while parent not in objects:
                parent = parent.rsplit(".", 1)[0] if "." in parent else ""
            dynamic, indexed = objects[parent]
            if dynamic == "strict" and indexed:
                problems.append(f"column [{p.name}] has no field [{path}] in the strict mapping: its rows would be "
                                "refused")
            elif a.kind is not None and dynamic == "true" and indexed and p.name not in plain:
                problems.append(f"{what} but field [{path}] is not mapped: dynamic mapping would index it "
                                "unprotected")
            continue
        level = mapped.definition.get("protect", "none") if mapped.definition is not None else "none"
        if a.kind is not None and mapped.indexed and level in (None, "none") and p.name not in plain:
            problems.append(f"{what} but field [{path}] is mapped without protection: map it with "
                            "\"protect\": \"blind\" (or \"encrypt\"), or name it in allow_plain")
    return problems
