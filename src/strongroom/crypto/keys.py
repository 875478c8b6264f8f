"""Keys: the master key, each index's data keys, and the keys derived from them.

Envelope, from top to bottom:

    master key (32 bytes; a file outside the data directory, or STRONGROOM_MASTER_KEY; a KMS later)
      └ wraps (AES key wrap, RFC 3394) each index's data keys, one per version
          └ HKDF-SHA256 derives
              - the sealing key of that version     (info b"strongroom seal v1")
              - one token key per field and variant (info b"strongroom token v1|<field>|<variant>",
                from data key version 1 only)

What a thief of the data directory gets (threat T3): wrapped data keys, useless without the master
key, and a 4-byte check value of the master key (the first bytes of an HMAC under it, which says
nothing about the key but lets a wrong master key be told apart from damaged files).

Rotation: `DataKeys.add_version` adds a data key version; new writes are sealed with it, older
versions stay to open what they sealed, and a background job may re-seal. Token keys come from
version 1 only, so rotation never changes a blind token. Rotating token keys means re-indexing
every protected field (a new index with new data keys), and the tools must say so.

Errors are `KeyProblem`. Their messages name files and reasons only: never key bytes, never the
value of STRONGROOM_MASTER_KEY.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import stat
from collections.abc import Mapping
from hashlib import sha256
from pathlib import Path
from typing import Any, ClassVar, Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

KEY_SIZE = 32
CHECK_SIZE = 4
MASTER_KEY_FILE_NAME = "master.key"
KEY_FILE_HEADER = "strongroom-master-key v1"
BLOB_FORMAT = "strongroom-data-keys v1"
ENV_NAME = "STRONGROOM_MASTER_KEY"
FIRST_VERSION = 1  # Token keys derive from this version only.

_CHECK_INFO = b"strongroom master key check"
_SEAL_INFO = b"strongroom seal v1"
_TOKEN_INFO = b"strongroom token v1|"
_MAX_KEY_FILE_BYTES = 4096  # A v1 key file is under 100 bytes; anything far larger is not one.


class KeyProblem(Exception):
    """The server cannot get its keys; it stays sealed. The message is safe to print and log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KmsHook(Protocol):
    """Interface for keeping the master key in a KMS or HSM (not implemented yet).

    A hook wraps and unwraps data keys itself, so the master key never enters this process:
    `wrap` takes a 32-byte data key and returns an opaque blob; `unwrap` takes that blob back and
    returns the data key, or raises when the KMS refuses.
    """

    def wrap(self, data_key: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes) -> bytes: ...


class MasterKey:
    """The 32-byte master key, held in memory. Its repr never shows the bytes."""

    __slots__ = ("_check", "_key")

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) != KEY_SIZE:
            raise ValueError("a master key is 32 bytes")
        self._key = key
        self._check = _check_value(key)

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(os.urandom(KEY_SIZE))

    @property
    def check(self) -> bytes:
        """4 bytes identifying this key (HMAC-SHA256(key, "strongroom master key check")[:4])."""
        return self._check

    def wrap(self, data_key: bytes) -> bytes:
        return aes_key_wrap(self._key, data_key)

    def unwrap(self, wrapped: bytes) -> bytes:
        """Raises `InvalidUnwrap` when the blob was not wrapped by this key (or was altered)."""
        return aes_key_unwrap(self._key, wrapped)

    def key_file_text(self) -> str:
        """The v1 key file: header, base64 of the key, check value."""
        encoded = base64.b64encode(self._key).decode("ascii")
        return f"{KEY_FILE_HEADER}\n{encoded}\ncheck {self._check.hex()}\n"

    def __repr__(self) -> str:
        return f"MasterKey(check={self._check.hex()})"

    def __reduce__(self) -> Any:  # Keep key bytes out of pickles (and so out of process pools).
        raise TypeError("a MasterKey cannot be pickled")


