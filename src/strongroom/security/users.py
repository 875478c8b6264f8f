"""Identities: users, roles and API keys, persisted in `<data-dir>/security/` (mode 0600).

Only password hashes (argon2id) and API key digests are stored. The bootstrap password is shown
once by the command that started the server and is never written anywhere in clear. Every change
bumps `generation`, which voids cached authentications at once (invalidation takes effect on the
next request).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ..engine.fsutil import atomic_write, make_dirs
from .passwords import PasswordPolicyError, check_password
from .roles import SUPERUSER, Role, parse_role

BOOTSTRAP_USER = "admin"
SUPERUSER_ROLE = "superuser"
# How a Principal was authenticated (also what its audit records say; console.AUTH for the console's cookie).
AUTH_BASIC, AUTH_API_KEY, AUTH_INTERNAL = "basic", "api_key", "internal"
__all__ = ["AUTH_API_KEY", "AUTH_BASIC", "AUTH_INTERNAL", "BOOTSTRAP_USER", "SUPERUSER_ROLE", "ApiKeyRecord",
           "PasswordPolicyError", "Principal", "SecurityStore", "UserRecord"]


@dataclass(frozen=True)
class Principal:
    """Who is asking. Built by the gate from verified credentials; never from client claims."""

    name: str
    roles: tuple[str, ...]
    auth: str = AUTH_BASIC  # AUTH_BASIC | AUTH_API_KEY | AUTH_INTERNAL
    api_key_id: str | None = None
    api_key_name: str | None = None
    key_roles: tuple[Role, ...] | None = None  # an API key's own descriptors, limited by the owner's roles
    tenant: str | None = None  # the user's metadata.tenant: identities of one tenant are watched together

    @property
    def is_superuser(self) -> bool:
        return SUPERUSER_ROLE in self.roles and not self.key_roles


@dataclass
class UserRecord:
    name: str
    password_hash: str
    roles: list[str]
    enabled: bool = True
    bootstrap: bool = False
    full_name: str | None = None
    email: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    changed: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"hash": self.password_hash, "roles": self.roles, "enabled": self.enabled, "bootstrap": self.bootstrap,
                "full_name": self.full_name, "email": self.email, "metadata": self.metadata, "changed": self.changed}

    @classmethod
    def from_json(cls, name: str, body: dict[str, Any]) -> "UserRecord":
        return cls(name, body["hash"], list(body["roles"]), body.get("enabled", True), body.get("bootstrap", False),
                   body.get("full_name"), body.get("email"), body.get("metadata", {}), body.get("changed", 0))

    def public(self) -> dict[str, Any]:
        return {"username": self.name, "roles": list(self.roles), "full_name": self.full_name, "email": self.email,
                "metadata": self.metadata, "enabled": self.enabled}


@dataclass
class ApiKeyRecord:
    id: str
    name: str
    owner: str
    salt: str
    digest: str
    created: int
    expiration: int | None = None
    invalidated: bool = False
    role_descriptors: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "owner": self.owner, "salt": self.salt, "digest": self.digest,
                "created": self.created, "expiration": self.expiration, "invalidated": self.invalidated,
                "role_descriptors": self.role_descriptors, "metadata": self.metadata}

    @classmethod
    def from_json(cls, key_id: str, body: dict[str, Any]) -> "ApiKeyRecord":
        return cls(key_id, body["name"], body["owner"], body["salt"], body["digest"], body["created"],
                   body.get("expiration"), body.get("invalidated", False), body.get("role_descriptors", {}),
                   body.get("metadata", {}))

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "name": self.name, "creation": self.created,
                               "invalidated": self.invalidated, "username": self.owner, "realm": "native",
                               "metadata": self.metadata, "role_descriptors": self.role_descriptors}
        if self.expiration is not None:
            out["expiration"] = self.expiration
        return out


def api_key_digest(secret: str, salt: str) -> str:
    """API key secrets are 128 random bits or more, so a salted SHA-256 is a sound verifier."""
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


class SecurityStore:
    """Users, roles and API keys. Thread-safe; every change is written atomically before it counts."""

    def __init__(self, data_dir: Path, hasher: PasswordHasher | None = None) -> None:
        self._dir = data_dir / "security"
        self.hasher = hasher or PasswordHasher()  # argon2id, RFC 9106 low-memory profile
        self._lock = threading.RLock()
        self.generation = 0  # Bumped on every change: cached authentications of older generations are void.
        self._users: dict[str, UserRecord] = {}
        self._roles: dict[str, Role] = {}
        self._keys: dict[str, ApiKeyRecord] = {}
        # Unknown users are verified against this hash so that they cost the same time as known ones.
        self.dummy_hash = self.hasher.hash(secrets.token_urlsafe(24))
        if (self._dir / "users.json").exists():
            raw = json.loads((self._dir / "users.json").read_bytes())
            self._users = {name: UserRecord.from_json(name, body) for name, body in raw["users"].items()}
        if (self._dir / "roles.json").exists():
            raw = json.loads((self._dir / "roles.json").read_bytes())
            self._roles = {name: parse_role(name, body) for name, body in raw["roles"].items()}
        if (self._dir / "api_keys.json").exists():
            raw = json.loads((self._dir / "api_keys.json").read_bytes())
            self._keys = {key_id: ApiKeyRecord.from_json(key_id, body) for key_id, body in raw["api_keys"].items()}

    # -- persistence -------------------------------------------------------------------------
    def _write(self, name: str, body: dict[str, Any]) -> None:
        make_dirs(self._dir)
        atomic_write(self._dir / name, json.dumps(body, indent=1, ensure_ascii=False).encode(), mode=0o600)

    def _save_users(self, users: dict[str, UserRecord]) -> None:
        self._write("users.json", {"version": 1, "users": {n: r.to_json() for n, r in sorted(users.items())}})
        self._users = users
        self.generation += 1

    def _save_roles(self, roles: dict[str, Role]) -> None:
        body = {n: {k: v for k, v in r.to_json().items() if k not in ("applications", "run_as", "transient_metadata")}
                for n, r in sorted(roles.items())}
        self._write("roles.json", {"version": 1, "roles": body})
        self._roles = roles
        self.generation += 1

    def _save_keys(self, keys: dict[str, ApiKeyRecord]) -> None:
        self._write("api_keys.json", {"version": 1, "api_keys": {k: r.to_json() for k, r in sorted(keys.items())}})
        self._keys = keys
        self.generation += 1

    # -- users -------------------------------------------------------------------------------
    @property
    def initialized(self) -> bool:
        return bool(self._users)

    def bootstrap(self, password: str | None) -> str | None:
        """Creates the superuser on first start. Returns the generated password (None if one was given)."""
        with self._lock:
            if self._users:
                return None
            generated = None
            if password is None:
                generated = password = secrets.token_urlsafe(18)
            check_password(password, user=BOOTSTRAP_USER)
            record = UserRecord(BOOTSTRAP_USER, self.hasher.hash(password), [SUPERUSER_ROLE], bootstrap=True,
                                changed=_now_ms())
            self._save_users({BOOTSTRAP_USER: record})
            return generated

    def get_user(self, name: str) -> UserRecord | None:
        return self._users.get(name)

    def users(self) -> list[UserRecord]:
        return [self._users[name] for name in sorted(self._users)]

    def verify(self, name: str, password: str) -> UserRecord | None:
        """The user, when the password is right and the user enabled; None otherwise. Slow on purpose."""
        record = self._users.get(name)
        try:
            self.hasher.verify(record.password_hash if record else self.dummy_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if record is None or not record.enabled:
            return None
        return record

    def put_user(self, name: str, *, password: str | None, password_hash: str | None, roles: list[str],
                 full_name: str | None, email: str | None, metadata: dict[str, Any], enabled: bool) -> bool:
        """Creates or updates a user; returns True when created. A new user needs a password."""
        with self._lock:
            existing = self._users.get(name)
            if password is not None:
                check_password(password, user=name)
                hashed = self.hasher.hash(password)
            elif password_hash is not None:
                hashed = password_hash
            elif existing is not None:
                hashed = existing.password_hash
            else:
                raise PasswordPolicyError("password must be specified unless you are updating an existing user")
            record = UserRecord(name, hashed, roles, enabled, existing.bootstrap if existing else False, full_name,
                                email, metadata, _now_ms())
            if existing is not None and password is None and password_hash is None:
                record = replace(record, bootstrap=existing.bootstrap)
            self._check_superuser_remains({**self._users, name: record})
            self._save_users({**self._users, name: record})
            return existing is None

    def change_password(self, name: str, password: str) -> bool:
        with self._lock:
            existing = self._users.get(name)
            if existing is None:
                return False
            check_password(password, user=name)
            record = replace(existing, password_hash=self.hasher.hash(password), bootstrap=False, changed=_now_ms())
            self._save_users({**self._users, name: record})
            return True

    def set_enabled(self, name: str, enabled: bool) -> bool:
        with self._lock:
            existing = self._users.get(name)
            if existing is None:
                return False
            users = {**self._users, name: replace(existing, enabled=enabled)}
            self._check_superuser_remains(users)
            self._save_users(users)
            return True

    def delete_user(self, name: str) -> bool:
        with self._lock:
            if name not in self._users:
                return False
            users = {k: v for k, v in self._users.items() if k != name}
            self._check_superuser_remains(users)
            self._save_users(users)
            self._save_keys({k: replace(v, invalidated=True) if v.owner == name else v for k, v in self._keys.items()})
            return True

    @staticmethod
    def _check_superuser_remains(users: dict[str, UserRecord]) -> None:
        if not any(SUPERUSER_ROLE in u.roles and u.enabled for u in users.values()):
            from ..errors import IllegalArgumentError
            raise IllegalArgumentError("this change would leave no enabled superuser; create another one first")

    # -- roles -------------------------------------------------------------------------------
    def role(self, name: str) -> Role | None:
        if name == SUPERUSER_ROLE:
            return SUPERUSER
        return self._roles.get(name)

    def roles(self) -> dict[str, Role]:
        return {SUPERUSER_ROLE: SUPERUSER, **self._roles}

    def put_role(self, role: Role) -> bool:
        with self._lock:
            created = role.name not in self._roles
            self._save_roles({**self._roles, role.name: role})
            return created

    def delete_role(self, name: str) -> bool:
        with self._lock:
            if name not in self._roles:
                return False
            self._save_roles({k: v for k, v in self._roles.items() if k != name})
            return True

    # -- API keys ----------------------------------------------------------------------------
    def create_api_key(self, owner: str, name: str, expiration: int | None, role_descriptors: dict[str, Any],
                       metadata: dict[str, Any]) -> tuple[ApiKeyRecord, str]:
        key_id = base64.urlsafe_b64encode(os.urandom(15)).decode()
        secret = base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip("=")  # 192 random bits
        salt = os.urandom(16).hex()
        record = ApiKeyRecord(key_id, name, owner, salt, api_key_digest(secret, salt), _now_ms(), expiration, False,
                              role_descriptors, metadata)
        with self._lock:
            self._save_keys({**self._keys, key_id: record})
        return record, secret

    def api_key(self, key_id: str) -> ApiKeyRecord | None:
        return self._keys.get(key_id)

    def api_keys(self) -> list[ApiKeyRecord]:
        return [self._keys[k] for k in sorted(self._keys)]

    def invalidate_api_keys(self, ids: list[str]) -> tuple[list[str], list[str]]:
        with self._lock:
            done, already = [], []
            keys = dict(self._keys)
            for key_id in ids:
                record = keys.get(key_id)
                if record is None:
                    continue
                if record.invalidated:
                    already.append(key_id)
                else:
                    keys[key_id] = replace(record, invalidated=True)
                    done.append(key_id)
            if done:
                self._save_keys(keys)
            return done, already

    def verify_api_key(self, key_id: str, secret: str, *, now_ms: int) -> ApiKeyRecord | None:
        record = self._keys.get(key_id)
        # The same work whether or not the id exists: wrong, expired and unknown keys look alike.
        salt = record.salt if record is not None else "00" * 16
        digest = api_key_digest(secret, salt)
        expected = record.digest if record is not None else "0" * 64
        if not hmac.compare_digest(digest, expected) or record is None or record.invalidated:
            return None
        if record.expiration is not None and record.expiration <= now_ms:
            return None
        owner = self._users.get(record.owner)
        if owner is None or not owner.enabled:
            return None
        return record


def _now_ms() -> int:
    return int(time.time() * 1000)
