"""Protected fields: what reaches the engine instead of their values, and how queries reach them.

A field mapped `"protect": "blind"` is indexed as keyed HMAC tokens (crypto/blind.py) with a key of
its own (per index and field): the engine sees tokens, never the value.

- keyword (and numbers, booleans): one token for the exact value, plus one per declared prefix
  length (`"blind_prefixes": [6]` lets `prefix` queries of 6 characters match a region code);
- text: the field's analyzer runs here, each term becomes a token, positions kept, so `match` and
  `match_phrase` work (CJK bigrams included);
- date: tokens for the year, the year-month and the day, so equality on any of them works.

A field mapped `"protect": "encrypt"` is not indexed at all; its value exists at rest only inside
the sealed `_source`.

Queries are rewritten here (the engine compiles the rewritten tree): a range on a blind date becomes
the fewest year, month and day tokens that cover it; a query the protected form cannot answer —
other ranges, wildcard, regexp, fuzzy, sort, aggregations — is a 400 naming the field.
Patterns (`*`, `name.*`, query_string defaults) skip protected fields: name them to search them.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..crypto.blind import Tokenizer
from ..crypto.keys import DataKeys
from ..engine import analysis
from ..engine.aggs import AggNode, TopHitsAgg
from ..engine.dates import DEFAULT_FORMAT, DateFormat, parse_date_math
from ..engine.index import Index
from ..engine.mapping import FieldType, Mapping
from ..engine.plan import (ConstantScore, DisMax, Exists, Fuzzy, Ids, Match, MatchAll,
                           MatchBoolPrefix, MatchNone, MatchPhrase, MatchPhrasePrefix, MultiMatch, Node, Prefix,
                           Range, Regexp, Term, Terms, Wildcard, combine_per_field, expand_slots, map_children,
                           match_over_pattern)
from ..engine.search import SearchSpec
from ..errors import MapperParsingError, RequestError

TEXTUAL = ("text", "keyword")
_UNANSWERABLE = {Range: "a range query (only dates take ranges)", Wildcard: "a wildcard query", Regexp: "a regexp query",
                 Fuzzy: "a fuzzy query", MatchPhrasePrefix: "a match_phrase_prefix query",
                 MatchBoolPrefix: "a match_bool_prefix query"}


class ProtectedFieldError(RequestError):
    es_type = "illegal_argument_exception"

    def __init__(self, path: str, level: str, what: str) -> None:
        hint = "it is encrypted and never searchable" if level == "encrypt" else \
            "it is searched through keyed tokens: exact values (term, terms, match), match_phrase on text, " \
            "declared prefix lengths and date parts only"
        super().__init__(f"field [{path}] is protected ({level}): {what} cannot be answered on it; {hint}")


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
SHORT_TEXT = 12  # characters: names, places
SHORT_MEMO_ENTRIES = 50_000  # per field
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Date formats whose first reading of "YYYY-MM-DD" is that day at UTC midnight.
_ISO_FIRST = frozenset({DEFAULT_FORMAT, "strict_date_optional_time", "date_optional_time", "strict_date", "date",
                        "yyyy-MM-dd", "strict_date||epoch_millis", "date_optional_time||epoch_millis"})


class Protector:
    """Protection of one index's fields, for one request (the data keys of the index)."""

    _cache: dict[str, Protector] = {}  # by index uuid; rebuilt when the mapping or the keys change
    _cache_lock = threading.Lock()

    @classmethod
    def for_index(cls, index: Index, keys: DataKeys) -> Protector:
        """The index's protector, reused across requests so its tokenizers' memos pay off."""
        cached = cls._cache.get(index.uuid)
        if cached is None or cached.mapping is not index.mapping or cached._keys is not keys:
            cached = cls(index, keys)
            with cls._cache_lock:
                if len(cls._cache) > 1000:
                    cls._cache.clear()
                cls._cache[index.uuid] = cached
        return cached

    def __init__(self, index: Index | None, keys: DataKeys, *, mapping: Mapping | None = None) -> None:
        """`index` None (with `mapping`): a protector that only derives documents (ingest workers)."""
        self.index = index  # type: ignore[assignment]
        self.mapping = mapping if mapping is not None else index.mapping  # type: ignore[union-attr]
        self._keys = keys
        self.fields: dict[str, FieldType] = {p: f for p, f in self.mapping.fields.items() if f.protect != "none"}
        self._tokenizers: dict[str, Tokenizer] = {}
        self._short: dict[str, dict[str, str]] = {}  # per text field: short text (a name) → its token text

    @property
    def active(self) -> bool:
        return bool(self.fields)

    def _tokenizer(self, path: str) -> Tokenizer:
        tokenizer = self._tokenizers.get(path)
        if tokenizer is None:  # a race only builds the same tokenizer twice
            tokenizer = self._tokenizers[path] = Tokenizer(self._keys.token_key(path, "value"))
        return tokenizer

    # -- values ------------------------------------------------------------------------------
    def _exact_text(self, field: FieldType, value: Any) -> str:
        """The canonical text of a value of a keyword-like field (what equality compares)."""
        if isinstance(value, (dict, list)) or value is None:
            raise MapperParsingError(f"failed to parse field [{field.path}] of type [{field.type}]")
        if field.type == "keyword":
            return str(value) if not isinstance(value, bool) else ("true" if value else "false")
        try:
            converted = field._convert(value)
        except Exception:  # the field's own coercion said no; never echo the value
            raise MapperParsingError(f"failed to parse field [{field.path}] of type [{field.type}]") from None
        if isinstance(converted, bool):
            return "true" if converted else "false"
        if isinstance(converted, float) and converted.is_integer():
            return str(int(converted))
        return str(converted)

    def _date_text(self, field: FieldType, value: Any) -> str:
        if type(value) is str and _ISO_DAY.fullmatch(value) and field.params.get("format", DEFAULT_FORMAT) in _ISO_FIRST:
            try:  # the common case, "1990-05-17" under a format that reads it first as that day (UTC)
                return dt.date.fromisoformat(value).isoformat()
            except ValueError:
                pass  # not a calendar date: the field's own parsing decides (and names the field)
        millis = int(self._exact_text(field, value))
        try:
            return (_EPOCH + dt.timedelta(milliseconds=millis)).date().isoformat()
        except OverflowError:  # a date the field parses but a calendar date cannot hold (year 0, 10000…)
            raise MapperParsingError(f"failed to parse field [{field.path}] of type [{field.type}]") from None

    def _analyze(self, field: FieldType, text: Any, *, search: bool) -> list[str]:
        name = (field.params.get("search_analyzer") if search else None) or field.params.get("analyzer") or "default"
        return analysis.analyzer(name).terms(str(text))

    def tokens(self, field: FieldType, value: Any) -> Any:
        """What the engine indexes for one value of a blind field."""
        tokenizer = self._tokenizer(field.path)
        if field.type == "text":
            if type(value) is not str or len(value) > SHORT_TEXT:
                return " ".join(tokenizer.terms(self._analyze(field, value, search=False)))
            memo = self._short.get(field.path)
            if memo is None:
                memo = self._short[field.path] = {}
            joined = memo.get(value)
            if joined is None:  # names repeat (张伟 is hundreds of thousands of people): analyse each once
                joined = " ".join(tokenizer.terms(self._analyze(field, value, search=False)))
                if len(memo) >= SHORT_MEMO_ENTRIES:
                    memo.clear()
                memo[value] = joined
            return joined
        if field.type == "date":
            return tokenizer.date_parts(self._date_text(field, value))
        text = self._exact_text(field, value)
        prefixes = field.params.get("blind_prefixes") or ()
        return [tokenizer.exact(text), *tokenizer.prefixes(text, tuple(prefixes))]

    def derive(self, document: Any) -> Any:
        """The indexable document: blind values replaced by their tokens, encrypted values removed."""
        return self._walk(document, "")

    def _walk(self, value: Any, path: str) -> Any:
        field = self.fields.get(path) if path else None
        if field is not None:
            if field.protect == "encrypt":
                return _DROP
            if isinstance(value, list):
                out: list[Any] = []
                for item in value:
                    if item is not None:
                        tokens = self.tokens(field, item)
                        out.extend(tokens if isinstance(tokens, list) else [tokens])
                return out
            return None if value is None else self.tokens(field, value)
        if isinstance(value, dict):
            kept = {}
            for key, child in value.items():
                derived = self._walk(child, f"{path}.{key}" if path else key)
                if derived is not _DROP:
                    kept[key] = derived
            return kept
        if isinstance(value, list):
            return [d for d in (self._walk(item, path) for item in value) if d is not _DROP]
        return value

    # -- queries -----------------------------------------------------------------------------
    def check_request(self, spec: SearchSpec, aggs: dict[str, AggNode] | None,
                      rewrite: Callable[[Node], Node] | None = None) -> None:
        """Refuses (400) what the protected fields cannot answer. `rewrite`: this protector's `rewrite`,
        maybe remembering its answers for the request's planning."""
        if not self.fields:
            return
        rewrite = rewrite or self.rewrite
        rewrite(spec.query)
        if spec.post_filter is not None:
            rewrite(spec.post_filter)
        for key in spec.sort or ():
            self._refuse_if_protected(key.field, "sorting")
        if aggs:
            self._check_aggs(aggs, rewrite)

    def _check_aggs(self, aggs: dict[str, AggNode], rewrite: Callable[[Node], Node]) -> None:
        for node in aggs.values():
            path = getattr(node, "field", None)
            if isinstance(path, str):
                self._refuse_if_protected(path, "an aggregation")
            if isinstance(node, TopHitsAgg):
                for key in node.sort or ():
                    self._refuse_if_protected(key.field, "sorting")
            for query in (getattr(node, "query", None), *(q for _, q in getattr(node, "filters", ()))):
                if query is not None:
                    rewrite(query)
            if getattr(node, "aggs", None):
                self._check_aggs(node.aggs, rewrite)

    def _refuse_if_protected(self, path: str, what: str) -> None:
        field = self.fields.get(path)
        if field is not None:
            raise ProtectedFieldError(path, field.protect, what)

    def touches(self, node: Node) -> bool:
        """Whether a query names a protected field (it then asks whether a protected value exists: a
        probe, counted against the caller's probe budget)."""
        if not self.fields:
            return False
        found: list[bool] = []

        def visit(child: Node) -> Node:
            if self.touches(child):
                found.append(True)
            return child

        if map_children(node, visit) is not None:
            return bool(found)
        named = [getattr(node, "field", None)]
        named += [f[0] if isinstance(f, tuple) else f for f in getattr(node, "fields", None) or ()]
        return any(isinstance(n, str) and n in self.fields for n in named)

    def rewrite(self, node: Node) -> Node:
        if not self.fields:
            return node
        compound = map_children(node, self.rewrite)
        if compound is not None:
            return compound
        match node:
            case MatchAll() | MatchNone() | Ids():
                return node
            case MultiMatch():
                return self._multi_match(node)
            case Match() if "*" in node.field:
                return self._multi_match(match_over_pattern(node))
            case Exists():
                if "*" in node.field:
                    return node  # presence only; an encrypted field has nothing indexed to find
                field = self.fields.get(node.field)
                if field is not None and field.protect == "encrypt":
                    raise ProtectedFieldError(node.field, "encrypt", "an exists query")
                return node
            case Prefix() | Wildcard() | Regexp() | Fuzzy() if node.normalize and "*" in node.field:
                slots = self.index.slots
                parts = [replace(node, field=p) for p in expand_slots(slots, node.field)
                         if slots[p].kind in TEXTUAL and p not in self.fields]
                if not parts:
                    return MatchNone()
                return parts[0] if len(parts) == 1 else DisMax(tuple(parts), 0.0)
        field = self.fields.get(getattr(node, "field", ""))
        if field is None:
            return node
        try:
            return self._protected_leaf(node, field)
        except (ValueError, MapperParsingError):  # a value the field's type cannot hold (never echoed)
            raise RequestError(f"failed to parse the query value for protected field [{field.path}] of type "
                               f"[{field.type}]") from None

    def _protected_leaf(self, node: Node, field: FieldType) -> Node:
        path = field.path
        if field.protect == "encrypt":
            raise ProtectedFieldError(path, "encrypt", "a query")
        tokenizer = self._tokenizer(path)
        match node:
            case Term() | Terms():
                values = node.values if isinstance(node, Terms) else (node.value,)
                if isinstance(node, Term) and node.case_insensitive:
                    raise ProtectedFieldError(path, "blind", "a case-insensitive term query")
                tokens = tuple(self._query_token(field, tokenizer, v) for v in values)
                return Terms(path, tokens, node.boost) if isinstance(node, Terms) else Term(path, tokens[0], node.boost)
            case Match():
                if node.fuzziness not in (None, 0, "0"):
                    raise ProtectedFieldError(path, "blind", "a fuzzy match")
                if field.type != "text":
                    return Term(path, self._query_token(field, tokenizer, node.query), node.boost)
                terms = tokenizer.terms(self._analyze(field, node.query, search=True))
                return replace(node, query=" ".join(terms), analyzer="whitespace", lenient=False)
            case MatchPhrase():
                if field.type != "text":
                    return Term(path, self._query_token(field, tokenizer, node.query), node.boost)
                terms = tokenizer.terms(self._analyze(field, node.query, search=True))
                return replace(node, query=" ".join(terms), analyzer="whitespace")
            case Range() if field.type == "date":
                return self._date_range(node, field, tokenizer)
            case Prefix():
                lengths = field.params.get("blind_prefixes") or ()
                if field.type != "keyword" or node.case_insensitive or len(node.value) not in lengths:
                    raise ProtectedFieldError(path, "blind", f"a prefix query of {len(node.value)} characters "
                                              f"(declared prefix lengths: {list(lengths)})")
                return Term(path, tokenizer.prefixes(node.value, (len(node.value),))[0], node.boost)
        raise ProtectedFieldError(path, "blind", _UNANSWERABLE.get(type(node), f"a {type(node).__name__} query"))

    def _date_range(self, node: Range, field: FieldType, tokenizer: Tokenizer) -> Node:
        """A range on a blind date, at day granularity: the fewest year, month and day tokens that cover
        it (1980-01-01 to 1989-12-31 is ten year tokens). Both bounds are needed."""
        if (node.gte is None and node.gt is None) or (node.lte is None and node.lt is None):
            raise ProtectedFieldError(field.path, "blind", "a range without both bounds")
        fmt = DateFormat.compile(node.format) if node.format else field.date_format
        assert fmt is not None
        now = int(time.time() * 1000)

        def millis(value: Any, round_up: bool) -> int:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return int(fmt.parse(value))
            return parse_date_math(str(value), now_millis=now, fmt=fmt, round_up=round_up)
        low = millis(node.gte, False) if node.gte is not None else millis(node.gt, True) + 1
        high = millis(node.lte, True) if node.lte is not None else millis(node.lt, False) - 1
        first = _day(low + _DAY_MS - 1)  # the first whole day at or after `low`
        last = _day(high)
        if first > last:
            return MatchNone()
        tokens: list[str] = []
        day = first
        while day <= last:
            if len(tokens) >= MAX_RANGE_TOKENS:
                raise ProtectedFieldError(field.path, "blind", f"a range needing more than {MAX_RANGE_TOKENS} tokens")
            year_end = dt.date(day.year, 12, 31)
            month_end = (dt.date(day.year + day.month // 12, day.month % 12 + 1, 1) - dt.timedelta(days=1))
            if day.month == 1 and day.day == 1 and year_end <= last:
                tokens.append(tokenizer.date_parts(day.isoformat())[0])
                day = year_end + dt.timedelta(days=1)
            elif day.day == 1 and month_end <= last:
                tokens.append(tokenizer.date_parts(day.isoformat())[1])
                day = month_end + dt.timedelta(days=1)
            else:
                tokens.append(tokenizer.date_parts(day.isoformat())[2])
                day += dt.timedelta(days=1)
        return ConstantScore(Terms(field.path, tuple(tokens)), node.boost)

    def _query_token(self, field: FieldType, tokenizer: Tokenizer, value: Any) -> str:
        if field.type == "text":  # a term query on text names one indexed term
            return tokenizer.terms([str(value)])[0]
        if field.type == "date":  # "1990" names the year, "1990-05" the month, anything else a day
            text = str(value).strip()
            if re.fullmatch(r"\d{4}", text):
                return tokenizer.date_parts(f"{text}-01-01")[0]
            if re.fullmatch(r"\d{4}-\d{2}", text):
                return tokenizer.date_parts(f"{text}-01")[1]
            return tokenizer.date_parts(self._date_text(field, value))[2]
        return tokenizer.exact(self._exact_text(field, value))

    def _multi_match(self, node: MultiMatch) -> Node:
        patterns = node.fields or (("*", 1.0),)
        plain: list[tuple[str, float]] = []
        protected: list[tuple[FieldType, float]] = []
        for pattern, boost in patterns:
            if "*" in pattern:
                plain += [(path, boost) for path in expand_slots(self.index.slots, pattern) if path not in self.fields]
            elif pattern in self.fields:
                protected.append((self.fields[pattern], boost))
            else:
                plain.append((pattern, boost))
        if not protected and all("*" not in p for p, _ in patterns):
            return node
        lenient = node.lenient or any("*" in p for p, _ in patterns)
        parts: list[Node] = []
        if plain:
            parts.append(replace(node, fields=tuple(plain), lenient=lenient))
        for field, boost in protected:
            if node.type in ("phrase",):
                leaf: Node = MatchPhrase(field.path, node.query, node.slop, None, node.zero_terms_query, boost)
            elif node.type in ("best_fields", "most_fields", "cross_fields"):
                leaf = Match(field.path, node.query, node.operator, node.minimum_should_match, node.fuzziness,
                             boost=boost)
            else:
                raise ProtectedFieldError(field.path, field.protect, f"a multi_match of type [{node.type}]")
            parts.append(self._protected_leaf(leaf, field))
        return combine_per_field(node, parts)


_DROP = object()
_DAY_MS = 86_400_000
MAX_RANGE_TOKENS = 1024  # as many as the default max clause count


def _day(millis: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=millis // _DAY_MS)
