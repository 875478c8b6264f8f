"""Aggregations: Elasticsearch 8 semantics over tantivy, merged exactly across shards and indices.

The request arrives as a typed tree (the dataclasses below, built by `query.aggs_request`). Each
aggregation is evaluated over a *scope*: one tantivy query per shard (the request's query, narrowed
by the buckets above it).

Where the work is done:

* tantivy (`searcher.aggregate`, one call per shard for a whole subtree): terms, histogram, range,
  date_histogram (as a histogram when its buckets have a constant width, else as a range
  aggregation over the bucket boundaries computed here, DST-correct), and every metric. Metrics
  are asked for in a mergeable form (`stats`/`extended_stats` for avg, min, max, sum, stats,
  value_count; a `terms` list of distinct values with their document counts for cardinality,
  percentiles, keyword value_count and boolean metrics), so the shards' answers merge exactly.
* Python: filter, filters, missing, global, top_hits (tantivy has no document-address output
  and no plan-node filters) and ip_range (tantivy's range aggregation takes no addresses);
  empty-bucket filling, min_doc_count, ordering, size, bucket keys and formatting (dates, and
  DecimalFormat patterns for numbers); `missing` on boolean and ip fields; any sub-aggregation tantivy cannot nest (or that would exceed tantivy's own
  bucket limit) is evaluated per parent bucket with a narrowed query.

Exactness: everything is exact except, as in Elasticsearch, (1) `terms` when a shard holds more
distinct terms than `shard_size` (reported through `doc_count_error_upper_bound` and
`sum_other_doc_count`, computed like Elasticsearch), and (2) `cardinality` and `percentiles` when
one shard holds more than 65,000 distinct values of the field: then tantivy's HyperLogLog
(per-shard estimates added up) and DDSketch (per-shard percentiles averaged by value count) stand
in. Below that size both are exact (Elasticsearch's own are estimates). Percentiles interpolate
linearly between the sorted values, like Elasticsearch's t-digest does for small sets; a value
repeated inside one document counts once there.
"""

from __future__ import annotations

import copy
import datetime as dt
import ipaddress
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Context, Decimal
from typing import Any

import orjson
import tantivy

from ..errors import IllegalArgumentError, RequestError, StrongroomError
from .dates import DateFormat, DateFormatError, _local_to_utc, _offset_at_utc, parse_date_math
from .mapping import FieldType
from .plan import Exists, Node, _zone, lucene_regex_to_rust
from .search import Target, compile_for
from .shard import count_docs

MAX_BUCKETS = 65_536  # search.max_buckets
MAX_DEPTH = 10  # aggregation nesting levels
_TANTIVY_CAP = 65_000  # tantivy's own bucket limit per aggregation request (per shard)
_Occur = tantivy.Occur


class TooManyBucketsError(RequestError):
    es_type = "too_many_buckets_exception"

    def __init__(self, count: int) -> None:
        super().__init__(f"Trying to create too many buckets. Must be less than or equal to: [{MAX_BUCKETS}] but was "
                         f"[{count}]. This limit can be set by changing the [search.max_buckets] cluster level "
                         "setting.", max_buckets=MAX_BUCKETS)


class AggregationExecutionError(RequestError):
    es_type = "aggregation_execution_exception"


class AggregationFailure(StrongroomError):
    """An aggregation_execution_exception Elasticsearch raises while building the aggregator: status 500."""

    es_type = "aggregation_execution_exception"


# -- the typed tree ---------------------------------------------------------------------------
Order = tuple[tuple[str, str], ...]  # ((path, "asc"|"desc"), ...): "_count", "_key" or a sub-aggregation path


@dataclass(frozen=True)
class TermsAgg:
    field: str
    size: int = 10
    shard_size: int | None = None
    order: Order = (("_count", "desc"),)
    min_doc_count: int = 1
    missing: Any = None
    include: str | tuple[Any, ...] | None = None  # a (Lucene) regex or exact values
    exclude: str | tuple[Any, ...] | None = None
    format: str | None = None
    show_term_doc_count_error: bool = False
    aggs: dict[str, AggNode] = field(default_factory=dict)
    meta: Mapping[str, Any] | None = None  # returned as-is in the response
    value_type: str | None = None  # VALUE_TYPES: how an unmapped field's `missing` value is read


@dataclass(frozen=True)
class RangeItem:
    key: str | None
    start: Any = None  # "from": a number, or for dates a date string, date math or epoch millis
    end: Any = None  # "to"


@dataclass(frozen=True)
class RangeAgg:
    field: str
    ranges: tuple[RangeItem, ...]
    keyed: bool = False
    format: str | None = None
    time_zone: str | None = None
    missing: Any = None
    date_range: bool = False  # requested as date_range
    aggs: dict[str, AggNode] = field(default_factory=dict)
    meta: Mapping[str, Any] | None = None  # returned as-is in the response


@dataclass(frozen=True)
class HistogramAgg:
    field: str
    interval: float
    offset: float = 0.0
    min_doc_count: int = 0
    extended_bounds: tuple[float | None, float | None] | None = None
    hard_bounds: tuple[float | None, float | None] | None = None
    missing: float | None = None
    keyed: bool = False
    order: Order = (("_key", "asc"),)
    format: str | None = None
    aggs: dict[str, AggNode] = field(default_factory=dict)
    meta: Mapping[str, Any] | None = None  # returned as-is in the response


CALENDAR_UNITS = ("second", "minute", "hour", "day", "week", "month", "quarter", "year")


@dataclass(frozen=True)
class DateHistogramAgg:
    field: str
    calendar_interval: str | None = None  # one of CALENDAR_UNITS
    fixed_interval_ms: int | None = None
    time_zone: str | None = None
    format: str | None = None
    offset_ms: int = 0
    min_doc_count: int = 0
    extended_bounds: tuple[Any, Any] | None = None  # dates (strings, date math) or epoch millis
    hard_bounds: tuple[Any, Any] | None = None
    missing: Any = None
    keyed: bool = False
    order: Order = (("_key", "asc"),)
    aggs: dict[str, AggNode] = field(default_factory=dict)
    meta: Mapping[str, Any] | None = None  # returned as-is in the response


METRIC_KINDS = ("avg", "min", "max", "sum", "stats", "extended_stats", "value_count")


@dataclass(frozen=True)
class MetricAgg:
    kind: str  # one of METRIC_KINDS
    field: str
    missing: Any = None
    format: str | None = None
    sigma: float = 2.0
    aggs: dict[str, AggNode] = field(default_factory=dict)  # always empty
    meta: Mapping[str, Any] | None = None  # returned as-is in the response


@dataclass(frozen=True)
class CardinalityAgg:
    field: str
    precision_threshold: int = 3000
    missing: Any = None
    aggs: dict[str, AggNode] = field(default_factory=dict)
    meta: Mapping[str, Any] | None = None  # returned as-is in the response


DEFAULT_PERCENTS = (1.0, 5.0, 25.0, 50.0, 75.0, 95.0, 99.0)


@dataclass(frozen=True)
class PercentilesAgg:
    field: str
    percents: tuple[float, ...] = DEFAULT_PERCENTS
    keyed: bool = True
    missing: Any = None
    format: str | None = None
    method: str = "tdigest"  # tdigest | hdr (accepted; the computation is the same)
    aggs: dict[str, AggNode] = field(default_factory=dict)
    meta: Mapping[str, Any] | None = None  # returned as-is in the response


@dataclass(frozen=True)
class FilterAgg:
    query: Node
    aggs: dict[str, AggNode] = field(default_factory=dict)
    meta: Mapping[str, Any] | None = None  # returned as-is in the response


@dataclass(frozen=True)
class FiltersAgg:
    filters: tuple[tuple[str | None, Node], ...]  # names are None for anonymous (array) filters
    keyed: bool = True
    other_bucket: bool = False
    other_bucket_key: str = "_other_"
    aggs: dict[str, AggNode] = field(default_factory=dict)
    meta: Mapping[str, Any] | None = None  # returned as-is in the response


@dataclass(frozen=True)
class MissingAgg:
    field: str
    aggs: dict[str, AggNode] = field(default_factory=dict)
    meta: Mapping[str, Any] | None = None  # returned as-is in the response


@dataclass(frozen=True)
class GlobalAgg:
    aggs: dict[str, AggNode] = field(default_factory=dict)
    meta: Mapping[str, Any] | None = None  # returned as-is in the response


@dataclass(frozen=True)
class HitSort:
    field: str  # "_score", "_doc" or a field path
    order: str = "asc"
    missing: Any = "_last"


@dataclass(frozen=True)
class TopHitsAgg:
    size: int = 3
    offset: int = 0
    sort: tuple[HitSort, ...] | None = None  # None: by score
    source: Any = True  # True: whole _source; False: none; a callable: filters the parsed source
    track_scores: bool = False
    aggs: dict[str, AggNode] = field(default_factory=dict)  # always empty
    meta: Mapping[str, Any] | None = None  # returned as-is in the response


@dataclass(frozen=True)
class IpRangeItem:
    key: str | None  # the requested key, else the mask, else None (generated from the bounds)
    start: str | None = None  # "from": a canonical address (inclusive)
    end: str | None = None  # "to": a canonical address (exclusive); None: no upper bound


@dataclass(frozen=True)
class IpRangeAgg:
    field: str
    ranges: tuple[IpRangeItem, ...]
    keyed: bool = False
    missing: Any = None
    aggs: dict[str, AggNode] = field(default_factory=dict)
    meta: Mapping[str, Any] | None = None  # returned as-is in the response


AggNode = (TermsAgg | RangeAgg | HistogramAgg | DateHistogramAgg | MetricAgg | CardinalityAgg | PercentilesAgg
           | FilterAgg | FiltersAgg | MissingAgg | GlobalAgg | TopHitsAgg | IpRangeAgg)
_ALL_NODES = (TermsAgg, RangeAgg, HistogramAgg, DateHistogramAgg, MetricAgg, CardinalityAgg, PercentilesAgg,
              FilterAgg, FiltersAgg, MissingAgg, GlobalAgg, TopHitsAgg, IpRangeAgg)
# value_type names (Elasticsearch's ValueType) → the kind of key an unmapped field's `missing` value makes
VALUE_TYPES = {"string": "keyword", "long": "i64", "integer": "i64", "short": "i64", "byte": "i64",
               "numeric": "i64", "number": "i64", "unsigned_long": "i64", "double": "f64", "float": "f64",
               "date": "date", "ip": "ip", "boolean": "bool"}
_BUCKETING = (TermsAgg, RangeAgg, HistogramAgg, DateHistogramAgg)
_VALUE_METRICS = (MetricAgg, CardinalityAgg, PercentilesAgg)


def agg_depth(aggs: Mapping[str, AggNode]) -> int:
    return max((1 + agg_depth(node.aggs) for node in aggs.values()), default=0)


def check_depth(aggs: Mapping[str, AggNode]) -> None:
    depth = agg_depth(aggs)
    if depth > MAX_DEPTH:
        raise IllegalArgumentError(f"The aggregations are nested [{depth}] levels deep, more than the allowed "
                                   f"[{MAX_DEPTH}]")


# -- evaluation state -------------------------------------------------------------------------
class _BucketLimit(Exception):
    """tantivy refused a request for creating too many buckets."""


_ALL = object()  # a restriction that keeps every document


@dataclass
class _Part:
    target: Target
    query: tantivy.Query | None  # None: no document of this shard is in scope


@dataclass
class _Ctx:
    now: int
    typed_keys: bool
    buckets: int = 0
    empty_cache: dict[int, tuple[str, dict[str, Any], int]] = field(default_factory=dict)

    def add_buckets(self, n: int) -> None:
        self.buckets += n
        if self.buckets > MAX_BUCKETS:
            raise TooManyBucketsError(self.buckets)


Scope = list[_Part]


def run_aggregations(targets: Sequence[Target], query: Node, aggs: dict[str, AggNode], *,
                     now_millis: int | None = None, typed_keys: bool = False) -> dict[str, Any]:
    """The `aggregations` object of a search response."""
    for node in aggs.values():
        if not isinstance(node, _ALL_NODES):
            raise TypeError("run_aggregations takes the typed tree from query.aggs_request.parse_aggregations")
    check_depth(aggs)
    now = now_millis if now_millis is not None else int(time.time() * 1000)
    ctx = _Ctx(now, typed_keys)
    for target in targets:
        _check_fields(aggs, target)
    scope = [_Part(t, compile_for(t, query, None, now)) for t in targets]
    return _eval_all(aggs, scope, ctx)


def _eval_all(aggs: Mapping[str, AggNode], scope: Scope, ctx: _Ctx) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, node in aggs.items():
        kind, result = _eval(node, scope, ctx)
        out[_name(name, kind, ctx)] = _with_meta(node, result)
    return out


