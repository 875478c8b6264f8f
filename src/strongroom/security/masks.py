"""Masks: how a role shows a field's value without revealing it.

- `last4`       13812345678 → *******5678 (values of 4 characters or fewer: all stars)
- `middle`      13812345678 → 138****5678 (first 3 and last 4 kept; shorter values as `last4`)
- `first_char`  张伟明 → 张**, Zhang → Z****
- `redact`      any value → "[REDACTED]" (length hidden too)
- `hash`        HMAC-SHA256 under the deployment's mask key, so equal values still join
                (across fields and indices) without showing the value

Numbers and booleans are masked as their JSON text and become strings; `null` stays `null`
(presence is not secret when the field is shown at all). Arrays are masked per element and objects
per leaf by the caller (access.py), which walks documents.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..engine.fsutil import atomic_write

REDACTED = "[REDACTED]"
# When one document's field is masked differently by several roles, the most revealing mask that
# every layer agrees to is not computable in general; the strictest one wins.
STRICTNESS = ("redact", "hash", "first_char", "middle", "last4")
KEY_FILE = "mask.key"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def last4(text: str) -> str:
    if len(text) <= 4:
        return "*" * len(text)
    return "*" * (len(text) - 4) + text[-4:]


def middle(text: str) -> str:
    if len(text) < 8:
        return last4(text)
    return text[:3] + "*" * (len(text) - 7) + text[-4:]


def first_char(text: str) -> str:
    if len(text) <= 1:
        return "*" * len(text)
    return text[0] + "*" * (len(text) - 1)


class Masker:
    """Applies masks by name; holds the key of the `hash` mask."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the mask key must be at least 32 bytes")
        self._key = key
        self._by_name: dict[str, Callable[[str], str]] = {
            "last4": last4, "middle": middle, "first_char": first_char,
            "redact": lambda _text: REDACTED, "hash": self._hash}

    def _hash(self, text: str) -> str:
        digest = hmac.new(self._key, text.encode("utf-8"), hashlib.sha256).digest()[:16]
        return "h:" + base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def apply(self, kind: str, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, list):
            return [self.apply(kind, item) for item in value]
        if isinstance(value, dict):
            return {k: self.apply(kind, v) for k, v in value.items()}
        return self._by_name[kind](_text(value))


def strictest(kinds: set[str]) -> str:
    return next(kind for kind in STRICTNESS if kind in kinds)


def load_or_create_key(config_dir: Path) -> bytes:
    """The deployment's mask key (`<config>/mask.key`, mode 0600), generated on first start."""
    return load_key_file(config_dir / KEY_FILE)


def load_key_file(path: Path) -> bytes:
    """A 32-byte key kept in the config directory (mode 0600), generated on first use."""
    if path.exists():
        key = path.read_bytes()
        if len(key) < 32:
            raise ValueError(f"{path} is truncated: a key file holds 32 bytes")
        return key
    key = os.urandom(32)
    atomic_write(path, key, mode=0o600)
    return key
