"""Query shapes: what a search asked for, without the values it asked about.

`describe` turns the raw JSON of a request's `query` (the value of the body's `query` key, as
received, valid or not) into a `Shape`:

* `sanitized`: the same tree with every literal the caller searched for replaced by
  ``"h:" + hasher(field, str(value))``; field names and parameters stay readable. Fit for audit
  records and logs.
* `fingerprint`: SHA-256 of the tree with each literal replaced by a placeholder of its kind, so a
  client that walks values (110101, 110102, …) keeps one fingerprint.
* `literals`: the hashed literals with their field, kind and plaintext length (for `dumps.py`).
* `fields`: every field the query names.

Leaks: field names, query structure, parameters, and each literal's length. Under one key equal
literals give equal hashes, so a reader learns which queries asked for the same value, never the
value. Parameter values that do not look like parameters (a national ID smuggled into `_name`,
text in `boost`) are hashed too. `describe` never raises on odd input; what it does not recognise
is hashed, scalar by scalar.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from ..query.querystring import query_string_to_dsl, simple_query_string_to_dsl

Hasher = Callable[[str, str], str]

KINDS = frozenset({"term", "terms", "match", "phrase", "prefix", "wildcard", "regexp", "fuzzy", "range",
                   "ids", "query_string", "other"})
MAX_DEPTH = 64  # Containers deeper than this become "<truncated>" (nothing of them is kept).
MAX_NODES = 100_000  # Same, once this many values have been visited.
MAX_LITERALS = 4_096  # Literals beyond this are still hashed in `sanitized`, but not listed.
TRUNCATED = "<truncated>"
UNKNOWN_FIELD = "*"

# Parameter keys, by what a readable value looks like. Values that do not fit are hashed.
_NUMERIC_PARAMS = frozenset({
    "boost", "slop", "phrase_slop", "prefix_length", "max_expansions", "tie_breaker", "negative_boost",
    "fuzzy_max_expansions", "fuzzy_prefix_length", "max_determinized_states", "cutoff_frequency",
    "min_term_freq", "max_query_terms", "min_doc_freq", "max_doc_freq", "min_word_length", "max_word_length",
    "weight", "max_boost",
    "min_score", "factor", "boost_terms", "minimum_should_match",
})
_BOOLEAN_PARAMS = frozenset({
    "case_insensitive", "transpositions", "fuzzy_transpositions", "lenient", "include_lower", "include_upper",
    "allow_leading_wildcard", "analyze_wildcard", "auto_generate_synonyms_phrase_query",
    "enable_position_increments",
    "escape", "adjust_pure_negative", "ignore_unmapped", "include", "fail_on_unsupported_field",
})
_WORD_PARAMS = frozenset({
    "operator", "default_operator", "zero_terms_query", "relation", "type", "score_mode", "boost_mode",
    "rewrite",
    "fuzzy_rewrite", "modifier", "flags", "distance_type", "validation_method", "parent_type",
})
_TEXT_PARAMS = frozenset({
    "_name", "analyzer", "quote_analyzer", "search_analyzer", "format", "time_zone", "fuzziness",
    "quote_field_suffix", "minimum_should_match",
})
PARAM_KEYS = _NUMERIC_PARAMS | _BOOLEAN_PARAMS | _WORD_PARAMS | _TEXT_PARAMS
FIELD_KEYS = frozenset({"field", "fields", "default_field", "path"})  # Values are field names.

_NUMBER_TEXT = re.compile(r"[-+]?\d{0,5}(\.\d{1,6})?%?")
_WORD = re.compile(r"[A-Za-z_|]{1,64}")
_SAFE_TEXT = re.compile(r"[A-Za-z0-9_.:/|+\-%<>, ']{0,64}")
_DIGIT_RUN = re.compile(r"\d{5}")


@dataclass(frozen=True)
class Literal:
    """One literal of a query: its field, kind, keyed hash and plaintext length (never the value)."""
    field: str
    kind: str
    hashed: str
    length: int


@dataclass(frozen=True)
class Shape:
    sanitized: Any
    fingerprint: str
    literals: tuple[Literal, ...]
    fields: frozenset[str]
    truncated: bool = False  # Part of the query was too deep or too large to describe.


def describe(query: Any, hasher: Hasher) -> Shape:
    """Describes the value of a request's `query` key. Never raises on odd input (only `hasher` can)."""
    walker = _Walker(hasher)
    sanitized, canonical = walker.query(query, 0)
    try:
        text = orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS, default=_text)
    except (TypeError, orjson.JSONEncodeError):  # an integer beyond 64 bits, a lone surrogate
        text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                          default=_text).encode()
    return Shape(sanitized=sanitized, fingerprint=hashlib.sha256(text).hexdigest(),
                 literals=tuple(walker.literals), fields=frozenset(walker.fields), truncated=walker.truncated)