def _check_value(key: bytes) -> bytes:
    return hmac.new(key, _CHECK_INFO, sha256).digest()[:CHECK_SIZE]


# ---------------------------------------------------------------------------------------------
# Loading the master key


def load_master_key(
    *,
    key_file: Path | None,
    env_value: str | None,
    config_dir: Path,
    data_dir: Path,
    generate: bool,
) -> tuple[MasterKey, str | None]:
    """The master key, from exactly one source, and a warning when it was generated.

    Sources, in this order: `env_value` (the content of STRONGROOM_MASTER_KEY: base64 of 32 bytes,
    or `hex:` and 64 hex digits); `key_file`; else, when `generate` is true, `<config_dir>/master.key`,
    created (0600) if absent. Giving both an environment value and a key file is refused, since
    silently preferring one would hide a mistake. Any key file must be a regular file of mode 0600
    or stricter (after following symlinks) and must not resolve into the data directory.
    """
    if env_value is not None and key_file is not None:
        raise KeyProblem(f"both {ENV_NAME} and a master key file are set; choose one")
    if env_value is not None:
        return _key_from_env(env_value), None
    if key_file is not None:
        return _read_key_file(Path(key_file), data_dir), None
    if not generate:
        raise KeyProblem(f"no master key: set {ENV_NAME} or give a master key file")
    path = Path(config_dir) / MASTER_KEY_FILE_NAME
    if _inside(path, data_dir):
        raise KeyProblem(f"the master key cannot be kept in {path}: it is inside the data directory")
    if not os.path.lexists(path):
        _create_key_file(path)  # Loses no key: if another process won the race, its key is read below.
    warning = f"the master key was generated in {path}; production keeps it on another volume or in a KMS"
    return _read_key_file(path, data_dir), warning


def _key_from_env(value: str) -> MasterKey:
    bad = KeyProblem(f"{ENV_NAME} is not 32 bytes of base64")  # Never echo the value.
    text = value.strip()
    try:
        if text.startswith("hex:"):
            digits = text[4:]
            if len(digits) != 2 * KEY_SIZE:
                raise bad
            raw = bytes.fromhex(digits)
        else:
            raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError, binascii.Error):
        raise bad from None
    if len(raw) != KEY_SIZE:
        raise bad
    return MasterKey(raw)


def _inside(path: Path, directory: Path) -> bool:
    """True when `path`, symlinks resolved, is `directory` or lies under it (also resolved)."""
    return Path(path).resolve().is_relative_to(Path(directory).resolve())


def _read_key_file(path: Path, data_dir: Path) -> MasterKey:
    def problem(reason: str) -> KeyProblem:
        return KeyProblem(f"master key file {path}: {reason}")

    try:
        real = path.resolve(strict=True)
    except FileNotFoundError:
        raise problem("does not exist") from None
    except (OSError, RuntimeError):  # Permission denied on a parent, a symlink loop.
        raise problem("cannot be resolved (unreadable directory or symlink loop)") from None
    if real.is_relative_to(Path(data_dir).resolve()):
        raise problem("is inside the data directory; keep the master key on another volume")
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except PermissionError:
        raise problem("is not readable by this user") from None
    except OSError:
        raise problem("cannot be opened") from None
    try:
        info = os.fstat(fd)  # Checked on the open file, so a swap after the checks above is caught.
        if not stat.S_ISREG(info.st_mode):
            raise problem("is not a regular file")
        if info.st_mode & 0o077:
            raise problem(f"is readable or writable by group or others (mode {stat.S_IMODE(info.st_mode):04o});"
                          " run chmod 600 on it")
        data = os.read(fd, _MAX_KEY_FILE_BYTES + 1)
    except OSError:
        raise problem("cannot be read") from None
    finally:
        os.close(fd)
    return _parse_key_file(data, problem)


