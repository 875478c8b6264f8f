"""Index endpoints: create, delete, exists, get, mappings, settings, refresh, count, stats."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from ...errors import IllegalArgumentError, RequestError
from ...security import policy as actions
from ...security.session import IndexView, index_settings_defaults
from ..wire import INDEX_OPTION_PARAMS, head_response
from . import Call, shards_header

CREATE_KEYS = {"settings", "mappings", "aliases"}


async def create(call: Call) -> Response:
    body = call.json_body() or {}
    unknown = set(body) - CREATE_KEYS
    if unknown:
        raise RequestError(f"unknown key [{sorted(unknown)[0]}] for create index")
    if body.get("aliases"):
        raise RequestError("index aliases are not supported by Strongroom yet")
    name = call.path["index"]
    view = await call.session.create_index(name, body.get("settings"), body.get("mappings"))
    return call.json({"acknowledged": True, "shards_acknowledged": True, "index": view.name})


async def delete(call: Call) -> Response:
    await call.session.delete_indices(call.path["index"], **call.params.index_options())
    return call.json({"acknowledged": True})


async def exists(call: Call) -> Response:
    found = call.session.index_exists(call.path["index"], **call.params.index_options())
    return head_response(200 if found else 404)


def render_settings(view: IndexView, *, flat: bool) -> dict[str, Any]:
    values = {"index.creation_date": str(view.creation_date), "index.number_of_shards": str(view.shards),
              "index.number_of_replicas": str(view.replicas), "index.uuid": view.uuid,
              "index.version.created": "8150099", "index.provided_name": view.name, **view.settings}
    return _nest(values, flat)


def _nest(values: dict[str, str], flat: bool) -> dict[str, Any]:
    if flat:
        return dict(sorted(values.items()))
    nested: dict[str, Any] = {}
    for key, value in sorted(values.items()):
        target = nested
        parts = key.split(".")
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return nested


async def get(call: Call) -> Response:
    views = await call.session.get_indices(call.path["index"], **call.params.index_options())
    flat = call.params.bool("flat_settings")
    return call.json({v.name: {"aliases": {}, "mappings": v.mappings, "settings": render_settings(v, flat=flat)}
                      for v in views})


async def get_mapping(call: Call) -> Response:
    views = await call.session.get_indices(call.path.get("index"), actions.MAPPING_GET,
                                           **call.params.index_options())
    return call.json({v.name: {"mappings": v.mappings} for v in views})


async def put_mapping(call: Call) -> Response:
    body = call.json_body(required=True)
    if "_doc" in body:
        raise IllegalArgumentError("Types cannot be provided in put mapping requests")
    await call.session.put_mapping(call.path["index"], body, **call.params.index_options())
    return call.json({"acknowledged": True})


async def get_settings(call: Call) -> Response:
    views = await call.session.get_indices(call.path.get("index"), actions.SETTINGS_GET,
                                           **call.params.index_options())
    flat = call.params.bool("flat_settings")
    defaults = call.params.bool("include_defaults")
    out = {}
    for v in views:
        out[v.name] = {"settings": render_settings(v, flat=flat)}
        if defaults:
            out[v.name]["defaults"] = render_defaults(v, flat=flat)
    return call.json(out)


def render_defaults(view: IndexView, *, flat: bool) -> dict[str, Any]:
    values = {name: default for name, default in index_settings_defaults().items() if name not in view.settings
              and name not in ("index.number_of_shards", "index.number_of_replicas")}
    return _nest(values, flat)


async def put_settings(call: Call) -> Response:
    body = call.json_body(required=True)
    settings = body.get("settings", body) if set(body) == {"settings"} else body
    await call.session.update_settings(call.path.get("index"), settings, **call.params.index_options())
    return call.json({"acknowledged": True})


async def refresh(call: Call) -> Response:
    shards = await call.session.refresh(call.path.get("index"), **call.params.index_options())
    return call.json({"_shards": shards_header(shards)})


async def count(call: Call) -> Response:
    body = call.json_body() or {}
    unknown = set(body) - {"query"}
    if unknown:
        raise RequestError(f"request does not support [{sorted(unknown)[0]}]")
    query = body.get("query")
    if call.params.has("q"):
        if query is not None:
            raise IllegalArgumentError("request [_count] cannot use both a [q] parameter and a body query")
        qs: dict[str, Any] = {"query": call.params.str("q")}
        for name, target in (("df", "default_field"), ("default_operator", "default_operator"),
                             ("analyzer", "analyzer"), ("lenient", "lenient")):
            if call.params.has(name):
                qs[target] = call.params.str(name)
        query = {"query_string": qs}
    total, shards = await call.session.count(call.path.get("index"), query, **call.params.index_options())
    return call.json({"count": total, "_shards": shards_header(shards, failed=0) | {"skipped": 0}})


async def stats(call: Call) -> Response:
    views = await call.session.get_indices(call.path.get("index"), actions.INDEX_STATS, stats=True,
                                           **call.params.index_options())

    def section(docs: int, deleted: int, size: int) -> dict[str, Any]:
        return {"docs": {"count": docs, "deleted": deleted},
                "store": {"size_in_bytes": size, "total_data_set_size_in_bytes": size, "reserved_in_bytes": 0}}

    indices = {}
    for v in views:
        part = section(v.docs, v.deleted, v.store_bytes)
        indices[v.name] = {"uuid": v.uuid, "health": "yellow" if v.replicas else "green", "status": "open",
                           "primaries": part, "total": part}
    total = section(sum(v.docs for v in views), sum(v.deleted for v in views), sum(v.store_bytes for v in views))
    shards = sum(v.shards for v in views)
    return call.json({"_shards": shards_header(shards), "_all": {"primaries": total, "total": total},
                      "indices": indices})


async def rotate_keys(call: Call) -> Response:
    """`POST /_strongroom/keys/{index}/_rotate`: a new data key version seals new writes and a
    background job re-seals the rest (`?reseal_only=true`: only re-seal, e.g. after a restart).
    `GET`: progress, counted by scanning the index."""
    name = call.path["index"]
    if call.request.method == "GET":
        return call.json(await call.session.rotate_index_keys(name, mode="status"))
    mode = "resume" if call.params.bool("reseal_only") else "rotate"
    return call.json(await call.session.rotate_index_keys(name, mode=mode))


INDEX_PARAMS = (*INDEX_OPTION_PARAMS, "master_timeout", "timeout", "wait_for_active_shards", "local",
                "flat_settings", "include_defaults")
