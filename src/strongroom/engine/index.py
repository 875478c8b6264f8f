"""An index: settings, mapping, and N shards always reached through the same fan-out and merge."""

from __future__ import annotations

import base64
import concurrent.futures
import json
import logging
import re
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import tantivy

from ..errors import (IllegalArgumentError, InternalError, InvalidIndexNameError, MapperParsingError,
                      StrongroomError)
from ..jsonio import loads_strict
from . import analysis
from .fsutil import atomic_write, dir_size
from .mapping import INTEGER_RANGES, FLOAT_TYPES, Mapping, MappingLimits, ParsedDocument
from .plan import Compiler, Node
from .shard import NOOP, Conditions, IndexPlan, OpResult, Shard, Slot, StoredDoc, WriteOp, count_docs

log = logging.getLogger(__name__)

META_FILE = "index.json"
_INVALID_NAME_CHARS = set('\\/*?"<>| ,#:')


def validate_index_name(name: str) -> None:
    if not name:
        raise InvalidIndexNameError(name, "must not be empty")
    if name != name.lower():
        raise InvalidIndexNameError(name, "must be lowercase")
    if any(c in _INVALID_NAME_CHARS for c in name):
        raise InvalidIndexNameError(name, 'must not contain the following characters [ , ", *, \\, <, |, ,, >, /, ?, :, #]')
    if name[0] in "_-+":
        raise InvalidIndexNameError(name, "must not start with '_', '-', or '+'")
    if name in (".", ".."):
        raise InvalidIndexNameError(name, "must not be '.' or '..'")
    if len(name.encode()) > 255:
        raise InvalidIndexNameError(name, "index name is too long, (" + str(len(name.encode())) + " > 255)")


