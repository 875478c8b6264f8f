"""The vault: seals documents on their way into the engine and opens them on their way out.

It holds the master key (loaded at start, never written to the data directory) and each index's
data keys, unwrapped on first use from the wrapped blob the engine stores with the index's
metadata. The engine only ever sees sealed `_source` bytes; it never holds a key.

An index created before sealing existed has no keys: its sources are plain JSON and stay readable.

Rotation (`rotation.py`): `rotate` adds a data key version, persisted with the index's metadata
before anything is sealed with it; older versions stay, so whatever they sealed still opens.
"""

from __future__ import annotations

import threading
from typing import Any

from ..crypto.keys import DataKeys, KeyProblem, MasterKey
from ..crypto.seal import SealError, seal, unseal
from ..engine.index import Index
from ..errors import IllegalArgumentError, InternalError


class Vault:
    def __init__(self, master: MasterKey, *, ingest: Any = None) -> None:
        self._master = master
        # Worker processes that derive and seal shares of large write batches (ingest.IngestPool), or None.
        self.ingest = ingest
        self._keys: dict[str, DataKeys] = {}  # by index uuid
        self._lock = threading.Lock()
        # Background re-seal jobs by index uuid (rotation.py): shared by every session of the node.
        self.jobs: dict[str, Any] = {}
        self.jobs_lock = threading.Lock()

    def new_index_keys(self) -> bytes:
        """Wrapped data keys for a new index."""
        _keys, blob = DataKeys.create(self._master)
        return blob

    def keys(self, index: Index) -> DataKeys | None:
        if index.keys is None:
            return None
        cached = self._keys.get(index.uuid)
        if cached is None:
            with self._lock:
                cached = self._keys.get(index.uuid)
                if cached is None:
                    try:
                        cached = DataKeys.open(self._master, index.keys)
                    except KeyProblem as problem:
                        raise InternalError(f"index [{index.name}]: {problem.reason}") from None
                    self._keys[index.uuid] = cached
        return cached

    def rotate(self, index: Index) -> int:
        """Add a data key version to `index`; returns it. New writes are sealed with it from now on.

        Order matters for crash safety: the new blob (every older version still in it) is persisted
        in index.json before the cached keys are dropped, so no document is ever sealed with a
        version that a crash could lose. The new version is added to a fresh copy of the keys, never
        to the cached one that concurrent writes are sealing with.
        """
        if index.keys is None:
            raise IllegalArgumentError(f"index [{index.name}] has no data keys: its sources are not sealed")
        with self._lock:  # One rotation at a time, and no cache load in between.
            try:
                fresh = DataKeys.open(self._master, index.keys)
                blob = fresh.add_version(self._master)
            except KeyProblem as problem:
                raise InternalError(f"index [{index.name}]: {problem.reason}") from None
            index.replace_keys(blob)
            self._keys.pop(index.uuid, None)
        return fresh.current_version

    def seal(self, index: Index, doc_id: str, plaintext: bytes) -> bytes:
        keys = self.keys(index)
        if keys is None:
            return plaintext
        return seal(keys, plaintext, index_uuid=index.seal_uuid, doc_id=doc_id)

    def open(self, index: Index, doc_id: str, stored: bytes) -> bytes:
        keys = self.keys(index)
        if keys is None:
            return stored
        try:
            return unseal(keys, stored, index_uuid=index.seal_uuid, doc_id=doc_id)
        except SealError:
            # Tampered or misplaced ciphertext: never guess, never show it.
            raise InternalError(f"a stored document of index [{index.name}] failed its integrity check") from None

    def check_keys(self, blob: bytes) -> None:
        """Raises KeyProblem unless this node's master key opens the wrapped data keys `blob`."""
        DataKeys.open(self._master, blob)

    def sealed(self, index: Index) -> bool:
        return index.keys is not None
