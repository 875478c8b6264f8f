"""The `_snapshot` API for one calling principal: repositories, snapshots, restore.

Who may do what (deny by default, Elasticsearch's cluster privileges): reading repositories and
snapshots needs `monitor_snapshot`; taking a snapshot `create_snapshot`; registering, verifying,
cleaning up and removing repositories, deleting snapshots and restoring need `manage`. A restore
also needs `create_index` on every index name it creates, so it cannot bring back an index the
caller could not have created.

Only sealed indices are snapshotted: an index whose sources are plain (created before sealing
existed) is refused by name, so a repository never holds a readable source. A restore goes ahead
only when this node's master key opens the data keys wrapped in the snapshot.
"""

from __future__ import annotations

import base64
import binascii
import functools
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import anyio

from ..crypto.keys import KeyProblem
from ..engine.snapshots import SnapshotService, split_names
from ..errors import IllegalArgumentError, SnapshotRestoreError
from . import policy as actions
from .policy import Policy
from .users import Principal
from .vault import Vault

log = logging.getLogger("strongroom.snapshots")
T = TypeVar("T")
CREATE_KEYS = {"indices", "ignore_unavailable", "include_global_state", "partial", "metadata", "feature_states",
               "expand_wildcards"}
RESTORE_KEYS = {"indices", "ignore_unavailable", "include_global_state", "rename_pattern", "rename_replacement",
                "partial", "include_aliases", "index_settings", "ignore_index_settings", "feature_states",
                "expand_wildcards"}


async def _run(fn: Callable[..., T], *args: Any) -> T:
    return await anyio.to_thread.run_sync(fn, *args)


def _check_keys(body: dict[str, Any], allowed: set[str], what: str) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise IllegalArgumentError(f"unknown key [{unknown[0]}] in the {what} request")


def _background(name: str, work: Callable[[], Any]) -> None:
    def run() -> None:
        try:
            work()
        except Exception:  # Nobody waits for it: the log is where the failure goes.
            log.exception("%s failed", name)
    threading.Thread(target=run, name=name, daemon=True).start()


class SnapshotAdmin:
    def __init__(self, principal: Principal, policy: Policy, service: SnapshotService, vault: Vault,
                 cluster_info: dict[str, str]) -> None:
        self.principal = principal
        self.__policy = policy
        self.__service = service
        self.__vault = vault
        self._cluster_info = cluster_info

    def _authorize(self, action: str) -> None:
        self.__policy.authorize_cluster(self.principal, action)

    # -- repositories -------------------------------------------------------------------------
    async def put_repository(self, name: str, body: Any, *, verify: bool = True) -> None:
        self._authorize(actions.REPOSITORY_PUT)
        await _run(functools.partial(self.__service.put_repository, name, body, verify=verify))

    def get_repositories(self, names: list[str]) -> dict[str, Any]:
        self._authorize(actions.REPOSITORY_GET)
        return self.__service.repositories(names)

    def delete_repository(self, names: list[str]) -> list[str]:
        self._authorize(actions.REPOSITORY_DELETE)
        return self.__service.delete_repository(names)

    async def verify_repository(self, name: str) -> dict[str, Any]:
        self._authorize(actions.REPOSITORY_VERIFY)
        await _run(self.__service.verify, name)
        node = self._cluster_info.get("node_name", "strongroom")
        return {"nodes": {self._cluster_info.get("node_id", node): {"name": node}}}

    async def cleanup_repository(self, name: str) -> dict[str, int]:
        self._authorize(actions.REPOSITORY_CLEANUP)
        blobs, size = await _run(self.__service.cleanup, name)
        return {"deleted_bytes": size, "deleted_blobs": blobs}

    # -- snapshots ------------------------------------------------------------------------------
    async def create(self, repository: str, snapshot: str, body: Any, *, wait: bool) -> dict[str, Any] | None:
        """The snapshot's info when `wait`, else None once it has started."""
        self._authorize(actions.SNAPSHOT_CREATE)
        body = body if body is not None else {}
        if not isinstance(body, dict):
            raise IllegalArgumentError("the snapshot request body must be an object")
        _check_keys(body, CREATE_KEYS, "create snapshot")
        if body.get("include_global_state") in (True, "true"):
            log.info("snapshot [%s:%s]: include_global_state is ignored: users, roles and keys are not part of "
                     "snapshots", repository, snapshot)
        metadata = body.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise IllegalArgumentError("[metadata] must be an object")
        service = self.__service
        names = service.select_indices(split_names(body.get("indices"), "indices"),
                                       ignore_unavailable=body.get("ignore_unavailable") in (True, "true"))
        plain = service.unsealed(names)
        if plain:
            raise IllegalArgumentError(f"index [{plain[0]}] stores plain sources (it was created before sealing "
                                       "existed); snapshots hold sealed data only: reindex it into a new index first")
        work = await _run(functools.partial(service.begin, repository, snapshot, names, metadata))
        log.info("snapshot [%s:%s] started by [%s]: %s", repository, snapshot, self.principal.name, names)
        if not wait:
            _background(f"snapshot {repository}:{snapshot}", work)
            return None
        return await _run(work)

    def get(self, repository: str, names: list[str], *, ignore_unavailable: bool = False) -> list[dict[str, Any]]:
        self._authorize(actions.SNAPSHOT_GET)
        return self.__service.snapshots(repository, names, ignore_unavailable=ignore_unavailable)

    def status(self, repository: str | None, names: list[str], *, ignore_unavailable: bool = False
               ) -> list[dict[str, Any]]:
        self._authorize(actions.SNAPSHOT_STATUS)
        return self.__service.status(repository, names, ignore_unavailable=ignore_unavailable)

    async def delete(self, repository: str, names: list[str]) -> list[str]:
        self._authorize(actions.SNAPSHOT_DELETE)
        deleted = await _run(self.__service.delete_snapshots, repository, names)
        log.info("snapshots %s of [%s] deleted by [%s]", deleted, repository, self.principal.name)
        return deleted

    async def restore(self, repository: str, snapshot: str, body: Any, *, wait: bool) -> dict[str, Any] | None:
        self._authorize(actions.SNAPSHOT_RESTORE)
        body = body if body is not None else {}
        if not isinstance(body, dict):
            raise IllegalArgumentError("the restore request body must be an object")
        _check_keys(body, RESTORE_KEYS, "restore snapshot")
        if body.get("index_settings"):
            raise IllegalArgumentError("[index_settings] is not supported on restore: change settings after it")
        plan = await _run(self.__service.plan_restore, repository, snapshot, body)
        for target in [t for _s, t in plan.renames]:
            self.__policy.authorize_index(self.principal, actions.INDEX_CREATE, target)
        for target, wrapped in plan.wrapped_keys().items():
            if wrapped is None:
                continue
            try:
                self.__vault.check_keys(base64.b64decode(wrapped, validate=True))
            except (KeyProblem, binascii.Error, ValueError):
                raise SnapshotRestoreError(
                    repository, snapshot,
                    f"index [{target}]: the snapshot's data keys do not open with this node's master key; restore on "
                    "a node holding the master key that was in use when the snapshot was taken") from None
        log.info("snapshot [%s:%s] restore started by [%s]: %s", repository, snapshot, self.principal.name,
                 plan.renames)
        work = functools.partial(self.__service.restore, plan)
        if not wait:
            _background(f"restore {repository}:{snapshot}", work)
            return None
        restored = await _run(work)
        shards = sum(len(plan.shards[source]) for source, _t in plan.renames)
        return {"snapshot": snapshot, "indices": restored,
                "shards": {"total": shards, "failed": 0, "successful": shards}}
