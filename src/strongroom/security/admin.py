"""The `_security` API: users, roles and API keys, for one calling principal.

Every method authorizes the caller through the policy before it reads or changes the security
store, and calls `on_change` after any change so the gate drops cached credentials at once.

Who may do what (deny by default):

* users and roles, read or write: cluster privilege `manage_security` (action `SECURITY_ADMIN`);
* one's own password: any user who logged in with a password (not an API key); another
  user's password, or a password given as a hash: `manage_security`;
* `_authenticate`: anyone authenticated;
* API keys: creating one needs `manage_own_api_key` (or `manage_api_key`, `manage_security`),
  and a user, not an API key. Reading and invalidating one's own keys (asked for with
  `owner=true`, one's own `username`, or, for an API key, its own id) needs
  `manage_own_api_key`; anyone's keys need `manage_api_key` or `manage_security`. As in
  Elasticsearch, a request that does not say "mine" is a request about everyone's keys.

An API key may only narrow its owner's rights: each cluster privilege it asks for must be held
by the owner, and each (index pattern, privilege) it asks for must be granted by some owner role
entry whose pattern matches every index the key's pattern matches. The policy also intersects
key and owner at every request (policy.py); this check refuses a wider key up front, so that
what a key says is what it can do. Document and field security of a key are left to that
intersection.

No response and no error message carries a password, a hash, an API key secret or a digest.
"""

from __future__ import annotations

import base64
import fnmatch
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
from argon2 import Type, extract_parameters
from argon2.exceptions import InvalidHashError

from ..engine.index import parse_time_value
from ..errors import (ActionRequestValidationError, AuthorizationError, IllegalArgumentError, NotFoundError,
                      RequestError, StrongroomError)
from .console import AUTH as CONSOLE_AUTH
from .passwords import PasswordPolicyError, check_password
from .policy import API_KEY_ANY, API_KEY_OWN, SECURITY_ADMIN, Policy
from .roles import CLUSTER_PRIVILEGES, INDEX_PRIVILEGES, RESERVED_ROLES, Role, parse_role
from .users import AUTH_API_KEY, AUTH_BASIC, AUTH_INTERNAL, ApiKeyRecord, Principal, SecurityStore, UserRecord

T = TypeVar("T")
REALM = {"name": "native", "type": "native"}  # The one realm of users; `ApiKeyRecord.public` names it too.
API_KEY_REALM = {"name": "_es_api_key", "type": "_es_api_key"}
MAX_NAME_CHARS = 507  # Elasticsearch's bound for user and role names.
MAX_KEY_NAME_CHARS = 1024
USER_KEYS = {"password", "password_hash", "roles", "full_name", "email", "metadata", "enabled"}
PASSWORD_KEYS = {"password", "password_hash"}
API_KEY_KEYS = {"name", "expiration", "role_descriptors", "metadata"}
# Argon2id cost accepted in a `password_hash`: at least OWASP's weakest recommended setting (below,
# a stolen users.json is cheap to attack), at most what the server can afford per login.
HASH_MIN_MEMORY_KIB, HASH_MIN_WORK = 7168, 35840  # memory_cost, memory_cost * time_cost
HASH_MAX_MEMORY_KIB, HASH_MAX_TIME, HASH_MAX_PARALLELISM = 262144, 10, 16
_ARGON2ID = re.compile(r"\$argon2id\$v=19\$m=\d{1,9},t=\d{1,4},p=\d{1,4}"
                       r"\$[A-Za-z0-9+/]{22,88}\$[A-Za-z0-9+/]{22,88}")
BAD_HASH = ("The provided password hash is not a hash or it could not be resolved to a supported hash "
            "algorithm. The supported password hash algorithm is [argon2id], with m >= 7168 KiB, "
            "m*t >= 35840, m <= 262144 KiB, t <= 10 and p <= 16")

PASSWORD_AUTHS = (AUTH_BASIC, CONSOLE_AUTH)  # who authenticated with a password (console: at login)