def _with_meta(node: AggNode, result: dict[str, Any]) -> dict[str, Any]:
    """The aggregation's `meta` object comes first in its result, as Elasticsearch renders it."""
    if node.meta is None:
        return result
    return {"meta": node.meta, **result}


def _name(name: str, kind: str, ctx: _Ctx) -> str:
    return f"{kind}#{name}" if ctx.typed_keys else name


def _eval(node: AggNode, scope: Scope, ctx: _Ctx) -> tuple[str, dict[str, Any]]:
    if isinstance(node, _BUCKETING):
        return _eval_bucketing(node, scope, ctx)
    if isinstance(node, _VALUE_METRICS):
        return _eval_metric(node, scope, ctx)
    if isinstance(node, FilterAgg):
        return "filter", _single_bucket(node, _narrow(scope, lambda t: _compile(t, node.query, ctx)), ctx)
    if isinstance(node, MissingAgg):
        return "missing", _single_bucket(node, _narrow(scope, lambda t: _missing_restriction(t, node.field, ctx)),
                                         ctx)
    if isinstance(node, GlobalAgg):
        every = [_Part(p.target, p.target.everything()) for p in scope]
        return "global", _single_bucket(node, every, ctx)
    if isinstance(node, FiltersAgg):
        return "filters", _filters(node, scope, ctx)
    if isinstance(node, TopHitsAgg):
        return "top_hits", _top_hits(node, scope, ctx)
    if isinstance(node, IpRangeAgg):
        return "ip_range", _ip_range(node, scope, ctx)
    raise AssertionError(f"unknown aggregation {node!r}")


# -- fields ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Field:
    type: FieldType
    slot: Any  # shard.Slot

    @property
    def kind(self) -> str:
        return self.slot.kind

    @property
    def is_date(self) -> bool:
        return self.type.type == "date"

    @property
    def numeric(self) -> bool:
        return self.slot.kind in ("i64", "f64")


def _field(target: Target, path: str) -> _Field | None:
    field_type = target.index.mapping.fields.get(path)
    slot = target.index.slots.get(path)
    if field_type is None or slot is None:
        return None
    return _Field(field_type, slot)


def _text_error(path: str) -> IllegalArgumentError:
    return IllegalArgumentError(
        "Text fields are not optimised for operations that require per-document field data like aggregations and "
        "sorting, so these operations are disabled by default. Please use a keyword field instead. Alternatively, "
        f"set fielddata=true on [{path}] in order to load field data by uninverting the inverted index. Note that "
        "this can use significant memory.")


def _check_fields(aggs: Mapping[str, AggNode], target: Target) -> None:
    """Refuses text fields and field types an aggregation cannot use, before anything runs."""
    for name, node in aggs.items():
        path = getattr(node, "field", None)
        info = _field(target, path) if isinstance(path, str) else None
        if info is not None:
            if info.kind == "text":
                raise _text_error(path)  # type: ignore[arg-type]
            if isinstance(node, TermsAgg) and info.kind != "keyword" and \
                    (isinstance(node.include, str) or isinstance(node.exclude, str)):
                raise AggregationFailure(
                    f"Aggregation [{name}] cannot support regular expression style include/exclude settings as "
                    "they can only be applied to string fields. Use an array of values for include/exclude clauses"
                    + ("" if info.kind == "ip" else " used to filter numeric fields"))
            if isinstance(node, IpRangeAgg):
                bad = info.kind != "ip"
            elif info.kind in ("keyword", "ip"):
                bad = isinstance(node, (HistogramAgg, DateHistogramAgg, RangeAgg, PercentilesAgg)) or \
                    isinstance(node, MetricAgg) and node.kind != "value_count"
            else:
                bad = info.kind == "bool" and isinstance(node, (DateHistogramAgg, RangeAgg))
            if bad:
                raise IllegalArgumentError(f"Field [{path}] of type [{info.type.type}] is not supported for "
                                           f"aggregation [{_agg_kind(node)}]")
        _check_fields(node.aggs, target)


def _agg_kind(node: AggNode) -> str:
    if isinstance(node, MetricAgg):
        return node.kind
    if isinstance(node, RangeAgg):
        return "date_range" if node.date_range else "range"
    return {IpRangeAgg: "ip_range", TermsAgg: "terms", HistogramAgg: "histogram", DateHistogramAgg: "date_histogram",
            CardinalityAgg: "cardinality", PercentilesAgg: "percentiles", MissingAgg: "missing"}.get(type(node), "")


def _date_format(info: _Field | None, spec: str | None) -> DateFormat | None:
    if spec is not None:
        try:
            return DateFormat.compile(spec)
        except DateFormatError as exc:
            raise IllegalArgumentError(f"Invalid format: [{spec}]: {exc}") from None
    if info is not None and info.is_date:
        return info.type.date_format
    return None


def _parse_date(value: Any, info: _Field | None, fmt: DateFormat | None, tz: dt.tzinfo | None, now: int) -> int:
    date_format = fmt or (info.type.date_format if info is not None else None) or \
        DateFormat.compile("strict_date_optional_time||epoch_millis")
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # A number is read in the date format, like its text (epoch_second: seconds).
            return date_format.parse(int(value) if float(value).is_integer() else value, tz=tz)
        return parse_date_math(str(value), now_millis=now, fmt=date_format, tz=tz)
    except ValueError as exc:
        raise IllegalArgumentError(f"failed to parse date field [{value}] with format [{date_format.spec}]: "
                                   f"[{exc}]") from None


def _typed_missing(value: Any, info: _Field | None, ctx: _Ctx) -> Any:
    """The `missing` value converted to the field's own kind of value."""
    if value is None or info is None:
        return value
    if info.is_date:
        return _parse_date(value, info, None, None, ctx.now)
    try:
        if info.kind == "keyword":
            return value if isinstance(value, str) else _key_text(value)
        if info.kind == "i64":
            number = float(value)
            return int(number) if number.is_integer() else number
        if info.kind == "f64":
            return float(value)
        if info.kind == "bool":
            if value in (True, "true"):
                return True
            if value in (False, "false", ""):
                return False
            raise ValueError(value)
        if info.kind == "ip":
            return ip_to_int(value)
    except (TypeError, ValueError):
        raise IllegalArgumentError(f"failed to parse the [missing] value [{value}] for field [{info.type.path}] of "
                                   f"type [{info.type.type}]") from None
    return value


def _value_type_missing(node: TermsAgg, ctx: _Ctx) -> tuple[Any, str | None]:
    """An unmapped field's `missing` value read as its `value_type` says, with the kind of key it makes."""
    value = node.missing
    kind = VALUE_TYPES.get(node.value_type or "")
    if value is None or kind is None:
        return value, None
    try:
        if kind == "keyword":
            return (value if isinstance(value, str) else _key_text(value)), kind
        if kind == "date":
            fmt = DateFormat.compile(node.format) if node.format else None
            return _parse_date(value, None, fmt, None, ctx.now), kind
        if kind == "ip":
            return ip_to_int(value), kind
        if kind == "bool":
            if value in (True, "true"):
                return 1, kind
            if value in (False, "false", ""):
                return 0, kind
            raise ValueError(value)
        number = float(value)
        if kind == "i64" and number.is_integer():
            return int(number), kind
        return number, "f64"
    except (TypeError, ValueError, DateFormatError):
        raise IllegalArgumentError(f"failed to parse the [missing] value [{value}] as [{node.value_type}]") from None


def _key_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return java_double(value)
    return str(value)


