"""A plain-Python oracle for a subset of Elasticsearch's query DSL and aggregations.

Used by tests/test_differential.py. It evaluates an Elasticsearch query (the JSON object that goes
under `query`) over an in-memory corpus and answers which documents match; it also computes a few
aggregations and BM25 scores. It shares no code with Strongroom: everything here is written from
Elasticsearch's documented behaviour (and Lucene's, where Elasticsearch delegates to it), not
from the engine's implementation. Nothing from `strongroom` is imported.

Text analysis (the `default` analyzer, re-implemented from its specification):
* full-width and half-width forms (U+FF00-U+FFEF) are NFKC-normalised (Elasticsearch's cjk_width);
* each maximal run of CJK characters (Han U+4E00-U+9FFF and U+3400-U+4DBF, kana U+3040-U+30FF and
  U+31F0-U+31FF, hangul U+AC00-U+D7AF) yields its overlapping bigrams; a lone CJK character
  yields itself;
* every other maximal run of letters and digits (Unicode categories L* and N*) is lowercased and
  folded to ASCII (é -> e, ß -> ss, ø -> o, ...);
* everything else separates tokens;
* positions increase by one per token across a whole value; the values of a multi-valued field
  are separated by a gap of 100 positions, so phrases never cross values.

Query semantics implemented (scores are ignored except by `bm25`):
* term / terms: keyword exact string; text: the unanalysed value must be an indexed token;
  long: numeric equality (a value with a fractional part matches nothing); double: equality;
  boolean: true/"true", false/"false"; date: Elasticsearch turns a date term into the range
  [value, value] with the upper end rounded up (see dates below), so `"2023-05-01"` matches the
  whole day and `"...T10:00:00Z"` the whole second.
* range: numbers compare as numbers (so on a long field `gt: 1.5` means `>= 2`); keywords compare
  as strings (code point order = UTF-8 byte order); dates compare as epoch milliseconds.
* exists: at least one non-null value (an empty string, or a text without any token, still
  exists: Lucene writes a norm of 0 for a text field without tokens, and keyword "" is a term).
* ids, prefix (keyword values; tokens on text), wildcard (`*` any run, `?` one code point, `\\`
  escapes; on keyword values, or tokens on text).
* match: the query text's tokens; no token matches nothing (zero_terms_query none); one token is
  a plain term query (minimum_should_match does not apply); several tokens are SHOULD clauses
  (operator or: at least max(1, msm)) or MUST clauses (operator and). minimum_should_match is
  computed as Elasticsearch's Queries.calculateMinShouldMatch (integers, negatives and
  percentages) and is *not* clamped to the number of clauses: asking for more than there are
  matches nothing. On a keyword field the query text must equal a value.
* match_phrase (slop 0): the tokens at consecutive positions inside one value.
* bool: every must and filter clause, no must_not clause, and at least `msm` should clauses where
  `msm` is minimum_should_match if given, else 0 (Elasticsearch 7+: no special case for filter
  context); with should clauses and no must/filter clause at least one should clause must match
  whatever msm says (a Lucene disjunction; msm 0 cannot lift that, elastic/elasticsearch#52735).
  msm larger than the number of should clauses, including msm >= 1 with no should clause at all,
  matches nothing (elastic/elasticsearch#15571, #21844). A bool of must_not clauses only matches
  every other document, minimum_should_match ignored (Queries.fixNegativeQueryIfNeeded rebuilds
  the query without it). An empty bool matches everything.
* constant_score (its filter), dis_max (union of its queries), match_all, match_none.
* Unmapped fields match nothing.

Dates (epoch milliseconds, UTC when the value has no zone). ASSUMPTION, taken from
Elasticsearch's documentation ("Missing date components" in the range query reference) and its
JavaDateMathParser: for the *round-up* bounds `lte` and `gt` (and the upper end of a date term),
missing time components default to their maximum, HOUR_OF_DAY 23, MINUTE_OF_HOUR 59,
SECOND_OF_MINUTE 59, fraction .999; missing MONTH_OF_YEAR and DAY_OF_MONTH default to 01 for both
ends. So `lte: "2020-01-01"` includes the whole of that day and `gt: "2020-01-01"` starts on
2020-01-02, even without `||/d`. `gte`/`lt` fill missing components with their minimum. A number
(or a string of digits that is not a date) is epoch milliseconds and is never rounded. (In
Elasticsearch a numeric bound makes *both* bounds of a date range parse as epoch_millis, so a
range mixing a number and a date string is a 400; the test never generates one.)

Aggregations: terms (count desc, then key asc; keys are strings, integers, or 1/0 plus
key_as_string for booleans), avg/min/max/sum/value_count (doubles; null when no value, sum 0.0,
value_count an integer), histogram (floor((v - offset) / interval) * interval + offset, empty buckets
filled between the first and last when min_doc_count is 0), range (from inclusive, to exclusive;
buckets sorted by from then to; keys "from-to" with Java's Double.toString and `*` for an open end).
A document counts once per bucket, however many of its values fall in it.

BM25 (Lucene's, without the constant (k1 + 1) factor): idf = ln(1 + (N - n + 0.5) / (n + 0.5)),
score = idf * tf / (tf + k1 * (1 - b + b * dl / avgdl)), k1 = 1.2, b = 0.75, N the number of
documents with at least one token in the field, n those containing the term, dl the field's length
in tokens (all values), avgdl the mean dl over the N documents.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import struct
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# -- text analysis ----------------------------------------------------------------------------

_CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x3040, 0x30FF), (0x31F0, 0x31FF), (0xAC00, 0xD7AF))
_FOLD = {"ß": "ss", "æ": "ae", "ø": "o", "œ": "oe", "đ": "d", "ð": "d", "ł": "l", "þ": "th", "ı": "i"}


def is_cjk(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _CJK_RANGES)


def _is_word_char(char: str) -> bool:
    return unicodedata.category(char)[0] in "LN"


def _fold(word: str) -> str:
    out = []
    for char in word.lower():
        if char in _FOLD:
            out.append(_FOLD[char])
            continue
        decomposed = unicodedata.normalize("NFD", char)
        base = "".join(c for c in decomposed if not unicodedata.combining(c))
        out.append(base if base.isascii() and base else char)
    return "".join(out)


def _width_fold(text: str) -> str:
    """NFKC on each run of full-width / half-width forms (so half-width kana keep their marks)."""
    return re.sub("[\uFF00-\uFFEF]+", lambda m: unicodedata.normalize("NFKC", m.group(0)), text)


def analyze(text: str) -> list[str]:
    """The default analyzer's tokens of one value, in position order."""
    text = _width_fold(text)
    tokens: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if is_cjk(char):
            j = i
            while j < n and is_cjk(text[j]):
                j += 1
            run = text[i:j]
            tokens.extend([run] if len(run) == 1 else [run[k:k + 2] for k in range(len(run) - 1)])
            i = j
        elif _is_word_char(char):
            j = i
            while j < n and _is_word_char(text[j]) and not is_cjk(text[j]):
                j += 1
            tokens.append(_fold(text[i:j]))
            i = j
        else:
            i += 1
    return tokens


