"""Key rotation: a new data key version for new writes, a background re-seal of what older versions
sealed, and the offline master key rewrap.

Rotating one index's data key (`rotate_keys`; `POST /_strongroom/keys/{index}/_rotate`):

1. `Vault.rotate` adds a data key version and persists the blob in index.json (atomically) before
   any document is sealed with it, then drops the cached keys: new writes use the new version.
2. A `ResealJob` (a thread) walks every document from a point-in-time view of each shard. A
   document whose sealed source names an older version (bytes 1..4 of the envelope: no key is
   needed to tell) is opened and sealed again with the current version, by a write conditional on
   the sequence number and primary term the view saw. A conflict means the document changed or
   went away meanwhile, and any such write sealed with the current version: it is skipped. Passes
   repeat until one finds nothing older (at most `MAX_PASSES`), which also catches a write that
   raced the rotation itself with the previous keys. Re-sealing bumps `_version` and `_seq_no`,
   as `_update_by_query` does; `_source` comes back byte for byte.

Crash safety: versions are never dropped here, so every document opens with whatever version
sealed it, midway or not. Rotating again, or `resume`, re-seals what is left. `progress` counts by
scanning the stored envelopes, so it is right after a restart too. A later `prune` could drop the
versions no document uses any more; nothing does yet.

Token (HMAC) keys derive from data key version 1 only and never rotate here: blind tokens stay
valid. Rotating them means reindexing into a new index, with new data keys.

Master key rotation is offline (`rewrap_all`): every index's data keys are unwrapped with the old
master key and wrapped with the new one, under the new key's check value. The data keys do not
change, so no document is touched. The operator then starts the server with the new key; the old
one is refused ("sealed") from then on.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hmac
import json
import logging
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..crypto.keys import DataKeys, KeyProblem, MasterKey
from ..crypto.seal import FORMAT_VERSION
from ..engine.index import Index, WriteRequest
from ..engine.node import Engine, EngineStartError
from ..engine.plan import MatchAll
from ..engine.search import Cursor, SearchSpec, SortKey, targets_for
from ..engine.shard import Conditions, OpResult, StoredDoc
from ..errors import IllegalArgumentError, StrongroomError
from ..jsonio import loads_strict
from .vault import Vault

log = logging.getLogger("strongroom.keys")

TOKEN_KEYS_NOTE = "unchanged; rotating them means reindexing into a new index"
BATCH_SIZE = 500
MAX_PASSES = 4
# One point-in-time view per shard holds an address per document (tens of bytes each).
MAX_DOCS_PER_SHARD = 100_000_000

# (document, its JSON) → (what the engine indexes, its JSON): the session's `_indexable`, so blind
# tokens are derived exactly as for any other write.
Indexable = Callable[[Any, bytes], tuple[Any, bytes]]


def sealed_version(source: bytes) -> int | None:
    """The data key version named by a sealed source's envelope (None: not a sealed source)."""
    if len(source) < 5 or source[0] != FORMAT_VERSION:
        return None
    return int.from_bytes(source[1:5], "big")


def _documents(index: Index, batch_size: int) -> Iterator[list[StoredDoc]]:
    """Every live document of `index`, a page at a time, from one point-in-time view per shard."""
    spec = SearchSpec(MatchAll(), size=batch_size, sort=[SortKey("_doc")])
    for target in targets_for([index]):
        cursor = Cursor([target], spec, limit=MAX_DOCS_PER_SHARD)
        while cursor.remaining():
            yield [hit.doc for hit in cursor.next_page(batch_size)]


def _sealed_keys(vault: Vault, index: Index) -> DataKeys:
    keys = vault.keys(index)
    if keys is None:
        raise IllegalArgumentError(f"index [{index.name}] has no data keys: its sources are not sealed")
    return keys


@dataclass
class ResealCounts:
    resealed: int = 0  # sealed again with the current version
    skipped: int = 0  # changed or deleted meanwhile (that write used the current version)
    failed: int = 0  # did not open (integrity check): left as they are, and counted as remaining