def java_double(value: float) -> str:
    """Java's Double.toString: what Elasticsearch prints for double keys."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    magnitude = abs(value)
    if 1e-3 <= magnitude < 1e7:
        text = repr(float(value))
        if "e" in text:
            text = format(Decimal(text), "f")
        return text if "." in text else text + ".0"
    sign, digits, exponent = Decimal(repr(float(value))).normalize().as_tuple()
    text = "".join(str(d) for d in digits)
    power = len(text) - 1 + int(exponent)
    mantissa = text[0] + "." + (text[1:] or "0")
    return f"{'-' if sign else ''}{mantissa}E{power}"


# -- ip addresses ------------------------------------------------------------------------------
_V4_MAPPED = 0xFFFF << 32


def ip_to_int(text: Any) -> int:
    """An address as Elasticsearch orders them: its 16-byte IPv6 form (IPv4 as ::ffff:a.b.c.d), as a number."""
    address = ipaddress.ip_address(str(text).strip())
    if isinstance(address, ipaddress.IPv4Address):
        return _V4_MAPPED | int(address)
    return int(address)


def ip_from_int(number: int) -> str:
    """The canonical text of a 16-byte address (IPv4-mapped addresses print as IPv4)."""
    if number >> 32 == 0xFFFF:
        return str(ipaddress.IPv4Address(number & 0xFFFF_FFFF))
    return str(ipaddress.IPv6Address(number))


def ip_mask_bounds(mask: str) -> tuple[int, int | None]:
    """A CIDR mask → its first address and the address after its last (None past the end of the space)."""
    network = ipaddress.ip_network(mask.strip(), strict=False)
    low = int(network.network_address)
    high = int(network.broadcast_address) + 1
    if network.version == 4:
        low, high = _V4_MAPPED + low, _V4_MAPPED + high  # past 255.255.255.255 is ::1:0:0:0
    return low, (high if high < 1 << 128 else None)


# -- numeric formats (java.text.DecimalFormat, Locale.ROOT symbols) ---------------------------------------
class DecimalFormatError(ValueError):
    pass


_PATTERN_DIGITS = "#0123456789"


@dataclass(frozen=True)
class _Affixes:
    prefix: str
    suffix: str


class DecimalFormat:
    """Java's DecimalFormat as Elasticsearch uses it for numeric `format`s: `#`, `0`, `,`, `.`, `E0`,
    quoted and plain literal prefixes and suffixes, `%` and `‰`, a `;` negative subpattern; HALF_EVEN
    rounding of the double's shortest decimal form (ties decided by its exact binary value)."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.multiplier = 1  # 100 with a percent sign, 1000 with a per mille sign
        positive, rest = self._subpattern(pattern, 0, positive=True)
        self.positive = positive
        if rest < len(pattern):
            negative, rest = self._subpattern(pattern, rest, positive=False)
            self.negative = negative
        else:
            self.negative = _Affixes("-" + positive.prefix, positive.suffix)

    def _subpattern(self, pattern: str, i: int, *, positive: bool) -> tuple[_Affixes, int]:
        affixes = ["", ""]
        phase = 0  # 0 prefix, 1 number, 2 suffix
        number = ""
        n = len(pattern)
        while i < n:
            ch = pattern[i]
            if phase == 1:
                if ch in _PATTERN_DIGITS or ch in ",.":
                    number += ch
                    i += 1
                    continue
                if ch == "E" and "E" not in number:
                    number += ch
                    i += 1
                    while i < n and pattern[i] == "0":
                        number += "0"
                        i += 1
                    continue
                phase = 2
                continue
            if ch == "'":
                end = pattern.find("'", i + 1)
                if end < 0:
                    raise DecimalFormatError(f"Malformed pattern \"{pattern}\"")
                affixes[phase // 2] += "'" if end == i + 1 else pattern[i + 1:end]
                i = end + 1
                continue
            if phase == 0 and (ch in _PATTERN_DIGITS or ch in ",."):
                phase = 1
                continue
            if ch == ";":
                if phase == 0 or not positive:
                    raise DecimalFormatError(f"Unquoted special character ';' in pattern \"{pattern}\"")
                i += 1
                break
            if ch == "%":
                self._multiplier(100, pattern, positive)
            elif ch == "\u2030":
                self._multiplier(1000, pattern, positive)
            affixes[phase // 2] += ch
            i += 1
        if positive:
            self._number(number, pattern)
        return _Affixes(affixes[0], affixes[1]), i

    def _multiplier(self, value: int, pattern: str, positive: bool) -> None:
        if positive:
            if self.multiplier not in (1, value):
                raise DecimalFormatError(f"Too many percent/per mille characters in pattern \"{pattern}\"")
            self.multiplier = value

    def _number(self, number: str, pattern: str) -> None:
        mantissa, e, exponent = number.partition("E")
        if e and not exponent:
            raise DecimalFormatError(f"Malformed exponential pattern \"{pattern}\"")
        integer, _, fraction = mantissa.partition(".")
        if "." in fraction or "," in fraction:
            raise DecimalFormatError(f"Malformed pattern \"{pattern}\"")
        digits = re.sub("[1-9]", "0", integer.replace(",", ""))
        fraction = re.sub("[1-9]", "0", fraction)
        if not re.fullmatch("#*0*", digits) or not re.fullmatch("0*#*", fraction):
            raise DecimalFormatError(f"Unexpected '0' in pattern \"{pattern}\"")
        if integer.endswith(",") or integer.startswith(","):
            raise DecimalFormatError(f"Malformed pattern \"{pattern}\"")
        if not digits and not fraction:
            digits = "#"  # no digits at all: Java prints the integer part
        self.grouping = len(integer) - integer.rfind(",") - 1 if "," in integer else 0
        self.min_int = sum(1 for c in digits if c != "#")
        self.max_int = len(digits)
        self.min_frac = sum(1 for c in fraction if c != "#")
        self.max_frac = len(fraction)
        self.exponent_digits = len(exponent) if e else 0
        self.scientific = bool(e)

    def format(self, value: float) -> str:
        if isinstance(value, float):
            if math.isnan(value):
                return "NaN"
            negative = value < 0 or (value == 0 and math.copysign(1.0, value) < 0)
            if self.multiplier != 1:
                value = value * self.multiplier
            if math.isinf(value):
                body = "\u221e"
            else:
                body = self._scientific(abs(value)) if self.scientific else self._fixed(abs(value))
        else:
            negative = value < 0
            number = abs(int(value)) * self.multiplier
            body = self._scientific(float(number)) if self.scientific else self._fixed(number)
        affixes = self.negative if negative else self.positive
        return affixes.prefix + body + affixes.suffix

    def _round(self, value: float, places: int) -> Decimal:
        quantum = Decimal(1).scaleb(-places)
        if isinstance(value, int):
            return Decimal(value).quantize(quantum, rounding=ROUND_HALF_EVEN, context=_WIDE)
        shortest = Decimal(repr(value))
        rounded = shortest.quantize(quantum, rounding=ROUND_HALF_EVEN, context=_WIDE)
        if abs(shortest - shortest.quantize(quantum, rounding=ROUND_DOWN, context=_WIDE)) * 2 == quantum:
            rounded = Decimal(value).quantize(quantum, rounding=ROUND_HALF_EVEN, context=_WIDE)  # a tie: exactly?
        return rounded

    def _digits(self, rounded: Decimal, min_int: int) -> str:
        text = format(rounded, "f")
        whole, _, decimals = text.partition(".")
        whole = whole.lstrip("0")
        decimals = decimals.rstrip("0")
        if len(decimals) < self.min_frac:
            decimals = decimals.ljust(self.min_frac, "0")
        whole = whole.rjust(min_int, "0")
        if self.grouping and whole:
            groups = []
            while len(whole) > self.grouping:
                groups.append(whole[-self.grouping:])
                whole = whole[:-self.grouping]
            groups.append(whole)
            whole = ",".join(reversed(groups))
        if not whole and not decimals:
            return "0"
        return whole + ("." + decimals if decimals else "")

    def _fixed(self, value: float) -> str:
        return self._digits(self._round(value, self.max_frac), self.min_int)

    def _scientific(self, value: float) -> str:
        engineering = self.max_int > self.min_int and self.max_int > 1
        step = self.max_int if engineering else 1
        min_int = 1 if engineering else max(self.min_int, 1)
        exponent = 0
        mantissa = Decimal(0)
        if value != 0:
            exponent = math.floor(math.log10(value))
            for _ in range(3):
                if engineering:
                    power = exponent - exponent % step
                else:
                    power = exponent - (max(self.min_int, 1) - 1)
                mantissa = self._round(float(Decimal(repr(value)).scaleb(-power)), self.max_frac)
                digits_before = len(str(int(mantissa))) if int(mantissa) else 0
                limit = step if engineering else max(self.min_int, 1)
                if digits_before > limit:
                    exponent += 1
                    continue
                break
            exponent = power
        text = self._digits(mantissa, min_int)
        sign = "-" if exponent < 0 else ""
        return f"{text}E{sign}{str(abs(exponent)).rjust(self.exponent_digits, '0')}"


_WIDE = Context(prec=1000)


def compile_decimal_format(pattern: str) -> DecimalFormat:
    try:
        return DecimalFormat(pattern)
    except DecimalFormatError as exc:
        raise IllegalArgumentError(str(exc)) from None


def _format_value(fmt: Any, value: float, tz: dt.tzinfo | None = None) -> str:
    """A value printed with a date format (whole milliseconds, rounded down) or a numeric format."""
    if isinstance(fmt, DecimalFormat):
        return fmt.format(value)
    return fmt.format(math.floor(value), tz=tz)


# -- scopes and restrictions ----------------------------------------------------------------
def _and(query: tantivy.Query, restriction: tantivy.Query) -> tantivy.Query:
    return tantivy.Query.boolean_query([(_Occur.Must, query),
                                        (_Occur.Must, tantivy.Query.const_score_query(restriction, 0.0))])


def _narrow(scope: Scope, restrict: Callable[[Target], Any]) -> Scope:
    out = []
    for part in scope:
        if part.query is None:
            out.append(part)
            continue
        restriction = restrict(part.target)
        if restriction is None:
            out.append(_Part(part.target, None))
        elif restriction is _ALL:
            out.append(part)
        else:
            out.append(_Part(part.target, _and(part.query, restriction)))
    return out


def _compile(target: Target, node: Node, ctx: _Ctx) -> tantivy.Query:
    return target.compile(node, ctx.now)


def _not(query: tantivy.Query) -> tantivy.Query:
    return tantivy.Query.boolean_query([(_Occur.Must, tantivy.Query.all_query()), (_Occur.MustNot, query)])


def _or(*queries: tantivy.Query) -> tantivy.Query:
    return tantivy.Query.boolean_query([(_Occur.Should, q) for q in queries])


def _missing_restriction(target: Target, path: str, ctx: _Ctx) -> Any:
    info = _field(target, path)
    if info is None:
        return _ALL
    if info.kind == "text":
        raise _text_error(path)
    return _not(_compile(target, Exists(path), ctx))


def _value_range(target: Target, info: _Field, low: float | None, high: float | None) -> tantivy.Query | None:
    """Documents with a value in [low, high)."""
    schema = target.shard.schema
    if info.kind == "i64":
        lo = None if low is None or low == -math.inf else math.ceil(low)
        hi = None if high is None or high == math.inf else math.ceil(high) - 1
        if high == -math.inf or low == math.inf or (lo is not None and hi is not None and lo > hi):
            return None
        lo = None if lo is not None and lo < -(2**63) else lo
        hi = None if hi is not None and hi > 2**63 - 1 else hi
        if lo is not None and lo > 2**63 - 1 or hi is not None and hi < -(2**63):
            return None
        return tantivy.Query.range_query(schema, info.slot.name, tantivy.FieldType.Integer, lo, hi, True, True)
    if low is not None and high is not None and low >= high:
        return None
    return tantivy.Query.range_query(schema, info.slot.name, tantivy.FieldType.Float, low, high, True,
                                     high is None)


def _count(part: _Part) -> int:
    if part.query is None:
        return 0
    return count_docs(part.target.searcher, part.query)


def _scope_count(scope: Scope) -> int:
    return sum(_count(p) for p in scope)


# -- partial (per-shard, mergeable) results ---------------------------------------------------
@dataclass
class _Stats:
    count: int = 0
    sum: float = 0.0
    min: float | None = None
    max: float | None = None
    sumsq: float = 0.0

    def merge(self, other: _Stats) -> None:
        self.count += other.count
        self.sum += other.sum
        self.sumsq += other.sumsq
        if other.min is not None:
            self.min = other.min if self.min is None else min(self.min, other.min)
        if other.max is not None:
            self.max = other.max if self.max is None else max(self.max, other.max)


@dataclass
class _Values:
    """Distinct values with their document counts; estimates when a shard had too many."""

    counts: dict[Any, int] = field(default_factory=dict)
    estimate: float = 0.0  # cardinality beyond the exact values (HyperLogLog fallback)
    sketches: list[tuple[dict[float, float | None], int]] = field(default_factory=list)  # percentile fallback

    def merge(self, other: _Values) -> None:
        for key, count in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + count
        self.estimate += other.estimate
        self.sketches.extend(other.sketches)


@dataclass
class _Bucket:
    count: int = 0
    subs: dict[str, Any] = field(default_factory=dict)
    missing: bool = False  # holds documents without the field (their `missing` value)


@dataclass
class _Multi:
    buckets: dict[Any, _Bucket] = field(default_factory=dict)
    other: int = 0
    shard_errors: list[tuple[frozenset[Any], int]] = field(default_factory=list)  # terms: (keys returned, error)
    keys_kind: str | None = None  # terms: keyword | i64 | f64 | bool | date


def _merge(node: AggNode, into: Any, part: Any) -> Any:
    if into is None:
        return part
    if part is None:
        return into
    if isinstance(into, (_Stats, _Values)):
        into.merge(part)
        return into
    assert isinstance(into, _Multi) and isinstance(part, _Multi)
    into.other += part.other
    into.shard_errors.extend(part.shard_errors)
    into.keys_kind = into.keys_kind or part.keys_kind
    for key, bucket in part.buckets.items():
        mine = into.buckets.get(key)
        if mine is None:
            into.buckets[key] = bucket
            continue
        mine.count += bucket.count
        mine.missing = mine.missing or bucket.missing
        for name, sub in bucket.subs.items():
            mine.subs[name] = _merge(node.aggs[name], mine.subs.get(name), sub)
    return into


# -- tantivy requests ---------------------------------------------------------------------------
@dataclass
class _Prep:
    """What a bucketing aggregation needs before tantivy runs (resolved per request)."""

    ranges: list[tuple[float | None, float | None]] | None = None  # range: resolved bounds, in request order
    rounding: _Rounding | None = None  # date_histogram
    boundaries: list[int] | None = None  # date_histogram over a range aggregation: bucket starts + the end
    fmt: Any = None  # a DateFormat, or a DecimalFormat for numeric ranges
    tz: dt.tzinfo | None = None


def _pure(node: AggNode, scope: Scope) -> bool:
    """Whether tantivy can compute this subtree nested under another bucket, with nothing done in Python."""
    if isinstance(node, _VALUE_METRICS):
        return not _python_missing(node, scope)  # `missing` added in Python needs the bucket's own scope
    if not isinstance(node, _BUCKETING):
        return False
    if node.missing is not None and not isinstance(node, TermsAgg):
        return False
    if isinstance(node, TermsAgg):
        if node.min_doc_count == 0:
            return False
        if node.missing is not None and _python_missing(node, scope):
            return False
    return all(_pure(sub, scope) for sub in node.aggs.values())


def _python_missing(node: AggNode, scope: Scope) -> bool:
    """Whether documents without the field are put in their `missing` bucket here rather than by tantivy."""
    if getattr(node, "missing", None) is None:
        return False
    if not isinstance(node, (TermsAgg, *_VALUE_METRICS)):
        return True
    fields = [_field(p.target, node.field) for p in scope]
    return any(f is not None and f.kind in _PYTHON_MISSING for f in fields)


_PYTHON_MISSING = ("bool", "ip")  # field kinds whose `missing` tantivy cannot take: put in here


def _metric_request(node: AggNode, info: _Field, ctx: _Ctx) -> dict[str, Any]:
    slot = info.slot.name
    missing = _typed_missing(getattr(node, "missing", None), info, ctx)
    extra = {"missing": missing} if missing is not None else {}
    if isinstance(node, MetricAgg) and info.numeric:
        return {"extended_stats" if node.kind == "extended_stats" else "stats": {"field": slot, **extra}}
    # Distinct values with document counts: cardinality, percentiles, keyword value_count, booleans.
    if info.kind in _PYTHON_MISSING:
        extra = {}  # added by _add_metric_missing
    return {"terms": {"field": slot, "size": _TANTIVY_CAP, "min_doc_count": 1, **extra}}


def _order_for_tantivy(node: TermsAgg, sub_names: dict[str, str]) -> dict[str, str] | None:
    """The first ordering criterion in tantivy's terms (shard-level) form, or None if it has none."""
    path, direction = node.order[0]
    if path in ("_count", "_key"):
        return {path: direction}
    name, _, metric = path.partition(".")
    if ">" in name or "[" in name or name not in sub_names:
        return None
    sub = node.aggs[name]
    if not isinstance(sub, MetricAgg):
        return None
    internal = sub_names[name]
    if sub.kind in ("avg", "min", "max", "sum", "value_count") and not metric:
        return {f"{internal}.{'count' if sub.kind == 'value_count' else sub.kind}": direction}
    if sub.kind in ("stats", "extended_stats") and metric in ("avg", "min", "max", "sum", "count"):
        return {f"{internal}.{metric}": direction}
    return None


def _shard_size(node: TermsAgg) -> int:
    if node.shard_size is not None and node.shard_size > 0:
        return max(node.shard_size, node.size)
    return int(node.size * 1.5 + 10)


def _terms_request(node: TermsAgg, info: _Field, subs: dict[str, dict[str, Any]], sub_names: dict[str, str],
                   ctx: _Ctx) -> dict[str, Any]:
    body: dict[str, Any] = {"field": info.slot.name, "min_doc_count": 1}
    order = _order_for_tantivy(node, sub_names)
    if info.kind in ("f64", "ip") and order is not None and "_key" in order:
        # tantivy's key order on double columns puts whole numbers apart from the others; addresses it
        # orders as text, not as Elasticsearch does (by their 16 bytes)
        order = None
    include, exclude = node.include, node.exclude
    python_filter = info.kind != "keyword" and (include is not None or exclude is not None)
    if order is None or python_filter or node.min_doc_count > 1 and order is not None and "_count" not in order:
        body["size"] = _TANTIVY_CAP
        body["order"] = {"_count": "desc"}
    else:
        body["size"] = min(_shard_size(node), _TANTIVY_CAP)
        body["order"] = order
    if info.kind == "keyword":
        for key, value in (("include", include), ("exclude", exclude)):
            if isinstance(value, str):
                body[key] = lucene_regex_to_rust(value, "ALL")
            elif value is not None:
                body[key] = [_key_text(v) for v in value]
    missing = _typed_missing(node.missing, info, ctx)
    if missing is not None and info.kind not in _PYTHON_MISSING:  # else done in Python
        body["missing"] = missing
    request: dict[str, Any] = {"terms": body}
    if subs:
        request["aggs"] = subs
    return request


def _request(node: AggNode, target: Target, prep: dict[int, _Prep], tv_subs: Sequence[str], ctx: _Ctx
             ) -> dict[str, Any] | None:
    """tantivy's request for `node` (and the named subs) on one shard; None when the field is unmapped there."""
    info = _field(target, node.field)  # type: ignore[union-attr]
    if info is None:
        return None
    if isinstance(node, _VALUE_METRICS):
        return _metric_request(node, info, ctx)
    subs: dict[str, dict[str, Any]] = {}
    sub_names: dict[str, str] = {}
    for i, name in enumerate(tv_subs):
        request = _request(node.aggs[name], target, prep, [n for n in node.aggs[name].aggs], ctx)
        sub_names[name] = f"a{i}"
        if request is not None and "__groups__" in request:
            for group, body in request["__groups__"].items():
                subs[f"a{i}{group}"] = body
        elif request is not None:
            subs[f"a{i}"] = request
    if isinstance(node, TermsAgg):
        return _terms_request(node, info, subs, sub_names, ctx)
    p = prep.get(id(node)) or _Prep()
    if isinstance(node, HistogramAgg):
        body: dict[str, Any] = {"histogram": {"field": info.slot.name, "interval": node.interval,
                                              "offset": node.offset % node.interval, "min_doc_count": 1}}
    elif isinstance(node, DateHistogramAgg):
        assert p.rounding is not None
        if p.boundaries is None:
            width, offset = p.rounding.uniform  # type: ignore[misc]
            body = {"histogram": {"field": info.slot.name, "interval": width, "offset": offset, "min_doc_count": 1}}
        elif len(p.boundaries) < 2:
            return None
        else:
            bounds = p.boundaries
            body = {"range": {"field": info.slot.name, "ranges": [
                {"key": f"b{i}", "from": bounds[i], "to": bounds[i + 1]} for i in range(len(bounds) - 1)]}}
    else:
        assert isinstance(node, RangeAgg) and p.ranges is not None
        body = {}
        for group_number, group in enumerate(_range_groups(p.ranges, info)):
            ranges = []
            for index, (low, high) in group:
                item: dict[str, Any] = {"key": f"r{index}"}
                if low is not None:
                    item["from"] = low
                if high is not None:
                    item["to"] = high
                ranges.append(item)
            body[f"g{group_number}"] = {"range": {"field": info.slot.name, "ranges": ranges}}
            if subs:
                body[f"g{group_number}"]["aggs"] = subs
        return {"__groups__": body}  # type: ignore[dict-item]
    if subs:
        body["aggs"] = subs
    return body


def _int_bounds(low: float | None, high: float | None, info: _Field) -> tuple[float | None, float | None]:
    """Bounds of [low, high) over an integer column: whole numbers (tantivy truncates fractions)."""
    if info.kind != "i64":
        return low, high
    return (None if low is None else float(math.ceil(low)), None if high is None else float(math.ceil(high)))


def _range_groups(ranges: list[tuple[float | None, float | None]], info: _Field
                  ) -> list[list[tuple[int, tuple[float | None, float | None]]]]:
    """Ranges split into groups of non-overlapping ones (tantivy refuses overlaps in one request)."""
    groups: list[list[tuple[int, tuple[float | None, float | None]]]] = []
    ends: list[float] = []
    seen: dict[tuple[float | None, float | None], int] = {}
    order = sorted(range(len(ranges)), key=lambda i: (-math.inf if ranges[i][0] is None else ranges[i][0]))
    for index in order:
        low, high = _int_bounds(*ranges[index], info)
        if low is not None and high is not None and low >= high:
            continue  # matches nothing
        if (low, high) in seen:
            continue
        seen[(low, high)] = index
        start = -math.inf if low is None else low
        for number, end in enumerate(ends):
            if end <= start:
                groups[number].append((index, (low, high)))
                ends[number] = math.inf if high is None else high
                break
        else:
            groups.append([(index, (low, high))])
            ends.append(math.inf if high is None else high)
    return groups


def _run_tantivy(part: _Part, request: dict[str, Any]) -> dict[str, Any]:
    try:
        return part.target.searcher.aggregate(part.query, request)
    except ValueError as exc:
        if "bucket limit" in str(exc):
            raise _BucketLimit() from exc
        if "Invalid regex" in str(exc):  # a terms aggregation's include/exclude pattern
            raise IllegalArgumentError("invalid regular expression in the [include] or [exclude] of a terms "
                                       "aggregation") from exc
        raise


def _shard_partial(node: AggNode, part: _Part, prep: dict[int, _Prep], tv_subs: Sequence[str], ctx: _Ctx,
                   doc_count: Callable[[], int]) -> Any:
    """One shard's partial result for `node` (tantivy for the field's values)."""
    if part.query is None:
        return None
    request = _request(node, part.target, prep, tv_subs, ctx)
    if request is None:
        return _unmapped_partial(node, doc_count, ctx)
    if "__groups__" in request:
        output = _run_tantivy(part, request["__groups__"]) if request["__groups__"] else {}
        return _to_partial(node, part.target, {"__groups__": output}, prep, tv_subs, ctx, doc_count)
    output = _run_tantivy(part, {"x": request})
    partial = _to_partial(node, part.target, output["x"], prep, tv_subs, ctx, doc_count)
    if isinstance(node, _VALUE_METRICS) and node.missing is not None:
        _add_metric_missing(node, part, partial, ctx)
    return partial


def _add_metric_missing(node: AggNode, part: _Part, partial: Any, ctx: _Ctx) -> None:
    """Documents without the field, counted with their `missing` value where tantivy could not take it."""
    info = _field(part.target, node.field)  # type: ignore[union-attr]
    if info is None or info.kind not in _PYTHON_MISSING or part.query is None:
        return
    count = _count(_Part(part.target, _and(part.query, _missing_restriction(part.target, info.type.path, ctx))))
    if not count:
        return
    value = _typed_missing(node.missing, info, ctx)  # type: ignore[union-attr]
    key = int(value) if isinstance(value, bool) else value
    if isinstance(partial, _Values):
        partial.counts[key] = partial.counts.get(key, 0) + count
    elif isinstance(partial, _Stats):
        number = float(key) if info.kind == "bool" else 0.0
        partial.merge(_Stats(count, number * count, number, number, number * number * count))


def _unmapped_partial(node: AggNode, doc_count: Callable[[], int], ctx: _Ctx) -> Any:
    if isinstance(node, MetricAgg):
        stats = _Stats()
        missing = node.missing
        if missing is not None and not isinstance(missing, str):
            count = doc_count()
            if count:
                value = float(missing)
                stats = _Stats(count, value * count, value, value, value * value * count)
        return stats
    if isinstance(node, (CardinalityAgg, PercentilesAgg)):
        values = _Values()
        if node.missing is not None:
            count = doc_count()
            if count:
                values.counts[node.missing] = count
        return values
    return _Multi()


def _to_partial(node: AggNode, target: Target, out: dict[str, Any], prep: dict[int, _Prep],
                tv_subs: Sequence[str], ctx: _Ctx, doc_count: Callable[[], int]) -> Any:
    info = _field(target, node.field)  # type: ignore[union-attr]
    assert info is not None
    if isinstance(node, MetricAgg):
        if info.numeric:
            stats = _Stats(int(out.get("count") or 0), float(out.get("sum") or 0.0), out.get("min"), out.get("max"))
            if node.kind == "extended_stats":
                stats.sumsq = float(out.get("sum_of_squares") or 0.0)
            return stats
        counts = _term_counts(out, info)
        if node.kind == "value_count" or info.kind != "bool":
            return _Stats(sum(counts.values()))
        trues, falses = counts.get(1, 0), counts.get(0, 0)
        return _Stats(trues + falses, float(trues), 0.0 if falses else (1.0 if trues else None),
                      1.0 if trues else (0.0 if falses else None), float(trues))
    if isinstance(node, (CardinalityAgg, PercentilesAgg)):
        return _Values(_term_counts(out, info))
    sub_nodes = [(name, f"a{i}") for i, name in enumerate(tv_subs)]

    def bucket_of(raw: dict[str, Any]) -> _Bucket:
        bucket = _Bucket(int(raw.get("doc_count") or 0))
        for name, internal in sub_nodes:
            sub = node.aggs[name]
            if isinstance(sub, RangeAgg) and _field(target, sub.field) is not None:
                groups = {k[len(internal):]: v for k, v in raw.items() if k.startswith(internal + "g")}
                bucket.subs[name] = _to_partial(sub, target, {"__groups__": groups}, prep, list(sub.aggs), ctx,
                                                lambda b=bucket: b.count)
            elif internal in raw and not isinstance(sub, RangeAgg):
                bucket.subs[name] = _to_partial(sub, target, raw[internal], prep, list(sub.aggs), ctx,
                                                lambda b=bucket: b.count)
            else:
                bucket.subs[name] = _unmapped_partial(sub, lambda b=bucket: b.count, ctx)
        return bucket

    multi = _Multi()
    if isinstance(node, TermsAgg):
        multi.keys_kind = "date" if info.is_date else info.kind
        raw_buckets = out.get("buckets") or []
        for raw in raw_buckets:
            key = _term_key(raw, info)
            multi.buckets[key] = bucket_of(raw)
        multi.other = int(out.get("sum_other_doc_count") or 0)
        error = 0
        if multi.other > 0 and raw_buckets:
            path, direction = node.order[0]
            if path == "_key":
                error = 0
            elif path == "_count" and direction == "desc":
                error = int(raw_buckets[-1].get("doc_count") or 0)
            else:
                error = -1
        multi.shard_errors.append((frozenset(multi.buckets), error))
        return multi
    if isinstance(node, HistogramAgg):
        for raw in out.get("buckets") or []:
            multi.buckets[float(raw["key"])] = bucket_of(raw)
        return multi
    if isinstance(node, DateHistogramAgg):
        p = prep[id(node)]
        if p.boundaries is None:
            for raw in out.get("buckets") or []:
                multi.buckets[round(float(raw["key"]))] = bucket_of(raw)
        else:
            for raw in out.get("buckets") or []:
                key = raw.get("key")
                if isinstance(key, str) and key.startswith("b") and raw.get("doc_count"):
                    multi.buckets[p.boundaries[int(key[1:])]] = bucket_of(raw)
        return multi
    assert isinstance(node, RangeAgg)
    p = prep[id(node)]
    assert p.ranges is not None
    by_bounds: dict[tuple[float | None, float | None], _Bucket] = {}
    for group in out["__groups__"].values():
        for raw in group.get("buckets") or []:
            key = raw.get("key")
            if isinstance(key, str) and key.startswith("r") and key[1:].isdigit():
                by_bounds[_int_bounds(*p.ranges[int(key[1:])], info)] = bucket_of(raw)
    used: set[int] = set()
    for index, bounds in enumerate(p.ranges):
        bucket = by_bounds.get(_int_bounds(*bounds, info))
        if bucket is not None:  # ranges with the same bounds get their own copy (partials merge in place)
            multi.buckets[index] = copy.deepcopy(bucket) if id(bucket) in used else bucket
            used.add(id(bucket))
    return multi


def _term_key(raw: dict[str, Any], info: _Field) -> Any:
    key = raw["key"]
    if info.kind == "keyword":
        return key if isinstance(key, str) else _key_text(key)
    if info.kind == "f64":
        return float(key)
    if info.kind == "bool":
        return 1 if key in (1, True, "true", 1.0) else 0
    if info.kind == "ip":
        return ip_to_int(key)
    return int(key)


def _term_counts(out: dict[str, Any], info: _Field) -> dict[Any, int]:
    return {_term_key(raw, info): int(raw.get("doc_count") or 0) for raw in out.get("buckets") or []}


# -- metrics ----------------------------------------------------------------------------------
def _eval_metric(node: AggNode, scope: Scope, ctx: _Ctx) -> tuple[str, dict[str, Any]]:
    total: Any = None
    for part in scope:
        try:
            partial = _shard_partial(node, part, {}, [], ctx, lambda p=part: _count(p))
        except _BucketLimit:
            partial = _approximate_values(node, part, ctx)
        total = _merge(node, total, partial)
    return _finish(node, total, [p.target for p in scope], ctx)


def _approximate_values(node: AggNode, part: _Part, ctx: _Ctx) -> _Values | _Stats:
    """More distinct values than tantivy lists at once: its own estimators stand in."""
    info = _field(part.target, node.field)  # type: ignore[union-attr]
    assert info is not None and part.query is not None
    missing = _typed_missing(getattr(node, "missing", None), info, ctx)
    extra = {"missing": missing} if missing is not None and info.kind not in _PYTHON_MISSING else {}
    if isinstance(node, MetricAgg):  # keyword value_count: tantivy's own (a value repeated in a document counts)
        out = part.target.searcher.aggregate(part.query, {"x": {"value_count": {"field": info.slot.name, **extra}}})
        return _Stats(int(out["x"].get("value") or 0))
    if isinstance(node, CardinalityAgg):
        out = part.target.searcher.aggregate(part.query, {"x": {"cardinality": {"field": info.slot.name, **extra}}})
        return _Values({}, float(out["x"].get("value") or 0.0))
    assert isinstance(node, PercentilesAgg)
    out = part.target.searcher.aggregate(part.query, {
        "x": {"percentiles": {"field": info.slot.name, "percents": list(node.percents), "keyed": False, **extra}},
        "c": {"value_count": {"field": info.slot.name, **extra}}})
    values = {float(item["key"]): item.get("value") for item in out["x"].get("values") or []}
    return _Values({}, 0.0, [(values, int(out["c"].get("value") or 0))])


def _metric_format(node: AggNode, targets: Sequence[Target]) -> Any:
    """A date field's DateFormat, or a DecimalFormat for a `format` on a numeric field; None for plain values."""
    path = getattr(node, "field", None)
    spec = getattr(node, "format", None)
    for target in targets:
        info = _field(target, path) if path else None
        if info is not None:
            if info.is_date:
                return _date_format(info, spec)
            return compile_decimal_format(spec) if spec is not None and info.numeric else None
    return None


def _finish(node: AggNode, partial: Any, targets: Sequence[Target], ctx: _Ctx,
            prep: dict[int, _Prep] | None = None) -> tuple[str, dict[str, Any]]:
    """A merged partial → the response object (and its typed_keys name)."""
    if isinstance(node, MetricAgg):
        return node.kind, _finish_stats(node, partial or _Stats(), _metric_format(node, targets))
    if isinstance(node, CardinalityAgg):
        values = partial or _Values()
        return "cardinality", {"value": len(values.counts) + round(values.estimate)}
    if isinstance(node, PercentilesAgg):
        return "tdigest_percentiles" if node.method != "hdr" else "hdr_percentiles", \
            _finish_percentiles(node, partial or _Values(), _metric_format(node, targets))
    return _finish_multi(node, partial or _Multi(), targets, ctx, None, None, prep=prep)


def _with_string(out: dict[str, Any], key: str, value: float | None, fmt: Any) -> None:
    out[key] = value
    if fmt is not None and value is not None:
        out[f"{key}_as_string"] = _format_value(fmt, value)


def _finish_stats(node: MetricAgg, s: _Stats, fmt: Any) -> dict[str, Any]:
    count = s.count
    avg = s.sum / count if count else None
    low = float(s.min) if count and s.min is not None else None
    high = float(s.max) if count and s.max is not None else None
    total = float(s.sum) if count else 0.0
    if node.kind == "value_count":
        return {"value": count}
    if node.kind in ("avg", "min", "max", "sum"):
        value = {"avg": avg, "min": low, "max": high, "sum": total}[node.kind]
        out: dict[str, Any] = {}
        _with_string(out, "value", value, fmt)
        return out
    out = {"count": count, "min": low, "max": high, "avg": avg, "sum": total}
    if fmt is not None and count:
        for key in ("min", "max", "avg", "sum"):
            out[f"{key}_as_string"] = _format_value(fmt, out[key])
    if node.kind == "extended_stats":
        sigma = node.sigma
        if count:
            variance_pop = max(0.0, s.sumsq / count - (s.sum / count) ** 2)
            variance_sample = max(0.0, (s.sumsq - s.sum * s.sum / count) / (count - 1)) if count > 1 else None
            std_pop = math.sqrt(variance_pop)
            std_sample = math.sqrt(variance_sample) if variance_sample is not None else None
            assert avg is not None
            out.update({
                "sum_of_squares": s.sumsq, "variance": variance_pop, "variance_population": variance_pop,
                "variance_sampling": variance_sample, "std_deviation": std_pop,
                "std_deviation_population": std_pop, "std_deviation_sampling": std_sample,
                "std_deviation_bounds": {
                    "upper": avg + sigma * std_pop, "lower": avg - sigma * std_pop,
                    "upper_population": avg + sigma * std_pop, "lower_population": avg - sigma * std_pop,
                    "upper_sampling": avg + sigma * std_sample if std_sample is not None else None,
                    "lower_sampling": avg - sigma * std_sample if std_sample is not None else None}})
        else:
            out.update({"sum_of_squares": None, "variance": None, "variance_population": None,
                        "variance_sampling": None, "std_deviation": None, "std_deviation_population": None,
                        "std_deviation_sampling": None, "std_deviation_bounds": {
                            "upper": None, "lower": None, "upper_population": None, "lower_population": None,
                            "upper_sampling": None, "lower_sampling": None}})
    return out


def percentile(sorted_values: Sequence[tuple[float, int]], total: int, percent: float) -> float | None:
    """Linear interpolation between the closest ranks of (value, count) runs in ascending order."""
    if total == 0:
        return None
    index = percent / 100.0 * (total - 1)
    low_rank = math.floor(index)
    high_rank = min(low_rank + 1, total - 1)
    weight = index - low_rank
    low_value = high_value = None
    seen = 0
    for value, count in sorted_values:
        if low_value is None and low_rank < seen + count:
            low_value = value
        if high_rank < seen + count:
            high_value = value
            break
        seen += count
    assert low_value is not None and high_value is not None
    return low_value + weight * (high_value - low_value)


def _finish_percentiles(node: PercentilesAgg, values: _Values, fmt: Any) -> dict[str, Any]:
    results: dict[float, float | None] = {}
    if values.sketches:  # Approximate: per-shard sketches, weighted by their value counts.
        exact = sorted((float(k), c) for k, c in values.counts.items())
        sketches = list(values.sketches)
        if exact:
            total_exact = sum(c for _, c in exact)
            sketches.append(({p: percentile(exact, total_exact, p) for p in node.percents}, total_exact))
        for p in node.percents:
            weighted = [(s.get(float(p)), w) for s, w in sketches if s.get(float(p)) is not None and w]
            weight = sum(w for _, w in weighted)
            results[p] = sum(v * w for v, w in weighted) / weight if weight else None  # type: ignore[operator]
    else:
        runs = sorted((float(k), c) for k, c in values.counts.items())
        total = sum(c for _, c in runs)
        results = {p: percentile(runs, total, p) for p in node.percents}
    if node.keyed:
        keyed: dict[str, Any] = {}
        for p in node.percents:
            keyed[java_double(float(p))] = results[p]
            if fmt is not None and results[p] is not None:
                keyed[f"{java_double(float(p))}_as_string"] = _format_value(fmt, results[p])  # type: ignore
        return {"values": keyed}
    items = []
    for p in node.percents:
        item: dict[str, Any] = {"key": float(p), "value": results[p]}
        if fmt is not None and results[p] is not None:
            item["value_as_string"] = _format_value(fmt, results[p])  # type: ignore[arg-type]
        items.append(item)
    return {"values": items}


# -- bucketing aggregations -------------------------------------------------------------------
def _prepare(node: AggNode, scope: Scope, ctx: _Ctx, prep: dict[int, _Prep]) -> None:
    """Resolves what depends on the data or the request time (range bounds, date rounding, boundaries)."""
    if isinstance(node, RangeAgg):
        info = _first_field(node.field, scope)
        tz = _zone(node.time_zone)
        is_date = info.is_date if info is not None else node.date_range  # unmapped: date_range reads dates
        fmt: Any = None
        if is_date:
            fmt = _date_format(info, node.format) or DateFormat.compile("strict_date_optional_time||epoch_millis")
        elif node.format is not None:
            fmt = compile_decimal_format(node.format)
        resolved = []
        for item in node.ranges:
            low = _range_bound(item.start, info, fmt if is_date else None, tz, ctx, is_date)
            high = _range_bound(item.end, info, fmt if is_date else None, tz, ctx, is_date)
            resolved.append((low, high))
        prep[id(node)] = _Prep(ranges=resolved, fmt=fmt, tz=tz)
    elif isinstance(node, DateHistogramAgg):
        info = _first_field(node.field, scope)
        tz = _zone(node.time_zone)
        rounding = _Rounding(node.calendar_interval, node.fixed_interval_ms, tz, node.offset_ms)
        p = _Prep(rounding=rounding, fmt=_date_format(info, node.format) or
                  DateFormat.compile("strict_date_optional_time||epoch_millis"), tz=tz)
        if rounding.uniform is None:
            low, high = _field_bounds(node.field, scope)
            if low is not None and high is not None:
                p.boundaries = rounding.boundaries(low, high + 1, ctx)
            else:
                p.boundaries = []
        prep[id(node)] = p
    for sub in node.aggs.values():
        if isinstance(sub, _BUCKETING) and _pure(sub, scope):
            _prepare(sub, scope, ctx, prep)


def _first_field(path: str, scope: Scope) -> _Field | None:
    for part in scope:
        info = _field(part.target, path)
        if info is not None:
            return info
    return None


def _range_bound(value: Any, info: _Field | None, fmt: DateFormat | None, tz: dt.tzinfo | None, ctx: _Ctx,
                 is_date: bool) -> float | None:
    if value is None:
        return None
    if is_date:
        return float(_parse_date(value, info, fmt, tz, ctx.now))
    if isinstance(value, bool):
        raise IllegalArgumentError(f"[range] bound [{value}] is not a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise IllegalArgumentError(f"For input string: \"{value}\"") from None


def _field_bounds(path: str, scope: Scope) -> tuple[int | None, int | None]:
    low = high = None
    for part in scope:
        info = _field(part.target, path)
        if info is None or part.query is None:
            continue
        out = part.target.searcher.aggregate(part.query, {"x": {"stats": {"field": info.slot.name}}})["x"]
        if out.get("count"):
            low = int(out["min"]) if low is None else min(low, int(out["min"]))
            high = int(out["max"]) if high is None else max(high, int(out["max"]))
    return low, high


def _eval_bucketing(node: AggNode, scope: Scope, ctx: _Ctx) -> tuple[str, dict[str, Any]]:
    assert isinstance(node, _BUCKETING)
    prep: dict[int, _Prep] = {}
    _prepare(node, scope, ctx, prep)
    info = _first_field(node.field, scope)
    missing_value = _typed_missing(node.missing, info, ctx) if info is not None else node.missing
    value_kind = None  # an unmapped field's kind of key, from value_type
    if info is None and isinstance(node, TermsAgg) and node.value_type is not None:
        missing_value, value_kind = _value_type_missing(node, ctx)
    unmapped = [p for p in scope if _field(p.target, node.field) is None]
    # Documents without the field that `missing` puts in a bucket: counted here, sub-aggregations per bucket.
    missing_counts: list[int] = []
    in_python = _python_missing(node, scope)
    if in_python:
        mapped = _narrow([p for p in scope if _field(p.target, node.field) is not None],
                         lambda t: _missing_restriction(t, node.field, ctx))
        missing_counts = [_count(p) for p in mapped]
    python_subs = any(missing_counts) or (isinstance(node, TermsAgg) and node.missing is not None and
                                          any(_count(p) for p in unmapped))
    pure_subs = [] if python_subs else [name for name, sub in node.aggs.items()
                                        if _pure(sub, scope) and _nest_size(sub, prep) <= _NEST_LIMIT]
    attempts = [pure_subs]
    for fewer in ([n for n in pure_subs if isinstance(node.aggs[n], MetricAgg)], []):
        if fewer != attempts[-1]:
            attempts.append(fewer)
    total: Any = None
    for tv_subs in attempts:
        try:
            total = None
            for part in scope:
                partial = _shard_partial(node, part, prep, tv_subs, ctx, lambda p=part: _count(p))
                total = _merge(node, total, partial)
            break
        except _BucketLimit:
            continue
    else:
        if isinstance(node, TermsAgg):
            raise TooManyBucketsError(_TANTIVY_CAP + 1)
        raise TooManyBucketsError(MAX_BUCKETS + 1)
    multi: _Multi = total or _Multi()
    multi.keys_kind = multi.keys_kind or value_kind
    if in_python and sum(missing_counts):
        _add_missing(node, multi, missing_value, sum(missing_counts), prep)
    if isinstance(node, TermsAgg) and node.missing is not None:
        unmapped_docs = sum(_count(p) for p in unmapped)
        if unmapped_docs:
            key = missing_value if not isinstance(missing_value, bool) else int(missing_value)
            bucket = multi.buckets.setdefault(key, _Bucket())
            bucket.count += unmapped_docs
            bucket.missing = True
    if isinstance(node, TermsAgg) and node.min_doc_count == 0:
        _add_zero_terms(node, multi, scope, ctx)
    return _finish_multi(node, multi, [p.target for p in scope], ctx, scope, tv_subs, prep=prep,
                         missing_value=missing_value)


_NEST_LIMIT = 2_000  # buckets a nested date_histogram may bring per parent bucket before it is evaluated per bucket


def _nest_size(node: AggNode, prep: dict[int, _Prep]) -> int:
    """Buckets per parent bucket that a nested subtree makes tantivy build, when known in advance."""
    p = prep.get(id(node))
    own = len(p.boundaries) if p is not None and p.boundaries is not None else 1
    return own * max((_nest_size(sub, prep) for sub in node.aggs.values()), default=1)


def _add_missing(node: AggNode, multi: _Multi, value: Any, count: int, prep: dict[int, _Prep]) -> None:
    if isinstance(node, TermsAgg):
        keys = [int(value) if isinstance(value, bool) else value]
    elif isinstance(node, HistogramAgg):
        keys = [math.floor((float(value) - node.offset) / node.interval) * node.interval + node.offset]
    elif isinstance(node, DateHistogramAgg):
        keys = [prep[id(node)].rounding.round(int(value))]  # type: ignore[union-attr]
    else:
        assert isinstance(node, RangeAgg)
        ranges = prep[id(node)].ranges or []
        keys = [i for i, (low, high) in enumerate(ranges)
                if (low is None or float(value) >= low) and (high is None or float(value) < high)]
    for key in keys:
        bucket = multi.buckets.setdefault(key, _Bucket())
        bucket.count += count
        bucket.missing = True


def _add_zero_terms(node: TermsAgg, multi: _Multi, scope: Scope, ctx: _Ctx) -> None:
    for part in scope:
        info = _field(part.target, node.field)
        if info is None:
            continue
        every = part.target.everything()
        request = _terms_request(TermsAgg(node.field, include=node.include, exclude=node.exclude), info, {}, {},
                                 ctx)
        request["terms"]["size"] = _TANTIVY_CAP
        request["terms"]["order"] = {"_key": "asc"}
        try:
            out = _run_tantivy(_Part(part.target, every), {"x": request})["x"]
        except _BucketLimit:
            continue
        for key in _term_counts(out, info):
            multi.buckets.setdefault(key, _Bucket())
        multi.keys_kind = multi.keys_kind or ("date" if info.is_date else info.kind)


# -- finishing bucketing aggregations ------------------------------------------------------------
def _restriction(node: AggNode, key: Any, bucket: _Bucket, target: Target, prep: dict[int, _Prep],
                 missing_value: Any, ctx: _Ctx) -> Any:
    """The documents of one bucket (on one shard), as a query; None for none, _ALL for all."""
    info = _field(target, node.field)  # type: ignore[union-attr]
    if info is None:
        return _ALL if bucket.missing else None
    schema = target.shard.schema
    if isinstance(node, TermsAgg):
        if key is None:
            query = None
        elif info.kind == "keyword":
            query = tantivy.Query.term_query(schema, info.slot.name, str(key))
        elif info.kind == "bool":
            query = tantivy.Query.term_query(schema, info.slot.name, bool(key))
        elif info.kind == "ip":
            query = tantivy.Query.term_query(schema, info.slot.name, ip_from_int(int(key)))
        elif info.kind == "f64":
            query = tantivy.Query.term_query(schema, info.slot.name, float(key))
        else:
            query = tantivy.Query.term_query(schema, info.slot.name, int(key))
        missing_here = missing_value is not None and _same_key(key, missing_value)
    else:
        if isinstance(node, HistogramAgg):
            low, high = float(key), float(key) + node.interval
        elif isinstance(node, DateHistogramAgg):
            rounding = prep[id(node)].rounding
            assert rounding is not None
            low, high = float(key), float(rounding.next(int(key)))
        else:
            assert isinstance(node, RangeAgg)
            low, high = prep[id(node)].ranges[key]  # type: ignore[index]
        query = _value_range(target, info, low, high)
        missing_here = bucket.missing
    if missing_here:
        absent = _not(_compile(target, Exists(node.field), ctx))  # type: ignore[union-attr]
        return absent if query is None else _or(query, absent)
    return query


def _same_key(key: Any, missing: Any) -> bool:
    if isinstance(missing, bool):
        return key == int(missing)
    return key == missing


def _finish_multi(node: AggNode, multi: _Multi, targets: Sequence[Target], ctx: _Ctx, scope: Scope | None,
                  tv_subs: Sequence[str] | None, *, prep: dict[int, _Prep] | None = None,
                  missing_value: Any = None) -> tuple[str, dict[str, Any]]:
    """Orders, selects, fills and renders the merged buckets; sub-aggregations from the partials where
    tantivy computed them (tv_subs), else evaluated per bucket over the narrowed scope."""
    prep = prep if prep is not None else {}
    tv = set(node.aggs) if tv_subs is None else set(tv_subs)
    empty_subs = _empty_subs_factory(node, targets, ctx)

    def sub_results(key: Any, bucket: _Bucket) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, sub in node.aggs.items():
            if name in tv or scope is None:
                kind, result = _finish(sub, bucket.subs.get(name) or _empty_partial(sub), targets, ctx, prep)
            elif bucket.count == 0:
                kind, result = empty_subs(name)
            else:
                narrowed = _narrow(scope, lambda t: _restriction(node, key, bucket, t, prep, missing_value, ctx))
                kind, result = _eval(sub, narrowed, ctx)
            out[_name(name, kind, ctx)] = _with_meta(sub, result)
        return out

    if isinstance(node, TermsAgg):
        return _finish_terms(node, multi, targets, ctx, sub_results)
    if isinstance(node, RangeAgg):
        return _finish_range(node, multi, targets, ctx, prep, sub_results)
    return _finish_histogram(node, multi, targets, ctx, prep, sub_results, scope)


def _empty_partial(node: AggNode) -> Any:
    if isinstance(node, MetricAgg):
        return _Stats()
    if isinstance(node, (CardinalityAgg, PercentilesAgg)):
        return _Values()
    return _Multi()


def _empty_subs_factory(node: AggNode, targets: Sequence[Target], ctx: _Ctx
                        ) -> Callable[[str], tuple[str, dict[str, Any]]]:
    def empty(name: str) -> tuple[str, dict[str, Any]]:
        sub = node.aggs[name]
        cached = ctx.empty_cache.get(id(sub))
        if cached is None:
            before = ctx.buckets
            kind, result = _eval(sub, [_Part(t, None) for t in targets], ctx)
            cached = (kind, result, ctx.buckets - before)
            ctx.empty_cache[id(sub)] = cached
        else:
            ctx.add_buckets(cached[2])
        return cached[0], copy.deepcopy(cached[1])
    return empty


class _Sorter:
    """Elasticsearch bucket order: the criteria, then the key ascending; missing metric values last."""

    def __init__(self, order: Order, resolve: Callable[[Any, _Bucket, str], Any]) -> None:
        self.order = order
        self.resolve = resolve

    def sort(self, items: list[tuple[Any, _Bucket]]) -> list[tuple[Any, _Bucket]]:
        items = sorted(items, key=lambda kv: _key_order(kv[0]))
        for path, direction in reversed(self.order):
            descending = direction == "desc"
            if path == "_key":
                items.sort(key=lambda kv: _key_order(kv[0]), reverse=descending)
            elif path == "_count":
                items.sort(key=lambda kv: kv[1].count, reverse=descending)
            else:
                values = {id(kv[1]): self.resolve(kv[0], kv[1], path) for kv in items}
                present = [kv for kv in items if values[id(kv[1])] is not None]
                absent = [kv for kv in items if values[id(kv[1])] is None]
                present.sort(key=lambda kv: values[id(kv[1])], reverse=descending)
                items = present + absent
        return items


def _key_order(key: Any) -> Any:
    if isinstance(key, str):
        return (1, key.encode())
    return (0, key)


def _resolve_path(result: dict[str, Any], path: str) -> Any:
    """A sort value from a finished sub-aggregation result: `name`, `name.metric`, `a>b.metric`."""
    parts = path.split(">")
    current: Any = result
    for i, part in enumerate(parts):
        name, _, metric = part.partition(".")
        if "[" in name and name.endswith("]"):
            name, _, metric = name[:-1].partition("[")
        entry = _lookup(current, name)
        if entry is None:
            return None
        if i < len(parts) - 1:
            current = entry
            continue
        if metric:
            if metric == "_count" or metric == "doc_count":
                return entry.get("doc_count")
            if "values" in entry:  # percentiles
                values = entry["values"]
                if isinstance(values, dict):
                    for k, v in values.items():
                        if not k.endswith("_as_string") and _float(k) == _float(metric):
                            return v
                return None
            return entry.get(metric)
        if "value" in entry:
            return entry["value"]
        return entry.get("doc_count")
    return None


def _lookup(result: dict[str, Any], name: str) -> Any:
    if name in result:
        return result[name]
    for key, value in result.items():
        if "#" in key and key.split("#", 1)[1] == name:
            return value
    return None


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _resolver(node: AggNode, sub_results: Callable[[Any, _Bucket], dict[str, Any]],
              memo: dict[int, dict[str, Any]]) -> Callable[[Any, _Bucket, str], Any]:
    def resolve(key: Any, bucket: _Bucket, path: str) -> Any:
        results = memo.get(id(bucket))
        if results is None:
            results = sub_results(key, bucket)
            memo[id(bucket)] = results
        value = _resolve_path(results, path)
        if isinstance(value, float) and math.isnan(value):
            return None
        return value
    return resolve


def _include_filter(node: TermsAgg, kind: str | None, convert: Callable[[Any], Any] | None
                    ) -> Callable[[Any], bool] | None:
    """Which keys `include`/`exclude` keep; `convert` reads their listed values as keys (dates, addresses)."""
    if node.include is None and node.exclude is None or kind == "keyword":
        return None  # keywords are filtered by tantivy
    listed = {}
    if convert is not None:
        for spec in (node.include, node.exclude):
            if spec is not None and not isinstance(spec, str):
                listed[id(spec)] = {convert(v) for v in spec}

    def matches(spec: Any, key: Any) -> bool:
        if isinstance(spec, str):
            return re.fullmatch(lucene_regex_to_rust(spec, "ALL"), _key_text(key)) is not None
        if id(spec) in listed:
            return key in listed[id(spec)]
        return any(_same_value(key, v) for v in spec)

    def keep(key: Any) -> bool:
        if node.include is not None and not matches(node.include, key):
            return False
        return not (node.exclude is not None and matches(node.exclude, key))
    return keep


def _same_value(key: Any, value: Any) -> bool:
    if isinstance(key, str):
        return key == _key_text(value)
    try:
        return float(key) == float(value)
    except (TypeError, ValueError):
        return _key_text(key) == str(value)


def _finish_terms(node: TermsAgg, multi: _Multi, targets: Sequence[Target], ctx: _Ctx,
                  sub_results: Callable[[Any, _Bucket], dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    kind = multi.keys_kind
    if kind is None:
        info = next((f for f in (_field(t, node.field) for t in targets) if f is not None), None)
        kind = None if info is None else ("date" if info.is_date else info.kind)
    info = next((f for f in (_field(t, node.field) for t in targets) if f is not None), None)
    fmt: Any = None
    if kind == "date":
        fmt = _date_format(info, node.format) or DateFormat.compile("strict_date_optional_time||epoch_millis")
    elif kind in ("i64", "f64") and node.format is not None:
        fmt = compile_decimal_format(node.format)
    convert: Callable[[Any], Any] | None = None
    if kind == "date":
        def convert(value: Any) -> Any:
            return _parse_date(value, info, fmt, None, ctx.now)
    elif kind == "ip":
        def convert(value: Any) -> Any:
            try:
                return ip_to_int(value)
            except ValueError:
                raise IllegalArgumentError(f"'{value}' is not an IP string literal.") from None
    keep = _include_filter(node, kind, convert)
    items = [(k, b) for k, b in multi.buckets.items() if keep is None or keep(k)]
    memo: dict[int, dict[str, Any]] = {}
    sorter = _Sorter(node.order, _resolver(node, sub_results, memo))
    eligible = [kv for kv in items if kv[1].count >= node.min_doc_count]
    ordered = sorter.sort(eligible)
    selected = ordered[:node.size]
    other = multi.other + sum(b.count for _, b in ordered[node.size:])
    ctx.add_buckets(len(selected))
    errors = multi.shard_errors if len(multi.shard_errors) > 1 else []  # one shard: its counts are exact
    total_error = 0
    for _keys, error in errors:
        if error < 0:
            total_error = -1
            break
        total_error += error
    buckets = []
    for key, bucket in selected:
        out: dict[str, Any] = {"key": key, "doc_count": bucket.count}
        if kind == "ip":
            out = {"key": ip_from_int(key), "doc_count": bucket.count}
        elif kind == "bool":
            out = {"key": key, "key_as_string": "true" if key else "false", "doc_count": bucket.count}
        elif fmt is not None and isinstance(key, (int, float)) and not isinstance(key, bool):
            out = {"key": key, "key_as_string": _format_value(fmt, key), "doc_count": bucket.count}
        if node.show_term_doc_count_error:
            missed = [e for keys, e in errors if key not in keys]
            out["doc_count_error_upper_bound"] = -1 if any(e < 0 for e in missed) else sum(missed)
        results = memo.get(id(bucket))
        out.update(results if results is not None else sub_results(key, bucket))
        buckets.append(out)
    type_name = {"keyword": "sterms", "ip": "sterms", "i64": "lterms", "date": "lterms", "bool": "lterms",
                 "f64": "dterms"}.get(
        kind or "", "sterms" if multi.buckets else "umterms")
    if kind is None and node.missing is not None and multi.buckets:
        type_name = "sterms" if isinstance(node.missing, str) else ("dterms" if isinstance(node.missing, float)
                                                                     else "lterms")
    return type_name, {"doc_count_error_upper_bound": total_error, "sum_other_doc_count": other,
                       "buckets": buckets}


def _finish_range(node: RangeAgg, multi: _Multi, targets: Sequence[Target], ctx: _Ctx, prep: dict[int, _Prep],
                  sub_results: Callable[[Any, _Bucket], dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    p = prep.get(id(node)) or _Prep(ranges=[(None, None)] * len(node.ranges))
    ranges = p.ranges or []
    info = next((f for f in (_field(t, node.field) for t in targets) if f is not None), None)
    is_date = info.is_date if info is not None else node.date_range
    fmt = p.fmt
    order = sorted(range(len(ranges)), key=lambda i: (-math.inf if ranges[i][0] is None else ranges[i][0],
                                                      math.inf if ranges[i][1] is None else ranges[i][1]))
    ctx.add_buckets(len(order))
    rendered = []
    for index in order:
        low, high = ranges[index]
        bucket = multi.buckets.get(index) or _Bucket()
        item = node.ranges[index]
        if item.key is not None:
            key = item.key
        else:
            def text(v: float | None) -> str:
                if v is None:
                    return "*"
                return _format_value(fmt, v, p.tz) if fmt is not None else java_double(v)
            key = f"{text(low)}-{text(high)}"
        out: dict[str, Any] = {"key": key}
        if low is not None:
            out["from"] = low
            if fmt is not None:
                out["from_as_string"] = _format_value(fmt, low, p.tz)
        if high is not None:
            out["to"] = high
            if fmt is not None:
                out["to_as_string"] = _format_value(fmt, high, p.tz)
        out["doc_count"] = bucket.count
        out.update(sub_results(index, bucket))
        rendered.append(out)
    type_name = "date_range" if node.date_range or is_date else "range"
    if node.keyed:
        return type_name, {"buckets": {b.pop("key"): b for b in rendered}}
    return type_name, {"buckets": rendered}


def _finish_histogram(node: HistogramAgg | DateHistogramAgg, multi: _Multi, targets: Sequence[Target], ctx: _Ctx,
                      prep: dict[int, _Prep], sub_results: Callable[[Any, _Bucket], dict[str, Any]],
                      scope: Scope | None) -> tuple[str, dict[str, Any]]:
    is_date = isinstance(node, DateHistogramAgg)
    p = prep.get(id(node))
    if is_date and p is None:  # nothing was prepared (no field anywhere): no buckets
        p = _Prep(rounding=_Rounding(node.calendar_interval, node.fixed_interval_ms,  # type: ignore[union-attr]
                                     _zone(node.time_zone), node.offset_ms))  # type: ignore[union-attr]
    info = next((f for f in (_field(t, node.field) for t in targets) if f is not None), None)
    buckets = {k: b for k, b in multi.buckets.items() if b.count > 0}

    def key_of(value: float) -> Any:
        if is_date:
            return p.rounding.round(int(value))  # type: ignore[union-attr]
        return math.floor((value - node.offset) / node.interval) * node.interval + node.offset  # type: ignore

    def next_key(key: Any) -> Any:
        return p.rounding.next(int(key))  # type: ignore[union-attr]

    hard = node.hard_bounds
    hard_low = hard_high = None
    if hard is not None:
        hard_low, hard_high = (_bound_value(v, node, info, p, ctx) for v in hard)
    if hard is not None:
        buckets = {k: b for k, b in buckets.items()
                   if (hard_low is None or k >= hard_low) and (hard_high is None or k <= hard_high)}
    if node.min_doc_count == 0:
        low = min(buckets) if buckets else None
        high = max(buckets) if buckets else None
        if node.extended_bounds is not None:
            ext_low, ext_high = (_bound_value(v, node, info, p, ctx) for v in node.extended_bounds)
            if hard_low is not None and ext_low is not None:
                ext_low = max(ext_low, hard_low)
            if hard_high is not None and ext_high is not None:
                ext_high = min(ext_high, hard_high)
            if ext_low is not None:
                ext_key = key_of(ext_low)
                low = ext_key if low is None else min(low, ext_key)
            if ext_high is not None:
                ext_key = key_of(ext_high)
                high = ext_key if high is None else max(high, ext_key)
            if low is not None and high is None:
                high = low
            if high is not None and low is None:
                low = high
        if low is not None and high is not None:
            _check_fill(node, low, high, ctx, p)
            if is_date:
                key = low
                while key <= high:
                    buckets.setdefault(key, _Bucket())
                    if len(buckets) + ctx.buckets > MAX_BUCKETS:
                        raise TooManyBucketsError(len(buckets) + ctx.buckets)
                    key = next_key(key)
            else:  # by bucket number: adding the interval to a key can round back onto the same key
                interval, offset = node.interval, node.offset  # type: ignore[union-attr]
                for number in range(round((low - offset) / interval), round((high - offset) / interval) + 1):
                    buckets.setdefault(number * interval + offset, _Bucket())
    else:
        buckets = {k: b for k, b in buckets.items() if b.count >= node.min_doc_count}
    items = list(buckets.items())
    memo: dict[int, dict[str, Any]] = {}
    ordered = _Sorter(node.order, _resolver(node, sub_results, memo)).sort(items)
    ctx.add_buckets(len(ordered))
    fmt: Any = p.fmt if is_date and p is not None else None
    if not is_date and node.format is not None:
        fmt = compile_decimal_format(node.format)
    tz = p.tz if p is not None else None
    rendered = []
    for key, bucket in ordered:
        if is_date:
            out: dict[str, Any] = {"key_as_string": fmt.format(int(key), tz=tz) if fmt else str(key),
                                   "key": int(key), "doc_count": bucket.count}
        elif fmt is not None:
            out = {"key_as_string": fmt.format(float(key)), "key": float(key), "doc_count": bucket.count}
        else:
            out = {"key": float(key), "doc_count": bucket.count}
        results = memo.get(id(bucket))
        out.update(results if results is not None else sub_results(key, bucket))
        rendered.append(out)
    type_name = "date_histogram" if is_date else "histogram"
    if node.keyed:
        return type_name, {"buckets": {(b["key_as_string"] if "key_as_string" in b else java_double(b["key"])): b
                                       for b in rendered}}
    return type_name, {"buckets": rendered}


def _bound_value(value: Any, node: AggNode, info: _Field | None, p: _Prep | None, ctx: _Ctx) -> Any:
    if value is None:
        return None
    if isinstance(node, DateHistogramAgg):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(value)  # numeric bounds are epoch milliseconds, whatever the format
        fmt = p.fmt if p is not None else None
        return _parse_date(value, info, fmt, p.tz if p is not None else None, ctx.now)
    return float(value)


def _check_fill(node: AggNode, low: Any, high: Any, ctx: _Ctx, p: _Prep | None) -> None:
    """Refuses before filling when the empty buckets alone would pass the limit."""
    if isinstance(node, HistogramAgg):
        estimate = (high - low) / node.interval + 1
    else:
        assert p is not None and p.rounding is not None
        estimate = (high - low) / p.rounding.max_width + 1
    if estimate > MAX_BUCKETS - ctx.buckets:
        raise TooManyBucketsError(ctx.buckets + int(min(estimate, 2**62)))


# -- single-bucket and filters aggregations ------------------------------------------------------
def _single_bucket(node: AggNode, scope: Scope, ctx: _Ctx) -> dict[str, Any]:
    out: dict[str, Any] = {"doc_count": _scope_count(scope)}
    out.update(_eval_all(node.aggs, scope, ctx))
    return out


def _filters(node: FiltersAgg, scope: Scope, ctx: _Ctx) -> dict[str, Any]:
    ctx.add_buckets(len(node.filters) + (1 if node.other_bucket else 0))
    buckets: list[tuple[str | None, dict[str, Any]]] = []
    for name, query in node.filters:
        narrowed = _narrow(scope, lambda t, q=query: _compile(t, q, ctx))
        buckets.append((name, _single_bucket(node, narrowed, ctx)))
    if node.other_bucket:
        def others(target: Target) -> Any:
            if not node.filters:
                return _ALL
            return _not(_or(*[_compile(target, q, ctx) for _, q in node.filters]))
        buckets.append((node.other_bucket_key, _single_bucket(node, _narrow(scope, others), ctx)))
    if node.keyed:
        return {"buckets": {name: bucket for name, bucket in buckets}}
    named = any(name is not None for name, _ in node.filters)
    return {"buckets": [({"key": name, **bucket} if named and name is not None else bucket)
                        for name, bucket in buckets]}


# -- ip ranges ----------------------------------------------------------------------------------
def _ip_range(node: IpRangeAgg, scope: Scope, ctx: _Ctx) -> dict[str, Any]:
    """One bucket per range, [from, to) over the addresses' 16-byte order, ordered by from then to
    (Elasticsearch's binary range order); each bucket's documents counted and its sub-aggregations
    evaluated over the scope narrowed to them."""
    def bound(text: str | None, absent: int) -> int:
        return absent if text is None else ip_to_int(text)

    items = sorted(node.ranges, key=lambda r: (bound(r.start, -1), bound(r.end, 1 << 128)))
    ctx.add_buckets(len(items))
    missing = None
    if node.missing is not None:
        try:
            missing = ip_to_int(node.missing)
        except ValueError:
            raise IllegalArgumentError(f"'{node.missing}' is not an IP string literal.") from None
    rendered = []
    for item in items:
        low, high = bound(item.start, 0), bound(item.end, 1 << 128)
        holds_missing = missing is not None and low <= missing < high

        def restrict(target: Target, start: str | None = item.start, end: str | None = item.end,
                     with_missing: bool = holds_missing) -> Any:
            here = _field(target, node.field)
            if here is None:
                return _ALL if with_missing else None
            if start is None and end is None:
                query = _compile(target, Exists(node.field), ctx)
            else:
                query = tantivy.Query.range_query(target.shard.schema, here.slot.name, tantivy.FieldType.IpAddr,
                                                  start, end, True, end is None)
            if with_missing:
                return _or(query, _missing_restriction(target, node.field, ctx))
            return query

        narrowed = _narrow(scope, restrict)
        key = item.key if item.key is not None else f"{item.start or '*'}-{item.end or '*'}"
        out: dict[str, Any] = {} if node.keyed else {"key": key}
        if item.start is not None:
            out["from"] = item.start
        if item.end is not None:
            out["to"] = item.end
        out["doc_count"] = _scope_count(narrowed)
        out.update(_eval_all(node.aggs, narrowed, ctx))
        rendered.append((key, out))
    if node.keyed:
        return {"buckets": {key: out for key, out in rendered}}
    return {"buckets": [out for _, out in rendered]}


# -- top hits -----------------------------------------------------------------------------------
@dataclass
class _Hit:
    part: _Part
    address: Any
    rank: int
    score: float | None
    values: list[Any] = field(default_factory=list)


def _top_hits(node: TopHitsAgg, scope: Scope, ctx: _Ctx) -> dict[str, Any]:
    want = node.offset + node.size
    hits: list[_Hit] = []
    total = 0
    by_score = node.sort is None or (len(node.sort) == 1 and node.sort[0].field == "_score"
                                     and node.sort[0].order == "desc")
    for part in scope:
        if part.query is None:
            continue
        searcher = part.target.searcher
        if by_score:
            result = searcher.search(part.query, max(want, 1), count=True)
            total += result.count
            hits += [_Hit(part, a, r, s) for r, (s, a) in enumerate(result.hits)]
            continue
        count = count_docs(searcher, part.query)
        total += count
        if count == 0:
            continue
        result = searcher.search(part.query, count, count=False)
        shard_hits = [_Hit(part, a, r, s) for r, (s, a) in enumerate(result.hits)]
        _hit_sort_values(part, shard_hits, node.sort or ())
        hits += shard_hits
    if by_score:
        hits.sort(key=lambda h: (-(h.score or 0.0), h.part.target.order, h.rank))
    else:
        _sort_hits(hits, node.sort or ())
    page = hits[node.offset:want]
    scores_shown = by_score or node.track_scores or any(k.field == "_score" for k in node.sort or ())
    max_score = max((h.score for h in hits if h.score is not None), default=None) if scores_shown else None
    rendered = []
    sources: dict[int, list[tuple[dict[str, Any], Any]]] = {}  # per target: (entry, parsed source)
    for hit in page:
        doc = hit.part.target.searcher.doc(hit.address)
        entry: dict[str, Any] = {"_index": hit.part.target.index.name, "_id": doc.get_first("_id"),
                                 "_score": hit.score if scores_shown else None}
        if node.source is not False:
            sources.setdefault(id(hit.part.target), []).append((entry, doc.get_first("_source")))
            entry["_source"] = None
        if not by_score:
            entry["sort"] = [_render_sort_value(v) for v in hit.values]
        rendered.append(entry)
    targets = {id(part.target): part.target for part in scope}
    for key, items in sources.items():
        reveal = targets[key].reveal
        raw = [source for _, source in items]
        parsed = reveal(targets[key], [entry["_id"] for entry, _ in items], raw) if reveal is not None \
            else [orjson.loads(source) for source in raw]
        for (entry, _), source in zip(items, parsed):
            entry["_source"] = node.source(source) if callable(node.source) else source
    return {"hits": {"total": {"value": total, "relation": "eq"}, "max_score": max_score, "hits": rendered}}


def _hit_sort_values(part: _Part, hits: list[_Hit], sort: Sequence[HitSort]) -> None:
    addresses = [h.address for h in hits]
    searcher = part.target.searcher
    for key in sort:
        if key.field == "_score":
            values: list[Any] = [h.score for h in hits]
        elif key.field == "_doc":
            values = [part.target.order * (1 << 40) + h.rank for h in hits]
        else:
            info = _field(part.target, key.field)
            if info is None:
                values = [None] * len(hits)
            elif info.kind == "text":
                raise _text_error(key.field)
            elif info.kind == "keyword":
                assert part.query is not None
                ordered = searcher.search(part.query, max(len(hits), 1), order_by_field=info.slot.name)
                by_address = {(a.segment_ord, a.doc): v for v, a in ordered.hits}
                values = [by_address.get((a.segment_ord, a.doc)) for a in addresses]
            else:
                values = searcher.fast_field_values(info.slot.name, addresses)
        for hit, value in zip(hits, values):
            hit.values.append(value)


def _sort_hits(hits: list[_Hit], sort: Sequence[HitSort]) -> None:
    hits.sort(key=lambda h: (h.part.target.order, h.rank))
    for position in range(len(sort) - 1, -1, -1):
        key = sort[position]
        descending = key.order == "desc"
        if key.missing in ("_first", "_last"):
            rank = 0 if (key.missing == "_first") != descending else 2
            present = [h.values[position] for h in hits if h.values[position] is not None]
            filler: Any = ("" if isinstance(present[0], str) else 0) if present else 0

            def sort_key(h: _Hit, i: int = position, m: int = rank, f: Any = filler) -> tuple[int, Any]:
                value = h.values[i]
                return (m, f) if value is None else (1, value)
        else:
            def sort_key(h: _Hit, i: int = position, sub: Any = key.missing) -> tuple[int, Any]:
                value = h.values[i]
                return (1, sub if value is None else value)
        hits.sort(key=sort_key, reverse=descending)


def _render_sort_value(value: Any) -> Any:
    if isinstance(value, bool):
        return 1 if value else 0
    return value


# -- date rounding ------------------------------------------------------------------------------
_MS = {"second": 1000, "minute": 60_000, "hour": 3_600_000, "day": 86_400_000, "week": 7 * 86_400_000}
_MAX_WIDTH = {**_MS, "month": 31 * 86_400_000, "quarter": 92 * 86_400_000, "year": 366 * 86_400_000}
_MIN_WIDTH = {**_MS, "month": 28 * 86_400_000, "quarter": 89 * 86_400_000, "year": 365 * 86_400_000}
_DAY_MS = 86_400_000
_WEEK_BASE = 4 * _DAY_MS  # 1970-01-05, the first Monday after the epoch


def _days_from_civil(y: int, m: int, d: int) -> int:
    return (dt.date(y, m, d) - dt.date(1970, 1, 1)).days


def _civil(days: int) -> tuple[int, int, int]:
    date = dt.date(1970, 1, 1) + dt.timedelta(days=days)
    return date.year, date.month, date.day


_OUT_OF_RANGE = "date_histogram: a date, bound or offset lies outside the supported range [0001-01-01, 9999-12-31]"


class _Rounding:
    """Elasticsearch's date rounding for one interval, time zone and offset.

    Calendar units of a day or more round in local time to the first instant of the local day, week,
    month, quarter or year (DST-correct: a day can last 23 or 25 hours). Smaller units and fixed
    intervals round local time down and map it back to the latest instant not after the value, so
    the repeated hour of a DST fall-back gets a bucket of its own.
    """

    def __init__(self, unit: str | None, fixed_ms: int | None, tz: dt.tzinfo | None, offset: int) -> None:
        self.unit = unit
        self.fixed = fixed_ms
        self.tz = tz
        self.offset = offset
        self.width = fixed_ms if fixed_ms is not None else _MS.get(unit or "", None)
        fixed_offset = None
        if tz is None:
            fixed_offset = 0
        else:
            utcoffset = tz.utcoffset(None)
            fixed_offset = None if utcoffset is None else int(utcoffset.total_seconds() * 1000)
        self.fixed_offset = fixed_offset
        self.uniform: tuple[int, int] | None = None  # (width, offset) of a plain histogram in UTC
        if fixed_offset is not None and self.width is not None:
            base = _WEEK_BASE if unit == "week" else 0
            self.uniform = (self.width, (base + offset - fixed_offset) % self.width)
        self.max_width = _MAX_WIDTH.get(unit or "", fixed_ms or 1) if fixed_ms is None else fixed_ms
        self.min_width = _MIN_WIDTH.get(unit or "", fixed_ms or 1) if fixed_ms is None else fixed_ms
        if fixed_offset is None:
            self.min_width = max(1, self.min_width - 3_600_000) if self.min_width > 3_600_000 else self.min_width

    # public: with the offset applied; dates beyond what the calendar holds (years 1 to 9999) are a 400
    def round(self, utc: int) -> int:
        try:
            return self._round(utc - self.offset) + self.offset
        except (ValueError, OverflowError):
            raise IllegalArgumentError(_OUT_OF_RANGE) from None

    def next(self, key: int) -> int:
        try:
            return self._next(key - self.offset) + self.offset
        except (ValueError, OverflowError):
            raise IllegalArgumentError(_OUT_OF_RANGE) from None

    def boundaries(self, low: int, high: int, ctx: _Ctx) -> list[int]:
        """Bucket starts from the one holding `low` through the one holding `high - 1`, then the end."""
        estimate = (high - low) // self.min_width + 2
        if estimate > MAX_BUCKETS * 4:
            raise TooManyBucketsError(ctx.buckets + int(estimate))
        key = self.round(low)
        out = [key]
        while key < high:
            key = self.next(key)
            out.append(key)
            if len(out) > MAX_BUCKETS + 1:
                raise TooManyBucketsError(ctx.buckets + len(out))
        return out

    # without the offset
    def _offset_at(self, utc: int) -> int:
        if self.fixed_offset is not None:
            return self.fixed_offset
        return _offset_at_utc(utc, self.tz)

    def _round(self, utc: int) -> int:
        if self.uniform is not None and self.width is not None:
            base = _WEEK_BASE if self.unit == "week" else 0
            local = utc + self._offset_at(utc)
            return (local - base) // self.width * self.width + base - self._offset_at(utc)
        if self.fixed is None and self.unit not in ("second", "minute", "hour"):
            local = utc + self._offset_at(utc)
            return _local_to_utc(self._truncate_days(local // _DAY_MS) * _DAY_MS, self.tz)
        return self._round_small(utc)

    def _truncate_days(self, days: int) -> int:
        if self.unit == "day":
            return days
        if self.unit == "week":
            return days - (days - 4) % 7
        y, m, _ = _civil(days)
        if self.unit == "month":
            return _days_from_civil(y, m, 1)
        if self.unit == "quarter":
            return _days_from_civil(y, (m - 1) // 3 * 3 + 1, 1)
        return _days_from_civil(y, 1, 1)

    def _add_unit(self, days: int) -> int:
        if self.unit == "day":
            return days + 1
        if self.unit == "week":
            return days + 7
        y, m, _ = _civil(days)
        step = {"month": 1, "quarter": 3, "year": 12}[self.unit or "year"]
        y, m0 = divmod(y * 12 + m - 1 + step, 12)
        return _days_from_civil(y, m0 + 1, 1)

    def _round_small(self, utc: int) -> int:
        width = self.width
        assert width is not None
        offset = self._offset_at(utc)
        local = utc + offset
        candidate = local - local % width - offset
        if self._offset_at(candidate) == offset:  # no transition in between: the common case
            return candidate
        instant = utc
        for _ in range(8):
            offset = self._offset_at(instant)
            local = instant + offset
            truncated = local - local % width
            best = None
            for candidate_offset in self._valid_offsets(truncated):
                candidate = truncated - candidate_offset
                if candidate <= instant and (best is None or candidate > best):
                    best = candidate
            if best is not None and self._offset_at(best) == offset:
                return best
            # A transition lies between the truncated time and the value: round the moment before it.
            transition = self._transition_before(instant, best if best is not None else instant - 2 * _DAY_MS)
            instant = transition - 1
        return instant - (instant + self._offset_at(instant)) % width

    def _valid_offsets(self, local: int) -> list[int]:
        offsets = []
        for guess in {self._offset_at(local - 14 * 3_600_000), self._offset_at(local + 14 * 3_600_000),
                      self._offset_at(local - self._offset_at(local))}:
            if self._offset_at(local - guess) == guess:
                offsets.append(guess)
        return sorted(set(offsets))

    def _transition_before(self, instant: int, earliest: int) -> int:
        """The first instant after which the offset equals the offset at `instant` (binary search)."""
        target = self._offset_at(instant)
        low, high = earliest, instant
        if self._offset_at(low) == target:
            return low
        while high - low > 1:
            middle = (low + high) // 2
            if self._offset_at(middle) == target:
                high = middle
            else:
                low = middle
        return high

    def _next(self, key: int) -> int:
        if self.uniform is not None and self.width is not None:
            return key + self.width
        if self.fixed is None and self.unit not in ("second", "minute", "hour"):
            local = key + self._offset_at(key)
            days = self._truncate_days(local // _DAY_MS)
            return _local_to_utc(self._add_unit(days) * _DAY_MS, self.tz)
        width = self.width
        assert width is not None
        following = self._round(key + width)
        if following > key:
            return following
        return self._round(key + 2 * width)
