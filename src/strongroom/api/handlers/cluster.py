"""Cluster-level endpoints: `/`, `_cluster/health`, `_cat/indices`, `_cat/count`."""

from __future__ import annotations

import fnmatch
import time
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from ... import __version__
from ...errors import IllegalArgumentError, IndexNotFoundError, RequestTimeoutError
from ...security.session import IndexView
from ..wire import INDEX_OPTION_PARAMS, head_response, text_response
from . import Call

ES_VERSION = "8.15.0"  # The Elasticsearch API level we answer as; clients check the major version.


async def root(call: Call) -> Response:
    info = call.session.info()
    if call.request.method == "HEAD":
        return head_response(200)
    return call.json({
        "name": info["node_name"], "cluster_name": info["cluster_name"], "cluster_uuid": info["cluster_uuid"],
        "version": {"number": ES_VERSION, "build_flavor": "default", "build_type": "strongroom",
                    "build_hash": f"strongroom-{__version__}", "build_date": "2026-11-28T00:00:00.000Z",
                    "build_snapshot": False, "lucene_version": "tantivy-0.27",
                    "minimum_wire_compatibility_version": "7.17.0",
                    "minimum_index_compatibility_version": "7.0.0"},
        "tagline": "You Know, for Search",
        "strongroom": {"version": __version__},
    })


def _health_of(view: IndexView) -> str:
    return "yellow" if view.replicas > 0 else "green"


HEALTH_ORDER = {"green": 0, "yellow": 1, "red": 2}


async def health(call: Call) -> Response:
    params = call.params
    expression = call.path.get("index")
    level = params.str("level", "cluster")
    if level not in ("cluster", "indices", "shards"):
        raise IllegalArgumentError(f"No enum constant for level [{level}]")
    missing = False
    try:
        views = call.session.health(expression)
    except IndexNotFoundError:
        views, missing = [], True
    status = "red" if missing else max((_health_of(v) for v in views), key=HEALTH_ORDER.__getitem__,
                                       default="green")
    primaries = sum(v.shards for v in views)
    unassigned = sum(v.shards * v.replicas for v in views)
    body: dict[str, Any] = {
        "cluster_name": call.session.cluster_info["cluster_name"], "status": status, "timed_out": False,
        "number_of_nodes": 1, "number_of_data_nodes": 1, "active_primary_shards": primaries,
        "active_shards": primaries, "relocating_shards": 0, "initializing_shards": 0,
        "unassigned_shards": unassigned, "unassigned_primary_shards": 0, "delayed_unassigned_shards": 0,
        "number_of_pending_tasks": 0, "number_of_in_flight_fetch": 0, "task_max_waiting_in_queue_millis": 0,
        "active_shards_percent_as_number": 100.0 if not unassigned else round(
            100.0 * primaries / (primaries + unassigned), 1)}
    if level in ("indices", "shards"):
        body["indices"] = {}
        for v in views:
            entry: dict[str, Any] = {
                "status": _health_of(v), "number_of_shards": v.shards, "number_of_replicas": v.replicas,
                "active_primary_shards": v.shards, "active_shards": v.shards, "relocating_shards": 0,
                "initializing_shards": 0, "unassigned_shards": v.shards * v.replicas,
                "unassigned_primary_shards": 0}
            if level == "shards":
                entry["shards"] = {str(n): {"status": _health_of(v), "primary_active": True, "active_shards": 1,
                                            "relocating_shards": 0, "initializing_shards": 0,
                                            "unassigned_shards": v.replicas, "unassigned_primary_shards": 0}
                                   for n in range(v.shards)}
            body["indices"][v.name] = entry
    wanted = params.str("wait_for_status")
    if wanted is not None and wanted not in HEALTH_ORDER:
        raise IllegalArgumentError(f"unknown cluster health status [{wanted}]")
    # Without replicas or other nodes the state cannot change while we wait: answer at once.
    if (wanted is not None and HEALTH_ORDER[status] > HEALTH_ORDER[wanted]) or missing:
        body["timed_out"] = True
        return call.json(body, RequestTimeoutError.status)
    return call.json(body)


HEALTH_PARAMS = ("level", "local", "master_timeout", "timeout", "wait_for_active_shards", "wait_for_nodes",
                 "wait_for_events", "wait_for_no_relocating_shards", "wait_for_no_initializing_shards",
                 "wait_for_status", *INDEX_OPTION_PARAMS)


# -- _cat ----------------------------------------------------------------------------------
def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("b", "kb", "mb", "gb", "tb"):
        if value < 1024 or unit == "tb":
            return f"{int(value)}{unit}" if unit == "b" else f"{value:.1f}{unit}"
        value /= 1024
    raise AssertionError


