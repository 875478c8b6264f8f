"""Snapshots to shared-file-system (`fs`) repositories, behind Elasticsearch's `_snapshot` API.

What a snapshot holds: per index, its metadata as persisted (settings, mapping, slots, and the data
keys *wrapped* by the master key) and, per shard, the files of one tantivy commit: sealed `_source`
bytes, blind tokens, and the fields mapped without protection. That is exactly what the data
directory holds, so a stolen repository is as useless as a stolen data directory; restoring needs a
node whose master key opens the wrapped keys (the security layer checks that before a restore).
The engine copies bytes; it never holds a key.

Repository layout (a directory under one of the node's `path.repo` roots):

    catalog.json             the snapshots, oldest first (replaced atomically)
    snapshots/<uuid>.json    one manifest per snapshot: its info and, per index, the metadata and,
                             per shard, {file name: {"blob": sha256, "size": bytes}}
    blobs/<xx>/<sha256>      file contents, content-addressed: a segment file an earlier snapshot
                             stored is not copied again (snapshots are incremental), and a restore
                             checks every file against its digest.

Consistency: each shard commits and hard-links the files of that commit into a staging directory
inside the data directory (writes to the shard wait for the links, not for the copy); copying to
the repository then holds no lock. An index's metadata is read after its shards were linked, so
its wrapped keys include every key version the linked documents were sealed with.

Crash safety: blobs, then the manifest, then the catalog; a snapshot exists once the catalog names
it. Blobs that no catalogued snapshot references (an interrupted snapshot, a deleted one) are
removed by snapshot deletion and by `_cleanup`. One node writes to a repository at a time (as in
Elasticsearch: register it `readonly` on any other node).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
import uuid as uuidlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import (ConcurrentSnapshotError, IllegalArgumentError, IndexNotFoundError, InvalidSnapshotNameError,
                      RepositoryError, RepositoryMissingError, ResourceAlreadyExistsError, SnapshotMissingError,
                      SnapshotRestoreError, StrongroomError)
from .fsutil import atomic_write, fsync_dir, make_dirs
from .shard import CHECKPOINT_FILE

if TYPE_CHECKING:
    from .node import Engine

log = logging.getLogger(__name__)

CATALOG = "catalog.json"
REGISTRY = "repositories.json"
STAGING = "snapshot-staging"
FORMAT = 1
_CHUNK = 1 << 20
_BAD_NAME_CHARS = set('\\/*?"<>|,# ')
# rewritten in place (by tantivy; the shard's checkpoint file): never reused by name and size
_MUTABLE_FILES = {"meta.json", ".managed.json", CHECKPOINT_FILE}


def validate_repository_name(name: str) -> None:
    if not name or name.startswith("_") or any(c in _BAD_NAME_CHARS or c.isspace() for c in name):
        raise RepositoryError(name or "", "Invalid repository name: must not be empty, start with '_' or contain "
                                          "whitespace or any of \\ / * ? \" < > | , #")


def validate_snapshot_name(repository: str, name: str) -> None:
    why = None
    if not name:
        why = "cannot be empty"
    elif name.startswith("_"):
        why = "must not start with '_'"
    elif name != name.lower():
        why = "must be lowercase"
    elif any(c in _BAD_NAME_CHARS or c.isspace() for c in name):
        why = "must not contain whitespace or any of \\ / * ? \" < > | , #"
    elif len(name.encode()) > 255:
        why = "must be at most 255 bytes long"
    if why:
        raise InvalidSnapshotNameError(repository, name, why)


def _iso(millis: int) -> str:
    moment = datetime.fromtimestamp(millis / 1000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _matches(name: str, patterns: Sequence[str]) -> bool:
    """Elasticsearch's name expressions: comma lists, wildcards, `_all`, and `-pattern` exclusions."""
    included = False
    for pattern in patterns:
        if pattern.startswith("-") and len(pattern) > 1:
            if fnmatch.fnmatchcase(name, pattern[1:]):
                included = False
        elif pattern in ("_all", "*") or fnmatch.fnmatchcase(name, pattern):
            included = True
    return included


