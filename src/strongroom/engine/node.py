"""The engine of one node: its indices on disk, their lifecycle, and the periodic refresher.

The engine never holds a key and never decides who may do what: the security layer above owns
the only reference to it and hands the api layer a policy-checked session instead.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import threading
import time
import uuid as uuidlib
from pathlib import Path
from collections.abc import Callable
from typing import Any

from ..errors import IndexNotFoundError, InternalError, ResourceAlreadyExistsError
from .fsutil import atomic_write, fsync_dir, make_dirs
from .index import META_FILE, Index, normalize_settings, validate_index_name
from .wal import LogCorruptionError

log = logging.getLogger(__name__)


class EngineStartError(Exception):
    """The engine cannot start on this data directory; the message says what and where."""


class Engine:
    def __init__(self, data_dir: Path, *, writer_heap_bytes: int = 64 << 20, writer_threads: int = 1,
                 refresh_tick: float = 0.1) -> None:
        self.data_dir = data_dir
        self._indices_dir = data_dir / "indices"
        self._heap = writer_heap_bytes
        self._threads = writer_threads
        self._lock = threading.RLock()
        self._indices: dict[str, Index] = {}
        self._closed = threading.Event()
        make_dirs(self._indices_dir)
        self._id_lock = threading.Lock()
        self._id_prefix = os.urandom(6)
        self._id_counter = 0
        self._load()
        self._refresher = threading.Thread(target=self._refresh_loop, args=(refresh_tick,), name="refresher",
                                           daemon=True)
        self._refresher.start()

    def _load(self) -> None:
        for entry in sorted(self._indices_dir.iterdir()):
            if entry.name.startswith("."):  # An interrupted create or delete: finish it.
                shutil.rmtree(entry, ignore_errors=True)
                continue
            meta_path = entry / META_FILE
            try:
                meta = json.loads(meta_path.read_bytes())
            except (OSError, ValueError) as exc:
                raise EngineStartError(f"index metadata unreadable: {meta_path}: {exc}") from exc
            try:
                index = self._open(entry, meta)
            except LogCorruptionError as exc:
                raise EngineStartError(f"index [{meta.get('name')}]: {exc}") from exc
            self._indices[index.name] = index
        fsync_dir(self._indices_dir)

    def _open(self, path: Path, meta: dict[str, Any]) -> Index:
        return Index(path, meta, writer_heap_bytes=self._heap, writer_threads=self._threads,
                     id_generator=self.new_id)

    def new_id(self) -> str:
        """20-character ids like Elasticsearch's: time-ordered, unique per node, URL-safe."""
        with self._id_lock:
            self._id_counter += 1
            counter = self._id_counter
        raw = int(time.time() * 1000).to_bytes(6, "big") + self._id_prefix[:3] + counter.to_bytes(6, "big")
        return base64.urlsafe_b64encode(raw).decode()

    # -- indices ---------------------------------------------------------------------------
    def names(self) -> list[str]:
        return sorted(self._indices)

    def index(self, name: str) -> Index:
        index = self._indices.get(name)
        if index is None:
            raise IndexNotFoundError(name)
        return index

    def exists(self, name: str) -> bool:
        return name in self._indices

    def create_index(self, name: str, settings: Any = None, mappings: Any = None, *, keys: bytes | None = None
                     ) -> Index:
        """`keys`: the index's wrapped data keys, opaque to the engine (stored with its metadata)."""
        validate_index_name(name)
        normalized = {k: v for k, v in normalize_settings(settings).items() if v is not None}
        with self._lock:
            if name in self._indices:
                raise ResourceAlreadyExistsError(name, self._indices[name].uuid)
            uuid = base64.urlsafe_b64encode(uuidlib.uuid4().bytes).decode().rstrip("=")
            meta = Index.new_meta(name, uuid, normalized, mappings)
            if keys is not None:
                meta["keys"] = base64.b64encode(keys).decode()
            staging = self._indices_dir / f".creating-{uuid}"
            final = self._indices_dir / uuid
            make_dirs(staging)
            try:
                atomic_write(staging / META_FILE, json.dumps(meta, ensure_ascii=False, indent=1).encode())
                index = self._open(staging, meta)
                index.close()
                os.replace(staging, final)
                fsync_dir(self._indices_dir)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            index = self._open(final, meta)
            self._indices[name] = index
            return index

    def restore_index(self, name: str, meta: dict[str, Any], fill: Callable[[Path], None]) -> Index:
        """Create index `name` from a snapshot's metadata; `fill(directory)` writes its shard files.

        The new index gets a new uuid and keeps the sealing binding of the one snapshotted
        (`seal_uuid`), so its sealed sources open. Until it is complete it lives in a staging
        directory that an interrupted restore leaves for the next start to remove.
        """
        validate_index_name(name)
        with self._lock:
            if name in self._indices:
                raise ResourceAlreadyExistsError(name, self._indices[name].uuid)
        uuid = base64.urlsafe_b64encode(uuidlib.uuid4().bytes).decode().rstrip("=")
        restored = {**meta, "name": name, "uuid": uuid, "seal_uuid": meta.get("seal_uuid") or meta["uuid"]}
        staging = self._indices_dir / f".restoring-{uuid}"
        final = self._indices_dir / uuid
        make_dirs(staging)
        try:
            fill(staging)
            atomic_write(staging / META_FILE, json.dumps(restored, ensure_ascii=False, indent=1).encode())
            index = self._open(staging, restored)  # Proves the files open (and replays nothing).
            index.close()
            with self._lock:
                if name in self._indices:
                    raise ResourceAlreadyExistsError(name, self._indices[name].uuid)
                os.replace(staging, final)
                fsync_dir(self._indices_dir)
                index = self._open(final, restored)
                self._indices[name] = index
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return index

    def get_or_create(self, name: str, *, keys: bytes | None = None) -> tuple[Index, bool]:
        index = self._indices.get(name)
        if index is not None:
            return index, False
        try:
            return self.create_index(name, keys=keys), True
        except ResourceAlreadyExistsError:  # Created concurrently.
            return self.index(name), False

    def delete_index(self, name: str) -> None:
        with self._lock:
            index = self.index(name)
            del self._indices[name]
        index.close()
        doomed = self._indices_dir / f".deleting-{index.uuid}"
        os.replace(index.path, doomed)
        fsync_dir(self._indices_dir)
        shutil.rmtree(doomed, ignore_errors=True)

    # -- refresh ---------------------------------------------------------------------------
    def _refresh_loop(self, tick: float) -> None:
        while not self._closed.wait(tick):
            now = time.monotonic()
            for index in list(self._indices.values()):
                interval = index.refresh_interval
                if interval is None or now - index.last_refresh < interval:
                    continue
                if index.search_idle(now) and not any(shard.has_waiters for shard in index.shards):
                    # Nobody searches it: no commit until a search, a refresh=wait_for write, or the
                    # shard's own bound on unrefreshed operations (max_unrefreshed) asks for one.
                    continue
                try:
                    if any(shard.needs_refresh() for shard in index.shards):
                        index.refresh()
                    else:
                        index.last_refresh = now
                except Exception:  # Keep refreshing the other indices; the failure is logged.
                    log.exception("periodic refresh of index [%s] failed", index.name)

    def close(self) -> None:
        self._closed.set()
        self._refresher.join(timeout=10)
        with self._lock:
            indices, self._indices = list(self._indices.values()), {}
        errors = []
        for index in indices:
            try:
                index.close()
            except Exception as exc:  # Close the rest; report all.
                errors.append(exc)
                log.exception("closing index [%s] failed", index.name)
        if errors:
            raise InternalError("some indices did not close cleanly")
