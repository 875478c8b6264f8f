"""A Session: one authenticated principal's handle on the data.

The api layer holds sessions, never the engine. Every method authorizes its action on each index
it resolves before it touches the engine, so a route cannot reach data without policy. Blocking
engine work runs in worker threads.
"""

from __future__ import annotations

import asyncio
import fnmatch
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio

from ..engine.index import INDEX_SETTINGS, Index, UpdateSpec, WriteOutcome, WriteRequest
from ..engine.node import Engine
from ..engine.shard import Conditions, OpResult, StoredDoc
from ..errors import (ActionRequestValidationError, IllegalArgumentError, IndexNotFoundError, StrongroomError,
                      VersionConflictError)
from ..query.dsl import parse_query
from ..jsonio import loads_strict
from ..query.source import SourceFilter, extract_values
from . import policy as actions
from .policy import IndexGrant, Policy
from .users import Principal

T = TypeVar("T")
MAX_ID_BYTES = 512
VERSION_TYPES = ("internal", "external", "external_gte")


@dataclass
class DocWrite:
    """One document write as the api layer hands it over (engine-agnostic)."""

    op: str  # index | create | delete | update
    index: str
    doc_id: str | None
    document: Any = None
    source: bytes | None = None
    if_seq_no: int | None = None
    if_primary_term: int | None = None
    version: int | None = None
    version_type: str | None = None
    routing: str | None = None
    update: dict[str, Any] | None = None  # the `_update` body: doc, upsert, doc_as_upsert, detect_noop


@dataclass
class WriteResult:
    index: str
    doc_id: str | None
    op: str
    outcome: OpResult | StrongroomError
    source: bytes | None = None


@dataclass
class DocResult:
    index: str
    doc_id: str
    doc: StoredDoc | None
    source: dict[str, Any] | None = None  # filtered `_source` (None when not fetched or not found)
    fields: dict[str, list[Any]] | None = None  # stored fields that were asked for


@dataclass
class IndexView:
    """What the api may show about one index."""

    name: str
    uuid: str
    creation_date: int
    settings: dict[str, str]
    mappings: dict[str, Any]
    docs: int = 0
    deleted: int = 0
    store_bytes: int = 0
    shards: int = 1
    replicas: int = 1


@dataclass
class Resolution:
    names: list[str]
    grants: dict[str, IndexGrant] = field(default_factory=dict)


async def _run(fn: Callable[..., T], *args: Any) -> T:
    return await anyio.to_thread.run_sync(fn, *args)