def _bytes(size: int, unit: str | None) -> str:
    if unit is None:
        return human_bytes(size)
    divisors = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4}
    if unit not in divisors:
        raise IllegalArgumentError(f"failed to parse [bytes] value [{unit}]")
    return str(size // divisors[unit])


@dataclass(frozen=True)
class Column:
    name: str
    aliases: tuple[str, ...]
    help: str
    default: bool = True


def cat_response(call: Call, columns: list[Column], rows: list[dict[str, str]]) -> Response:
    params = call.params
    by_name = {c.name: c for c in columns}
    lookup = {alias: c.name for c in columns for alias in (c.name, *c.aliases)}
    if params.has("help"):
        width = max(len(c.name) for c in columns)
        lines = [f"{c.name.ljust(width)} | {','.join(c.aliases).ljust(12)} | {c.help}" for c in columns]
        return text_response(call.request, "".join(line + "\n" for line in lines))
    headers = [c.name for c in columns if c.default]
    selected = headers
    if params.str("h"):
        selected, headers = [], []
        for wanted in (h.strip() for h in (params.str("h") or "").split(",") if h.strip()):
            if "*" in wanted:
                matched = [c.name for c in columns if fnmatch.fnmatchcase(c.name, wanted)]
                selected += matched
                headers += matched
            elif wanted in lookup:
                selected.append(lookup[wanted])
                headers.append(wanted)
            else:
                raise IllegalArgumentError(f"unable to find column [{wanted}]")
    if params.str("s"):
        for spec in reversed((params.str("s") or "").split(",")):
            name, _, order = spec.partition(":")
            if name not in lookup:
                raise IllegalArgumentError(f"Unable to sort by unknown sort key `{name}`")
            column = by_name[lookup[name]].name
            rows.sort(key=lambda r: _sort_key(r[column]), reverse=order == "desc")
    fmt = params.str("format", "text")
    if fmt == "json":
        return call.json([{h: r[c] for h, c in zip(headers, selected)} for r in rows])
    if fmt != "text":
        raise IllegalArgumentError(f"[format] [{fmt}] is not supported by _cat; use text or json")
    table = [[r[c] for c in selected] for r in rows]
    if params.bool("v"):
        table.insert(0, headers)
    widths = [max((len(row[i]) for row in table), default=0) for i in range(len(selected))]
    lines = [" ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in table]
    return text_response(call.request, "".join(line + "\n" for line in lines))


def _sort_key(value: str) -> tuple[int, Any]:
    try:
        return (0, float(value))
    except ValueError:
        return (1, value)


CAT_PARAMS = ("format", "h", "help", "v", "s", "bytes", "local", "master_timeout", "time", "pri", "health",
              *INDEX_OPTION_PARAMS)


INDEX_COLUMNS = [
    Column("health", ("h",), "current health status"),
    Column("status", ("s",), "open/close status"),
    Column("index", ("i", "idx"), "index name"),
    Column("uuid", ("id",), "index uuid"),
    Column("pri", ("p", "shards.primary", "shardsPrimary"), "number of primary shards"),
    Column("rep", ("r", "shards.replica", "shardsReplica"), "number of replica shards"),
    Column("docs.count", ("dc", "docsCount"), "available docs"),
    Column("docs.deleted", ("dd", "docsDeleted"), "deleted docs"),
    Column("creation.date", ("cd",), "index creation date (millisecond value)", default=False),
    Column("creation.date.string", ("cds",), "index creation date (as string)", default=False),
    Column("store.size", ("ss", "storeSize"), "store size of primaries & replicas"),
    Column("pri.store.size", (), "store size of primaries"),
    Column("dataset.size", (), "total size of dataset"),
]


async def cat_indices(call: Call) -> Response:
    wanted_health = call.params.str("health")
    if wanted_health is not None and wanted_health not in HEALTH_ORDER:
        raise IllegalArgumentError(f"[health] must be one of green, yellow or red, got [{wanted_health}]")
    views = await call.session.get_indices(call.path.get("index"), stats=True, **call.params.index_options())
    unit = call.params.str("bytes")
    rows = []
    for v in views:
        health_value = _health_of(v)
        if wanted_health and health_value != wanted_health:
            continue
        created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(v.creation_date / 1000))
        rows.append({"health": health_value, "status": "open", "index": v.name, "uuid": v.uuid,
                     "pri": str(v.shards), "rep": str(v.replicas), "docs.count": str(v.docs),
                     "docs.deleted": str(v.deleted), "creation.date": str(v.creation_date),
                     "creation.date.string": f"{created}.{v.creation_date % 1000:03d}Z",
                     "store.size": _bytes(v.store_bytes, unit), "pri.store.size": _bytes(v.store_bytes, unit),
                     "dataset.size": _bytes(v.store_bytes, unit)})
    return cat_response(call, INDEX_COLUMNS, rows)


async def cat_count(call: Call) -> Response:
    total, _shards = await call.session.count(call.path.get("index"), None)
    now = time.time()
    row = {"epoch": str(int(now)), "timestamp": time.strftime("%H:%M:%S", time.gmtime(now)), "count": str(total)}
    columns = [Column("epoch", ("t", "time"), "seconds since 1970-01-01 00:00:00"),
               Column("timestamp", ("ts", "hms", "hhmmss"), "time in HH:MM:SS"),
               Column("count", ("dc", "docs.count", "docsCount"), "the document count")]
    return cat_response(call, columns, [row])


async def doctor(call: Call) -> Response:
    """`GET /_strongroom/doctor`: the deployment self-check's latest report, for monitoring."""
    return call.json(call.session.doctor_report())
