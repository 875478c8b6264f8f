"""Search across shards of one or more indices: one fan-out and merge path for every query.

Hits sorted by score come from tantivy's top-k collector per shard, merged by score. Hits sorted
by fields are ranked from every candidate's sort values (fast fields read in bulk), which also
serves `search_after` and scrolling. tantivy document addresses never leave this module: hits
carry the stored document (id, versions, source) only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import tantivy

from ..errors import RequestError
from ..jsonio import extract_values
from .index import Index
from .mapping import INTEGER_RANGES
from .plan import Bool, Compiler, Ids, MatchAll, Node, named_queries
from .shard import Shard, StoredDoc, count_docs, stored_doc

MAX_SORT_CANDIDATES = 1_000_000  # matches a field-sorted search may rank (per request)
DEFAULT_TRACK_TOTAL = 10_000


@dataclass(frozen=True)
class SortKey:
    field: str  # "_score", "_doc", "_id" or a mapped field path
    order: str = "asc"  # asc | desc
    missing: Any = "_last"
    mode: str | None = None
    unmapped_type: str | None = None


@dataclass
class SearchSpec:
    query: Node
    post_filter: Node | None = None
    offset: int = 0
    size: int = 10
    sort: list[SortKey] | None = None  # None: by score
    search_after: list[Any] | None = None
    track_total: bool | int = DEFAULT_TRACK_TOTAL
    min_score: float | None = None
    explain: bool = False
    track_scores: bool = False
    named_scores: bool = False  # include_named_queries_score
    timeout: float | None = None  # seconds; shards not reached in time are left out (timed_out: true)


@dataclass
class Hit:
    index: str
    shard: int
    doc: StoredDoc
    score: float | None
    sort: list[Any] | None = None
    explanation: dict[str, Any] | None = None
    matched_queries: list[str] | dict[str, float] | None = None


@dataclass
class SearchResult:
    total: int | None
    relation: str
    hits: list[Hit]
    max_score: float | None
    shards: int
    timed_out: bool = False


@dataclass
class Target:
    """One shard of one index, with the searcher (a point-in-time view) used for the whole request.

    `restriction`, when set, limits every query on this target to the documents it matches: they
    are the only documents that exist for the request (totals, aggregations, ids). `transform`, when
    set, rewrites each query node before it is compiled for this target. The engine applies both and
    does not know why they were set (the security layer sets them)."""

    index: Index
    shard: Shard
    searcher: tantivy.Searcher
    order: int  # position in the request's list of shards: the last tie-breaker
    restriction: Node | None = None
    transform: Callable[[Node], Node] | None = None
    # `reveal(target, ids, stored_sources) -> sources`: opens (and filters) the `_source` of documents the
    # engine renders itself (top_hits); without it the stored bytes are read as JSON.
    reveal: Callable[[Any, list[str], list[bytes]], list[dict[str, Any]]] | None = None
    # `open_source(doc_id, stored) -> document`: reads a sealed source for the engine's own rare needs.
    open_source: Callable[[str, bytes], Any] | None = None
    # `tokenize(node) -> node`: turns queries on protected (blind) fields into queries on their tokens;
    # applied to every node compiled for this target, restrictions included, after `transform`.
    tokenize: Callable[[Node], Node] | None = None
    _restricted: tantivy.Query | None = field(default=None, repr=False)

    def compiler(self, now_millis: int) -> Compiler:
        compiler = self.index.compiler(self.shard, self.searcher)
        compiler.now_millis = now_millis
        return compiler

    def prepare(self, node: Node) -> Node:
        node = self.transform(node) if self.transform is not None else node
        return self.tokenize(node) if self.tokenize is not None else node

    def encode(self, node: Node) -> Node:
        """Only the protection rewrite (for restrictions and role queries, which callers did not write)."""
        return self.tokenize(node) if self.tokenize is not None else node

    def compile(self, node: Node, now_millis: int) -> tantivy.Query:
        """A query node (transformed) compiled for this shard, not yet scoped."""
        return self.compiler(now_millis).compile(self.prepare(node))

    def scoped(self, query: tantivy.Query) -> tantivy.Query:
        """`query` limited to the documents that exist for this request."""
        if self.restriction is None:
            return query
        if self._restricted is None:
            self._restricted = self.compiler(int(time.time() * 1000)).compile(self.encode(self.restriction))
        return tantivy.Query.boolean_query([
            (tantivy.Occur.Must, query), (tantivy.Occur.Must, tantivy.Query.const_score_query(self._restricted, 0.0))])

    def everything(self) -> tantivy.Query:
        return self.scoped(tantivy.Query.all_query())

    def count(self, node: Node, post_filter: Node | None, query: tantivy.Query) -> int:
        """How many documents `query` (`node` and `post_filter` compiled and scoped) matches; every
        document of the view, without running a query, when it asks for all of them."""
        if post_filter is None and self.restriction is None and isinstance(node, MatchAll) \
                and isinstance(self.prepare(node), MatchAll):
            return self.searcher.num_docs
        return count_docs(self.searcher, query)


def targets_for(indices: Sequence[Index], *, restrictions: dict[str, Node | None] | None = None,
                transforms: dict[str, Callable[[Node], Node] | None] | None = None,
                reveals: dict[str, Any] | None = None) -> list[Target]:
    out = []
    for index in indices:
        restriction = (restrictions or {}).get(index.name)
        transform = (transforms or {}).get(index.name)
        reveal = (reveals or {}).get(index.name)
        index.searching()
        for shard in index.shards:
            out.append(Target(index, shard, shard.searcher, len(out), restriction, transform, reveal))
    return out


def postings(targets: Sequence[Target], node: Node, *, now_millis: int | None = None) -> int | None:
    """About how many postings searching `node` reads over these shards, restrictions included
    (Compiler.postings); None when that does not tell its cost."""
    now = now_millis if now_millis is not None else int(time.time() * 1000)
    total = 0
    for target in targets:
        compiler = target.compiler(now)
        count = compiler.postings(target.prepare(node))
        if count is None:
            return None
        if target.restriction is not None:  # intersected: the rarer side leads
            limit = compiler.postings(target.encode(target.restriction))
            count = 2 * (count if limit is None else min(count, limit))
        total += count
    return total


def stored_source(target: Target, doc: tantivy.Document) -> Any:
    """A stored document's source as JSON, opened by the layer above when it is sealed (rare paths:
    sort modes over multi-valued fields, segments older than a field)."""
    raw = doc.get_first("_source")
    if target.open_source is not None:
        return target.open_source(doc.get_first("_id"), raw)
    return orjson.loads(raw)


def count_matches(targets: Sequence[Target], node: Node, *, now_millis: int | None = None) -> int:
    now = now_millis if now_millis is not None else int(time.time() * 1000)
    return sum(t.count(node, None, compile_for(t, node, None, now)) for t in targets)


def matching_ids(targets: Sequence[Target], node: Node, ids: Sequence[str], *, now_millis: int | None = None
                 ) -> set[str]:
    """Which of `ids` match `node` on these shards (searchable documents only; restrictions ignored)."""
    if not ids:
        return set()
    now = now_millis if now_millis is not None else int(time.time() * 1000)
    found: set[str] = set()
    for target in targets:
        query = target.compiler(now).compile(Bool(filter=(Ids(tuple(ids)), target.encode(node))))
        for _score, address in target.searcher.search(query, len(ids), count=False).hits:
            found.add(target.searcher.doc(address).get_first("_id"))
    return found


@dataclass
class _Candidate:
    target: Target
    address: tantivy.DocAddress
    rank: int  # the shard's own order (doc address order for ties)
    score: float | None
    values: list[Any] = field(default_factory=list)


def compile_for(target: Target, node: Node, post_filter: Node | None, now_millis: int) -> tantivy.Query:
    query = target.compile(Bool(must=(node,), filter=(post_filter,)) if post_filter is not None else node, now_millis)
    return target.scoped(query)


def run_search(targets: Sequence[Target], spec: SearchSpec, *, now_millis: int | None = None) -> SearchResult:
    now = now_millis if now_millis is not None else int(time.time() * 1000)
    queries = [compile_for(t, spec.query, spec.post_filter, now) for t in targets]
    by_score = spec.sort is None or (len(spec.sort) == 1 and spec.sort[0].field == "_score"
                                     and spec.sort[0].order == "desc")
    if by_score and spec.search_after is None and spec.min_score is None:
        return _by_score(targets, queries, spec)
    if _single_field_fast_path(targets, spec):
        try:
            return _by_single_field(targets, queries, spec)
        except ValueError:  # A segment lacks the column (field added after data): rank every candidate.
            pass
    return _by_candidates(targets, queries, spec)


def _single_field_fast_path(targets: Sequence[Target], spec: SearchSpec) -> bool:
    if spec.sort is None or len(spec.sort) != 1 or spec.search_after is not None or spec.min_score is not None \
            or spec.track_scores:
        return False
    key = spec.sort[0]
    if key.missing != "_last" or key.mode is not None:
        return False
    for target in targets:
        slot = target.index.slots.get(key.field)
        if slot is None or slot.kind not in ("i64", "f64", "keyword", "bool"):
            return False
    return True


def _by_single_field(targets: Sequence[Target], queries: Sequence[tantivy.Query], spec: SearchSpec) -> SearchResult:
    """One sort key on a fast field: tantivy's ordered top-k per shard (missing values last), merged."""
    assert spec.sort is not None
    key = spec.sort[0]
    want = spec.offset + spec.size
    order = tantivy.Order.Desc if key.order == "desc" else tantivy.Order.Asc
    candidates: list[_Candidate] = []
    total = 0
    for target, query in zip(targets, queries):
        slot = target.index.slots[key.field]
        result = target.searcher.search(query, max(want, 1), count=True, order_by_field=slot.name, order=order)
        total += result.count
        for rank, (value, address) in enumerate(result.hits):
            candidates.append(_Candidate(target, address, rank, None, [value]))
    _sort_candidates(candidates, spec.sort)
    hits = [_hit(c, spec, queries, with_sort=True) for c in candidates[spec.offset:want]]
    count, relation = _total(spec, total)
    return SearchResult(count, relation, hits, None, len(targets))