def _parse_key_file(data: bytes, problem: Any) -> MasterKey:
    if len(data) > _MAX_KEY_FILE_BYTES:
        raise problem("is too large to be a master key file")
    try:
        lines = data.decode("ascii").splitlines()
    except UnicodeDecodeError:
        raise problem(f"is not a master key file (expected a first line '{KEY_FILE_HEADER}')") from None
    lines = [line.strip() for line in lines if line.strip()]
    if not lines or lines[0] != KEY_FILE_HEADER:
        raise problem(f"is not a master key file (expected a first line '{KEY_FILE_HEADER}')")
    if len(lines) != 3 or not lines[2].startswith("check "):
        raise problem("is truncated or malformed (expected a key line and a check line)")
    try:
        raw = base64.b64decode(lines[1].encode("ascii"), validate=True)
        check = bytes.fromhex(lines[2][len("check "):])
    except (ValueError, binascii.Error):
        raise problem("is truncated or malformed (the key line is not base64)") from None
    if len(raw) != KEY_SIZE or len(check) != CHECK_SIZE:
        raise problem("is truncated or malformed (the key is not 32 bytes)")
    key = MasterKey(raw)
    if not hmac.compare_digest(key.check, check):
        raise problem("is damaged (its key does not match its check value)")
    return key


def _create_key_file(path: Path) -> None:
    """Write a new key to `path` durably, never replacing an existing file.

    Written to a temporary file, fsynced, then hard-linked into place: the link fails if `path`
    appeared meanwhile, so two processes starting at once cannot each keep a different key.
    """
    directory = path.parent
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        raise KeyProblem(f"cannot create the directory {directory} for the master key") from None
    text = MasterKey.generate().key_file_text().encode("ascii")
    tmp = directory / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            os.fchmod(fd, 0o600)  # Whatever the umask.
            view = memoryview(text)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # Another process created it first; the caller reads that one.
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        raise KeyProblem(f"cannot write the master key file {path}") from None
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


# ---------------------------------------------------------------------------------------------
# Data keys