def reseal(vault: Vault, index: Index, indexable: Indexable, *, stop: threading.Event | None = None,
           limit: int | None = None, batch_size: int = BATCH_SIZE) -> ResealCounts:
    """Seal again, with the current version, every document an older version sealed. Blocking.

    `stop` ends the walk between batches; `limit` re-seals at most that many documents (a test
    stops midway with it, as a crash would). Each batch is durable when its write returns.
    """
    counts = ResealCounts()
    attempted = 0
    for _pass in range(MAX_PASSES):
        current = _sealed_keys(vault, index).current_version
        index.refresh()  # The view must hold every acknowledged write.
        found = failed = 0
        for page in _documents(index, batch_size):
            if stop is not None and stop.is_set():
                break
            older = [doc for doc in page if (v := sealed_version(doc.source)) is not None and v < current]
            if limit is not None:
                older = older[:max(0, limit - attempted)]
            found += len(older)
            attempted += len(older)
            requests = []
            for doc in older:
                try:
                    plain = vault.open(index, doc.doc_id, doc.source)
                    derived, indexed = indexable(loads_strict(plain), plain)
                except StrongroomError:
                    failed += 1  # Never guess: it keeps its version and shows as remaining.
                    continue
                request = WriteRequest("index", doc.doc_id, derived, vault.seal(index, doc.doc_id, plain),
                                       Conditions(doc.seq_no, doc.primary_term), doc.routing)
                request.indexed = indexed
                requests.append(request)
            for outcome in index.write(requests) if requests else []:
                if isinstance(outcome.result, OpResult):
                    counts.resealed += 1
                elif outcome.result.status == 409:
                    counts.skipped += 1
                else:
                    failed += 1
                    log.warning("index [%s]: re-sealing a document failed: %s", index.name, outcome.result)
            if limit is not None and attempted >= limit:
                break
        counts.failed = failed  # What the last pass could not re-seal is what is left.
        if (stop is not None and stop.is_set()) or (limit is not None and attempted >= limit):
            return counts
        if found == failed and _sealed_keys(vault, index).current_version == current:
            break  # Nothing older is left that could be re-sealed.
    if counts.failed:
        log.warning("index [%s]: %d documents could not be opened and keep an older key version", index.name,
                    counts.failed)
    return counts


class ResealJob:
    """The background re-seal of one index: one daemon thread running `reseal`."""

    def __init__(self, vault: Vault, index: Index, indexable: Indexable) -> None:
        self.id = f"reseal:{secrets.token_hex(6)}"
        self.index_name = index.name
        self.counts = ResealCounts()
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(vault, index, indexable),
                                        name=f"reseal-{index.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self, vault: Vault, index: Index, indexable: Indexable) -> None:
        try:
            self.counts = reseal(vault, index, indexable, stop=self._stop)
            log.info("re-seal of index [%s] done: %d documents sealed again, %d changed meanwhile, %d failed",
                     self.index_name, self.counts.resealed, self.counts.skipped, self.counts.failed)
            if self.counts.failed:
                self.error = (f"{self.counts.failed} documents could not be opened (integrity check) and keep "
                              "an older key version")
        except StrongroomError as exc:  # Messages name indices and reasons only.
            self.error = str(exc)
            log.warning("re-seal of index [%s] stopped: %s", self.index_name, exc)
        except Exception:  # noqa: BLE001 - a background thread: log it, report it, never die silently.
            self.error = "internal error (see the server log)"
            log.exception("re-seal of index [%s] failed", self.index_name)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """True once the job has ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()


def _start_locked(vault: Vault, index: Index, indexable: Indexable) -> ResealJob:
    job = vault.jobs.get(index.uuid)
    if job is None or not job.running:
        job = vault.jobs[index.uuid] = ResealJob(vault, index, indexable)
        job.start()
    return job


def _answer(index: Index, version: int, job: ResealJob) -> dict[str, Any]:
    return {"index": index.name, "key_version": version, "reseal": {"task": job.id}, "token_keys": TOKEN_KEYS_NOTE}


def rotate_keys(vault: Vault, index: Index, indexable: Indexable) -> dict[str, Any]:
    """Add a data key version and start re-sealing. A re-seal still running stops first (what it
    did stays valid); the new job re-seals everything older than the new version."""
    with vault.jobs_lock:  # One rotation of a node at a time.
        running = vault.jobs.get(index.uuid)
        if running is not None:
            running.stop()
            running.wait()
        version = vault.rotate(index)
        log.info("index [%s]: data key version %d seals new writes; re-sealing older documents", index.name,
                 version)
        return _answer(index, version, _start_locked(vault, index, indexable))


def resume(vault: Vault, index: Index, indexable: Indexable) -> dict[str, Any]:
    """Re-seal with the current version, without adding one (after a restart stopped a job)."""
    version = _sealed_keys(vault, index).current_version
    with vault.jobs_lock:
        return _answer(index, version, _start_locked(vault, index, indexable))


def progress(vault: Vault, index: Index) -> dict[str, Any]:
    """Counts from a scan of the stored envelopes (right after a restart too), and the job's state."""
    current = _sealed_keys(vault, index).current_version
    index.refresh()
    total = at_current = older = 0
    for page in _documents(index, BATCH_SIZE):
        total += len(page)
        for doc in page:
            version = sealed_version(doc.source)
            if version == current:
                at_current += 1
            elif version is not None and version < current:
                older += 1
    with vault.jobs_lock:
        job = vault.jobs.get(index.uuid)
    return {"index": index.name, "key_version": current, "documents_total": total,
            "documents_resealed": at_current, "documents_remaining": older,
            "running": job is not None and job.running, "task": job.id if job is not None else None,
            "error": job.error if job is not None else None}