def _total(spec: SearchSpec, exact: int | None) -> tuple[int | None, str]:
    if spec.track_total is False or exact is None:
        return None, "eq"
    if spec.track_total is True or exact <= spec.track_total:
        return exact, "eq"
    return int(spec.track_total), "gte"


class _Deadline:
    """The request's `timeout`, checked between shards: tantivy cannot stop a shard's search midway."""

    def __init__(self, seconds: float | None) -> None:
        self._at = None if seconds is None else time.monotonic() + seconds
        self.expired = False

    def passed(self) -> bool:
        if self._at is not None and time.monotonic() >= self._at:
            self.expired = True
        return self.expired


def _by_score(targets: Sequence[Target], queries: Sequence[tantivy.Query], spec: SearchSpec) -> SearchResult:
    want = spec.offset + spec.size
    candidates: list[_Candidate] = []
    total = 0
    max_score: float | None = None
    deadline = _Deadline(spec.timeout)
    for target, query in zip(targets, queries):
        if deadline.passed():
            break
        if want == 0:  # size 0 (aggregations, counts): no ranking, only the total if it is tracked
            if spec.track_total is not False:
                total += target.count(spec.query, spec.post_filter, query)
            continue
        result = target.searcher.search(query, want, count=True)
        total += result.count
        for rank, (score, address) in enumerate(result.hits):
            candidates.append(_Candidate(target, address, rank, score))
            max_score = score if max_score is None else max(max_score, score)
    candidates.sort(key=lambda c: (-(c.score or 0.0), c.target.order, c.rank))
    page = candidates[spec.offset:want]
    hits = [_hit(c, spec, queries, with_sort=spec.sort is not None) for c in page]
    count, relation = _total(spec, total)
    return SearchResult(count, relation, hits, max_score, len(targets), deadline.expired)


