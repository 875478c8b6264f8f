"""A Session: one authenticated principal's handle on the data.

The api layer holds sessions, never the engine. Every method authorizes its action on each index
it resolves before it touches the engine, so a route cannot reach data without policy. Blocking
engine work runs in worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import fnmatch
import time
import functools
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import orjson

from ..engine.index import INDEX_SETTINGS, Index, UpdateSpec, WriteOutcome, WriteRequest, deep_merge
from ..engine.aggs import run_aggregations
from ..engine.analysis import analyze_text
from ..engine.node import Engine
from ..engine.index import parse_time_value
from ..engine.plan import Bool, ConstantScore, Ids, MatchAll, Node, Term, Terms
from ..engine.search import Cursor, count_matches, explain, matching_ids, postings, run_search, targets_for
from ..engine.shard import NOOP, Conditions, OpResult, StoredDoc
from ..errors import (ActionRequestValidationError, MapperParsingError, AuthorizationError, IllegalArgumentError, IndexNotFoundError,
                      DocumentMissingError, FieldSecurityError, LimitError, StrongroomError, VersionConflictError)
from ..query.dsl import parse_query
from ..jsonio import extract_values, loads_document, loads_strict
from ..pii import find_in_document
from ..query.fields import retrieve
from ..query.highlight import Limits, collect, highlight_hit
from ..query.search_request import SearchRequest
from ..query.source import SourceFilter
from . import policy as actions
from .access import Access, DocFilter
from .masks import Masker
from .protect import Protector
from .vault import Vault
from ..crypto.keys import DataKeys, MasterKey
from .policy import IndexGrant, Policy
from .scroll import ScrollRegistry, check_keep_alive
from .users import AUTH_INTERNAL, Principal

if TYPE_CHECKING:
    from .ingest import Prepared

T = TypeVar("T")
log = logging.getLogger("strongroom.ingest")
PURPOSE_HEADER = "X-Strongroom-Purpose"
MAX_PURPOSE = 256
MAX_EXPOSURE_ROWS = 1000  # rows per exposure request (the command sends batches)
MAX_EXPOSURE_HITS = 20  # documents reported per looked-up value
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
    parsed: bool = True  # False: `document` is still to be parsed from `source` (strictly, as loads_document)


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


def _lookup(field: Any, name: str, value: str) -> Node:
    """The exact lookup of one value in one field: a phrase for text fields, else a term."""
    return parse_query({"match_phrase" if field.type == "text" else "term": {name: value}})


async def _run(fn: Callable[..., T], *args: Any) -> T:
    return await anyio.to_thread.run_sync(fn, *args)


# Searches that read few postings run on the event loop: handing one to a worker thread and back costs
# 0.1-0.5 ms on a 2-core machine, more than the search itself (see docs/performance.md). Lookups of
# exact values go inline at once; other small pages ranked by score (a name, an address, a few
# words) go inline when their terms' document frequencies say they read at most INLINE_MAX_POSTINGS
# postings. Anything else (ranges, patterns, sorts, aggregations, deep pages, common words) still
# goes to a worker thread, so a long search never stalls the loop.
INLINE_MAX_POSTINGS = 50_000
INLINE_MAX_HITS = 100
INLINE_MAX_VALUES = 64
INLINE_MAX_IDS = 1024


def is_lookup(node: Node) -> bool:
    """Whether a query is answered from the postings of a few exact values (ids, term, short terms)."""
    if isinstance(node, Term):
        return True
    if isinstance(node, Ids):  # one _id term each
        return len(node.values) <= INLINE_MAX_IDS
    if isinstance(node, Terms):
        return len(node.values) <= INLINE_MAX_VALUES
    if isinstance(node, ConstantScore):
        return is_lookup(node.filter)
    if isinstance(node, Bool):
        required = (*node.must, *node.filter)
        return not node.should and any(is_lookup(n) for n in required) and \
            all(is_lookup(n) for n in (*required, *node.must_not))
    return False


def _bounded(request: SearchRequest) -> bool:
    """A small page of hits ranked by score, nothing else: its cost is the query's."""
    spec = request.spec
    return (spec.offset + spec.size <= INLINE_MAX_HITS and not request.aggs and request.highlight is None
            and spec.sort is None and spec.post_filter is None and not spec.explain and spec.timeout is None)


