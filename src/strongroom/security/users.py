"""Users: argon2id password hashes in `<data-dir>/security/users.json`, and the bootstrap admin.

Only hashes are stored. The bootstrap password is shown once by the command that started the
server and is never written anywhere in clear.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ..engine.fsutil import atomic_write, make_dirs

BOOTSTRAP_USER = "admin"
SUPERUSER_ROLE = "superuser"
MIN_PASSWORD_LENGTH = 15  # NIST SP 800-63B: length, not composition rules.


class PasswordPolicyError(ValueError):
    pass


@dataclass(frozen=True)
class Principal:
    """Who is asking. Built by the gate from verified credentials; never from client claims."""

    name: str
    roles: tuple[str, ...]
    auth: str = "basic"

    @property
    def is_superuser(self) -> bool:
        return SUPERUSER_ROLE in self.roles


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


def check_password_policy(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordPolicyError(f"passwords must be at least [{MIN_PASSWORD_LENGTH}] characters long")


class UserStore:
    """Thread-safe; every change is written atomically before it takes effect."""

    def __init__(self, data_dir: Path, hasher: PasswordHasher | None = None) -> None:
        self._dir = data_dir / "security"
        self._path = self._dir / "users.json"
        self.hasher = hasher or PasswordHasher()  # argon2id, RFC 9106 low-memory profile
        self._lock = threading.Lock()
        self._users: dict[str, UserRecord] = {}
        self.generation = 0  # Bumped on every change: cached authentications of older generations are void.
        # Unknown users are verified against this hash so that they cost the same time as known ones.
        self.dummy_hash = self.hasher.hash(secrets.token_urlsafe(24))
        if self._path.exists():
            raw = json.loads(self._path.read_bytes())
            self._users = {name: UserRecord.from_json(name, body) for name, body in raw["users"].items()}

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
            check_password_policy(password)
            record = UserRecord(BOOTSTRAP_USER, self.hasher.hash(password), [SUPERUSER_ROLE], bootstrap=True,
                                changed=int(time.time() * 1000))
            self._save({BOOTSTRAP_USER: record})
            return generated

    def get(self, name: str) -> UserRecord | None:
        return self._users.get(name)

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

    def _save(self, users: dict[str, UserRecord]) -> None:
        make_dirs(self._dir)
        body = {"version": 1, "users": {name: r.to_json() for name, r in sorted(users.items())}}
        atomic_write(self._path, json.dumps(body, indent=1).encode(), mode=0o600)
        self._users = users
        self.generation += 1