class SecurityRefusedError(AuthorizationError):
    """403 `security_exception` with a reason of its own: understood, authenticated, and refused."""

    def __init__(self, reason: str) -> None:
        StrongroomError.__init__(self, reason)


@dataclass(frozen=True)
class KeyQuery:
    """Which API keys a get or invalidate request names (Elasticsearch's parameters)."""

    ids: tuple[str, ...] = ()
    name: str | None = None
    owner: bool = False
    username: str | None = None
    realm_name: str | None = None
    active_only: bool = False

    def check(self, *, invalidate: bool) -> None:
        problems = []
        if (self.ids or self.name) and (self.username or self.realm_name):
            problems.append("username or realm name must not be specified when the api key id(s) or api key "
                            "name are specified")
        if self.owner and (self.username or self.realm_name):
            problems.append("neither username nor realm-name may be specified when retrieving owned API keys")
        if self.ids and self.name:
            problems.append("only one of [api key id(s), api key name] can be specified")
        if invalidate and not (self.ids or self.name or self.username or self.realm_name or self.owner):
            problems.append("One of [api key id(s), api key name, username, realm name] must be specified if "
                            "[owner] flag is false")
        if problems:
            raise ActionRequestValidationError(*problems)

    def matches(self, record: ApiKeyRecord, *, now_ms: int) -> bool:
        if self.ids and record.id not in self.ids:
            return False
        if self.name is not None and not fnmatch.fnmatchcase(record.name, self.name):
            return False
        if self.username is not None and record.owner != self.username:
            return False
        if self.realm_name is not None and self.realm_name != REALM["name"]:
            return False
        if self.active_only and (record.invalidated or (record.expiration is not None
                                                        and record.expiration <= now_ms)):
            return False
        return True


