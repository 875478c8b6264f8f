"""Web console sessions: a cookie that stands in for a password, and nothing more.

A console login (`POST /_console/login`) verifies the password through the gate's usual path
(argon2id, credential cache, login throttle) and opens a session here. The browser then holds the
cookie `sr_console` (`Secure; HttpOnly; SameSite=Strict`), and every console request reaches the
same REST routes as any client, under the same policy, budgets and audit; only the credential differs.

* The token is 32 random bytes (`secrets.token_urlsafe`); the store keeps only its SHA-256, so a
  memory dump of the store does not give a usable cookie. The store is in memory: a restart logs
  everyone out.
* A session ends after `idle_seconds` without a request (a page's own polling, marked
  `X-Strongroom-Console: background`, does not count: an unattended alerts screen logs out too),
  `lifetime_seconds` after login whatever happens, at logout, and as soon as its user is deleted,
  disabled or gets a new password. Roles are read from the user store at every request, so a role
  change applies at the next request. A user holds at most MAX_SESSIONS_PER_USER sessions (the
  oldest goes first), so one account cannot push everyone else's out.
* CSRF: each session has its own random token, which the console's JavaScript reads from
  `GET /_console/session` and sends as `X-CSRF-Token` on every request that is not GET or HEAD
  (compared in constant time). Such requests are also refused when the browser says they come
  from another origin (`Origin`, `Sec-Fetch-Site`). `SameSite=Strict` is the first wall; these are
  the second and third.
* An invalid or expired cookie is a 401 without `WWW-Authenticate`, so a browser never pops up its
  password dialog for the console's own calls.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import AuthenticationError, SecurityError
from .users import Principal

COOKIE = "sr_console"
CSRF_HEADER = "X-CSRF-Token"
CONSOLE_HEADER = "X-Strongroom-Console"  # sent by the console's script on every call (see api/console.py)
AUTH = "console"  # Principal.auth of cookie-authenticated requests (the audit record shows it)
SAFE_METHODS = frozenset({"GET", "HEAD"})
MAX_SESSIONS = 10_000
MAX_SESSIONS_PER_USER = 16  # one user's logins cannot push everyone else's sessions out
MAX_TOKEN_CHARS = 128


class ConsoleSessionError(AuthenticationError):
    """No valid console session. Same text for a missing, unknown, expired or ended session."""

    def __init__(self) -> None:
        super().__init__("the console session is missing or has expired; log in again")

    def headers(self) -> dict[str, str]:
        return {}  # no WWW-Authenticate: the browser must not offer its Basic password dialog


class CsrfError(SecurityError):
    """A cookie-authenticated state-changing request without the session's CSRF token, or from
    another origin."""

    status = 403

    def __init__(self, why: str) -> None:
        super().__init__(f"console request refused: {why}")


@dataclass(frozen=True)
class ConsoleClaim:
    """What a console request presents besides its path: taken from the HTTP request by the api layer."""

    cookie: str | None
    csrf: str | None = None
    origin: str | None = None  # the `Origin` header, if any
    own_origin: str | None = None  # scheme://host[:port] of this server as the request addressed it
    fetch_site: str | None = None  # the `Sec-Fetch-Site` header, if any
    background: bool = False  # a page's own polling (not the user's doing): does not restart the idle clock


@dataclass
class ConsoleSession:
    user: str
    csrf: str
    created: float
    last_seen: float
    password_hash: str  # a new password ends the session
    idle_seconds: float  # shown to the page, which warns before the session ends


class ConsoleSessions:
    """In-memory store of console sessions, keyed by the SHA-256 of the token (thread-safe)."""

    def __init__(self, users: Any, *, idle_seconds: float = 900.0, lifetime_seconds: float = 8 * 3600.0,
                 clock: Callable[[], float] = time.monotonic, max_sessions: int = MAX_SESSIONS) -> None:
        if idle_seconds <= 0 or lifetime_seconds <= 0:
            raise ValueError("console session timeouts must be positive")
        self._users = users  # users.SecurityStore
        self.idle_seconds = float(idle_seconds)
        self.lifetime_seconds = float(lifetime_seconds)
        self._clock = clock
        self._max = max_sessions
        self._lock = threading.Lock()
        self._sessions: OrderedDict[bytes, ConsoleSession] = OrderedDict()

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()

    def create(self, principal: Principal) -> tuple[str, ConsoleSession]:
        """A new session for a principal whose password was just verified: (cookie token, session)."""
        record = self._users.get_user(principal.name)
        if record is None:
            raise ConsoleSessionError()
        token = secrets.token_urlsafe(32)
        now = self._clock()
        session = ConsoleSession(principal.name, secrets.token_urlsafe(32), now, now, record.password_hash,
                                 self.idle_seconds)
        with self._lock:
            self._expire(now)
            mine = [key for key, s in self._sessions.items() if s.user == principal.name]
            for key in mine[:max(0, len(mine) - MAX_SESSIONS_PER_USER + 1)]:
                del self._sessions[key]  # that user's oldest login goes first
            self._sessions[self._key(token)] = session
            while len(self._sessions) > self._max:
                self._sessions.popitem(last=False)  # the oldest login goes first
        return token, session

    def authenticate(self, claim: ConsoleClaim, method: str) -> tuple[Principal, ConsoleSession]:
        """The principal behind a console cookie. ConsoleSessionError (401) when there is no valid
        session; CsrfError (403) for a state-changing request without the right token or from elsewhere."""
        session = self.lookup(claim.cookie, touch=not claim.background)
        if session is None:
            raise ConsoleSessionError()
        record = self._users.get_user(session.user)
        if record is None or not record.enabled or record.password_hash != session.password_hash:
            self.drop(claim.cookie)
            raise ConsoleSessionError()
        if method.upper() not in SAFE_METHODS:
            check_request_origin(claim)
            presented = claim.csrf or ""
            if not presented or not hmac.compare_digest(presented.encode("utf-8", "surrogatepass"),
                                                        session.csrf.encode()):
                raise CsrfError(f"the {CSRF_HEADER} header is missing or wrong")
        principal = Principal(record.name, tuple(record.roles), auth=AUTH, tenant=_tenant(record.metadata))
        return principal, session

    def lookup(self, token: str | None, *, touch: bool = True) -> ConsoleSession | None:
        """The live session of a token (its idle clock restarted when `touch`); None when there is none."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        key = self._key(token)
        now = self._clock()
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                return None
            if now - session.last_seen > self.idle_seconds or now - session.created > self.lifetime_seconds:
                del self._sessions[key]
                return None
            if touch:
                session.last_seen = now
            return session

    def drop(self, token: str | None) -> bool:
        if not token or len(token) > MAX_TOKEN_CHARS:
            return False
        with self._lock:
            return self._sessions.pop(self._key(token), None) is not None

    def count(self) -> int:
        with self._lock:
            self._expire(self._clock())
            return len(self._sessions)

    def _expire(self, now: float) -> None:
        dead = [key for key, s in self._sessions.items()
                if now - s.last_seen > self.idle_seconds or now - s.created > self.lifetime_seconds]
        for key in dead:
            del self._sessions[key]


def check_request_origin(claim: ConsoleClaim) -> None:
    """Refuses a request the browser says comes from another site (login included)."""
    if claim.fetch_site is not None and claim.fetch_site.strip().lower() not in ("same-origin", "none"):
        raise CsrfError("the request comes from another site")
    if claim.origin is not None:
        if claim.own_origin is None or claim.origin.strip().lower().rstrip("/") != claim.own_origin.lower():
            raise CsrfError("the request comes from another origin")


def _tenant(metadata: Any) -> str | None:
    tenant = metadata.get("tenant") if isinstance(metadata, dict) else None
    return tenant if isinstance(tenant, str) and tenant else None
