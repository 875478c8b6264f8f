"""A search request's `aggs` object → the engine's typed aggregation tree, checked.

Errors carry Elasticsearch's types and wording. Queries inside `filter` and `filters`
aggregations are parsed here with the query DSL parser, so the engine only sees plan nodes.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

from ..engine import aggs as a
from ..engine.dates import DateFormat, DateFormatError
from ..engine.plan import _zone
from ..errors import IllegalArgumentError, JsonParseError, RequestError
from .dsl import QueryParsingError, parse_query
from .source import source_filter_from_body

MAX_INNER_RESULT_WINDOW = 100  # index.max_inner_result_window

_NAME = re.compile(r"[^\[\]>]+")
_CALENDAR = {"1s": "second", "second": "second", "1m": "minute", "minute": "minute", "1h": "hour", "hour": "hour",
             "1d": "day", "day": "day", "1w": "week", "week": "week", "1M": "month", "month": "month",
             "1q": "quarter", "quarter": "quarter", "1y": "year", "year": "year"}
_TIME_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_TIME_VALUE = re.compile(r"^([+-]?)(\d+)(ms|s|m|h|d)$")
UNSUPPORTED = {"composite", "nested", "reverse_nested", "significant_terms", "significant_text", "rare_terms",
               "multi_terms", "auto_date_histogram", "variable_width_histogram", "geo_distance", "geohash_grid",
               "geotile_grid", "geo_bounds", "geo_centroid", "sampler", "diversified_sampler",
               "adjacency_matrix", "weighted_avg", "median_absolute_deviation", "percentile_ranks",
               "scripted_metric", "string_stats", "boxplot", "t_test", "rate", "matrix_stats", "top_metrics",
               "avg_bucket", "max_bucket", "min_bucket", "sum_bucket", "stats_bucket", "extended_stats_bucket",
               "percentiles_bucket", "bucket_script", "bucket_selector", "bucket_sort", "cumulative_sum",
               "derivative", "moving_fn", "serial_diff", "categorize_text", "frequent_item_sets", "random_sampler",
               "time_series", "children", "parent", "terms_set"}
_METRIC_PARAMS = {"field", "missing", "format", "script", "value_type"}
_SINGLE_BUCKET = (a.FilterAgg, a.MissingAgg, a.GlobalAgg)


class AggregationInitializationError(RequestError):
    es_type = "aggregation_initialization_exception"


def parse_aggregations(body: Any) -> dict[str, a.AggNode]:
    """Parses the request's `aggs`/`aggregations` object."""
    aggs = _parse_level(body, depth=1, parent=None)
    a.check_depth(aggs)
    return aggs


# -- structure --------------------------------------------------------------------------------
def _token(value: Any) -> str:
    if isinstance(value, dict):
        return "START_OBJECT"
    if isinstance(value, list):
        return "START_ARRAY"
    if isinstance(value, str):
        return "VALUE_STRING"
    if isinstance(value, bool):
        return "VALUE_BOOLEAN"
    if isinstance(value, (int, float)):
        return "VALUE_NUMBER"
    return "VALUE_NULL"