class SecurityAdmin:
    def __init__(self, principal: Principal, store: SecurityStore, policy: Policy,
                 on_change: Callable[[], None], *, clock: Callable[[], float] = time.time) -> None:
        self.principal = principal
        self._store = store
        self._policy = policy
        self._on_change = on_change
        self._clock = clock

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def _change(self, fn: Callable[..., T], *args: Any) -> T:
        """Runs a store change (disk writes, maybe argon2) in a worker thread, then voids the gate's
        caches in the event loop's thread, even when the change failed half-way."""
        try:
            return await anyio.to_thread.run_sync(fn, *args)
        finally:
            self._on_change()

    def _admin(self) -> None:
        self._policy.authorize_cluster(self.principal, SECURITY_ADMIN)

    # -- who am I -----------------------------------------------------------------------------
    async def authenticate(self) -> dict[str, Any]:
        me = self.principal
        record = self._store.get_user(me.name)
        body: dict[str, Any] = {
            "username": me.name, "roles": [] if me.auth == AUTH_API_KEY else list(me.roles),
            "full_name": record.full_name if record else None, "email": record.email if record else None,
            "metadata": dict(record.metadata) if record else {},
            "enabled": record.enabled if record else True}
        if me.auth == AUTH_API_KEY:
            body |= {"authentication_realm": API_KEY_REALM, "lookup_realm": API_KEY_REALM,
                     "authentication_type": "api_key",
                     "api_key": {"id": me.api_key_id, "name": me.api_key_name}}
        elif me.auth == AUTH_INTERNAL:
            internal = {"name": "__internal", "type": "__internal"}
            body |= {"authentication_realm": internal, "lookup_realm": internal,
                     "authentication_type": "internal"}
        else:
            body |= {"authentication_realm": REALM, "lookup_realm": REALM, "authentication_type": "realm"}
        return body

    # -- users --------------------------------------------------------------------------------
    async def put_user(self, name: str, body: Any) -> bool:
        """Creates or updates a user; True when created. Fields not sent keep their value on update,
        except `roles`, which Elasticsearch requires every time."""
        self._admin()
        _check_username(name)
        body = _object(body, USER_KEYS, f"failed to parse add user request [{name}]")
        existing = self._store.get_user(name)
        password, password_hash = self._new_secret(name, body)
        if password is None and password_hash is None and existing is None:
            raise ActionRequestValidationError("password must be specified unless you are updating an "
                                               "existing user")
        if "roles" not in body:
            raise ActionRequestValidationError("roles are missing")
        roles = body["roles"]
        if not isinstance(roles, list) or not all(isinstance(r, str) and r for r in roles):
            raise RequestError(f"failed to parse add user request [{name}]. [roles] must be an array of "
                               "strings")
        full_name = _optional_str(body, "full_name", existing.full_name if existing else None)
        email = _optional_str(body, "email", existing.email if existing else None)
        metadata = _metadata(body.get("metadata", existing.metadata if existing else {}))
        enabled = body.get("enabled", existing.enabled if existing else True)
        if not isinstance(enabled, bool):
            raise RequestError(f"failed to parse add user request [{name}]. [enabled] must be a boolean")
        if existing is not None and name == self.principal.name and enabled != existing.enabled:
            raise IllegalArgumentError("users may not update the enabled status of their own account")

        def put() -> bool:
            return self._store.put_user(name, password=password, password_hash=password_hash,
                                        roles=list(dict.fromkeys(roles)), full_name=full_name, email=email,
                                        metadata=metadata, enabled=enabled)
        return await self._change(_policy_errors(put))

    def _new_secret(self, name: str, body: dict[str, Any]) -> tuple[str | None, str | None]:
        """(password, argon2id hash) from a body: at most one of them, each checked."""
        password, password_hash = body.get("password"), body.get("password_hash")
        if password is not None and password_hash is not None:
            raise ActionRequestValidationError("only one of [password, password_hash] can be provided")
        if password is not None:
            try:
                check_password(password, user=name)
            except PasswordPolicyError as exc:
                raise ActionRequestValidationError(str(exc)) from None
        if password_hash is not None:
            _check_password_hash(password_hash)
        return password, password_hash

    async def get_users(self, names: list[str] | None) -> dict[str, dict[str, Any]]:
        """Users by name (all when `names` is None); unknown names are left out."""
        self._admin()
        records = self._store.users() if names is None else [self._store.get_user(n) for n in names]
        return {r.name: r.public() for r in records if r is not None}

    async def delete_user(self, name: str) -> bool:
        self._admin()
        if self._store.get_user(name) is None:
            return False
        return await self._change(self._store.delete_user, name)

    async def set_enabled(self, name: str, enabled: bool) -> None:
        self._admin()
        if name == self.principal.name:
            raise IllegalArgumentError("users may not update the enabled status of their own account")
        self._user(name)
        if not await self._change(self._store.set_enabled, name, enabled):
            raise NotFoundError(f"user [{name}] not found")

    async def change_password(self, name: str | None, body: Any) -> None:
        """One's own password (no name, or one's own): any user. Anyone else's, or a hash: manage_security."""
        me = self.principal
        target = me.name if name is None else name
        body = _object(body, PASSWORD_KEYS, "failed to parse change password request")
        if me.auth not in PASSWORD_AUTHS and target == me.name:
            raise SecurityRefusedError("only a user who authenticated with a password may change it; "
                                       "API keys and internal identities cannot")
        if target != me.name or "password_hash" in body:
            self._admin()  # A hash cannot be checked against the password policy: administrators only.
        password, password_hash = self._new_secret(target, body)
        if password is None and password_hash is None:
            raise ActionRequestValidationError("password must be specified")
        record = self._user(target)
        if password is not None:
            await self._change(_policy_errors(self._store.change_password), target, password)
            return

        def put_hash() -> bool:
            return self._store.put_user(target, password=None, password_hash=password_hash,
                                        roles=record.roles, full_name=record.full_name, email=record.email,
                                        metadata=record.metadata, enabled=record.enabled)
        await self._change(put_hash)

    def _user(self, name: str) -> UserRecord:
        record = self._store.get_user(name)
        if record is None:
            raise NotFoundError(f"user [{name}] not found")
        return record

    # -- roles --------------------------------------------------------------------------------
    async def put_role(self, name: str, body: Any) -> bool:
        self._admin()
        if name in RESERVED_ROLES:
            raise IllegalArgumentError(f"Role [{name}] is reserved and may not be used.")
        role = parse_role(name, body)  # Refused before anything is stored.
        return await self._change(self._store.put_role, role)

    async def get_roles(self, names: list[str] | None) -> dict[str, dict[str, Any]]:
        """Roles by name (all when `names` is None, reserved ones included); unknown names are left out."""
        self._admin()
        roles = self._store.roles()
        if names is not None:
            roles = {n: roles[n] for n in names if n in roles}
        return {n: r.to_json() for n, r in roles.items()}

    async def delete_role(self, name: str) -> bool:
        self._admin()
        if name in RESERVED_ROLES:
            raise IllegalArgumentError(f"role [{name}] is reserved and cannot be deleted")
        if self._store.role(name) is None:
            return False
        return await self._change(self._store.delete_role, name)

    # -- API keys -----------------------------------------------------------------------------
    async def create_api_key(self, body: Any) -> dict[str, Any]:
        """A new key for the caller. The secret is in this answer only; the store keeps a digest."""
        me = self.principal
        if me.auth not in PASSWORD_AUTHS:
            raise SecurityRefusedError("only a user who authenticated with a password may create API keys; "
                                       "an API key cannot create another one")
        self._policy.authorize_cluster(me, API_KEY_OWN)
        body = _object(body, API_KEY_KEYS, "failed to parse create api key request")
        name = body.get("name")
        _check_key_name(name)
        expiration = self._expiration(body.get("expiration"))
        descriptors = body.get("role_descriptors") or {}
        if not isinstance(descriptors, dict):
            raise RequestError("failed to parse create api key request. [role_descriptors] must be an object")
        roles = [parse_role(key, descriptor, for_api_key=True) for key, descriptor in descriptors.items()]
        self._check_within_owner(roles)
        metadata = _metadata(body.get("metadata") or {})
        stored = {role.name: role.to_json() for role in roles}
        record, secret = await self._change(self._store.create_api_key, me.name, name, expiration, stored,
                                            metadata)
        out: dict[str, Any] = {"id": record.id, "name": record.name}
        if record.expiration is not None:
            out["expiration"] = record.expiration
        out |= {"api_key": secret, "encoded": base64.b64encode(f"{record.id}:{secret}".encode()).decode()}
        return out

    def _expiration(self, value: Any) -> int | None:
        if value is None:
            return None
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise RequestError("failed to parse create api key request. [expiration] must be a time value")
        seconds = parse_time_value(value, "expiration")
        if seconds is None:  # -1: no expiration, as when the field is absent.
            return None
        if seconds <= 0:
            raise IllegalArgumentError("[expiration] must be a positive time value")
        return self._now_ms() + int(seconds * 1000)

    def _check_within_owner(self, wanted: list[Role]) -> None:
        """Refuses (403) a key whose descriptors ask for more than the owner holds. Names in the message
        come from the request only; the owner's roles are never described."""
        if self.principal.is_superuser:
            return
        owner = [role for name in self.principal.roles if (role := self._store.role(name)) is not None]
        held = frozenset().union(*(CLUSTER_PRIVILEGES[p] for role in owner for p in role.cluster))
        entries = [(entry.names, frozenset().union(*(INDEX_PRIVILEGES[p] for p in entry.privileges)))
                   for role in owner for entry in role.indices]
        for role in wanted:
            for privilege in role.cluster:
                if not _within(CLUSTER_PRIVILEGES[privilege], held):
                    raise SecurityRefusedError(f"API key role descriptor [{role.name}] asks for cluster "
                                               f"privilege [{privilege}], which its owner does not hold")
            for entry in role.indices:
                for pattern in entry.names:
                    for privilege in entry.privileges:
                        needed = INDEX_PRIVILEGES[privilege]
                        if not any(_within(needed, actions) and any(pattern_covers(o, pattern) for o in names)
                                   for names, actions in entries):
                            raise SecurityRefusedError(
                                f"API key role descriptor [{role.name}] asks for index privilege "
                                f"[{privilege}] on [{pattern}], which its owner does not hold on all of "
                                "those indices")

    def _key_scope(self, query: KeyQuery) -> str | None:
        """Authorizes a key request. Returns the owner it is limited to, or None: anyone's keys."""
        me = self.principal
        mine = (query.owner or (query.username == me.name and me.auth != AUTH_INTERNAL)
                or (me.api_key_id is not None and query.ids == (me.api_key_id,)))
        if mine:
            self._policy.authorize_cluster(me, API_KEY_OWN)
            return me.name
        self._policy.authorize_cluster(me, API_KEY_ANY)
        return None

    def _find_keys(self, query: KeyQuery) -> list[ApiKeyRecord]:
        owner = self._key_scope(query)
        now = self._now_ms()
        return [r for r in self._store.api_keys()
                if (owner is None or r.owner == owner) and query.matches(r, now_ms=now)]

    async def get_api_keys(self, query: KeyQuery, *, with_limited_by: bool = False) -> list[dict[str, Any]]:
        """Key descriptions (never a secret or digest). `with_limited_by` adds the owner's current roles,
        which an API key may see only with manage_api_key."""
        query.check(invalidate=False)
        records = self._find_keys(query)
        if with_limited_by and self.principal.auth == AUTH_API_KEY:
            self._policy.authorize_cluster(self.principal, API_KEY_ANY)
        out = []
        for record in records:
            shown = {k: v for k, v in record.public().items() if k not in ("salt", "digest", "api_key")}
            if with_limited_by:
                owner = self._store.get_user(record.owner)
                roles = [(n, self._store.role(n)) for n in (owner.roles if owner else [])]
                shown["limited_by"] = [{n: r.to_json() for n, r in roles if r is not None}]
            out.append(shown)
        return out

    async def invalidate_api_keys(self, query: KeyQuery) -> dict[str, Any]:
        """Keys stop working at the very next request: the gate verifies every key on every request."""
        query.check(invalidate=True)
        ids = [r.id for r in self._find_keys(query)]
        if not ids:
            return {"invalidated_api_keys": [], "previously_invalidated_api_keys": [], "error_count": 0}
        done, already = await self._change(self._store.invalidate_api_keys, ids)
        return {"invalidated_api_keys": done, "previously_invalidated_api_keys": already, "error_count": 0}