_TIME_VALUE = re.compile(r"^(-?\d+)(nanos|micros|ms|s|m|h|d)?$")
_UNIT_SECONDS = {"nanos": 1e-9, "micros": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_time_value(value: Any, setting: str) -> float | None:
    """Elasticsearch time values ("1s", "500ms", "-1"). Returns seconds, or None for -1 (disabled)."""
    text = str(value).strip()
    match = _TIME_VALUE.match(text)
    if not match or (match.group(2) is None and match.group(1) not in ("-1", "0")):
        raise IllegalArgumentError(f"failed to parse setting [{setting}] with value [{value}] as a time value: "
                                   "unit is missing or unrecognized")
    number = int(match.group(1))
    if number == -1:
        return None
    if number < 0:
        raise IllegalArgumentError(f"failed to parse value [{value}] for setting [{setting}], must be >= [-1]")
    return number * _UNIT_SECONDS[match.group(2) or "s"]


def _int_setting(value: Any, setting: str, low: int, high: int) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise IllegalArgumentError(f"Failed to parse value [{value}] for setting [{setting}]") from None
    if not low <= number <= high:
        bound = f"must be >= {low}" if number < low else f"must be <= {high}"
        raise IllegalArgumentError(f"Failed to parse value [{value}] for setting [{setting}] {bound}")
    return number


# Settings an index honours; anything else is refused rather than silently ignored.
INDEX_SETTINGS: dict[str, tuple[str, Callable[[Any, str], Any]]] = {
    "index.number_of_shards": ("1", lambda v, k: _int_setting(v, k, 1, 1024)),
    "index.number_of_replicas": ("1", lambda v, k: _int_setting(v, k, 0, 1024)),
    # Accepted for compatibility: documents are routed by hash modulo number_of_shards.
    "index.number_of_routing_shards": ("1", lambda v, k: _int_setting(v, k, 1, 1024)),
    "index.refresh_interval": ("1s", parse_time_value),
    # Elasticsearch's search-idle shards: with no explicit refresh_interval, an index nobody searched for
    # this long skips scheduled refreshes (each is a tantivy commit), and its next search refreshes first.
    "index.search.idle.after": ("30s", parse_time_value),
    "index.max_result_window": ("10000", lambda v, k: _int_setting(v, k, 1, 2**31 - 1)),
    "index.mapping.total_fields.limit": ("1000", lambda v, k: _int_setting(v, k, 1, 100_000)),
    "index.mapping.depth.limit": ("20", lambda v, k: _int_setting(v, k, 1, 100)),
    "index.max_docvalue_fields_search": ("100", lambda v, k: _int_setting(v, k, 0, 2**31 - 1)),
    "index.max_regex_length": ("1000", lambda v, k: _int_setting(v, k, 1, 2**31 - 1)),
    "index.max_terms_count": ("65536", lambda v, k: _int_setting(v, k, 1, 2**31 - 1)),
    "index.highlight.max_analyzed_offset": ("1000000", lambda v, k: _int_setting(v, k, 1, 2**31 - 1)),
    # What happens when a value that looks like personal data (a national ID, a phone, a card…) arrives in
    # a field that is not protected: warn (log the field, never the value), reject (400), or protect (a
    # new field is mapped `protect: blind`). Enforced above the engine.
    "index.pii_detection": ("reject", lambda v, k: _choice(v, k, ("warn", "reject", "protect"))),
}
READ_ONLY_SETTINGS = {"index.creation_date", "index.uuid", "index.provided_name", "index.version.created"}


def _choice(value: Any, setting: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise IllegalArgumentError(f"Failed to parse value [{value}] for setting [{setting}]: expected one of "
                                   f"{list(choices)}")
    return value


def flatten_settings(body: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(body, dict):
        raise IllegalArgumentError("settings must be an object")
    flat: dict[str, Any] = {}
    for key, value in body.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_settings(value, name + "."))
        else:
            flat[name] = value
    return flat


DYNAMIC_SETTINGS = frozenset({"index.number_of_replicas", "index.refresh_interval", "index.search.idle.after",
                              "index.max_result_window",
                              "index.mapping.total_fields.limit", "index.mapping.depth.limit",
                              "index.max_docvalue_fields_search", "index.max_regex_length", "index.max_terms_count",
                              "index.highlight.max_analyzed_offset", "index.pii_detection"})


def normalize_settings(body: Any, *, updates: bool = False) -> dict[str, str | None]:
    """Settings → flat `index.*` keys with string values, validated. With `updates`, a null value
    means "back to the default"."""
    flat = flatten_settings(body or {})
    normalized: dict[str, str | None] = {}
    for key, value in flat.items():
        name = key if key.startswith("index.") else f"index.{key}"
        if name in READ_ONLY_SETTINGS and not updates:
            continue
        if name not in INDEX_SETTINGS and name not in READ_ONLY_SETTINGS:
            raise IllegalArgumentError(f"unknown setting [{name}] please check that any required plugins are "
                                       "installed, or check the breaking changes documentation for removed settings")
        if value is None and updates:
            normalized[name] = None
            continue
        if isinstance(value, (dict, list)) or value is None:
            raise IllegalArgumentError(f"Failed to parse value [{value}] for setting [{name}]")
        text = str(value).lower() if isinstance(value, bool) else str(value)
        INDEX_SETTINGS[name][1](text, name)
        normalized[name] = text
    if updates:
        return normalized
    shards = int(normalized.get("index.number_of_shards") or "1")
    routing = int(normalized.get("index.number_of_routing_shards") or shards)
    if routing < shards or routing % shards:
        raise IllegalArgumentError(f"the number of source shards [{shards}] must be a factor of [{routing}]")
    return normalized


@dataclass
class WriteRequest:
    """One write as the engine receives it (from `_bulk` or a single-document API)."""

    kind: str  # index | create | delete | update
    doc_id: str | None  # None: generate one (index/create)
    document: Any = None  # parsed JSON of the source (index/create)
    source: bytes | None = None  # the bytes stored and returned as `_source` (opaque: sealed above)
    conditions: Conditions = field(default_factory=Conditions)
    routing: str | None = None
    update: "UpdateSpec | None" = None
    auto_id: bool = False  # The id was generated here, so no document can have it yet.
    # The indexable document as JSON bytes, when `source` is not that JSON (sealed): logged and stored
    # so the engine can rebuild its index and read values without ever opening `source`.
    indexed: bytes | None = None


@dataclass
class UpdateSpec:
    doc: dict[str, Any] | None = None
    upsert: dict[str, Any] | None = None
    doc_as_upsert: bool = False
    detect_noop: bool = True
    # When sources are sealed, the layer above merges: called under the shard lock with the current
    # document (or None), it returns NOOP or (source, document, indexed) — and may raise.
    merge: Callable[[StoredDoc | None], Any] | None = None


@dataclass
class WriteOutcome:
    result: OpResult | StrongroomError
    index: str
    doc_id: str | None
    source: bytes | None = None  # the document as written (for update responses that ask for it)


class NeedsMapping(StrongroomError):
    """An update produced fields the mapping does not have yet: install them and retry."""

    def __init__(self, additions: dict[str, Any]) -> None:
        super().__init__("mapping update needed")
        self.additions = additions


def deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class Index:
    def __init__(self, path: Path, meta: dict[str, Any], *, writer_heap_bytes: int, writer_threads: int,
                 id_generator: Callable[[], str]) -> None:
        self.path = path
        self.name: str = meta["name"]
        self.uuid: str = meta["uuid"]
        # What sealed sources are bound to: the uuid the index had when they were sealed. A restored
        # index gets a new uuid but keeps its origin's, so its snapshot's sources still open.
        self.seal_uuid: str = meta.get("seal_uuid") or self.uuid
        self.creation_date: int = meta["creation_date"]
        self.settings: dict[str, str] = meta["settings"]
        self.primary_term: int = meta.get("primary_term", 1)
        # Wrapped data keys (opaque here; the security layer opens them). None: an index from before
        # sealing, whose sources are plain JSON.
        self.keys: bytes | None = base64.b64decode(meta["keys"]) if meta.get("keys") else None
        self._limits = MappingLimits(int(self.setting("index.mapping.total_fields.limit")),
                                     int(self.setting("index.mapping.depth.limit")))
        self.mapping = Mapping.parse_definition(meta["mappings"], self._limits)
        self.slots: dict[str, Slot] = {path: _slot_from_meta(s) for path, s in meta["slots"].items()}
        self._next_slot: int = meta["next_slot"]
        self._mapping_lock = threading.Lock()
        self._new_id = id_generator
        self.shards = [Shard(path / "shards" / str(n), n, index_name=self.name, index_uuid=self.uuid,
                             primary_term=self.primary_term, slots=list(self.slots.values()),
                             build_fields=self._fields_for_replay, writer_heap_bytes=writer_heap_bytes,
                             writer_threads=writer_threads)
                       for n in range(int(self.setting("index.number_of_shards")))]
        self.last_refresh = time.monotonic()
        self.last_search = time.monotonic()

    # -- metadata --------------------------------------------------------------------------
    @staticmethod
    def new_meta(name: str, uuid: str, settings: dict[str, str], mappings: Any) -> dict[str, Any]:
        limits = MappingLimits(int(settings.get("index.mapping.total_fields.limit", "1000")),
                               int(settings.get("index.mapping.depth.limit", "20")))
        mapping = Mapping.parse_definition(mappings, limits)
        meta = {"name": name, "uuid": uuid, "creation_date": int(time.time() * 1000), "settings": settings,
                "primary_term": 1, "mappings": mapping.to_es(), "slots": {}, "next_slot": 0}
        slots, next_slot = assign_slots(mapping, {}, 0, norms=True)
        meta["slots"] = {p: _slot_meta(s) for p, s in slots.items()}
        meta["next_slot"] = next_slot
        return meta

    def meta(self) -> dict[str, Any]:
        return {"name": self.name, "uuid": self.uuid, "creation_date": self.creation_date, "settings": self.settings,
                "primary_term": self.primary_term, "mappings": self.mapping.to_es(),
                "slots": {p: _slot_meta(s) for p, s in self.slots.items()},
                "next_slot": self._next_slot,
                **({"seal_uuid": self.seal_uuid} if self.seal_uuid != self.uuid else {}),
                **({"keys": base64.b64encode(self.keys).decode()} if self.keys is not None else {})}

    def snapshot_meta(self) -> dict[str, Any]:
        """The metadata as persisted, read under the lock every metadata change takes."""
        with self._mapping_lock:
            return self.meta()

    def setting(self, name: str) -> str:
        return self.settings.get(name, INDEX_SETTINGS[name][0])

    @property
    def refresh_interval(self) -> float | None:
        return parse_time_value(self.setting("index.refresh_interval"), "index.refresh_interval")

    def update_settings(self, body: Any) -> None:
        changes = normalize_settings(body, updates=True)
        static = sorted(name for name in changes if name not in DYNAMIC_SETTINGS)
        if static:
            raise IllegalArgumentError(f"Can't update non dynamic settings [[{', '.join(static)}]] for open indices "
                                       f"[[{self.name}/{self.uuid}]]")
        with self._mapping_lock:
            settings = dict(self.settings)
            for name, value in changes.items():
                if value is None:
                    settings.pop(name, None)
                else:
                    settings[name] = value
            limits = MappingLimits(int(settings.get("index.mapping.total_fields.limit", "1000")),
                                   int(settings.get("index.mapping.depth.limit", "20")))
            previous = self.settings, self._limits, self.mapping
            self.settings, self._limits = settings, limits
            self.mapping = Mapping(self.mapping.root, self.mapping.root_params, limits)
            try:
                atomic_write(self.path / META_FILE, json.dumps(self.meta(), ensure_ascii=False, indent=1).encode())
            except OSError as exc:
                self.settings, self._limits, self.mapping = previous
                raise InternalError("the settings update could not be persisted") from exc

    def replace_keys(self, blob: bytes) -> None:
        """Replace the wrapped data keys (a rotation or a master key rewrap), durably: index.json is
        rewritten atomically before this returns, under the lock every metadata write takes, so a
        later settings or mapping write cannot put the old blob back. An index without keys (from
        before sealing, plain sources) never gets some this way."""
        if not blob:
            raise IllegalArgumentError("wrapped data keys must not be empty")
        with self._mapping_lock:
            if self.keys is None:
                raise IllegalArgumentError(f"index [{self.name}] has no data keys: its sources are not sealed")
            previous, self.keys = self.keys, bytes(blob)
            try:
                atomic_write(self.path / META_FILE, json.dumps(self.meta(), ensure_ascii=False, indent=1).encode())
            except OSError as exc:
                self.keys = previous
                raise InternalError("the new data keys could not be persisted") from exc

    def put_mapping(self, body: Any) -> None:
        with self._mapping_lock:
            self._install(self.mapping.merge(body))

    def _install(self, mapping: Mapping) -> None:
        """Persists a grown mapping and gives its new fields tantivy slots in every shard."""
        if mapping.to_es() == self.mapping.to_es():
            return
        empty = not any(shard.has_segments() for shard in self.shards)
        slots, next_slot = assign_slots(mapping, self.slots, self._next_slot, norms=empty)
        new = [s for p, s in slots.items() if p not in self.slots]
        previous = (self.mapping, self.slots, self._next_slot)
        self.mapping, self.slots, self._next_slot = mapping, slots, next_slot
        try:
            atomic_write(self.path / META_FILE, json.dumps(self.meta(), ensure_ascii=False, indent=1).encode())
        except OSError as exc:
            self.mapping, self.slots, self._next_slot = previous
            raise InternalError("the mapping update could not be persisted") from exc
        for shard in self.shards:
            shard.add_slots(new)

    # -- documents -------------------------------------------------------------------------
    def shard_for(self, doc_id: str, routing: str | None) -> Shard:
        key = routing if routing is not None else doc_id
        return self.shards[zlib.crc32(key.encode()) % len(self.shards)]

    def build_fields(self, parsed: ParsedDocument) -> tantivy.Document:
        doc = tantivy.Document()
        slots = self.slots
        for path, value in parsed.values:
            slot = slots[path]
            kind = slot.kind
            if kind == "text":
                doc.add_text(slot.name, analysis.analyzer(slot.analyzer).index_text(value))
            elif kind == "keyword":
                doc.add_text(slot.name, value)
            elif kind == "i64":
                doc.add_integer(slot.name, value)
            elif kind == "f64":
                doc.add_float(slot.name, value)
            elif kind == "ip":
                doc.add_ip_addr(slot.name, value)
            else:
                doc.add_boolean(slot.name, value)
        for name in parsed.field_names:
            doc.add_text("_field_names", name)
        return doc

    def _fields_for_replay(self, source: bytes, doc_id: str) -> tantivy.Document:
        parsed = self.mapping.parse_document(loads_strict(source), doc_id)
        if parsed.additions:  # The mapping is persisted before any document that needs it is logged.
            raise MapperParsingError("logged document needs fields missing from the persisted mapping")
        return self.build_fields(parsed)

    def write(self, requests: Sequence[WriteRequest]) -> list[WriteOutcome]:
        """Applies a batch of writes; returns once every acknowledged one is durable."""
        outcomes: list[WriteOutcome | None] = [None] * len(requests)
        parsed: dict[int, ParsedDocument] = {}
        working = self.mapping
        grown = False
        for i, request in enumerate(requests):
            if request.kind not in ("index", "create"):
                continue
            if request.doc_id is None:
                request.doc_id, request.auto_id = self._new_id(), True
            try:
                doc = working.parse_document(request.document, request.doc_id)
                if doc.additions:
                    working = working.merge(doc.additions)
                    grown = True
            except StrongroomError as exc:
                outcomes[i] = WriteOutcome(exc, self.name, request.doc_id)
                continue
            parsed[i] = doc
        if grown:
            try:
                self._grow(working)
            except StrongroomError as exc:
                for i in parsed:
                    outcomes[i] = WriteOutcome(exc, self.name, requests[i].doc_id)
                parsed.clear()
        by_shard: dict[int, list[tuple[int, WriteOp]]] = {}
        for i, request in enumerate(requests):
            if outcomes[i] is not None:
                continue
            assert request.doc_id is not None
            op = self._write_op(request, parsed.get(i))
            shard = self.shard_for(request.doc_id, request.routing)
            by_shard.setdefault(shard.number, []).append((i, op))
        retries: list[int] = []
        synced: list[tuple[Shard, int]] = []
        for number, items in by_shard.items():
            shard = self.shards[number]
            results, last = shard.write([op for _i, op in items])
            synced.append((shard, last))
            for (i, op), result in zip(items, results):
                if isinstance(result, NeedsMapping):
                    retries.append(i)
                    continue
                source = op.source if isinstance(result, OpResult) else None
                outcomes[i] = WriteOutcome(result, self.name, op.doc_id, source)
        self._sync(synced)
        for i in retries:  # Updates whose merged document brought new fields.
            outcomes[i] = self._retry_update(requests[i])
        return [o for o in outcomes if o is not None]

    def _grow(self, working: Mapping) -> None:
        with self._mapping_lock:
            current = self.mapping
            target = working if _extends(working, current) else current.merge(working.to_es())
            self._install(target)

    def _sync(self, synced: list[tuple[Shard, int]]) -> None:
        if len(synced) == 1:
            shard, last = synced[0]
            shard.sync(last)
        elif synced:
            with concurrent.futures.ThreadPoolExecutor(len(synced)) as pool:
                for future in [pool.submit(shard.sync, last) for shard, last in synced]:
                    future.result()

    def _retry_update(self, request: WriteRequest) -> WriteOutcome:
        for _attempt in range(3):
            shard = self.shard_for(request.doc_id or "", request.routing)
            op = self._write_op(request, None)
            (result,), last = shard.write([op])
            if isinstance(result, NeedsMapping):
                try:
                    with self._mapping_lock:
                        self._install(self.mapping.merge(result.additions))
                except StrongroomError as exc:
                    return WriteOutcome(exc, self.name, request.doc_id)
                continue
            shard.sync(last)
            return WriteOutcome(result, self.name, request.doc_id, op.source)
        return WriteOutcome(InternalError("the mapping kept changing during an update"), self.name, request.doc_id)

    def _write_op(self, request: WriteRequest, parsed: ParsedDocument | None) -> WriteOp:
        assert request.doc_id is not None
        if request.kind == "delete":
            return WriteOp("delete", request.doc_id, conditions=request.conditions, routing=request.routing)
        if request.kind == "update":
            assert request.update is not None
            op = WriteOp("update", request.doc_id, conditions=request.conditions, routing=request.routing)
            op.updater = self._updater(request.update, request.doc_id, op)
            return op
        assert parsed is not None and request.source is not None
        if parsed.additions:  # Parsed against a working mapping; now resolve slots of the installed one.
            parsed = self.mapping.parse_document(request.document, request.doc_id)
            if parsed.additions:
                raise InternalError("mapping not installed")
        return WriteOp(request.kind, request.doc_id, request.source, self.build_fields(parsed),  # type: ignore[arg-type]
                       request.conditions, request.routing, auto_id=request.auto_id, doc=request.indexed)

    def _updater(self, spec: UpdateSpec, doc_id: str, op: WriteOp) -> Callable[[StoredDoc | None], Any]:
        def decide(current: StoredDoc | None) -> Any:
            if spec.merge is not None:
                merged = spec.merge(current)
                if merged is NOOP:
                    op.source = current.source if current is not None else None
                    return NOOP
                source, document, indexed = merged
                parsed = self.mapping.parse_document(document, doc_id)
                if parsed.additions:
                    raise NeedsMapping(parsed.additions)
                op.source = source
                return IndexPlan(source, self.build_fields(parsed), indexed)
            if current is None:
                if spec.upsert is not None:
                    document = spec.upsert
                elif spec.doc_as_upsert and spec.doc is not None:
                    document = spec.doc
                else:
                    from ..errors import DocumentMissingError
                    shard = self.shard_for(doc_id, op.routing)
                    raise DocumentMissingError(self.name, self.uuid, shard.number, doc_id)
            else:
                base = loads_strict(current.source)
                document = deep_merge(base, spec.doc or {})
                if spec.detect_noop and document == base:
                    op.source = current.source  # Answers that ask for the document still get it.
                    return NOOP
            parsed = self.mapping.parse_document(document, doc_id)
            if parsed.additions:
                raise NeedsMapping(parsed.additions)
            source = orjson.dumps(document)
            op.source = source
            return IndexPlan(source, self.build_fields(parsed))
        return decide

    def new_id(self) -> str:
        """A fresh document id (the layer above needs it before sealing, which binds the id)."""
        return self._new_id()

    def get(self, doc_id: str, *, routing: str | None = None, realtime: bool = True) -> StoredDoc | None:
        return self.shard_for(doc_id, routing).get(doc_id, realtime=realtime)

    # -- search ----------------------------------------------------------------------------
    def compiler(self, shard: Shard, searcher: tantivy.Searcher | None = None) -> Compiler:
        searcher = searcher or shard.searcher
        return Compiler(shard.schema, self.mapping, self.slots, searcher,
                        max_regex_length=int(self.setting("index.max_regex_length")),
                        max_terms_count=int(self.setting("index.max_terms_count")), freqs=shard.doc_freqs(searcher))

    def count(self, node: Node) -> int:
        total = 0
        self.searching()
        for shard in self.shards:
            searcher = shard.searcher
            query = self.compiler(shard, searcher).compile(node)
            total += count_docs(searcher, query)
        return total

    def refresh(self) -> None:
        for shard in self.shards:
            shard.refresh()
        self.last_refresh = time.monotonic()

    def search_idle(self, now: float | None = None) -> bool:
        """Whether scheduled refreshes are skipped: no explicit refresh_interval, and no search for
        `index.search.idle.after` (as Elasticsearch 7+)."""
        if "index.refresh_interval" in self.settings:
            return False
        after = parse_time_value(self.setting("index.search.idle.after"), "index.search.idle.after")
        return after is not None and (now if now is not None else time.monotonic()) - self.last_search >= after

    def stale_for_search(self) -> bool:
        """A search now would first have to refresh (search-idle, with writes not yet searchable)."""
        return any(shard.needs_refresh() for shard in self.shards) and self.search_idle()  # cheap part first

    def searching(self) -> None:
        """Called before a search takes the shards' searchers: a search-idle index with pending writes
        refreshes first, so a search always sees what was acknowledged before the idle period ended."""
        stale = self.stale_for_search()
        self.last_search = time.monotonic()
        if stale:
            self.refresh()

    def refresh_shards(self, numbers: Sequence[int]) -> None:
        for number in numbers:
            self.shards[number].refresh()

    def wait_for_refresh(self, seqs: dict[int, int]) -> list[concurrent.futures.Future[None]]:
        return [self.shards[number].wait_for_refresh(seq) for number, seq in seqs.items()]

    def stats(self) -> dict[str, int]:
        docs = deleted = 0
        for shard in self.shards:
            counts = shard.stats()
            docs += counts["docs"]
            deleted += counts["deleted"]
        return {"docs": docs, "deleted": deleted, "store_bytes": dir_size(self.path)}

    def close(self) -> None:
        for shard in self.shards:
            shard.close()


def _slot_meta(slot: Slot) -> dict[str, Any]:
    meta: dict[str, Any] = {"slot": slot.name, "kind": slot.kind, "norms": slot.norms}
    if slot.kind == "text":
        meta["analyzer"] = slot.analyzer
    return meta


def _slot_from_meta(meta: dict[str, Any]) -> Slot:
    return Slot(meta["slot"], meta["kind"], meta.get("norms", True), meta.get("analyzer", "default"))


def _extends(candidate: Mapping, base: Mapping) -> bool:
    """True when `candidate` was grown from `base` (every field of base is in candidate, same type)."""
    return all(path in candidate.fields and candidate.fields[path].type == f.type for path, f in base.fields.items())


SLOT_KINDS = {"text": "text", "match_only_text": "text", "keyword": "keyword", "date": "i64", "boolean": "bool",
              "ip": "ip",
              **{t: "i64" for t in INTEGER_RANGES}, **{t: "f64" for t in FLOAT_TYPES}}


def assign_slots(mapping: Mapping, existing: dict[str, Slot], next_slot: int, *, norms: bool
                 ) -> tuple[dict[str, Slot], int]:
    slots = dict(existing)
    for path in sorted(mapping.fields):
        field_type = mapping.fields[path]
        if path in slots or not field_type.indexed or field_type.type not in SLOT_KINDS:
            continue
        kind = SLOT_KINDS[field_type.type]
        analyzer = field_type.params.get("analyzer") or "default"
        if field_type.protect == "blind":  # keyed tokens made above the engine: positions kept for text
            kind, analyzer = ("text", "whitespace") if kind == "text" else ("keyword", "default")
        wants_norms = norms and field_type.params.get("norms", True) not in (False, "false") \
            and field_type.type != "match_only_text"
        slots[path] = Slot(f"f{next_slot}", kind, wants_norms if kind == "text" else False,  # type: ignore[arg-type]
                           analyzer)
        next_slot += 1
    return slots, next_slot