# ---------------------------------------------------------------------------------------------
# Master key rotation (offline)


class RewrapError(Exception):
    """The rewrap refused or failed; the message is safe to print (files, indices, reasons only)."""


def rewrap(old_master: MasterKey, new_master: MasterKey, blob: bytes) -> bytes:
    """The same data keys (every version), wrapped by `new_master` under its check value.

    `KeyProblem` when `old_master` does not open `blob`. The result is checked to open with the new
    key to exactly the keys the old blob held before it is returned.
    """
    keys = DataKeys.open(old_master, blob)  # Validates the format and the old key.
    doc = json.loads(blob)
    try:
        for entry in doc["versions"]:
            data_key = old_master.unwrap(base64.b64decode(entry["wrapped"], validate=True))
            entry["wrapped"] = base64.b64encode(new_master.wrap(data_key)).decode("ascii")
    except (ValueError, binascii.Error):  # InvalidUnwrap is a ValueError.
        raise KeyProblem("this index's key blob is malformed") from None
    doc["master_check"] = new_master.check.hex()
    out = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")
    again = DataKeys.open(new_master, out)
    if again.versions != keys.versions or not all(
            hmac.compare_digest(again.sealing_key(v), keys.sealing_key(v)) for v in keys.versions):
        raise KeyProblem("rewrapping changed this index's keys")  # Cannot happen; never store it if it does.
    return out


@dataclass
class RewrapReport:
    rewrapped: list[str] = field(default_factory=list)  # indices now wrapped by the new key
    already: list[str] = field(default_factory=list)  # wrapped by the new key before (an earlier, interrupted run)
    plain: list[str] = field(default_factory=list)  # from before sealing: no keys


def rewrap_all(data_dir: Path, old_master: MasterKey, new_master: MasterKey) -> RewrapReport:
    """Rewrap the data keys of every index of a stopped node under `new_master`.

    Takes the data directory's lock (`node.lock`, as the server does), so it refuses while a server
    or another offline command runs; the caller must not hold it. Every index is checked before
    any is changed: one that neither key opens stops everything. Each index's new blob is written
    atomically, so an interrupted run leaves each index wrapped by one key or the other, and running
    it again with the same keys finishes the rest. Then start the server with the new key.
    """
    if hmac.compare_digest(old_master.check, new_master.check):
        raise RewrapError("the new master key is the old one")
    data_dir = Path(data_dir)
    if not (data_dir / "indices").is_dir():
        raise RewrapError(f"no Strongroom data directory at {data_dir}")
    fd = os.open(data_dir / "node.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RewrapError(f"the data directory {data_dir} is in use by another Strongroom process;"
                              " stop the server first") from None
        try:
            engine = Engine(data_dir)
        except EngineStartError as exc:
            raise RewrapError(str(exc)) from None
        try:
            return _rewrap_engine(engine, old_master, new_master)
        finally:
            engine.close()
    finally:
        os.close(fd)  # Releases the lock.


def _rewrap_engine(engine: Engine, old_master: MasterKey, new_master: MasterKey) -> RewrapReport:
    report = RewrapReport()
    todo: list[tuple[Index, bytes]] = []
    for name in engine.names():
        index = engine.index(name)
        if index.keys is None:
            report.plain.append(name)
            continue
        try:
            DataKeys.open(new_master, index.keys)
            report.already.append(name)
            continue
        except KeyProblem:
            pass
        try:
            todo.append((index, rewrap(old_master, new_master, index.keys)))
        except KeyProblem as problem:
            raise RewrapError(f"index [{name}]: {problem.reason}; nothing was changed") from None
    for index, blob in todo:
        try:
            index.replace_keys(blob)
        except StrongroomError as exc:
            raise RewrapError(f"index [{index.name}]: {exc}; indices before it are rewrapped already, run "
                              "again with the same keys to finish") from None
        report.rewrapped.append(index.name)
    return report