# -- helpers --------------------------------------------------------------------------------
def _text(value: Any) -> str:
    """`str(value)`, always encodable as UTF-8 (lone surrogates are escaped) and never raising."""
    try:
        text = str(value)
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    except Exception:  # An object whose __str__ fails (or an int too long to print): hashed as its type.
        return f"<{type(value).__name__}>"


def _key(raw: Any) -> str:
    return raw if isinstance(raw, str) else _text(raw)


def _field_names(value: Any) -> list[str] | None:
    """`"name^2"` or `["name^2", "address"]` → ["name", "address"]; None when it is not field names."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        return None
    return [i.partition("^")[0].strip() for i in items]


def _readable_param(key: str, value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return key in _BOOLEAN_PARAMS
    if isinstance(value, (int, float)):
        return key in _NUMERIC_PARAMS and (value != value or abs(value) < 100_000)
    if not isinstance(value, str):
        return False
    if key in _BOOLEAN_PARAMS and value in ("true", "false"):
        return True
    if key in _NUMERIC_PARAMS and _NUMBER_TEXT.fullmatch(value):
        return True
    if key in _WORD_PARAMS and _WORD.fullmatch(value):
        return True
    return key in _TEXT_PARAMS and bool(_SAFE_TEXT.fullmatch(value)) and not _DIGIT_RUN.search(value)


# Literal positions inside a field's options object, per query type.
_VALUE = {"value": "term"}
_RANGE_BOUNDS = {k: "range" for k in ("gt", "gte", "lt", "lte", "from", "to")}
_FIELD_LEVEL: dict[str, tuple[str, dict[str, str]]] = {
    "term": ("term", {"value": "term"}),
    "prefix": ("prefix", {"value": "prefix"}),
    "wildcard": ("wildcard", {"value": "wildcard", "wildcard": "wildcard"}),
    "regexp": ("regexp", {"value": "regexp"}),
    "fuzzy": ("fuzzy", {"value": "fuzzy"}),
    "match": ("match", {"query": "match"}),
    "match_phrase": ("phrase", {"query": "phrase"}),
    "match_phrase_prefix": ("prefix", {"query": "prefix"}),
    "match_bool_prefix": ("prefix", {"query": "prefix"}),
    "range": ("range", _RANGE_BOUNDS),
}
# Compound queries: keys holding sub-queries (an object or an array of them).
_COMPOUND: dict[str, frozenset[str]] = {
    "bool": frozenset({"must", "should", "filter", "must_not"}),
    "constant_score": frozenset({"filter", "query"}),
    "dis_max": frozenset({"queries"}),
    "boosting": frozenset({"positive", "negative"}),
    "function_score": frozenset({"query", "filter"}),
    "script_score": frozenset({"query"}),
    "nested": frozenset({"query"}),
    "has_child": frozenset({"query"}),
    "has_parent": frozenset({"query"}),
    "match_all": frozenset(),
    "match_none": frozenset(),
    "exists": frozenset(),
}
_MULTI_MATCH_KIND = {"phrase": "phrase", "phrase_prefix": "prefix", "bool_prefix": "prefix"}
KNOWN_QUERIES = frozenset(_FIELD_LEVEL) | frozenset(_COMPOUND) | {
    "terms", "ids", "multi_match", "more_like_this", "query_string", "simple_query_string"}


class _Walker:
    """Walks one query; every method returns (sanitized, canonical) for the value it was given."""

    def __init__(self, hasher: Hasher) -> None:
        self.hasher = hasher
        self.literals: list[Literal] = []
        self.fields: set[str] = set()
        self.truncated = False
        self.recording = True
        self._nodes = 0

    def _enter(self, depth: int) -> bool:
        self._nodes += 1
        if depth > MAX_DEPTH or self._nodes > MAX_NODES:
            self.truncated = True
            return False
        return True

    def _hash(self, field: str, value: Any) -> str:
        return "h:" + self.hasher(_text(field), _text(value))

    # -- queries ----------------------------------------------------------------------------
    def query(self, node: Any, depth: int) -> tuple[Any, Any]:
        if not self._enter(depth):
            return TRUNCATED, TRUNCATED
        if not isinstance(node, dict) or not node:
            return self.opaque(node, UNKNOWN_FIELD, depth + 1)
        sanitized: dict[str, Any] = {}
        canonical: dict[str, Any] = {}
        for raw, spec in node.items():
            kind = _key(raw)
            sanitized[kind], canonical[kind] = self._query_body(kind, spec, depth + 1)
        return sanitized, canonical

    def _query_body(self, kind: str, spec: Any, depth: int) -> tuple[Any, Any]:
        if kind in _FIELD_LEVEL:
            return self._field_level(spec, depth, *_FIELD_LEVEL[kind])
        if kind in _COMPOUND:
            return self.body(spec, depth, UNKNOWN_FIELD, queries=_COMPOUND[kind])
        if kind == "terms":
            return self._field_level(spec, depth, "terms", {})
        if kind == "ids":
            self.fields.add("_id")
            return self.body(spec, depth, "_id", literals={"values": "ids"})
        if kind == "multi_match":
            return self._multi_match(spec, depth)
        if kind == "more_like_this":
            return self.body(spec, depth, UNKNOWN_FIELD, literals={"like": "match", "unlike": "match"})
        if kind == "query_string":
            return self._query_string(spec, depth, query_string_to_dsl)
        if kind == "simple_query_string":
            return self._query_string(spec, depth, simple_query_string_to_dsl)
        return self.opaque(spec, UNKNOWN_FIELD, depth)  # Unknown query type: everything hashed.

    def _field_level(self, spec: Any, depth: int, kind: str, options: dict[str, str]) -> tuple[Any, Any]:
        """`{field: value}` or `{field: {options}}`, plus `boost` / `_name` beside the field."""
        if not self._enter(depth):
            return TRUNCATED, TRUNCATED
        if not isinstance(spec, dict):
            return self.opaque(spec, UNKNOWN_FIELD, depth + 1)
        sanitized: dict[str, Any] = {}
        canonical: dict[str, Any] = {}
        for raw, value in spec.items():
            key = _key(raw)
            if key in ("boost", "_name"):
                sanitized[key], canonical[key] = self.param(UNKNOWN_FIELD, key, value, depth + 1)
                continue
            self.fields.add(key)
            if isinstance(value, dict) and options:
                sanitized[key], canonical[key] = self.body(value, depth + 1, key, literals=options)
            else:
                sanitized[key], canonical[key] = self.literal(key, kind, value, depth + 1)
        return sanitized, canonical

    def _multi_match(self, spec: Any, depth: int) -> tuple[Any, Any]:
        if not isinstance(spec, dict):
            return self.opaque(spec, UNKNOWN_FIELD, depth)
        names = _field_names(spec.get("fields")) or []
        field = names[0] if len(names) == 1 else UNKNOWN_FIELD
        type_ = spec.get("type")
        kind = _MULTI_MATCH_KIND.get(type_, "match") if isinstance(type_, str) else "match"
        return self.body(spec, depth, field, literals={"query": kind})

    def _query_string(self, spec: Any, depth: int, translate: Callable[[dict], dict]) -> tuple[Any, Any]:
        """The query text is hashed whole in `sanitized`; literals and fingerprint come from its
        translation to DSL when it parses, so `id:110101*` walks like a `prefix` query does."""
        if not isinstance(spec, dict):
            return self.opaque(spec, UNKNOWN_FIELD, depth)
        names = _field_names(spec.get("fields")) or []
        default = spec.get("default_field")
        field = default if isinstance(default, str) else names[0] if len(names) == 1 else UNKNOWN_FIELD
        try:
            translated: Any = translate(copy.deepcopy(spec))
        except Exception:  # Invalid query text: described as one opaque literal.
            translated = None
        if translated is None:
            return self.body(spec, depth, field, literals={"query": "query_string"})
        _, inner = self.query(translated, depth + 1)
        recording, self.recording = self.recording, False
        try:
            sanitized, canonical = self.body(spec, depth, field, literals={"query": "query_string"})
        finally:
            self.recording = recording
        if isinstance(canonical, dict) and "query" in canonical:
            canonical["query"] = inner
        return sanitized, canonical

    # -- objects, literals, parameters ------------------------------------------------------
    def body(self, spec: Any, depth: int, field: str, *, literals: dict[str, str] | None = None,
             queries: frozenset[str] = frozenset()) -> tuple[Any, Any]:
        """An options object: literal keys hashed, sub-queries walked, parameters kept."""
        if not self._enter(depth):
            return TRUNCATED, TRUNCATED
        if not isinstance(spec, dict):
            return self.opaque(spec, field, depth + 1)
        literals = literals or {}
        sanitized: dict[str, Any] = {}
        canonical: dict[str, Any] = {}
        for raw, value in spec.items():
            key = _key(raw)
            if key in literals:
                out = self.literal(field, literals[key], value, depth + 1)
            elif key in queries:
                out = self.sub_queries(value, depth + 1)
            else:
                out = self.member(key, value, field, depth + 1)
            sanitized[key], canonical[key] = out
        return sanitized, canonical

    def sub_queries(self, value: Any, depth: int) -> tuple[Any, Any]:
        if isinstance(value, list):
            if not self._enter(depth):
                return TRUNCATED, TRUNCATED
            pairs = [self.query(v, depth + 1) for v in value]
            return [s for s, _ in pairs], [c for _, c in pairs]
        return self.query(value, depth)

    def member(self, key: str, value: Any, field: str, depth: int) -> tuple[Any, Any]:
        """One member of an object that is not a literal position of a known query."""
        if key in FIELD_KEYS:
            names = _field_names(value)
            if names is not None:
                self.fields.update(n for n in names if n)
                return value, value
        if key in PARAM_KEYS:
            return self.param(field, key, value, depth)
        return self.opaque(value, field, depth)

    def param(self, field: str, key: str, value: Any, depth: int) -> tuple[Any, Any]:
        if isinstance(value, (dict, list, tuple)):
            return self.opaque(value, field, depth)
        if _readable_param(key, value):
            # `boost` and `_name` are free for the client to vary, so they do not split a fingerprint.
            return value, "<boost>" if key == "boost" else "<name>" if key == "_name" else value
        return self._hash(field, value), "<param>"

    def literal(self, field: str, kind: str, value: Any, depth: int) -> tuple[Any, Any]:
        if isinstance(value, (list, tuple)):
            if not self._enter(depth):
                return TRUNCATED, TRUNCATED
            sanitized = [self.literal(field, kind, v, depth + 1)[0] for v in value]
            return sanitized, f"<{kind}>" if kind == "terms" else f"<{kind}[]>"
        if isinstance(value, dict):
            return self.opaque(value, field, depth)
        if value is None or isinstance(value, bool):
            return value, f"<{kind}>"
        text = _text(value)
        hashed = self._hash(field, text)
        if self.recording:
            if len(self.literals) < MAX_LITERALS:
                self.literals.append(Literal(field, kind, hashed, len(text)))
            else:
                self.truncated = True
        return hashed, f"<prefix:{len(text)}>" if kind == "prefix" else f"<{kind}>"

    def opaque(self, value: Any, field: str, depth: int) -> tuple[Any, Any]:
        """Anything not understood: keys and parameters kept, every other scalar hashed."""
        if not self._enter(depth):
            return TRUNCATED, TRUNCATED
        if isinstance(value, dict):
            if len(value) == 1 and _key(next(iter(value))) in KNOWN_QUERIES:
                return self.query(value, depth + 1)
            own = value.get("field")
            field = own if isinstance(own, str) else field
            sanitized: dict[str, Any] = {}
            canonical: dict[str, Any] = {}
            for raw, member in value.items():
                key = _key(raw)
                sanitized[key], canonical[key] = self.member(key, member, field, depth + 1)
            return sanitized, canonical
        if isinstance(value, (list, tuple)):
            pairs = [self.opaque(v, field, depth + 1) for v in value]
            return [s for s, _ in pairs], [c for _, c in pairs]
        return self.literal(field, "other", value, depth)