# -- checks -------------------------------------------------------------------------------------
def pattern_covers(owner: str, wanted: str) -> bool:
    """True when every index name `wanted` matches (fnmatch: `*`, `?`) is matched by `owner` too.

    Conservative: it may say False for some covering pairs, never True for a wider one. A bracket
    class in `wanted` is covered only by the same pattern or by one made of `*` only.
    """
    if owner == wanted or (owner and not owner.strip("*")):
        return True
    if "[" in wanted:
        return False
    want, have = _tokens(wanted), _tokens(owner)
    seen: set[tuple[int, int]] = set()

    def walk(i: int, j: int) -> bool:  # Can owner tokens have[j:] match every string want[i:] makes?
        if (i, j) in seen:
            return False
        seen.add((i, j))
        if j == len(have):
            return i == len(want)
        token = have[j]
        if token == "*":
            return walk(i, j + 1) or (i < len(want) and walk(i + 1, j))
        if i == len(want) or want[i] == "*":
            return False
        return (token == "?" or token == want[i]) and walk(i + 1, j + 1)
    return walk(0, 0)


def _tokens(pattern: str) -> list[str]:
    """Pattern characters, with each run of wildcards rewritten as its `?`s then one `*`: `*?*` is `?*`."""
    out: list[str] = []
    run: list[str] = []
    for char in pattern + "\0":
        if char in "*?":
            run.append(char)
            continue
        if run:
            out += ["?"] * run.count("?") + (["*"] if "*" in run else [])
            run = []
        if char != "\0":
            out.append(char)
    return out


