"""`query_string` and `simple_query_string` bodies → plain Elasticsearch query DSL.

Client text never reaches tantivy's own query parser. This module reads Lucene's classic syntax
(`query_string`) and Lucene's simple syntax (`simple_query_string`) itself and rewrites the body into
a tree that uses only these query types, which the main DSL parser (`query/dsl.py`) compiles:

    bool, match, match_phrase, match_phrase_prefix, multi_match, prefix, wildcard, regexp, fuzzy,
    range, exists, match_all, match_none, dis_max

The readers follow Elasticsearch 8 (Lucene's classic `QueryParser` as extended by Elasticsearch's
`QueryStringQueryParser`, and Lucene's `SimpleQueryParser` as extended by
`SimpleQueryStringQueryParser`), including the parts that surprise people:

* The classic parser is not a boolean algebra. Each clause gets an occur from the conjunction and
  modifier next to it, left to right: `a AND b OR c` is `+a +b c`, `a OR b AND c` is `a +b +c`,
  `NOT a AND b` is `-a +b`, `a OR NOT b` is `a -b`.
* Whitespace is not an operator: a run of plain words (`new york city`) is analysed as one text,
  a single `match` (or `multi_match` over several fields), with `operator` = `default_operator`.
* A group whose clauses are all prohibited matches everything but them (Elasticsearch adds a
  `match_all` filter to every such group, not only the top one).
* `field:*` is `exists`, `*` / `*:*` on all fields is `match_all`, `_exists_:field` is `exists`.
* `>5`, `>=5`, `<5`, `<=5` after a field (or the default field) are ranges; `\\>` does not stop that.
* An empty (or blank) query matches nothing; it is not an error.
* The simple syntax never fails on syntax: unbalanced brackets and quotes are ignored, operators
  are read left to right with no precedence, and `-x` is `bool(must_not x, should match_all)`.
  (Only an output over MAX_CLAUSES query objects raises, as Elasticsearch's clause limit does.)

Prefix, wildcard, regexp and fuzzy values are passed through as the client wrote them (wildcard and
regexp keep their `\\` escapes, as those query types expect). Elasticsearch normalises them with the
field's normalizer (lowercasing, for a text field); that belongs to the compiler, which knows the
mapping. Field names may be patterns (`*`, `name.*`); the compiler expands them.

Recursion is bounded by MAX_DEPTH (parenthesis nesting) long before Python's own limit, and the
output is capped at MAX_CLAUSES query objects.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from ..errors import IllegalArgumentError, RequestError

MAX_DEPTH = 20
MAX_CLAUSES = 1024

__all__ = ["MAX_CLAUSES", "MAX_DEPTH", "QueryStringError", "query_string_to_dsl", "simple_query_string_to_dsl"]


class _ParseCause(RequestError):
    es_type = "parse_exception"


class QueryStringError(RequestError):
    """A query string that cannot be read. Mirrors Elasticsearch's answer: a `query_shard_exception`
    "Failed to parse query [...]" caused by a `parse_exception` that says why."""

    es_type = "query_shard_exception"

    def __init__(self, query: str, detail: str) -> None:
        super().__init__(f"Failed to parse query [{query}]")
        self.query = query
        self.detail = detail
        self.__cause__ = _ParseCause(f"Cannot parse '{query}': {detail}")


class _Syntax(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


# --------------------------------------------------------------------------------------------------
# Shared helpers: parameters, fields, DSL construction
# --------------------------------------------------------------------------------------------------

_FIELD_KEYED = frozenset({"match", "match_phrase", "match_phrase_prefix", "prefix", "wildcard", "regexp",
                          "fuzzy", "range"})
_TOP_BOOSTED = frozenset({"bool", "dis_max", "multi_match", "match_all"})
_JAVA_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[fFdD]?")
_JAVA_INT = re.compile(r"[+-]?\d+")
_INT_MAX = 2**31 - 1


def _java_trim(text: str) -> str:
    """Java's String.trim(): strips characters <= U+0020 at both ends."""
    return text.strip("".join(chr(c) for c in range(0x21)))


class _Tally:
    """Counts the query objects produced and stops at MAX_CLAUSES."""

    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0

    def add(self, n: int) -> None:
        self.n += n
        if self.n > MAX_CLAUSES:
            raise _Syntax(f"query produces more than [{MAX_CLAUSES}] clauses")


def _fmt_number(value: float) -> int | float:
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _field_string(name: str, boost: float) -> str:
    return name if boost == 1.0 else f"{name}^{_fmt_number(boost)}"


def _is_pattern(name: str) -> bool:
    return "*" in name


def _boosted(query: dict, boost: float) -> dict:
    """Multiplies a query's boost in place (Lucene nests BoostQuery, which multiplies)."""
    if boost == 1.0:
        return query
    kind, body = next(iter(query.items()))
    if kind in _FIELD_KEYED:
        params = next(iter(body.values()))
        params["boost"] = params.get("boost", 1.0) * boost
    elif kind in _TOP_BOOSTED:
        body["boost"] = body.get("boost", 1.0) * boost
    elif kind == "exists":
        return {"bool": {"must": [query], "boost": boost}}
    return query  # match_none: nothing to score


def _count_nodes(query: dict) -> int:
    """Query objects in a DSL tree, without recursion."""
    count, stack = 0, [query]
    while stack:
        node = stack.pop()
        count += 1
        kind, body = next(iter(node.items()))
        if kind == "bool":
            for key in ("must", "should", "filter", "must_not"):
                stack.extend(body.get(key, ()))
        elif kind == "dis_max":
            stack.extend(body["queries"])
    return count


def _per_field(fields: list[tuple[str, float]], make: Any, tie_breaker: float) -> dict:
    """One query per field; several are combined as Elasticsearch does, with a dis_max."""
    queries = [_boosted(make(name), boost) for name, boost in fields]
    if len(queries) == 1:
        return queries[0]
    body: dict[str, Any] = {"queries": queries}
    if tie_breaker:
        body["tie_breaker"] = tie_breaker
    return {"dis_max": body}


def _exists(name: str) -> dict:
    return {"exists": {"field": name}}


