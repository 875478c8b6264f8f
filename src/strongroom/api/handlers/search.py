"""Search endpoints: `_search`, `_analyze`."""

from __future__ import annotations

import time
from typing import Any

from starlette.responses import Response

from ...errors import (ActionRequestValidationError, IllegalArgumentError, RequestError, StrongroomError,
                       UnavailableError)
from ...jsonio import loads_strict
from ...query.search_request import SEARCH_PARAMS, SearchRequest, parse_search_request
from ...security.session import SearchOutcome
from . import Call, check_active_shards, shards_header


def render_hits(outcome: SearchOutcome, request: SearchRequest) -> dict[str, Any]:
    hits = []
    for hit in outcome.hits:
        doc = hit.doc
        entry: dict[str, Any] = {"_index": hit.index, "_id": doc.doc_id}
        if request.version:
            entry["_version"] = doc.version
        if request.seq_no_primary_term:
            entry["_seq_no"] = doc.seq_no
            entry["_primary_term"] = doc.primary_term
        entry["_score"] = hit.score if request.spec.sort is None or request.spec.track_scores or any(
            k.field == "_score" for k in request.spec.sort) else None
        if doc.routing is not None:
            entry["_routing"] = doc.routing
        if hit.source is not None:
            entry["_source"] = hit.source
        if hit.sort is not None:
            entry["sort"] = hit.sort
        if hit.explanation is not None:
            entry["_explanation"] = hit.explanation
        if hit.highlight is not None:
            entry["highlight"] = hit.highlight
        if hit.fields is not None:
            entry["fields"] = hit.fields
        if hit.matched_queries:
            entry["matched_queries"] = hit.matched_queries
        hits.append(entry)
    body: dict[str, Any] = {}
    if outcome.total is not None:
        body["total"] = outcome.total if request.total_as_int else {"value": outcome.total,
                                                                     "relation": outcome.relation}
    elif request.total_as_int:
        body["total"] = -1  # Not tracked, as Elasticsearch renders it in the integer form.
    body["max_score"] = outcome.max_score
    body["hits"] = hits
    return body


def search_body(outcome: SearchOutcome, request: SearchRequest, took_ms: int) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if outcome.scroll_id is not None:
        body["_scroll_id"] = outcome.scroll_id
    body.update({"took": took_ms, "timed_out": outcome.timed_out,
                 "_shards": shards_header(outcome.shards) | {"skipped": 0},
                 "hits": render_hits(outcome, request)})
    if outcome.aggregations is not None:
        body["aggregations"] = outcome.aggregations
    if outcome.pit_id is not None:
        body["pit_id"] = outcome.pit_id
    return body


def params_dict(call: Call) -> dict[str, str]:
    return {k: v for k, v in call.request.query_params.items()}


async def search(call: Call) -> Response:
    started = time.monotonic()
    body = call.json_body()
    request = parse_search_request(body, params_dict(call))
    outcome = await call.session.search(call.path.get("index"), request, **call.params.index_options())
    return call.json(search_body(outcome, request, int((time.monotonic() - started) * 1000)))


async def analyze(call: Call) -> Response:
    body = call.json_body() or {}
    params = params_dict(call)
    if "text" in params:
        body.setdefault("text", params["text"])
    if "analyzer" in params:
        body.setdefault("analyzer", params["analyzer"])
    if "field" in params:
        body.setdefault("field", params["field"])
    unknown = set(body) - {"text", "analyzer", "field", "explain", "attributes"}
    if unknown:
        raise IllegalArgumentError(f"Unknown parameter [{sorted(unknown)[0]}] in request body or parameter is of "
                                   "the wrong type[START_OBJECT] ")
    if body.get("explain"):
        raise IllegalArgumentError("[explain] is not supported by _analyze here")
    tokens = call.session.analyze(call.path.get("index"), body)
    return call.json({"tokens": tokens})