def _parse_level(body: Any, *, depth: int, parent: tuple[str, str] | None) -> dict[str, a.AggNode]:
    if not isinstance(body, dict):
        raise QueryParsingError(f"Unexpected token {_token(body)} in [aggs].")
    if depth > a.MAX_DEPTH:
        raise IllegalArgumentError(f"The aggregations are nested more than [{a.MAX_DEPTH}] levels deep")
    out: dict[str, a.AggNode] = {}
    for name, definition in body.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise QueryParsingError(f"Invalid aggregation name [{name}]. Aggregation names can contain any character "
                                    "except '[', ']', and '>'")
        if not isinstance(definition, dict):
            raise QueryParsingError(f"Aggregation definition for [{name} starts with a [{_token(definition)}], "
                                    "expected a [START_OBJECT].")
        kind = None
        spec: Any = None
        sub_body: Any = None
        meta: dict[str, Any] | None = None
        for key, value in definition.items():
            if key in ("aggs", "aggregations"):
                if sub_body is not None:
                    raise QueryParsingError(f"Found two sub aggregation definitions under [{name}]")
                if not isinstance(value, dict):
                    raise QueryParsingError(f"Expected [START_OBJECT] under [{key}], but got a [{_token(value)}] in "
                                            f"[{name}]")
                sub_body = value
            elif key == "meta":
                if not isinstance(value, dict):
                    raise QueryParsingError(f"Expected [START_OBJECT] under [meta], but got a [{_token(value)}] in "
                                            f"[{name}]")
                meta = value
            else:
                if kind is not None:
                    raise QueryParsingError(f"Found two aggregation type definitions in [{name}]: [{kind}] and "
                                            f"[{key}]")
                if not isinstance(value, dict):
                    raise QueryParsingError(f"Expected [START_OBJECT] under [{key}], but got a [{_token(value)}] in "
                                            f"[{name}]")
                kind, spec = key, value
        if kind is None:
            raise QueryParsingError(f"Missing definition for aggregation [{name}]")
        if kind in UNSUPPORTED:
            raise RequestError(f"aggregation type [{kind}] is not supported by Strongroom")
        parser = _PARSERS.get(kind)
        if parser is None:
            raise QueryParsingError(f"Unknown aggregation type [{kind}]")
        if kind == "global" and parent is not None:
            raise a.AggregationExecutionError(f"Aggregation [{parent[0]}] cannot have a global sub-aggregation "
                                              f"[{name}]. Global aggregations can only be defined as top level "
                                              "aggregations")
        subs = _parse_level(sub_body, depth=depth + 1, parent=(name, kind)) if sub_body else {}
        if subs and kind in ("avg", "min", "max", "sum", "stats", "extended_stats", "value_count", "cardinality",
                             "percentiles", "top_hits"):
            raise AggregationInitializationError(f"Aggregator [{name}] of type [{kind}] cannot accept "
                                                 "sub-aggregations")
        node = parser(name, kind, spec, subs)
        out[name] = dataclasses.replace(node, meta=meta) if meta is not None else node
    return out


# -- parameter helpers ------------------------------------------------------------------------------
def _check_keys(spec: dict[str, Any], allowed: set[str], kind: str) -> None:
    for key in spec:
        if key not in allowed:
            raise JsonParseError(f"[{kind}] unknown field [{key}]")
    if "script" in spec:
        raise RequestError(f"[{kind}] scripts are not supported by Strongroom")


def _required_field(spec: dict[str, Any], kind: str) -> str:
    value = spec.get("field")
    if value is None:
        raise IllegalArgumentError("Required one of fields [field, script], but none were specified. ")
    if not isinstance(value, str):
        raise JsonParseError(f"[{kind}] field doesn't support values of type: {_token(value)}")
    return value


