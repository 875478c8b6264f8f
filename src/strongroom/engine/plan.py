"""The engine's query plan: a typed tree the engine can execute, and its compilation to tantivy.

The query layer parses the Elasticsearch DSL into these nodes (and rewrites them for the caller's
policy); the engine turns them into tantivy queries, per shard. Client text never reaches
tantivy's own query parser: terms come from our analyzers, patterns from our translators.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import ipaddress
import math
import re
import time
from dataclasses import dataclass, field, replace
from collections.abc import Callable, Sequence
from typing import Any, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import tantivy

from ..errors import RequestError
from . import analysis
from .dates import DateFormat, DateFormatError, DateParseError, parse_date_math
from .mapping import INTEGER_RANGES, FieldType, Mapping

Occur = tantivy.Occur

MAX_REGEX_LENGTH = 1000  # Elasticsearch's index.max_regex_length
MAX_TERMS_EXPANSION = 65_536  # string ranges expand to at most this many terms
MAX_FUZZY_DISTANCE = 2


class QueryShardError(RequestError):
    es_type = "query_shard_exception"


# -- nodes ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class MatchAll:
    boost: float = 1.0


@dataclass(frozen=True)
class MatchNone:
    boost: float = 1.0


@dataclass(frozen=True)
class Term:
    field: str
    value: Any
    boost: float = 1.0
    case_insensitive: bool = False


@dataclass(frozen=True)
class Terms:
    field: str
    values: tuple[Any, ...]
    boost: float = 1.0


@dataclass(frozen=True)
class Ids:
    values: tuple[str, ...]
    boost: float = 1.0


@dataclass(frozen=True)
class Exists:
    field: str
    boost: float = 1.0


@dataclass(frozen=True)
class Range:
    field: str
    gte: Any = None
    gt: Any = None
    lte: Any = None
    lt: Any = None
    boost: float = 1.0
    format: str | None = None
    time_zone: str | None = None


@dataclass(frozen=True)
class Bool:
    must: tuple["Node", ...] = ()
    should: tuple["Node", ...] = ()
    filter: tuple["Node", ...] = ()
    must_not: tuple["Node", ...] = ()
    minimum_should_match: int | str | None = None
    boost: float = 1.0


@dataclass(frozen=True)
class ConstantScore:
    filter: "Node"
    boost: float = 1.0


@dataclass(frozen=True)
class DisMax:
    queries: tuple["Node", ...]
    tie_breaker: float = 0.0
    boost: float = 1.0


@dataclass(frozen=True)
class Boosting:
    positive: "Node"
    negative: "Node"
    negative_boost: float
    boost: float = 1.0


@dataclass(frozen=True)
class Match:
    field: str
    query: Any
    operator: str = "or"
    minimum_should_match: int | str | None = None
    fuzziness: str | int | None = None
    prefix_length: int = 0
    max_expansions: int = 50
    transpositions: bool = True
    analyzer: str | None = None
    zero_terms_query: str = "none"
    lenient: bool = False
    boost: float = 1.0


@dataclass(frozen=True)
class MatchPhrase:
    field: str
    query: Any
    slop: int = 0
    analyzer: str | None = None
    zero_terms_query: str = "none"
    boost: float = 1.0


@dataclass(frozen=True)
class MatchPhrasePrefix:
    field: str
    query: Any
    slop: int = 0
    max_expansions: int = 50
    analyzer: str | None = None
    boost: float = 1.0


@dataclass(frozen=True)
class MatchBoolPrefix:
    field: str
    query: Any
    operator: str = "or"
    minimum_should_match: int | str | None = None
    fuzziness: str | int | None = None
    prefix_length: int = 0
    max_expansions: int = 50
    transpositions: bool = True
    analyzer: str | None = None
    boost: float = 1.0


@dataclass(frozen=True)
class MultiMatch:
    query: Any
    fields: tuple[tuple[str, float], ...]  # (field or pattern, boost)
    type: str = "best_fields"
    operator: str = "or"
    minimum_should_match: int | str | None = None
    fuzziness: str | int | None = None
    prefix_length: int = 0
    max_expansions: int = 50
    transpositions: bool = True
    tie_breaker: float | None = None
    analyzer: str | None = None
    slop: int = 0
    lenient: bool = False
    zero_terms_query: str = "none"
    boost: float = 1.0


@dataclass(frozen=True)
class Prefix:
    field: str
    value: str
    case_insensitive: bool = False
    boost: float = 1.0
    normalize: bool = False  # From query_string: lowercase for text fields, as the field's normalizer would.


@dataclass(frozen=True)
class Wildcard:
    field: str
    value: str
    case_insensitive: bool = False
    boost: float = 1.0
    normalize: bool = False


@dataclass(frozen=True)
class Regexp:
    field: str
    value: str
    flags: str = "ALL"
    case_insensitive: bool = False
    boost: float = 1.0
    normalize: bool = False


@dataclass(frozen=True)
class Fuzzy:
    field: str
    value: Any
    fuzziness: str | int = "AUTO"
    prefix_length: int = 0
    max_expansions: int = 50
    transpositions: bool = True
    boost: float = 1.0
    normalize: bool = False


@dataclass(frozen=True)
class Named:
    """A query the caller named with `_name`: hits report whether (and how well) it matched."""

    name: str
    query: "Node"


Node = Union[Named, MatchAll, MatchNone, Term, Terms, Ids, Exists, Range, Bool, ConstantScore, DisMax, Boosting, Match,
             MatchPhrase, MatchPhrasePrefix, MatchBoolPrefix, MultiMatch, Prefix, Wildcard, Regexp, Fuzzy]


# Queries Elasticsearch scores with a constant (the boost): term sets, ranges, existence, ids, and
# patterns (constant-score rewrite).
CONSTANT_SCORE_NODES = (Terms, Range, Exists, Ids, Prefix, Wildcard, Regexp)


# -- helpers --------------------------------------------------------------------------------
_MSM_PART = re.compile(r"^(-?\d+)(%?)$")


def named_queries(node: Node) -> list[Named]:
    """Every named query in a tree, outermost first."""
    found: list[Named] = []
    stack: list[Any] = [node]
    while stack:
        current = stack.pop(0)
        if isinstance(current, Named):
            found.append(current)
            stack.append(current.query)
        elif isinstance(current, Bool):
            stack.extend((*current.must, *current.should, *current.filter, *current.must_not))
        elif isinstance(current, DisMax):
            stack.extend(current.queries)
        elif isinstance(current, (ConstantScore,)):
            stack.append(current.filter)
        elif isinstance(current, Boosting):
            stack.extend((current.positive, current.negative))
    return found


def map_children(node: Node, fn: Callable[[Node], Node]) -> Node | None:
    """A compound query rebuilt with `fn` applied to each of its sub-queries; None for a leaf. The
    one place that knows which nodes hold queries, for rewrites above the engine."""
    match node:
        case Named():
            return Named(node.name, fn(node.query))
        case Bool():
            return replace(node, must=tuple(map(fn, node.must)), should=tuple(map(fn, node.should)),
                           filter=tuple(map(fn, node.filter)), must_not=tuple(map(fn, node.must_not)))
        case ConstantScore():
            return replace(node, filter=fn(node.filter))
        case DisMax():
            return replace(node, queries=tuple(map(fn, node.queries)))
        case Boosting():
            return replace(node, positive=fn(node.positive), negative=fn(node.negative))
    return None


def match_over_pattern(node: Match) -> MultiMatch:
    """`match` on a field pattern (`*`, `name.*`): Elasticsearch runs it as a lenient best_fields
    multi_match over the fields the pattern names."""
    return MultiMatch(node.query, ((node.field, 1.0),), "best_fields", node.operator, node.minimum_should_match,
                      node.fuzziness, node.prefix_length, node.max_expansions, node.transpositions, None,
                      node.analyzer, 0, True, node.zero_terms_query, node.boost)


def combine_per_field(node: MultiMatch, parts: list[Node]) -> Node:
    """Per-field parts of a multi_match joined as its type joins fields: most_fields and bool_prefix
    add the scores, the others keep the best (plus tie_breaker times the rest)."""
    if not parts:
        return MatchNone()
    if len(parts) == 1:
        return parts[0]
    if node.type in ("most_fields", "bool_prefix"):
        return Bool(should=tuple(parts))
    tie = node.tie_breaker if node.tie_breaker is not None else (1.0 if node.type == "cross_fields" else 0.0)
    return DisMax(tuple(parts), tie)


def expand_slots(slots: dict[str, Any], pattern: str) -> list[str]:
    """Mapped, indexed field paths a pattern names (`*`, `name.*`, exact paths): `*` alone names the
    text and keyword fields, as Elasticsearch's default fields do."""
    if "*" not in pattern:
        return [pattern] if pattern in slots else []
    if pattern in ("*", "*.*"):
        return sorted(p for p, s in slots.items() if s.kind in ("text", "keyword"))
    return sorted(p for p in slots if fnmatch.fnmatchcase(p, pattern))