async def scroll(call: Call) -> Response:
    started = time.monotonic()
    body = call.json_body() or {}
    unknown = set(body) - {"scroll_id", "scroll", "rest_total_hits_as_int"}
    if unknown:
        raise RequestError(f"[search_scroll] unknown field [{sorted(unknown)[0]}]")
    scroll_id = body.get("scroll_id") or call.path.get("scroll_id") or call.params.str("scroll_id")
    if not isinstance(scroll_id, str) or not scroll_id:
        raise ActionRequestValidationError("scrollId is missing")
    keep_alive = body.get("scroll", call.params.str("scroll"))
    outcome = await call.session.scroll(scroll_id, keep_alive)
    context_request = _scroll_view(call, body)
    return call.json(search_body(outcome, context_request, int((time.monotonic() - started) * 1000)))


def _scroll_view(call: Call, body: dict[str, Any]) -> SearchRequest:
    as_int = call.params.bool("rest_total_hits_as_int") or body.get("rest_total_hits_as_int") in (True, "true")
    return parse_search_request({}, {"rest_total_hits_as_int": "true" if as_int else "false"})


async def clear_scroll(call: Call) -> Response:
    body = call.json_body() or {}
    ids: Any = body.get("scroll_id") or call.path.get("scroll_id") or call.params.str("scroll_id")
    if ids is None:
        raise ActionRequestValidationError("no scroll ids specified")
    if isinstance(ids, str):
        ids = [i for i in ids.split(",") if i]
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise RequestError("[scroll_id] must be a string or an array of strings")
    found, freed = call.session.clear_scroll(None if ids == ["_all"] else ids)
    return call.json({"succeeded": True, "num_freed": freed}, 200 if found else 404)


async def msearch(call: Call) -> Response:
    started = time.monotonic()
    lines = [line for line in call.body.split(b"\n")]
    if lines and not lines[-1].strip():
        lines = lines[:-1]
    if not any(line.strip() for line in lines):
        raise ActionRequestValidationError("no requests added")
    responses = []
    default_index = call.path.get("index")
    if call.params.bool("rest_total_hits_as_int"):  # Checked for the whole request, as Elasticsearch does.
        for body_raw in lines[1::2]:
            body = loads_strict(body_raw) if body_raw.strip() else {}
            track = body.get("track_total_hits") if isinstance(body, dict) else None
            if track is not None and track is not True and track is not False:
                raise IllegalArgumentError(f"[rest_total_hits_as_int] cannot be used if the tracking of total hits "
                                           f"is not accurate, got {track}")
    position = 0
    while position < len(lines):
        header_raw = lines[position].strip()
        body_raw = lines[position + 1] if position + 1 < len(lines) else None
        position += 2
        if body_raw is None:
            raise IllegalArgumentError("[msearch] a header line must be followed by a body line")
        header = loads_strict(header_raw) if header_raw else {}
        if not isinstance(header, dict):
            raise IllegalArgumentError("[msearch] header lines must be JSON objects")
        try:
            body = loads_strict(body_raw) if body_raw.strip() else {}
            if not isinstance(body, dict):
                raise RequestError("[msearch] body lines must be JSON objects")
            params = {k: ("true" if v is True else "false" if v is False else str(v)) for k, v in header.items()
                      if k in MSEARCH_HEADER_PARAMS}
            unknown = set(header) - MSEARCH_HEADER_KEYS
            if unknown:
                raise IllegalArgumentError(f"key [{sorted(unknown)[0]}] is not supported in the metadata section")
            for name in ("rest_total_hits_as_int", "typed_keys"):
                if call.params.has(name):
                    params[name] = call.params.str(name) or "true"
            request = parse_search_request(body, params)
            index = header.get("index", default_index)
            if isinstance(index, list):
                index = ",".join(index)
            options = {k: header[k] for k in ("ignore_unavailable", "allow_no_indices") if k in header}
            t0 = time.monotonic()
            outcome = await call.session.search(index, request, **options)
            responses.append(search_body(outcome, request, int((time.monotonic() - t0) * 1000)) | {"status": 200})
        except StrongroomError as error:
            responses.append({"error": error.to_es(), "status": error.status})
    return call.json({"took": int((time.monotonic() - started) * 1000), "responses": responses})


