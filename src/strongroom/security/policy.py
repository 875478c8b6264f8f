"""Authorization: which principal may perform which action on which index, and what it may see.

Every session method asks the policy before it touches the engine. Deny by default: an action is
allowed only when some role (`roles.py`) grants it. What a read may see of an index is an
`IndexGrant`: per role that grants reading, that role's document query, field rule and masks.
Several roles combine like Elasticsearch's (a union of grants), with one refinement: a field is
shown, or shown unmasked, on a document only when a role that shows it (unmasked) also matches
that document with its own query. An API key is limited by its owner: its grant is the
intersection of the key's descriptors and the owner's roles, evaluated at every request.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import AuthorizationError

if TYPE_CHECKING:
    from .roles import FieldRule, Role
    from .users import Principal

# Action names follow Elasticsearch's, so audit trails and role definitions read the same.
CLUSTER_MONITOR = "cluster:monitor/main"
CLUSTER_HEALTH = "cluster:monitor/health"
CLUSTER_STATE = "cluster:monitor/state"
DOCTOR = "cluster:monitor/strongroom/doctor"
SECURITY_ADMIN = "cluster:admin/xpack/security/*"
API_KEY_OWN = "cluster:admin/xpack/security/api_key/own"
API_KEY_ANY = "cluster:admin/xpack/security/api_key/any"
REPOSITORY_PUT = "cluster:admin/repository/put"
REPOSITORY_GET = "cluster:admin/repository/get"
REPOSITORY_DELETE = "cluster:admin/repository/delete"
REPOSITORY_VERIFY = "cluster:admin/repository/verify"
REPOSITORY_CLEANUP = "cluster:admin/repository/_cleanup"
SNAPSHOT_CREATE = "cluster:admin/snapshot/create"
SNAPSHOT_GET = "cluster:admin/snapshot/get"
SNAPSHOT_STATUS = "cluster:admin/snapshot/status"
SNAPSHOT_DELETE = "cluster:admin/snapshot/delete"
SNAPSHOT_RESTORE = "cluster:admin/snapshot/restore"
INDEX_CREATE = "indices:admin/create"
INDEX_AUTO_CREATE = "indices:admin/auto_create"
INDEX_DELETE = "indices:admin/delete"
INDEX_GET = "indices:admin/get"
INDEX_EXISTS = "indices:admin/exists"
MAPPING_GET = "indices:admin/mappings/get"
MAPPING_PUT = "indices:admin/mapping/put"
SETTINGS_GET = "indices:monitor/settings/get"
SETTINGS_UPDATE = "indices:admin/settings/update"
INDEX_REFRESH = "indices:admin/refresh"
INDEX_STATS = "indices:monitor/stats"
DOC_INDEX = "indices:data/write/index"
DOC_CREATE = "indices:data/write/index[create]"
DOC_DELETE = "indices:data/write/delete"
DOC_UPDATE = "indices:data/write/update"
DOC_BULK = "indices:data/write/bulk"
DOC_GET = "indices:data/read/get"
DOC_MGET = "indices:data/read/mget"
DOC_COUNT = "indices:data/read/count"
DOC_SEARCH = "indices:data/read/search"
DOC_EXPORT = "indices:data/read/export"  # scroll, and paging past a role's result window
# One masked field of one document shown in clear, with a purpose (`Session.reveal`): its own privilege,
# budget and audit record. The grant of this action is the reveal roles' views without their masks.
DOC_REVEAL = "indices:data/read/reveal"
AUDIT_READ = "cluster:admin/strongroom/audit/read"
ALERTS_READ = "cluster:admin/strongroom/alerts/read"
ALERTS_MANAGE = "cluster:admin/strongroom/alerts/manage"  # block and unblock identities
CANARIES_MANAGE = "cluster:admin/strongroom/canaries"
INDEX_ANALYZE = "indices:admin/analyze"
READ_ACTIONS = frozenset({DOC_GET, DOC_MGET, DOC_COUNT, DOC_SEARCH})


@dataclass(frozen=True)
class RoleView:
    """What one role lets the principal see of one index."""

    query: dict[str, Any] | None  # document query (DSL); None: every document
    fields: "FieldRule"
    masks: tuple[tuple[str, str], ...]
    searchable_masked: bool
    require_purpose: bool

    @property
    def unrestricted(self) -> bool:
        return self.query is None and self.fields.unrestricted and not self.masks

    def mask_of(self, path: str) -> str | None:
        for pattern, kind in self.masks:
            if path == pattern or path.startswith(pattern + "."):
                return kind
        return None


@dataclass(frozen=True)
class IndexGrant:
    """What a principal may see of one index: layers that must all allow (an API key and its owner),
    each a union of role views. Empty `layers` means unrestricted (the superuser)."""

    index: str
    layers: tuple[tuple[RoleView, ...], ...] = ()

    @property
    def unrestricted(self) -> bool:
        return all(any(view.unrestricted for view in layer) for layer in self.layers)

    @property
    def require_purpose(self) -> bool:
        return any(view.require_purpose for layer in self.layers for view in layer)


class Policy(Protocol):
    def authorize_cluster(self, principal: "Principal", action: str) -> None: ...
    def authorize_index(self, principal: "Principal", action: str, index: str) -> IndexGrant: ...
    def may_index(self, principal: "Principal", action: str, index: str) -> bool: ...
    def limits_of(self, principal: "Principal") -> Any: ...


class RolePolicy:
    """Deny by default; roles come from the security store, evaluated at every request."""

    GRANTS_KEPT = 4096

    def __init__(self, roles_of: Any = None) -> None:
        # `roles_of(name) -> Role | None`; None: only the built-in superuser role exists.
        self._roles_of = roles_of
        # Grants already worked out, keyed by the identities of the role objects they came from (which
        # the entry holds, so no id is reused while it is kept), the action and the index. A changed role
        # is a new object, so its grants are worked out afresh at the next request.
        self._grants: dict[tuple[Any, ...], tuple[Any, IndexGrant]] = {}

    def _layers(self, principal: "Principal") -> list[list["Role"]]:
        superuser = _superuser()
        owner = []
        for name in principal.roles:
            role = superuser if name == "superuser" else (self._roles_of(name) if self._roles_of else None)
            if role is not None:
                owner.append(role)
        layers = [owner]
        if principal.key_roles:
            layers.append(list(principal.key_roles))
        return layers

    def authorize_cluster(self, principal: "Principal", action: str) -> None:
        for layer in self._layers(principal):
            if not any(role.allows_cluster(action) or (action == SECURITY_ADMIN and role.allows_cluster(action))
                       for role in layer):
                raise AuthorizationError(action, principal.name)

    def may_index(self, principal: "Principal", action: str, index: str) -> bool:
        return all(any(entry.covers(index) and entry.allows(action) for role in layer for entry in role.indices)
                   for layer in self._layers(principal))

    def limits_of(self, principal: "Principal") -> Any:
        """The principal's limits (limits.Limits): a union over its roles (a role without limits, like
        the superuser, lifts them), then, for an API key, the stricter of key and owner. None: none."""
        from .limits import combine, intersect

        layers = self._layers(principal)
        combined = [combine([role.limits for role in layer]) if layer else None for layer in layers]
        result = combined[0]
        for other in combined[1:]:
            if other is None:
                continue
            result = other if result is None else intersect(result, other)
        if result is None or result.unlimited:
            return None
        return result

    def authorize_index(self, principal: "Principal", action: str, index: str) -> IndexGrant:
        layers = self._layers(principal)
        key = (tuple(tuple(map(id, layer)) for layer in layers), action, index)
        kept = self._grants.get(key)
        if kept is not None:
            return kept[1]
        grant = self._grant(principal, layers, action, index)
        if len(self._grants) >= self.GRANTS_KEPT:
            self._grants.clear()
        self._grants[key] = (layers, grant)
        return grant

    def _grant(self, principal: "Principal", layers: list[list["Role"]], action: str, index: str) -> IndexGrant:
        grant_layers = []
        for layer in layers:
            entries = [e for role in layer for e in role.indices if e.covers(index) and e.allows(action)]
            if not entries:
                raise AuthorizationError(action, principal.name, index)
            if action == DOC_REVEAL:  # (every reveal needs a purpose: the session asks for it, whatever the role)
                views = tuple(RoleView(e.query, e.fields, (), False, False) for e in entries)
                grant_layers.append(views)
                continue
            if action not in READ_ACTIONS:
                continue
            views = tuple(RoleView(e.query, e.fields, e.masks, e.searchable_masked, e.require_purpose)
                          for e in entries)
            grant_layers.append(views)
        grant = IndexGrant(index, tuple(grant_layers))
        return IndexGrant(index) if grant.unrestricted and not grant.require_purpose else grant


@functools.cache
def _superuser() -> "Role":
    """roles.SUPERUSER (imported on first use: roles imports this module)."""
    from .roles import SUPERUSER
    return SUPERUSER
