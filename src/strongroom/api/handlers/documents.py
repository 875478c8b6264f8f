"""Document endpoints: index, create, get, exists, `_source`, delete, `_update`, `_mget`."""

from __future__ import annotations

import difflib
from typing import Any

from starlette.responses import Response

from ...errors import (ActionRequestValidationError, IllegalArgumentError, JsonParseError, MapperParsingError,
                       NotFoundError, RequestError, StrongroomError)
from ...jsonio import loads_document, loads_strict
from ...query.source import SourceFilter, source_filter_from_body, source_filter_from_params
from ...security.session import DocResult, DocWrite, GetSpec, WriteResult
from ..wire import head_response
from . import Call, check_active_shards

WRITE_PARAMS = ("refresh", "routing", "timeout", "wait_for_active_shards", "require_alias", "if_seq_no",
                "if_primary_term", "version", "version_type")
GET_PARAMS = ("routing", "realtime", "refresh", "_source", "_source_includes", "_source_excludes", "preference",
              "stored_fields", "version", "version_type")


def write_result_body(result: WriteResult, *, forced_refresh: bool = False, include_status: bool = False
                      ) -> tuple[dict[str, Any], int]:
    outcome = result.outcome
    if isinstance(outcome, StrongroomError):
        raise outcome
    body: dict[str, Any] = {"_index": result.index, "_id": outcome.doc_id, "_version": outcome.version,
                            "result": outcome.result}
    if forced_refresh:
        body["forced_refresh"] = True
    noop = outcome.result == "noop"
    body["_shards"] = {"total": 0 if noop else 1, "successful": 0 if noop else 1, "failed": 0}
    body["_seq_no"] = outcome.seq_no
    body["_primary_term"] = outcome.primary_term
    if include_status:
        body["status"] = outcome.status
    return body, outcome.status


def _write_from_params(call: Call, op: str, doc_id: str | None, document: Any = None, source: bytes | None = None,
                       update: dict[str, Any] | None = None) -> DocWrite:
    p = call.params
    return DocWrite(op, call.path["index"], doc_id, document, source, p.int("if_seq_no"), p.int("if_primary_term"),
                    p.int("version"), p.str("version_type"), p.str("routing"), update)


async def index_doc(call: Call) -> Response:
    op_type = call.params.str("op_type", "index")
    if op_type not in ("index", "create"):
        raise RequestError(f"opType must be 'create' or 'index', found: [{op_type}]")
    return await _write_document(call, op_type)


async def create_doc(call: Call) -> Response:
    return await _write_document(call, "create")


async def _write_document(call: Call, op_type: str) -> Response:
    check_active_shards(call)
    if call.params.has("pipeline"):
        raise RequestError("ingest pipelines are not supported by Strongroom")
    document = loads_document(call.body)
    write = _write_from_params(call, op_type, call.path.get("id"), document, call.body)
    (result,), forced = await call.session.write([write], refresh=call.params.refresh())
    body, status = write_result_body(result, forced_refresh=forced)
    return call.json(body, status)


async def delete_doc(call: Call) -> Response:
    check_active_shards(call)
    write = _write_from_params(call, "delete", call.path["id"])
    (result,), forced = await call.session.write([write], refresh=call.params.refresh())
    body, status = write_result_body(result, forced_refresh=forced)
    return call.json(body, status)


UPDATE_KEYS = {"doc", "upsert", "doc_as_upsert", "detect_noop", "_source", "script", "scripted_upsert"}


def parse_update_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise RequestError("an update request body must be a JSON object")
    unknown = set(body) - UPDATE_KEYS
    if unknown:
        field = sorted(unknown)[0]
        close = difflib.get_close_matches(field, sorted(UPDATE_KEYS), n=1)
        hint = f" did you mean [{close[0]}]?" if close else ""
        raise JsonParseError(f"[UpdateRequest] unknown field [{field}]{hint}")
    if "script" in body or body.get("scripted_upsert"):
        raise RequestError("scripts are not supported by Strongroom; send a partial document in [doc]")
    if body.get("doc") is None and body.get("upsert") is None:
        raise ActionRequestValidationError("script or doc is missing")
    for key in ("doc", "upsert"):
        if key in body and body[key] is not None and not isinstance(body[key], dict):
            raise MapperParsingError(f"failed to parse [{key}]: must be a JSON object")
    for key in ("doc_as_upsert", "detect_noop"):
        if key in body and not isinstance(body[key], bool):
            raise RequestError(f"[UpdateRequest] failed to parse field [{key}]: must be a boolean")
    return body


async def update_doc(call: Call) -> Response:
    check_active_shards(call)
    body = parse_update_body(call.json_body(required=True))
    source_filter = source_filter_from_body(body["_source"]) if "_source" in body else None
    if any(call.params.has(p) for p in ("_source", "_source_includes", "_source_excludes")):
        source_filter = source_filter_from_params(call.params.str("_source"), call.params.str("_source_includes"),
                                                  call.params.str("_source_excludes"))
    write = _write_from_params(call, "update", call.path["id"], update=body)
    (result,), forced = await call.session.write([write], refresh=call.params.refresh())
    response, status = write_result_body(result, forced_refresh=forced)
    if source_filter is not None and source_filter.fetch and result.source is not None:
        response["get"] = {"_seq_no": response["_seq_no"], "_primary_term": response["_primary_term"],
                           "found": True, "_source": source_filter.apply(loads_strict(result.source))}
    return call.json(response, status)