def _by_candidates(targets: Sequence[Target], queries: Sequence[tantivy.Query], spec: SearchSpec) -> SearchResult:
    sort = spec.sort or [SortKey("_score", "desc")]
    needs_score = spec.track_scores or any(k.field == "_score" for k in sort) or spec.min_score is not None
    candidates: list[_Candidate] = []
    deadline = _Deadline(spec.timeout)
    for target, query in zip(targets, queries):
        if deadline.passed():
            break
        count = count_docs(target.searcher, query)
        if len(candidates) + count > MAX_SORT_CANDIDATES:
            raise RequestError(f"sorting more than [{MAX_SORT_CANDIDATES}] matching documents is not supported; "
                               "narrow the query, or sort by score")
        if count == 0:
            continue
        result = target.searcher.search(query, count, count=False)
        shard_candidates = [_Candidate(target, address, rank, score if needs_score else None)
                            for rank, (score, address) in enumerate(result.hits)]
        if spec.min_score is not None:
            shard_candidates = [c for c in shard_candidates if (c.score or 0.0) >= spec.min_score]
        _sort_values(target, query, shard_candidates, sort)
        candidates.extend(shard_candidates)
    total = len(candidates)
    _sort_candidates(candidates, sort)
    if spec.search_after is not None:
        if len(spec.search_after) != len(sort):
            raise RequestError(f"search_after has {len(spec.search_after)} value(s) but sort has {len(sort)}")
        after = _after_values(targets, sort, spec.search_after)
        candidates = [c for c in candidates if _compare_values(c.values, after, sort) > 0]
    page = candidates[spec.offset:spec.offset + spec.size]
    max_score = max((c.score for c in candidates if c.score is not None), default=None) if needs_score else None
    hits = [_hit(c, spec, queries, with_sort=True) for c in page]
    count, relation = _total(spec, total)
    return SearchResult(count, relation, hits, max_score, len(targets), deadline.expired)


