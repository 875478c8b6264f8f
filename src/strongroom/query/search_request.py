"""A `_search` request (URL parameters and body) → a checked, typed search request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..engine import plan as p
from ..engine.index import parse_time_value
from ..engine.search import DEFAULT_TRACK_TOTAL, SearchSpec, SortKey
from ..errors import ActionRequestValidationError, IllegalArgumentError, RequestError
from .dsl import QueryParsingError, parse_query
from ..engine.aggs import AggNode
from .aggs_request import parse_aggregations
from .fields import FieldRequest, parse_field_requests
from .highlight import HighlightSpec, parse_highlight
from .source import SourceFilter, source_filter_from_body, source_filter_from_params

MAX_RESULT_WINDOW_DEFAULT = 10_000
BODY_KEYS = {"pit", "query", "from", "size", "sort", "_source", "track_total_hits", "track_scores", "search_after",
             "aggs", "aggregations", "post_filter", "highlight", "explain", "version", "seq_no_primary_term",
             "stored_fields", "docvalue_fields", "min_score", "timeout", "terminate_after", "profile", "stats",
             "fields"}
UNSUPPORTED_BODY_KEYS = {"collapse": "field collapsing", "rescore": "rescoring", "suggest": "suggesters",
                         "script_fields": "script fields", "runtime_mappings": "runtime fields",
                         "indices_boost": "indices_boost", "knn": "kNN search",
                         "ext": "search extensions", "slice": "sliced scrolls", "rank": "ranking"}
SEARCH_PARAMS = ("q", "df", "default_operator", "analyzer", "analyze_wildcard", "lenient", "from", "size", "sort",
                 "_source", "_source_includes", "_source_excludes", "track_total_hits", "track_scores", "explain",
                 "version", "seq_no_primary_term", "stored_fields", "docvalue_fields", "timeout", "terminate_after",
                 "search_type", "request_cache", "preference", "routing", "scroll", "allow_partial_search_results",
                 "batched_reduce_size", "ccs_minimize_roundtrips", "max_concurrent_shard_requests",
                 "pre_filter_shard_size", "rest_total_hits_as_int", "typed_keys", "ignore_unavailable",
                 "allow_no_indices", "expand_wildcards", "ignore_throttled", "min_compatible_shard_node",
                 "include_named_queries_score")


@dataclass
class SearchRequest:
    spec: SearchSpec
    source: SourceFilter = field(default_factory=SourceFilter)
    aggs: dict[str, AggNode] | None = None
    highlight: HighlightSpec | None = None
    version: bool = False
    seq_no_primary_term: bool = False
    stored_fields: tuple[str, ...] | None = None
    docvalue_fields: list[FieldRequest] = field(default_factory=list)
    fields: list[FieldRequest] = field(default_factory=list)
    total_as_int: bool = False
    typed_keys: bool = False
    scroll: str | None = None
    pit: tuple[str, str | None] | None = None  # (id, keep_alive)


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise IllegalArgumentError(f"[{name}] must be an integer")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise IllegalArgumentError(f"Failed to parse int parameter [{name}] with value [{value}]") from None
    if not -(2**31) <= number < 2**31:
        raise IllegalArgumentError(f"Numeric value ({number}) out of range of int (-2147483648 - 2147483647)")
    return number


def _bool(value: Any, name: str) -> bool:
    if value in (True, "true", ""):
        return True
    if value in (False, "false"):
        return False
    raise IllegalArgumentError(f"Failed to parse value [{value}] as only [true] or [false] are allowed.")


def parse_sort(value: Any) -> list[SortKey] | None:
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    keys = []
    for item in items:
        if isinstance(item, str):
            name = item
            order = "desc" if name == "_score" else "asc"
            keys.append(SortKey(name, order))
            continue
        if not isinstance(item, dict) or len(item) != 1:
            raise QueryParsingError("[sort] each sort must be a field name or an object with one field")
        name, spec = next(iter(item.items()))
        if isinstance(spec, str):
            keys.append(SortKey(name, _order(spec)))
            continue
        if not isinstance(spec, dict):
            raise QueryParsingError(f"[sort] malformed sort for [{name}]")
        unknown = set(spec) - {"order", "missing", "mode", "unmapped_type", "numeric_type", "format"}
        if unknown:
            raise QueryParsingError(f"[field_sort] unknown field [{sorted(unknown)[0]}]")
        if spec.get("mode") not in (None, "min", "max", "sum", "avg", "median"):
            raise QueryParsingError(f"[sort] unknown sort mode [{spec['mode']}]")
        default_order = "desc" if name == "_score" else "asc"
        keys.append(SortKey(name, _order(spec.get("order", default_order)), spec.get("missing", "_last"),
                            spec.get("mode"), spec.get("unmapped_type")))
    return keys


def _order(value: Any) -> str:
    text = str(value).lower()
    if text not in ("asc", "desc"):
        raise QueryParsingError(f"[sort] order must be asc or desc, got [{value}]")
    return text


def _sort_param(text: str) -> list[dict[str, Any] | str]:
    out: list[dict[str, Any] | str] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, _, order = part.partition(":")
        out.append({name: order} if order else name)
    return out


def _track_total(value: Any) -> bool | int:
    if value is True or value == "true":
        return True
    if value is False or value == "false":
        return False
    number = _int(value, "track_total_hits")
    if number == -1:
        return False  # Elasticsearch's TRACK_TOTAL_HITS_DISABLED
    if number < 0:
        raise IllegalArgumentError("[track_total_hits] parameter must be positive or equals to -1, got "
                                   f"{number}")
    return number


def parse_search_request(body: dict[str, Any] | None, params: dict[str, str], *, max_result_window: int
                         = MAX_RESULT_WINDOW_DEFAULT) -> SearchRequest:
    body = dict(body or {})
    if "aggregations" in body and "aggs" in body:
        raise QueryParsingError("Found two aggregation type definitions: [aggs] and [aggregations]")
    for key in body:
        if key in UNSUPPORTED_BODY_KEYS:
            raise RequestError(f"[{key}] ({UNSUPPORTED_BODY_KEYS[key]}) is not supported by Strongroom")
        if key not in BODY_KEYS:
            raise QueryParsingError(f"Unknown key for a START_OBJECT in [{key}].")
    if body.get("profile") not in (None, False, "false"):
        raise RequestError("[profile] (the search profiler) is not supported by Strongroom")
    query_body = body.get("query")
    if "q" in params:
        if query_body is not None:
            raise IllegalArgumentError("request [_search] cannot use both a [q] parameter and a body query")
        qs: dict[str, Any] = {"query": params["q"]}
        for name, target in (("df", "default_field"), ("default_operator", "default_operator"),
                             ("analyzer", "analyzer"), ("lenient", "lenient"), ("analyze_wildcard",
                                                                                "analyze_wildcard")):
            if name in params:
                qs[target] = params[name]
        query_body = {"query_string": qs}
    query = parse_query(query_body) if query_body is not None else p.MatchAll()
    post_filter = parse_query(body["post_filter"]) if body.get("post_filter") is not None else None

    offset = _int(params.get("from", body.get("from", 0)), "from")
    size = _int(params.get("size", body.get("size", 10)), "size")
    if offset < 0:
        raise IllegalArgumentError(f"[from] parameter cannot be negative, found [{offset}]")
    if size < 0:
        raise IllegalArgumentError(f"[size] parameter cannot be negative, found [{size}]")
    scroll = params.get("scroll")
    if scroll is not None:
        if size == 0:
            raise ActionRequestValidationError("[size] cannot be [0] in a scroll context")
        if "request_cache" in params and params["request_cache"] in ("true", ""):
            raise IllegalArgumentError("[request_cache] cannot be used in a scroll context")
    if offset + size > max_result_window and scroll is None:
        raise IllegalArgumentError(f"Result window is too large, from + size must be less than or equal to: "
                                   f"[{max_result_window}] but was [{offset + size}]. See the scroll api for a more "
                                   f"efficient way to request large data sets. This limit can be set by changing "
                                   f"the [index.max_result_window] index level setting.")
    sort_value = _sort_param(params["sort"]) if "sort" in params else body.get("sort")
    sort = parse_sort(sort_value)
    pit = None
    if body.get("pit") is not None:
        spec_pit = body["pit"]
        if not isinstance(spec_pit, dict) or not isinstance(spec_pit.get("id"), str):
            raise QueryParsingError("[pit] requires an [id]")
        keep = spec_pit.get("keep_alive")
        if keep is not None and not isinstance(keep, str):
            raise QueryParsingError("[pit] [keep_alive] must be a time value")
        pit = (spec_pit["id"], keep)
        # A point in time pages with search_after: the shard-and-document tie-breaker keeps the order total.
        sort = (sort or [SortKey("_score", "desc")])
        if not any(k.field in ("_shard_doc", "_doc") for k in sort):
            sort = sort + [SortKey("_shard_doc", "asc")]
    search_after = body.get("search_after")
    if search_after is not None:
        if not isinstance(search_after, list) or not search_after:
            raise QueryParsingError("[search_after] must be a non-empty array")
        if offset > 0:
            raise IllegalArgumentError("[from] parameter must be set to 0 when [search_after] is used")
        if sort is None:
            sort = [SortKey("_score", "desc")]
    explicit = "track_total_hits" in params or "track_total_hits" in body
    track = _track_total(params.get("track_total_hits", body.get("track_total_hits", DEFAULT_TRACK_TOTAL)))
    total_as_int = _bool(params.get("rest_total_hits_as_int", False), "rest_total_hits_as_int")
    if total_as_int:
        if explicit and track is not True and track is not False:
            raise IllegalArgumentError(f"[rest_total_hits_as_int] cannot be used if the tracking of total hits is "
                                       f"not accurate, got {track}")
        if not explicit:
            track = True  # Elasticsearch tracks exactly when totals are rendered as an integer.
    min_score = body.get("min_score")
    if min_score is not None and (isinstance(min_score, bool) or not isinstance(min_score, (int, float))):
        raise QueryParsingError("[min_score] must be a number")
    timeout_value = params.get("timeout", body.get("timeout"))
    timeout = None
    if timeout_value is not None:
        timeout = parse_time_value(timeout_value, "timeout")
    spec = SearchSpec(query, post_filter, offset, size, sort, search_after, track,
                      float(min_score) if min_score is not None else None,
                      _bool(params.get("explain", body.get("explain", False)), "explain"),
                      _bool(params.get("track_scores", body.get("track_scores", False)), "track_scores"),
                      _bool(params.get("include_named_queries_score", False), "include_named_queries_score"),
                      timeout)

    source = source_filter_from_body(body["_source"]) if "_source" in body else SourceFilter()
    if any(k in params for k in ("_source", "_source_includes", "_source_excludes")):
        source = source_filter_from_params(params.get("_source"), params.get("_source_includes"),
                                           params.get("_source_excludes"))
    stored = body.get("stored_fields", params.get("stored_fields"))
    stored_fields = None
    if stored is not None:
        if isinstance(stored, str):
            stored_fields = tuple(s.strip() for s in stored.split(","))
        elif isinstance(stored, list) and all(isinstance(s, str) for s in stored):
            stored_fields = tuple(stored)
        else:
            raise QueryParsingError("[stored_fields] must be a field name or an array of field names")
        explicit_source = "_source" in body or any(k in params for k in ("_source", "_source_includes",
                                                                         "_source_excludes"))
        if stored_fields == ("_none_",) or ("_source" not in stored_fields and not explicit_source):
            source = SourceFilter(fetch=False)  # Asking for stored fields turns `_source` off unless named.
    aggs_body = body.get("aggs", body.get("aggregations"))
    if aggs_body is not None and not isinstance(aggs_body, dict):
        raise QueryParsingError("[aggs] must be an object")
    aggs = parse_aggregations(aggs_body) if aggs_body else None
    highlight = parse_highlight(body["highlight"]) if body.get("highlight") is not None else None
    docvalue = parse_field_requests(params.get("docvalue_fields", body.get("docvalue_fields")), "docvalue_fields")
    fields = parse_field_requests(body.get("fields"), "fields")
    if stored_fields:
        fields += [FieldRequest(name, stored=True) for name in stored_fields if not name.startswith("_")]
    return SearchRequest(spec, source, aggs, highlight,
                         _bool(params.get("version", body.get("version", False)), "version"),
                         _bool(params.get("seq_no_primary_term", body.get("seq_no_primary_term", False)),
                               "seq_no_primary_term"), stored_fields, docvalue, fields,
                         total_as_int, _bool(params.get("typed_keys", False), "typed_keys"), scroll, pit)
