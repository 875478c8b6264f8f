"""One shard: a tantivy index derived from the shard's write-ahead log.

Write path (under the shard's lock): look up the current version → check the request's
concurrency conditions → assign the next sequence number → append to the log → add to tantivy's
writer → remember the operation in the live version map. The caller then waits for `sync` (one
fsync shared by everything appended meanwhile) before acknowledging.

Refresh = tantivy commit: it makes writes searchable. Then the last sequence number it covers is
written (atomically, fsynced) to `CHECKPOINT_FILE` beside the commit's files, and only then is the
log before that point dropped. On open, the log is replayed past the checkpoint. A crash between
the commit and the checkpoint file leaves the older checkpoint: the replay then re-applies
operations the commit already holds, which is harmless (each is "delete by id, add as logged").
Before 2026-11-28 the checkpoint was a marker document inside the commit, which every query had to
exclude (an exclusion over every document cost ~8 ms per million in a terms aggregation:
bench/engine_marker.py); a shard that still has one is migrated when it opens.

Schema: fixed metadata fields plus one tantivy field ("slot") per mapped leaf field. tantivy
cannot add fields to an index, so new slots are appended to the schema in `meta.json` while the
writer is closed (`ensure_slots`). Segments written before a slot existed simply have no data for
it. Text slots added to a shard that already has segments are created without field norms: a
merge needs norms in every segment it merges.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import tantivy

from ..errors import DocumentMissingError, InternalError, StrongroomError, VersionConflictError
from . import analysis
from .fsutil import atomic_write, fsync_dir, make_dirs
from .records import OP_DELETE, OP_INDEX, LoggedOp
from .wal import LocalLog, LogCorruptionError, LogError

log = logging.getLogger(__name__)

# The last sequence number a commit covers, in the commit's directory (so a snapshot's linked files
# carry it). tantivy leaves files it does not manage alone.
CHECKPOINT_FILE = "strongroom-checkpoint.json"
LEGACY_MARKER_ID = ""  # the old in-index checkpoint document's id (Elasticsearch ids cannot be empty)
GC_DELETES_SECONDS = 60.0

SlotKind = Literal["text", "keyword", "i64", "f64", "bool", "ip"]


@dataclass(frozen=True)
class Slot:
    name: str
    kind: SlotKind
    norms: bool = True  # text slots only
    analyzer: str = "default"  # text slots only: a name from analysis.ANALYZERS

    def schema_entry(self) -> dict[str, Any]:
        if self.kind == "text":
            return _text_entry(self.name, tokenizer=analysis.analyzer(self.analyzer).tantivy_name,
                               record="position", norms=self.norms)
        if self.kind == "keyword":
            return _text_entry(self.name, tokenizer="raw", record="basic", norms=False, fast=True)
        tantivy_type = {"i64": "i64", "f64": "f64", "bool": "bool", "ip": "ip_addr"}[self.kind]
        return {"name": self.name, "type": tantivy_type,
                "options": {"indexed": True, "fieldnorms": False, "fast": True, "stored": False}}


def _text_entry(name: str, *, tokenizer: str, record: str, norms: bool, stored: bool = False,
                fast: bool = False, indexed: bool = True) -> dict[str, Any]:
    indexing = {"record": record, "fieldnorms": norms, "tokenizer": tokenizer} if indexed else None
    return {"name": name, "type": "text", "options": {"indexing": indexing, "stored": stored, "fast": fast}}


def _numeric_entry(name: str, kind: str, *, indexed: bool, fast: bool, stored: bool) -> dict[str, Any]:
    return {"name": name, "type": kind, "options": {"indexed": indexed, "fieldnorms": False, "fast": fast,
                                                    "stored": stored}}


FIXED_SCHEMA: list[dict[str, Any]] = [
    _text_entry("_id", tokenizer="raw", record="basic", norms=False, stored=True),
    _numeric_entry("_seq_no", "i64", indexed=True, fast=True, stored=True),
    _numeric_entry("_version", "i64", indexed=False, fast=True, stored=True),
    _numeric_entry("_primary_term", "i64", indexed=False, fast=True, stored=True),
    {"name": "_source", "type": "bytes",
     "options": {"indexed": False, "fieldnorms": False, "fast": False, "stored": True}},
    _text_entry("_routing", tokenizer="raw", record="basic", norms=False, stored=True, indexed=False),
    _text_entry("_field_names", tokenizer="raw", record="basic", norms=False),
    _numeric_entry("_ckpt", "i64", indexed=False, fast=False, stored=True),  # read only from legacy markers
]


@dataclass(slots=True)
class StoredDoc:
    doc_id: str
    seq_no: int
    version: int
    primary_term: int
    source: bytes
    routing: str | None = None


def stored_doc(doc: tantivy.Document) -> StoredDoc:
    """The stored fields of a document read from a searcher (one conversion, not one call per field)."""
    fields = doc.to_dict()

    def first(name: str) -> Any:  # as Document.get_first: the first value, None when there is none
        values = fields.get(name)
        return values[0] if values else None

    return StoredDoc(first("_id"), first("_seq_no"), first("_version"), first("_primary_term"), first("_source"),
                     first("_routing"))


@dataclass(slots=True)
class VersionEntry:
    seq_no: int
    version: int
    primary_term: int
    deleted: bool
    source: bytes | None
    routing: str | None
    at: float  # monotonic time of the operation (tombstone expiry)


@dataclass(slots=True)
class OpResult:
    doc_id: str
    result: str  # created | updated | deleted | not_found | noop
    version: int
    seq_no: int
    primary_term: int
    shard: int

    @property
    def status(self) -> int:
        return {"created": 201, "not_found": 404}.get(self.result, 200)


@dataclass(slots=True)
class Conditions:
    """Optimistic concurrency conditions of one write."""

    if_seq_no: int | None = None
    if_primary_term: int | None = None
    version: int | None = None
    version_type: str = "internal"  # internal | external | external_gte


@dataclass(slots=True)
class IndexPlan:
    """What an update decided: index this source and these fields, or nothing (noop)."""

    source: bytes
    fields: tantivy.Document
    doc: bytes | None = None  # the indexable document, when the source is not it


NOOP = object()


@dataclass(slots=True)
class _Decision:
    logged: LoggedOp
    fields: tantivy.Document | None
    result: str
    replaces: bool  # A live document with this id exists and must be deleted from tantivy first.


@dataclass(slots=True)
class WriteOp:
    kind: Literal["index", "create", "delete", "update"]
    doc_id: str
    source: bytes | None = None
    fields: tantivy.Document | None = None  # Slot values; the shard adds the metadata fields.
    conditions: Conditions = field(default_factory=Conditions)
    routing: str | None = None
    auto_id: bool = False  # An id we generated cannot exist yet: skip the lookup.
    doc: bytes | None = None  # the indexable document, when the source is not it (sealed)
    # Updates: called under the lock with the current document (or None); returns an IndexPlan or NOOP.
    updater: Callable[[StoredDoc | None], Any] | None = None


def count_docs(searcher: tantivy.Searcher, query: tantivy.Query) -> int:
    """How many documents match, without ranking: a value count over `_seq_no`, a fast column every
    document has (0.4-0.6x the time of a constant-score top-1 search with a count for broad queries,
    a few microseconds slower for selective ones: bench/engine_count.py); the search's count if the
    column cannot answer."""
    try:
        return int(searcher.aggregate(query, {"n": {"value_count": {"field": "_seq_no"}}})["n"]["value"])
    except (ValueError, KeyError, TypeError):
        return searcher.search(query, 1, count=True).count or 0


class Shard:
    def __init__(self, path: Path, number: int, *, index_name: str, index_uuid: str, primary_term: int,
                 slots: Sequence[Slot], build_fields: Callable[[bytes, str], tantivy.Document],
                 writer_heap_bytes: int = 64 << 20, writer_threads: int = 1,
                 max_unrefreshed: int = 50_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.number = number
        self.index_name = index_name
        self.index_uuid = index_uuid
        self.primary_term = primary_term
        self._build_fields = build_fields  # Re-derives slot values from a logged source during replay.
        self._heap = writer_heap_bytes
        self._threads = writer_threads
        self._max_unrefreshed = max_unrefreshed
        self._clock = clock
        self._lock = threading.RLock()
        self._vmap: dict[str, VersionEntry] = {}
        self._waiters: list[tuple[int, concurrent.futures.Future[None]]] = []
        self._waiters_lock = threading.Lock()
        self._closed = False
        self._tantivy_dir = path / "index"
        self._slots = {s.name: s for s in slots}
        self._open_index()
        legacy = self._legacy_marker_seq()
        self._committed_seq = self._read_checkpoint(legacy)
        if legacy >= 0:
            self._drop_legacy_marker()
        self._log = LocalLog(path / "translog", base_seq=self._committed_seq + 1)
        self._applied_seq = self._committed_seq
        self._next_seq = max(self._committed_seq, self._log.last_seq) + 1
        self._replay()

    # -- opening -------------------------------------------------------------------------
    def _open_index(self) -> None:
        directory = self._tantivy_dir
        if not (directory / "meta.json").exists():
            make_dirs(directory)
            builder = tantivy.SchemaBuilder()
            builder.add_text_field("_id", stored=True, tokenizer_name="raw")
            tantivy.Index(builder.build(), path=str(directory))
            self._rewrite_schema(FIXED_SCHEMA + [s.schema_entry() for s in self._slots.values()])
            fsync_dir(self.path)
        else:
            self._ensure_schema()
        self._index = tantivy.Index.open(str(directory))
        analysis.register_all(self._index)
        self._writer = self._index.writer(self._heap, self._threads)
        self._index.reload()
        self._open_searcher()

    def _meta(self) -> dict[str, Any]:
        return json.loads((self._tantivy_dir / "meta.json").read_bytes())

    def _rewrite_schema(self, schema: list[dict[str, Any]]) -> None:
        meta = self._meta()
        meta["schema"] = schema
        atomic_write(self._tantivy_dir / "meta.json", json.dumps(meta, indent=2).encode(), mode=0o644)

    def _ensure_schema(self) -> None:
        """Appends missing slots to the on-disk schema (only while no writer is open)."""
        current = {entry["name"]: entry for entry in self._meta()["schema"]}
        missing = [e for e in FIXED_SCHEMA if e["name"] not in current]  # fields added by later versions
        missing += [s.schema_entry() for s in self._slots.values() if s.name not in current]
        for slot in self._slots.values():
            entry = current.get(slot.name)
            if entry is not None and entry["type"] != slot.schema_entry()["type"]:
                raise InternalError(f"shard schema mismatch for slot {slot.name}")
        if missing:
            self._rewrite_schema(list(current.values()) + missing)

    def has_segments(self) -> bool:
        with self._lock:
            return bool(self._meta()["segments"]) or self._applied_seq > self._committed_seq

    def add_slots(self, slots: Iterable[Slot]) -> None:
        """Extends the schema: commit, close the writer, rewrite meta.json, reopen."""
        new = [s for s in slots if s.name not in self._slots]
        if not new:
            return
        with self._lock:
            self._refresh_locked()
            self._writer.wait_merging_threads()  # Consumes and drops the writer.
            del self._writer
            self._slots.update({s.name: s for s in new})
            self._ensure_schema()
            self._reopen()

    def _reopen(self) -> None:
        self._index = tantivy.Index.open(str(self._tantivy_dir))
        analysis.register_all(self._index)
        self._writer = self._index.writer(self._heap, self._threads)
        self._index.reload()
        self._open_searcher()

    def link_committed(self, into: Path) -> int:
        """Hard-links the files of this shard's commit into the new directory `into` (same file system;
        copies otherwise) after committing everything applied; returns the commit's checkpoint.

        Writes to the shard wait meanwhile. Background merges are finished and the writer closed
        first, so no file changes or disappears while it is linked; segment files never change once
        written, so the links stay a consistent copy after the writer is back. Lock files are left out.
        """
        with self._lock:
            if self._closed:
                raise InternalError(f"shard {self.number} of index [{self.index_name}] is closed")
            self._refresh_locked()
            self._writer.wait_merging_threads()
            del self._writer
            try:
                make_dirs(into)
                for entry in sorted(self._tantivy_dir.iterdir()):
                    if not entry.is_file() or entry.name.endswith((".lock", ".tmp")):
                        continue
                    try:
                        os.link(entry, into / entry.name)
                    except OSError:  # Another file system (or no hard links): copy.
                        shutil.copy2(entry, into / entry.name)
                fsync_dir(into)
            finally:
                self._reopen()
            return self._committed_seq

    @property
    def schema(self) -> tantivy.Schema:
        return self._index.schema

    def _read_checkpoint(self, legacy: int) -> int:
        """The checkpoint file's sequence number; `legacy` (the old marker's, or -1) when there is none."""
        path = self._tantivy_dir / CHECKPOINT_FILE
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return legacy
        try:
            seq = json.loads(raw)["committed_seq"]
            if isinstance(seq, bool) or not isinstance(seq, int) or seq < -1:
                raise ValueError(seq)
        except (ValueError, KeyError, TypeError) as exc:
            raise InternalError(f"shard {self.number} of index [{self.index_name}]: unreadable checkpoint file "
                                f"{path}") from exc
        return seq

    def _write_checkpoint(self, seq: int) -> None:
        atomic_write(self._tantivy_dir / CHECKPOINT_FILE, json.dumps({"committed_seq": seq}).encode(), mode=0o644)

    def _legacy_marker_seq(self) -> int:
        searcher = self._searcher
        hits = searcher.search(tantivy.Query.term_query(self._index.schema, "_id", LEGACY_MARKER_ID), 1).hits
        if not hits:
            return -1
        return int(searcher.doc(hits[0][1]).get_first("_ckpt"))

    def _drop_legacy_marker(self) -> None:
        """A shard written before the checkpoint file: keep its checkpoint in the file, then delete the
        marker document (in that order: a crash in between leaves both, and the file wins)."""
        if not (self._tantivy_dir / CHECKPOINT_FILE).exists():
            self._write_checkpoint(self._committed_seq)
        self._writer.delete_documents_by_term("_id", LEGACY_MARKER_ID)
        self._writer.commit()
        fsync_dir(self._tantivy_dir)
        self._index.reload()
        self._open_searcher()
        log.info("index [%s] shard %d: checkpoint moved from a marker document to %s", self.index_name,
                 self.number, CHECKPOINT_FILE)

    def _replay(self) -> None:
        replayed = 0
        try:
            for seq, payload in self._log.read_from(self._committed_seq + 1):
                op = LoggedOp.decode(payload)
                self._writer.delete_documents_by_term("_id", op.doc_id)
                if op.op == OP_INDEX:
                    assert op.source is not None
                    fields = self._build_fields(op.doc if op.doc is not None else op.source, op.doc_id)
                    self._writer.add_document(self._complete(fields, op.doc_id, seq, op.version, op.primary_term,
                                                             op.source, op.routing))
                self._applied_seq = seq
                replayed += 1
        except LogCorruptionError:
            raise
        except StrongroomError as exc:
            raise InternalError(f"replaying the write-ahead log of shard {self.number} of index "
                                f"[{self.index_name}] failed at sequence {self._applied_seq + 1}: {exc}") from exc
        if replayed:
            log.info("index [%s] shard %d: replayed %d operations from the write-ahead log",
                     self.index_name, self.number, replayed)
            self._refresh_locked()

    # -- reading -------------------------------------------------------------------------
    @property
    def searcher(self) -> tantivy.Searcher:
        return self._searcher

    @property
    def _searcher(self) -> tantivy.Searcher:
        return self._view[0]

    def _open_searcher(self) -> None:
        # The searcher and its memo of document frequencies, swapped as one tuple.
        self._view: tuple[tantivy.Searcher, dict[tuple[str, Any], int]] = (self._index.searcher(), {})

    def doc_freqs(self, searcher: tantivy.Searcher) -> dict[tuple[str, Any], int] | None:
        """A memo of document frequencies (field, term) → count for `searcher` if it is this shard's current
        one, else None. The postings estimate asks for the same terms again and again (CJK bigrams of names
        and addresses); each answer is ~8.5 µs of term-dictionary lookups over 12 segments at 1M documents."""
        current, memo = self._view
        return memo if current is searcher else None

    @property
    def committed_seq(self) -> int:
        return self._committed_seq

    @property
    def max_seq_no(self) -> int:
        return self._next_seq - 1

    def get(self, doc_id: str, *, realtime: bool = True) -> StoredDoc | None:
        if realtime:
            entry = self._vmap.get(doc_id)
            if entry is not None:
                if entry.deleted:
                    return None
                assert entry.source is not None
                return StoredDoc(doc_id, entry.seq_no, entry.version, entry.primary_term, entry.source, entry.routing)
        return self._get_committed(doc_id, self._searcher)

    def _get_committed(self, doc_id: str, searcher: tantivy.Searcher) -> StoredDoc | None:
        if not doc_id:
            return None
        hits = searcher.search(tantivy.Query.term_query(self._index.schema, "_id", doc_id), 1, count=False).hits
        if not hits:
            return None
        return stored_doc(searcher.doc(hits[0][1]))

    def _current_version(self, doc_id: str, auto_id: bool) -> VersionEntry | None:
        entry = self._vmap.get(doc_id)
        if entry is not None or auto_id:
            return entry
        searcher = self._searcher
        hits = searcher.search(tantivy.Query.term_query(self._index.schema, "_id", doc_id), 1, count=False).hits
        if not hits:
            return None
        address = [hits[0][1]]
        return VersionEntry(searcher.fast_field_values("_seq_no", address)[0],
                            searcher.fast_field_values("_version", address)[0],
                            searcher.fast_field_values("_primary_term", address)[0], False, None, None, 0.0)

    def num_docs(self) -> int:
        return self._searcher.num_docs

    def stats(self) -> dict[str, int]:
        deleted = sum((s.get("deletes") or {}).get("num_deleted_docs", 0) for s in self._meta()["segments"])
        return {"docs": self.num_docs(), "deleted": deleted}

    # -- writing -------------------------------------------------------------------------
    def write(self, ops: Sequence[WriteOp]) -> tuple[list[OpResult | StrongroomError], int]:
        """Applies ops in order. Returns per-op results (or errors) and the last sequence to sync."""
        results: list[OpResult | StrongroomError] = []
        records: list[tuple[int, bytes]] = []
        with self._lock:
            if self._closed:
                raise InternalError("shard is closed")
            pending: list[tuple[_Decision, int]] = []
            staged: dict[str, VersionEntry] = {}
            for op in ops:
                try:
                    outcome = self._decide(op, staged)
                except StrongroomError as exc:
                    results.append(exc)
                    continue
                if isinstance(outcome, OpResult):  # noop
                    results.append(outcome)
                    continue
                logged = outcome.logged
                seq = self._next_seq + len(records)
                records.append((seq, logged.encode()))
                pending.append((outcome, seq))
                staged[logged.doc_id] = VersionEntry(seq, logged.version, logged.primary_term, logged.op == OP_DELETE,
                                                     logged.source, logged.routing, self._clock())
                results.append(OpResult(logged.doc_id, outcome.result, logged.version, seq, self.primary_term,
                                        self.number))
            if not records:
                return results, self._applied_seq
            try:
                last = self._log.append(records)
            except LogError as exc:
                log.error("index [%s] shard %d: %s", self.index_name, self.number, exc)
                failure = InternalError("the write-ahead log could not be written; nothing was applied")
                return [failure if isinstance(r, OpResult) and r.result != "noop" else r for r in results], \
                    self._applied_seq
            self._next_seq = last + 1
            for decision, seq in pending:
                logged = decision.logged
                if decision.replaces:
                    self._writer.delete_documents_by_term("_id", logged.doc_id)
                if logged.op == OP_INDEX:
                    assert decision.fields is not None and logged.source is not None
                    self._writer.add_document(self._complete(decision.fields, logged.doc_id, seq, logged.version,
                                                             logged.primary_term, logged.source, logged.routing))
                self._applied_seq = seq
            self._vmap.update(staged)
            needs_refresh = len(self._vmap) > self._max_unrefreshed
        if needs_refresh:
            self.refresh()
        return results, last

    def sync(self, through: int) -> None:
        try:
            self._log.sync(through)
        except LogError as exc:
            log.error("index [%s] shard %d: %s", self.index_name, self.number, exc)
            raise InternalError("the write-ahead log could not be synced; the write is not acknowledged") from exc

    def _decide(self, op: WriteOp, staged: dict[str, VersionEntry]) -> "OpResult | _Decision":
        current = staged.get(op.doc_id) or self._current_version(op.doc_id, op.auto_id)
        exists = current is not None and not current.deleted
        conditions = op.conditions
        self._check_conditions(op, current, exists)
        if op.kind == "update":
            assert op.updater is not None
            stored = None
            if exists:
                assert current is not None
                source = current.source if current.source is not None else self._committed_source(op.doc_id)
                stored = StoredDoc(op.doc_id, current.seq_no, current.version, current.primary_term, source,
                                   current.routing)
            plan = op.updater(stored)
            if plan is NOOP:
                assert current is not None
                return OpResult(op.doc_id, "noop", current.version, current.seq_no, current.primary_term, self.number)
            assert isinstance(plan, IndexPlan)
            version = current.version + 1 if exists and current is not None else 1
            routing = op.routing if op.routing is not None else (current.routing if current else None)
            logged = LoggedOp(OP_INDEX, op.doc_id, version, self.primary_term, routing, plan.source, plan.doc)
            return _Decision(logged, plan.fields, "updated" if exists else "created", exists)
        version = self._next_version(conditions, current, exists)
        if op.kind == "delete":
            logged = LoggedOp(OP_DELETE, op.doc_id, version, self.primary_term, op.routing)
            return _Decision(logged, None, "deleted" if exists else "not_found", exists)
        assert op.source is not None
        logged = LoggedOp(OP_INDEX, op.doc_id, version, self.primary_term, op.routing, op.source, op.doc)
        return _Decision(logged, op.fields, "updated" if exists else "created", exists)

    def _committed_source(self, doc_id: str) -> bytes:
        stored = self._get_committed(doc_id, self._searcher)
        if stored is None:
            raise InternalError("document vanished during an update")
        return stored.source

    def _conflict(self, doc_id: str, message: str) -> VersionConflictError:
        return VersionConflictError(f"[{doc_id}]: version conflict, {message}", index=self.index_name,
                                    uuid=self.index_uuid, shard=self.number)

    def _check_conditions(self, op: WriteOp, current: VersionEntry | None, exists: bool) -> None:
        c = op.conditions
        if op.kind == "create" and exists:
            assert current is not None
            raise self._conflict(op.doc_id, f"document already exists (current version [{current.version}])")
        if c.if_seq_no is not None:
            if not exists:
                if op.kind == "update":
                    raise DocumentMissingError(self.index_name, self.index_uuid, self.number, op.doc_id)
                raise self._conflict(op.doc_id, f"required seqNo [{c.if_seq_no}], primary term [{c.if_primary_term}] "
                                                "but no document was found")
            assert current is not None
            if current.seq_no != c.if_seq_no or current.primary_term != c.if_primary_term:
                raise self._conflict(op.doc_id, f"required seqNo [{c.if_seq_no}], primary term [{c.if_primary_term}]."
                                                f" current document has seqNo [{current.seq_no}] and primary term "
                                                f"[{current.primary_term}]")
        if c.version_type in ("external", "external_gte") and c.version is not None and current is not None:
            higher = current.version >= c.version if c.version_type == "external" else current.version > c.version
            if higher:
                relation = "higher or equal to" if c.version_type == "external" else "higher than"
                raise self._conflict(op.doc_id, f"current version [{current.version}] is {relation} the one "
                                                f"provided [{c.version}]")

    @staticmethod
    def _next_version(c: Conditions, current: VersionEntry | None, exists: bool) -> int:
        if c.version_type in ("external", "external_gte") and c.version is not None:
            return c.version
        if current is None:
            return 1
        return current.version + 1

    def _complete(self, fields: tantivy.Document, doc_id: str, seq: int, version: int, term: int, source: bytes,
                  routing: str | None) -> tantivy.Document:
        fields.add_text("_id", doc_id)
        fields.add_integer("_seq_no", seq)
        fields.add_integer("_version", version)
        fields.add_integer("_primary_term", term)
        fields.add_bytes("_source", source)
        if routing is not None:
            fields.add_text("_routing", routing)
            fields.add_text("_field_names", "_routing")
        return fields

    # -- refresh -------------------------------------------------------------------------
    def refresh(self) -> None:
        with self._lock:
            self._refresh_locked()

    def _refresh_locked(self) -> None:
        seq = self._applied_seq
        if seq == self._committed_seq or self._closed:
            self._notify(self._committed_seq)
            return
        self._log.sync(seq)  # The index must never be ahead of the durable log.
        self._writer.commit()
        fsync_dir(self._tantivy_dir)  # tantivy renames meta.json but does not fsync the directory.
        self._write_checkpoint(seq)  # after the commit, before the log is cut (see the module docstring)
        self._index.reload()
        self._open_searcher()
        self._committed_seq = seq
        horizon = self._clock() - GC_DELETES_SECONDS
        self._vmap = {doc_id: entry for doc_id, entry in self._vmap.items()
                      if entry.seq_no > seq or (entry.deleted and entry.at > horizon)}
        self._log.truncate_before(seq + 1)
        self._notify(seq)

    def wait_for_refresh(self, seq: int) -> concurrent.futures.Future[None]:
        """A future resolved once `seq` is searchable (refresh=wait_for)."""
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        with self._waiters_lock:
            if self._committed_seq >= seq or self._closed:
                future.set_result(None)
            else:
                self._waiters.append((seq, future))
        return future

    def _notify(self, seq: int) -> None:
        with self._waiters_lock:
            ready = [f for s, f in self._waiters if s <= seq]
            self._waiters = [(s, f) for s, f in self._waiters if s > seq]
        for future in ready:
            if not future.done():
                future.set_result(None)

    def needs_refresh(self) -> bool:
        return self._applied_seq != self._committed_seq

    @property
    def has_waiters(self) -> bool:
        """Whether a refresh=wait_for write waits for the next refresh."""
        return bool(self._waiters)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                self._refresh_locked()
            finally:
                self._closed = True
                self._writer.wait_merging_threads()
                del self._writer
                self._log.close()
                with self._waiters_lock:
                    waiters, self._waiters = self._waiters, []
                for _seq, future in waiters:
                    if not future.done():
                        future.set_result(None)