def split_names(value: Any, what: str) -> list[str]:
    """A comma-separated string or a list of strings."""
    if value is None:
        return []
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise IllegalArgumentError(f"[{what}] must be a string or a list of strings")


def _copy_hashing(source: Path, dest: Path) -> tuple[str, int]:
    """Copy `source` to the new file `dest` (mode 0600, fsynced); returns its (sha256 hex, size)."""
    sha = hashlib.sha256()
    size = 0
    with open(source, "rb") as src, open(dest, "xb") as out:
        os.fchmod(out.fileno(), 0o600)
        while chunk := src.read(_CHUNK):
            sha.update(chunk)
            out.write(chunk)
            size += len(chunk)
        out.flush()
        os.fsync(out.fileno())
    return sha.hexdigest(), size


class FsRepository:
    """One repository directory. Every method is safe against a crash at any point (see the module)."""

    def __init__(self, name: str, location: Path, *, readonly: bool) -> None:
        self.name = name
        self.location = location
        self.readonly = readonly

    # -- reading ------------------------------------------------------------------------------
    def catalog(self) -> list[dict[str, Any]]:
        path = self.location / CATALOG
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise RepositoryError(self.name, f"the repository catalog could not be read: {exc.__class__.__name__}"
                                  ) from None
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("snapshots"), list):
            raise RepositoryError(self.name, "the repository catalog has an unknown format")
        return data["snapshots"]

    def manifest(self, snapshot_uuid: str) -> dict[str, Any]:
        try:
            return json.loads((self.location / "snapshots" / f"{snapshot_uuid}.json").read_bytes())
        except (OSError, ValueError) as exc:
            raise RepositoryError(self.name, f"the manifest of snapshot [{snapshot_uuid}] could not be read: "
                                             f"{exc.__class__.__name__}") from None

    def _blob_path(self, digest: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise RepositoryError(self.name, "a manifest names a malformed blob")
        return self.location / "blobs" / digest[:2] / digest

    def has_blob(self, digest: str, size: int) -> bool:
        try:
            return self._blob_path(digest).stat().st_size == size
        except FileNotFoundError:
            return False

    def fetch_blob(self, digest: str, size: int, dest: Path) -> None:
        """Copy a blob to `dest` (a new file), checking its size and digest on the way."""
        try:
            found, copied = _copy_hashing(self._blob_path(digest), dest)
        except FileNotFoundError:
            raise RepositoryError(self.name, f"blob [{digest}] is missing from the repository") from None
        if copied != size or found != digest:
            raise RepositoryError(self.name, f"blob [{digest}] is corrupted (its content does not match its digest)")

    # -- writing ------------------------------------------------------------------------------
    def check_writable(self) -> None:
        if self.readonly:
            raise RepositoryError(self.name, "repository is readonly")

    def prepare(self) -> None:
        """Create the layout (and the location itself, as Elasticsearch does) and prove it is writable."""
        try:
            make_dirs(self.location)
            if not self.readonly:
                for sub in ("snapshots", "blobs"):
                    make_dirs(self.location / sub)
                probe = self.location / f".verify-{uuidlib.uuid4().hex}"
                probe.write_bytes(b"strongroom")
                probe.unlink()
            elif not os.access(self.location, os.R_OK | os.X_OK):
                raise PermissionError("not readable")
        except OSError as exc:
            raise RepositoryError(self.name, f"cannot use location [{self.location}]: {exc.strerror or exc}"
                                  ) from None

    def store_blob(self, source: Path) -> tuple[str, int]:
        """Copy a file into the repository under its sha256; returns (digest, size)."""
        blobs = self.location / "blobs"
        tmp = blobs / f".tmp-{uuidlib.uuid4().hex}"
        try:
            digest, size = _copy_hashing(source, tmp)
            final = self._blob_path(digest)
            if final.exists():
                tmp.unlink()
            else:
                make_dirs(final.parent)
                os.replace(tmp, final)
                fsync_dir(final.parent)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return digest, size

    def write_manifest(self, snapshot_uuid: str, manifest: dict[str, Any]) -> None:
        atomic_write(self.location / "snapshots" / f"{snapshot_uuid}.json",
                     json.dumps(manifest, ensure_ascii=False).encode())

    def write_catalog(self, snapshots: list[dict[str, Any]]) -> None:
        atomic_write(self.location / CATALOG, json.dumps({"format": FORMAT, "snapshots": snapshots},
                                                         ensure_ascii=False, indent=1).encode())

    def collect_garbage(self) -> tuple[int, int]:
        """Remove manifests and blobs no catalogued snapshot references; returns (blobs, bytes) removed."""
        catalog = self.catalog()
        keep_manifests = {f"{entry['uuid']}.json" for entry in catalog}
        keep: set[str] = set()
        for entry in catalog:
            for index in self.manifest(entry["uuid"]).get("indices", {}).values():
                for shard in index["shards"].values():
                    keep.update(f["blob"] for f in shard["files"].values())
        removed = removed_bytes = 0
        for path in sorted((self.location / "snapshots").glob("*.json")):
            if path.name not in keep_manifests:
                path.unlink(missing_ok=True)
        blobs = self.location / "blobs"
        for directory in sorted(p for p in blobs.iterdir() if p.is_dir()) if blobs.is_dir() else []:
            for path in sorted(directory.iterdir()):
                if path.name not in keep:
                    removed_bytes += path.stat().st_size
                    path.unlink(missing_ok=True)
                    removed += 1
            if not any(directory.iterdir()):
                directory.rmdir()
        for path in blobs.glob(".tmp-*") if blobs.is_dir() else []:
            removed_bytes += path.stat().st_size
            path.unlink(missing_ok=True)
            removed += 1
        return removed, removed_bytes


@dataclass
class Progress:
    """A running snapshot: what `_status` and the in-progress listing show."""

    repository: str
    name: str
    uuid: str
    indices: list[str]
    start_ms: int
    files_total: int = 0
    files_done: int = 0
    bytes_total: int = 0
    bytes_done: int = 0
    bytes_reused: int = 0
    shards_total: int = 0
    shards_done: int = 0
    metadata: dict[str, Any] | None = None


@dataclass
class RestorePlan:
    """What a restore will do, decided (and checked) before anything is written."""

    repository: str
    snapshot: str
    renames: list[tuple[str, str]]  # (name in the snapshot, name to restore as)
    metas: dict[str, dict[str, Any]]  # by name in the snapshot
    shards: dict[str, dict[str, Any]] = field(default_factory=dict)

    def wrapped_keys(self) -> dict[str, str | None]:
        """Each restored index's wrapped data keys (base64), for the security layer to check."""
        return {target: self.metas[source].get("keys") for source, target in self.renames}


class SnapshotService:
    """Repositories registered on this node, and the snapshot operations on them."""

    def __init__(self, engine: "Engine", *, roots: Sequence[Path] = (), forbidden: Sequence[Path] = ()) -> None:
        self._engine = engine
        data_dir = engine.data_dir
        self._registry_path = data_dir / REGISTRY
        self._staging = data_dir / STAGING
        shutil.rmtree(self._staging, ignore_errors=True)  # Links left by an interrupted snapshot.
        self._roots = [Path(r).resolve() for r in roots]
        self._forbidden = [data_dir.resolve(), *(Path(p).resolve() for p in forbidden)]
        self._lock = threading.Lock()
        self._repo_locks: dict[str, threading.Lock] = {}
        self._running: dict[str, Progress] = {}  # by repository
        try:
            self._registry: dict[str, dict[str, Any]] = json.loads(self._registry_path.read_bytes())
        except FileNotFoundError:
            self._registry = {}

    # -- repositories ---------------------------------------------------------------------------
    def _location(self, name: str, raw: Any) -> Path:
        if not isinstance(raw, str) or not raw.strip():
            raise RepositoryError(name, "missing location")
        if not self._roots:
            raise RepositoryError(name, f"location [{raw}] doesn't match any of the locations specified by path.repo "
                                        "because this setting is empty")
        path = Path(raw)
        location = (path if path.is_absolute() else self._roots[0] / path).resolve()
        if not any(location == root or location.is_relative_to(root) for root in self._roots):
            raise RepositoryError(name, f"location [{raw}] doesn't match any of the locations specified by "
                                        f"path.repo")
        for forbidden in self._forbidden:
            if location == forbidden or location.is_relative_to(forbidden) or forbidden.is_relative_to(location):
                raise RepositoryError(name, f"location [{raw}] overlaps the node's data or config directory: a "
                                            "snapshot must not travel with the data, nor the keys with a snapshot")
        return location

    def put_repository(self, name: str, body: Any, *, verify: bool = True) -> None:
        validate_repository_name(name)
        if not isinstance(body, dict):
            raise IllegalArgumentError("a repository definition must be an object with [type] and [settings]")
        unknown = sorted(set(body) - {"type", "settings"})
        if unknown:
            raise IllegalArgumentError(f"unknown key [{unknown[0]}] in the repository definition")
        kind = body.get("type")
        if kind != "fs":
            raise RepositoryError(name, f"repository type [{kind}] does not exist (this node supports [fs])")
        settings = body.get("settings") or {}
        if not isinstance(settings, dict):
            raise IllegalArgumentError("[settings] must be an object")
        known = {"location", "readonly", "compress", "chunk_size", "max_snapshot_bytes_per_sec",
                 "max_restore_bytes_per_sec"}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise RepositoryError(name, f"unknown repository setting [{unknown[0]}]")
        readonly = settings.get("readonly", False)
        if readonly not in (True, False, "true", "false"):
            raise IllegalArgumentError("[readonly] must be true or false")
        readonly = readonly in (True, "true")
        location = self._location(name, settings.get("location"))
        repository = FsRepository(name, location, readonly=readonly)
        if verify:
            repository.prepare()
        with self._lock:
            registry = dict(self._registry)
            registry[name] = {"type": "fs", "settings": dict(settings)}
            self._persist(registry)

    def _persist(self, registry: dict[str, dict[str, Any]]) -> None:
        """Replace the registry, durably (under `_lock`)."""
        atomic_write(self._registry_path, json.dumps(registry, ensure_ascii=False, indent=1).encode())
        self._registry = registry

    def repositories(self, names: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        with self._lock:
            registry = dict(self._registry)
        if not names or list(names) in (["_all"], ["*"]):
            return registry
        found: dict[str, dict[str, Any]] = {}
        for pattern in names:
            if "*" in pattern or pattern == "_all":
                found.update({n: r for n, r in registry.items() if _matches(n, [pattern])})
            elif pattern in registry:
                found[pattern] = registry[pattern]
            else:
                raise RepositoryMissingError(pattern)
        return found

    def delete_repository(self, names: Sequence[str]) -> list[str]:
        """Unregisters (the repository's contents stay where they are, as in Elasticsearch)."""
        with self._lock:
            doomed = [n for n in self._registry if _matches(n, names)]
            missing = [n for n in names if "*" not in n and n != "_all" and n not in self._registry]
            if missing:
                raise RepositoryMissingError(missing[0])
            busy = [n for n in doomed if n in self._running]
            if busy:
                raise ConcurrentSnapshotError(busy[0], self._running[busy[0]].name,
                                              "trying to unregister a repository that is in use by a snapshot")
            self._persist({n: r for n, r in self._registry.items() if n not in doomed})
        return doomed

    def repository(self, name: str) -> FsRepository:
        with self._lock:
            entry = self._registry.get(name)
        if entry is None:
            raise RepositoryMissingError(name)
        settings = entry["settings"]
        return FsRepository(name, self._location(name, settings["location"]),
                            readonly=settings.get("readonly") in (True, "true"))

    def verify(self, name: str) -> None:
        self.repository(name).prepare()

    def cleanup(self, name: str) -> tuple[int, int]:
        repository = self.repository(name)
        repository.check_writable()
        with self._exclusive(name, "_cleanup"):
            return repository.collect_garbage()

    def _exclusive(self, repository: str, snapshot: str) -> "_RepoLock":
        with self._lock:
            lock = self._repo_locks.setdefault(repository, threading.Lock())
        return _RepoLock(lock, repository, snapshot, self._running)

    # -- snapshots ------------------------------------------------------------------------------
    def select_indices(self, patterns: Sequence[str], *, ignore_unavailable: bool) -> list[str]:
        names = self._engine.names()
        if not patterns:
            return names
        selected = [n for n in names if _matches(n, patterns)]
        for pattern in patterns:
            if not ignore_unavailable and not any(c in pattern for c in "*") and not pattern.startswith("-") \
                    and pattern != "_all" and pattern not in names:
                raise IndexNotFoundError(pattern)
        return selected

    def unsealed(self, names: Sequence[str]) -> list[str]:
        """Those of `names` whose sources are stored plain (no wrapped keys in their metadata)."""
        return [n for n in names if self._engine.index(n).keys is None]

    def begin(self, repository_name: str, snapshot: str, indices: list[str],
              metadata: dict[str, Any] | None = None) -> Callable[[], dict[str, Any]]:
        """Reserve the snapshot name (refusing a taken one now) and return the work that takes it."""
        validate_snapshot_name(repository_name, snapshot)
        repository = self.repository(repository_name)
        repository.check_writable()
        guard = self._exclusive(repository_name, snapshot)
        guard.acquire(Progress(repository_name, snapshot, uuidlib.uuid4().hex, list(indices), _now_ms(),
                               metadata=metadata))
        try:
            if any(entry["snapshot"] == snapshot for entry in repository.catalog()):
                raise InvalidSnapshotNameError(repository_name, snapshot, "snapshot with the same name already exists")
        except BaseException:
            guard.release()
            raise

        def run() -> dict[str, Any]:
            try:
                return self._take(repository, guard.progress)
            finally:
                guard.release()
        return run

    def _take(self, repository: FsRepository, progress: Progress) -> dict[str, Any]:
        staging = self._staging / progress.uuid
        failures: list[dict[str, Any]] = []
        indices: dict[str, Any] = {}
        known = self._known_blobs(repository)
        try:
            linked: list[tuple[str, dict[str, Any], dict[int, tuple[Path, int]]]] = []
            for name in progress.indices:
                try:
                    index = self._engine.index(name)
                    shard_dirs = {}
                    for shard in index.shards:
                        directory = staging / index.uuid / str(shard.number)
                        shard_dirs[shard.number] = (directory, shard.link_committed(directory))
                    meta = index.snapshot_meta()  # after the links: its keys cover what they sealed
                    linked.append((name, meta, shard_dirs))
                    progress.shards_total += len(shard_dirs)
                    for directory, _seq in shard_dirs.values():
                        for path in directory.iterdir():
                            progress.files_total += 1
                            progress.bytes_total += path.stat().st_size
                except StrongroomError as exc:
                    failures.append({"index": name, "shard_id": 0, "reason": exc.reason, "status": "INTERNAL_SERVER_ERROR"})
            for name, meta, shard_dirs in linked:
                shards: dict[str, Any] = {}
                for number, (directory, checkpoint) in sorted(shard_dirs.items()):
                    files: dict[str, Any] = {}
                    for path in sorted(directory.iterdir()):
                        size = path.stat().st_size
                        reuse = known.get((path.name, size)) if path.name not in _MUTABLE_FILES else None
                        if reuse is not None and repository.has_blob(reuse, size):
                            digest = reuse
                            progress.bytes_reused += size
                        else:
                            digest, size = repository.store_blob(path)
                        files[path.name] = {"blob": digest, "size": size}
                        progress.files_done += 1
                        progress.bytes_done += size
                    shards[str(number)] = {"checkpoint": checkpoint, "files": files}
                    progress.shards_done += 1
                indices[name] = {"meta": meta, "shards": shards}
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        end = _now_ms()
        info = {"snapshot": progress.name, "uuid": progress.uuid, "repository": repository.name,
                "indices": sorted(indices), "data_streams": [], "include_global_state": False,
                "state": "SUCCESS" if not failures else ("PARTIAL" if indices else "FAILED"),
                "start_time_in_millis": progress.start_ms, "end_time_in_millis": end,
                "duration_in_millis": end - progress.start_ms, "failures": failures,
                "shards": {"total": progress.shards_total + len(failures),
                           "failed": len(failures), "successful": progress.shards_done},
                "feature_states": [],
                "stats": {"file_count": progress.files_done, "size_in_bytes": progress.bytes_done,
                          "incremental_size_in_bytes": progress.bytes_done - progress.bytes_reused}}
        if progress.metadata is not None:
            info["metadata"] = progress.metadata
        repository.write_manifest(progress.uuid, {"format": FORMAT, "info": info, "indices": indices})
        repository.write_catalog([*repository.catalog(), info])
        log.info("snapshot [%s:%s]: %d indices, %d files, %d bytes (%d reused)", repository.name, progress.name,
                 len(indices), progress.files_done, progress.bytes_done, progress.bytes_reused)
        return public_info(info)

    def _known_blobs(self, repository: FsRepository) -> dict[tuple[str, int], str]:
        """(file name, size) → blob, for immutable files earlier snapshots stored: not read again."""
        known: dict[tuple[str, int], str] = {}
        for entry in repository.catalog():
            try:
                manifest = repository.manifest(entry["uuid"])
            except RepositoryError:
                continue
            for index in manifest.get("indices", {}).values():
                for shard in index["shards"].values():
                    for fname, f in shard["files"].items():
                        if fname not in _MUTABLE_FILES:
                            known[(fname, f["size"])] = f["blob"]
        return known

    def snapshots(self, repository_name: str, patterns: Sequence[str], *, ignore_unavailable: bool = False
                  ) -> list[dict[str, Any]]:
        repository = self.repository(repository_name)
        entries = [public_info(e) for e in repository.catalog()]
        with self._lock:
            running = self._running.get(repository_name)
        if running is not None and running.name != "_cleanup":
            entries.append(in_progress_info(running))
        if not patterns or list(patterns) in (["_all"], ["*"]):
            return entries
        chosen = [e for e in entries if _matches(e["snapshot"], patterns)]
        if not ignore_unavailable:
            for pattern in patterns:
                if "*" not in pattern and not pattern.startswith("-") and pattern != "_all" \
                        and not any(e["snapshot"] == pattern for e in entries):
                    raise SnapshotMissingError(repository_name, pattern)
        return chosen

    def status(self, repository_name: str | None, patterns: Sequence[str], *, ignore_unavailable: bool = False
               ) -> list[dict[str, Any]]:
        with self._lock:
            running = [p for p in self._running.values() if p.name != "_cleanup"
                       and (repository_name is None or p.repository == repository_name)]
        if repository_name is None or not patterns:
            if repository_name is not None:
                self.repository(repository_name)  # 404 for an unknown repository
            return [_status_of(p) for p in running]
        out = []
        by_name = {p.name: p for p in running}
        done = {e["snapshot"]: e for e in self.repository(repository_name).catalog()}
        for pattern in patterns:
            if pattern in by_name:
                out.append(_status_of(by_name[pattern]))
            elif pattern in done:
                out.append(_done_status(repository_name, done[pattern]))
            elif not ignore_unavailable:
                raise SnapshotMissingError(repository_name, pattern)
        return out

    def delete_snapshots(self, repository_name: str, patterns: Sequence[str]) -> list[str]:
        repository = self.repository(repository_name)
        repository.check_writable()
        with self._lock:
            running = self._running.get(repository_name)
        if running is not None and _matches(running.name, patterns):
            raise ConcurrentSnapshotError(repository_name, running.name, "cannot delete a snapshot that is running")
        with self._exclusive(repository_name, "_delete"):
            catalog = repository.catalog()
            doomed = [e["snapshot"] for e in catalog if _matches(e["snapshot"], patterns)]
            for pattern in patterns:
                if "*" not in pattern and not pattern.startswith("-") and pattern != "_all" and pattern not in doomed:
                    raise SnapshotMissingError(repository_name, pattern)
            repository.write_catalog([e for e in catalog if e["snapshot"] not in doomed])
            removed, removed_bytes = repository.collect_garbage()
        log.info("snapshots %s deleted from [%s]: %d blobs, %d bytes freed", doomed, repository_name, removed,
                 removed_bytes)
        return doomed

    # -- restore --------------------------------------------------------------------------------
    def plan_restore(self, repository_name: str, snapshot: str, body: dict[str, Any]) -> RestorePlan:
        repository = self.repository(repository_name)
        entry = next((e for e in repository.catalog() if e["snapshot"] == snapshot), None)
        if entry is None:
            raise SnapshotMissingError(repository_name, snapshot)
        manifest = repository.manifest(entry["uuid"])
        available = manifest.get("indices", {})
        patterns = split_names(body.get("indices"), "indices")
        chosen = [n for n in sorted(available) if not patterns or _matches(n, patterns)]
        if not body.get("ignore_unavailable"):
            for pattern in patterns:
                if "*" not in pattern and not pattern.startswith("-") and pattern != "_all" \
                        and pattern not in available:
                    raise SnapshotRestoreError(repository_name, snapshot, f"index [{pattern}] is not in the snapshot")
        rename_pattern, replacement = body.get("rename_pattern"), body.get("rename_replacement")
        renames = []
        for name in chosen:
            target = name
            if rename_pattern is not None:
                target = _rename(name, rename_pattern, replacement)
            renames.append((name, target))
        targets = [t for _s, t in renames]
        if len(set(targets)) != len(targets):
            raise SnapshotRestoreError(repository_name, snapshot, "indices would be renamed to the same name")
        for _source, target in renames:
            if self._engine.exists(target):
                raise SnapshotRestoreError(
                    repository_name, snapshot,
                    f"cannot restore index [{target}] because an open index with same name already exists in the "
                    "cluster. Either close or delete the existing index or restore the index under a different name "
                    "by providing a rename pattern and replacement name")
        return RestorePlan(repository_name, snapshot, renames, {n: available[n]["meta"] for n in chosen},
                           {n: available[n]["shards"] for n in chosen})

    def restore(self, plan: RestorePlan) -> list[str]:
        repository = self.repository(plan.repository)
        restored = []
        for source, target in plan.renames:
            shards = plan.shards[source]

            def fill(root: Path, shards: dict[str, Any] = shards) -> None:
                for number, shard in shards.items():
                    directory = root / "shards" / str(int(number)) / "index"
                    make_dirs(directory)
                    for fname, f in shard["files"].items():
                        if "/" in fname or fname in ("", ".", ".."):
                            raise RepositoryError(plan.repository, "a manifest names a malformed file")
                        repository.fetch_blob(f["blob"], f["size"], directory / fname)
                    fsync_dir(directory)

            try:
                self._engine.restore_index(target, plan.metas[source], fill)
            except ResourceAlreadyExistsError:
                raise SnapshotRestoreError(plan.repository, plan.snapshot,
                                           f"cannot restore index [{target}] because an index with the same name was "
                                           "created meanwhile") from None
            restored.append(target)
        log.info("snapshot [%s:%s] restored: %s", plan.repository, plan.snapshot, restored)
        return restored


class _RepoLock:
    """One operation at a time per repository; a second one is refused, not queued."""

    def __init__(self, lock: threading.Lock, repository: str, snapshot: str, running: dict[str, Progress]) -> None:
        self._lock, self._repository, self._snapshot, self._running = lock, repository, snapshot, running
        self.progress: Progress = Progress(repository, snapshot, "", [], _now_ms())

    def acquire(self, progress: Progress | None = None) -> None:
        if not self._lock.acquire(blocking=False):
            current = self._running.get(self._repository)
            raise ConcurrentSnapshotError(self._repository, self._snapshot,
                                          f"cannot run while [{current.name if current else 'another operation'}] "
                                          "is running in this repository")
        if progress is not None:
            self.progress = progress
        self._running[self._repository] = self.progress

    def release(self) -> None:
        self._running.pop(self._repository, None)
        self._lock.release()

    def __enter__(self) -> "_RepoLock":
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _rename(name: str, pattern: Any, replacement: Any) -> str:
    if not isinstance(pattern, str) or not isinstance(replacement, str):
        raise IllegalArgumentError("[rename_pattern] and [rename_replacement] must both be strings")
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise IllegalArgumentError(f"invalid [rename_pattern]: {exc}") from None

    def expand(match: re.Match[str]) -> str:  # Java's replacement syntax: $1 a group, \$ a literal dollar
        out, i = [], 0
        while i < len(replacement):
            char = replacement[i]
            if char == "\\" and i + 1 < len(replacement):
                out.append(replacement[i + 1])
                i += 2
            elif char == "$" and i + 1 < len(replacement) and replacement[i + 1].isdigit():
                j = i + 1
                while j < len(replacement) and replacement[j].isdigit():
                    j += 1
                out.append(match.group(int(replacement[i + 1:j])) or "")
                i = j
            else:
                out.append(char)
                i += 1
        return "".join(out)

    try:
        return regex.sub(expand, name)
    except IndexError:
        raise IllegalArgumentError(f"invalid [rename_replacement] [{replacement}]: no such group") from None


def public_info(info: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in info.items() if k != "stats"}
    out["start_time"] = _iso(info["start_time_in_millis"])
    if info.get("end_time_in_millis"):
        out["end_time"] = _iso(info["end_time_in_millis"])
    return out


def in_progress_info(progress: Progress) -> dict[str, Any]:
    return {"snapshot": progress.name, "uuid": progress.uuid, "repository": progress.repository,
            "indices": sorted(progress.indices), "data_streams": [], "include_global_state": False,
            "state": "IN_PROGRESS", "start_time": _iso(progress.start_ms), "start_time_in_millis": progress.start_ms,
            "end_time_in_millis": 0, "duration_in_millis": _now_ms() - progress.start_ms, "failures": [],
            "shards": {"total": progress.shards_total, "failed": 0, "successful": progress.shards_done},
            "feature_states": []}


def _status_of(progress: Progress) -> dict[str, Any]:
    return {"snapshot": progress.name, "repository": progress.repository, "uuid": progress.uuid,
            "state": "STARTED", "include_global_state": False,
            "shards_stats": {"initializing": 0, "started": progress.shards_total - progress.shards_done,
                             "finalizing": 0, "done": progress.shards_done, "failed": 0,
                             "total": progress.shards_total},
            "stats": {"incremental": {"file_count": progress.files_total,
                                      "size_in_bytes": progress.bytes_total - progress.bytes_reused},
                      "processed": {"file_count": progress.files_done, "size_in_bytes": progress.bytes_done},
                      "total": {"file_count": progress.files_total, "size_in_bytes": progress.bytes_total},
                      "start_time_in_millis": progress.start_ms,
                      "time_in_millis": _now_ms() - progress.start_ms},
            "indices": {name: {} for name in progress.indices}}


def _done_status(repository: str, info: dict[str, Any]) -> dict[str, Any]:
    stats = info.get("stats", {})
    shards = info["shards"]
    return {"snapshot": info["snapshot"], "repository": repository, "uuid": info["uuid"], "state": info["state"],
            "include_global_state": False,
            "shards_stats": {"initializing": 0, "started": 0, "finalizing": 0, "done": shards["successful"],
                             "failed": shards["failed"], "total": shards["total"]},
            "stats": {"incremental": {"file_count": stats.get("file_count", 0),
                                      "size_in_bytes": stats.get("incremental_size_in_bytes", 0)},
                      "total": {"file_count": stats.get("file_count", 0),
                                "size_in_bytes": stats.get("size_in_bytes", 0)},
                      "start_time_in_millis": info["start_time_in_millis"],
                      "time_in_millis": info["duration_in_millis"]},
            "indices": {name: {} for name in info["indices"]}}
