"""Highlighting: mark the query's terms in a hit's field values, cut into fragments.

Works on the document as the caller may see it (after any masking), with the field's own
analyzer, so what is marked is exactly what matched: CJK bigrams that overlap merge into one
marked span. The plain highlighter's behaviour: fragments of about `fragment_size` characters that
contain matches, at most `number_of_fragments` of them (0: the whole value).
"""

from __future__ import annotations

import fnmatch
import html
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..engine import plan as p
from ..engine.analysis import ANALYZERS
from ..errors import RequestError
from ..jsonio import extract_values

MAX_ANALYZED_OFFSET = 1_000_000  # index.highlight.max_analyzed_offset


@dataclass(frozen=True)
class FieldSpec:
    fragment_size: int = 100
    number_of_fragments: int = 5
    pre_tags: tuple[str, ...] = ("<em>",)
    post_tags: tuple[str, ...] = ("</em>",)
    no_match_size: int = 0
    order: str = "none"
    require_field_match: bool = True
    encoder: str = "default"
    type: str = "unified"
    max_analyzed_offset: int | None = None


@dataclass
class HighlightSpec:
    fields: dict[str, FieldSpec] = field(default_factory=dict)  # field pattern → settings


def parse_highlight(body: dict[str, Any]) -> HighlightSpec:
    if not isinstance(body, dict):
        raise RequestError("[highlight] must be an object")
    allowed = {"fields", "pre_tags", "post_tags", "fragment_size", "number_of_fragments", "no_match_size", "order",
               "require_field_match", "encoder", "type", "tags_schema", "boundary_scanner", "boundary_chars",
               "boundary_max_scan", "fragmenter", "phrase_limit", "highlight_query", "max_analyzed_offset",
               "boundary_scanner_locale", "force_source", "options", "matched_fields", "fragment_offset",
               "max_analyzer_offset"}
    unknown = set(body) - allowed
    if unknown:
        raise RequestError(f"[highlight] unknown field [{sorted(unknown)[0]}]")
    if "highlight_query" in body:
        raise RequestError("[highlight] [highlight_query] is not supported yet")
    defaults = _field_spec(body, FieldSpec())
    fields_body = body.get("fields")
    if isinstance(fields_body, list):  # [{"name": {...}}, …] keeps order
        items = []
        for entry in fields_body:
            if not isinstance(entry, dict) or len(entry) != 1:
                raise RequestError("[highlight] [fields] array entries must be single-field objects")
            items.extend(entry.items())
    elif isinstance(fields_body, dict):
        items = list(fields_body.items())
    else:
        raise RequestError("[highlight] requires [fields]")
    return HighlightSpec({name: _field_spec(options or {}, defaults) for name, options in items})