class Session:
    def __init__(self, principal: Principal, engine: Engine, policy: Policy, cluster_info: dict[str, str],
                 scrolls: ScrollRegistry, *, doctor: Callable[[], dict[str, Any]] | None = None,
                 admin: Callable[[Principal], Any] | None = None, masker: Masker | None = None,
                 purpose: str | None = None, vault: Vault | None = None, snapshots: Any = None,
                 ledger: Any = None, guard: Any = None) -> None:
        self.principal = principal
        # What this request reveals, charged against the identity's budgets (exfil.Ledger); None for
        # sessions outside a request (the server's own work).
        self.__ledger = ledger
        self.__guard = guard
        self.__snapshots = snapshots  # engine.snapshots.SnapshotService
        self.__vault = vault or Vault(MasterKey.generate())
        self.__masker = masker or Masker(os.urandom(32))
        if purpose is not None and (not purpose.strip() or len(purpose) > MAX_PURPOSE or not purpose.isprintable()):
            raise IllegalArgumentError(f"[{PURPOSE_HEADER}] must be printable text of at most {MAX_PURPOSE} "
                                       "characters (a case or ticket number)")
        self.purpose = purpose.strip() if purpose is not None else None
        # Scroll and point-in-time contexts belong to the credential: an API key's are not its owner's.
        self._owner = principal.name if principal.api_key_id is None else f"{principal.name}/{principal.api_key_id}"
        self.__doctor = doctor
        self.__admin = admin
        self.__engine = engine
        self.__policy = policy
        self.__scrolls = scrolls
        self.cluster_info = cluster_info
        self._rewrites: dict[str, tuple[Protector, Callable[[Node], Node]]] = {}

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
        if action in actions.READ_ACTIONS and self.purpose is None and any(g.require_purpose for g in grants.values()):
            raise IllegalArgumentError(f"a role of user [{self.principal.name}] requires a purpose for reading "
                                       f"these indices: send the [{PURPOSE_HEADER}] header (for example a case "
                                       "number)")
        return Resolution(names, grants)

    def _access(self, grant: IndexGrant, index: Index) -> Access:
        return Access(grant, index, self.__masker, self.principal.name)

    def _accesses(self, resolution: Resolution, indices: Sequence[Index]) -> dict[str, Access]:
        """Document and field security of each index that has any (unrestricted ones are left out)."""
        out = {}
        for index in indices:
            grant = resolution.grants[index.name]
            if grant.layers:
                access = self._access(grant, index)
                if not access.unrestricted:
                    out[index.name] = access
        return out

    def _targets(self, indices: Sequence[Index], accesses: dict[str, Access]) -> list[Any]:
        sealed = [index for index in indices if self.__vault.sealed(index)]
        if not accesses and not sealed and self.__ledger is None and self.__guard is None:
            return targets_for(indices)
        # Rewrites run once per index and query node, not once per shard: the shards of an index share them.
        restrictions: dict[str, Node | None] = {n: a.restriction for n, a in accesses.items()}
        for index in indices:  # another identity's canaries do not exist for this one
            hidden = self._canaries(index, others_only=True)
            if hidden:
                held = restrictions.get(index.name)
                restrictions[index.name] = Bool(must=(held,) if held is not None else (MatchAll(),),
                                                must_not=(Ids(hidden),))
        targets = targets_for(indices, restrictions=restrictions,
                              transforms={n: _once(a.transform) for n, a in accesses.items() if a.fields_restricted})
        hooks: dict[str, tuple[Any, Any, Any]] = {}
        ledger = self.__ledger
        for index in (indices if ledger is not None else sealed):
            # how the engine may open the sources it renders itself (top_hits, sort modes)
            protector, access = self._protector(index), accesses.get(index.name)
            open_json = functools.partial(self._open_json, index)
            hooks[index.name] = (self._rewriter(index, protector) if protector is not None else None, open_json,
                                 _revealer(open_json, access if access is not None and access.fields_restricted
                                           else None, functools.partial(ledger.reveal, index) if ledger else None))
        for target in targets:
            if target.index.name in hooks:
                target.tokenize, target.open_source, target.reveal = hooks[target.index.name]
        return targets

    def _rewriter(self, index: Index, protector: Protector) -> Callable[[Node], Node]:
        """The protector's query rewrite for this request, remembering its answer for each node: checking
        the request and planning its shards ask alike."""
        found = self._rewrites.get(index.uuid)
        if found is None or found[0] is not protector:
            found = self._rewrites[index.uuid] = (protector, _once(protector.rewrite))
        return found[1]

    def _protector(self, index: Index) -> Protector | None:
        """The protection of an index's fields (None when it has no protected field)."""
        keys = self.__vault.keys(index)
        if keys is None:
            return None
        protector = Protector.for_index(index, keys)
        return protector if protector.active else None

    def _indexable(self, index: Index, document: Any, source: bytes) -> tuple[Any, bytes]:
        """What the engine indexes for a document, and its JSON (logged beside the sealed source)."""
        protector = self._protector(index)
        if protector is None:
            return document, source
        derived = protector.derive(document)
        return derived, orjson.dumps(derived)

    def _open_json(self, index: Index, doc_id: str, stored: bytes) -> Any:
        # A stored source passed the strict parser when it was written, and its seal proves it unaltered.
        return orjson.loads(self.__vault.open(index, doc_id, stored))

    def _one(self, name: str, action: str) -> Index:
        if "," in name or "*" in name or name == "_all":
            raise IllegalArgumentError(f"this action requires a single concrete index, got [{name}]")
        self.__policy.authorize_index(self.principal, action, name)
        return self.__engine.index(name)

    # -- cluster -----------------------------------------------------------------------------
    def info(self) -> dict[str, str]:
        self.__policy.authorize_cluster(self.principal, actions.CLUSTER_MONITOR)
        return self.cluster_info

    def security(self) -> Any:
        """The `_security` API for this principal (admin.SecurityAdmin); every method authorizes itself."""
        if self.__admin is None:
            raise IllegalArgumentError("the security API is not available on this node")
        return self.__admin(self.principal)

    def snapshots(self) -> Any:
        """The `_snapshot` API for this principal (snapshots.SnapshotAdmin); every method authorizes itself."""
        from .snapshots import SnapshotAdmin

        if self.__snapshots is None:
            raise IllegalArgumentError("snapshots are not available on this node")
        return SnapshotAdmin(self.principal, self.__policy, self.__snapshots, self.__vault, self.cluster_info)

    def watch(self) -> Any:
        """Audit trail, alerts, blocks and one's own usage (watch.Watch); every method authorizes itself."""
        from .watch import Watch

        if self.__guard is None:
            raise IllegalArgumentError("the exfiltration defences are not running on this node")
        return Watch(self.principal, self.__policy, self.__guard)

    async def plant_canaries(self, name: str, count: Any, owner: Any) -> dict[str, Any]:
        """Plant `count` canary records in index `name` (canaries.py): synthetic residents no legitimate
        workflow touches. `owner`: the identity they belong to (attribution), else general bait.
        Authorized by CANARIES_MANAGE (`manage_security`); written by the node itself."""
        from .canaries import fit_to_mapping, make_canaries

        self.__policy.authorize_cluster(self.principal, actions.CANARIES_MANAGE)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 1000:
            raise IllegalArgumentError("[count] must be an integer between 1 and 1000")
        if owner is not None and (not isinstance(owner, str) or not owner):
            raise IllegalArgumentError("[owner] must be an identity name (a user, or user/api_key:ID)")
        guard = self.__guard
        if guard is None or guard.canaries is None:
            raise IllegalArgumentError("canaries are not available on this node")
        if "," in name or "*" in name or name == "_all":
            raise IllegalArgumentError(f"this action requires a single concrete index, got [{name}]")
        index = self.__engine.index(name)
        properties = index.mapping.to_es().get("properties", {})
        system = Session(Principal("_system:canaries", ("superuser",), auth=AUTH_INTERNAL), self.__engine,
                         self.__policy, self.cluster_info, self.__scrolls, vault=self.__vault, masker=self.__masker)
        unused = system._unused(index)
        try:
            docs = await _run(lambda: [(doc_id, fit_to_mapping(doc, properties)) for doc_id, doc in
                                       make_canaries(count, new_id=index.new_id, unused=unused)])
        except ValueError as exc:
            raise IllegalArgumentError(f"index [{name}]: {exc}") from None
        writes = [DocWrite("create", name, doc_id, doc, orjson.dumps(doc)) for doc_id, doc in docs]
        results, _ = await system.write(writes, refresh="true")
        failed = [r for r in results if isinstance(r.outcome, StrongroomError)]
        if failed:
            raise failed[0].outcome
        guard.canaries.plant(index.seal_uuid, docs, owner)
        guard.forget_canaries(index.seal_uuid)
        logging.getLogger("strongroom.canaries").info("[%s] planted %d canaries in index [%s]%s",
                                                     self.principal.name, count, name,
                                                     f" for [{owner}]" if owner else "")
        return {"index": name, "planted": count, "owner": owner}

    def _unused(self, index: Index) -> Callable[[str, str], bool]:
        """`unused(field, value)`: no document of `index` holds `value` in `field` (a phrase for text
        fields, else a term), asked through the same blind tokens a search uses; fields the index does
        not map, or cannot answer for, count as unused. For planting canaries no lookup will stumble on."""
        _index, accesses = self._one_read(index.name, actions.DOC_SEARCH)
        targets = self._targets([index], accesses)
        fields = index.mapping.fields

        def unused(field_name: str, value: str) -> bool:
            field = fields.get(field_name)
            if field is None:
                return True
            try:
                return count_matches(targets, _lookup(field, field_name, value)) == 0
            except StrongroomError:
                return True
        return unused

    async def exposure(self, name: str, rows: Any) -> dict[str, Any]:
        """Which documents of index `name` appear in someone else's leak: each row (field → value, as
        found in the leaked file) is looked up through the same blind tokens a search uses, one exact
        query per field, so nothing is decrypted and nothing of the rows is kept. Fields the index
        does not map are ignored. Needs the cluster action CANARIES_MANAGE (`manage_security`) and
        read on the index; the ids found are audited like any reveal (and a canary among them alerts:
        someone else's leak holds one of ours)."""
        from ..engine.search import SearchSpec

        self.__policy.authorize_cluster(self.principal, actions.CANARIES_MANAGE)
        if not isinstance(rows, list) or not rows or len(rows) > MAX_EXPOSURE_ROWS:
            raise IllegalArgumentError(f"[rows] must be a non-empty array of at most {MAX_EXPOSURE_ROWS} objects")
        if not all(isinstance(r, dict) and all(isinstance(k, str) for k in r) for r in rows):
            raise IllegalArgumentError("each of [rows] must be an object of field names to values")
        index, accesses = self._one_read(name, actions.DOC_SEARCH)
        protector = self._protector(index)
        fields = index.mapping.fields

        def lookups() -> list[dict[str, Any]]:
            targets = self._targets([index], accesses)
            found = []
            for number, row in enumerate(rows):
                matched: dict[str, set[str]] = {}
                for field_name, value in row.items():
                    field = fields.get(field_name)
                    if field is None or not isinstance(value, (str, int)) or isinstance(value, bool) or \
                            not str(value).strip():
                        continue
                    try:
                        node = _lookup(field, field_name, str(value).strip())
                        if protector is not None:
                            protector.rewrite(node)  # refuses what the protected form cannot answer
                        # (the targets turn the query into tokens themselves)
                        hits = run_search(targets, SearchSpec(query=node, size=MAX_EXPOSURE_HITS)).hits
                    except StrongroomError:
                        continue  # a value the field cannot hold, or a field it cannot answer: no match
                    for hit in hits:
                        matched.setdefault(hit.doc.doc_id, set()).add(field_name)
                if matched:
                    found.append({"row": number, "documents": [{"_id": doc_id, "fields": sorted(names)}
                                                               for doc_id, names in sorted(matched.items())]})
            return found

        found = await _run(lookups)
        documents = sorted({d["_id"] for row in found for d in row["documents"]})
        if self.__ledger is not None and documents:
            self.__ledger.reveal(index, documents)
        return {"index": name, "rows": len(rows), "rows_matched": len(found), "documents_matched": len(documents),
                "matches": found}

    def doctor_report(self) -> dict[str, Any]:
        """The deployment self-check's latest report (monitor privilege)."""
        self.__policy.authorize_cluster(self.principal, actions.DOCTOR)
        if self.__doctor is None:
            raise IllegalArgumentError("the deployment self-check is not running on this node")
        return self.__doctor()

    def health(self, expression: str | None) -> list[IndexView]:
        self.__policy.authorize_cluster(self.principal, actions.CLUSTER_HEALTH)
        resolution = self._resolve(expression, actions.CLUSTER_HEALTH, allow_no_indices=True)
        return [self._view(name, stats=False) for name in resolution.names]

    def _view(self, name: str, *, stats: bool) -> IndexView:
        index = self.__engine.index(name)
        view = IndexView(index.name, index.uuid, index.creation_date, dict(index.settings), self._mapping(index),
                         shards=len(index.shards), replicas=int(index.setting("index.number_of_replicas")))
        if stats:
            counts = index.stats()
            view.docs, view.deleted, view.store_bytes = counts["docs"], counts["deleted"], counts["store_bytes"]
        return view

    def _mapping(self, index: Index) -> dict[str, Any]:
        """The mapping as this caller may see it: a reader under field security does not learn the
        names of the fields it may not see (Elasticsearch filters mappings the same way)."""
        mapping = index.mapping.to_es()
        if not self.__policy.may_index(self.principal, actions.DOC_SEARCH, index.name):
            return mapping
        grant = self.__policy.authorize_index(self.principal, actions.DOC_SEARCH, index.name)
        if not grant.layers:
            return mapping
        access = self._access(grant, index)
        if not access.fields_restricted:
            return mapping
        return _filter_mapping(mapping, "", access.may_see)

    # -- index administration ----------------------------------------------------------------
    async def create_index(self, name: str, settings: Any, mappings: Any) -> IndexView:
        self.__policy.authorize_index(self.principal, actions.INDEX_CREATE, name)
        engine = self.__engine
        await _run(functools.partial(engine.create_index, name, settings, mappings,
                                     keys=self.__vault.new_index_keys()))
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
        indices = [engine.index(name) for name in resolution.names]
        accesses = self._accesses(resolution, indices)
        for access in accesses.values():
            access.transform(node)  # a field the caller may not query is a 403 before any work
        protectors = [p for p in (self._protector(index) for index in indices) if p is not None]
        self._charge_probe(protectors, node)
        for protector in protectors:
            protector.rewrite(node)
        node = self._without(self._all_canaries(indices), node)
        if not accesses and not protectors and self.__guard is None:
            return await _run(lambda: sum(index.count(node) for index in indices)), \
                sum(len(index.shards) for index in indices)
        total = await _run(lambda: count_matches(self._targets(indices, accesses), node))
        return total, sum(len(index.shards) for index in indices)

    # -- canaries (canaries.py) ----------------------------------------------------------------
    def _canaries(self, index: Index, *, others_only: bool = False) -> tuple[str, ...]:
        """Ids of the index's canaries: all of them (excluded from counts and aggregations), or only
        those planted for other identities (which do not exist for this one at all)."""
        guard = self.__guard
        if guard is None or guard.canaries is None:
            return ()
        me = self.__ledger.identity if self.__ledger is not None else None
        return tuple(doc_id for doc_id, owner in guard.canary_ids(index.seal_uuid)
                     if not others_only or (owner is not None and owner != me))

    def _all_canaries(self, indices: Sequence[Index]) -> tuple[str, ...]:
        return tuple(doc_id for index in indices for doc_id in self._canaries(index))

    @staticmethod
    def _without(canaries: tuple[str, ...], node: Node) -> Node:
        """`node` with the canaries left out (counts and aggregations never see them)."""
        return Bool(must=(node,), must_not=(Ids(canaries),)) if canaries else node

    # -- limits (exfil.py) ---------------------------------------------------------------------
    def _limits(self) -> Any:
        return self.__ledger.limits if self.__ledger is not None else None

    def _charge_probe(self, protectors: list[Protector], node: Node) -> None:
        if self.__ledger is not None and any(p.touches(node) for p in protectors):
            self.__ledger.probe()

    def _may_export(self, indices: Sequence[Index]) -> bool:
        return all(self.__policy.may_index(self.principal, actions.DOC_EXPORT, index.name) for index in indices)

    def _check_caps(self, indices: Sequence[Index], request: SearchRequest) -> None:
        """A role's caps on one search: size, result window, and paging past it with search_after."""
        limits = self._limits()
        if limits is None:
            return
        spec = request.spec
        who = self.principal.name
        if limits.max_size is not None and spec.size > limits.max_size:
            raise LimitError(f"size [{spec.size}] is above the limit of user [{who}]: [{limits.max_size}]")
        window = limits.max_result_window
        if window is None:
            return
        if spec.offset + spec.size > window and request.scroll is None:
            raise LimitError(f"from + size [{spec.offset + spec.size}] is above the result window of user [{who}]: "
                             f"[{window}]")
        if spec.search_after is not None and self.__guard is not None and not self._may_export(indices):
            paged = self.__guard.page_after(self.__ledger.identity, spec.size)
            if paged > window:
                raise LimitError(f"paging with search_after past the result window of user [{who}] ([{window}] "
                                 "records in 10 minutes) needs the [bulk_export] privilege")

    def _check_context(self, indices: Sequence[Index], keep_alive: float, *, export: bool) -> None:
        """Scroll needs `bulk_export`; a role's caps on open contexts and keep-alive."""
        if export:
            for index in indices:
                self.__policy.authorize_index(self.principal, actions.DOC_EXPORT, index.name)
        limits = self._limits()
        if limits is None:
            return
        who = self.principal.name
        if limits.max_keep_alive is not None and keep_alive > limits.max_keep_alive:
            raise LimitError(f"keep alive [{int(keep_alive)}s] is above the limit of user [{who}]: "
                             f"[{int(limits.max_keep_alive)}s]")
        if limits.max_open_contexts is not None and \
                self.__scrolls.held_by(self._owner) >= limits.max_open_contexts:
            raise LimitError(f"user [{who}] holds [{limits.max_open_contexts}] scroll or point-in-time contexts, its "
                             "limit: clear some first")

    # -- search ------------------------------------------------------------------------------
    async def search(self, expression: str | None, request: SearchRequest, **options: Any) -> SearchOutcome:
        if request.pit is not None:
            return await self._search_pit(expression, request)
        indices, accesses = self._search_indices(expression, request, options)
        if request.scroll is not None:
            keep_alive = _keep_alive(request.scroll)
            check_keep_alive(keep_alive)
            self._check_context(indices, keep_alive, export=True)
            return await _run(self._open_scroll, indices, request, keep_alive, accesses)
        if not _bounded(request) or any(index.stale_for_search() for index in indices):
            return await _run(self._search_now, indices, request, accesses)
        if is_lookup(request.spec.query):
            return self._search_now(indices, request, accesses)
        targets = self._targets(indices, accesses)
        reads = postings(targets, request.spec.query)
        if reads is not None and reads <= INLINE_MAX_POSTINGS:
            return self._search_now(indices, request, accesses, targets)
        return await _run(self._search_now, indices, request, accesses, targets)

    def _search_indices(self, expression: str | None, request: SearchRequest, options: dict[str, Any]
                        ) -> tuple[list[Index], dict[str, Access]]:
        resolution = self._resolve(expression, actions.DOC_SEARCH, **options)
        engine = self.__engine
        indices = [engine.index(name) for name in resolution.names]
        accesses = self._accesses(resolution, indices)
        for access in accesses.values():
            access.check_request(request.spec, request.aggs)
        protectors = []
        for index in indices:  # queries, sorts and aggregations a protected field cannot answer: 400 now
            protector = self._protector(index)
            if protector is not None:
                protector.check_request(request.spec, request.aggs, self._rewriter(index, protector))
                protectors.append(protector)
        self._check_caps(indices, request)
        self._charge_probe(protectors, request.spec.query)
        window = min((int(i.setting("index.max_result_window")) for i in indices), default=10_000)
        spec = request.spec
        if spec.offset + spec.size > window and request.scroll is None:
            raise IllegalArgumentError(f"Result window is too large, from + size must be less than or equal to: "
                                       f"[{window}] but was [{spec.offset + spec.size}]. See the scroll api for a "
                                       "more efficient way to request large data sets. This limit can be set by "
                                       "changing the [index.max_result_window] index level setting.")
        docvalue_limit = min((int(i.setting("index.max_docvalue_fields_search")) for i in indices), default=100)
        if len(request.docvalue_fields) > docvalue_limit:
            raise IllegalArgumentError(f"Trying to retrieve too many docvalue_fields. Must be less than or equal to: "
                                       f"[{docvalue_limit}] but was [{len(request.docvalue_fields)}]. This limit can "
                                       "be set by changing the [index.max_docvalue_fields_search] index level "
                                       "setting.")
        if request.scroll is not None and spec.size > window:
            raise IllegalArgumentError(f"Batch size is too large, size must be less than or equal to: [{window}] "
                                       f"but was [{spec.size}]. Scroll batch sizes cost as much memory as result "
                                       "windows so they are controlled by the [index.max_result_window] index level "
                                       "setting.")
        return indices, accesses

    async def open_point_in_time(self, expression: str, keep_alive: str, **options: Any) -> str:
        """A point in time: the shards' current searchers, held for this principal's later searches."""
        resolution = self._resolve(expression, actions.DOC_SEARCH, **options)
        seconds = _keep_alive(keep_alive)
        check_keep_alive(seconds)
        indices = [self.__engine.index(name) for name in resolution.names]
        self._check_context(indices, seconds, export=False)
        accesses = self._accesses(resolution, indices)
        return self.__scrolls.open(self._owner, self._targets(indices, accesses), None, indices, seconds, kind="pit",
                                   accesses=accesses)

    def close_point_in_time(self, pit_id: str) -> tuple[bool, int]:
        return self.__scrolls.clear(self._owner, [pit_id], kind="pit")

    def _recheck(self, context: Any) -> None:
        """Rights are checked on every use of a scroll or point in time, not only when it opened: any
        change in what the owner may see of its indices ends it."""
        for index in context.indices:
            grant = self.__policy.authorize_index(self.principal, actions.DOC_SEARCH, index.name)
            held = (context.accesses or {}).get(index.name)
            if (held.grant if held is not None else None) != (grant if grant.layers else None) and \
                    not (held is None and self._access(grant, index).unrestricted):
                raise AuthorizationError(actions.DOC_SEARCH, self.principal.name, index.name)
            if grant.require_purpose and self.purpose is None:
                raise IllegalArgumentError(f"a role of user [{self.principal.name}] requires a purpose for reading "
                                           f"these indices: send the [{PURPOSE_HEADER}] header")

    async def _search_pit(self, expression: str | None, request: SearchRequest) -> SearchOutcome:
        if expression:
            raise ActionRequestValidationError("[indices] cannot be used with point in time. Do not specify any "
                                               "index with point in time.")
        if request.scroll is not None:
            raise ActionRequestValidationError("using [point in time] is not allowed in a scroll context")
        assert request.pit is not None
        pit_id, keep_alive = request.pit
        context = self.__scrolls.get(self._owner, pit_id, _keep_alive(keep_alive) if keep_alive else None,
                                     kind="pit")
        self._recheck(context)
        accesses = context.accesses or {}
        for access in accesses.values():
            access.check_request(request.spec, request.aggs)
        self._check_caps(context.indices, request)
        self._charge_probe([p for p in (self._protector(i) for i in context.indices) if p is not None],
                           request.spec.query)
        outcome = await _run(self._search_now, context.indices, request, accesses, context.cursor)
        outcome.pit_id = pit_id
        return outcome

    def _search_now(self, indices: list[Index], request: SearchRequest, accesses: dict[str, Access],
                    targets: list[Any] | None = None) -> SearchOutcome:
        targets = targets if targets is not None else self._targets(indices, accesses)
        result = run_search(targets, request.spec)
        canaries = self._all_canaries(indices)
        aggregations = None
        if request.aggs:
            aggregations = run_aggregations(targets, self._without(canaries, request.spec.query), request.aggs,
                                            typed_keys=request.typed_keys)
        hits = self._visible(result.hits, request, indices, accesses, targets)
        total = result.total
        if total and canaries:  # canaries are bait in hits, but never counted
            matched = count_matches(targets, Bool(must=(request.spec.query,), filter=(Ids(canaries),)))
            total = max(0, total - matched)
        return SearchOutcome(total, result.relation, result.max_score, hits, result.shards, aggregations,
                             timed_out=result.timed_out)

    def _visible(self, raw: list[Any], request: SearchRequest, indices: list[Index], accesses: dict[str, Access],
                 targets: list[Any]) -> list[VisibleHit]:
        by_name = {index.name: index for index in indices}
        if self.__ledger is not None:
            for name, index in by_name.items():
                ids = [hit.doc.doc_id for hit in raw if hit.index == name]
                if ids:
                    self.__ledger.reveal(index, ids)
        filters: dict[tuple[str, str], DocFilter] = {}
        for name, access in accesses.items():
            ids = [hit.doc.doc_id for hit in raw if hit.index == name]
            if ids:
                for doc_id, doc_filter in access.doc_filters([t for t in targets if t.index.name == name],
                                                             ids).items():
                    filters[(name, doc_id)] = doc_filter
        marking: dict[str, Any] = {}
        hits = []
        for hit in raw:
            original = full = self._open_json(by_name[hit.index], hit.doc.doc_id, hit.doc.source)
            doc_filter = filters.get((hit.index, hit.doc.doc_id))
            if doc_filter is not None:
                full = doc_filter.source(original)  # hidden fields gone, masked ones masked
            source = request.source.apply(full) if request.source.fetch else None
            highlight = None
            if request.highlight is not None:
                index = by_name[hit.index]
                if index.name not in marking:
                    marking[index.name] = collect(request.spec.query, _analyzer_of(index), _expander(index))
                limits = Limits(int(index.setting("index.highlight.max_analyzed_offset")),
                                frozenset(p for p, f in index.mapping.fields.items()
                                          if f.params.get("index_options") == "offsets"),
                                tuple((p, f.ignore_above) for p, f in index.mapping.fields.items()
                                      if f.ignore_above is not None), index.name, hit.doc.doc_id)
                highlight = highlight_hit(full, request.highlight, marking[index.name], _analyzer_of(index),
                                          _expander(index), limits) or None
                if highlight and doc_filter is not None:
                    highlight = {k: v for k, v in highlight.items() if doc_filter.shows_clear(k)} or None
            fields = None
            if request.docvalue_fields or request.fields:
                mapping = by_name[hit.index].mapping
                fields = {**retrieve(original, mapping, request.fields, docvalue=False),
                          **retrieve(original, mapping, request.docvalue_fields, docvalue=True)} or None
                if fields and doc_filter is not None:
                    fields = {k: v for k, v in ((k, doc_filter.values(k, v)) for k, v in fields.items())
                              if v is not None} or None
            hits.append(VisibleHit(hit.index, hit.doc, hit.score, hit.sort, source, hit.explanation, highlight,
                                   fields, hit.matched_queries))
        return hits

    def _open_scroll(self, indices: list[Index], request: SearchRequest, keep_alive: float,
                     accesses: dict[str, Access]) -> SearchOutcome:
        targets = self._targets(indices, accesses)
        cursor = Cursor(targets, request.spec)
        aggregations = None
        if request.aggs:
            aggregations = run_aggregations(targets, self._without(self._all_canaries(indices), request.spec.query),
                                            request.aggs, typed_keys=request.typed_keys)
        scroll_id = self.__scrolls.open(self._owner, cursor, request, indices, keep_alive, accesses=accesses)
        hits = self._visible(cursor.next_page(request.spec.size), request, indices, accesses, targets)
        total, relation = _tracked(request, cursor.total)
        return SearchOutcome(total, relation, cursor.max_score, hits, cursor.shards, aggregations, scroll_id)

    async def scroll(self, scroll_id: str, keep_alive: str | None) -> SearchOutcome:
        context = self.__scrolls.get(self._owner, scroll_id, _keep_alive(keep_alive) if keep_alive else None)
        self._recheck(context)

        def page() -> SearchOutcome:
            with context.lock:
                hits = self._visible(context.cursor.next_page(context.request.spec.size), context.request,
                                     context.indices, context.accesses or {}, context.cursor.targets)
            total, relation = _tracked(context.request, context.cursor.total)
            return SearchOutcome(total, relation, context.cursor.max_score, hits, context.cursor.shards, None,
                                 scroll_id)
        return await _run(page)

    def clear_scroll(self, scroll_ids: list[str] | None) -> tuple[bool, int]:
        return self.__scrolls.clear(self._owner, scroll_ids)

    async def explain(self, index_name: str, doc_id: str, query: Any) -> tuple[bool, dict[str, Any]] | None:
        index, accesses = self._one_read(index_name, actions.DOC_SEARCH)
        node = parse_query(query)
        for access in accesses.values():
            access.transform(node)
        protector = self._protector(index)
        self._charge_probe([protector] if protector is not None else [], node)  # "does doc X hold value V?"
        # A document outside the caller's document query is missing, here as everywhere.
        return await _run(lambda: explain(self._targets([index], accesses), node, doc_id))

    def _one_read(self, name: str, action: str) -> tuple[Index, dict[str, Access]]:
        if "," in name or "*" in name or name == "_all":
            raise IllegalArgumentError(f"this action requires a single concrete index, got [{name}]")
        grant = self.__policy.authorize_index(self.principal, action, name)
        if grant.require_purpose and self.purpose is None:
            raise IllegalArgumentError(f"a role of user [{self.principal.name}] requires a purpose for reading "
                                       f"these indices: send the [{PURPOSE_HEADER}] header (for example a case "
                                       "number)")
        index = self.__engine.index(name)
        accesses = self._accesses(Resolution([name], {name: grant}), [index])
        return index, accesses

    async def by_query(self, expression: str, request: SearchRequest, operation: str, *, conflicts: str,
                       max_docs: int | None, refresh: str | None, batch_size: int = 1000,
                       requests_per_second: float | None = None, **options: Any) -> dict[str, Any]:
        """`_delete_by_query` and `_update_by_query` (without scripts): a snapshot of the matches, then
        conditional writes, so documents changed meanwhile count as version conflicts."""
        action = actions.DOC_DELETE if operation == "delete" else actions.DOC_UPDATE
        indices, accesses = self._search_indices(expression, request, options)
        for index in indices:
            self.__policy.authorize_index(self.principal, action, index.name)
        cursor = await _run(lambda: Cursor(self._targets(indices, accesses), replace(request.spec, offset=0)))
        counters = {"total": 0, "done": 0, "conflicts": 0, "batches": 0, "throttled_millis": 0}
        failures: list[dict[str, Any]] = []
        budget = max_docs if max_docs is not None else cursor.total
        while cursor.remaining() and counters["total"] < budget:
            started = time.monotonic()
            batch = await _run(cursor.next_page, min(batch_size, budget - counters["total"]))
            if counters["batches"] and requests_per_second:  # Throttle between batches, as Elasticsearch does.
                delay = len(batch) / requests_per_second - (time.monotonic() - started)
                if delay > 0:
                    await asyncio.sleep(delay)
                    counters["throttled_millis"] += int(delay * 1000)
            counters["batches"] += 1
            writes = []
            for hit in batch:
                doc = hit.doc
                # Conditional on what the snapshot saw: a document changed since is a version conflict.
                if operation == "delete":
                    writes.append(DocWrite("delete", hit.index, doc.doc_id, if_seq_no=doc.seq_no,
                                           if_primary_term=doc.primary_term, routing=doc.routing))
                else:
                    plain = self.__vault.open(self.__engine.index(hit.index), doc.doc_id, doc.source)
                    writes.append(DocWrite("index", hit.index, doc.doc_id, loads_strict(plain), plain,
                                           if_seq_no=doc.seq_no, if_primary_term=doc.primary_term,
                                           routing=doc.routing))
            results, _ = await self.write(writes)
            for result in results:
                counters["total"] += 1
                if isinstance(result.outcome, OpResult):
                    counters["done"] += 1
                    continue
                if result.outcome.status == 409:
                    counters["conflicts"] += 1
                    if conflicts == "proceed":
                        continue
                cause = result.outcome.to_es()
                cause.pop("root_cause", None)
                failures.append({"index": result.index, "id": result.doc_id, "cause": cause,
                                 "status": result.outcome.status})
            if failures:
                break
        if refresh in ("true", ""):
            for index in indices:
                await _run(index.refresh)
        return {**counters, "failures": failures}

    async def rotate_index_keys(self, name: str, *, mode: str = "rotate") -> dict[str, Any]:
        """Data key rotation of one index (`rotation.py`). `mode`: "rotate" adds a data key version
        and starts the background re-seal; "resume" re-seals with the current version (after a
        restart stopped a job); "status" scans and reports progress.

        Authorized by the cluster action SECURITY_ADMIN (`manage_security`), not by an index
        privilege: keys are security configuration, an index manager has no say over them, and a
        cluster check needs no index, so a refusal comes before saying whether the index exists.
        The re-seal runs as the node, not as this principal: it writes back what it opened, unchanged.
        """
        from . import rotation  # Only this method needs it.

        self.__policy.authorize_cluster(self.principal, actions.SECURITY_ADMIN)
        if "," in name or "*" in name or name == "_all":
            raise IllegalArgumentError(f"this action requires a single concrete index, got [{name}]")
        index = self.__engine.index(name)
        if mode == "status":
            return await _run(rotation.progress, self.__vault, index)
        if mode not in ("rotate", "resume"):
            raise IllegalArgumentError(f"unknown key rotation mode [{mode}]")
        if not self.__vault.sealed(index):
            raise IllegalArgumentError(f"index [{name}] has no data keys: its sources are not sealed")
        start = rotation.rotate_keys if mode == "rotate" else rotation.resume
        answer = await _run(start, self.__vault, index, functools.partial(self._indexable, index))
        logging.getLogger("strongroom.keys").info("index [%s]: key rotation [%s] by [%s], data key version %d",
                                                  name, mode, self.principal.name, answer["key_version"])
        return answer

    def analyze(self, index_name: str | None, body: dict[str, Any]) -> list[dict[str, Any]]:
        analyzer_name = body.get("analyzer")
        field_path = body.get("field")
        if index_name is not None:
            index = self._one(index_name, actions.INDEX_ANALYZE)
            if field_path is not None:
                field_type = index.mapping.fields.get(field_path)
                slot = index.slots.get(field_path)
                if field_type is None or slot is None:
                    raise IllegalArgumentError(f"field [{field_path}] is not mapped")
                if slot.kind == "text":
                    analyzer_name = analyzer_name or field_type.params.get("analyzer") or slot.analyzer
                else:
                    analyzer_name = analyzer_name or "keyword"
        else:
            self.__policy.authorize_cluster(self.principal, actions.INDEX_ANALYZE)
            if field_path is not None:
                raise IllegalArgumentError("analysis by [field] needs an index")
        return analyze_text(analyzer_name or "default", body.get("text"))

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
            # Every document is parsed, then screened for personal data arriving in unprotected fields
            # (warn, reject or protect), before it is written. In a large batch for the ingest workers,
            # a source still unparsed is parsed and screened by its worker: its findings come back with
            # it and are judged here; one that does not parse comes back underived and is parsed here,
            # failing its item. Under "protect" (a finding changes the mapping, and so every
            # document's derivation) the whole batch is screened here first.
            mode = index.setting("index.pii_detection")
            keys = self._parallel(index, positions, writes)
            deferred = keys is not None and mode != "protect"
            screened = []
            for i in positions:
                if deferred and not writes[i].parsed:
                    screened.append(i)
                    continue
                try:
                    await self._screen(index, writes[i], mode)
                except StrongroomError as exc:
                    results[i] = WriteResult(writes[i].index, writes[i].doc_id, writes[i].op, exc)
                    continue
                screened.append(i)
            written: list[WriteOutcome] = []
            async with contextlib.aclosing(self._prepared(index, screened, writes, keys)) as parts:
                async for part, prepared in parts:
                    positions, requests = [], []
                    for i, (doc_id, ready) in zip(part, prepared):  # a value a protected field cannot take fails
                        try:                                         # its item, not the request
                            if ready is None and not writes[i].parsed:  # its worker could not derive it
                                await self._screen(index, writes[i], mode)
                            elif ready is not None and ready[2]:  # its worker's findings
                                await self._judge(index, ready[2], mode)
                            requests.append(self._request(index, writes[i], doc_id,
                                                          None if ready is None else ready[:2]))
                        except StrongroomError as exc:
                            results[i] = WriteResult(writes[i].index, writes[i].doc_id, writes[i].op, exc)
                            continue
                        positions.append(i)
                    outcomes = await _run(index.write, requests) if requests else []
                    written.extend(outcomes)
                    for i, request, outcome in zip(positions, requests, outcomes):
                        source = outcome.source if writes[i].op == "update" else None  # only updates echo it back
                        if source is not None and request.doc_id is not None:  # what the api may echo back: opened
                            source = self.__vault.open(index, request.doc_id, source)
                        results[i] = WriteResult(name, request.doc_id, writes[i].op, outcome.result, source)
            touched.append((index, written))
        forced = False
        if refresh in ("true", ""):  # Like Elasticsearch, only the shards the writes went to.
            for index, outcomes in touched:
                numbers = sorted({o.result.shard for o in outcomes if isinstance(o.result, OpResult)})
                await _run(index.refresh_shards, numbers)
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
            action = {"index": actions.DOC_INDEX, "create": actions.DOC_CREATE, "delete": actions.DOC_DELETE,
                      "update": actions.DOC_UPDATE}[op]
            self.__policy.authorize_index(self.principal, action, name)
        if "update" in ops and self.__engine.exists(name) and \
                self.__policy.may_index(self.principal, actions.DOC_GET, name):
            # A partial update reads the stored document and merges into it: with document or field
            # security on reads, it could copy hidden values or touch hidden documents (Elasticsearch
            # refuses it the same way).
            grant = self.__policy.authorize_index(self.principal, actions.DOC_GET, name)
            if grant.layers and not self._access(grant, self.__engine.index(name)).unrestricted:
                raise IllegalArgumentError("Can't execute an update request if field or document level security "
                                           "is enabled")
        engine = self.__engine
        if engine.exists(name):
            return engine.index(name)
        if ops <= {"delete"}:  # Like Elasticsearch, every other operation creates the index.
            raise IndexNotFoundError(name)
        self.__policy.authorize_index(self.principal, actions.INDEX_AUTO_CREATE, name)
        index, _created = await _run(functools.partial(engine.get_or_create, name,
                                                       keys=self.__vault.new_index_keys()))
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

    def _parallel(self, index: Index, positions: list[int], writes: Sequence[DocWrite]) -> DataKeys | None:
        """The index's data keys when the writes at `positions` are a batch for the ingest workers:
        workers configured, a protected index, at least MIN_PARALLEL new documents; else None."""
        from .ingest import MIN_PARALLEL

        pool = self.__vault.ingest
        if pool is None or len(positions) < MIN_PARALLEL or self._protector(index) is None:
            return None
        fresh = sum(1 for i in positions if writes[i].op in ("index", "create") and writes[i].source is not None)
        return self.__vault.keys(index) if fresh >= MIN_PARALLEL else None

    @staticmethod
    def _parse(write: DocWrite) -> None:
        if not write.parsed:
            assert write.source is not None
            write.document = loads_document(write.source)
            write.parsed = True

    async def _prepared(self, index: Index, positions: list[int], writes: list[DocWrite], keys: DataKeys | None
                        ) -> AsyncIterator[tuple[list[int], list[tuple[str | None, Prepared | None]]]]:
        """The writes at `positions`, in order, in parts, each with every write's (id, prepared): with
        `keys` (a batch for the ingest workers, `_parallel`), ids drawn here and (indexed JSON, sealed
        source, findings) derived by the workers, one share at a time; otherwise one part of (write's
        id, None), derived in `_request`. None also for a write a worker did not derive."""
        pool = self.__vault.ingest
        fresh = [i for i in positions if writes[i].op in ("index", "create") and writes[i].source is not None]
        if keys is None or pool is None:
            yield positions, [(writes[i].doc_id, None) for i in positions]
            return
        ids = {i: writes[i].doc_id if writes[i].doc_id is not None else index.new_id() for i in fresh}
        spec = (f"{index.uuid}:{keys.current_version}", orjson.dumps(index.mapping.to_es()), index.seal_uuid,
                keys.share())
        rank = {i: r for r, i in enumerate(positions)}
        start = taken = 0
        shares = pool.shares(spec, [(ids[i], writes[i].document if writes[i].parsed else None, writes[i].source)
                                    for i in fresh])
        async with contextlib.aclosing(shares):
            async for share in shares:
                # a part: the writes up to this share's last document (updates and deletes in between included)
                taken += len(share)
                end = rank[fresh[taken - 1]] + 1 if taken < len(fresh) else len(positions)
                ready = dict(zip(fresh[taken - len(share):taken], share))
                part = positions[start:end]
                yield part, [(ids.get(i, writes[i].doc_id), ready.get(i)) for i in part]
                start = end

    def _request(self, index: Index, write: DocWrite, doc_id: str | None = None,
                 prepared: tuple[bytes, bytes] | None = None) -> WriteRequest:
        """The engine's request: sources sealed (bound to index and id), the indexable document beside.
        `doc_id`, `prepared`: the id drawn and the (indexed JSON, sealed source) derived by `_prepared`."""
        conditions = Conditions(write.if_seq_no, write.if_primary_term, write.version,
                                write.version_type or "internal")
        kind = "create" if write.op == "create" else write.op
        sealed = self.__vault.sealed(index)
        if write.op == "update":
            body = write.update or {}
            update = UpdateSpec(body.get("doc"), body.get("upsert"), bool(body.get("doc_as_upsert", False)),
                                bool(body.get("detect_noop", True)))
            if sealed:
                assert write.doc_id is not None
                update.merge = self._merger(index, write.doc_id, update, write.routing)
            return WriteRequest(kind, write.doc_id, None, None, conditions, write.routing, update)
        if kind in ("index", "create") and sealed:
            auto_id = write.doc_id is None
            doc_id = write.doc_id if write.doc_id is not None else (doc_id or index.new_id())
            assert write.source is not None
            if prepared is not None:
                indexed, sealed_source = prepared
                request = WriteRequest(kind, doc_id, orjson.loads(indexed), sealed_source, conditions, write.routing,
                                       None, auto_id)
                request.indexed = indexed
                return request
            _screened(write)
            document, indexed = self._indexable(index, write.document, write.source)
            request = WriteRequest(kind, doc_id, document, self.__vault.seal(index, doc_id, write.source),
                                   conditions, write.routing, None, auto_id)
            request.indexed = indexed
            return request
        _screened(write)
        return WriteRequest(kind, write.doc_id, write.document, write.source, conditions, write.routing)

    async def _screen(self, index: Index, write: DocWrite, mode: str) -> None:
        """PII detection at ingest (`mode`: index.pii_detection): a value that looks like a national ID, a
        phone, a bank card, an e-mail or a passport number, in a field that is not protected. Messages
        name the field and the detector, never the value. Parses the document first if it is not yet
        (a source that does not parse fails here)."""
        self._parse(write)
        if write.op in ("index", "create"):
            documents = [write.document]
        elif write.op == "update":
            body = write.update or {}
            documents = [body.get("doc"), body.get("upsert")]
        else:
            return
        findings: dict[str, str] = {}
        for document in documents:
            if isinstance(document, dict):
                for path, detector in find_in_document(document, index.mapping.fields).items():
                    findings.setdefault(path, detector)
        await self._judge(index, findings, mode)

    async def _judge(self, index: Index, findings: dict[str, str], mode: str) -> None:
        """What `mode` does with a document's findings (path -> detector): log them, map new fields as
        protected, or refuse the document."""
        if not findings:
            return
        if mode == "warn":
            for path, detector in findings.items():
                log.warning("index [%s]: field [%s] is not protected but holds values that look like [%s]",
                            index.name, path, detector)
            return
        unmapped = {p: d for p, d in findings.items() if p not in index.mapping.fields}
        if mode == "protect" and len(unmapped) == len(findings):
            properties: dict[str, Any] = {}
            for path in unmapped:
                node = properties
                *parents, leaf = path.split(".")
                for part in parents:
                    node = node.setdefault(part, {"properties": {}})["properties"]
                node[leaf] = {"type": "keyword", "protect": "blind"}
            await _run(index.put_mapping, {"properties": properties})
            log.info("index [%s]: mapped %s as protected (blind) on detecting personal data", index.name,
                     sorted(unmapped))
            return
        path, detector = next(iter(findings.items()))
        raise MapperParsingError(f"field [{path}] holds a value detected as [{detector}] but is not protected: map "
                                 f"it with \"protect\": \"blind\" (or \"encrypt\"), or change "
                                 f"[index.pii_detection] (now [{mode}])")

    def _merger(self, index: Index, doc_id: str, spec: UpdateSpec, routing: str | None
                ) -> Callable[[StoredDoc | None], Any]:
        """A partial update over a sealed source: open, merge (as Elasticsearch does), seal again. The
        engine calls it under the shard lock, so the read-modify-write is atomic."""
        def merge(current: StoredDoc | None) -> Any:
            if current is None:
                if spec.upsert is not None:
                    document = spec.upsert
                elif spec.doc_as_upsert and spec.doc is not None:
                    document = spec.doc
                else:
                    shard = index.shard_for(doc_id, routing).number
                    raise DocumentMissingError(index.name, index.uuid, shard, doc_id)
            else:
                base = loads_strict(self.__vault.open(index, doc_id, current.source))
                document = deep_merge(base, spec.doc or {})
                if spec.detect_noop and document == base:
                    return NOOP
            plain = orjson.dumps(document)
            derived, indexed = self._indexable(index, document, plain)
            return self.__vault.seal(index, doc_id, plain), derived, indexed
        return merge

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
                index, accesses = self._one_read(spec.index, action)
                if refresh and index.name not in refreshed:
                    await _run(index.refresh)
                    refreshed.add(index.name)
                doc, doc_filter = await self._fetch(index, accesses, spec, realtime=realtime)
                if doc is not None and spec.version is not None:
                    self._check_get_version(index, spec, doc)
                if doc is not None and self.__ledger is not None:
                    self.__ledger.reveal(index, [doc.doc_id])
                results.append(self._doc_result(index, spec, doc, doc_filter))
            except StrongroomError as exc:
                if single:
                    raise
                results.append(exc)
        return results

    async def _fetch(self, index: Index, accesses: dict[str, Access], spec: "GetSpec", *, realtime: bool
                     ) -> tuple[StoredDoc | None, DocFilter | None]:
        """One document by id as the caller may read it (and its output filter), or (None, None)."""
        # A get by id is one term lookup (or a version-map hit): on the loop, see is_lookup.
        doc = index.get(spec.doc_id, routing=spec.routing, realtime=realtime)
        access = accesses.get(index.name)
        if doc is None or access is None:
            return doc, None
        # Outside the caller's document query a document answers exactly like a missing one.
        # (On a worker thread: it may have to refresh the shard, which waits for writers.)
        return await _run(self._guarded, index, access, spec, doc)

    async def reveal(self, name: str, doc_id: str, paths: Any, *, routing: str | None = None) -> DocResult:
        """Fields of one document in clear, for a purpose: what a masked view shows as `138****5678`.

        Needs the index privilege `reveal` (on top of reading the record: a document the caller cannot
        read answers like a missing one) and a purpose. The roles that grant `reveal` decide, with their
        document query and field security but without their masks, which fields may be shown; asking
        for any other refuses the whole request. Each field shown is charged to the reveal budget and
        named in the audit record (the document to the record budget, as any read)."""
        index, accesses = self._one_read(name, actions.DOC_GET)
        grant = self.__policy.authorize_index(self.principal, actions.DOC_REVEAL, index.name)
        if self.purpose is None:
            raise IllegalArgumentError(f"revealing a field requires a purpose: send the [{PURPOSE_HEADER}] header "
                                       "(for example a case number)")
        wanted = _reveal_paths(paths)
        spec = GetSpec(index.name, doc_id, routing)
        doc, _ = await self._fetch(index, accesses, spec, realtime=True)
        if doc is None:
            shard = index.shard_for(doc_id, routing).number
            raise DocumentMissingError(index.name, index.uuid, shard, doc_id)
        shown: DocFilter | None = None
        if grant.layers:
            reveal_access = self._access(grant, index)
            if not reveal_access.unrestricted:
                visible, shown = await _run(self._guarded, index, reveal_access, spec, doc)
                if visible is None:  # outside every reveal role's document query
                    raise AuthorizationError(actions.DOC_REVEAL, self.principal.name, index.name)
        for path in wanted:
            if shown is not None and not shown.shows_clear(path):
                raise FieldSecurityError(self.principal.name, path, "no role of the user may reveal it")
            field_type = index.mapping.fields.get(path)
            if field_type is None or field_type.parent is not None:
                raise IllegalArgumentError(f"[{path}] is not a field of index [{index.name}]; reveal names "
                                           "fields of the document as mapped (not objects or multi-fields)")
        parsed = self._open_json(index, doc.doc_id, doc.source)
        found = {path: values for path in wanted if (values := extract_values(parsed, path))}
        if self.__ledger is not None:
            self.__ledger.reveal(index, [doc.doc_id])
            if found:
                self.__ledger.reveal_fields(index, doc.doc_id, list(found))
        return DocResult(index.name, doc_id, doc, None, found)

    def _guarded(self, index: Index, access: Access, spec: "GetSpec", doc: StoredDoc
                 ) -> tuple[StoredDoc | None, DocFilter | None]:
        """The document and its output filter if the caller may see it; (None, None) otherwise."""
        shard = index.shard_for(spec.doc_id, spec.routing)
        targets = [t for t in self._targets([index], {index.name: access}) if t.shard is shard]
        if access.restriction is not None:
            visible = matching_ids(targets, access.restriction, [spec.doc_id])
            if not visible and not matching_ids(targets, MatchAll(), [spec.doc_id]):
                # Written but not yet searchable (a real-time get): make it searchable, then decide.
                shard.refresh()
                targets = [t for t in self._targets([index], {index.name: access}) if t.shard is shard]
                visible = matching_ids(targets, access.restriction, [spec.doc_id])
            if not visible:
                return None, None
        filters = access.doc_filters(targets, [spec.doc_id])
        return doc, filters.get(spec.doc_id)

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

    def _doc_result(self, index: Index, spec: "GetSpec", doc: StoredDoc | None,
                    doc_filter: DocFilter | None = None) -> DocResult:
        if doc is None:
            return DocResult(index.name, spec.doc_id, None)
        source_filter = spec.source_filter
        stored = spec.stored_fields
        wants_source = source_filter.fetch if source_filter is not None else True
        if stored is not None and source_filter is None:
            wants_source = "_source" in stored  # Asking for stored fields turns `_source` off unless named.
        fields = None
        parsed = self._open_json(index, doc.doc_id, doc.source) if (wants_source or stored) else None
        if stored and parsed is not None:
            fields = {}
            for name in stored:
                field_type = index.mapping.fields.get(name)
                if field_type is None or field_type.params.get("store") not in (True, "true"):
                    continue
                values = extract_values(parsed, field_type.parent or name)
                if values and doc_filter is not None:
                    values = doc_filter.values(name, values)
                if values:
                    fields[name] = values
        source = None
        if wants_source and parsed is not None:
            if doc_filter is not None:
                parsed = doc_filter.source(parsed)
            source = source_filter.apply(parsed) if source_filter else parsed
        return DocResult(index.name, spec.doc_id, doc, source, fields or None)