def _list_param(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _get_spec(call: Call, doc_id: str) -> GetSpec:
    p = call.params
    source_filter = None
    if any(p.has(name) for name in ("_source", "_source_includes", "_source_excludes")):
        source_filter = source_filter_from_params(p.str("_source"), p.str("_source_includes"),
                                                  p.str("_source_excludes"))
    return GetSpec(call.path.get("index", ""), doc_id, p.str("routing"), source_filter, _list_param(p.str("stored_fields")),
                   p.int("version"), p.str("version_type"))


def doc_body(result: DocResult) -> dict[str, Any]:
    if result.doc is None:
        return {"_index": result.index, "_id": result.doc_id, "found": False}
    doc = result.doc
    body: dict[str, Any] = {"_index": result.index, "_id": doc.doc_id, "_version": doc.version,
                            "_seq_no": doc.seq_no, "_primary_term": doc.primary_term, "found": True}
    if doc.routing is not None:
        body["_routing"] = doc.routing
    if result.source is not None:
        body["_source"] = result.source
    if result.fields:
        body["fields"] = result.fields
    return body


async def _get(call: Call, head: bool) -> DocResult:
    spec = _get_spec(call, call.path["id"])
    if head:
        spec.source_filter, spec.stored_fields = SourceFilter(fetch=False), None
    return await call.session.get(spec, realtime=call.params.bool("realtime", True),
                                  refresh=call.params.bool("refresh"))


async def get_doc(call: Call) -> Response:
    head = call.request.method == "HEAD"
    result = await _get(call, head)
    if head:
        return head_response(200 if result.doc is not None else 404)
    return call.json(doc_body(result), 200 if result.doc is not None else 404)


async def get_source(call: Call) -> Response:
    head = call.request.method == "HEAD"
    result = await _get(call, head)
    if result.doc is None:
        if head:
            return head_response(404)
        raise NotFoundError(f"Document not found [{call.path['index']}]/[{call.path['id']}]")
    if head:
        return head_response(200)
    return call.json(result.source if result.source is not None else {})


async def reveal(call: Call) -> Response:
    """`POST /_strongroom/reveal/{index}/{id}` `{"fields": ["phone"]}` with the purpose header: masked
    fields of one record in clear (Session.reveal). Never stored by a browser or a proxy."""
    body = call.json_body(required=True)
    if not isinstance(body, dict) or set(body) - {"fields"}:
        raise IllegalArgumentError("the body must be an object with [fields] only, e.g. {\"fields\": [\"phone\"]}")
    result = await call.session.reveal(call.path["index"], call.path["id"], body.get("fields"),
                                       routing=call.params.str("routing"))
    return call.json(doc_body(result) | {"fields": result.fields or {}}, headers={"Cache-Control": "no-store"})


MGET_DOC_KEYS = {"_index", "_id", "routing", "_source", "stored_fields", "version", "version_type"}


def _mget_string(spec: dict[str, Any], key: str, position: int) -> str | None:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise RequestError(f"failed to parse multi get request: [{key}] of doc {position} must be a string")
    return str(value)


async def mget(call: Call) -> Response:
    body = call.json_body(required=True)
    default_index = call.path.get("index")
    routing = call.params.str("routing")
    unknown = set(body) - {"docs", "ids"}
    if unknown:
        raise RequestError(f"unknown key [{sorted(unknown)[0]}] in mget request")
    entries: list[Any]
    if "ids" in body:
        if not isinstance(body["ids"], list) or not all(isinstance(i, (str, int)) and not isinstance(i, bool)
                                                        for i in body["ids"]):
            raise RequestError("[ids] must be an array of ids")
        entries = [{"_id": i} for i in body["ids"]]
    else:
        entries = body.get("docs", [])
        if not isinstance(entries, list):
            raise RequestError("[docs] must be an array")
    if not entries:
        raise ActionRequestValidationError("no documents to get")
    template = _get_spec(call, "")
    specs = []
    problems = []
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise RequestError("each entry of [docs] must be an object")
        extra = set(entry) - MGET_DOC_KEYS
        if extra:
            raise RequestError(f"failed to parse multi get request. unknown field [{sorted(extra)[0]}]")
        index = _mget_string(entry, "_index", position) or default_index
        doc_id = _mget_string(entry, "_id", position)
        if index is None:
            problems.append(f"index is missing for doc {position}")
        if not doc_id:
            problems.append(f"id is missing for doc {position}")
        source_filter = source_filter_from_body(entry["_source"]) if "_source" in entry else template.source_filter
        stored = template.stored_fields
        if "stored_fields" in entry:
            stored = entry["stored_fields"]
            if isinstance(stored, str):
                stored = (stored,)
            elif not isinstance(stored, list) or not all(isinstance(f, str) for f in stored):
                raise RequestError(f"[stored_fields] of doc {position} must be an array of field names")
            else:
                stored = tuple(stored)
        version = entry.get("version")
        if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
            raise RequestError(f"[version] of doc {position} must be a number")
        specs.append(GetSpec(index or "", doc_id or "", _mget_string(entry, "routing", position) or routing,
                             source_filter, stored, version, _mget_string(entry, "version_type", position)))
    if problems:
        raise ActionRequestValidationError(*problems)
    results = await call.session.mget(specs, realtime=call.params.bool("realtime", True),
                                      refresh=call.params.bool("refresh"))
    docs = []
    for spec, result in zip(specs, results):
        if isinstance(result, StrongroomError):
            docs.append({"_index": spec.index, "_id": spec.doc_id, "error": result.to_es()})
        else:
            docs.append(doc_body(result))
    return call.json({"docs": docs})


def item_error(error: StrongroomError) -> dict[str, Any]:
    """The error object of one `_bulk` item (no root_cause, as Elasticsearch does there)."""
    body = error.to_es()
    body.pop("root_cause", None)
    return body