def _after_values(targets: Sequence[Target], sort: list[SortKey], raw: list[Any]) -> list[Any]:
    """search_after values in the form sort values take: dates may come formatted, booleans as 0/1."""
    out = []
    for value, key in zip(raw, sort):
        field_type = next((t.index.mapping.fields[key.field] for t in targets
                           if key.field in t.index.mapping.fields), None)
        if field_type is not None and isinstance(value, str):
            try:
                value = field_type._convert(value)
            except (ValueError, TypeError, OverflowError):
                raise RequestError(f"Failed to parse search_after value [{value}] for field [{key.field}]") from None
        if field_type is not None and field_type.type == "boolean" and isinstance(value, int):
            value = bool(value)
        out.append(value)
    return out


def _sort_values(target: Target, query: tantivy.Query, candidates: list[_Candidate], sort: list[SortKey]) -> None:
    if not candidates:
        return
    addresses = [c.address for c in candidates]
    for key in sort:
        if key.field == "_score":
            values: list[Any] = [c.score for c in candidates]
        elif key.field in ("_doc", "_shard_doc"):  # Stable within one point-in-time view: its address.
            values = [(target.order << 48) | (c.address.segment_ord << 32) | c.address.doc for c in candidates]
        elif key.field == "_seq_no":
            values = target.searcher.fast_field_values("_seq_no", addresses)
        elif key.mode is not None:
            values = _mode_values(target, addresses, key)
        else:
            values = _field_values(target, query, addresses, key)
        for candidate, value in zip(candidates, values):
            candidate.values.append(value)