def _int(value: Any, key: str, kind: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise JsonParseError(f"[{kind}] {key} doesn't support values of type: {_token(value)}")
    try:
        number = float(value)
    except ValueError:
        raise JsonParseError(f"[{kind}] failed to parse field [{key}]") from None
    if not number.is_integer():
        raise JsonParseError(f"[{kind}] failed to parse field [{key}]")
    return int(number)


def _number(value: Any, key: str, kind: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise JsonParseError(f"[{kind}] {key} doesn't support values of type: {_token(value)}")
    try:
        number = float(value)
    except ValueError:
        raise JsonParseError(f"[{kind}] failed to parse field [{key}]") from None
    if not math.isfinite(number):
        raise JsonParseError(f"[{kind}] failed to parse field [{key}]")
    return number


def _bool(value: Any, key: str, kind: str) -> bool:
    if value in (True, "true"):
        return True
    if value in (False, "false"):
        return False
    raise JsonParseError(f"[{kind}] failed to parse field [{key}]")


def _string(value: Any, key: str, kind: str) -> str:
    if not isinstance(value, str):
        raise JsonParseError(f"[{kind}] {key} doesn't support values of type: {_token(value)}")
    return value


def _format(spec: dict[str, Any], kind: str) -> str | None:
    value = spec.get("format")
    if value is None:
        return None
    _string(value, "format", kind)
    return value


def _date_format_checked(value: str | None) -> None:
    if value is None:
        return
    try:
        DateFormat.compile(value)
    except DateFormatError as exc:
        raise IllegalArgumentError(f"Invalid format: [{value}]: {exc}") from None


def _time_zone(spec: dict[str, Any], kind: str) -> str | None:
    value = spec.get("time_zone")
    if value is None:
        return None
    _string(value, "time_zone", kind)
    try:
        _zone(value)
    except RequestError:
        raise IllegalArgumentError(f"Unknown time-zone ID: {value}") from None
    return value


def _scalar(value: Any, key: str, kind: str) -> Any:
    if isinstance(value, (dict, list)):
        raise JsonParseError(f"[{kind}] {key} doesn't support values of type: {_token(value)}")
    return value


def _order(value: Any, kind: str, name: str, subs: dict[str, a.AggNode]) -> a.Order:
    items = value if isinstance(value, list) else [value]
    order: list[tuple[str, str]] = []
    for item in items:
        if not isinstance(item, dict) or not item:
            raise QueryParsingError(f"[{kind}] order must be an object or an array of objects")
        for path, direction in item.items():
            if not isinstance(direction, str) or direction.lower() not in ("asc", "desc"):
                raise QueryParsingError(f"Unknown {kind} order direction [{direction}]")
            if path == "_term":
                path = "_key"
            if path not in ("_count", "_key"):
                _check_order_path(path, name, subs)
            order.append((path, direction.lower()))
    return tuple(order)


def _check_order_path(path: str, name: str, subs: dict[str, a.AggNode]) -> None:
    elements = path.split(">")
    current = subs
    for i, element in enumerate(elements):
        sub_name, _, metric = element.partition(".")
        if "[" in sub_name and sub_name.endswith("]"):
            sub_name, _, metric = sub_name[:-1].partition("[")
        node = current.get(sub_name)
        if node is None:
            raise a.AggregationExecutionError(
                f"Invalid aggregation order path [{path}]. The provided aggregation [{sub_name}] either does not "
                "exist, or is a pipeline aggregation and cannot be used to sort the buckets.")
        last = i == len(elements) - 1
        if not last:
            if not isinstance(node, _SINGLE_BUCKET):
                raise a.AggregationExecutionError(
                    f"Invalid aggregation order path [{path}]. Buckets can only be sorted on a sub-aggregator path "
                    "that is built out of zero or more single-bucket aggregations within the path and a final "
                    "single-bucket or a metrics aggregation at the path end.")
            current = node.aggs
            continue
        if isinstance(node, (a.MetricAgg, a.CardinalityAgg, a.PercentilesAgg, _SINGLE_BUCKET)):
            multi_value = isinstance(node, a.PercentilesAgg) or (isinstance(node, a.MetricAgg) and
                                                                 node.kind in ("stats", "extended_stats"))
            if multi_value and not metric:
                raise a.AggregationExecutionError(
                    f"Invalid aggregation order path [{path}]. When ordering on a multi-value metrics aggregation a "
                    "metric name must be specified.")
            if isinstance(node, a.MetricAgg) and not multi_value and metric and metric != "value":
                raise a.AggregationExecutionError(
                    f"Invalid aggregation order path [{path}]. The single-value metric [{sub_name}] has no metric "
                    f"[{metric}].")
            continue
        raise a.AggregationExecutionError(
            f"Invalid aggregation order path [{path}]. Buckets can only be sorted on a sub-aggregator path that is "
            "built out of zero or more single-bucket aggregations within the path and a final single-bucket or a "
            "metrics aggregation at the path end.")


def _time_value_ms(value: Any, setting: str, *, signed: bool = False) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    match = _TIME_VALUE.match(text)
    if not match or (match.group(1) and not signed):
        raise IllegalArgumentError(f"failed to parse setting [{setting}] with value [{value}] as a time value: unit "
                                   "is missing or unrecognized")
    number = int(match.group(2)) * _TIME_UNITS_MS[match.group(3)]
    return -number if match.group(1) == "-" else number


def _bounds(value: Any, key: str, kind: str, name: str, *, numeric: bool) -> tuple[Any, Any]:
    if not isinstance(value, dict):
        raise JsonParseError(f"[{kind}] {key} doesn't support values of type: {_token(value)}")
    for k in value:
        if k not in ("min", "max"):
            raise JsonParseError(f"[{key}] unknown field [{k}]")
    low, high = value.get("min"), value.get("max")
    if numeric:
        low = None if low is None else _number(low, f"{key}.min", kind)
        high = None if high is None else _number(high, f"{key}.max", kind)
        if low is not None and high is not None and low > high:
            raise IllegalArgumentError(f"[{key}.min][{low}] cannot be greater than [{key}.max][{high}] for "
                                       f"histogram aggregation [{name}]")
    else:
        low = None if low is None else _scalar(low, f"{key}.min", kind)
        high = None if high is None else _scalar(high, f"{key}.max", kind)
    return low, high


def _include(value: Any, key: str, kind: str) -> str | tuple[Any, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        for item in value:
            _scalar(item, key, kind)
        return tuple(value)
    if isinstance(value, dict):
        raise RequestError(f"[{kind}] partitioned [{key}] is not supported by Strongroom")
    raise JsonParseError(f"[{kind}] {key} doesn't support values of type: {_token(value)}")


# -- one parser per aggregation type --------------------------------------------------------------
def _terms(name: str, kind: str, spec: dict[str, Any], subs: dict[str, a.AggNode]) -> a.AggNode:
    _check_keys(spec, {"field", "size", "shard_size", "order", "min_doc_count", "shard_min_doc_count", "missing",
                       "include", "exclude", "format", "show_term_doc_count_error", "execution_hint",
                       "collect_mode", "value_type", "script"}, kind)
    path = _required_field(spec, kind)
    size = _int(spec.get("size", 10), "size", kind)
    if size <= 0:
        raise IllegalArgumentError(f"[size] must be greater than 0. Found [{size}] in [{name}]")
    shard_size = None
    if spec.get("shard_size") is not None:
        shard_size = _int(spec["shard_size"], "shard_size", kind)
        if shard_size <= 0 and shard_size != -1:
            raise IllegalArgumentError(f"[shard_size] must be greater than 0. Found [{shard_size}] in [{name}]")
        shard_size = None if shard_size == -1 else shard_size
    min_doc_count = _int(spec.get("min_doc_count", 1), "min_doc_count", kind)
    if min_doc_count < 0:
        raise IllegalArgumentError(f"[min_doc_count] must be greater than or equal to 0. Found [{min_doc_count}] "
                                   f"in [{name}]")
    if spec.get("shard_min_doc_count") is not None and _int(spec["shard_min_doc_count"], "shard_min_doc_count",
                                                             kind) < 0:
        raise IllegalArgumentError(f"[shard_min_doc_count] must be greater than or equal to 0. Found "
                                   f"[{spec['shard_min_doc_count']}] in [{name}]")
    order = _order(spec["order"], kind, name, subs) if "order" in spec else (("_count", "desc"),)
    for key in ("execution_hint", "collect_mode"):
        if key in spec:
            _string(spec[key], key, kind)
    fmt = _format(spec, kind)
    return a.TermsAgg(path, size, shard_size, order, min_doc_count,
                      _scalar(spec.get("missing"), "missing", kind), _include(spec.get("include"), "include", kind),
                      _include(spec.get("exclude"), "exclude", kind), fmt,
                      _bool(spec.get("show_term_doc_count_error", False), "show_term_doc_count_error", kind), subs,
                      value_type=_value_type(spec, kind))


def _value_type(spec: dict[str, Any], kind: str) -> str | None:
    value = spec.get("value_type")
    if value is None:
        return None
    _string(value, "value_type", kind)
    if value not in a.VALUE_TYPES:
        raise IllegalArgumentError(f"Unknown value type [{value}]")
    return value


def _ip(value: Any, key: str, kind: str) -> str:
    if not isinstance(value, str):
        raise JsonParseError(f"[{kind}] {key} doesn't support values of type: {_token(value)}")
    try:
        return a.ip_from_int(a.ip_to_int(value))
    except ValueError:
        raise IllegalArgumentError(f"'{value}' is not an IP string literal.") from None


def _ip_range(name: str, kind: str, spec: dict[str, Any], subs: dict[str, a.AggNode]) -> a.AggNode:
    _check_keys(spec, {"field", "ranges", "keyed", "missing", "script", "value_type"}, kind)
    path = _required_field(spec, kind)
    ranges = spec.get("ranges")
    if ranges is None or ranges == []:
        raise IllegalArgumentError(f"No [ranges] specified for the [{name}] aggregation")
    if not isinstance(ranges, list):
        raise JsonParseError(f"[{kind}] ranges doesn't support values of type: {_token(ranges)}")
    items = []
    for item in ranges:
        if not isinstance(item, dict):
            raise JsonParseError(f"[{kind}] ranges doesn't support values of type: {_token(item)}")
        for key in item:
            if key not in ("from", "to", "key", "mask"):
                raise JsonParseError(f"[range] unknown field [{key}]")
        key = item.get("key")
        if key is not None and not isinstance(key, str):
            key = str(key)
        mask = item.get("mask")
        if mask is not None:
            if item.get("from") is not None or item.get("to") is not None:
                raise IllegalArgumentError("Cannot specify both a mask and [from] or [to] in the same range")
            if not isinstance(mask, str):
                raise JsonParseError(f"[{kind}] mask doesn't support values of type: {_token(mask)}")
            try:
                low, high = a.ip_mask_bounds(mask)
            except ValueError:
                raise IllegalArgumentError(f"Expected [ip/prefix] but was [{mask}]") from None
            items.append(a.IpRangeItem(key if key is not None else mask, a.ip_from_int(low),
                                       None if high is None else a.ip_from_int(high)))
            continue
        start = None if item.get("from") is None else _ip(item["from"], "from", kind)
        end = None if item.get("to") is None else _ip(item["to"], "to", kind)
        items.append(a.IpRangeItem(key, start, end))
    missing = spec.get("missing")
    if missing is not None:
        missing = _ip(missing, "missing", kind)
    return a.IpRangeAgg(path, tuple(items), _bool(spec.get("keyed", False), "keyed", kind), missing, subs)


def _histogram(name: str, kind: str, spec: dict[str, Any], subs: dict[str, a.AggNode]) -> a.AggNode:
    _check_keys(spec, {"field", "interval", "offset", "min_doc_count", "extended_bounds", "hard_bounds", "missing",
                       "keyed", "order", "format", "script", "value_type"}, kind)
    path = _required_field(spec, kind)
    interval = _number(spec["interval"], "interval", kind) if spec.get("interval") is not None else 0.0
    if interval <= 0:
        raise IllegalArgumentError(f"[interval] must be >0 for histogram aggregation [{name}]")
    min_doc_count = _int(spec.get("min_doc_count", 0), "min_doc_count", kind)
    if min_doc_count < 0:
        raise IllegalArgumentError(f"[min_doc_count] must be greater than or equal to 0. Found [{min_doc_count}] "
                                   f"in [{name}]")
    extended = _bounds(spec["extended_bounds"], "extended_bounds", kind, name, numeric=True) \
        if spec.get("extended_bounds") is not None else None
    hard = _bounds(spec["hard_bounds"], "hard_bounds", kind, name, numeric=True) \
        if spec.get("hard_bounds") is not None else None
    missing = _number(spec["missing"], "missing", kind) if spec.get("missing") is not None else None
    order = _order(spec["order"], kind, name, subs) if "order" in spec else (("_key", "asc"),)
    return a.HistogramAgg(path, interval, _number(spec.get("offset", 0), "offset", kind), min_doc_count, extended,
                          hard, missing, _bool(spec.get("keyed", False), "keyed", kind), order, _format(spec, kind),
                          subs)


def _date_histogram(name: str, kind: str, spec: dict[str, Any], subs: dict[str, a.AggNode]) -> a.AggNode:
    _check_keys(spec, {"field", "calendar_interval", "fixed_interval", "interval", "time_zone", "format", "offset",
                       "min_doc_count", "extended_bounds", "hard_bounds", "missing", "keyed", "order", "script",
                       "value_type"}, kind)
    path = _required_field(spec, kind)
    calendar, fixed, legacy = spec.get("calendar_interval"), spec.get("fixed_interval"), spec.get("interval")
    if calendar is not None and fixed is not None:
        raise IllegalArgumentError("Cannot use [fixed_interval] with [calendar_interval] configuration option.")
    if legacy is not None and (calendar is not None or fixed is not None):
        which = "calendar_interval" if calendar is not None else "fixed_interval"
        raise IllegalArgumentError(f"Cannot use [interval] with [{which}] configuration option.")
    unit = None
    fixed_ms = None
    if calendar is not None:
        unit = _CALENDAR.get(str(calendar))
        if unit is None:
            raise IllegalArgumentError(f"The supplied interval [{calendar}] could not be parsed as a calendar "
                                       "interval.")
    elif fixed is not None:
        fixed_ms = _time_value_ms(fixed, "date_histogram.fixedInterval")
    elif legacy is not None:
        unit = _CALENDAR.get(str(legacy))
        if unit is None:
            fixed_ms = _time_value_ms(legacy, "date_histogram.interval")
    else:
        raise IllegalArgumentError("Invalid interval specified, must be non-null and non-empty")
    if fixed_ms is not None and fixed_ms <= 0:
        raise IllegalArgumentError("Zero or negative time interval not supported")
    min_doc_count = _int(spec.get("min_doc_count", 0), "min_doc_count", kind)
    if min_doc_count < 0:
        raise IllegalArgumentError(f"[min_doc_count] must be greater than or equal to 0. Found [{min_doc_count}] "
                                   f"in [{name}]")
    fmt = _format(spec, kind)
    _date_format_checked(fmt)
    offset = _time_value_ms(spec["offset"], "date_histogram.offset", signed=True) \
        if spec.get("offset") is not None else 0
    extended = _bounds(spec["extended_bounds"], "extended_bounds", kind, name, numeric=False) \
        if spec.get("extended_bounds") is not None else None
    hard = _bounds(spec["hard_bounds"], "hard_bounds", kind, name, numeric=False) \
        if spec.get("hard_bounds") is not None else None
    order = _order(spec["order"], kind, name, subs) if "order" in spec else (("_key", "asc"),)
    return a.DateHistogramAgg(path, unit, fixed_ms, _time_zone(spec, kind), fmt, offset, min_doc_count, extended,
                              hard, _scalar(spec.get("missing"), "missing", kind),
                              _bool(spec.get("keyed", False), "keyed", kind), order, subs)


def _range(name: str, kind: str, spec: dict[str, Any], subs: dict[str, a.AggNode]) -> a.AggNode:
    allowed = {"field", "ranges", "keyed", "format", "missing", "script", "value_type"}
    if kind == "date_range":
        allowed.add("time_zone")
    _check_keys(spec, allowed, kind)
    path = _required_field(spec, kind)
    ranges = spec.get("ranges")
    if ranges is None or ranges == []:
        raise IllegalArgumentError(f"No [ranges] specified for the [{name}] aggregation")
    if not isinstance(ranges, list):
        raise JsonParseError(f"[{kind}] ranges doesn't support values of type: {_token(ranges)}")
    items = []
    for item in ranges:
        if not isinstance(item, dict):
            raise JsonParseError(f"[{kind}] ranges doesn't support values of type: {_token(item)}")
        for key in item:
            if key not in ("from", "to", "key"):
                raise JsonParseError(f"[range] unknown field [{key}]")
        key = item.get("key")
        if key is not None and not isinstance(key, str):
            key = str(key)
        start, end = item.get("from"), item.get("to")
        if kind == "range":
            start = None if start is None else _range_number(start, "from", kind)
            end = None if end is None else _range_number(end, "to", kind)
        else:
            start = None if start is None else _scalar(start, "from", kind)
            end = None if end is None else _scalar(end, "to", kind)
        items.append(a.RangeItem(key, start, end))
    fmt = _format(spec, kind)
    if kind == "date_range":
        _date_format_checked(fmt)
    return a.RangeAgg(path, tuple(items), _bool(spec.get("keyed", False), "keyed", kind), fmt,
                      _time_zone(spec, kind) if kind == "date_range" else None,
                      _scalar(spec.get("missing"), "missing", kind), kind == "date_range", subs)


def _range_number(value: Any, key: str, kind: str) -> Any:
    if isinstance(value, str):
        return value  # a date on a date field; numbers as strings are parsed by the engine
    return _number(value, key, kind)


def _metric(name: str, kind: str, spec: dict[str, Any], subs: dict[str, a.AggNode]) -> a.AggNode:
    allowed = set(_METRIC_PARAMS)
    if kind == "extended_stats":
        allowed.add("sigma")
    _check_keys(spec, allowed, kind)
    path = _required_field(spec, kind)
    sigma = 2.0
    if "sigma" in spec:
        sigma = _number(spec["sigma"], "sigma", kind)
        if sigma < 0:
            raise IllegalArgumentError(f"[sigma] must be greater than or equal to 0. Found [{sigma}] in [{name}]")
    fmt = _format(spec, kind)
    return a.MetricAgg(kind, path, _scalar(spec.get("missing"), "missing", kind), fmt, sigma)


def _cardinality(name: str, kind: str, spec: dict[str, Any], subs: dict[str, a.AggNode]) -> a.AggNode:
    _check_keys(spec, {"field", "precision_threshold", "missing", "execution_hint", "script", "value_type"}, kind)
    path = _required_field(spec, kind)
    threshold = _int(spec.get("precision_threshold", 3000), "precision_threshold", kind)
    if threshold < 0:
        raise IllegalArgumentError(f"[precisionThreshold] must be greater than or equal to 0. Found [{threshold}] "
                                   f"in [{name}]")
    return a.CardinalityAgg(path, threshold, _scalar(spec.get("missing"), "missing", kind))


def _percentiles(name: str, kind: str, spec: dict[str, Any], subs: dict[str, a.AggNode]) -> a.AggNode:
    _check_keys(spec, {"field", "percents", "keyed", "missing", "format", "tdigest", "hdr", "script", "value_type"},
                kind)
    path = _required_field(spec, kind)
    percents = a.DEFAULT_PERCENTS
    if "percents" in spec:
        raw = spec["percents"]
        if not isinstance(raw, list):
            raw = [raw]
        if not raw:
            raise IllegalArgumentError(f"[percents] must not be empty: [{name}]")
        values = []
        for value in raw:
            number = _number(value, "percents", kind)
            if not 0 <= number <= 100:
                raise IllegalArgumentError(f"percent must be in [0,100], got [{number}]: [{name}]")
            values.append(number)
        percents = tuple(sorted(set(values)))
    if "tdigest" in spec and "hdr" in spec:
        raise IllegalArgumentError("Only one percentiles method should be declared.")
    method = "hdr" if "hdr" in spec else "tdigest"
    options = spec.get(method)
    if options is not None:
        if not isinstance(options, dict):
            raise JsonParseError(f"[{kind}] {method} doesn't support values of type: {_token(options)}")
        allowed = {"compression", "execution_hint"} if method == "tdigest" else {"number_of_significant_value_digits"}
        for key, value in options.items():
            if key not in allowed:
                raise JsonParseError(f"[{method}] unknown field [{key}]")
            if key != "execution_hint":
                _number(value, key, method)
    fmt = _format(spec, kind)
    return a.PercentilesAgg(path, percents, _bool(spec.get("keyed", True), "keyed", kind),
                            _scalar(spec.get("missing"), "missing", kind), fmt, method)


def _filter(name: str, kind: str, spec: dict[str, Any], subs: dict[str, a.AggNode]) -> a.AggNode:
    return a.FilterAgg(parse_query(spec), subs)


def _filters(name: str, kind: str, spec: dict[str, Any], subs: dict[str, a.AggNode]) -> a.AggNode:
    _check_keys(spec, {"filters", "other_bucket", "other_bucket_key", "keyed"}, kind)
    raw = spec.get("filters")
    if raw is None:
        raise QueryParsingError("[filters] cannot be empty.")
    filters: list[tuple[str | None, Any]] = []
    if isinstance(raw, dict):
        if not raw:
            raise IllegalArgumentError("[filters] cannot be empty.")
        keyed = _bool(spec.get("keyed", True), "keyed", kind)
        for key, body in raw.items():
            filters.append((key, parse_query(body)))
    elif isinstance(raw, list):
        if not raw:
            raise IllegalArgumentError("[filters] cannot be empty.")
        keyed = False
        for body in raw:
            filters.append((None, parse_query(body)))
    else:
        raise QueryParsingError(f"Unknown token {_token(raw)} in [filters] while parsing [{name}]")
    other_key = spec.get("other_bucket_key")
    other = _bool(spec.get("other_bucket", other_key is not None), "other_bucket", kind)
    if other_key is not None:
        _string(other_key, "other_bucket_key", kind)
    return a.FiltersAgg(tuple(filters), keyed, other, other_key if other_key is not None else "_other_", subs)


def _missing(name: str, kind: str, spec: dict[str, Any], subs: dict[str, a.AggNode]) -> a.AggNode:
    _check_keys(spec, {"field", "script", "value_type"}, kind)
    return a.MissingAgg(_required_field(spec, kind), subs)


def _global(name: str, kind: str, spec: dict[str, Any], subs: dict[str, a.AggNode]) -> a.AggNode:
    _check_keys(spec, set(), kind)
    return a.GlobalAgg(subs)


def _top_hits(name: str, kind: str, spec: dict[str, Any], subs: dict[str, a.AggNode]) -> a.AggNode:
    _check_keys(spec, {"size", "from", "sort", "_source", "track_scores", "version", "explain",
                       "seq_no_primary_term", "stored_fields", "docvalue_fields", "fields"}, kind)
    size = _int(spec.get("size", 3), "size", kind)
    offset = _int(spec.get("from", 0), "from", kind)
    if size < 0:
        raise IllegalArgumentError(f"[size] must be greater than or equal to 0. Found [{size}] in [{name}]")
    if offset < 0:
        raise IllegalArgumentError(f"[from] must be greater than or equal to 0. Found [{offset}] in [{name}]")
    if offset + size > MAX_INNER_RESULT_WINDOW:
        raise IllegalArgumentError(f"Top hits result window is too large, the top hits aggregator [{name}]'s from + "
                                   f"size must be less than or equal to: [{MAX_INNER_RESULT_WINDOW}] but was "
                                   f"[{offset + size}]. This limit can be set by changing the "
                                   "[index.max_inner_result_window] index level setting.")
    sort = _hit_sort(spec["sort"], kind) if spec.get("sort") is not None else None
    source_filter = source_filter_from_body(spec.get("_source"))
    source: Any = True
    if not source_filter.fetch:
        source = False
    elif not source_filter.is_identity:
        source = source_filter.apply
    return a.TopHitsAgg(size, offset, sort, source, _bool(spec.get("track_scores", False), "track_scores", kind))


def _hit_sort(value: Any, kind: str) -> tuple[a.HitSort, ...]:
    items = value if isinstance(value, list) else [value]
    keys = []
    for item in items:
        if isinstance(item, str):
            keys.append(a.HitSort(item, "desc" if item == "_score" else "asc"))
            continue
        if not isinstance(item, dict) or len(item) != 1:
            raise QueryParsingError("[sort] each sort must be a field name or an object with one field")
        path, options = next(iter(item.items()))
        default = "desc" if path == "_score" else "asc"
        if isinstance(options, str):
            options = {"order": options}
        if not isinstance(options, dict):
            raise QueryParsingError(f"[sort] malformed sort for [{path}]")
        for key in options:
            if key not in ("order", "missing", "unmapped_type", "mode", "numeric_type", "format"):
                raise QueryParsingError(f"[field_sort] unknown field [{key}]")
        order = str(options.get("order", default)).lower()
        if order not in ("asc", "desc"):
            raise QueryParsingError(f"[sort] order must be asc or desc, got [{options.get('order')}]")
        keys.append(a.HitSort(path, order, options.get("missing", "_last")))
    return tuple(keys)


_PARSERS = {"terms": _terms, "histogram": _histogram, "date_histogram": _date_histogram, "range": _range,
            "date_range": _range, "avg": _metric, "min": _metric, "max": _metric, "sum": _metric, "stats": _metric,
            "extended_stats": _metric, "value_count": _metric, "cardinality": _cardinality,
            "percentiles": _percentiles, "filter": _filter, "filters": _filters, "missing": _missing,
            "global": _global, "top_hits": _top_hits, "ip_range": _ip_range}