def _tags(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
        raise RequestError(f"[highlight] [{key}] must be an array of strings")
    return tuple(value)


def _field_spec(body: dict[str, Any], base: FieldSpec) -> FieldSpec:
    if not isinstance(body, dict):
        raise RequestError("[highlight] field options must be an object")
    tags_pre, tags_post = base.pre_tags, base.post_tags
    if body.get("tags_schema") == "styled":
        tags_pre = tuple(f'<em class="hlt{i}">' for i in range(1, 11))
        tags_post = ("</em>",)
    if "pre_tags" in body:
        tags_pre = _tags(body["pre_tags"], "pre_tags")
    if "post_tags" in body:
        tags_post = _tags(body["post_tags"], "post_tags")
    offset = body.get("max_analyzed_offset", body.get("max_analyzer_offset", base.max_analyzed_offset))
    kind = str(body.get("type", base.type))
    if kind not in ("unified", "plain", "fvh"):
        raise RequestError(f"unknown highlighter type [{kind}]")
    try:
        return FieldSpec(int(body.get("fragment_size", base.fragment_size)),
                         int(body.get("number_of_fragments", base.number_of_fragments)), tags_pre or ("<em>",),
                         tags_post or ("</em>",), int(body.get("no_match_size", base.no_match_size)),
                         str(body.get("order", base.order)),
                         body.get("require_field_match", base.require_field_match) in (True, "true"),
                         str(body.get("encoder", base.encoder)), kind, None if offset is None else int(offset))
    except (TypeError, ValueError):
        raise RequestError("[highlight] numeric options must be integers") from None


# -- what the query looks for ----------------------------------------------------------------
@dataclass
class Wanted:
    """Per field: terms to mark, and patterns (prefix, wildcard, fuzzy) to test tokens against."""

    terms: set[str] = field(default_factory=set)
    patterns: list[Callable[[str], bool]] = field(default_factory=list)


def collect(node: p.Node, analyzer_of: Callable[[str], str | None], expand: Callable[[str], list[str]],
            out: dict[str, Wanted] | None = None) -> dict[str, Wanted]:
    """Field → what to mark, from the positive parts of a query (must_not clauses are skipped)."""
    out = {} if out is None else out

    def wanted(path: str) -> Wanted:
        return out.setdefault(path, Wanted())

    def analyzed(path: str, text: Any, analyzer: str | None = None) -> list[str]:
        name = analyzer or analyzer_of(path)
        if name is None:
            return [str(text)]
        return ANALYZERS[name].terms(str(text))

    match node:
        case p.Bool(must=must, should=should, filter=filters):
            for child in (*must, *should, *filters):
                collect(child, analyzer_of, expand, out)
        case p.ConstantScore(filter=inner):
            collect(inner, analyzer_of, expand, out)
        case p.DisMax(queries=queries):
            for child in queries:
                collect(child, analyzer_of, expand, out)
        case p.Boosting(positive=positive):
            collect(positive, analyzer_of, expand, out)
        case p.Match(field=f, query=q, analyzer=a) | p.MatchPhrase(field=f, query=q, analyzer=a):
            for path in (expand(f) if "*" in f else [f]):
                wanted(path).terms.update(analyzed(path, q, a))
        case p.MatchPhrasePrefix(field=f, query=q, analyzer=a):
            terms = analyzed(f, q, a)
            if terms:
                wanted(f).terms.update(terms[:-1])
                last = terms[-1]
                wanted(f).patterns.append(lambda token, prefix=last: token.startswith(prefix))
        case p.MultiMatch(query=q, fields=fields, analyzer=a):
            for pattern, _boost in fields or (("*", 1.0),):
                for path in expand(pattern):
                    wanted(path).terms.update(analyzed(path, q, a))
        case p.Term(field=f, value=v) | p.Fuzzy(field=f, value=v):
            wanted(f).terms.add(str(v).lower() if isinstance(v, bool) else str(v))
            if isinstance(node, p.Fuzzy):
                wanted(f).patterns.append(_fuzzy(str(v)))
        case p.Terms(field=f, values=values):
            wanted(f).terms.update(str(v) for v in values)
        case p.Prefix(field=f, value=v):
            wanted(f).patterns.append(lambda token, prefix=v: token.startswith(prefix))
        case p.Wildcard(field=f, value=v):
            wanted(f).patterns.append(lambda token, pattern=v: fnmatch.fnmatchcase(token, pattern))
        case p.Regexp(field=f, value=v):
            try:
                compiled = re.compile(v)
                wanted(f).patterns.append(lambda token, rx=compiled: rx.fullmatch(token) is not None)
            except re.error:
                pass
    return out


def _fuzzy(term: str) -> Callable[[str], bool]:
    def close(token: str) -> bool:
        return _distance(token, term, 2) <= 2
    return close


def _distance(a: str, b: str, limit: int) -> int:
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


# -- marking ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Limits:
    """Per-index highlighting limits: characters analysed, and fields indexed with offsets."""

    max_analyzed_offset: int = MAX_ANALYZED_OFFSET
    with_offsets: frozenset[str] = frozenset()
    ignore_above: tuple[tuple[str, int], ...] = ()  # keyword fields: longer values were never indexed
    index: str = ""
    doc_id: str = ""


def highlight_hit(source: dict[str, Any], spec: HighlightSpec, wanted: dict[str, Wanted],
                  analyzer_of: Callable[[str], str | None], expand: Callable[[str], list[str]],
                  limits: Limits = Limits()) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for pattern, options in spec.fields.items():
        paths = expand(pattern) if "*" in pattern else [pattern]
        for path in paths:
            _check_length(source, path, options, limits)
            targets = wanted.get(path)
            if targets is None and options.require_field_match:
                if options.no_match_size > 0:
                    fragments = _no_match(source, path, options)
                    if fragments:
                        out[path] = fragments
                continue
            if targets is None:
                targets = Wanted(set().union(*(w.terms for w in wanted.values())) if wanted else set(),
                                 [pattern for w in wanted.values() for pattern in w.patterns])
            fragments = _field_fragments(source, path, targets, options, analyzer_of(path),
                                         dict(limits.ignore_above).get(path))
            if fragments:
                out[path] = fragments
            elif options.no_match_size > 0:
                fragments = _no_match(source, path, options)
                if fragments:
                    out[path] = fragments
    return out


def _check_length(source: dict[str, Any], path: str, options: FieldSpec, limits: Limits) -> None:
    if options.max_analyzed_offset is not None:
        return  # The request bounds the analysis itself.
    if options.type == "unified" and path in limits.with_offsets:
        return  # Offsets are in the index: nothing needs re-analysing.
    for value in _values(source, path):
        if len(value) > limits.max_analyzed_offset:
            from ..errors import IllegalArgumentError
            raise IllegalArgumentError(
                f"The length of [{path}] field of [{limits.doc_id}] doc of [{limits.index}] index has exceeded "
                f"[{limits.max_analyzed_offset}] - maximum allowed to be analyzed for highlighting. This maximum can "
                "be set by changing the [index.highlight.max_analyzed_offset] index level setting. For large "
                "texts, indexing with offsets or term vectors is recommended!")


def _values(source: dict[str, Any], path: str) -> list[str]:
    return [v if isinstance(v, str) else str(v) for v in extract_values(source, path)]


def _no_match(source: dict[str, Any], path: str, options: FieldSpec) -> list[str]:
    values = _values(source, path)
    return [_encode(values[0][:options.no_match_size], options)] if values else []


def _encode(text: str, options: FieldSpec) -> str:
    return html.escape(text, quote=False) if options.encoder == "html" else text


def _spans(text: str, targets: Wanted, analyzer: str | None, limit: int = MAX_ANALYZED_OFFSET
           ) -> list[tuple[int, int]]:
    if analyzer is None:  # keyword: the whole value or nothing
        hit = text in targets.terms or any(test(text) for test in targets.patterns)
        return [(0, len(text))] if hit else []
    spans = []
    for token in ANALYZERS[analyzer].tokens(text[:limit]):
        term = token["token"]
        if term in targets.terms or any(test(term) for test in targets.patterns):
            spans.append((token["start_offset"], token["end_offset"]))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:  # Overlapping CJK bigrams become one marked run.
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _mark(text: str, spans: list[tuple[int, int]], options: FieldSpec, offset: int = 0) -> str:
    out = []
    cursor = 0
    for number, (start, end) in enumerate(spans):
        start, end = start - offset, end - offset
        pre = options.pre_tags[number % len(options.pre_tags)] if options.pre_tags else "<em>"
        post = options.post_tags[min(number, len(options.post_tags) - 1)] if options.post_tags else "</em>"
        out.append(_encode(text[cursor:start], options))
        out.append(pre + _encode(text[start:end], options) + post)
        cursor = end
    out.append(_encode(text[cursor:], options))
    return "".join(out)


def _field_fragments(source: dict[str, Any], path: str, targets: Wanted, options: FieldSpec,
                     analyzer: str | None, ignore_above: int | None = None) -> list[str]:
    scored: list[tuple[int, int, str]] = []  # (matches, order, fragment)
    order = 0
    for value in _values(source, path):
        if ignore_above is not None and len(value) > ignore_above:
            continue
        spans = _spans(value, targets, analyzer, options.max_analyzed_offset or MAX_ANALYZED_OFFSET)
        if not spans:
            continue
        if options.number_of_fragments == 0:
            scored.append((len(spans), order, _mark(value, spans, options)))
            order += 1
            continue
        for start, end in _windows(value, spans, options.fragment_size):
            inside = [(s, e) for s, e in spans if s >= start and e <= end]
            scored.append((len(inside), order, _mark(value[start:end], inside, options, offset=start)))
            order += 1
    if options.order == "score":
        scored.sort(key=lambda item: (-item[0], item[1]))
    limit = options.number_of_fragments or len(scored)
    return [fragment for _n, _o, fragment in scored[:limit]]


def _windows(text: str, spans: list[tuple[int, int]], size: int) -> Iterator[tuple[int, int]]:
    """Consecutive fragments of about `size` characters that contain at least one marked span."""
    size = max(size, 1)
    start = 0
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            space = text.rfind(" ", start + size // 2, end)
            if space > start:
                end = space
        if any(s < end and e > start for s, e in spans):
            # Never cut a marked span in two: extend the fragment to its end.
            for s, e in spans:
                if s < end < e:
                    end = e
            yield start, end
        start = end
        while start < len(text) and text[start] == " ":
            start += 1