def _field_values(target: Target, query: tantivy.Query, addresses: list[tantivy.DocAddress], key: SortKey
                  ) -> list[Any]:
    index = target.index
    slot = index.slots.get(key.field)
    field_type = index.mapping.fields.get(key.field)
    if slot is None or field_type is None:
        if key.unmapped_type is not None or key.field in index.mapping.objects:
            return [None] * len(addresses)
        raise RequestError(f"No mapping found for [{key.field}] in order to sort on")
    if slot.kind == "text":
        raise RequestError(f"Text fields are not optimised for operations that require per-document field data "
                           f"like aggregations and sorting, so these operations are disabled by default. Please use "
                           f"a keyword field instead. Alternatively, set fielddata=true on [{key.field}] in order "
                           f"to load field data by uninverting the inverted index.")
    if slot.kind in ("i64", "f64", "bool"):
        return target.searcher.fast_field_values(slot.name, addresses)
    return _keyword_values(target, query, addresses, slot.name, key.field)


def _mode_values(target: Target, addresses: list[tantivy.DocAddress], key: SortKey) -> list[Any]:
    """Sort values of multi-valued fields reduced by `mode` (min, max, sum, avg, median), read from the
    documents: columns hold one value per document here."""
    field_type = target.index.mapping.fields.get(key.field)
    if field_type is None:
        return [None] * len(addresses)
    integral = field_type.type in INTEGER_RANGES or field_type.type == "date"
    out: list[Any] = []
    for address in addresses:
        source = stored_source(target, target.searcher.doc(address))
        values = []
        for raw in extract_values(source, field_type.parent or key.field):
            try:
                converted = field_type._convert(raw)
            except (ValueError, TypeError, OverflowError):
                continue
            if converted is not None:
                values.append(converted)
        out.append(_reduce(values, key.mode or "min", integral) if values else None)
    return out


def _reduce(values: list[Any], mode: str, integral: bool) -> Any:
    values = sorted(values)  # Doc values hold a document's values in ascending order.
    if mode == "min":
        return values[0]
    if mode == "max":
        return values[-1]
    total: Any = 0
    for value in values:  # Summed in that order, with a long's overflow, as Elasticsearch does.
        total = _wrap64(total + value) if integral else total + value
    if mode == "sum":
        return total if integral else float(total)
    if mode == "avg":
        average = total / len(values)
        return math.floor(average + 0.5) if integral else average  # Java's Math.round for longs
    ordered = sorted(values)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return math.floor(median + 0.5) if integral else median


def _wrap64(number: int) -> int:
    """Two's-complement overflow, as a Java long sum does."""
    return (number + 2**63) % 2**64 - 2**63


def _keyword_values(target: Target, query: tantivy.Query, addresses: list[tantivy.DocAddress], slot: str,
                    path: str) -> list[Any]:
    """Keyword sort values: tantivy's keyword-ordered collector yields (value, address) for every match."""
    try:
        ordered = target.searcher.search(query, max(len(addresses), 1), order_by_field=slot)
    except ValueError:
        return _keyword_values_from_source(target, addresses, path)
    by_address = {(a.segment_ord, a.doc): value for value, a in ordered.hits}
    return [by_address.get((a.segment_ord, a.doc)) for a in addresses]


def _keyword_values_from_source(target: Target, addresses: list[tantivy.DocAddress], path: str) -> list[Any]:
    # Segments written before the field existed have no column for it: read the value from the
    # document itself (a rare case: fields added after data was loaded, until segments merge).
    out = []
    for address in addresses:
        source = stored_source(target, target.searcher.doc(address))
        values = [str(v) for v in extract_values(source, path)]
        out.append(min(values) if values else None)
    return out