MSEARCH_HEADER_PARAMS = {"search_type", "request_cache", "preference", "routing", "allow_partial_search_results",
                         "ccs_minimize_roundtrips"}
MSEARCH_HEADER_KEYS = MSEARCH_HEADER_PARAMS | {"index", "indices", "ignore_unavailable", "allow_no_indices",
                                               "expand_wildcards", "ignore_throttled", "type", "types"}


async def explain(call: Call) -> Response:
    body = call.json_body() or {}
    query = body.get("query")
    if call.params.has("q"):
        query = {"query_string": {"query": call.params.str("q")}}
    if query is None:
        raise ActionRequestValidationError("query is missing")
    outcome = await call.session.explain(call.path["index"], call.path["id"], query)
    if outcome is None:
        return call.json({"_index": call.path["index"], "_id": call.path["id"], "matched": False}, 404)
    matched, explanation = outcome
    return call.json({"_index": call.path["index"], "_id": call.path["id"], "matched": matched,
                      "explanation": explanation})


def _by_query_limits(call: Call, body: dict[str, Any]) -> tuple[int | None, str]:
    conflicts = body.get("conflicts", call.params.str("conflicts", "abort"))
    if conflicts not in ("abort", "proceed"):
        raise IllegalArgumentError(f"conflicts may only be \"proceed\" or \"abort\" but was [{conflicts}]")
    values = []
    for name, raw in (("max_docs", body.get("max_docs")), ("size", body.get("size")),
                      ("size", call.params.str("size")), ("max_docs", call.params.str("max_docs"))):
        if raw is None:
            continue
        if isinstance(raw, bool):
            raise IllegalArgumentError(f"[{name}] must be an integer")
        try:
            number = int(raw)
        except (TypeError, ValueError):
            raise IllegalArgumentError(f"Failed to parse int parameter [{name}] with value [{raw}]") from None
        if number < 0:
            raise IllegalArgumentError(f"[max_docs] parameter cannot be negative, found [{number}]")
        values.append(number)
    if len(set(values)) > 1:
        raise IllegalArgumentError(f"[max_docs] set to two different values [{values[0]}] and [{values[1]}]")
    max_docs = values[0] if values else None
    slices = call.params.str("slices")
    if slices is not None and slices != "auto":
        if not slices.isdigit() or int(slices) < 1:
            raise IllegalArgumentError('[slices] must be a positive integer or the string "auto"')
        if max_docs is not None and max_docs < int(slices):
            raise ActionRequestValidationError("[max_docs] should be >= [slices]")
    rps = call.params.str("requests_per_second")
    if rps is not None:
        try:
            rate = float(rps)
        except ValueError:
            rate = 0.0
        if rate != -1 and rate <= 0:
            raise IllegalArgumentError("[requests_per_second] must be a float greater than 0. Use -1 to disable "
                                       "throttling.")
    call.params.int("scroll_size")
    return max_docs, conflicts