def _within(needed: frozenset[str], held: frozenset[str]) -> bool:
    return "*" in held or needed <= held


def _check_username(name: str) -> None:
    if (not 1 <= len(name) <= MAX_NAME_CHARS or name != name.strip() or name.startswith("_") or ":" in name
            or "," in name or not all(" " <= c <= "~" for c in name)):
        raise ActionRequestValidationError(
            f"Usernames must be at least 1 and no more than {MAX_NAME_CHARS} characters. They can contain "
            "alphanumeric characters (a-z, A-Z, 0-9), spaces, punctuation, and printable symbols in the "
            "Basic Latin (ASCII) block, except [:] and [,]. Leading or trailing whitespace is not allowed, "
            "nor a leading [_].")


def _check_key_name(name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise ActionRequestValidationError("api key name is required")
    if len(name) > MAX_KEY_NAME_CHARS:
        raise ActionRequestValidationError(f"api key name may not be more than [{MAX_KEY_NAME_CHARS}] "
                                           "characters long")
    if name != name.strip():
        raise ActionRequestValidationError("api key name may not begin or end with whitespace")
    if name.startswith("_"):
        raise ActionRequestValidationError("api key name may not begin with an underscore")


def _check_password_hash(value: Any) -> None:
    """Only argon2id, at a cost that protects the hash and that the server can afford per login."""
    if not isinstance(value, str) or not _ARGON2ID.fullmatch(value):
        raise IllegalArgumentError(BAD_HASH)
    try:
        params = extract_parameters(value)
    except InvalidHashError:
        raise IllegalArgumentError(BAD_HASH) from None
    memory, passes = params.memory_cost, params.time_cost
    if (params.type is not Type.ID or not HASH_MIN_MEMORY_KIB <= memory <= HASH_MAX_MEMORY_KIB
            or memory * passes < HASH_MIN_WORK or not 1 <= passes <= HASH_MAX_TIME
            or not 1 <= params.parallelism <= HASH_MAX_PARALLELISM
            or params.salt_len < 16 or params.hash_len < 16):
        raise IllegalArgumentError(BAD_HASH)


def _object(body: Any, allowed: set[str], what: str) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise RequestError(f"{what}: the body must be an object")
    unknown = set(body) - allowed
    if unknown:
        raise RequestError(f"{what}. unexpected field [{min(unknown)}]")
    return body


def _optional_str(body: dict[str, Any], key: str, default: str | None) -> str | None:
    value = body.get(key, default)
    if value is not None and not isinstance(value, str):
        raise RequestError(f"[{key}] must be a string or null")
    return value


def _metadata(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RequestError("[metadata] must be an object")
    if any(key.startswith("_") for key in value):
        raise IllegalArgumentError("metadata keys may not start with [_]")
    return value


def _policy_errors(fn: Callable[..., T]) -> Callable[..., T]:
    """The store checks passwords again under its lock; its refusal becomes a 400."""
    def run(*args: Any) -> T:
        try:
            return fn(*args)
        except PasswordPolicyError as exc:
            raise ActionRequestValidationError(str(exc)) from None
    return run


def split_names(value: str | None) -> list[str] | None:
    """`a,b` → ["a", "b"]; no value → None, meaning all."""
    if value is None:
        return None
    return [n.strip() for n in value.split(",") if n.strip()] or None


def key_ids(values: Iterable[Any]) -> tuple[str, ...]:
    ids = tuple(values)
    if not all(isinstance(i, str) and i for i in ids):
        raise RequestError("[ids] must be an array of non-empty strings")
    return ids