def _sort_candidates(candidates: list[_Candidate], sort: list[SortKey]) -> None:
    """Stable sorts from the least to the most significant key (ties end in shard and doc order)."""
    candidates.sort(key=lambda c: (c.target.order, c.rank))
    for position in range(len(sort) - 1, -1, -1):
        key = sort[position]
        descending = key.order == "desc"
        if key.missing in ("_first", "_last"):
            missing_rank = 0 if (key.missing == "_first") != descending else 2
            filler = _filler(candidates, position)

            def sort_key(c: _Candidate, i: int = position, m: int = missing_rank, f: Any = filler) -> tuple[int, Any]:
                value = c.values[i]
                return (m, f) if value is None else (1, value)
        else:
            substitute = key.missing

            def sort_key(c: _Candidate, i: int = position, sub: Any = substitute) -> tuple[int, Any]:
                value = c.values[i]
                return (1, sub if value is None else value)
        candidates.sort(key=sort_key, reverse=descending)


def _filler(candidates: list[_Candidate], position: int) -> Any:
    """A value of the same type as the present ones, standing in for missing ones inside sort keys."""
    for candidate in candidates:
        value = candidate.values[position]
        if value is not None:
            return "" if isinstance(value, str) else 0
    return 0


def _compare_values(left: list[Any], right: list[Any], sort: list[SortKey]) -> int:
    for x, y, key in zip(left, right, sort):
        if x == y:
            continue
        if x is None or y is None:
            missing_first = key.missing == "_first"
            if key.missing not in ("_first", "_last"):
                x = key.missing if x is None else x
                y = key.missing if y is None else y
                if x == y:
                    continue
            else:
                return (-1 if missing_first else 1) if x is None else (1 if missing_first else -1)
        try:
            less = x < y
        except TypeError:
            less = str(x) < str(y)
        direction = 1 if key.order == "asc" else -1
        return -direction if less else direction
    return 0


def _hit(candidate: _Candidate, spec: SearchSpec, queries: Sequence[tantivy.Query], *, with_sort: bool) -> Hit:
    target = candidate.target
    stored = stored_doc(target.searcher.doc(candidate.address))
    explanation = None
    if spec.explain:
        raw = queries[target.order].explain(target.searcher, candidate.address).to_json()
        explanation = _explanation(orjson.loads(raw))
    sort_values = None
    if with_sort:
        sort_values = [_render_sort(v, key, target.index) for v, key in zip(candidate.values, spec.sort or [])] \
            if candidate.values else ([candidate.score] if spec.sort else None)
    score = candidate.score
    if score is not None and math.isnan(score):
        score = None
    matched = _matched_queries(target, spec, stored.doc_id) if _has_names(spec) else None
    return Hit(target.index.name, target.shard.number, stored, score, sort_values, explanation, matched)


def _has_names(spec: SearchSpec) -> bool:
    return bool(named_queries(spec.query) or (spec.post_filter is not None and named_queries(spec.post_filter)))


def _matched_queries(target: Target, spec: SearchSpec, doc_id: str) -> list[str] | dict[str, float]:
    named = named_queries(spec.query) + (named_queries(spec.post_filter) if spec.post_filter is not None else [])
    compiler = target.compiler(int(time.time() * 1000))
    the_doc = tantivy.Query.term_query(target.shard.schema, "_id", doc_id)
    scores: dict[str, float] = {}
    for node in named:
        query = tantivy.Query.boolean_query([(tantivy.Occur.Must, compiler.compile(target.prepare(node.query))),
                                             (tantivy.Occur.Must, tantivy.Query.const_score_query(the_doc, 0.0))])
        hits = target.searcher.search(query, 1).hits
        if hits and node.name not in scores:
            scores[node.name] = hits[0][0]
    return scores if spec.named_scores else list(scores)