async def by_query(call: Call, operation: str) -> Response:
    started = time.monotonic()
    body = call.json_body() or {}
    if "stored_fields" in body:
        raise ActionRequestValidationError("stored_fields is not supported in this context")
    unknown = set(body) - {"query", "max_docs", "conflicts", "script", "slice", "size"}
    if unknown:
        raise RequestError(f"[{operation}_by_query] unknown field [{sorted(unknown)[0]}]")
    if "script" in body:
        raise RequestError("scripts are not supported by Strongroom")
    if "slice" in body:
        raise RequestError("manual slicing ([slice]) is not supported")
    if call.params.has("wait_for_completion") and not call.params.bool("wait_for_completion", True):
        raise RequestError("[wait_for_completion=false] (background tasks) is not supported")
    if operation == "delete" and "query" not in body and not call.params.has("q"):
        raise ActionRequestValidationError("query is missing")
    max_docs, conflicts = _by_query_limits(call, body)
    try:
        check_active_shards(call)
    except UnavailableError as error:  # Reported like any other failure of a by-query operation.
        cause = error.to_es()
        cause.pop("root_cause", None)
        done_key = "deleted" if operation == "delete" else "updated"
        return call.json({"took": 0, "timed_out": False, "total": 0, done_key: 0, "batches": 0,
                          "version_conflicts": 0, "noops": 0, "retries": {"bulk": 0, "search": 0},
                          "throttled_millis": 0, "requests_per_second": -1.0, "throttled_until_millis": 0,
                          "failures": [{"index": call.path["index"], "cause": cause, "status": error.status}]},
                         error.status)
    search_body_json = {"query": body["query"]} if "query" in body else {}
    params = {k: v for k, v in params_dict(call).items() if k in ("q", "df", "default_operator", "analyzer",
                                                                   "lenient", "analyze_wildcard")}
    request = parse_search_request(search_body_json, params)
    request.spec.size = 0
    request.spec.track_total = True
    batch = call.params.int("scroll_size", 1000) or 1000
    if batch < 1:
        raise IllegalArgumentError("[scroll_size] must be positive")
    rps = call.params.str("requests_per_second")
    rate = float(rps) if rps is not None and float(rps) > 0 else None
    result = await call.session.by_query(call.path["index"], request, operation, conflicts=conflicts,
                                         max_docs=max_docs, refresh=call.params.refresh(), batch_size=batch,
                                         requests_per_second=rate, **call.params.index_options())
    done_key = "deleted" if operation == "delete" else "updated"
    response = {"took": int((time.monotonic() - started) * 1000), "timed_out": False, "total": result["total"],
                done_key: result["done"], "batches": result["batches"], "version_conflicts": result["conflicts"],
                "noops": 0, "retries": {"bulk": 0, "search": 0}, "throttled_millis": result["throttled_millis"],
                "requests_per_second": rate or -1.0, "throttled_until_millis": 0, "failures": result["failures"]}
    if operation == "update":
        response["deleted"] = 0
    status = 409 if result["failures"] and any(f["status"] == 409 for f in result["failures"]) else 200
    return call.json(response, status)


async def delete_by_query(call: Call) -> Response:
    return await by_query(call, "delete")


async def update_by_query(call: Call) -> Response:
    return await by_query(call, "update")


async def open_pit(call: Call) -> Response:
    keep_alive = call.params.str("keep_alive")
    if keep_alive is None:
        raise ActionRequestValidationError("[keep_alive] is required")
    pit_id = await call.session.open_point_in_time(call.path["index"], keep_alive, **call.params.index_options())
    return call.json({"id": pit_id})


async def close_pit(call: Call) -> Response:
    body = call.json_body(required=True)
    pit_id = body.get("id")
    if not isinstance(pit_id, str):
        raise ActionRequestValidationError("point in time id is missing")
    found, freed = call.session.close_point_in_time(pit_id)
    return call.json({"succeeded": True, "num_freed": freed}, 200 if found else 404)


SEARCH_ROUTE_PARAMS = SEARCH_PARAMS
PIT_PARAMS = ("keep_alive", "preference", "ignore_unavailable", "expand_wildcards")
SCROLL_PARAMS = ("scroll", "scroll_id", "rest_total_hits_as_int")
MSEARCH_PARAMS = ("search_type", "max_concurrent_searches", "typed_keys", "pre_filter_shard_size",
                  "max_concurrent_shard_requests", "rest_total_hits_as_int", "ccs_minimize_roundtrips")
EXPLAIN_PARAMS = ("q", "df", "default_operator", "analyzer", "analyze_wildcard", "lenient", "preference", "routing",
                  "_source", "_source_includes", "_source_excludes", "stored_fields")
BY_QUERY_PARAMS = ("q", "df", "default_operator", "analyzer", "analyze_wildcard", "lenient", "conflicts", "max_docs",
                   "size",
                   "refresh", "wait_for_completion", "slices", "scroll", "scroll_size", "requests_per_second",
                   "timeout", "wait_for_active_shards", "ignore_unavailable", "allow_no_indices",
                   "expand_wildcards", "preference", "search_type", "search_timeout", "request_cache")
ANALYZE_PARAMS = ("text", "analyzer", "field", "index")