class _Params:
    """Reads the scalar parameters of a query body with Elasticsearch's leniency (numbers and booleans
    may be strings) and its error wording."""

    def __init__(self, name: str, body: dict, allowed: frozenset[str], unknown: str) -> None:
        self.name = name
        self.body = body
        for key, value in body.items():
            if key not in allowed:
                raise RequestError(unknown.format(name=name, key=key))
            if key == "fields":
                continue
            if isinstance(value, dict):
                raise RequestError(f"[{name}] unknown token [START_OBJECT] after [{key}]")
            if isinstance(value, list):
                raise RequestError(f"[{name}] query does not support [{key}]")

    def has(self, key: str) -> bool:
        return self.body.get(key) is not None

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.body.get(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return str(value)
        if isinstance(value, str):
            return value
        raise RequestError(f"[{self.name}] failed to parse field [{key}]")

    def boolean(self, key: str, default: bool | None = None) -> bool | None:
        value = self.body.get(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
        raise RequestError(f"[{self.name}] failed to parse field [{key}]: "
                           f"only [true] or [false] are allowed")

    def integer(self, key: str, default: int | None = None) -> int | None:
        value = self.body.get(key)
        if value is None:
            return default
        if isinstance(value, bool):
            raise RequestError(f"[{self.name}] failed to parse field [{key}]")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _JAVA_INT.fullmatch(value):
            return int(value)
        raise RequestError(f"[{self.name}] failed to parse field [{key}]")

    def number(self, key: str, default: float | None = None) -> float | None:
        value = self.body.get(key)
        if value is None:
            return default
        if isinstance(value, bool):
            raise RequestError(f"[{self.name}] failed to parse field [{key}]")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise RequestError(f"[{self.name}] failed to parse field [{key}]") from None
        if not math.isfinite(number):
            raise RequestError(f"[{self.name}] failed to parse field [{key}]")
        return number

    def msm(self) -> int | str | None:
        value = self.body.get("minimum_should_match")
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise RequestError(f"[{self.name}] failed to parse field [minimum_should_match]")
        return value

    def operator(self) -> bool:
        """True for AND."""
        value = self.text("default_operator", "or")
        assert value is not None
        if value.lower() not in ("and", "or"):
            raise RequestError(f"[{self.name}] default_operator [{value}] is not supported, "
                               f"expected one of [and, or]")
        return value.lower() == "and"

    def boost(self) -> float:
        boost = self.number("boost", 1.0)
        assert boost is not None
        if boost < 0:
            raise RequestError(f"[{self.name}] query does not support negative boosts")
        return boost

    def fields(self) -> list[tuple[str, float]]:
        value = self.body.get("fields")
        if value is None:
            return []
        if not isinstance(value, list):
            raise RequestError(f"[{self.name}] query does not support [fields]")
        out: dict[str, float] = {}
        for item in value:
            if not isinstance(item, str):
                raise RequestError(f"[{self.name}] [fields] must be an array of strings")
            name, sep, boost_text = item.partition("^")
            boost = 1.0
            if sep:
                try:
                    boost = float(boost_text)
                except ValueError:
                    boost = math.nan
                if not math.isfinite(boost) or not _JAVA_FLOAT.fullmatch(boost_text):
                    raise RequestError(f"[{self.name}] field boost [{boost_text}] of [{name}] is not a number")
            if not name:
                raise RequestError(f"[{self.name}] field names in [fields] must not be empty")
            out[name] = boost
        return list(out.items())

    def query(self, missing: str) -> str:
        if "query" not in self.body or self.body["query"] is None:
            raise RequestError(missing)
        text = self.text("query")
        assert text is not None
        return text


def _fuzziness_from_string(text: str) -> str | int:
    """Elasticsearch's Fuzziness.fromString: AUTO, AUTO:low,high, or an edit distance 0, 1 or 2."""
    upper = text.upper()
    if upper == "AUTO":
        return "AUTO"
    if upper.startswith("AUTO:"):
        low, sep, high = upper[5:].partition(",")
        if not sep or not low.isdigit() or not high.isdigit() or int(low) > int(high):
            raise _Syntax(f"failed to find low and high distance values in fuzziness [{text}]")
        return f"AUTO:{int(low)},{int(high)}"
    if not _JAVA_FLOAT.fullmatch(text):
        raise _Syntax(f"fuzziness cannot be [{text}].")
    value = float(text.rstrip("fFdD"))
    if not math.isfinite(value):
        raise _Syntax(f"fuzziness cannot be [{text}].")
    if value % 1 > 0:
        raise _Syntax(f"fuzziness needs to be one of 0.0, 1.0 or 2.0 but was {value}")
    edits = int(value)
    if edits not in (0, 1, 2):
        raise _Syntax(f"Valid edit distances are [0, 1, 2] but was [{edits}]")
    return edits


def _param_fuzziness(params: _Params) -> str | int:
    value = params.body.get("fuzziness")
    if value is None:
        return "AUTO"
    try:
        if isinstance(value, bool):
            raise _Syntax(f"fuzziness cannot be [{value}].")
        if isinstance(value, (int, float)):
            return _fuzziness_from_string(repr(value) if isinstance(value, float) else str(value))
        return _fuzziness_from_string(str(value))
    except _Syntax as exc:
        detail = exc.detail
    raise IllegalArgumentError(detail)


@dataclass
class _TextOptions:
    """What a text leaf (match / multi_match / match_phrase) carries besides its text."""

    and_op: bool
    analyzer: str | None
    quote_analyzer: str | None
    lenient: bool | None
    multi_type: str  # best_fields | most_fields | phrase | phrase_prefix
    tie_breaker: float | None  # explicit tie_breaker, if any


def _match_leaf(fields: list[tuple[str, float]], text: str, opts: _TextOptions) -> dict:
    """A bare text over fields: `match` for one concrete field, else `multi_match`."""
    if len(fields) == 1 and not _is_pattern(fields[0][0]):
        name, boost = fields[0]
        params: dict[str, Any] = {"query": text}
        if opts.and_op:
            params["operator"] = "and"
        if opts.analyzer is not None:
            params["analyzer"] = opts.analyzer
        if opts.lenient is not None:
            params["lenient"] = opts.lenient
        if boost != 1.0:
            params["boost"] = boost
        return {"match": {name: params}}
    body: dict[str, Any] = {"query": text, "fields": [_field_string(n, b) for n, b in fields]}
    if opts.multi_type != "best_fields":
        body["type"] = opts.multi_type
    if opts.tie_breaker is not None:
        body["tie_breaker"] = opts.tie_breaker
    if opts.and_op:
        body["operator"] = "and"
    if opts.analyzer is not None:
        body["analyzer"] = opts.analyzer
    if opts.lenient is not None:
        body["lenient"] = opts.lenient
    return {"multi_match": body}


def _phrase_leaf(fields: list[tuple[str, float]], text: str, slop: int, analyzer: str | None,
                 tie_breaker: float, prefix: bool = False) -> dict:
    """A phrase over fields. Several fields: `multi_match` of type phrase when there is no slop, else a
    dis_max of one `match_phrase` per field (the DSL's multi_match takes no slop)."""
    kind = "match_phrase_prefix" if prefix else "match_phrase"

    def single(name: str) -> dict:
        params: dict[str, Any] = {"query": text}
        if slop:
            params["slop"] = slop
        if analyzer is not None:
            params["analyzer"] = analyzer
        return {kind: {name: params}}

    if (len(fields) == 1 and not _is_pattern(fields[0][0])) or slop:
        return _per_field(fields, single, tie_breaker)
    body: dict[str, Any] = {"query": text, "fields": [_field_string(n, b) for n, b in fields],
                            "type": "phrase_prefix" if prefix else "phrase"}
    if tie_breaker:
        body["tie_breaker"] = tie_breaker
    if analyzer is not None:
        body["analyzer"] = analyzer
    return {"multi_match": body}


# --------------------------------------------------------------------------------------------------
# query_string: the tokenizer (Lucene's classic grammar, DEFAULT / Boost / Range lexical states)
# --------------------------------------------------------------------------------------------------

AND, OR, NOT, PLUS, MINUS, BAREOPER = "AND", "OR", "NOT", "PLUS", "MINUS", "BAREOPER"
LPAREN, RPAREN, COLON, STAR, CARAT = "LPAREN", "RPAREN", "COLON", "STAR", "CARAT"
QUOTED, TERM, FUZZY_SLOP, PREFIXTERM, WILDTERM, REGEXPTERM = (
    "QUOTED", "TERM", "FUZZY_SLOP", "PREFIXTERM", "WILDTERM", "REGEXPTERM")
RANGEIN_START, RANGEEX_START, NUMBER = "RANGEIN_START", "RANGEEX_START", "NUMBER"
RANGE_TO, RANGEIN_END, RANGEEX_END, RANGE_QUOTED, RANGE_GOOP = (
    "RANGE_TO", "RANGEIN_END", "RANGEEX_END", "RANGE_QUOTED", "RANGE_GOOP")
EOF = "EOF"

_WHITESPACE = frozenset(" \t\n\r\u3000")
_NOT_TERM_START = frozenset(' \t\n\r\u3000+-!():^[]"{}~*?\\/')
_NUMBER_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_LUCENE_SPECIAL = frozenset('\\+-!():^[]"{}~*?|&/')
_SINGLE = {"(": LPAREN, ")": RPAREN, ":": COLON, "^": CARAT, "[": RANGEIN_START, "{": RANGEEX_START}


@dataclass(frozen=True)
class _Tok:
    kind: str
    image: str
    pos: int


def _is_term_char(c: str) -> bool:
    return c not in _NOT_TERM_START or c in "+-"


def _scan_term_chars(s: str, i: int, wild: bool) -> tuple[int, int | None]:
    """End of the longest run of term characters from i (escapes count as one character each), and
    where the first unescaped * or ? is when `wild` allows them."""
    n, j, first_wild = len(s), i, None
    while j < n:
        c = s[j]
        if c == "\\":
            if j + 1 < n:
                j += 2
                continue
            break
        if wild and c in "*?":
            if first_wild is None:
                first_wild = j
            j += 1
            continue
        if not _is_term_char(c):
            break
        j += 1
    return j, first_wild


def _longest_delimited(s: str, i: int, delim: str, min_content: int) -> int | None:
    """For tokens like /regex/ and "range quoted": the furthest closing delimiter reachable when an
    escaped delimiter may be content or may close (JavaCC takes the longest match)."""
    n, j, last = len(s), i + 1, None
    while j < n:
        if s[j] == delim:
            if j - i - 1 >= min_content:
                last = j
            if s[j - 1] == "\\" and j - 1 > i:
                j += 1
                continue
            break
        j += 1
    return last


def _lex(s: str) -> list[_Tok]:
    toks: list[_Tok] = []
    n, i, state = len(s), 0, "DEFAULT"
    while i < n:
        c = s[i]
        if state == "BOOST":
            m = _NUMBER_RE.match(s, i)
            if not m:
                raise _Syntax(f"expected a number after [^] at position {i}")
            toks.append(_Tok(NUMBER, m.group(), i))
            i, state = m.end(), "DEFAULT"
            continue
        if state == "RANGE":
            if c == " ":
                i += 1
                continue
            goop_end = i
            while goop_end < n and s[goop_end] not in " ]}":
                goop_end += 1
            quoted_end = _longest_delimited(s, i, '"', 1) if c == '"' else None
            candidates = [  # (length, kind): ties go to the earlier entry, as in the grammar
                (1 if c in _WHITESPACE else 0, "SKIP"),
                (2 if s.startswith("TO", i) else 0, RANGE_TO),
                (1 if c == "]" else 0, RANGEIN_END),
                (1 if c == "}" else 0, RANGEEX_END),
                (quoted_end - i + 1 if quoted_end is not None else 0, RANGE_QUOTED),
                (goop_end - i, RANGE_GOOP),
            ]
            length, kind = max(candidates, key=lambda lk: lk[0])
            if kind != "SKIP":
                toks.append(_Tok(kind, s[i:i + length], i))
            if kind in (RANGEIN_END, RANGEEX_END):
                state = "DEFAULT"
            i += length
            continue
        # DEFAULT state
        if c in _WHITESPACE:
            i += 1
            continue
        if c in "+-!":
            if i + 1 < n and s[i + 1] in _WHITESPACE:
                toks.append(_Tok(BAREOPER, s[i:i + 2], i))
                i += 2
            else:
                toks.append(_Tok({"+": PLUS, "-": MINUS, "!": NOT}[c], c, i))
                i += 1
            continue
        if c in _SINGLE:
            toks.append(_Tok(_SINGLE[c], c, i))
            i += 1
            if c == "^":
                state = "BOOST"
            elif c in "[{":
                state = "RANGE"
            continue
        if c == '"':
            j = i + 1
            while j < n and s[j] != '"':
                j += 2 if s[j] == "\\" else 1
            if j >= n:
                raise _Syntax(f"unterminated quoted phrase starting at position {i}")
            toks.append(_Tok(QUOTED, s[i:j + 1], i))
            i = j + 1
            continue
        if c == "/":
            end = _longest_delimited(s, i, "/", 0)
            if end is None:
                raise _Syntax(f"unterminated regular expression starting at position {i}")
            toks.append(_Tok(REGEXPTERM, s[i:end + 1], i))
            i = end + 1
            continue
        if c == "~":
            end, _ = _scan_term_chars(s, i + 1, wild=False)
            toks.append(_Tok(FUZZY_SLOP, s[i:end], i))
            i = end
            continue
        if c == "\\" and i + 1 >= n:
            raise _Syntax("query can not end with escape character")
        if c in "*?" or c not in _NOT_TERM_START or c == "\\":
            end, first_wild = _scan_term_chars(s, i, wild=True)
            starts_wild = c in "*?"
            term_len = 0 if starts_wild else (first_wild if first_wild is not None else end) - i
            if c == "*":
                prefix_len = 1
            elif not starts_wild and first_wild is not None and s[first_wild] == "*":
                prefix_len = term_len + 1
            else:
                prefix_len = 0
            keyword = 0
            kind_kw = TERM
            for word, kind in (("AND", AND), ("&&", AND), ("OR", OR), ("||", OR), ("NOT", NOT)):
                if s.startswith(word, i):
                    keyword, kind_kw = len(word), kind
                    break
            candidates = [
                (keyword, kind_kw),
                (1 if c == "*" else 0, STAR),
                (term_len, TERM),
                (prefix_len, PREFIXTERM),
                (end - i, WILDTERM),
            ]
            length, kind = max(candidates, key=lambda lk: lk[0])
            toks.append(_Tok(kind, s[i:i + length], i))
            i += length
            continue
        raise _Syntax(f"unexpected [{c}] at position {i}")
    if state == "BOOST":
        raise _Syntax("expected a number after [^] at the end of the query")
    toks.extend([_Tok(EOF, "", n)] * 3)
    return toks


def _discard_escapes(text: str) -> str:
    """Lucene's discardEscapeChar: drops the escaping backslashes, reads \\uXXXX."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        if i + 1 >= n:
            raise _Syntax("Term can not end with escape character.")
        nxt = text[i + 1]
        if nxt != "u":
            out.append(nxt)
            i += 2
            continue
        digits = text[i + 2:i + 6]
        for d in digits:
            if d not in "0123456789abcdefABCDEF":
                raise _Syntax(f"Non-hex character in Unicode escape sequence: {d}")
        if len(digits) < 4:
            raise _Syntax("Truncated unicode escape sequence.")
        out.append(chr(int(digits, 16)))
        i += 6
    return "".join(out)


def _lucene_escape(text: str) -> str:
    return "".join("\\" + c if c in _LUCENE_SPECIAL else c for c in text)


# --------------------------------------------------------------------------------------------------
# query_string: the parser
# --------------------------------------------------------------------------------------------------

MUST, SHOULD, MUST_NOT = "must", "should", "must_not"
CONJ_NONE, CONJ_AND, CONJ_OR = 0, 1, 2
MOD_NONE, MOD_NOT, MOD_REQ = 0, 10, 11
_CLAUSE_START = frozenset({TERM, STAR, PREFIXTERM, WILDTERM, REGEXPTERM, NUMBER, BAREOPER, RANGEIN_START,
                           RANGEEX_START, QUOTED, LPAREN})
_LOOP_START = _CLAUSE_START | {AND, OR, PLUS, MINUS, NOT}
_NOT_AFTER_MULTITERM = frozenset({COLON, STAR, FUZZY_SLOP, CARAT, AND, OR})
_TYPE_TIE = {"best_fields": 0.0, "most_fields": 1.0, "cross_fields": 0.0, "phrase": 0.0, "phrase_prefix": 0.0}


class _Leaf:
    __slots__ = ("dsl", "words")

    def __init__(self, dsl: dict, words: list[str] | None = None) -> None:
        self.dsl = dsl
        self.words = words  # set for a single-field run of words (see minimum_should_match)


class _Bool:
    __slots__ = ("boost", "clauses", "msm")

    def __init__(self, clauses: list[list[Any]]) -> None:
        self.clauses = clauses  # [occur, node, from_run]
        self.boost = 1.0
        self.msm: int | str | None = None


@dataclass
class _QSOptions:
    default_field: str | None  # None when `fields` is given
    fields: list[tuple[str, float]]
    and_op: bool
    text: _TextOptions
    allow_leading_wildcard: bool
    fuzziness: str | int
    fuzzy_max_expansions: int | None
    fuzzy_prefix_length: int | None
    fuzzy_transpositions: bool | None
    phrase_slop: int
    time_zone: str | None
    max_determinized_states: int | None
    quote_field_suffix: str | None
    tie: float


class _QueryStringParser:
    def __init__(self, text: str, opts: _QSOptions) -> None:
        self.toks = _lex(text)
        self.i = 0
        self.o = opts
        self.tally = _Tally()

    # -- plumbing --------------------------------------------------------------------------------

    def peek(self, ahead: int = 0) -> _Tok:
        return self.toks[min(self.i + ahead, len(self.toks) - 1)]

    def advance(self) -> _Tok:
        tok = self.toks[self.i]
        self.i = min(self.i + 1, len(self.toks) - 1)
        return tok

    def leaf(self, dsl: dict, words: list[str] | None = None) -> _Leaf:
        self.tally.add(_count_nodes(dsl))
        return _Leaf(dsl, words)

    def unexpected(self, tok: _Tok) -> _Syntax:
        if tok.kind == EOF:
            prev = self.toks[self.i - 1] if self.i > 0 else None
            after = f" after [{prev.image.strip()}]" if prev is not None else ""
            return _Syntax(f"unexpected end of query{after}")
        if tok.kind == RPAREN:
            return _Syntax(f"unbalanced parenthesis: unexpected [)] at position {tok.pos}")
        return _Syntax(f"unexpected [{tok.image}] at position {tok.pos}")

    # -- grammar ---------------------------------------------------------------------------------

    def parse(self) -> _Leaf | _Bool | None:
        node = self.query(self.o.default_field, 0)
        if self.peek().kind != EOF:
            raise self.unexpected(self.peek())
        return node

    def multiterm_ahead(self) -> bool:
        return (self.peek().kind == TERM and self.peek(1).kind == TERM
                and self.peek(2).kind not in _NOT_AFTER_MULTITERM)

    def query(self, field: str | None, depth: int) -> _Leaf | _Bool | None:
        clauses: list[list[Any]] = []
        first: _Leaf | _Bool | None = None
        if self.multiterm_ahead():
            first = self.multiterm(field, clauses)
        else:
            mods = self.modifiers()
            q = self.clause(field, depth)
            self.add_clause(clauses, CONJ_NONE, mods, q)
            if mods == MOD_NONE:
                first = q
        while True:
            if self.multiterm_ahead():
                self.multiterm(field, clauses)
            elif self.peek().kind in _LOOP_START:
                conj = self.conjunction()
                mods = self.modifiers()
                q = self.clause(field, depth)
                self.add_clause(clauses, conj, mods, q)
            else:
                break
        if len(clauses) == 1 and first is not None:
            return first
        return self.boolean(clauses)

    def conjunction(self) -> int:
        kind = self.peek().kind
        if kind == AND:
            self.advance()
            return CONJ_AND
        if kind == OR:
            self.advance()
            return CONJ_OR
        return CONJ_NONE

    def modifiers(self) -> int:
        kind = self.peek().kind
        if kind == PLUS:
            self.advance()
            return MOD_REQ
        if kind in (MINUS, NOT):
            self.advance()
            return MOD_NOT
        return MOD_NONE

    def add_clause(self, clauses: list[list[Any]], conj: int, mods: int, q: Any) -> None:
        # Lucene's QueryParserBase.addClause: an AND makes the previous clause required, an OR under
        # the AND default operator makes it optional (prohibited clauses stay prohibited).
        if clauses and conj == CONJ_AND and clauses[-1][0] != MUST_NOT:
            clauses[-1][0] = MUST
        if clauses and self.o.and_op and conj == CONJ_OR and clauses[-1][0] != MUST_NOT:
            clauses[-1][0] = SHOULD
        if q is None:
            return
        prohibited = mods == MOD_NOT
        if self.o.and_op:
            required = not prohibited and conj != CONJ_OR
        else:
            required = mods == MOD_REQ or (conj == CONJ_AND and not prohibited)
        clauses.append([MUST if required else MUST_NOT if prohibited else SHOULD, q, False])

    def boolean(self, clauses: list[list[Any]]) -> _Bool | None:
        if not clauses:
            return None
        node = _Bool(clauses)
        self.tally.add(2 if all(c[0] == MUST_NOT for c in clauses) else 1)
        return node

    def multiterm(self, field: str | None, clauses: list[list[Any]]) -> Any:
        images = [self.advance().image]
        while self.peek().kind == TERM and self.peek(1).kind not in _NOT_AFTER_MULTITERM:
            images.append(self.advance().image)
        text = _discard_escapes(" ".join(images))
        words = [_discard_escapes(image) for image in images]
        q = self.field_query(field, text, words)
        if q is not None:
            clauses.append([MUST if self.o.and_op else SHOULD, q, True])
        return q

    def clause(self, field: str | None, depth: int) -> Any:
        if self.peek().kind == TERM and self.peek(1).kind == COLON:
            field = _discard_escapes(self.advance().image)
            self.advance()
        elif self.peek().kind == STAR and self.peek(1).kind == COLON:
            field = "*"
            self.advance()
            self.advance()
        if self.peek().kind == LPAREN:
            if depth + 1 > MAX_DEPTH:
                raise _Syntax(f"query is nested deeper than [{MAX_DEPTH}] levels")
            self.advance()
            q = self.query(field, depth + 1)
            if self.peek().kind != RPAREN:
                if self.peek().kind == EOF:
                    raise _Syntax("unbalanced parenthesis: missing [)]")
                raise self.unexpected(self.peek())
            self.advance()
            return self.boost(q, self.optional_boost())
        return self.term(field)

    def optional_boost(self) -> float | None:
        if self.peek().kind == CARAT:
            self.advance()
            return float(self.advance().image)  # the lexer guarantees a NUMBER after ^
        return None

    def boost(self, q: Any, boost: float | None) -> Any:
        if q is None or boost is None:
            return q
        if isinstance(q, _Bool):
            q.boost *= boost
        else:
            q.dsl = _boosted(q.dsl, boost)
        return q

    def boost_and_slop(self) -> tuple[float | None, _Tok | None]:
        boost = slop = None
        if self.peek().kind == CARAT:
            boost = self.optional_boost()
            if self.peek().kind == FUZZY_SLOP:
                slop = self.advance()
        elif self.peek().kind == FUZZY_SLOP:
            slop = self.advance()
            boost = self.optional_boost()
        return boost, slop

    def term(self, field: str | None) -> Any:
        tok = self.peek()
        if tok.kind in (TERM, STAR, PREFIXTERM, WILDTERM, REGEXPTERM, NUMBER, BAREOPER):
            self.advance()
            boost, slop = self.boost_and_slop()
            return self.boost(self.bare_token(field, tok, slop), boost)
        if tok.kind in (RANGEIN_START, RANGEEX_START):
            return self.range_clause(field)
        if tok.kind == QUOTED:
            self.advance()
            boost, slop = self.boost_and_slop()
            return self.boost(self.quoted(field, tok, slop), boost)
        raise self.unexpected(tok)

    def range_clause(self, field: str | None) -> Any:
        start = self.advance()
        parts: list[str | None] = []
        for expected in ("lower", "TO", "upper"):
            tok = self.advance()
            if expected == "TO":
                if tok.kind != RANGE_TO:
                    raise _Syntax(f"malformed range starting at position {start.pos}: expected [TO]")
                continue
            if tok.kind not in (RANGE_GOOP, RANGE_QUOTED, RANGE_TO):
                raise _Syntax(f"malformed range starting at position {start.pos}: expected a {expected} bound")
            image = tok.image[1:-1] if tok.kind == RANGE_QUOTED else tok.image
            value = _discard_escapes(image)
            parts.append(None if value == "*" else value)
        end = self.advance()
        if end.kind not in (RANGEIN_END, RANGEEX_END):
            raise _Syntax(f"malformed range starting at position {start.pos}: expected [TO] between two "
                          f"bounds and a closing [ or }}")
        boost = self.optional_boost()
        q = self.range_query(field, parts[0], parts[1], start.kind == RANGEIN_START, end.kind == RANGEIN_END)
        return self.boost(q, boost)

    # -- what each construct becomes (Elasticsearch's QueryStringQueryParser) ---------------------

    def fieldset(self, field: str | None, quoted: bool = False) -> list[tuple[str, float]]:
        if field is None:
            fields = self.o.fields
        else:
            fields = [(field, 1.0)]
        suffix = self.o.quote_field_suffix
        if quoted and suffix and not (field is not None and field == self.o.default_field == "*"):
            fields = [(name if _is_pattern(name) else name + suffix, boost) for name, boost in fields]
        return fields

    def bare_token(self, field: str | None, tok: _Tok, slop: _Tok | None) -> Any:
        image = tok.image[0] if tok.kind == BAREOPER else tok.image
        text = _discard_escapes(image)
        if tok.kind in (STAR, WILDTERM):
            return self.wildcard_query(field, image)
        if tok.kind == PREFIXTERM:
            return self.prefix_query(field, _discard_escapes(image[:-1]))
        if tok.kind == REGEXPTERM:
            return self.regexp_query(field, image[1:-1])
        if slop is not None:
            return self.fuzzy_query(field, slop.image, text)
        if tok.kind == BAREOPER:
            return None  # a lone +, - or ! analyses to nothing; Elasticsearch drops the clause
        return self.field_query(field, text)

    def quoted(self, field: str | None, tok: _Tok, slop_tok: _Tok | None) -> Any:
        slop = self.o.phrase_slop
        if slop_tok is not None and _JAVA_FLOAT.fullmatch(slop_tok.image[1:]):
            value = float(slop_tok.image[1:].rstrip("fFdD"))
            slop = max(min(int(value), _INT_MAX), 0) if math.isfinite(value) else _INT_MAX
        text = _discard_escapes(tok.image[1:-1])
        if field == "_exists_":
            return self.leaf(_exists(text))
        if not text.strip():
            return None
        o = self.o
        analyzer = o.text.quote_analyzer if o.text.quote_analyzer is not None else o.text.analyzer
        return self.leaf(_phrase_leaf(self.fieldset(field, quoted=True), text, slop, analyzer, o.tie))

    def field_query(self, field: str | None, text: str, words: list[str] | None = None) -> Any:
        if field == "_exists_":
            return self.leaf(_exists(text))
        if field is not None and len(text) > 1 and text[0] in "<>":
            inclusive = len(text) > 2 and text[1] == "="
            bound = text[2:] if inclusive else text[1:]
            if text[0] == ">":
                return self.range_query(field, bound, None, inclusive, True)
            return self.range_query(field, None, bound, True, inclusive)
        if not text.strip():
            return None
        fields = self.fieldset(field)
        o = self.o
        if o.text.multi_type in ("phrase", "phrase_prefix"):
            return self.leaf(_phrase_leaf(fields, text, o.phrase_slop, o.text.analyzer, o.tie,
                                          prefix=o.text.multi_type == "phrase_prefix"))
        dsl = _match_leaf(fields, text, o.text)
        single = "match" in dsl and words is not None and len(words) > 1
        return self.leaf(dsl, words if single else None)

    def range_query(self, field: str | None, lower: str | None, upper: str | None,
                    include_lower: bool, include_upper: bool) -> Any:
        if lower == "*":
            lower = None
        if upper == "*":
            upper = None

        def make(name: str) -> dict:
            if lower is None and upper is None:
                return _exists(name)
            params: dict[str, Any] = {}
            if lower is not None:
                params["gte" if include_lower else "gt"] = lower
            if upper is not None:
                params["lte" if include_upper else "lt"] = upper
            if self.o.time_zone is not None:
                params["time_zone"] = self.o.time_zone
            return {"range": {name: params}}

        return self.leaf(_per_field(self.fieldset(field), make, self.o.tie))

    def wildcard_query(self, field: str | None, image: str) -> Any:
        actual = field if field is not None else self.o.default_field
        if image == "*" and actual is not None:
            return self.leaf({"match_all": {}} if actual == "*" else _exists(actual))
        if image != "*" and not self.o.allow_leading_wildcard and image[0] in "*?":
            raise _Syntax("'*' or '?' not allowed as first character in WildcardQuery")

        def make(name: str) -> dict:
            return _exists(name) if image == "*" else {"wildcard": {name: {"value": image}}}

        return self.leaf(_per_field(self.fieldset(field), make, self.o.tie))

    def prefix_query(self, field: str | None, text: str) -> Any:
        return self.leaf(_per_field(self.fieldset(field), lambda name: {"prefix": {name: {"value": text}}},
                                    self.o.tie))

    def regexp_query(self, field: str | None, text: str) -> Any:
        def make(name: str) -> dict:
            params: dict[str, Any] = {"value": text}
            if self.o.max_determinized_states is not None:
                params["max_determinized_states"] = self.o.max_determinized_states
            return {"regexp": {name: params}}

        return self.leaf(_per_field(self.fieldset(field), make, self.o.tie))

    def fuzzy_query(self, field: str | None, slop_image: str, text: str) -> Any:
        fuzziness = self.o.fuzziness if len(slop_image) == 1 else _fuzziness_from_string(slop_image[1:])

        def make(name: str) -> dict:
            params: dict[str, Any] = {"value": text, "fuzziness": fuzziness}
            if self.o.fuzzy_prefix_length is not None:
                params["prefix_length"] = self.o.fuzzy_prefix_length
            if self.o.fuzzy_max_expansions is not None:
                params["max_expansions"] = self.o.fuzzy_max_expansions
            if self.o.fuzzy_transpositions is not None:
                params["transpositions"] = self.o.fuzzy_transpositions
            return {"fuzzy": {name: params}}

        return self.leaf(_per_field(self.fieldset(field), make, self.o.tie))


def _emit(node: _Leaf | _Bool) -> dict:
    if isinstance(node, _Leaf):
        return node.dsl
    body: dict[str, Any] = {}
    for occur, child, _run in node.clauses:
        body.setdefault(occur, []).append(_emit(child))
    if all(c[0] == MUST_NOT for c in node.clauses):
        body["filter"] = [{"match_all": {}}]  # Elasticsearch's fixNegativeQueryIfNeeded, per group
    if node.msm is not None:
        body["minimum_should_match"] = node.msm
    if node.boost != 1.0:
        body["boost"] = node.boost
    return {"bool": body}


def _apply_msm(node: _Leaf | _Bool, msm: int | str) -> None:
    """Elasticsearch applies minimum_should_match to the top query only, when it is boolean. A run
    of words on one field was analysed into one boolean query whose terms joined the top clause list
    (Lucene's addMultiTermClauses), so such runs are split into one clause per word here."""
    if isinstance(node, _Bool):
        clauses: list[list[Any]] = []
        for occur, child, run in node.clauses:
            if run and isinstance(child, _Leaf) and child.words:
                (field, params), = child.dsl["match"].items()
                for word in child.words:
                    clauses.append([occur, _Leaf({"match": {field: {**params, "query": word}}}), False])
            else:
                clauses.append([occur, child, run])
        node.clauses = clauses
        node.msm = msm
    elif "match" in node.dsl:
        params = next(iter(node.dsl["match"].values()))
        params["minimum_should_match"] = msm


_QS_ALLOWED = frozenset({
    "query", "default_field", "fields", "default_operator", "analyzer", "quote_analyzer",
    "allow_leading_wildcard", "fuzziness", "fuzzy_max_expansions", "fuzzy_prefix_length",
    "fuzzy_transpositions", "fuzzy_rewrite", "lenient", "minimum_should_match", "phrase_slop", "boost",
    "time_zone", "analyze_wildcard", "auto_generate_synonyms_phrase_query", "enable_position_increments",
    "escape", "max_determinized_states", "quote_field_suffix", "type", "tie_breaker", "rewrite", "_name",
})


def query_string_to_dsl(body: dict) -> dict:
    """Translates the object under `query_string` into plain query DSL."""
    if not isinstance(body, dict):
        raise RequestError("[query_string] query malformed, no start_object after query name")
    params = _Params("query_string", body, _QS_ALLOWED, "[{name}] query does not support [{key}]")
    query = params.query("[query_string] must be provided with a [query]")
    fields = params.fields()
    default_field = params.text("default_field")
    if fields and default_field is not None:
        raise RequestError("[query_string] cannot use [fields] parameter in conjunction with [default_field]")
    if not fields and default_field is None:
        default_field = "*"
    qtype = params.text("type", "best_fields")
    assert qtype is not None
    if qtype not in _TYPE_TIE:
        if qtype == "bool_prefix":
            raise RequestError("[query_string] type [bool_prefix] is not supported")
        raise RequestError(f"failed to parse [multi_match] query type [{qtype}]. unknown type.")
    tie_breaker = params.number("tie_breaker")
    all_fields = default_field == "*" or any(name == "*" for name, _ in fields)
    lenient = params.boolean("lenient")
    if lenient is None and all_fields:
        lenient = True
    and_op = params.operator()
    phrase_slop = params.integer("phrase_slop", 0)
    assert phrase_slop is not None
    for key in ("analyze_wildcard", "auto_generate_synonyms_phrase_query", "enable_position_increments"):
        params.boolean(key)
    params.text("rewrite")
    params.text("fuzzy_rewrite")
    params.text("_name")
    opts = _QSOptions(
        default_field=default_field,
        fields=fields,
        and_op=and_op,
        text=_TextOptions(
            and_op=and_op,
            analyzer=params.text("analyzer"),
            quote_analyzer=params.text("quote_analyzer"),
            lenient=lenient,
            multi_type="best_fields" if qtype == "cross_fields" else qtype,
            tie_breaker=tie_breaker,
        ),
        allow_leading_wildcard=bool(params.boolean("allow_leading_wildcard", True)),
        fuzziness=_param_fuzziness(params),
        fuzzy_max_expansions=params.integer("fuzzy_max_expansions"),
        fuzzy_prefix_length=params.integer("fuzzy_prefix_length"),
        fuzzy_transpositions=params.boolean("fuzzy_transpositions"),
        phrase_slop=max(phrase_slop, 0),
        time_zone=params.text("time_zone"),
        max_determinized_states=params.integer("max_determinized_states"),
        quote_field_suffix=params.text("quote_field_suffix"),
        tie=tie_breaker if tie_breaker is not None else _TYPE_TIE[qtype],
    )
    msm = params.msm()
    boost = params.boost()
    text = _lucene_escape(query) if params.boolean("escape", False) else query
    if not _java_trim(text):
        return {"match_none": {}}  # documented: an empty query string yields no documents

    detail = None
    try:
        node = _QueryStringParser(text, opts).parse()
        if node is None:
            result: dict = {"match_none": {}}
        else:
            if msm is not None:
                _apply_msm(node, msm)
            result = _boosted(_emit(node), boost)
        if _count_nodes(result) > MAX_CLAUSES:
            raise _Syntax(f"query produces more than [{MAX_CLAUSES}] clauses")
    except _Syntax as exc:
        detail = exc.detail
    if detail is not None:
        raise QueryStringError(query, detail)
    return result


# --------------------------------------------------------------------------------------------------
# simple_query_string (Lucene's SimpleQueryParser: a character-level reader that never fails)
# --------------------------------------------------------------------------------------------------

F_AND, F_NOT, F_OR, F_PREFIX, F_PHRASE, F_PRECEDENCE, F_ESCAPE, F_WHITESPACE, F_FUZZY, F_NEAR = (
    1 << 0, 1 << 1, 1 << 2, 1 << 3, 1 << 4, 1 << 5, 1 << 6, 1 << 7, 1 << 8, 1 << 9)
_SQS_FLAGS = {"ALL": -1, "NONE": 0, "AND": F_AND, "NOT": F_NOT, "OR": F_OR, "PREFIX": F_PREFIX,
              "PHRASE": F_PHRASE, "PRECEDENCE": F_PRECEDENCE, "ESCAPE": F_ESCAPE, "WHITESPACE": F_WHITESPACE,
              "FUZZY": F_FUZZY, "NEAR": F_NEAR, "SLOP": F_NEAR}
_SQS_WHITESPACE = frozenset(" \t\n\r")


def _resolve_flags(value: Any) -> int:
    if value is None:
        return -1
    if isinstance(value, bool):
        raise IllegalArgumentError(f"Unknown [simple_query_string] flag [{value}]")
    if isinstance(value, (int, float)):
        return -1 if value < 0 else int(value)
    if not isinstance(value, str):
        raise RequestError("[simple_query_string] failed to parse field [flags]")
    if not value:
        return -1
    flags = 0
    for part in value.split("|"):
        if not part:
            continue
        flag = _SQS_FLAGS.get(part.upper())
        if flag is None:
            raise IllegalArgumentError(f"Unknown [simple_query_string] flag [{part}]")
        if flag in (0, -1):
            return flag
        flags |= flag
    return flags


class _SimpleState:
    __slots__ = ("current", "end", "i", "nots", "previous", "top", "top_list")

    def __init__(self, start: int, end: int) -> None:
        self.i = start
        self.end = end
        self.current: str | None = None
        self.previous: str | None = None
        self.nots = 0
        self.top: dict | None = None
        self.top_list: list[dict] | None = None


class _SimpleParser:
    def __init__(self, text: str, flags: int, and_op: bool, make: _SimpleBuilder) -> None:
        self.s = text
        self.flags = flags
        self.default_occur = MUST if and_op else SHOULD
        self.make = make
        self.tally = make.tally
        self.closing = self._closing_parens() if flags & F_PRECEDENCE else []

    def on(self, flag: int) -> bool:
        return bool(self.flags & flag)

    def _closing_parens(self) -> list[int]:
        """For each start position p, the first q >= p where a scan from p (precedence 1, escapes
        honoured) reaches precedence 0, or n+1. Whether a character is escaped depends only on the run
        of backslashes right before it, so one pass serves every scan; a next-smaller-prefix-sum
        stack keeps the whole thing linear, even for thousands of unbalanced parentheses."""
        s, n = self.s, len(self.s)
        escape = self.on(F_ESCAPE)
        sums = [0] * (n + 1)
        run = 0
        for q, c in enumerate(s):
            escaped = escape and run % 2 == 1
            delta = 0
            if not escaped:
                delta = 1 if c == "(" else -1 if c == ")" else 0
            sums[q + 1] = sums[q] + delta
            run = run + 1 if (c == "\\" and escape) else 0
        nxt = [n + 1] * (n + 1)
        stack: list[int] = []
        for k in range(n + 1):
            while stack and sums[k] < sums[stack[-1]]:
                nxt[stack.pop()] = k
            stack.append(k)
        return nxt

    def finished(self, c: str) -> bool:
        return ((c == '"' and self.on(F_PHRASE)) or (c == "|" and self.on(F_OR))
                or (c == "+" and self.on(F_AND)) or (c in "()" and self.on(F_PRECEDENCE))
                or (c in _SQS_WHITESPACE and self.on(F_WHITESPACE)))

    def parse(self) -> dict | None:
        state = _SimpleState(0, len(self.s))
        self.sub_query(state, 0)
        return state.top

    def sub_query(self, st: _SimpleState, depth: int) -> None:
        s = self.s
        while st.i < st.end:
            c = s[st.i]
            if c == "(" and self.on(F_PRECEDENCE):
                self.consume_sub_query(st, depth)
            elif c == ")" and self.on(F_PRECEDENCE):
                st.i += 1
            elif c == '"' and self.on(F_PHRASE):
                self.consume_phrase(st)
            elif c == "+" and self.on(F_AND):
                if st.current is None and st.top is not None:
                    st.current = MUST
                st.i += 1
            elif c == "|" and self.on(F_OR):
                if st.current is None and st.top is not None:
                    st.current = SHOULD
                st.i += 1
            elif c == "-" and self.on(F_NOT):
                st.nots += 1
                st.i += 1
                continue
            elif c in _SQS_WHITESPACE and self.on(F_WHITESPACE):
                st.i += 1
            else:
                self.consume_token(st)
            st.nots = 0

    def consume_sub_query(self, st: _SimpleState, depth: int) -> None:
        start = st.i + 1
        if depth >= MAX_DEPTH:
            st.i = start  # too deep: the bracket is ignored and its contents read flat
            return
        close = self.closing[start] - 1
        if close >= st.end:
            st.i = start  # never closed: the opening bracket is ignored
        elif close == start:
            st.current = None  # "()" drops the pending operator
            st.i = start + 1
        else:
            sub = _SimpleState(start, close)
            self.sub_query(sub, depth + 1)
            self.build(st, sub.top)
            st.i = close + 1

    def consume_phrase(self, st: _SimpleState) -> None:
        s = self.s
        start = st.i + 1
        j, buf, escaped, has_slop = start, [], False, False
        while j < st.end:
            c = s[j]
            if not escaped:
                if c == "\\" and self.on(F_ESCAPE):
                    escaped = True
                    j += 1
                    continue
                if c == '"':
                    if st.end > j + 1 and s[j + 1] == "~" and self.on(F_NEAR):
                        j += 1
                        has_slop = st.end > j + 1
                    break
            escaped = False
            buf.append(c)
            j += 1
        if j == st.end:
            st.i = start  # never closed: the quote is ignored
        elif j == start:
            st.current = None  # "" drops the pending operator
            st.i = start + 1
        else:
            st.i = j
            slop = self.parse_fuzziness(st) if has_slop else 0
            self.build(st, self.make.phrase("".join(buf), slop))
            st.i += 1

    def consume_token(self, st: _SimpleState) -> None:
        s = self.s
        buf: list[str] = []
        escaped = prefix = fuzzy = False
        j = st.i
        while j < st.end:
            c = s[j]
            if not escaped:
                if c == "\\" and self.on(F_ESCAPE):
                    escaped, prefix = True, False
                    j += 1
                    continue
                if self.finished(c):
                    break
                if buf and c == "~" and self.on(F_FUZZY):
                    fuzzy = True
                    break
                prefix = bool(buf) and c == "*" and self.on(F_PREFIX)
            escaped = False
            buf.append(c)
            j += 1
        st.i = j
        if not buf:
            return
        token = "".join(buf)
        if fuzzy:
            distance = min(self.parse_fuzziness(st), 2)
            branch = self.make.default(token) if distance == 0 else self.make.fuzzy(token, distance)
        elif prefix:
            branch = self.make.prefix(token[:-1])
        else:
            branch = self.make.default(token)
        self.build(st, branch)

    def parse_fuzziness(self, st: _SimpleState) -> int:
        s = self.s
        if s[st.i] != "~":
            return 0
        chars: list[str] = []
        while st.i < st.end:
            st.i += 1
            if st.i < st.end:
                if self.finished(s[st.i]):
                    break
                chars.append(s[st.i])
        text = "".join(chars)
        if not text:
            return 2
        if not _JAVA_INT.fullmatch(text):
            return 0
        value = int(text)
        if value > _INT_MAX or value < -_INT_MAX - 1:
            return 0
        return max(value, 0)

    def build(self, st: _SimpleState, branch: dict | None) -> None:
        """Lucene's buildQueryTree: operators apply left to right; a change of operator wraps
        everything so far in a new boolean query."""
        if branch is None:
            return
        if st.nots % 2 == 1:
            branch = {"bool": {"must_not": [branch], "should": [{"match_all": {}}]}}
            self.tally.add(2)
        if st.top is None:
            st.top = branch
        else:
            if st.current is None:
                st.current = self.default_occur
            if st.previous != st.current or st.top_list is None:
                st.top_list = [st.top]
                st.top = {"bool": {st.current: st.top_list}}
                self.tally.add(1)
            st.top_list.append(branch)
            st.previous = st.current
        st.current = None


class _SimpleBuilder:
    """The leaves of simple_query_string (Elasticsearch's SimpleQueryStringQueryParser)."""

    def __init__(self, fields: list[tuple[str, float]], text: _TextOptions, suffix: str | None,
                 fuzzy_params: dict[str, Any]) -> None:
        self.fields = fields
        self.text = text
        self.suffix = suffix
        self.fuzzy_params = fuzzy_params
        self.tally = _Tally()

    def _counted(self, query: dict) -> dict:
        self.tally.add(_count_nodes(query))
        return query

    def default(self, token: str) -> dict | None:
        if not token.strip():
            return None
        return self._counted(_match_leaf(self.fields, token, self.text))

    def phrase(self, text: str, slop: int) -> dict | None:
        if not text.strip():
            return None
        fields = self.fields
        if self.suffix:
            fields = [(n if _is_pattern(n) else n + self.suffix, b) for n, b in fields]
        return self._counted(_phrase_leaf(fields, text, slop, self.text.analyzer, 0.0))

    def prefix(self, text: str) -> dict:
        return self._counted(_per_field(self.fields, lambda n: {"prefix": {n: {"value": text}}}, 1.0))

    def fuzzy(self, text: str, distance: int) -> dict:
        def make(name: str) -> dict:
            return {"fuzzy": {name: {"value": text, "fuzziness": distance, **self.fuzzy_params}}}

        return self._counted(_per_field(self.fields, make, 1.0))


_SQS_ALLOWED = frozenset({
    "query", "fields", "default_operator", "analyzer", "flags", "fuzzy_max_expansions",
    "fuzzy_prefix_length", "fuzzy_transpositions", "lenient", "minimum_should_match", "quote_field_suffix",
    "analyze_wildcard", "auto_generate_synonyms_phrase_query", "boost", "_name",
})


def simple_query_string_to_dsl(body: dict) -> dict:
    """Translates the object under `simple_query_string` into plain query DSL. Syntax never fails;
    only bad parameters, or an output over MAX_CLAUSES query objects, raise."""
    if not isinstance(body, dict):
        raise RequestError("[simple_query_string] query malformed, no start_object after query name")
    params = _Params("simple_query_string", body, _SQS_ALLOWED, "[{name}] unsupported field [{key}]")
    query = params.query("[simple_query_string] query text missing")
    fields = params.fields() or [("*", 1.0)]
    flags = _resolve_flags(body.get("flags"))
    and_op = params.operator()
    lenient = params.boolean("lenient")
    if lenient is None and any(name == "*" for name, _ in fields):
        lenient = True
    for key in ("analyze_wildcard", "auto_generate_synonyms_phrase_query"):
        params.boolean(key)
    params.text("_name")
    fuzzy_params: dict[str, Any] = {}
    for key, target in (("fuzzy_prefix_length", "prefix_length"), ("fuzzy_max_expansions", "max_expansions")):
        value = params.integer(key)
        if value is not None:
            fuzzy_params[target] = value
    transpositions = params.boolean("fuzzy_transpositions")
    if transpositions is not None:
        fuzzy_params["transpositions"] = transpositions
    text_opts = _TextOptions(and_op=and_op, analyzer=params.text("analyzer"), quote_analyzer=None,
                             lenient=lenient, multi_type="most_fields", tie_breaker=None)
    msm = params.msm()
    boost = params.boost()

    if _java_trim(query) == "*":
        return _boosted({"match_all": {}}, boost)
    builder = _SimpleBuilder(fields, text_opts, params.text("quote_field_suffix"), fuzzy_params)
    parser = _SimpleParser(query, flags, and_op, builder)
    detail = None
    try:
        top = parser.parse()
    except _Syntax as exc:
        detail = exc.detail
    if detail is not None:
        raise QueryStringError(query, detail)
    if top is None:
        return {"match_none": {}}
    if msm is not None:
        kind, inner = next(iter(top.items()))
        if kind == "bool":
            inner["minimum_should_match"] = msm
        elif kind == "match":
            next(iter(inner.values()))["minimum_should_match"] = msm
    return _boosted(top, boost)
