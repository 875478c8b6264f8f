"""The Elasticsearch query DSL → the engine's typed plan.

Every query type is parsed here into plan nodes with its parameters checked; unknown queries and
parameters are refused with Elasticsearch's `parsing_exception`. Limits (clause count, nesting
depth) are checked before anything reaches the engine.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ..engine import plan as p
from ..errors import RequestError
from .querystring import query_string_to_dsl, simple_query_string_to_dsl

MAX_CLAUSES = 1024
MAX_DEPTH = 20


class QueryParsingError(RequestError):
    es_type = "parsing_exception"


@dataclass
class _Budget:
    clauses: int = 0


def parse_query(body: Any) -> p.Node:
    """Parses the value of a request's `query` key."""
    return _parse(body, depth=0, budget=_Budget())


# -- helpers --------------------------------------------------------------------------------
def _object(value: Any, kind: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise QueryParsingError(f"[{kind}] query malformed, no start_object after query name")
    return value


def _check_keys(spec: dict[str, Any], allowed: set[str], kind: str) -> None:
    unknown = set(spec) - allowed - {"boost", "_name"}
    if unknown:
        raise QueryParsingError(f"[{kind}] query does not support [{sorted(unknown)[0]}]")


def _field_spec(spec: Any, kind: str) -> tuple[str, Any]:
    """The single `{field: value}` pair of a field-level query."""
    spec = _object(spec, kind)
    fields = {k: v for k, v in spec.items() if k not in ("boost", "_name")}
    if len(fields) != 1:
        if not fields:
            raise QueryParsingError(f"[{kind}] query malformed, no field specified")
        names = list(fields)
        raise QueryParsingError(f"[{kind}] query doesn't support multiple fields, found [{names[0]}] and [{names[1]}]")
    return next(iter(fields.items()))


def _boost(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise QueryParsingError(f"[{where}] boost must be a number")
    try:
        boost = float(value)
    except ValueError:
        raise QueryParsingError(f"[{where}] boost must be a number") from None
    if boost < 0:
        raise QueryParsingError(f"[{where}] query does not support negative boosts")
    return boost


def _int(value: Any, name: str, kind: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool):
        raise QueryParsingError(f"[{kind}] [{name}] must be an integer")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise QueryParsingError(f"[{kind}] [{name}] must be an integer") from None
    if number < minimum:
        raise QueryParsingError(f"[{kind}] [{name}] must be >= {minimum}")
    return number


def _float(value: Any, name: str, kind: str) -> float:
    if isinstance(value, bool):
        raise QueryParsingError(f"[{kind}] [{name}] must be a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise QueryParsingError(f"[{kind}] [{name}] must be a number") from None


def _bool_param(value: Any, name: str, kind: str) -> bool:
    if value in (True, "true"):
        return True
    if value in (False, "false"):
        return False
    raise QueryParsingError(f"[{kind}] [{name}] must be a boolean")


def _choice(value: Any, choices: tuple[str, ...], name: str, kind: str) -> str:
    text = str(value).lower()
    if text not in choices:
        raise QueryParsingError(f"[{kind}] [{name}] must be one of {list(choices)}, got [{value}]")
    return text


def _scalar(value: Any, kind: str, name: str) -> Any:
    if isinstance(value, (dict, list)) or value is None:
        raise QueryParsingError(f"[{kind}] query does not support array or object values for field [{name}]"
                                if value is not None else f"[{kind}] value for field [{name}] cannot be null")
    return value


def _msm(value: Any, kind: str) -> int | str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise QueryParsingError(f"[{kind}] [minimum_should_match] must be an integer or a string")
    return value


def _fuzziness(value: Any, kind: str) -> str | int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise QueryParsingError(f"[{kind}] [fuzziness] must be AUTO or a number")
    text = str(value).upper()
    if text.startswith("AUTO"):
        p.fuzzy_distance(text, "x")  # validates AUTO:low,high
        return text
    try:
        number = float(text)
    except ValueError:
        raise QueryParsingError(f"[{kind}] failed to parse [fuzziness] value [{value}]") from None
    if not math.isfinite(number) or number < 0 or number != int(number):
        raise QueryParsingError(f"[{kind}] [fuzziness] must be AUTO, 0, 1 or 2")
    return min(int(number), p.MAX_FUZZY_DISTANCE)


def _text_value(value: Any, kind: str, name: str) -> Any:
    if isinstance(value, (dict, list)):
        raise QueryParsingError(f"[{kind}] unknown token [START_OBJECT] after [query] for field [{name}]")
    if value is None:
        raise QueryParsingError(f"[{kind}] requires query value")
    return value


# -- dispatch -------------------------------------------------------------------------------
def _parse(body: Any, *, depth: int, budget: _Budget) -> p.Node:
    if depth > MAX_DEPTH:
        raise QueryParsingError(f"query is nested deeper than [{MAX_DEPTH}] levels")
    budget.clauses += 1
    if budget.clauses > MAX_CLAUSES:
        raise QueryParsingError(f"query has more than [{MAX_CLAUSES}] clauses (query.max_clauses)")
    if not isinstance(body, dict):
        raise QueryParsingError("query malformed, must start with start_object")
    if len(body) != 1:
        if not body:
            raise QueryParsingError("query malformed, empty clause found")
        raise QueryParsingError(f"[{list(body)[0]}] malformed query, expected [END_OBJECT] but found [FIELD_NAME]")
    kind, spec = next(iter(body.items()))
    parser = _PARSERS.get(kind)
    if parser is None:
        raise QueryParsingError(f"unknown query [{kind}]")
    node = parser(spec, depth, budget)
    name = _query_name(spec)
    return p.Named(name, node) if name is not None else node


def _query_name(spec: Any) -> str | None:
    """`_name` on the query object, or (for field-level queries) on the field's options."""
    if not isinstance(spec, dict):
        return None
    name = spec.get("_name")
    if name is None:
        fields = [v for k, v in spec.items() if k not in ("boost", "_name")]
        if len(fields) == 1 and isinstance(fields[0], dict):
            name = fields[0].get("_name")
    if name is not None and not isinstance(name, str):
        raise QueryParsingError("[_name] must be a string")
    return name


def _child(spec: Any, depth: int, budget: _Budget) -> p.Node:
    return _parse(spec, depth=depth + 1, budget=budget)


# -- compound -------------------------------------------------------------------------------
def _match_all(spec: Any, depth: int, budget: _Budget) -> p.Node:
    spec = _object(spec, "match_all")
    _check_keys(spec, set(), "match_all")
    return p.MatchAll(_boost(spec.get("boost", 1.0), "match_all"))


def _match_none(spec: Any, depth: int, budget: _Budget) -> p.Node:
    spec = _object(spec, "match_none")
    _check_keys(spec, set(), "match_none")
    return p.MatchNone()


def _clauses(value: Any, depth: int, budget: _Budget, occur: str) -> tuple[p.Node, ...]:
    if isinstance(value, dict):
        return (_child(value, depth, budget),)
    if isinstance(value, list):
        return tuple(_child(v, depth, budget) for v in value)
    raise QueryParsingError(f"[bool] query malformed: [{occur}] must be an object or an array")


def _bool(spec: Any, depth: int, budget: _Budget) -> p.Node:
    spec = _object(spec, "bool")
    _check_keys(spec, {"must", "should", "filter", "must_not", "minimum_should_match", "adjust_pure_negative"}, "bool")
    parts = {k: _clauses(spec[k], depth, budget, k) if k in spec else ()
             for k in ("must", "should", "filter", "must_not")}
    return p.Bool(parts["must"], parts["should"], parts["filter"], parts["must_not"],
                  _msm(spec.get("minimum_should_match"), "bool"), _boost(spec.get("boost", 1.0), "bool"))


def _constant_score(spec: Any, depth: int, budget: _Budget) -> p.Node:
    spec = _object(spec, "constant_score")
    _check_keys(spec, {"filter"}, "constant_score")
    if "filter" not in spec:
        raise QueryParsingError("[constant_score] requires a 'filter' element")
    return p.ConstantScore(_child(spec["filter"], depth, budget), _boost(spec.get("boost", 1.0), "constant_score"))


def _dis_max(spec: Any, depth: int, budget: _Budget) -> p.Node:
    spec = _object(spec, "dis_max")
    _check_keys(spec, {"queries", "tie_breaker"}, "dis_max")
    queries = spec.get("queries")
    if not isinstance(queries, list) or not queries:
        raise QueryParsingError("[dis_max] requires 'queries' field with at least one clause")
    return p.DisMax(tuple(_child(q, depth, budget) for q in queries),
                    _float(spec.get("tie_breaker", 0.0), "tie_breaker", "dis_max"),
                    _boost(spec.get("boost", 1.0), "dis_max"))


def _boosting(spec: Any, depth: int, budget: _Budget) -> p.Node:
    spec = _object(spec, "boosting")
    _check_keys(spec, {"positive", "negative", "negative_boost"}, "boosting")
    for key in ("positive", "negative"):
        if key not in spec:
            raise QueryParsingError(f"[boosting] query requires '{key}' query to be set'")
    if "negative_boost" not in spec:
        raise QueryParsingError("[boosting] query requires 'negative_boost' to be set to be a positive value'")
    negative_boost = _float(spec["negative_boost"], "negative_boost", "boosting")
    if negative_boost < 0:
        raise QueryParsingError("[boosting] query requires 'negative_boost' to be set to be a positive value'")
    return p.Boosting(_child(spec["positive"], depth, budget), _child(spec["negative"], depth, budget),
                      negative_boost, _boost(spec.get("boost", 1.0), "boosting"))


# -- term level -----------------------------------------------------------------------------
def _term(spec: Any, depth: int, budget: _Budget) -> p.Node:
    name, value = _field_spec(spec, "term")
    boost, case_insensitive = 1.0, False
    if isinstance(value, dict):
        _check_keys(value, {"value", "case_insensitive"}, "term")
        if "value" not in value:
            raise QueryParsingError("[term] query requires a [value]")
        boost = _boost(value.get("boost", 1.0), "term")
        case_insensitive = _bool_param(value.get("case_insensitive", False), "case_insensitive", "term")
        value = value["value"]
    return p.Term(name, _scalar(value, "term", name), boost, case_insensitive)


def _terms(spec: Any, depth: int, budget: _Budget) -> p.Node:
    spec = _object(spec, "terms")
    boost = _boost(spec.get("boost", 1.0), "terms")
    fields = {k: v for k, v in spec.items() if k not in ("boost", "_name")}
    if len(fields) != 1:
        raise QueryParsingError("[terms] query requires exactly one field" if not fields else
                                f"[terms] query does not support multiple fields, found [{list(fields)[0]}] and "
                                f"[{list(fields)[1]}]")
    name, values = next(iter(fields.items()))
    if isinstance(values, dict):
        raise QueryParsingError("[terms] query lookup (terms from another document) is not supported")
    if not isinstance(values, list):
        raise QueryParsingError(f"[terms] query requires field values to be an array for field [{name}]")
    if len(values) > 65_536:
        raise QueryParsingError(f"[terms] query has more than [65536] values for field [{name}]")
    return p.Terms(name, tuple(_scalar(v, "terms", name) for v in values), boost)


def _ids(spec: Any, depth: int, budget: _Budget) -> p.Node:
    spec = _object(spec, "ids")
    _check_keys(spec, {"values", "type"}, "ids")
    values = spec.get("values", [])
    if not isinstance(values, list) or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in values):
        raise QueryParsingError("[ids] query requires [values] to be an array of ids")
    return p.Ids(tuple(str(v) for v in values), _boost(spec.get("boost", 1.0), "ids"))


def _exists(spec: Any, depth: int, budget: _Budget) -> p.Node:
    spec = _object(spec, "exists")
    _check_keys(spec, {"field"}, "exists")
    if not isinstance(spec.get("field"), str) or not spec["field"]:
        raise QueryParsingError("[exists] must be provided with a [field]")
    return p.Exists(spec["field"], _boost(spec.get("boost", 1.0), "exists"))


def _range(spec: Any, depth: int, budget: _Budget) -> p.Node:
    name, bounds = _field_spec(spec, "range")
    if not isinstance(bounds, dict):
        raise QueryParsingError(f"[range] query malformed, no start_object after field name [{name}]")
    _check_keys(bounds, {"gte", "gt", "lte", "lt", "format", "time_zone", "relation", "from", "to",
                         "include_lower", "include_upper"}, "range")
    relation = bounds.get("relation", "intersects")
    if not isinstance(relation, str) or relation.lower() not in ("intersects", "within", "contains"):
        raise QueryParsingError(f"[range] query does not support relation [{bounds['relation']}]")
    gte, gt, lte, lt = bounds.get("gte"), bounds.get("gt"), bounds.get("lte"), bounds.get("lt")
    if "from" in bounds and bounds["from"] is not None:
        if _bool_param(bounds.get("include_lower", True), "include_lower", "range"):
            gte = bounds["from"]
        else:
            gt = bounds["from"]
    if "to" in bounds and bounds["to"] is not None:
        if _bool_param(bounds.get("include_upper", True), "include_upper", "range"):
            lte = bounds["to"]
        else:
            lt = bounds["to"]
    for bound in (gte, gt, lte, lt):
        if isinstance(bound, (dict, list)):
            raise QueryParsingError(f"[range] query bound for [{name}] must be a value")
    fmt = bounds.get("format")
    zone = bounds.get("time_zone")
    if fmt is not None and not isinstance(fmt, str) or zone is not None and not isinstance(zone, str):
        raise QueryParsingError("[range] [format] and [time_zone] must be strings")
    return p.Range(name, gte, gt, lte, lt, _boost(bounds.get("boost", 1.0), "range"), fmt, zone)


def _string_query(kind: str, node: Callable[..., p.Node], extra: set[str]) -> Callable[[Any, int, _Budget], p.Node]:
    def parse(spec: Any, depth: int, budget: _Budget) -> p.Node:
        name, value = _field_spec(spec, kind)
        options: dict[str, Any] = {}
        if isinstance(value, dict):
            _check_keys(value, {"value", "case_insensitive", "rewrite"} | extra, kind)
            if "value" not in value:
                raise QueryParsingError(f"[{kind}] query requires a [value]")
            options = value
            value = value["value"]
        value = _scalar(value, kind, name)
        return node(name, str(value), options)
    return parse


def _prefix_node(name: str, value: str, o: dict[str, Any]) -> p.Node:
    return p.Prefix(name, value, _bool_param(o.get("case_insensitive", False), "case_insensitive", "prefix"),
                    _boost(o.get("boost", 1.0), "prefix"))


def _wildcard_node(name: str, value: str, o: dict[str, Any]) -> p.Node:
    return p.Wildcard(name, value, _bool_param(o.get("case_insensitive", False), "case_insensitive", "wildcard"),
                      _boost(o.get("boost", 1.0), "wildcard"))


def _regexp_node(name: str, value: str, o: dict[str, Any]) -> p.Node:
    flags = o.get("flags", "ALL")
    if not isinstance(flags, str):
        raise QueryParsingError("[regexp] [flags] must be a string")
    return p.Regexp(name, value, flags, _bool_param(o.get("case_insensitive", False), "case_insensitive", "regexp"),
                    _boost(o.get("boost", 1.0), "regexp"))


def _fuzzy(spec: Any, depth: int, budget: _Budget) -> p.Node:
    name, value = _field_spec(spec, "fuzzy")
    options: dict[str, Any] = {}
    if isinstance(value, dict):
        _check_keys(value, {"value", "fuzziness", "prefix_length", "max_expansions", "transpositions", "rewrite"},
                    "fuzzy")
        if "value" not in value:
            raise QueryParsingError("[fuzzy] query requires a [value]")
        options = value
        value = value["value"]
    return p.Fuzzy(name, _scalar(value, "fuzzy", name), _fuzziness(options.get("fuzziness", "AUTO"), "fuzzy") or 0,
                   _int(options.get("prefix_length", 0), "prefix_length", "fuzzy"),
                   _int(options.get("max_expansions", 50), "max_expansions", "fuzzy", minimum=1),
                   _bool_param(options.get("transpositions", True), "transpositions", "fuzzy"),
                   _boost(options.get("boost", 1.0), "fuzzy"))


# -- full text ------------------------------------------------------------------------------
MATCH_KEYS = {"query", "operator", "minimum_should_match", "fuzziness", "prefix_length", "max_expansions",
              "fuzzy_transpositions", "analyzer", "zero_terms_query", "lenient", "auto_generate_synonyms_phrase_query",
              "fuzzy_rewrite", "cutoff_frequency"}


def _match(spec: Any, depth: int, budget: _Budget) -> p.Node:
    name, value = _field_spec(spec, "match")
    o: dict[str, Any] = value if isinstance(value, dict) else {"query": value}
    _check_keys(o, MATCH_KEYS, "match")
    if "query" not in o:
        raise QueryParsingError("[match] requires query value")
    return p.Match(name, _text_value(o["query"], "match", name),
                   _choice(o.get("operator", "or"), ("or", "and"), "operator", "match"),
                   _msm(o.get("minimum_should_match"), "match"), _fuzziness(o.get("fuzziness"), "match"),
                   _int(o.get("prefix_length", 0), "prefix_length", "match"),
                   _int(o.get("max_expansions", 50), "max_expansions", "match", minimum=1),
                   _bool_param(o.get("fuzzy_transpositions", True), "fuzzy_transpositions", "match"),
                   _analyzer(o.get("analyzer"), "match"),
                   _choice(o.get("zero_terms_query", "none"), ("none", "all"), "zero_terms_query", "match"),
                   _bool_param(o.get("lenient", False), "lenient", "match"), _boost(o.get("boost", 1.0), "match"))


def _analyzer(value: Any, kind: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise QueryParsingError(f"[{kind}] [analyzer] must be a string")
    from ..engine.analysis import ANALYZERS
    if value not in ANALYZERS:
        raise RequestError(f"[{kind}] analyzer [{value}] not found")
    return value


def _match_phrase(spec: Any, depth: int, budget: _Budget) -> p.Node:
    name, value = _field_spec(spec, "match_phrase")
    o: dict[str, Any] = value if isinstance(value, dict) else {"query": value}
    _check_keys(o, {"query", "slop", "analyzer", "zero_terms_query"}, "match_phrase")
    if "query" not in o:
        raise QueryParsingError("[match_phrase] requires query value")
    return p.MatchPhrase(name, _text_value(o["query"], "match_phrase", name),
                         _int(o.get("slop", 0), "slop", "match_phrase"), _analyzer(o.get("analyzer"), "match_phrase"),
                         _choice(o.get("zero_terms_query", "none"), ("none", "all"), "zero_terms_query",
                                 "match_phrase"), _boost(o.get("boost", 1.0), "match_phrase"))


def _match_phrase_prefix(spec: Any, depth: int, budget: _Budget) -> p.Node:
    name, value = _field_spec(spec, "match_phrase_prefix")
    o: dict[str, Any] = value if isinstance(value, dict) else {"query": value}
    _check_keys(o, {"query", "slop", "analyzer", "max_expansions", "zero_terms_query"}, "match_phrase_prefix")
    if "query" not in o:
        raise QueryParsingError("[match_phrase_prefix] requires query value")
    return p.MatchPhrasePrefix(name, _text_value(o["query"], "match_phrase_prefix", name),
                               _int(o.get("slop", 0), "slop", "match_phrase_prefix"),
                               _int(o.get("max_expansions", 50), "max_expansions", "match_phrase_prefix", minimum=1),
                               _analyzer(o.get("analyzer"), "match_phrase_prefix"),
                               _boost(o.get("boost", 1.0), "match_phrase_prefix"))


def _match_bool_prefix(spec: Any, depth: int, budget: _Budget) -> p.Node:
    name, value = _field_spec(spec, "match_bool_prefix")
    o: dict[str, Any] = value if isinstance(value, dict) else {"query": value}
    _check_keys(o, {"query", "operator", "minimum_should_match", "fuzziness", "prefix_length", "max_expansions",
                    "fuzzy_transpositions", "fuzzy_rewrite", "analyzer"}, "match_bool_prefix")
    if "query" not in o:
        raise QueryParsingError("[match_bool_prefix] requires query value")
    return p.MatchBoolPrefix(name, _text_value(o["query"], "match_bool_prefix", name),
                             _choice(o.get("operator", "or"), ("or", "and"), "operator", "match_bool_prefix"),
                             _msm(o.get("minimum_should_match"), "match_bool_prefix"),
                             _fuzziness(o.get("fuzziness"), "match_bool_prefix"),
                             _int(o.get("prefix_length", 0), "prefix_length", "match_bool_prefix"),
                             _int(o.get("max_expansions", 50), "max_expansions", "match_bool_prefix", minimum=1),
                             _bool_param(o.get("fuzzy_transpositions", True), "fuzzy_transpositions",
                                         "match_bool_prefix"),
                             _analyzer(o.get("analyzer"), "match_bool_prefix"),
                             _boost(o.get("boost", 1.0), "match_bool_prefix"))


MULTI_MATCH_TYPES = ("best_fields", "most_fields", "cross_fields", "phrase", "phrase_prefix", "bool_prefix")


def parse_field_list(value: Any, kind: str) -> tuple[tuple[str, float], ...]:
    """`["name^2", "address"]` (or a single string) → ((field, boost), …)."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise QueryParsingError(f"[{kind}] [fields] must be an array of field names")
    out = []
    for item in items:
        name, _, boost = item.partition("^")
        out.append((name.strip(), _boost(boost, kind) if boost else 1.0))
    return tuple(out)


def _multi_match(spec: Any, depth: int, budget: _Budget) -> p.Node:
    o = _object(spec, "multi_match")
    _check_keys(o, MATCH_KEYS | {"fields", "type", "tie_breaker", "slop"}, "multi_match")
    if "query" not in o:
        raise QueryParsingError("[multi_match] requires query value")
    kind = _choice(o.get("type", "best_fields"), MULTI_MATCH_TYPES, "type", "multi_match")
    if kind == "bool_prefix":
        for refused in ("slop", "cutoff_frequency"):
            if refused in o:
                raise QueryParsingError(f"[{refused}] not allowed for type [bool_prefix]")
    tie = o.get("tie_breaker")
    return p.MultiMatch(_text_value(o["query"], "multi_match", "fields"), parse_field_list(o.get("fields"),
                                                                                        "multi_match"),
                        kind, _choice(o.get("operator", "or"), ("or", "and"), "operator", "multi_match"),
                        _msm(o.get("minimum_should_match"), "multi_match"), _fuzziness(o.get("fuzziness"),
                                                                                       "multi_match"),
                        _int(o.get("prefix_length", 0), "prefix_length", "multi_match"),
                        _int(o.get("max_expansions", 50), "max_expansions", "multi_match", minimum=1),
                        _bool_param(o.get("fuzzy_transpositions", True), "fuzzy_transpositions", "multi_match"),
                        None if tie is None else _float(tie, "tie_breaker", "multi_match"),
                        _analyzer(o.get("analyzer"), "multi_match"), _int(o.get("slop", 0), "slop", "multi_match"),
                        _bool_param(o.get("lenient", False), "lenient", "multi_match"),
                        _choice(o.get("zero_terms_query", "none"), ("none", "all"), "zero_terms_query",
                                "multi_match"), _boost(o.get("boost", 1.0), "multi_match"))


def _query_string(spec: Any, depth: int, budget: _Budget) -> p.Node:
    return _normalizing(_child(query_string_to_dsl(_object(spec, "query_string")), depth, budget))


def _simple_query_string(spec: Any, depth: int, budget: _Budget) -> p.Node:
    return _normalizing(_child(simple_query_string_to_dsl(_object(spec, "simple_query_string")), depth, budget))


def _normalizing(node: p.Node) -> p.Node:
    """Term-level leaves written in query-string syntax are normalized like the field's text (as
    Elasticsearch's query string parser does); the same queries written in the DSL are not."""
    match node:
        case p.Prefix() | p.Wildcard() | p.Regexp() | p.Fuzzy():
            return replace(node, normalize=True)
        case p.Bool():
            return replace(node, must=tuple(map(_normalizing, node.must)), should=tuple(map(_normalizing, node.should)),
                           filter=tuple(map(_normalizing, node.filter)),
                           must_not=tuple(map(_normalizing, node.must_not)))
        case p.DisMax():
            return replace(node, queries=tuple(map(_normalizing, node.queries)))
        case p.ConstantScore():
            return replace(node, filter=_normalizing(node.filter))
    return node


_PARSERS: dict[str, Callable[[Any, int, _Budget], p.Node]] = {
    "match_all": _match_all, "match_none": _match_none, "bool": _bool, "constant_score": _constant_score,
    "dis_max": _dis_max, "boosting": _boosting,
    "term": _term, "terms": _terms, "ids": _ids, "exists": _exists, "range": _range, "fuzzy": _fuzzy,
    "prefix": _string_query("prefix", _prefix_node, set()),
    "wildcard": _string_query("wildcard", _wildcard_node, {"wildcard"}),
    "regexp": _string_query("regexp", _regexp_node, {"flags", "max_determinized_states"}),
    "match": _match, "match_phrase": _match_phrase, "match_phrase_prefix": _match_phrase_prefix,
    "match_bool_prefix": _match_bool_prefix, "multi_match": _multi_match, "query_string": _query_string, "simple_query_string": _simple_query_string,
}
