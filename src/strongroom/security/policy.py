"""Authorization: which principal may perform which action on which index.

Every session method asks the policy before it touches the engine. Today the only role is the
built-in superuser; user-defined roles (index, field and document security, masks) slot in here
by implementing the same two methods, without any change to routes or sessions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..errors import AuthorizationError
from .users import Principal

# Action names follow Elasticsearch's, so audit trails and role definitions read the same.
CLUSTER_MONITOR = "cluster:monitor/main"
CLUSTER_HEALTH = "cluster:monitor/health"
CLUSTER_STATE = "cluster:monitor/state"
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
DOC_DELETE = "indices:data/write/delete"
DOC_UPDATE = "indices:data/write/update"
DOC_BULK = "indices:data/write/bulk"
DOC_GET = "indices:data/read/get"
DOC_MGET = "indices:data/read/mget"
DOC_COUNT = "indices:data/read/count"
DOC_SEARCH = "indices:data/read/search"
INDEX_ANALYZE = "indices:admin/analyze"


@dataclass(frozen=True)
class IndexGrant:
    """What a principal may see of one index. Unrestricted for the superuser; later issues add
    a document filter, field rules and masks here, applied by the session to every output."""

    index: str
    unrestricted: bool = True


class Policy(Protocol):
    def authorize_cluster(self, principal: Principal, action: str) -> None: ...
    def authorize_index(self, principal: Principal, action: str, index: str) -> IndexGrant: ...


class RolePolicy:
    """Deny by default; the superuser role grants everything."""

    def authorize_cluster(self, principal: Principal, action: str) -> None:
        if not principal.is_superuser:
            raise AuthorizationError(action, principal.name)

    def authorize_index(self, principal: Principal, action: str, index: str) -> IndexGrant:
        if not principal.is_superuser:
            raise AuthorizationError(action, principal.name, index)
        return IndexGrant(index)