@dataclass
class VisibleHit:
    """One search hit as the caller may see it."""

    index: str
    doc: StoredDoc
    score: float | None
    sort: list[Any] | None
    source: dict[str, Any] | None
    explanation: dict[str, Any] | None = None
    highlight: dict[str, list[str]] | None = None
    fields: dict[str, list[Any]] | None = None
    matched_queries: Any = None


@dataclass
class SearchOutcome:
    total: int | None
    relation: str
    max_score: float | None
    hits: list[VisibleHit]
    shards: int
    aggregations: dict[str, Any] | None = None
    scroll_id: str | None = None
    timed_out: bool = False
    pit_id: str | None = None


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


def _analyzer_of(index: Index) -> Callable[[str], str | None]:
    def analyzer(path: str) -> str | None:
        slot = index.slots.get(path)
        field_type = index.mapping.fields.get(path)
        if slot is None or field_type is None or slot.kind != "text":
            return None
        declared = "default" if field_type.protect == "blind" else slot.analyzer  # blind slots hold tokens
        return field_type.params.get("search_analyzer") or field_type.params.get("analyzer") or declared
    return analyzer


def _expander(index: Index) -> Callable[[str], list[str]]:
    def expand(pattern: str) -> list[str]:
        if "*" not in pattern:
            return [pattern]
        return sorted(p for p, s in index.slots.items() if s.kind in ("text", "keyword")
                      and fnmatch.fnmatchcase(p, pattern))
    return expand


