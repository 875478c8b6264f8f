"""The security gate: the only way from an HTTP request to data.

`Gate.open_session` authenticates the request's credentials and returns a `Session`, the handle
through which the api layer reaches indices. The gate owns the only reference to the engine;
there is no anonymous mode and no switch that turns authentication off.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio

from ..engine.node import Engine
from ..engine.snapshots import SnapshotService
from ..errors import AuthenticationError
from .policy import Policy, RolePolicy
from .scroll import ScrollRegistry
from .session import Session
from .throttle import LoginThrottle
from .roles import parse_role
from .users import AUTH_API_KEY, AUTH_INTERNAL, Principal, SecurityStore
from .admin import SecurityAdmin
from .masks import Masker
from .vault import Vault
from .exfil import Exchange, Guard, Ledger
from .console import ConsoleClaim, ConsoleSession, ConsoleSessions
from ..crypto.keys import MasterKey
from ..crypto.keyed import KeyedMac

CACHE_TTL_SECONDS = 20 * 60.0  # Elasticsearch's realm cache default.
CACHE_MAX_ENTRIES = 10_000
MAX_CREDENTIAL_BYTES = 4096


class Gate:
    def __init__(self, engine: Engine, users: SecurityStore, *, policy: Policy | None = None,
                 throttle: LoginThrottle | None = None, clock: Callable[[], float] = time.monotonic,
                 cluster_info: dict[str, str] | None = None, hash_concurrency: int = 2,
                 doctor: Callable[[], dict[str, Any]] | None = None, mask_key: bytes | None = None,
                 vault: Vault | None = None, snapshot_roots: Sequence[Path] = (),
                 protected_dirs: Sequence[Path] = (), guard: Guard | None = None,
                 console: ConsoleSessions | None = None) -> None:
        self.__engine = engine
        # Exfiltration defences (exfil.py): budgets, audit, alerts, dump detection, canaries.
        self._guard = guard if guard is not None else Guard()
        # Snapshot repositories may live only under `path.repo` roots, never overlapping the data
        # directory or `protected_dirs` (the config directory, where keys live).
        self.__snapshots = SnapshotService(engine, roots=snapshot_roots, forbidden=protected_dirs)
        self._users = users
        self._policy = policy or RolePolicy(users.role)
        self._throttle = throttle or LoginThrottle(clock=clock)
        self._clock = clock
        self._cluster_info = cluster_info or {}
        # Verified credentials, keyed by a keyed hash (never the password); void after any user change.
        self._cache_mac = KeyedMac(os.urandom(32))
        self._cache: OrderedDict[bytes, tuple[Principal, float, int]] = OrderedDict()
        # argon2id costs 64 MiB per verification: bound how many run at once.
        self._hashing = asyncio.Semaphore(hash_concurrency)
        self._scrolls = ScrollRegistry(clock)
        self._doctor = doctor  # the deployment self-check's latest report (doctor.py)
        # The `hash` mask's key: the server passes the persisted one (config dir); tests get a fresh one.
        self._masker = Masker(mask_key if mask_key is not None else os.urandom(32))
        # Sealing at rest: the server passes its vault (master key loaded, every index checked); tests get
        # a fresh key per gate.
        self._vault = vault if vault is not None else Vault(MasterKey.generate())
        self._key_roles: dict[str, tuple] = {}
        self._limits_cache: dict[tuple[Any, ...], Any] = {}
        # Web console sessions (console.py): a cookie instead of an Authorization header.
        self.console = console if console is not None else ConsoleSessions(users)

    async def open_session(self, authorization: str | None, address: str, path: str, *,
                           purpose: str | None = None) -> Session:
        principal = await self.authenticate(authorization, address, path)
        return self._session(principal, purpose)

    def _session(self, principal: Principal, purpose: str | None = None, ledger: Ledger | None = None) -> Session:
        return Session(principal, self.__engine, self._policy, self._cluster_info, self._scrolls,
                       doctor=self._doctor, admin=self._admin, masker=self._masker, purpose=purpose,
                       vault=self._vault, snapshots=self.__snapshots, ledger=ledger, guard=self._guard)

    def exchange(self, method: str, path: str, address: str) -> Exchange:
        """One HTTP request: the dispatcher's only way to a session (authentication, admission, audit)."""
        return Exchange(self, self._guard, method, path, address)

    def session_for(self, principal: Principal, purpose: str | None, ledger: Ledger) -> Session:
        return self._session(principal, purpose, ledger)

    def limits_of(self, principal: Principal) -> Any:
        """The principal's limits, combined once per set of roles and security store generation."""
        limits_of = getattr(self._policy, "limits_of", None)
        if limits_of is None:
            return None
        key = (principal.roles, principal.api_key_id, self._users.generation)
        cached = self._limits_cache.get(key, self)
        if cached is self:
            cached = limits_of(principal)
            if len(self._limits_cache) > CACHE_MAX_ENTRIES:
                self._limits_cache.clear()
            self._limits_cache[key] = cached
        return cached

    def _admin(self, principal: Principal) -> "SecurityAdmin":
        return SecurityAdmin(principal, self._users, self._policy, on_change=self._security_changed)

    def _security_changed(self) -> None:
        """Users, roles or keys changed: forget cached credentials and parsed key roles at once."""
        self._cache.clear()
        self._key_roles.clear()
        self._limits_cache.clear()

    def system_session(self, purpose: str) -> Session:
        """A superuser session for work the server does on its own behalf (loading demo data)."""
        return self._session(Principal(f"_system:{purpose}", ("superuser",), auth=AUTH_INTERNAL))

    async def authenticate(self, authorization: str | None, address: str, path: str) -> Principal:
        if not authorization:
            raise AuthenticationError(f"missing authentication credentials for REST request [{path}]")
        if len(authorization) > MAX_CREDENTIAL_BYTES:
            raise AuthenticationError("unable to authenticate: credentials too long")
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "apikey":
            return self._api_key(value.strip(), path)
        if scheme.lower() != "basic":
            raise AuthenticationError(f"unable to authenticate with the [{scheme}] scheme for REST request [{path}]")
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise AuthenticationError(f"unable to authenticate: malformed basic credentials for REST request "
                                      f"[{path}]") from None
        user, sep, password = decoded.partition(":")
        if not sep or not user:
            raise AuthenticationError(f"unable to authenticate: malformed basic credentials for REST request "
                                      f"[{path}]")
        return await self._password(user, password, address, path)

    async def console_login(self, user: str, password: str, address: str, path: str
                            ) -> tuple[Principal, str, ConsoleSession]:
        """A console login: the password is checked exactly as Basic credentials are (cache, throttle,
        argon2id); then a console session opens. (principal, cookie token, session)."""
        if not user or len(user) + len(password) > MAX_CREDENTIAL_BYTES:
            raise AuthenticationError(f"unable to authenticate user [{user[:64]}] for REST request [{path}]")
        principal = await self._password(user, password, address, path)
        token, session = self.console.create(principal)
        return principal, token, session

    def console_authenticate(self, claim: ConsoleClaim, method: str) -> tuple[Principal, ConsoleSession]:
        """The principal of a console cookie (401 without a live session; 403 for a state-changing request
        without its CSRF token or from another origin)."""
        return self.console.authenticate(claim, method)

    async def _password(self, user: str, password: str, address: str, path: str) -> Principal:
        cached = self._cached(user, password)
        if cached is not None:
            return cached
        lock = self._throttle.lock(user, address)
        async with lock:
            await self._throttle.wait_turn(user, address)
            async with self._hashing:
                record = await anyio.to_thread.run_sync(self._users.verify, user, password)
            if record is None:
                self._throttle.failure(user, address)
                # Unknown user and wrong password read the same.
                raise AuthenticationError(f"unable to authenticate user [{user}] for REST request [{path}]")
            self._throttle.success(user, address)
        principal = Principal(record.name, tuple(record.roles), tenant=_tenant(record.metadata))
        self._remember(user, password, principal)
        return principal

    def _api_key(self, value: str, path: str) -> Principal:
        """`ApiKey base64(id:secret)`. Verified at every request (a salted SHA-256 of a 192-bit secret is
        cheap), so an invalidated or expired key stops working at the next request."""
        refused = AuthenticationError(f"unable to authenticate with provided credentials and anonymous access "
                                      f"is not allowed for this request [{path}]")
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise refused from None
        key_id, sep, secret = decoded.partition(":")
        if not sep or not key_id or not secret:
            raise refused
        record = self._users.verify_api_key(key_id, secret, now_ms=int(time.time() * 1000))
        if record is None:
            raise refused
        owner = self._users.get_user(record.owner)
        if owner is None:
            raise refused
        cached = self._key_roles.get(record.id)
        if cached is None:
            cached = tuple(parse_role(name, body, for_api_key=True) for name, body in record.role_descriptors.items())
            self._key_roles[record.id] = cached  # descriptors never change after creation
        key_roles = cached
        return Principal(owner.name, tuple(owner.roles), auth=AUTH_API_KEY, api_key_id=record.id,
                         api_key_name=record.name, key_roles=key_roles or None, tenant=_tenant(owner.metadata))

    def _digest(self, user: str, password: str) -> bytes:
        return self._cache_mac.digest(f"{user}\x00{password}".encode())

    def _cached(self, user: str, password: str) -> Principal | None:
        entry = self._cache.get(self._digest(user, password))
        if entry is None:
            return None
        principal, expires, generation = entry
        if expires < self._clock() or generation != self._users.generation:
            return None
        return principal

    def _remember(self, user: str, password: str, principal: Principal) -> None:
        key = self._digest(user, password)
        self._cache[key] = (principal, self._clock() + CACHE_TTL_SECONDS, self._users.generation)
        self._cache.move_to_end(key)
        while len(self._cache) > CACHE_MAX_ENTRIES:
            self._cache.popitem(last=False)


def _tenant(metadata: Any) -> str | None:
    tenant = metadata.get("tenant") if isinstance(metadata, dict) else None
    return tenant if isinstance(tenant, str) and tenant else None