def resolve_minimum_should_match(spec: int | str | None, optional: int) -> int:
    """Elasticsearch's minimum_should_match: 3, -2, 75%, -25%, and conditional "3<90%" forms."""
    if spec is None:
        return 0
    if isinstance(spec, int):
        value = spec
        return max(0, min(optional, value if value >= 0 else optional + value))
    text = str(spec).strip()
    if "<" in text:
        result = optional
        for part in text.split():
            threshold, _, inner = part.partition("<")
            try:
                limit = int(threshold)
            except ValueError:
                raise RequestError(f"Invalid minimum_should_match [{spec}]") from None
            if optional > limit:
                result = resolve_minimum_should_match(inner, optional)
        return result
    match = _MSM_PART.match(text)
    if not match:
        raise RequestError(f"Invalid minimum_should_match [{spec}]")
    number, percent = int(match.group(1)), match.group(2)
    if percent:
        count = int(optional * abs(number) / 100)
        value = count if number >= 0 else optional - count
    else:
        value = number if number >= 0 else optional + number
    return max(0, min(optional, value))


def fuzzy_distance(fuzziness: str | int | None, term: str) -> int:
    """Edit distance for one term: AUTO (and AUTO:low,high) as Elasticsearch computes it."""
    if fuzziness is None:
        return 0
    text = str(fuzziness).upper()
    if text.startswith("AUTO"):
        low, high = 3, 6
        if ":" in text:
            try:
                low, high = (int(x) for x in text[5:].split(","))
            except ValueError:
                raise RequestError(f"failed to parse [fuzziness] value [{fuzziness}]") from None
        length = len(term)
        return 0 if length < low else 1 if length < high else 2
    try:
        distance = float(text)
    except ValueError:
        raise RequestError(f"failed to parse [fuzziness] value [{fuzziness}]") from None
    if distance != int(distance) or not 0 <= distance:
        raise RequestError(f"failed to parse [fuzziness] value [{fuzziness}]")
    return min(int(distance), MAX_FUZZY_DISTANCE)


_RUST_META = set("\\.+*?()|[]{}^$#&-~")


def rust_escape(text: str) -> str:
    return "".join("\\" + c if c in _RUST_META else c for c in text)