def _filter_mapping(node: dict[str, Any], path: str, may_see: Callable[[str], bool]) -> dict[str, Any]:
    out = dict(node)
    if "properties" in node:
        kept = {}
        for name, child in node["properties"].items():
            child_path = f"{path}.{name}" if path else name
            filtered = _filter_mapping(child, child_path, may_see)
            if "properties" in child and child["properties"] and not filtered.get("properties"):
                continue  # an object whose fields are all hidden
            if "properties" not in child and not may_see(child_path):
                continue
            kept[name] = filtered
        out["properties"] = kept
    if "fields" in node and isinstance(node["fields"], dict):
        out["fields"] = {name: sub for name, sub in node["fields"].items() if may_see(f"{path}.{name}")}
        if not out["fields"]:
            del out["fields"]
    return out


def _screened(write: DocWrite) -> None:
    """A document reaches the engine parsed by `Session._parse` and then screened, or derived by an
    ingest worker (which does both): never one still unparsed."""
    if not write.parsed:
        raise RuntimeError("a document reached the engine unparsed and unscreened")


def _once(rewrite: Callable[[Node], Node]) -> Callable[[Node], Node]:
    """`rewrite`, remembering its answer for each node it was given (the shards of one index ask alike)."""
    seen: dict[int, tuple[Node, Node]] = {}

    def apply(node: Node) -> Node:
        hit = seen.get(id(node))
        if hit is None or hit[0] is not node:
            hit = seen[id(node)] = (node, rewrite(node))
        return hit[1]
    return apply


