"""The Elasticsearch query DSL → the engine's typed plan.

This module holds the parser for the queries the document API needs today (match_all, match_none,
term, terms, ids, exists, range, bool, constant_score); the search issue extends it with full-text
queries. Limits are checked here, before anything reaches the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..engine import plan as p
from ..errors import RequestError

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


def _single_key(body: Any, what: str) -> tuple[str, Any]:
    if not isinstance(body, dict):
        raise QueryParsingError(f"[{what}] query malformed, no start_object after query name")
    if len(body) != 1:
        if not body:
            raise QueryParsingError(f"[{what}] query malformed, empty clause found")
        names = list(body)
        raise QueryParsingError(f"[{what}] query doesn't support multiple fields, found [{names[0]}] and [{names[1]}]")
    return next(iter(body.items()))


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


def _parse(body: Any, *, depth: int, budget: _Budget) -> p.Node:
    if depth > MAX_DEPTH:
        raise QueryParsingError(f"query is nested deeper than [{MAX_DEPTH}] levels")
    budget.clauses += 1
    if budget.clauses > MAX_CLAUSES:
        raise QueryParsingError(f"query has more than [{MAX_CLAUSES}] clauses")
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
    return parser(spec, depth, budget)


def _match_all(spec: Any, depth: int, budget: _Budget) -> p.Node:
    if not isinstance(spec, dict):
        raise QueryParsingError("[match_all] query malformed, no start_object after query name")
    unknown = set(spec) - {"boost", "_name"}
    if unknown:
        raise QueryParsingError(f"[match_all] query does not support [{sorted(unknown)[0]}]")
    return p.MatchAll(_boost(spec.get("boost", 1.0), "match_all"))


def _match_none(spec: Any, depth: int, budget: _Budget) -> p.Node:
    if not isinstance(spec, dict):
        raise QueryParsingError("[match_none] query malformed, no start_object after query name")
    return p.MatchNone()


def _scalar(value: Any, kind: str, name: str) -> Any:
    if isinstance(value, (dict, list)) or value is None:
        raise QueryParsingError(f"[{kind}] query does not support array or object values for field [{name}]"
                                if value is not None else f"[{kind}] value for field [{name}] cannot be null")
    return value


def _term(spec: Any, depth: int, budget: _Budget) -> p.Node:
    name, value = _single_key(spec, "term")
    boost = 1.0
    if isinstance(value, dict):
        unknown = set(value) - {"value", "boost", "_name", "case_insensitive"}
        if unknown:
            raise QueryParsingError(f"[term] query does not support [{sorted(unknown)[0]}]")
        if "value" not in value:
            raise QueryParsingError("[term] query requires a [value]")
        if value.get("case_insensitive") in (True, "true"):
            raise QueryParsingError("[term] query option [case_insensitive] is not supported yet")
        boost = _boost(value.get("boost", 1.0), "term")
        value = value["value"]
    return p.Term(name, _scalar(value, "term", name), boost)


def _terms(spec: Any, depth: int, budget: _Budget) -> p.Node:
    if not isinstance(spec, dict):
        raise QueryParsingError("[terms] query malformed, no start_object after query name")
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
    budget.clauses += len(values)
    if budget.clauses > MAX_CLAUSES * 64:
        raise QueryParsingError(f"[terms] query has too many values for field [{name}]")
    return p.Terms(name, tuple(_scalar(v, "terms", name) for v in values), boost)


def _ids(spec: Any, depth: int, budget: _Budget) -> p.Node:
    if not isinstance(spec, dict):
        raise QueryParsingError("[ids] query malformed, no start_object after query name")
    values = spec.get("values", [])
    if not isinstance(values, list) or not all(isinstance(v, (str, int)) for v in values):
        raise QueryParsingError("[ids] query requires [values] to be an array of ids")
    return p.Ids(tuple(str(v) for v in values), _boost(spec.get("boost", 1.0), "ids"))


def _exists(spec: Any, depth: int, budget: _Budget) -> p.Node:
    if not isinstance(spec, dict) or not isinstance(spec.get("field"), str):
        raise QueryParsingError("[exists] must be provided with a [field]")
    return p.Exists(spec["field"], _boost(spec.get("boost", 1.0), "exists"))


def _range(spec: Any, depth: int, budget: _Budget) -> p.Node:
    name, bounds = _single_key(spec, "range")
    if not isinstance(bounds, dict):
        raise QueryParsingError(f"[range] query malformed, no start_object after field name [{name}]")
    known = {"gte", "gt", "lte", "lt", "boost", "_name", "format", "time_zone", "relation", "from", "to",
             "include_lower", "include_upper"}
    unknown = set(bounds) - known
    if unknown:
        raise QueryParsingError(f"[range] query does not support [{sorted(unknown)[0]}]")
    if any(k in bounds for k in ("format", "time_zone", "relation")):
        raise QueryParsingError("[range] query options [format], [time_zone] and [relation] are not supported yet")
    gte, gt, lte, lt = bounds.get("gte"), bounds.get("gt"), bounds.get("lte"), bounds.get("lt")
    if "from" in bounds:
        if bounds.get("include_lower", True):
            gte = bounds["from"]
        else:
            gt = bounds["from"]
    if "to" in bounds:
        if bounds.get("include_upper", True):
            lte = bounds["to"]
        else:
            lt = bounds["to"]
    return p.Range(name, gte, gt, lte, lt, _boost(bounds.get("boost", 1.0), "range"))


def _clauses(value: Any, depth: int, budget: _Budget, occur: str) -> tuple[p.Node, ...]:
    if isinstance(value, dict):
        return (_parse(value, depth=depth + 1, budget=budget),)
    if isinstance(value, list):
        return tuple(_parse(v, depth=depth + 1, budget=budget) for v in value)
    raise QueryParsingError(f"[bool] query malformed: [{occur}] must be an object or an array")


def _minimum_should_match(value: Any, should: int) -> int | None:
    if value is None:
        return None
    text = str(value).strip()
    try:
        if text.endswith("%"):
            percent = int(text[:-1])
            count = int(should * abs(percent) / 100)
            return count if percent >= 0 else should - count
        number = int(text)
    except ValueError:
        raise QueryParsingError(f"[bool] query: unsupported [minimum_should_match] value [{value}]") from None
    return number if number >= 0 else max(0, should + number)


def _bool(spec: Any, depth: int, budget: _Budget) -> p.Node:
    if not isinstance(spec, dict):
        raise QueryParsingError("[bool] query malformed, no start_object after query name")
    known = {"must", "should", "filter", "must_not", "minimum_should_match", "boost", "_name",
             "adjust_pure_negative"}
    unknown = set(spec) - known
    if unknown:
        raise QueryParsingError(f"[bool] query does not support [{sorted(unknown)[0]}]")
    parts = {k: _clauses(spec[k], depth, budget, k) if k in spec else () for k in ("must", "should", "filter",
                                                                                   "must_not")}
    msm = _minimum_should_match(spec.get("minimum_should_match"), len(parts["should"]))
    return p.Bool(parts["must"], parts["should"], parts["filter"], parts["must_not"], msm,
                  _boost(spec.get("boost", 1.0), "bool"))


def _constant_score(spec: Any, depth: int, budget: _Budget) -> p.Node:
    if not isinstance(spec, dict) or "filter" not in spec:
        raise QueryParsingError("[constant_score] requires a 'filter' element")
    return p.ConstantScore(_parse(spec["filter"], depth=depth + 1, budget=budget),
                           _boost(spec.get("boost", 1.0), "constant_score"))


_PARSERS = {
    "match_all": _match_all, "match_none": _match_none, "term": _term, "terms": _terms, "ids": _ids,
    "exists": _exists, "range": _range, "bool": _bool, "constant_score": _constant_score,
}
