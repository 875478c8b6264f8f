"""Parallel ingest: blind tokens and sealing of a large write batch in worker processes.

A protected write is mostly Python per document: analysing its texts, one HMAC per token, AES-GCM
of its source (`Session._request`). One process runs Python on one core, so a bulk load used one
core of a machine with several. With `ingest.workers` > 0, a batch of at least `MIN_PARALLEL`
documents for an index with protected fields is cut into shares of `SHARE` documents, all queued to
the workers at once; the request hands each share to the engine, in order, as soon as it is back,
while the workers derive the next ones (derivation and the engine's part, mapping, tantivy
documents and the write-ahead log, each take about half a protected write). Smaller batches (single
documents, small bulks) stay in the request: a round trip to a worker costs more than it saves.
A bulk's source lines reach the workers unparsed: the worker parses each strictly and screens it for
personal data in unprotected fields, the request's own costs before (the server set the pace of a
load). Findings come back with the derived document, and the request warns or refuses as
index.pii_detection says; one that does not parse comes back underived, and the request parses it
again to report its error.

What a worker holds: the mapping and the data keys of the indices whose batches it was given (sent
over its pipe with each task, kept in memory so its token memos stay warm), never the master key;
it opens no file of the data directory and writes nothing. It exits with the server: it checks
every second that its parent is still the process that started it (a `kill -9` of the server
leaves no worker behind).

Failures never lose or corrupt a write: a document a worker cannot derive (a value its field cannot
take) is derived again by the request, which reports the error in the document's own bulk item; a
worker that dies (or a pool that cannot start) makes the request derive the rest of the batch
itself, and the next batch gets a fresh pool. Each share is written (and fsynced) before the bulk
answers, as a bulk's items always were; like Elasticsearch, a bulk is not atomic.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson

from ..crypto.keys import DataKeys
from ..crypto.seal import seal
from ..engine.mapping import Mapping
from ..jsonio import loads_document
from ..pii import find_in_document

__all__ = ["MIN_PARALLEL", "IngestPool", "Prepared", "default_workers"]

log = logging.getLogger("strongroom.ingest")

MIN_PARALLEL = 200  # documents: below this a batch is derived by the request alone
SHARE = 250  # documents a worker derives at a time; the request writes one share while the next is derived
MAX_WORKERS = 4

# (doc_id, document or None, source) in; (indexed JSON, sealed source, findings) out, or None: the request
# parses, screens and derives it again. None in: the source is still to be parsed and screened (by the
# worker); findings: path -> detector of values that look like personal data in unprotected fields (None
# when there are none, or when the document came parsed: the request screened it).
Item = tuple[str, Any, bytes]
Prepared = tuple[bytes, bytes, dict[str, str] | None]


def default_workers() -> int:
    """One less than the CPUs this process may use (the server keeps one for the engine's part), at most 4."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(0, min(MAX_WORKERS, cpus - 1))


# --------------------------------------------------------------------------- the worker side

_protectors: dict[tuple[str, bytes], tuple[Any, DataKeys]] = {}


def _watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(0)
        threading.Event().wait(1.0)


def _start_worker(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the server, which shuts the pool down
    threading.Thread(target=_watch_parent, args=(parent,), name="strongroom-ingest-parent", daemon=True).start()


def _derive_share(spec: tuple[str, bytes, str, tuple[dict[int, bytes], bytes]], items: list[Item]
                  ) -> list[Prepared | None]:
    """Worker: blind tokens and sealed source of each item; None for one that fails (the request
    derives it again and reports its error). An item whose document is None is parsed from its source
    (strictly, as the request would; None if it does not parse) and screened for personal data in
    unprotected fields (pii.find_in_document): its findings come back with it, for the request to warn
    or refuse as index.pii_detection says."""
    from .protect import Protector

    cache_key, mapping_json, seal_uuid, shared_keys = spec
    entry = _protectors.get((cache_key, mapping_json))
    if entry is None:
        keys = DataKeys.from_shared(shared_keys)
        mapping = Mapping.parse_definition(orjson.loads(mapping_json))
        if len(_protectors) >= 16:
            _protectors.clear()
        entry = _protectors[(cache_key, mapping_json)] = (Protector(None, keys, mapping=mapping), keys)
    protector, keys = entry
    out: list[Prepared | None] = []
    for doc_id, document, source in items:
        try:
            findings = None
            if document is None:
                document = loads_document(source)
                findings = find_in_document(document, protector.mapping.fields) or None
            indexed = orjson.dumps(protector.derive(document))
            out.append((indexed, seal(keys, source, index_uuid=seal_uuid, doc_id=doc_id), findings))
        except Exception:  # noqa: BLE001 - whatever it is, the request meets it again and reports it
            out.append(None)
    return out


# --------------------------------------------------------------------------- the server side

class IngestPool:
    """Worker processes (spawned on first use) that derive and seal shares of large write batches."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("an ingest pool needs at least one worker")
        self.workers = workers
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.derived = 0  # documents the workers derived and sealed (for tests and monitoring)

    def _pool(self) -> concurrent.futures.ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise RuntimeError("the ingest pool is closed")
            if self._executor is None:
                # spawn: the server has threads, and a forked child would inherit their locks
                self._executor = concurrent.futures.ProcessPoolExecutor(
                    self.workers, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_worker, initargs=(os.getpid(),))
            return self._executor

    def _discard(self, broken: concurrent.futures.ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is broken:
                self._executor = None
        broken.shutdown(wait=False, cancel_futures=True)

    def pids(self) -> list[int]:
        """The worker processes running now (for memory figures and tests)."""
        executor = self._executor
        processes = getattr(executor, "_processes", None) or {}
        return sorted(p.pid for p in list(processes.values()) if p.pid is not None)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    async def shares(self, spec: tuple[str, bytes, str, tuple[dict[int, bytes], bytes]], items: Sequence[Item]
                     ) -> AsyncIterator[list[Prepared | None]]:
        """Indexed JSON and sealed source of every item, in order, a share of `SHARE` items at a time:
        every share is queued at once, and each is yielded as soon as it and those before it are done,
        so the request writes one share while the workers derive the next. None for an item the
        workers did not derive (the request derives it itself)."""
        chunks = [list(items[start:start + SHARE]) for start in range(0, len(items), SHARE)]
        executor = None
        try:
            executor = self._pool()
            loop = asyncio.get_running_loop()
            futures = [loop.run_in_executor(executor, _derive_share, spec, chunk) for chunk in chunks]
        except (RuntimeError, OSError) as exc:  # closed, broken (a worker died while idle), cannot start processes
            log.warning("ingest workers unavailable (%s): deriving in the request", exc)
            if executor is not None and isinstance(exc, concurrent.futures.BrokenExecutor):
                self._discard(executor)  # the next batch gets new workers
            for chunk in chunks:
                yield [None] * len(chunk)
            return
        broken = False
        try:
            for chunk, future in zip(chunks, futures):
                share: list[Prepared | None] | None = None
                if not broken:
                    try:
                        share = await future
                    except concurrent.futures.BrokenExecutor:
                        log.warning("an ingest worker died: the rest of this batch is derived in the request, "
                                    "the next batch gets new workers")
                        self._discard(executor)
                        broken = True
                    except Exception as exc:  # noqa: BLE001 - this share is derived in the request instead
                        log.warning("an ingest share failed (%s): derived in the request", type(exc).__name__)
                if share is None:
                    yield [None] * len(chunk)
                else:
                    self.derived += sum(prepared is not None for prepared in share)
                    yield share
        finally:
            for future in futures:
                future.cancel()