# -- dates ------------------------------------------------------------------------------------

_ISO = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
                  r"(Z|[+-]\d{2}:\d{2})?)?)?)?")
_EPOCH_DAY = dt.date(1970, 1, 1).toordinal()


class DateError(ValueError):
    pass


def parse_date(value: Any, *, round_up: bool = False, date_only: bool = False) -> int:
    """Epoch millis of a date value (strict_date_optional_time||epoch_millis, or strict_date)."""
    if isinstance(value, bool):
        raise DateError(f"not a date: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return math.floor(value)
    if not isinstance(value, str):
        raise DateError(f"not a date: {value!r}")
    if date_only:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise DateError(f"not a strict_date: {value!r}")
    match = _ISO.fullmatch(value)
    if match is None:
        if not date_only and re.fullmatch(r"-?\d+", value):
            return int(value)
        raise DateError(f"not a date: {value!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        ordinal = dt.date(int(year), int(month or 1), int(day or 1)).toordinal()
    except ValueError as e:
        raise DateError(str(e)) from None
    top = round_up
    h = int(hour) if hour is not None else (23 if top else 0)
    m = int(minute) if minute is not None else (59 if top else 0)
    s = int(second) if second is not None else (59 if top else 0)
    ms = int((fraction + "00")[:3]) if fraction is not None else (999 if top else 0)
    if h > 23 or m > 59 or s > 59:
        raise DateError(f"bad time: {value!r}")
    offset = 0
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        offset = sign * (int(zone[1:3]) * 60 + int(zone[4:6])) * 60_000
    return ((ordinal - _EPOCH_DAY) * 86_400_000 + h * 3_600_000 + m * 60_000 + s * 1000 + ms) - offset


# -- the corpus, normalised per field ---------------------------------------------------------

@dataclass
class FieldSpec:
    type: str  # text | keyword | long | double | date | boolean
    format: str | None = None  # dates: None (strict_date_optional_time||epoch_millis) or "strict_date"


@dataclass
class _Doc:
    id: str
    source: dict[str, Any]
    values: dict[str, list[Any]] = field(default_factory=dict)  # non-text fields: converted values
    texts: dict[str, list[list[str]]] = field(default_factory=dict)  # text fields: tokens per value


def _raw_values(source: dict[str, Any], path: str) -> list[Any]:
    value = source.get(path)
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [v for v in items if v is not None]


def _to_long(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, str):
        value = float(value) if any(c in value for c in ".eE") else int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(value)
        return int(value)  # coerce truncates toward zero
    return int(value)


def _to_bool(value: Any) -> bool:
    if value is True or value == "true":
        return True
    if value is False or value == "false":
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _convert(spec: FieldSpec, value: Any) -> Any:
    if spec.type == "keyword":
        return value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
    if spec.type == "long":
        return _to_long(value)
    if spec.type == "double":
        return float(value)
    if spec.type == "boolean":
        return _to_bool(value)
    if spec.type == "date":
        return parse_date(value, date_only=spec.format == "strict_date")
    raise ValueError(spec.type)


def _wildcard_regex(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if char == "*" else "." if char == "?" else re.escape(char))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def min_should_match(optional: int, spec: Any) -> int:
    """Elasticsearch's Queries.calculateMinShouldMatch for integer / percentage specs."""
    text = str(spec).strip()
    if text.endswith("%"):
        # Java: float calc = (result * percent) * (1 / 100f), in float32 arithmetic.
        calc = _f32(float(optional * int(text[:-1])) * _f32(1 / 100))
        result = optional + math.trunc(calc) if calc < 0 else math.trunc(calc)
    else:
        calc_int = int(text)
        result = optional + calc_int if calc_int < 0 else calc_int
    return max(result, 0)


def _f32(value: float) -> float:
    return struct.unpack("<f", struct.pack("<f", value))[0]


class UnsupportedQuery(Exception):
    """The oracle does not model this query (the generator must not produce it)."""


class Oracle:
    def __init__(self, docs: dict[str, dict[str, Any]], mapping: dict[str, FieldSpec]) -> None:
        self.mapping = mapping
        self.docs: dict[str, _Doc] = {}
        for doc_id, source in docs.items():
            doc = _Doc(doc_id, source)
            for path, spec in mapping.items():
                raw = _raw_values(source, path)
                if spec.type == "text":
                    doc.texts[path] = [analyze(v) for v in raw]
                else:
                    doc.values[path] = [_convert(spec, v) for v in raw]
            self.docs[doc_id] = doc
        self.all_ids = frozenset(self.docs)

    # -- queries ----------------------------------------------------------------------------
    def search(self, query: dict[str, Any]) -> set[str]:
        if not isinstance(query, dict) or len(query) != 1:
            raise UnsupportedQuery(query)
        ((kind, body),) = query.items()
        method = getattr(self, f"_q_{kind}", None)
        if method is None:
            raise UnsupportedQuery(kind)
        return set(method(body))

    def _where(self, path: str, predicate: Any) -> set[str]:
        spec = self.mapping.get(path)
        if spec is None:
            return set()
        if spec.type == "text":
            return {d.id for d in self.docs.values() if any(predicate(t) for ts in d.texts[path] for t in ts)}
        return {d.id for d in self.docs.values() if any(predicate(v) for v in d.values[path])}

    @staticmethod
    def _field_body(body: dict[str, Any], value_key: str = "value") -> tuple[str, Any, dict[str, Any]]:
        options = {k: v for k, v in body.items() if k not in ("boost", "_name")}
        if len(options) != 1:
            raise UnsupportedQuery(body)
        ((path, spec),) = options.items()
        if isinstance(spec, dict):
            return path, spec[value_key], spec
        return path, spec, {}

    def _q_match_all(self, body: Any) -> set[str]:
        return set(self.all_ids)

    def _q_match_none(self, body: Any) -> set[str]:
        return set()

    def _term_predicate(self, spec: FieldSpec, value: Any) -> Any:
        if spec.type in ("text", "keyword"):
            text = value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
            return lambda v: v == text
        if spec.type == "long":
            number = float(value) if isinstance(value, str) else value
            if isinstance(number, float) and not number.is_integer():
                return lambda v: False
            target = int(number)
            return lambda v: v == target
        if spec.type == "double":
            target = float(value)
            return lambda v: v == target
        if spec.type == "boolean":
            target = _to_bool(value)
            return lambda v: v is target
        if spec.type == "date":
            date_only = spec.format == "strict_date"
            low = parse_date(value, date_only=date_only)
            high = parse_date(value, round_up=True, date_only=date_only)
            return lambda v: low <= v <= high
        raise UnsupportedQuery(spec.type)

    def _q_term(self, body: dict[str, Any]) -> set[str]:
        path, value, _ = self._field_body(body)
        spec = self.mapping.get(path)
        if spec is None:
            return set()
        return self._where(path, self._term_predicate(spec, value))

    def _q_terms(self, body: dict[str, Any]) -> set[str]:
        path, values, _ = self._field_body(body)
        spec = self.mapping.get(path)
        if spec is None:
            return set()
        out: set[str] = set()
        for value in values:
            out |= self._where(path, self._term_predicate(spec, value))
        return out

    def _q_ids(self, body: dict[str, Any]) -> set[str]:
        return {v for v in body["values"] if v in self.docs}

    def _q_exists(self, body: dict[str, Any]) -> set[str]:
        path = body["field"]
        spec = self.mapping.get(path)
        if spec is None:
            return set()
        if spec.type == "text":
            return {d.id for d in self.docs.values() if d.texts[path]}
        return {d.id for d in self.docs.values() if d.values[path]}

    def _q_range(self, body: dict[str, Any]) -> set[str]:
        ((path, bounds),) = ((k, v) for k, v in body.items() if k not in ("boost", "_name"))
        spec = self.mapping.get(path)
        if spec is None:
            return set()
        checks = []
        for op in ("gt", "gte", "lt", "lte"):
            if op not in bounds or bounds[op] is None:
                continue
            raw = bounds[op]
            if spec.type == "date":
                bound: Any = parse_date(raw, round_up=op in ("gt", "lte"), date_only=spec.format == "strict_date")
            elif spec.type in ("long", "double"):
                bound = float(raw) if isinstance(raw, str) else raw
                if spec.type == "double":
                    bound = float(bound)
            elif spec.type == "keyword":
                bound = raw if isinstance(raw, str) else str(raw)
            else:
                raise UnsupportedQuery(f"range on {spec.type}")
            checks.append((op, bound))

        def predicate(v: Any) -> bool:
            for op, bound in checks:
                if op == "gt" and not v > bound or op == "gte" and not v >= bound \
                        or op == "lt" and not v < bound or op == "lte" and not v <= bound:
                    return False
            return True
        return self._where(path, predicate)

    def _q_prefix(self, body: dict[str, Any]) -> set[str]:
        path, value, _ = self._field_body(body)
        return self._where(path, lambda v: isinstance(v, str) and v.startswith(value))

    def _q_wildcard(self, body: dict[str, Any]) -> set[str]:
        path, value, _ = self._field_body(body)
        regex = _wildcard_regex(value)
        return self._where(path, lambda v: isinstance(v, str) and regex.fullmatch(v) is not None)

    def _q_match(self, body: dict[str, Any]) -> set[str]:
        path, text, options = self._field_body(body, "query")
        spec = self.mapping.get(path)
        if spec is None:
            return set()
        if spec.type == "keyword":
            return self._where(path, lambda v: v == text)
        if spec.type != "text":
            raise UnsupportedQuery(f"match on {spec.type}")
        tokens = analyze(text)
        if not tokens:
            return set()
        operator = str(options.get("operator", "or")).lower()
        msm = options.get("minimum_should_match")
        out = set()
        for doc in self.docs.values():
            present = {t for ts in doc.texts[path] for t in ts}
            hits = sum(1 for t in tokens if t in present)
            if len(tokens) == 1:
                ok = hits == 1
            elif operator == "and":
                ok = hits == len(tokens) and (msm is None or min_should_match(0, msm) == 0)
            else:
                need = max(1, min_should_match(len(tokens), msm)) if msm is not None else 1
                ok = hits >= need
            if ok:
                out.add(doc.id)
        return out

    def _q_match_phrase(self, body: dict[str, Any]) -> set[str]:
        path, text, options = self._field_body(body, "query")
        spec = self.mapping.get(path)
        if spec is None:
            return set()
        if spec.type != "text" or options.get("slop", 0) != 0:
            raise UnsupportedQuery("match_phrase")
        tokens = analyze(text)
        if not tokens:
            return set()
        k = len(tokens)
        out = set()
        for doc in self.docs.values():
            if any(ts[i:i + k] == tokens for ts in doc.texts[path] for i in range(len(ts) - k + 1)):
                out.add(doc.id)
        return out

    @staticmethod
    def _clauses(value: Any) -> list[dict[str, Any]]:
        if value is None:
            return []
        return value if isinstance(value, list) else [value]

    def _q_bool(self, body: dict[str, Any]) -> set[str]:
        must = [self.search(q) for q in self._clauses(body.get("must"))]
        filters = [self.search(q) for q in self._clauses(body.get("filter"))]
        must_not = [self.search(q) for q in self._clauses(body.get("must_not"))]
        should = [self.search(q) for q in self._clauses(body.get("should"))]
        if not (must or filters or must_not or should):
            return set(self.all_ids)
        if not (must or filters or should):  # pure negative: everything else (minimum_should_match dropped)
            return set(self.all_ids).difference(*must_not)
        if body.get("minimum_should_match") is not None:
            need = min_should_match(len(should), body["minimum_should_match"])
        else:
            need = 0
        if should and not (must or filters):  # a pure disjunction needs one clause, even with msm 0
            need = max(need, 1)
        out = set(self.all_ids)
        for group in must + filters:
            out &= group
        for group in must_not:
            out -= group
        if need > 0:
            out = {d for d in out if sum(1 for s in should if d in s) >= need}
        return out

    def _q_constant_score(self, body: dict[str, Any]) -> set[str]:
        return self.search(body["filter"])

    def _q_dis_max(self, body: dict[str, Any]) -> set[str]:
        out: set[str] = set()
        for q in body["queries"]:
            out |= self.search(q)
        return out

    # -- scores -----------------------------------------------------------------------------
    def bm25(self, path: str, token: str, k1: float = 1.2, b: float = 0.75) -> dict[str, float]:
        """Scores of the documents whose field `path` holds `token`."""
        lengths = {d.id: sum(len(ts) for ts in d.texts[path]) for d in self.docs.values()}
        having = {i: n for i, n in lengths.items() if n > 0}
        big_n = len(having)
        avgdl = sum(having.values()) / big_n
        freqs = {d.id: sum(ts.count(token) for ts in d.texts[path]) for d in self.docs.values()}
        freqs = {i: f for i, f in freqs.items() if f > 0}
        n = len(freqs)
        idf = math.log(1 + (big_n - n + 0.5) / (n + 0.5))
        return {i: idf * f / (f + k1 * (1 - b + b * lengths[i] / avgdl)) for i, f in freqs.items()}

    # -- aggregations -----------------------------------------------------------------------
    def aggregate(self, aggs: dict[str, Any], ids: Iterable[str]) -> dict[str, Any]:
        docs = [self.docs[i] for i in sorted(ids)]
        out: dict[str, Any] = {}
        for name, spec in aggs.items():
            ((kind, body),) = ((k, v) for k, v in spec.items() if k != "aggs")
            out[name] = getattr(self, f"_a_{kind}")(body, docs)
        return out

    def _numbers(self, path: str, docs: list[_Doc]) -> list[float]:
        return [float(v) for d in docs for v in d.values.get(path, [])]

    def _a_terms(self, body: dict[str, Any], docs: list[_Doc]) -> dict[str, Any]:
        path = body["field"]
        spec = self.mapping[path]
        size = body.get("size", 10)
        counts: dict[Any, int] = {}
        for d in docs:
            for v in set(d.values.get(path, [])):
                key = (1 if v else 0) if spec.type == "boolean" else v
                counts[key] = counts.get(key, 0) + 1
        items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        buckets = []
        for key, count in items[:size]:
            bucket: dict[str, Any] = {"key": key}
            if spec.type == "boolean":
                bucket["key_as_string"] = "true" if key else "false"
            bucket["doc_count"] = count
            buckets.append(bucket)
        return {"doc_count_error_upper_bound": 0, "sum_other_doc_count": sum(c for _, c in items[size:]),
                "buckets": buckets}

    def _a_avg(self, body: dict[str, Any], docs: list[_Doc]) -> dict[str, Any]:
        vals = self._numbers(body["field"], docs)
        return {"value": math.fsum(vals) / len(vals) if vals else None}

    def _a_sum(self, body: dict[str, Any], docs: list[_Doc]) -> dict[str, Any]:
        return {"value": float(math.fsum(self._numbers(body["field"], docs)))}

    def _a_min(self, body: dict[str, Any], docs: list[_Doc]) -> dict[str, Any]:
        vals = self._numbers(body["field"], docs)
        return {"value": min(vals) if vals else None}

    def _a_max(self, body: dict[str, Any], docs: list[_Doc]) -> dict[str, Any]:
        vals = self._numbers(body["field"], docs)
        return {"value": max(vals) if vals else None}

    def _a_value_count(self, body: dict[str, Any], docs: list[_Doc]) -> dict[str, Any]:
        return {"value": len(self._numbers(body["field"], docs))}

    def _a_histogram(self, body: dict[str, Any], docs: list[_Doc]) -> dict[str, Any]:
        path, interval = body["field"], float(body["interval"])
        offset = float(body.get("offset", 0.0))
        min_doc_count = body.get("min_doc_count", 0)

        def key(v: float) -> float:
            return math.floor((v - offset) / interval) * interval + offset
        counts: dict[float, int] = {}
        for d in docs:
            for k in {key(float(v)) for v in d.values.get(path, [])}:
                counts[k] = counts.get(k, 0) + 1
        if min_doc_count == 0 and counts:
            low, high = min(counts), max(counts)
            for i in range(round((low - offset) / interval), round((high - offset) / interval) + 1):
                counts.setdefault(i * interval + offset, 0)
        return {"buckets": [{"key": float(k), "doc_count": c} for k, c in sorted(counts.items())
                            if c >= min_doc_count]}

    def _a_range(self, body: dict[str, Any], docs: list[_Doc]) -> dict[str, Any]:
        path = body["field"]
        ranges = sorted(body["ranges"], key=lambda r: (r.get("from", -math.inf), r.get("to", math.inf)))
        buckets = []
        for r in ranges:
            low, high = r.get("from"), r.get("to")
            count = sum(1 for d in docs if any((low is None or float(v) >= low) and (high is None or float(v) < high)
                                               for v in d.values.get(path, [])))
            bucket: dict[str, Any] = {"key": f"{'*' if low is None else java_double(low)}-"
                                             f"{'*' if high is None else java_double(high)}"}
            if low is not None:
                bucket["from"] = float(low)
            if high is not None:
                bucket["to"] = float(high)
            bucket["doc_count"] = count
            buckets.append(bucket)
        return {"buckets": buckets}


def java_double(value: float) -> str:
    """Java's Double.toString for the moderate magnitudes used here (1e-3 <= |x| < 1e7, or 0)."""
    value = float(value)
    if value == 0 or 1e-3 <= abs(value) < 1e7:
        text = repr(value)
        return text if "e" not in text else f"{value:.1f}"
    raise ValueError(f"java_double: {value} is out of the supported range")
