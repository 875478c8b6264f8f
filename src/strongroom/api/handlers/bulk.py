"""`_bulk`: NDJSON framing is checked completely before anything is applied.

A framing error (an action line that is not an object, an unknown action or parameter, a missing
source line, no trailing newline) rejects the whole request with 400 and applies nothing. A
problem inside one document (bad JSON, mapping error, version conflict) fails only that item. The
source line of an index or create is parsed later (`DocWrite.parsed`): by the session, or, in a large
batch of a protected index, by the ingest worker that derives its blind tokens (ingest.py).
"""

from __future__ import annotations

import time
from typing import Any

from starlette.responses import Response

from ...errors import (ActionRequestValidationError, IllegalArgumentError, JsonParseError, RequestError,
                       StrongroomError)
from ...jsonio import loads_strict
from ...query.source import SourceFilter, source_filter_from_body, source_filter_from_params
from ...security.session import DocWrite
from . import Call, check_active_shards
from .documents import item_error, parse_update_body, write_result_body

ACTIONS = ("index", "create", "update", "delete")
META_KEYS = {"_index", "_id", "routing", "_routing", "if_seq_no", "if_primary_term", "version", "version_type",
             "require_alias", "pipeline", "retry_on_conflict", "_source", "dynamic_templates", "op_type"}
BULK_PARAMS = ("refresh", "routing", "timeout", "wait_for_active_shards", "require_alias", "pipeline", "_source",
               "_source_includes", "_source_excludes")


def _malformed(line: int, detail: str) -> IllegalArgumentError:
    return IllegalArgumentError(f"Malformed action/metadata line [{line}], {detail}")


def _int_meta(meta: dict[str, Any], key: str, line: int) -> int | None:
    value = meta.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise IllegalArgumentError(f"Action/metadata line [{line}]: [{key}] must be a number")
    try:
        return int(value)
    except ValueError:
        raise IllegalArgumentError(f"Action/metadata line [{line}]: [{key}] must be a number") from None


def parse_bulk(body: bytes, default_index: str | None, default_routing: str | None
               , default_source: SourceFilter | None = None
               ) -> list[tuple[str, DocWrite, StrongroomError | None, SourceFilter | None]]:
    """(action, write, item error, source filter of an update's answer) per item. Raises for framing
    errors (the whole request is refused)."""
    if not body.strip():
        raise ActionRequestValidationError("no requests added")
    if not body.endswith(b"\n"):
        raise IllegalArgumentError("The bulk request must be terminated by a newline [\\n]")
    lines = body.split(b"\n")[:-1]
    items: list[tuple[str, DocWrite, StrongroomError | None, SourceFilter | None]] = []
    position = 0
    while position < len(lines):
        raw = lines[position].rstrip(b"\r")
        number = position + 1
        position += 1
        if not raw.strip():
            continue  # Elasticsearch skips empty lines between items.
        try:
            action_line = loads_strict(raw)
        except JsonParseError as exc:
            raise _malformed(number, f"expected START_OBJECT but the line is not valid JSON ({exc.reason})") from None
        if not isinstance(action_line, dict):
            raise _malformed(number, "expected START_OBJECT but found a different value")
        if not action_line:
            raise _malformed(number, "expected FIELD_NAME but found [END_OBJECT]")
        if len(action_line) != 1 or next(iter(action_line)) not in ACTIONS:
            found = next(iter(action_line), "")
            raise _malformed(number, f"expected field [create], [delete], [index] or [update] but found [{found}]")
        action, meta = next(iter(action_line.items()))
        if not isinstance(meta, dict):
            raise _malformed(number, f"expected START_OBJECT after [{action}]")
        unknown = set(meta) - META_KEYS
        if unknown:
            raise IllegalArgumentError(f"Action/metadata line [{number}] contains an unknown parameter "
                                       f"[{sorted(unknown)[0]}]")
        if meta.get("pipeline"):
            raise RequestError("ingest pipelines are not supported by Strongroom")
        index = meta.get("_index", default_index)
        if not isinstance(index, str) or not index:
            raise ActionRequestValidationError("index is missing")
        doc_id = meta.get("_id")
        if doc_id is not None and not isinstance(doc_id, str):
            doc_id = str(doc_id)
        routing = meta.get("routing", meta.get("_routing", default_routing))
        write = DocWrite(action, index, doc_id, None, None, _int_meta(meta, "if_seq_no", number),
                         _int_meta(meta, "if_primary_term", number), _int_meta(meta, "version", number),
                         meta.get("version_type"), None if routing is None else str(routing))
        if action == "delete":
            items.append((action, write, None, None))
            continue
        if position >= len(lines):
            raise IllegalArgumentError(f"Validation Failed: 1: the [{action}] action on line [{number}] has no "
                                       "source line;")
        source = lines[position].rstrip(b"\r")
        position += 1
        if action == "update":
            try:
                update = loads_strict(source)
            except JsonParseError as exc:
                raise JsonParseError(f"the update on line [{number + 1}] is not valid JSON: {exc.reason}") from None
            write.update = parse_update_body(update)
            wanted = default_source
            if "_source" in meta:
                wanted = source_filter_from_body(meta["_source"])
            if "_source" in write.update:
                wanted = source_filter_from_body(write.update["_source"])
            items.append((action, write, None, wanted))
            continue
        if meta.get("op_type") == "create":
            write.op = action = "create"  # Answered under "create", as Elasticsearch does.
        write.source = source  # parsed (strictly) by the session or an ingest worker: a bad one fails its item
        write.parsed = False
        items.append((action, write, None, None))
    if not items:
        raise ActionRequestValidationError("no requests added")
    return items


async def bulk(call: Call) -> Response:
    started = time.monotonic()
    check_active_shards(call)
    p = call.params
    default_source = None
    if any(p.has(name) for name in ("_source", "_source_includes", "_source_excludes")):
        default_source = source_filter_from_params(p.str("_source"), p.str("_source_includes"),
                                                   p.str("_source_excludes"))
    items = parse_bulk(call.body, call.path.get("index"), p.str("routing"), default_source)
    writes = [w for _a, w, error, _s in items if error is None]
    results, forced = await call.session.write(writes, refresh=call.params.refresh())
    answers = iter(results)
    out = []
    errors = False
    for action, write, error, wanted in items:
        if error is not None:
            out.append({action: {"_index": write.index, "_id": write.doc_id, "status": error.status,
                                 "error": item_error(error)}})
            errors = True
            continue
        result = next(answers)
        if isinstance(result.outcome, StrongroomError):
            errors = True
            out.append({action: {"_index": result.index, "_id": result.doc_id, "status": result.outcome.status,
                                 "error": item_error(result.outcome)}})
            continue
        body, _status = write_result_body(result, forced_refresh=forced, include_status=True)
        if wanted is not None and wanted.fetch and result.source is not None:
            body["get"] = {"_seq_no": body["_seq_no"], "_primary_term": body["_primary_term"], "found": True,
                           "_source": wanted.apply(loads_strict(result.source))}
        out.append({action: body})
    took = int((time.monotonic() - started) * 1000)
    return call.json({"errors": errors, "took": took, "items": out})