def _render_sort(value: Any, key: SortKey, index: Index) -> Any:
    if value is None:
        if key.missing in ("_last", "_first"):
            field_type = index.mapping.fields.get(key.field)
            numeric = field_type is not None and field_type.type not in ("keyword", "text", "boolean")
            if numeric:
                return (-(2**63) if key.missing == "_first" else 2**63 - 1) if key.order == "asc" else (
                    2**63 - 1 if key.missing == "_first" else -(2**63))
            return None
        return key.missing
    if isinstance(value, bool):
        return 1 if value else 0
    return value


def _explanation(node: dict[str, Any]) -> dict[str, Any]:
    return {"value": node.get("value", 0.0), "description": node.get("description", ""),
            "details": [_explanation(d) for d in node.get("details", []) or []]}


class Cursor:
    """Every match of a search in its final order, taken from one point-in-time view of the shards:
    the state behind scrolls and by-query operations. Pages read documents lazily."""

    def __init__(self, targets: Sequence[Target], spec: SearchSpec, *, now_millis: int | None = None,
                 limit: int = MAX_SORT_CANDIDATES) -> None:
        now = now_millis if now_millis is not None else int(time.time() * 1000)
        self._spec = spec
        self.targets = list(targets)
        self._queries = [compile_for(t, spec.query, spec.post_filter, now) for t in targets]
        sort = spec.sort or [SortKey("_score", "desc")]
        candidates: list[_Candidate] = []
        for target, query in zip(targets, self._queries):
            count = count_docs(target.searcher, query)
            if len(candidates) + count > limit:
                raise RequestError(f"a scroll or by-query operation over more than [{limit}] documents is not "
                                   "supported; narrow the query")
            if count == 0:
                continue
            result = target.searcher.search(query, count, count=False)
            shard_candidates = [_Candidate(target, address, rank, score)
                                for rank, (score, address) in enumerate(result.hits)]
            if spec.min_score is not None:
                shard_candidates = [c for c in shard_candidates if (c.score or 0.0) >= spec.min_score]
            if spec.sort is not None:
                _sort_values(target, query, shard_candidates, sort)
            else:
                for c in shard_candidates:
                    c.values.append(c.score)
            candidates.extend(shard_candidates)
        _sort_candidates(candidates, sort)
        self._candidates = candidates
        self.position = spec.offset
        self.shards = len(targets)

    @property
    def total(self) -> int:
        return len(self._candidates)

    @property
    def max_score(self) -> float | None:
        sort = self._spec.sort
        if sort is not None and not self._spec.track_scores and not any(k.field == "_score" for k in sort):
            return None  # Sorted by fields: scores are not computed, as in Elasticsearch.
        return max((c.score for c in self._candidates if c.score is not None), default=None)

    def next_page(self, size: int) -> list[Hit]:
        page = self._candidates[self.position:self.position + size]
        self.position += len(page)
        return [_hit(c, self._spec, self._queries, with_sort=self._spec.sort is not None) for c in page]

    def remaining(self) -> int:
        return max(0, len(self._candidates) - self.position)


def explain(targets: Sequence[Target], node: Node, doc_id: str, *, now_millis: int | None = None
            ) -> tuple[bool, dict[str, Any]] | None:
    """(matched, explanation) for one document, or None when the document does not exist."""
    now = now_millis if now_millis is not None else int(time.time() * 1000)
    for target in targets:
        searcher = target.searcher
        found = searcher.search(target.scoped(tantivy.Query.term_query(target.shard.schema, "_id", doc_id)), 1,
                                count=False).hits
        if not found:
            continue
        address = found[0][1]
        query = compile_for(target, node, None, now)
        matched = bool(searcher.search(tantivy.Query.boolean_query([
            (tantivy.Occur.Must, query),
            (tantivy.Occur.Must, tantivy.Query.term_query(target.shard.schema, "_id", doc_id))]), 1).hits)
        if not matched:
            return False, {"value": 0.0, "description": "no matching term", "details": []}
        return True, _explanation(orjson.loads(query.explain(searcher, address).to_json()))
    return None