class Session:
    def __init__(self, principal: Principal, engine: Engine, policy: Policy, cluster_info: dict[str, str]) -> None:
        self.principal = principal
        self.__engine = engine
        self.__policy = policy
        self.cluster_info = cluster_info

    # -- resolution and authorization ---------------------------------------------------------
    def _resolve(self, expression: str | None, action: str, *, ignore_unavailable: bool = False,
                 allow_no_indices: bool = True, expand_wildcards: str = "open") -> Resolution:
        engine = self.__engine
        existing = engine.names()
        items = [e.strip() for e in (expression or "_all").split(",") if e.strip()] or ["_all"]
        chosen: list[str] = []
        wildcard_seen = False
        for item in items:
            if item in ("_all", "*"):
                wildcard_seen = True
                chosen.extend(n for n in existing if not n.startswith(".") and expand_wildcards != "none")
                continue
            if item.startswith("-") and wildcard_seen:
                pattern = item[1:]
                chosen = [n for n in chosen if not fnmatch.fnmatchcase(n, pattern)]
                continue
            if "*" in item:
                wildcard_seen = True
                if expand_wildcards == "none":
                    continue
                hidden_ok = item.startswith(".")
                chosen.extend(n for n in existing if fnmatch.fnmatchcase(n, item)
                              and (hidden_ok or not n.startswith(".")))
                continue
            if item not in existing:
                if ignore_unavailable:
                    continue
                raise IndexNotFoundError(item)
            chosen.append(item)
        names = list(dict.fromkeys(chosen))
        if not names and not allow_no_indices:
            raise IndexNotFoundError(expression or "_all")
        grants = {name: self.__policy.authorize_index(self.principal, action, name) for name in names}
        return Resolution(names, grants)

    def _one(self, name: str, action: str) -> Index:
        if "," in name or "*" in name or name == "_all":
            raise IllegalArgumentError(f"this action requires a single concrete index, got [{name}]")
        self.__policy.authorize_index(self.principal, action, name)
        return self.__engine.index(name)

    # -- cluster -----------------------------------------------------------------------------
    def info(self) -> dict[str, str]:
        self.__policy.authorize_cluster(self.principal, actions.CLUSTER_MONITOR)
        return self.cluster_info

    def health(self, expression: str | None) -> list[IndexView]:
        self.__policy.authorize_cluster(self.principal, actions.CLUSTER_HEALTH)
        resolution = self._resolve(expression, actions.CLUSTER_HEALTH, allow_no_indices=True)
        return [self._view(name, stats=False) for name in resolution.names]

    def _view(self, name: str, *, stats: bool) -> IndexView:
        index = self.__engine.index(name)
        view = IndexView(index.name, index.uuid, index.creation_date, dict(index.settings), index.mapping.to_es(),
                         shards=len(index.shards), replicas=int(index.setting("index.number_of_replicas")))
        if stats:
            counts = index.stats()
            view.docs, view.deleted, view.store_bytes = counts["docs"], counts["deleted"], counts["store_bytes"]
        return view

    # -- index administration ----------------------------------------------------------------
    async def create_index(self, name: str, settings: Any, mappings: Any) -> IndexView:
        self.__policy.authorize_index(self.principal, actions.INDEX_CREATE, name)
        engine = self.__engine
        await _run(engine.create_index, name, settings, mappings)
        return self._view(name, stats=False)

    async def delete_indices(self, expression: str, *, ignore_unavailable: bool = False,
                             allow_no_indices: bool = True) -> list[str]:
        if expression in ("_all", "*") or not expression:
            # Elasticsearch refuses wildcard deletes by default (action.destructive_requires_name).
            raise IllegalArgumentError("Wildcard expressions or all indices are not allowed")
        resolution = self._resolve(expression, actions.INDEX_DELETE, ignore_unavailable=ignore_unavailable,
                                   allow_no_indices=allow_no_indices)
        for name in resolution.names:
            await _run(self.__engine.delete_index, name)
        return resolution.names

    def index_exists(self, expression: str, **options: Any) -> bool:
        try:
            resolution = self._resolve(expression, actions.INDEX_EXISTS, **options)
        except IndexNotFoundError:
            return False
        return bool(resolution.names)

    async def get_indices(self, expression: str | None, action: str = actions.INDEX_GET, *, stats: bool = False,
                          **options: Any) -> list[IndexView]:
        resolution = self._resolve(expression, action, **options)
        if stats:
            return [await _run(functools.partial(self._view, name, stats=True)) for name in resolution.names]
        return [self._view(name, stats=False) for name in resolution.names]

    async def put_mapping(self, expression: str, body: Any, **options: Any) -> list[str]:
        resolution = self._resolve(expression, actions.MAPPING_PUT, allow_no_indices=False, **options)
        engine = self.__engine
        for name in resolution.names:
            await _run(engine.index(name).put_mapping, body)
        return resolution.names

    async def update_settings(self, expression: str | None, body: Any, **options: Any) -> list[str]:
        resolution = self._resolve(expression, actions.SETTINGS_UPDATE, allow_no_indices=False, **options)
        engine = self.__engine
        for name in resolution.names:
            await _run(engine.index(name).update_settings, body)
        return resolution.names

    async def refresh(self, expression: str | None, **options: Any) -> int:
        resolution = self._resolve(expression, actions.INDEX_REFRESH, **options)
        engine = self.__engine
        shards = 0
        for name in resolution.names:
            index = engine.index(name)
            await _run(index.refresh)
            shards += len(index.shards)
        return shards

    async def count(self, expression: str | None, query: Any, **options: Any) -> tuple[int, int]:
        resolution = self._resolve(expression, actions.DOC_COUNT, **options)
        node = parse_query(query) if query is not None else parse_query({"match_all": {}})
        engine = self.__engine
        total = shards = 0
        for name in resolution.names:
            index = engine.index(name)
            total += await _run(index.count, node)
            shards += len(index.shards)
        return total, shards

    # -- documents ---------------------------------------------------------------------------
    async def write(self, writes: Sequence[DocWrite], *, refresh: str | None = None) -> tuple[list[WriteResult], bool]:
        """Applies writes grouped per index (order kept within each index). Returns results in
        request order and whether a refresh was forced."""
        results: list[WriteResult | None] = [None] * len(writes)
        groups: dict[str, list[int]] = {}
        for i, write in enumerate(writes):
            try:
                self._check_write(write)
            except StrongroomError as exc:
                results[i] = WriteResult(write.index, write.doc_id, write.op, exc)
                continue
            groups.setdefault(write.index, []).append(i)
        touched: list[tuple[Index, list[WriteOutcome]]] = []
        for name, positions in groups.items():
            try:
                index = await self._index_for_write(name, [writes[i] for i in positions])
            except StrongroomError as exc:
                for i in positions:
                    results[i] = WriteResult(writes[i].index, writes[i].doc_id, writes[i].op, exc)
                continue
            requests = [self._request(writes[i]) for i in positions]
            outcomes = await _run(index.write, requests)
            touched.append((index, outcomes))
            for i, request, outcome in zip(positions, requests, outcomes):
                results[i] = WriteResult(name, request.doc_id, writes[i].op, outcome.result, outcome.source)
        forced = False
        if refresh in ("true", ""):
            for index, _ in touched:
                await _run(index.refresh)
            forced = bool(touched)
        elif refresh == "wait_for":
            futures = []
            for index, outcomes in touched:
                last: dict[int, int] = {}
                for outcome in outcomes:
                    if isinstance(outcome.result, OpResult):
                        number = outcome.result.shard
                        last[number] = max(last.get(number, -1), outcome.result.seq_no)
                futures.extend(index.wait_for_refresh(last))
            for future in futures:
                await asyncio.wrap_future(future)
        elif refresh not in (None, "false"):
            raise IllegalArgumentError(f"Unknown value for refresh: [{refresh}].")
        return [r for r in results if r is not None], forced

    async def _index_for_write(self, name: str, writes: list[DocWrite]) -> Index:
        ops = {w.op for w in writes}
        for op in ops:
            action = {"index": actions.DOC_INDEX, "create": actions.DOC_INDEX, "delete": actions.DOC_DELETE,
                      "update": actions.DOC_UPDATE}[op]
            self.__policy.authorize_index(self.principal, action, name)
        engine = self.__engine
        if engine.exists(name):
            return engine.index(name)
        if ops <= {"delete"}:  # Like Elasticsearch, every other operation creates the index.
            raise IndexNotFoundError(name)
        self.__policy.authorize_index(self.principal, actions.INDEX_AUTO_CREATE, name)
        index, _created = await _run(engine.get_or_create, name)
        return index

    def _check_write(self, write: DocWrite) -> None:
        if write.doc_id is not None:
            if not write.doc_id:
                raise IllegalArgumentError("if _id is specified it must not be empty")
            if len(write.doc_id.encode()) > MAX_ID_BYTES:
                raise ActionRequestValidationError(f"id [{write.doc_id[:64]}...] is too long, must be no longer "
                                                   f"than {MAX_ID_BYTES} bytes but was: "
                                                   f"{len(write.doc_id.encode())}")
        elif write.op not in ("index", "create"):
            raise ActionRequestValidationError("id is missing")
        version_type = write.version_type or "internal"
        if version_type not in VERSION_TYPES:
            raise IllegalArgumentError(f"No version type match [{version_type}]")
        if write.version is not None and version_type == "internal" and write.op != "update":
            raise ActionRequestValidationError("internal versioning can not be used for optimistic concurrency "
                                               "control. Please use `if_seq_no` and `if_primary_term` instead")
        if version_type != "internal" and write.version is None:
            raise ActionRequestValidationError(f"version type [{version_type}] requires a version")
        if write.version is not None and version_type != "internal" and write.op in ("create", "update"):
            raise ActionRequestValidationError(f"{'create' if write.op == 'create' else 'update'} operations "
                                               "only support internal versioning. use index instead")
        if (write.if_seq_no is None) != (write.if_primary_term is None):
            raise ActionRequestValidationError("ifSeqNo is set, but primary term is [0]" if write.if_seq_no is not None
                                               else "ifPrimaryTerm is set, but seqNo is [-2]")
        if write.if_seq_no is not None and write.if_seq_no < 0:
            raise ActionRequestValidationError(f"sequence number must be non negative. got [{write.if_seq_no}].")
        if write.if_primary_term is not None and write.if_primary_term <= 0:
            raise ActionRequestValidationError(f"primary term must be positive. got [{write.if_primary_term}]")
        if write.if_seq_no is not None and write.version is not None:
            raise ActionRequestValidationError("compare and write operations can not use versioning")
        if write.op in ("index", "create") and write.source is None:
            raise ActionRequestValidationError("source is missing")

    @staticmethod
    def _request(write: DocWrite) -> WriteRequest:
        conditions = Conditions(write.if_seq_no, write.if_primary_term, write.version,
                                write.version_type or "internal")
        update = None
        if write.op == "update":
            body = write.update or {}
            update = UpdateSpec(body.get("doc"), body.get("upsert"), bool(body.get("doc_as_upsert", False)),
                                bool(body.get("detect_noop", True)))
        kind = "create" if write.op == "create" else write.op
        return WriteRequest(kind, write.doc_id, write.document, write.source, conditions, write.routing, update)

    async def get(self, spec: "GetSpec", *, realtime: bool = True, refresh: bool = False) -> DocResult:
        (result,) = await self._get_many([spec], actions.DOC_GET, realtime=realtime, refresh=refresh, single=True)
        assert isinstance(result, DocResult)
        return result

    async def mget(self, specs: Sequence["GetSpec"], *, realtime: bool = True, refresh: bool = False
                   ) -> list[DocResult | StrongroomError]:
        return await self._get_many(specs, actions.DOC_MGET, realtime=realtime, refresh=refresh, single=False)

    async def _get_many(self, specs: Sequence["GetSpec"], action: str, *, realtime: bool, refresh: bool,
                        single: bool) -> list[DocResult | StrongroomError]:
        results: list[DocResult | StrongroomError] = []
        refreshed: set[str] = set()
        for spec in specs:
            try:
                index = self._one(spec.index, action)
                if refresh and index.name not in refreshed:
                    await _run(index.refresh)
                    refreshed.add(index.name)
                doc = await _run(functools.partial(index.get, spec.doc_id, routing=spec.routing, realtime=realtime))
                if doc is not None and spec.version is not None:
                    self._check_get_version(index, spec, doc)
                results.append(self._doc_result(index, spec, doc))
            except StrongroomError as exc:
                if single:
                    raise
                results.append(exc)
        return results

    @staticmethod
    def _check_get_version(index: Index, spec: "GetSpec", doc: StoredDoc) -> None:
        kind = spec.version_type or "internal"
        if kind not in VERSION_TYPES:
            raise IllegalArgumentError(f"No version type match [{kind}]")
        if doc.version != spec.version:  # For reads every version type asks for equality.
            shard = index.shard_for(spec.doc_id, spec.routing).number
            raise VersionConflictError(f"[{spec.doc_id}]: version conflict, current version [{doc.version}] is "
                                       f"different than the one provided [{spec.version}]", index=index.name,
                                       uuid=index.uuid, shard=shard)

    def _doc_result(self, index: Index, spec: "GetSpec", doc: StoredDoc | None) -> DocResult:
        if doc is None:
            return DocResult(index.name, spec.doc_id, None)
        source_filter = spec.source_filter
        stored = spec.stored_fields
        wants_source = source_filter.fetch if source_filter is not None else True
        if stored is not None and source_filter is None:
            wants_source = "_source" in stored  # Asking for stored fields turns `_source` off unless named.
        fields = None
        parsed = loads_strict(doc.source) if (wants_source or stored) else None
        if stored and parsed is not None:
            fields = {}
            for name in stored:
                field_type = index.mapping.fields.get(name)
                if field_type is None or field_type.params.get("store") not in (True, "true"):
                    continue
                values = extract_values(parsed, field_type.parent or name)
                if values:
                    fields[name] = values
        source = None
        if wants_source and parsed is not None:
            source = source_filter.apply(parsed) if source_filter else parsed
        return DocResult(index.name, spec.doc_id, doc, source, fields or None)


@dataclass
class GetSpec:
    index: str
    doc_id: str
    routing: str | None = None
    source_filter: SourceFilter | None = None
    stored_fields: tuple[str, ...] | None = None
    version: int | None = None
    version_type: str | None = None


def index_settings_defaults() -> dict[str, str]:
    """Default values of the index settings the engine honours (for `include_defaults`)."""
    return {name: default for name, (default, _parse) in INDEX_SETTINGS.items()}