class DataKeys:
    """One index's data keys, by version, and the keys derived from them.

    The blob (what the engine stores beside the index) is UTF-8 JSON:
        {"format": "strongroom-data-keys v1", "master_check": "<8 hex>",
         "versions": [{"version": 1, "wrapped": "<base64 of AES-KW(master, data key)>"}, ...]}
    The highest version seals new writes.
    """

    __slots__ = ("_aeads", "_keys", "_master_check", "_sealing")

    FORMAT: ClassVar[str] = BLOB_FORMAT

    def __init__(self, keys: Mapping[int, bytes], master_check: bytes) -> None:
        if FIRST_VERSION not in keys or any(len(k) != KEY_SIZE for k in keys.values()):
            raise ValueError("data keys need version 1 and 32-byte keys")
        self._keys = dict(sorted(keys.items()))
        self._master_check = master_check
        self._sealing: dict[int, bytes] = {}
        self._aeads: dict[int, AESGCM] = {}

    @classmethod
    def create(cls, master: MasterKey, *, _data_key: bytes | None = None) -> tuple[DataKeys, bytes]:
        """New keys for a new index: data key version 1, and the blob to store."""
        keys = cls({FIRST_VERSION: _data_key if _data_key is not None else os.urandom(KEY_SIZE)}, master.check)
        return keys, keys._blob(master)

    @classmethod
    def open(cls, master: MasterKey, blob: bytes) -> DataKeys:
        """Unwrap a stored blob. `KeyProblem` when the master key is not the one that wrapped it."""
        try:
            doc = json.loads(blob)
            if doc["format"] != BLOB_FORMAT:
                raise ValueError
            stored_check = bytes.fromhex(doc["master_check"])
            wrapped = {}
            for entry in doc["versions"]:
                version = entry["version"]
                if type(version) is not int or not 1 <= version < 2**32 or version in wrapped:
                    raise ValueError
                wrapped[version] = base64.b64decode(entry["wrapped"], validate=True)
            if FIRST_VERSION not in wrapped:
                raise ValueError
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise KeyProblem("this index's key blob is malformed") from None
        mismatch = KeyProblem("the master key does not match this index's keys")
        if not hmac.compare_digest(stored_check, master.check):
            raise mismatch
        try:
            keys = {version: master.unwrap(w) for version, w in wrapped.items()}
        except (InvalidUnwrap, ValueError):
            raise KeyProblem("the master key does not match this index's keys"
                             " (or the wrapped keys are damaged)") from None
        if any(len(k) != KEY_SIZE for k in keys.values()):
            raise KeyProblem("this index's key blob is malformed")
        return cls(keys, stored_check)

    def add_version(self, master: MasterKey, *, _data_key: bytes | None = None) -> bytes:
        """Add a data key version for new writes; old versions stay to read. Returns the new blob."""
        if not hmac.compare_digest(master.check, self._master_check):
            raise KeyProblem("the master key does not match this index's keys")
        version = self.current_version + 1
        self._keys[version] = _data_key if _data_key is not None else os.urandom(KEY_SIZE)
        return self._blob(master)

    def _blob(self, master: MasterKey) -> bytes:
        doc = {
            "format": BLOB_FORMAT,
            "master_check": master.check.hex(),
            "versions": [{"version": v, "wrapped": base64.b64encode(master.wrap(k)).decode("ascii")}
                         for v, k in self._keys.items()],
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")

    @property
    def current_version(self) -> int:
        """The version that seals new writes."""
        return max(self._keys)

    @property
    def versions(self) -> tuple[int, ...]:
        return tuple(self._keys)

    def sealing_key(self, version: int) -> bytes:
        """The AES-256-GCM key of one data key version. `KeyError` for an unknown version."""
        key = self._sealing.get(version)
        if key is None:
            key = self._sealing[version] = _hkdf(self._keys[version], _SEAL_INFO)
        return key

    def aead(self, version: int) -> AESGCM:
        """The AES-256-GCM cipher of one data key version, made once (cryptography's AEAD objects are
        stateless per call, so one serves every thread). `KeyError` for an unknown version."""
        aead = self._aeads.get(version)
        if aead is None:
            aead = self._aeads[version] = AESGCM(self.sealing_key(version))
        return aead

    def token_key(self, field: str, variant: str) -> bytes:
        """The HMAC key of one field's blind tokens of one variant (e.g. "exact", "token", "prefix").

        Derived from data key version 1 only: sealing rotation never changes tokens. A variant
        may not contain "|", so (field, variant) maps to exactly one HKDF info string.
        """
        if not field or not variant or "|" in variant:
            raise ValueError("token keys need a field name and a variant without '|'")
        info = _TOKEN_INFO + field.encode("utf-8") + b"|" + variant.encode("utf-8")
        return _hkdf(self._keys[FIRST_VERSION], info)

    def share(self) -> tuple[dict[int, bytes], bytes]:
        """The unwrapped keys, to hand to one of the server's own ingest worker processes over its pipe
        (security/ingest.py). Never to be stored or logged."""
        return dict(self._keys), self._master_check

    @classmethod
    def from_shared(cls, shared: tuple[dict[int, bytes], bytes]) -> DataKeys:
        keys, master_check = shared
        return cls(keys, master_check)

    def __repr__(self) -> str:
        return f"DataKeys(versions={list(self._keys)}, master_check={self._master_check.hex()})"

    def __reduce__(self) -> Any:
        raise TypeError("DataKeys cannot be pickled")


def blob_versions(blob: bytes) -> int:
    """How many data key versions a wrapped blob holds (readable without the master key)."""
    try:
        return len(json.loads(blob)["versions"])
    except (ValueError, KeyError, TypeError):
        return 0


def _hkdf(key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=None, info=info).derive(key)
