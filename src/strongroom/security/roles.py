"""Role descriptors: Elasticsearch's shape, plus Strongroom's own keys, validated.

```json
{"cluster": ["monitor"],
 "indices": [{"names": ["residents"], "privileges": ["read"],
              "field_security": {"grant": ["*"], "except": ["case_notes"]},
              "query": {"term": {"district": "浦东新区"}},
              "masks": {"phone": "last4", "national_id": "last4", "name": "first_char"},
              "searchable_masked": false,
              "require_purpose": true}]}
```
Privileges name groups of actions (policy.py); deny by default: an action is allowed only when
some privilege of some matching entry names it. Read privileges never include writes, deletes or
mapping changes.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

from ..errors import IllegalArgumentError, RequestError
from . import policy as a

CLUSTER_PRIVILEGES: dict[str, frozenset[str]] = {
    "none": frozenset(),
    "monitor": frozenset({a.CLUSTER_MONITOR, a.CLUSTER_HEALTH, a.CLUSTER_STATE, a.DOCTOR}),
    "manage_own_api_key": frozenset({a.API_KEY_OWN}),
    "manage_api_key": frozenset({a.API_KEY_OWN, a.API_KEY_ANY}),
    "manage_security": frozenset({a.SECURITY_ADMIN, a.API_KEY_OWN, a.API_KEY_ANY, a.AUDIT_READ, a.ALERTS_READ,
                                  a.ALERTS_MANAGE, a.CANARIES_MANAGE}),
    # Security staff who watch, without changing users or roles: the audit trail and the alerts.
    "read_audit": frozenset({a.AUDIT_READ, a.ALERTS_READ}),
    "monitor_snapshot": frozenset({a.REPOSITORY_GET, a.SNAPSHOT_GET, a.SNAPSHOT_STATUS}),
    "create_snapshot": frozenset({a.REPOSITORY_GET, a.SNAPSHOT_GET, a.SNAPSHOT_STATUS, a.SNAPSHOT_CREATE}),
    # Snapshots hold sealed data only, but restoring one (with this node's master key) creates readable
    # indices: restore and repository administration need `manage` (as in Elasticsearch).
    "manage": frozenset({a.CLUSTER_MONITOR, a.CLUSTER_HEALTH, a.CLUSTER_STATE, a.DOCTOR, a.INDEX_ANALYZE,
                         a.REPOSITORY_PUT, a.REPOSITORY_GET, a.REPOSITORY_DELETE, a.REPOSITORY_VERIFY,
                         a.REPOSITORY_CLEANUP, a.SNAPSHOT_CREATE, a.SNAPSHOT_GET, a.SNAPSHOT_STATUS,
                         a.SNAPSHOT_DELETE, a.SNAPSHOT_RESTORE}),
    "all": frozenset({"*"}),
}
_READ = frozenset({a.DOC_SEARCH, a.DOC_GET, a.DOC_MGET, a.DOC_COUNT})
_VIEW = frozenset({a.INDEX_GET, a.INDEX_EXISTS, a.MAPPING_GET, a.SETTINGS_GET, a.INDEX_ANALYZE})
_MONITOR = frozenset({a.INDEX_STATS, a.SETTINGS_GET, a.INDEX_EXISTS})
_INDEX = frozenset({a.DOC_INDEX, a.DOC_CREATE, a.DOC_UPDATE})
_ADMIN = frozenset({a.INDEX_CREATE, a.INDEX_AUTO_CREATE, a.INDEX_DELETE, a.MAPPING_PUT, a.SETTINGS_UPDATE,
                    a.INDEX_REFRESH, a.INDEX_ANALYZE}) | _VIEW | _MONITOR
INDEX_PRIVILEGES: dict[str, frozenset[str]] = {
    "none": frozenset(),
    "read": _READ,
    "view_index_metadata": _VIEW,
    "monitor": _MONITOR,
    "maintenance": frozenset({a.INDEX_REFRESH}),
    "create_doc": frozenset({a.DOC_CREATE}),
    "create": frozenset({a.DOC_CREATE}),
    "index": _INDEX,
    "delete": frozenset({a.DOC_DELETE}),
    "write": _INDEX | frozenset({a.DOC_DELETE}),
    "create_index": frozenset({a.INDEX_CREATE, a.INDEX_AUTO_CREATE}),
    "delete_index": frozenset({a.INDEX_DELETE}),
    "manage": _ADMIN,
    # Scroll contexts, and paging past a role's result window: reading records in bulk (issue: exfiltration).
    "bulk_export": frozenset({a.DOC_EXPORT}),
    # Showing one masked field of one record in clear, with a purpose: audited field by field and
    # charged to the reveals budget (`limits.reveals_per_hour`). Needs `read` too (the record must be
    # visible); field and document security of the entry that grants it still apply, its masks do not.
    "reveal": frozenset({a.DOC_REVEAL}),
    "all": frozenset({"*"}),
}
MASKS = ("last4", "first_char", "middle", "redact", "hash")
ROLE_KEYS = {"cluster", "indices", "metadata", "description", "run_as", "applications", "global",
             "transient_metadata", "remote_indices", "remote_cluster", "limits"}
INDEX_KEYS = {"names", "privileges", "field_security", "query", "masks", "searchable_masked", "require_purpose",
              "allow_restricted_indices"}
RESERVED_ROLES = ("superuser",)


@dataclass(frozen=True)
class FieldRule:
    """Field level security: patterns granted, minus patterns excepted. `grant=None` means all."""

    grant: tuple[str, ...] | None = None
    except_: tuple[str, ...] = ()

    def allows(self, path: str) -> bool:
        def matches(patterns: tuple[str, ...], target: str) -> bool:
            # A pattern naming an object covers its fields too ("address" covers "address.city").
            return any(fnmatch.fnmatchcase(target, p) or target.startswith(p + ".") for p in patterns)
        if self.grant is not None and not matches(self.grant, path):
            return False
        return not matches(self.except_, path)

    @property
    def unrestricted(self) -> bool:
        return (self.grant is None or "*" in self.grant) and not self.except_

    def to_json(self) -> dict[str, Any] | None:
        if self.grant is None and not self.except_:
            return None
        out: dict[str, Any] = {"grant": list(self.grant) if self.grant is not None else ["*"]}
        if self.except_:
            out["except"] = list(self.except_)
        return out


@dataclass(frozen=True)
class IndexPermission:
    names: tuple[str, ...]
    privileges: tuple[str, ...]
    fields: FieldRule = field(default_factory=FieldRule)
    query: dict[str, Any] | None = None
    masks: tuple[tuple[str, str], ...] = ()
    searchable_masked: bool = False
    require_purpose: bool = False

    def covers(self, index: str) -> bool:
        return any(fnmatch.fnmatchcase(index, pattern) for pattern in self.names)

    def allows(self, action: str) -> bool:
        return any("*" in INDEX_PRIVILEGES[p] or action in INDEX_PRIVILEGES[p] for p in self.privileges)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"names": list(self.names), "privileges": list(self.privileges)}
        rule = self.fields.to_json()
        if rule is not None:
            out["field_security"] = rule
        if self.query is not None:
            out["query"] = self.query
        if self.masks:
            out["masks"] = dict(self.masks)
        if self.searchable_masked:
            out["searchable_masked"] = True
        if self.require_purpose:
            out["require_purpose"] = True
        out["allow_restricted_indices"] = False
        return out


@dataclass(frozen=True)
class Role:
    name: str
    cluster: tuple[str, ...] = ()
    indices: tuple[IndexPermission, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    description: str | None = None
    limits: Any = None  # limits.Limits: rates, budgets and caps of whoever holds the role (None: none)

    def allows_cluster(self, action: str) -> bool:
        return any("*" in CLUSTER_PRIVILEGES[p] or action in CLUSTER_PRIVILEGES[p] for p in self.cluster)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"cluster": list(self.cluster), "indices": [i.to_json() for i in self.indices],
                               "applications": [], "run_as": [], "metadata": self.metadata,
                               "transient_metadata": {"enabled": True}}
        if self.description is not None:
            out["description"] = self.description
        if self.limits is not None:
            out["limits"] = self.limits.to_json()
        return out


SUPERUSER = Role("superuser", ("all",), (IndexPermission(("*",), ("all",)),), {"_reserved": True})


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RequestError(f"failed to parse role: [{what}] must be an array of strings")
    return tuple(value)


def validate_role_name(name: str) -> None:
    if not name or len(name) > 507 or not name.isprintable() or name.startswith("_"):
        raise IllegalArgumentError(f"Validation Failed: 1: role name [{name[:64]}] is not valid;")


def parse_role(name: str, body: Any, *, for_api_key: bool = False) -> Role:
    validate_role_name(name)
    if not isinstance(body, dict):
        raise RequestError(f"failed to parse role [{name}]: the role must be an object")
    unknown = set(body) - ROLE_KEYS
    if unknown:
        raise RequestError(f"failed to parse role [{name}]: unexpected field [{sorted(unknown)[0]}]")
    for unsupported in ("run_as", "applications", "global", "remote_indices", "remote_cluster"):
        if body.get(unsupported):
            raise RequestError(f"failed to parse role [{name}]: [{unsupported}] is not supported by Strongroom")
    cluster = _strings(body.get("cluster", []), "cluster")
    for privilege in cluster:
        if privilege not in CLUSTER_PRIVILEGES:
            raise IllegalArgumentError(f"unknown cluster privilege [{privilege}]. a privilege must be one of "
                                       f"{sorted(CLUSTER_PRIVILEGES)}")
    entries = body.get("indices", [])
    if not isinstance(entries, list):
        raise RequestError(f"failed to parse role [{name}]: [indices] must be an array")
    indices = tuple(_parse_index_entry(name, entry) for entry in entries)
    metadata = body.get("metadata", {})
    if not isinstance(metadata, dict) or any(k.startswith("_") for k in metadata):
        raise IllegalArgumentError(f"failed to parse role [{name}]: metadata keys may not start with [_]")
    description = body.get("description")
    if description is not None and not isinstance(description, str):
        raise RequestError(f"failed to parse role [{name}]: [description] must be a string")
    limits = None
    if body.get("limits") is not None:
        from .limits import parse_limits
        limits = parse_limits(body["limits"])
    return Role(name, cluster, indices, metadata, description, limits)


def _parse_index_entry(role: str, entry: Any) -> IndexPermission:
    if not isinstance(entry, dict):
        raise RequestError(f"failed to parse indices privileges for role [{role}]: each entry must be an object")
    unknown = set(entry) - INDEX_KEYS
    if unknown:
        raise RequestError(f"failed to parse indices privileges for role [{role}]: unexpected field "
                           f"[{sorted(unknown)[0]}]")
    names = _strings(entry.get("names", []), "names")
    privileges = _strings(entry.get("privileges", []), "privileges")
    if not names:
        raise RequestError(f"failed to parse indices privileges for role [{role}]: missing required [names] field")
    if not privileges:
        raise RequestError(f"failed to parse indices privileges for role [{role}]: missing required [privileges] "
                           "field")
    for privilege in privileges:
        if privilege not in INDEX_PRIVILEGES:
            raise IllegalArgumentError(f"unknown index privilege [{privilege}]. a privilege must be one of "
                                       f"{sorted(INDEX_PRIVILEGES)}")
    fields = FieldRule()
    security = entry.get("field_security")
    if security is not None:
        if not isinstance(security, dict) or set(security) - {"grant", "except"}:
            raise RequestError(f"failed to parse indices privileges for role [{role}]: [field_security] takes "
                               "[grant] and [except]")
        grant = _strings(security["grant"], "field_security.grant") if "grant" in security else None
        excepted = _strings(security.get("except", []), "field_security.except")
        for pattern in excepted:
            if grant is not None and not any(fnmatch.fnmatchcase(pattern, g) or pattern.startswith(g + ".")
                                             for g in grant):
                raise RequestError(f"failed to parse indices privileges for role [{role}]: Exceptions for field "
                                   f"permissions must be a subset of the granted fields but {list(excepted)} is not "
                                   f"a subset of {list(grant)}.")
        fields = FieldRule(grant, excepted)
    query = entry.get("query")
    if query is not None:
        if isinstance(query, str):
            from ..jsonio import loads_strict
            query = loads_strict(query)
        if not isinstance(query, dict):
            raise RequestError(f"failed to parse indices privileges for role [{role}]: [query] must be a query "
                               "object")
        from ..query.dsl import parse_query
        parse_query(query)  # Refuse a broken document query now, not at the first search.
    masks_body = entry.get("masks", {})
    if not isinstance(masks_body, dict) or not all(isinstance(k, str) and v in MASKS
                                                   for k, v in masks_body.items()):
        raise RequestError(f"failed to parse indices privileges for role [{role}]: [masks] maps field names to one "
                           f"of {list(MASKS)}")
    for flag in ("searchable_masked", "require_purpose", "allow_restricted_indices"):
        if flag in entry and not isinstance(entry[flag], bool):
            raise RequestError(f"failed to parse indices privileges for role [{role}]: [{flag}] must be a boolean")
    return IndexPermission(names, privileges, fields, query, tuple(sorted(masks_body.items())),
                           bool(entry.get("searchable_masked", False)), bool(entry.get("require_purpose", False)))