def wildcard_to_regex(pattern: str) -> str:
    out = []
    escaped = False
    for char in pattern:
        if escaped:
            out.append(rust_escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        else:
            out.append(rust_escape(char))
    if escaped:
        out.append("\\\\")
    return "".join(out)


def lucene_regex_to_rust(pattern: str, flags: str) -> str:
    """Lucene's regular expression syntax (what Elasticsearch's regexp query takes) → Rust regex.

    Supported: literals, `.`, `?`, `+`, `*`, `{n,m}`, `|`, groups, character classes, `"quoted"`
    strings, `\\` escapes (always literal, as in Lucene), and the optional operators `@` (any
    string), `#` (empty language) and `<n-m>` (numeric interval). Complement `~` and intersection
    `&` cannot be expressed for tantivy's automaton and are refused.
    """
    enabled = {f.strip().upper() for f in (flags or "ALL").split("|") if f.strip()}
    allow = (lambda name: "ALL" in enabled or name in enabled) if "NONE" not in enabled else (lambda name: False)
    out: list[str] = []
    i = 0
    in_class = False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            if i + 1 < len(pattern):
                out.append(rust_escape(pattern[i + 1]) if not in_class else _class_escape(pattern[i + 1]))
                i += 2
                continue
            raise QueryShardError("invalid regular expression: trailing backslash")
        if in_class:
            if char == "]":
                in_class = False
            out.append(char if char not in "[&~" else "\\" + char)
            i += 1
            continue
        if char == "[":
            in_class = True
            out.append(char)
            if i + 1 < len(pattern) and pattern[i + 1] == "^":
                out.append("^")
                i += 1
        elif char == '"':
            end = pattern.find('"', i + 1)
            if end < 0:
                raise QueryShardError("invalid regular expression: unterminated quoted string")
            out.append(rust_escape(pattern[i + 1:end]))
            i = end + 1
            continue
        elif char == "@" and allow("ANYSTRING"):
            out.append(".*")
        elif char == "#" and allow("EMPTY"):
            out.append("[^\\s\\S]")
        elif char == "<" and allow("INTERVAL"):
            end = pattern.find(">", i)
            match = re.fullmatch(r"<(\d+)-(\d+)>", pattern[i:end + 1]) if end > 0 else None
            if not match:
                raise QueryShardError("invalid regular expression: malformed interval")
            low, high = int(match.group(1)), int(match.group(2))
            if high - low > 1000:
                raise QueryShardError("invalid regular expression: interval too wide")
            out.append("(?:" + "|".join(str(n) for n in range(low, high + 1)) + ")")
            i = end + 1
            continue
        elif char in "~&" and (allow("COMPLEMENT") if char == "~" else allow("INTERSECTION")):
            raise QueryShardError(f"[regexp] operator [{char}] (complement/intersection) is not supported")
        elif char in "#@<>~&^$":
            out.append(rust_escape(char))
        else:
            out.append(char)
        i += 1
    if in_class:
        raise QueryShardError("invalid regular expression: unterminated character class")
    return "(?s)" + "".join(out)


def _class_escape(char: str) -> str:
    return "\\" + char if char in "\\]^-[&~" else char


def _zone(name: str | None) -> dt.tzinfo | None:
    if name is None:
        return None
    match = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", name)
    if match:
        sign = 1 if match.group(1) == "+" else -1
        return dt.timezone(sign * dt.timedelta(hours=int(match.group(2)), minutes=int(match.group(3))))
    if name in ("Z", "UTC", "utc"):
        return dt.timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a tzdata directory, an overlong name
        raise RequestError(f"Unknown time-zone ID: {name}") from None


# Compiler.postings answers only for small queries (it runs before the search decides where to run):
# beyond these sizes it says "cannot tell", and the search goes to a worker thread.
POSTINGS_MAX_PARTS = 64  # terms of one text, values of a terms query, clauses of a bool
POSTINGS_MAX_TEXT = 1024  # characters of a match text
TERM_SET_AS_TERMS = 64  # values of a terms query compiled as a union of term queries (bench/engine_terms.py)
FREQS_KEPT = 65_536  # document frequencies kept per shard searcher for the estimate (then cleared)


# -- compiler -------------------------------------------------------------------------------
@dataclass
class Compiler:
    """Compiles plan nodes for one shard's schema, resolving field paths through the mapping."""

    schema: tantivy.Schema
    mapping: Mapping
    slots: dict[str, Any]  # path -> Slot
    searcher: tantivy.Searcher | None = None
    now_millis: int = field(default_factory=lambda: int(time.time() * 1000))
    max_regex_length: int = MAX_REGEX_LENGTH
    max_terms_count: int = 65_536
    freqs: dict[tuple[str, Any], int] | None = None  # the shard's memo of `searcher`'s document frequencies

    def compile(self, node: Node) -> tantivy.Query:
        if isinstance(node, Named):
            return self.compile(node.query)
        query = self._compile(node)
        if isinstance(node, CONSTANT_SCORE_NODES) or (isinstance(node, Term) and self._is_point(node.field)):
            query = tantivy.Query.const_score_query(query, 1.0)  # As Elasticsearch scores these: the boost.
        boost = getattr(node, "boost", 1.0)
        if boost != 1.0 and not isinstance(node, (Bool, ConstantScore, DisMax, Boosting, MultiMatch)):
            query = tantivy.Query.boost_query(query, boost)
        return query

    def postings(self, node: Node) -> int | None:
        """About how many postings `node` reads on this shard (document frequencies from the searcher:
        a union reads all of its parts, an intersection leads with its rarest part and seeks the others),
        or None when its cost does not follow postings (ranges, patterns, fuzzy queries, a query with only
        negative parts) or cannot be told; match_all counts every document. A scheduling hint only:
        nothing is refused on it."""
        try:
            return self._postings(node)
        except Exception:  # noqa: BLE001 - a hint: whatever fails here is reported when the query compiles
            return None

    def _postings(self, node: Node) -> int | None:
        searcher = self.searcher
        if searcher is None:
            return None
        match node:
            case Named(query=inner) | ConstantScore(filter=inner):
                return self._postings(inner)
            case MatchNone():
                return 0
            case MatchAll():
                return searcher.num_docs
            case Ids(values=values):
                return len(values)
            case Term(field=path, value=value) if not node.case_insensitive:
                return self._doc_freqs(searcher, path, [value])
            case Terms(field=path, values=values) if len(values) <= POSTINGS_MAX_PARTS:
                return self._doc_freqs(searcher, path, values)
            case Match() | MatchPhrase() if "*" not in node.field and getattr(node, "fuzziness", None) is None \
                    and len(_text(node.query)) <= POSTINGS_MAX_TEXT:
                resolved = self._field(node.field)
                if resolved is None:
                    return 0
                field_type, slot = resolved
                if slot.kind != "text":
                    return self._postings(Term(node.field, node.query))
                terms = self._terms_of(field_type, slot, node.query, node.analyzer)
                if len(terms) > POSTINGS_MAX_PARTS:
                    return None
                counts = [self._doc_freq(searcher, slot.name, t) for t in terms]
                if not counts:
                    return None  # zero_terms_query may ask for everything
                if isinstance(node, MatchPhrase) or node.operator.lower() == "and":
                    return min(counts) * len(counts)
                return sum(counts)
            case Bool() if len(node.must) + len(node.filter) + len(node.should) + len(node.must_not) \
                    <= POSTINGS_MAX_PARTS:
                required = [self._postings(n) for n in (*node.must, *node.filter)]
                optional = [self._postings(n) for n in node.should]
                excluded = [self._postings(n) for n in node.must_not]
                if any(c is None for c in (*required, *optional, *excluded)):
                    return None
                if not required:
                    return sum(optional) if optional else None  # type: ignore[arg-type]
                lead = min(required)  # type: ignore[type-var]
                return lead * (len(required) + len(optional) + len(excluded))
            case DisMax(queries=queries) if len(queries) <= POSTINGS_MAX_PARTS:
                counts = [self._postings(n) for n in queries]
                return None if any(c is None for c in counts) else sum(counts)  # type: ignore[misc]
        return None

    def _doc_freq(self, searcher: tantivy.Searcher, field_name: str, term: Any) -> int:
        memo = self.freqs
        if memo is None:
            return searcher.doc_freq(field_name, term)
        key = (field_name, term)
        count = memo.get(key)
        if count is None:
            if len(memo) >= FREQS_KEPT:
                memo.clear()
            count = memo[key] = searcher.doc_freq(field_name, term)
        return count

    def _doc_freqs(self, searcher: tantivy.Searcher, path: str, values: Sequence[Any]) -> int | None:
        """Postings of exact values as indexed (ids, blind tokens, keywords); None for other kinds."""
        if path == "_id":
            return sum(self._doc_freq(searcher, "_id", _text(v)) for v in values)
        resolved = self._field(path)
        if resolved is None:
            return 0
        field_type, slot = resolved
        if field_type.protect == "blind":
            return sum(self._doc_freq(searcher, slot.name, _text(v)) for v in values)
        if slot.kind != "keyword":
            return None
        terms = (self._value(field_type, v) for v in values)
        return sum(self._doc_freq(searcher, slot.name, t) for t in terms if t is not None)

    def _compile(self, node: Node) -> tantivy.Query:
        match node:
            case MatchAll():
                return tantivy.Query.all_query()
            case MatchNone():
                return tantivy.Query.empty_query()
            case Ids(values=values):
                values = tuple(v for v in values if v)
                if not values:
                    return tantivy.Query.empty_query()
                return self._term_set("_id", list(values))
            case Term():
                return self._term(node)
            case Terms(field=path, values=values):
                return self._terms(path, values)
            case Exists(field=path):
                return self._exists(path)
            case Range():
                return self._range(node)
            case ConstantScore(filter=inner, boost=boost):
                return tantivy.Query.const_score_query(self.compile(inner), boost)
            case Bool():
                return self._bool(node)
            case DisMax(queries=queries, tie_breaker=tie, boost=boost):
                if not queries:
                    return tantivy.Query.empty_query()
                query = tantivy.Query.disjunction_max_query([self.compile(q) for q in queries], tie)
                return tantivy.Query.boost_query(query, boost) if boost != 1.0 else query
            case Boosting():
                return self._boosting(node)
            case Match():
                return self._match(node)
            case MatchPhrase():
                return self._phrase(node.field, node.query, node.slop, node.analyzer, node.zero_terms_query)
            case MatchPhrasePrefix():
                return self._phrase_prefix(node)
            case MatchBoolPrefix():
                return self._bool_prefix(node)
            case MultiMatch():
                return self._multi_match(node)
            case Prefix() | Wildcard() | Regexp() | Fuzzy() if node.normalize and "*" in node.field:
                return self._each_field(node)
            case Prefix():
                value = self._normalized(node.field, node.value, node.normalize)
                return self._pattern(node.field, rust_escape(value) + ".*", node.case_insensitive, "prefix")
            case Wildcard():
                value = self._normalized(node.field, node.value, node.normalize)
                return self._pattern(node.field, wildcard_to_regex(value), node.case_insensitive, "wildcard")
            case Regexp():
                if len(node.value) > self.max_regex_length:
                    raise QueryShardError(f"The length of regex [{len(node.value)}] used in the Regexp Query request "
                                          f"has exceeded the allowed maximum of [{self.max_regex_length}]. This "
                                          "maximum can be set by changing the [index.max_regex_length] index level "
                                          "setting.")
                value = self._normalized(node.field, node.value, node.normalize)
                return self._pattern(node.field, lucene_regex_to_rust(value, node.flags), node.case_insensitive,
                                     "regexp", raw=True)
            case Fuzzy():
                if node.normalize:
                    node = replace(node, value=self._normalized(node.field, _text(node.value), True))
                return self._fuzzy(node)
        raise AssertionError(f"unknown plan node {node!r}")

    def _normalized(self, path: str, value: str, normalize: bool) -> str:
        slot = self.slots.get(path)
        return value.lower() if normalize and slot is not None and slot.kind == "text" else value

    def _each_field(self, node: Node) -> tantivy.Query:
        """A term-level query from query_string over a field pattern: one query per matching field."""
        paths = [p for p in self.expand(node.field) if self.slots[p].kind in ("text", "keyword")]  # type: ignore
        queries = [self.compile(replace(node, field=path)) for path in paths]  # type: ignore[type-var]
        if not queries:
            return tantivy.Query.empty_query()
        return queries[0] if len(queries) == 1 else tantivy.Query.disjunction_max_query(queries, 0.0)

    def _is_point(self, path: str) -> bool:
        slot = self.slots.get(path)
        return slot is not None and slot.kind in ("i64", "f64", "bool", "ip")

    # -- fields ------------------------------------------------------------------------------
    def _field(self, path: str) -> tuple[FieldType, Any] | None:
        field_type = self.mapping.fields.get(path)
        slot = self.slots.get(path)
        if field_type is None or slot is None:
            return None
        return field_type, slot

    def expand(self, pattern: str) -> list[str]:
        return expand_slots(self.slots, pattern)

    def _value(self, field_type: FieldType, value: Any, what: str = "term") -> Any:
        if isinstance(value, (dict, list)):
            raise RequestError(f"[{what}] query does not support a structured value on field [{field_type.path}]")
        if field_type.type == "text":
            return _text(value)
        if field_type.type == "date" and isinstance(value, str):
            return self._date(field_type, value, None, None, round_up=False)
        try:
            converted = field_type._convert(value)
        except (ValueError, TypeError, OverflowError, DateParseError) as exc:
            raise QueryShardError(f"failed to create query: For input string: \"{_text(value)}\" on field "
                                  f"[{field_type.path}] of type [{field_type.type}]") from exc
        return converted

    def _date(self, field_type: FieldType, value: Any, fmt: str | None, zone: str | None, *, round_up: bool) -> int:
        try:
            date_format = DateFormat.compile(fmt) if fmt else field_type.date_format
        except DateFormatError as exc:
            raise RequestError(f"failed to parse date format [{fmt}]: {exc}") from None
        assert date_format is not None
        try:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return date_format.parse(value, tz=_zone(zone))
            return parse_date_math(str(value), now_millis=self.now_millis, fmt=date_format, round_up=round_up,
                                   tz=_zone(zone))
        except ValueError as exc:
            raise QueryShardError(f"failed to parse date field [{value}] with format "
                                  f"[{date_format.spec}]: [{exc}]") from None

    def _term(self, node: Term) -> tantivy.Query:
        path, value = node.field, node.value
        if path == "_id":
            text = _text(value)
            return tantivy.Query.term_query(self.schema, "_id", text) if text else tantivy.Query.empty_query()
        if path == "_index" or path == "_field_names":
            raise QueryShardError(f"term queries on [{path}] are not supported")
        resolved = self._field(path)
        if resolved is None:
            return tantivy.Query.empty_query()
        field_type, slot = resolved
        if field_type.protect == "blind":  # a token, made above the engine
            return tantivy.Query.term_query(self.schema, slot.name, _text(value))
        if node.case_insensitive and slot.kind in ("keyword", "text"):
            return tantivy.Query.regex_query(self.schema, slot.name, "(?i)" + rust_escape(_text(value)))
        if slot.kind == "ip" and isinstance(value, str) and "/" in value:
            try:
                network = ipaddress.ip_network(value.strip(), strict=False)
            except ValueError:
                raise QueryShardError(f"failed to create query: [{value}] is not a valid CIDR for field "
                                      f"[{path}]") from None
            return tantivy.Query.range_query(self.schema, slot.name, tantivy.FieldType.IpAddr,
                                             str(network.network_address), str(network.broadcast_address))
        if field_type.type in ("date", "date_nanos") and isinstance(value, str):
            # Elasticsearch's date termQuery is a range from the value rounded down to the value rounded up:
            # "2023-01-01" matches the whole day.
            return self._range(Range(path, gte=value, lte=value))
        if _fractional_for_integer(field_type, value):
            return tantivy.Query.empty_query()  # a long never equals 18.5 (Elasticsearch: match_none)
        converted = self._value(field_type, value)
        if converted is None:  # keyword longer than ignore_above: it was never indexed.
            return tantivy.Query.empty_query()
        return tantivy.Query.term_query(self.schema, slot.name, converted)

    def _terms(self, path: str, values: tuple[Any, ...]) -> tantivy.Query:
        if len(values) > self.max_terms_count:
            raise QueryShardError(f"The number of terms [{len(values)}] used in the Terms Query request has exceeded "
                                  f"the allowed maximum of [{self.max_terms_count}]. This maximum can be set by "
                                  "changing the [index.max_terms_count] index level setting.")
        if path == "_id":
            return self._compile(Ids(tuple(_text(v) for v in values)))
        resolved = self._field(path)
        if resolved is None or not values:
            return tantivy.Query.empty_query()
        field_type, slot = resolved
        if field_type.protect == "blind":
            return self._term_set(slot.name, [_text(v) for v in values])
        if field_type.type in ("date", "date_nanos") and any(isinstance(v, str) for v in values):
            spans = [self._term(Term(path, v)) for v in values]
            return tantivy.Query.boolean_query([(Occur.Should, q) for q in spans])
        converted = [c for c in (self._value(field_type, v, "terms") for v in values
                                 if not _fractional_for_integer(field_type, v)) if c is not None]
        if not converted:
            return tantivy.Query.empty_query()
        return self._term_set(slot.name, converted)

    def _term_set(self, field_name: str, values: list[Any]) -> tantivy.Query:
        """Documents with any of `values`. Up to TERM_SET_AS_TERMS values, a union of term queries, which an
        intersection drives and skips through; more, tantivy's term set, which reads every posting of every
        value into a bit set of the segment first. Measured at 1M (bench/engine_terms.py): the union is
        faster up to 256 values inside an intersection and up to 64 alone; the term set from 96 alone."""
        if len(values) == 1:
            return tantivy.Query.term_query(self.schema, field_name, values[0])
        if len(values) <= TERM_SET_AS_TERMS:
            return tantivy.Query.boolean_query([(Occur.Should, tantivy.Query.term_query(self.schema, field_name, v))
                                                for v in values])
        return tantivy.Query.term_set_query(self.schema, field_name, values)

    def _exists(self, path: str) -> tantivy.Query:
        if path in ("_id", "_index", "_seq_no", "_version", "_primary_term"):
            return tantivy.Query.all_query()
        if path == "_routing":
            return tantivy.Query.term_query(self.schema, "_field_names", "_routing")
        if path in ("_source", "_field_names", "_ignored", "_doc_count", "_tier"):
            raise QueryShardError(f"field [{path}] of type [{path}] does not support exists queries")
        paths = self.expand(path) if "*" in path else [path]
        queries = [tantivy.Query.term_query(self.schema, "_field_names", p) for p in paths]
        if not queries:
            return tantivy.Query.empty_query()
        return queries[0] if len(queries) == 1 else tantivy.Query.boolean_query([(Occur.Should, q) for q in queries])

    def _range(self, node: Range) -> tantivy.Query:
        resolved = self._field(node.field)
        if resolved is None:
            return tantivy.Query.empty_query()
        field_type, slot = resolved
        lower, include_lower = (node.gte, True) if node.gte is not None else (node.gt, False)
        upper, include_upper = (node.lte, True) if node.lte is not None else (node.lt, False)
        if lower is None and upper is None:
            return self._exists(node.field)
        if slot.kind in ("keyword", "text"):
            return self._string_range(slot, lower, include_lower, upper, include_upper)
        if slot.kind == "ip":
            low_ip = self._value(field_type, lower) if lower is not None else None
            high_ip = self._value(field_type, upper) if upper is not None else None
            return tantivy.Query.range_query(self.schema, slot.name, tantivy.FieldType.IpAddr, low_ip, high_ip,
                                             include_lower or low_ip is None, include_upper or high_ip is None)
        if field_type.type == "date":
            low = self._date(field_type, lower, node.format, node.time_zone, round_up=not include_lower) \
                if lower is not None else None
            high = self._date(field_type, upper, node.format, node.time_zone, round_up=include_upper) \
                if upper is not None else None
            kind = tantivy.FieldType.Integer
        elif slot.kind == "bool":
            low = self._value(field_type, lower) if lower is not None else None
            high = self._value(field_type, upper) if upper is not None else None
            low = None if low is None else int(low)
            high = None if high is None else int(high)
            return self._bool_range(slot, low, include_lower, high, include_upper)
        elif field_type.type in INTEGER_RANGES:
            low, include_lower = _integer_bound(self._number(field_type, lower), include_lower, lower=True)
            high, include_upper = _integer_bound(self._number(field_type, upper), include_upper, lower=False)
            kind = tantivy.FieldType.Integer
        else:
            low = self._number(field_type, lower)
            high = self._number(field_type, upper)
            kind = tantivy.FieldType.Float
        if low is not None and high is not None and (low > high or (low == high and not (include_lower and
                                                                                            include_upper))):
            return tantivy.Query.empty_query()
        return tantivy.Query.range_query(self.schema, slot.name, kind, low, high,
                                         include_lower or low is None, include_upper or high is None)

    def _number(self, field_type: FieldType, value: Any) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or isinstance(value, (dict, list)):
            raise QueryShardError(f"failed to create query: [{value}] is not a number for field [{field_type.path}]")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise QueryShardError(f"failed to create query: For input string: \"{value}\"") from None
        if math.isnan(number):
            raise QueryShardError("failed to create query: NaN is not a valid range bound")
        return number

    def _bool_range(self, slot: Any, low: int | None, include_low: bool, high: int | None, include_high: bool
                    ) -> tantivy.Query:
        values = [v for v in (0, 1) if (low is None or v > low or (v == low and include_low))
                  and (high is None or v < high or (v == high and include_high))]
        if not values:
            return tantivy.Query.empty_query()
        return tantivy.Query.term_set_query(self.schema, slot.name, [bool(v) for v in values])

    def _string_range(self, slot: Any, low: Any, include_low: bool, high: Any, include_high: bool
                      ) -> tantivy.Query:
        if self.searcher is None:
            raise QueryShardError("range queries on strings need a searcher")
        low_text = None if low is None else _text(low)
        high_text = None if high is None else _text(high)
        matched = []
        for term, _count in self.searcher.terms_with_prefix(slot.name, ""):
            if low_text is not None and (term < low_text or (term == low_text and not include_low)):
                continue
            if high_text is not None and (term > high_text or (term == high_text and not include_high)):
                continue
            matched.append(term)
            if len(matched) > MAX_TERMS_EXPANSION:
                raise QueryShardError(f"[range] query on field [{slot.name}] would match more than "
                                      f"[{MAX_TERMS_EXPANSION}] terms")
        if not matched:
            return tantivy.Query.empty_query()
        return tantivy.Query.term_set_query(self.schema, slot.name, matched)

    def _bool(self, node: Bool) -> tantivy.Query:
        clauses: list[tuple[tantivy.Occur, tantivy.Query]] = []
        clauses += [(Occur.Must, self.compile(n)) for n in node.must]
        clauses += [(Occur.Must, tantivy.Query.const_score_query(self.compile(n), 0.0)) for n in node.filter]
        clauses += [(Occur.MustNot, self.compile(n)) for n in node.must_not]
        should = [(Occur.Should, self.compile(n)) for n in node.should]
        if node.minimum_should_match is None:
            msm = 0 if (node.must or node.filter) else (1 if should else 0)
        else:
            msm = resolve_minimum_should_match(node.minimum_should_match, len(should))
        if should and msm > len(should):
            return tantivy.Query.empty_query()
        if not clauses and not should:
            query = tantivy.Query.all_query()
        elif should and msm > 0:
            query = tantivy.Query.boolean_query(clauses + should, msm)
        else:
            query = tantivy.Query.boolean_query(clauses + should)
        if not node.must and not node.should and not node.filter and node.must_not:
            # Only exclusions: Elasticsearch matches everything else.
            query = tantivy.Query.boolean_query([(Occur.Must, tantivy.Query.all_query())] + clauses)
        if node.boost != 1.0:
            query = tantivy.Query.boost_query(query, node.boost)
        return query

    def _boosting(self, node: Boosting) -> tantivy.Query:
        positive = self.compile(node.positive)
        negative = self.compile(node.negative)
        clean = tantivy.Query.boolean_query([(Occur.Must, positive), (Occur.MustNot, negative)])
        demoted = tantivy.Query.boost_query(
            tantivy.Query.boolean_query([(Occur.Must, positive), (Occur.Must, tantivy.Query.const_score_query(
                negative, 0.0))]), node.negative_boost)
        query = tantivy.Query.boolean_query([(Occur.Should, clean), (Occur.Should, demoted)])
        return tantivy.Query.boost_query(query, node.boost) if node.boost != 1.0 else query

    # -- full text ---------------------------------------------------------------------------
    def _terms_of(self, field_type: FieldType, slot: Any, text: Any, analyzer_name: str | None) -> list[str]:
        if slot.kind == "text":
            name = analyzer_name or field_type.params.get("search_analyzer") or field_type.params.get("analyzer") \
                or slot.analyzer
            if name not in analysis.ANALYZERS:
                raise QueryShardError(f"[match] analyzer [{name}] not found")
            return analysis.analyzer(name).terms(_text(text))
        return [text]

    def _match(self, node: Match) -> tantivy.Query:
        if "*" in node.field:
            return self._multi_match(match_over_pattern(node))
        resolved = self._field(node.field)
        if resolved is None:
            return tantivy.Query.empty_query()
        field_type, slot = resolved
        if slot.kind != "text":
            try:
                if node.fuzziness is not None and slot.kind == "keyword":
                    return self._fuzzy(Fuzzy(node.field, node.query, node.fuzziness, node.prefix_length,
                                             node.max_expansions, node.transpositions))
                return self.compile(Term(node.field, node.query))
            except RequestError:
                if node.lenient:
                    return tantivy.Query.empty_query()
                raise
        terms = self._terms_of(field_type, slot, node.query, node.analyzer)
        if not terms:
            return tantivy.Query.all_query() if node.zero_terms_query == "all" else tantivy.Query.empty_query()
        queries = [self._term_or_fuzzy(slot, term, node.fuzziness, node.prefix_length, node.transpositions)
                   for term in terms]
        if len(queries) == 1:
            return queries[0]
        if node.operator.lower() == "and":
            return tantivy.Query.boolean_query([(Occur.Must, q) for q in queries])
        msm = resolve_minimum_should_match(node.minimum_should_match, len(queries)) \
            if node.minimum_should_match is not None else 1
        return tantivy.Query.boolean_query([(Occur.Should, q) for q in queries], max(msm, 1))

    def _term_or_fuzzy(self, slot: Any, term: str, fuzziness: str | int | None, prefix_length: int,
                       transpositions: bool) -> tantivy.Query:
        distance = fuzzy_distance(fuzziness, term) if fuzziness is not None else 0
        if distance == 0:
            return tantivy.Query.term_query(self.schema, slot.name, term)
        query = tantivy.Query.fuzzy_term_query(self.schema, slot.name, term, distance, transpositions)
        if prefix_length > 0:  # The first characters must match exactly.
            prefix = tantivy.Query.regex_query(self.schema, slot.name, rust_escape(term[:prefix_length]) + ".*")
            query = tantivy.Query.boolean_query([(Occur.Must, query), (Occur.Must,
                                                                        tantivy.Query.const_score_query(prefix, 0.0))])
        return query

    def _phrase(self, path: str, text: Any, slop: int, analyzer_name: str | None, zero_terms: str) -> tantivy.Query:
        resolved = self._field(path)
        if resolved is None:
            return tantivy.Query.empty_query()
        field_type, slot = resolved
        if slot.kind != "text":
            return self.compile(Term(path, text))
        terms = self._terms_of(field_type, slot, text, analyzer_name)
        if not terms:
            return tantivy.Query.all_query() if zero_terms == "all" else tantivy.Query.empty_query()
        if len(terms) == 1:
            return tantivy.Query.term_query(self.schema, slot.name, terms[0])
        return tantivy.Query.phrase_query(self.schema, slot.name, [(i, t) for i, t in enumerate(terms)], slop)

    def _phrase_prefix(self, node: MatchPhrasePrefix) -> tantivy.Query:
        resolved = self._field(node.field)
        if resolved is None:
            return tantivy.Query.empty_query()
        field_type, slot = resolved
        if slot.kind != "text":
            return self._pattern(node.field, rust_escape(_text(node.query)) + ".*", False, "match_phrase_prefix")
        terms = self._terms_of(field_type, slot, node.query, node.analyzer)
        if not terms:
            return tantivy.Query.empty_query()
        if len(terms) == 1:
            return tantivy.Query.regex_query(self.schema, slot.name, rust_escape(terms[0]) + ".*")
        return tantivy.Query.phrase_prefix_query(self.schema, slot.name, [(i, t) for i, t in enumerate(terms)])

    def _bool_prefix(self, node: MatchBoolPrefix) -> tantivy.Query:
        """Every term but the last as in `match`; the last one as a prefix."""
        resolved = self._field(node.field)
        if resolved is None:
            return tantivy.Query.empty_query()
        field_type, slot = resolved
        if slot.kind not in ("text", "keyword"):
            return self.compile(Term(node.field, node.query))
        terms = self._terms_of(field_type, slot, node.query, node.analyzer)
        if not terms:
            return tantivy.Query.empty_query()
        queries = [self._term_or_fuzzy(slot, term, node.fuzziness, node.prefix_length, node.transpositions)
                   for term in terms[:-1]]
        queries.append(tantivy.Query.regex_query(self.schema, slot.name, rust_escape(_text(terms[-1])) + ".*"))
        if len(queries) == 1:
            return queries[0]
        if node.operator.lower() == "and":
            return tantivy.Query.boolean_query([(Occur.Must, q) for q in queries])
        msm = resolve_minimum_should_match(node.minimum_should_match, len(queries)) \
            if node.minimum_should_match is not None else 1
        return tantivy.Query.boolean_query([(Occur.Should, q) for q in queries], max(msm, 1))

    def _multi_match(self, node: MultiMatch) -> tantivy.Query:
        fields: list[tuple[str, float]] = []
        for pattern, boost in node.fields or (("*", 1.0),):
            fields += [(path, boost) for path in self.expand(pattern)]
        lenient = node.lenient or any("*" in p for p, _ in node.fields or (("*", 1.0),))
        queries = []
        for path, boost in fields:
            kind = node.type
            if kind in ("phrase",):
                sub: Node = MatchPhrase(path, node.query, node.slop, node.analyzer, node.zero_terms_query, boost)
            elif kind == "phrase_prefix":
                sub = MatchPhrasePrefix(path, node.query, node.slop, node.max_expansions, node.analyzer, boost)
            elif kind == "bool_prefix":
                sub = MatchBoolPrefix(path, node.query, node.operator, node.minimum_should_match, node.fuzziness,
                                      node.prefix_length, node.max_expansions, node.transpositions, node.analyzer,
                                      boost)
            else:
                sub = Match(path, node.query, node.operator, node.minimum_should_match, node.fuzziness,
                            node.prefix_length, node.max_expansions, node.transpositions, node.analyzer,
                            node.zero_terms_query, lenient, boost)
            try:
                queries.append(self.compile(sub))
            except RequestError:
                if not lenient:
                    raise
        if not queries:
            return tantivy.Query.empty_query()
        if node.type in ("most_fields", "bool_prefix"):
            query = tantivy.Query.boolean_query([(Occur.Should, q) for q in queries])
        else:
            tie = node.tie_breaker if node.tie_breaker is not None else (1.0 if node.type == "cross_fields" else 0.0)
            query = tantivy.Query.disjunction_max_query(queries, tie) if len(queries) > 1 else queries[0]
        return tantivy.Query.boost_query(query, node.boost) if node.boost != 1.0 else query

    def _pattern(self, path: str, regex: str, case_insensitive: bool, kind: str, *, raw: bool = False
                 ) -> tantivy.Query:
        resolved = self._field(path)
        if path == "_id":
            return tantivy.Query.regex_query(self.schema, "_id", ("(?i)" if case_insensitive else "") + regex)
        if resolved is None:
            return tantivy.Query.empty_query()
        field_type, slot = resolved
        if slot.kind not in ("text", "keyword"):
            raise QueryShardError(f"Can only use {kind} queries on keyword and text fields - not on "
                                  f"[{path}] which is of type [{field_type.type}]")
        if case_insensitive:
            regex = "(?i)" + regex
        try:
            return tantivy.Query.regex_query(self.schema, slot.name, regex)
        except ValueError as exc:
            raise QueryShardError(f"failed to create query: invalid or too complex pattern for [{kind}] query on "
                                  f"field [{path}]") from exc

    def _fuzzy(self, node: Fuzzy) -> tantivy.Query:
        resolved = self._field(node.field)
        if resolved is None:
            return tantivy.Query.empty_query()
        field_type, slot = resolved
        if slot.kind not in ("text", "keyword"):
            return self.compile(Term(node.field, node.value))
        return self._term_or_fuzzy(slot, _text(node.value), node.fuzziness, node.prefix_length, node.transpositions)


_INTEGER_TYPES = frozenset({"long", "integer", "short", "byte", "unsigned_long"})


def _fractional_for_integer(field_type: FieldType, value: Any) -> bool:
    """A term with a decimal part on an integer field: it can never match."""
    if field_type.type not in _INTEGER_TYPES or isinstance(value, bool):
        return False
    try:
        number = float(value) if isinstance(value, (int, float, str)) else None
    except ValueError:
        return False
    return number is not None and math.isfinite(number) and not number.is_integer()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return repr(value)
    return str(value)


def _integer_bound(value: float | None, inclusive: bool, *, lower: bool) -> tuple[int | None, bool]:
    """The inclusive integer bound equivalent to a possibly fractional one (gt 1.5 → gte 2, lt 2 → lte 1)."""
    if value is None or math.isinf(value):
        if value is not None and ((lower and value > 0) or (not lower and value < 0)):
            return (2**63 - 1 if lower else -(2**63)), True  # Nothing can be above +inf or below -inf.
        return None, True
    if lower:
        bound = math.ceil(value) if inclusive else math.floor(value) + 1
    else:
        bound = math.floor(value) if inclusive else math.ceil(value) - 1
    return max(-(2**63), min(2**63 - 1, int(bound))), True