def _revealer(open_json: Callable[[str, bytes], Any], access: Access | None,
              charge: Callable[[list[str]], None] | None = None
              ) -> Callable[[Any, list[str], list[bytes]], list[dict[str, Any]]]:
    """How documents the engine renders itself (top_hits) are opened and filtered for the caller."""
    def reveal(target: Any, ids: list[str], sources: list[bytes]) -> list[dict[str, Any]]:
        if charge is not None:
            charge(ids)
        opened = [open_json(doc_id, source) for doc_id, source in zip(ids, sources)]
        if access is None:
            return opened
        filters = access.doc_filters([target], ids)
        return [filters[doc_id].source(source) if doc_id in filters else {}  # fail closed
                for doc_id, source in zip(ids, opened)]
    return reveal


MAX_REVEAL_FIELDS = 16


def _reveal_paths(paths: Any) -> list[str]:
    if (not isinstance(paths, list) or not paths or len(paths) > MAX_REVEAL_FIELDS
            or not all(isinstance(p, str) and p and "*" not in p and len(p) <= 256 for p in paths)):
        raise IllegalArgumentError(f"[fields] must list 1 to {MAX_REVEAL_FIELDS} field names, without wildcards: "
                                   "each revealed field is named in the audit record")
    return list(dict.fromkeys(paths))


def _keep_alive(value: str) -> float:
    seconds = parse_time_value(value, "scroll")
    if seconds is None:
        raise IllegalArgumentError("[scroll] keep alive must be positive")
    return seconds


def _tracked(request: SearchRequest, exact: int) -> tuple[int | None, str]:
    track = request.spec.track_total
    if track is False:
        return None, "eq"
    if track is True or exact <= track:
        return exact, "eq"
    return int(track), "gte"
