"""The tamper-evident audit log: one hash-chained record per request, signed checkpoints.

Files, in the audit directory (mode 0700; files 0600):

* ``audit-<first seq, 12 digits>.jsonl``: segments of records, one JSON object per line. Each record is
  the caller's dict plus ``seq`` (0, 1, 2, … without gaps), ``time`` (ISO-8601 UTC with milliseconds),
  ``prev`` (the ``hash`` of record ``seq - 1``; 64 zeros for record 0) and ``hash``: SHA-256 (hex) of
  the canonical JSON of the record without ``hash`` (orjson, keys sorted, no spaces). The line itself is
  the canonical JSON of the whole record, so any change to it is visible. A new segment starts once
  the current one reaches ``segment_bytes``.
* ``checkpoints.jsonl``: at most ``checkpoint_every`` records apart, and on close, ``{"seq", "hash", "time",
  "key_id", "signature"}``: an Ed25519 signature (base64) over ``b"strongroom-audit-checkpoint\\x00"``
  plus the canonical JSON of ``{"seq", "hash", "time"}``, made with ``<config>/audit_signing.key``.
  ``key_id`` is the first 16 hex digits of SHA-256 over the raw public key. Checkpoints can also be
  copied to a file elsewhere (``ship_path``) and handed to a callable (``ship``).

Guarantees:

* Checkpoints: an ``append`` that leaves ``checkpoint_every`` records unsigned signs the chain's end
  before it returns (a refusal if it cannot). With ``background_checkpoints``, the syncer thread signs
  once half of that waits, so requests rarely meet the checkpoint's two fsyncs and its signature (the
  server's setting). The fsyncs and the signature run outside the append lock either way.
* A record is written, with one ``write`` on an ``O_APPEND`` descriptor, before ``append`` returns; a
  record the kernel accepted survives ``kill -9``. Segments are fsynced at most ``fsync_interval``
  seconds later, and always before a checkpoint names them (a power cut can lose the last fraction
  of a second, never a checkpointed record).
* Fail closed: when a record cannot be written, ``append`` raises ``AuditUnavailableError`` (the
  request is refused), a partial line is cut off again, and the seq is not used. The next ``append``
  reopens the segment, so service resumes by itself once the disk works again.
* `verify` finds any edited, removed, duplicated, reordered or inserted record, and names the first
  bad sequence number. A forger who re-hashes the whole rest of the chain is caught by the first
  signed checkpoint after the change; the report then names the first record after the last
  checkpoint that still matches (the earliest record the forgery can have touched). A log cut short
  is caught when a checkpoint names a record beyond its end.

What is NOT detected:

* Removal of the records after the last checkpoint (the tail not yet signed), together with nothing
  else; at most ``checkpoint_every`` records. Checkpoints shipped elsewhere (``ship_path``, ``ship``)
  catch a tail cut together with the local checkpoints.
* Anything done by someone holding ``audit_signing.key``: they can re-sign a rewritten log. Keep the
  key outside the data directory, and compare against shipped checkpoints (signed earlier).
* Deleting the whole audit directory and the checkpoint file: `verify` of an empty log passes unless
  it is given a shipped checkpoint file.
* Old segments cannot be pruned: a missing first segment reads as missing records.
"""

from __future__ import annotations

import base64
import datetime as dt
import errno
import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..engine.fsutil import atomic_write, fsync_dir, make_dirs
from ..errors import AuditUnavailableError

log = logging.getLogger(__name__)

KEY_FILE = "audit_signing.key"
PUBLIC_KEY_FILE = "audit_signing.pub"
CHECKPOINT_FILE = "checkpoints.jsonl"
CHECKPOINT_CONTEXT = b"strongroom-audit-checkpoint\x00"
GENESIS = "0" * 64
RESERVED = frozenset({"seq", "time", "prev", "hash"})
SEGMENT_RE = re.compile(r"^audit-(\d{12})\.jsonl$")
_TAIL_CHUNK = 1 << 16


# -- keys ----------------------------------------------------------------------------------------
def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return _sha256_hex(raw)[:16]


def _public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def load_or_create_audit_key(config_dir: Path) -> Ed25519PrivateKey:
    """The checkpoint signing key (`<config>/audit_signing.key`, PKCS8 PEM, 0600), generated on first call,
    with its public half in `<config>/audit_signing.pub` (0644) for `strongroom audit verify`."""
    path, pub_path = config_dir / KEY_FILE, config_dir / PUBLIC_KEY_FILE
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        make_dirs(config_dir)
        atomic_write(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()), mode=0o600)
        os.chmod(path, 0o600)  # Whatever a stale temporary file had.
        _write_public(pub_path, key.public_key())
        return key
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ValueError(f"{path} is readable by other users (mode {mode:04o}): run `chmod 600 {path}`")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path} cannot be read ({exc.strerror})") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError(f"{path} is not an unencrypted PEM Ed25519 private key (damaged?)") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    if not pub_path.exists():
        _write_public(pub_path, key.public_key())
    elif load_audit_public_key(config_dir) != key.public_key():
        raise ValueError(f"{pub_path} does not belong to {path}: remove it to have it written again")
    return key


def _write_public(path: Path, public_key: Ed25519PublicKey) -> None:
    atomic_write(path, _public_pem(public_key), mode=0o644)
    os.chmod(path, 0o644)


def load_audit_public_key(config_dir: Path) -> Ed25519PublicKey:
    """`<config>/audit_signing.pub`. FileNotFoundError when absent, ValueError when not an Ed25519 key."""
    path = config_dir / PUBLIC_KEY_FILE
    data = path.read_bytes()
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise ValueError(f"{path} is not a PEM Ed25519 public key (damaged?)") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path} is not an Ed25519 public key")
    return key


# -- encoding --------------------------------------------------------------------------------------
def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()  # OpenSSL's SHA-256 through the standard library (one call per record)


def _canonical(obj: dict[str, Any]) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def record_hash(record: dict[str, Any]) -> str:
    """SHA-256 hex of the canonical JSON of `record` without its "hash"."""
    return _sha256_hex(_canonical({k: v for k, v in record.items() if k != "hash"}))


def _checkpoint_message(seq: int, chain_hash: str, when: str) -> bytes:
    return CHECKPOINT_CONTEXT + _canonical({"seq": seq, "hash": chain_hash, "time": when})


_last_second: tuple[int | None, str] = (None, "")  # the last whole second formatted: most records share it


def _iso(seconds: float) -> str:
    global _last_second
    ms = int(seconds * 1000)
    second, text = _last_second  # one tuple, swapped whole: safe across threads
    if ms // 1000 != second:
        second = ms // 1000
        t = time.gmtime(second)
        text = f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
        _last_second = (second, text)
    return f"{text}.{ms % 1000:03d}Z"


def _time_ms(text: Any) -> int | None:
    try:
        moment = dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return round(moment.timestamp() * 1000)


def segment_name(first_seq: int) -> str:
    return f"audit-{first_seq:012d}.jsonl"


def _segments(directory: Path) -> list[tuple[int, Path]]:
    found = []
    for entry in os.scandir(directory):
        match = SEGMENT_RE.match(entry.name)
        if match and entry.is_file():
            found.append((int(match.group(1)), Path(entry.path)))
    return sorted(found)


def _complete_lines(data: bytes) -> list[bytes]:
    """The newline-terminated lines of `data`; a final line without newline (being written) is left out."""
    lines = data.split(b"\n")
    return lines[:-1]


def _lines_backwards(path: Path, chunk: int = 1 << 20) -> Iterator[bytes]:
    """The newline-terminated lines of a file, last first, read in chunks from the end: the newest
    records of a large segment cost what they are, not the segment. A final line without newline
    (being written) is left out, as `_complete_lines` does."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return
    with handle:
        pos = handle.seek(0, os.SEEK_END)
        carry: bytes | None = None  # bytes from `pos` up to the next newline; None: none found yet
        while pos > 0:
            start = max(0, pos - chunk)
            handle.seek(start)
            block = handle.read(pos - start)
            pos = start
            if carry is None:  # still inside the unterminated tail
                cut = block.rfind(b"\n")
                if cut < 0:
                    continue
                block, carry = block[:cut], b""
            parts = (block + carry).split(b"\n")  # every part but the first ends at a newline
            carry = parts.pop(0) if pos > 0 else b""
            yield from reversed(parts)


def _scan_tail(fd: int, size: int) -> tuple[int, bytes | None]:
    """(bytes up to and including the last newline, the last complete line or None), reading backwards."""
    buf, pos, good_end = b"", size, -1
    while pos > 0:
        start = max(0, pos - _TAIL_CHUNK)
        buf = os.pread(fd, pos - start, start) + buf
        pos = start
        if good_end < 0:
            newline = buf.rfind(b"\n")
            if newline < 0:
                continue
            good_end = pos + newline + 1
        last_newline = good_end - 1 - pos
        before = buf.rfind(b"\n", 0, last_newline)
        if before >= 0:
            return good_end, buf[before + 1:last_newline]
    if good_end < 0:
        return 0, None
    return good_end, buf[:good_end - 1]


def _parse_record(line: bytes) -> dict[str, Any] | None:
    """The record of a line, if the line is exactly its canonical JSON with a valid seq, prev and hash."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(record, dict) or _canonical(record) != line:
        return None
    seq, prev, chain_hash = record.get("seq"), record.get("prev"), record.get("hash")
    if type(seq) is not int or seq < 0 or not isinstance(prev, str) or not isinstance(chain_hash, str):
        return None
    return record


def _append_line(path: Path, line: bytes) -> None:
    """Append one line to a small file (checkpoints) durably; a failed write leaves the file as it was."""
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        before = os.fstat(fd).st_size
        try:
            if os.write(fd, line) != len(line):
                raise OSError(errno.EIO, "short write")
            os.fsync(fd)
        except OSError:
            try:
                os.ftruncate(fd, before)
            except OSError:
                pass  # The reader ignores a final line without newline.
            raise
    finally:
        os.close(fd)
    if created:
        fsync_dir(path.parent)


# -- the writer ------------------------------------------------------------------------------------
class AuditLog:
    """Appends audit records (thread-safe), checkpoints them, and searches them.

    `append` raises AuditUnavailableError when the record cannot be written; the caller refuses the
    request. TypeError when the record is not JSON-serializable, ValueError when it uses a reserved key.
    """

    def __init__(self, directory: Path, signing_key: Ed25519PrivateKey, *, checkpoint_every: int = 1000,
                 segment_bytes: int = 64 << 20, ship_path: Path | None = None,
                 ship: Callable[[dict[str, Any]], None] | None = None, fsync_interval: float = 0.2,
                 clock: Callable[[], float] = time.time, background_checkpoints: bool = False) -> None:
        if checkpoint_every < 1 or segment_bytes < 1:
            raise ValueError("checkpoint_every and segment_bytes must be positive")
        self.directory = directory
        self._key = signing_key
        self._key_id = key_id(signing_key.public_key())
        self._checkpoint_every = checkpoint_every
        self._segment_bytes = segment_bytes
        self._ship_path = ship_path
        self._ship = ship
        self._fsync_interval = fsync_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._checkpoint_lock = threading.Lock()  # one checkpoint at a time, in seq order; taken before _lock
        self._background_checkpoints = background_checkpoints and fsync_interval > 0
        self._fd: int | None = None
        self._fd_generation = 0
        self._offset = 0
        self._dirty = False
        self._closed = False
        make_dirs(directory, mode=0o700)
        self._checkpoints_path = directory / CHECKPOINT_FILE
        self._recover()
        self._stop = threading.Event()
        self._syncer: threading.Thread | None = None
        if fsync_interval > 0:
            self._syncer = threading.Thread(target=self._sync_loop, name="audit-fsync", daemon=True)
            self._syncer.start()

    # -- opening and recovery
    def _recover(self) -> None:
        segments = _segments(self.directory)
        self._next_seq, self._prev, self._segment_first = 0, GENESIS, 0
        if segments:
            self._segment_first = segments[-1][0]
            last = self._open_segment()
            if last is None and len(segments) > 1:
                last = self._last_record_of(segments[-2][1])
            if last is not None:
                self._next_seq, self._prev = last["seq"] + 1, last["hash"]
            if (last is None or last["seq"] < self._segment_first) and self._segment_first != self._next_seq:
                self._close_fd()
                raise ValueError(f"audit log {self.directory} is damaged: segment "
                                 f"{segment_name(self._segment_first)} does not continue the chain; "
                                 "run `strongroom audit verify`")
        self._last_checkpoint_seq = self._recover_checkpoints()
        if self._last_checkpoint_seq >= self._next_seq:
            self._close_fd()
            raise ValueError(f"audit log {self.directory} ends at record {self._next_seq - 1} but a signed "
                             f"checkpoint covers record {self._last_checkpoint_seq}: records are missing; "
                             "run `strongroom audit verify` and move the log aside")

    def _open_segment(self) -> dict[str, Any] | None:
        """Open the current segment for appending, cut off a torn final line, and return its last record."""
        path = self.directory / segment_name(self._segment_first)
        created = not path.exists()
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            if created:
                fsync_dir(self.directory)
            size = os.fstat(fd).st_size
            good_end, line = _scan_tail(fd, size)
            if good_end != size:
                log.warning("audit segment %s ends in an incomplete record (%d bytes, a crash mid-write); "
                            "cutting it off", path.name, size - good_end)
                os.ftruncate(fd, good_end)
                os.fsync(fd)
            last = None
            if line is not None:
                last = _parse_record(line)
                if last is None or record_hash(last) != last["hash"]:
                    raise ValueError(f"audit segment {path} ends in a damaged record; "
                                     "run `strongroom audit verify`")
        except BaseException:
            os.close(fd)
            raise
        self._fd, self._offset = fd, good_end
        self._fd_generation += 1
        return last

    @staticmethod
    def _last_record_of(path: Path) -> dict[str, Any] | None:
        fd = os.open(path, os.O_RDONLY)
        try:
            _end, line = _scan_tail(fd, os.fstat(fd).st_size)
        finally:
            os.close(fd)
        record = None if line is None else _parse_record(line)
        if line is not None and record is None:
            raise ValueError(f"audit segment {path} ends in a damaged record; run `strongroom audit verify`")
        return record

    def _recover_checkpoints(self) -> int:
        path = self._checkpoints_path
        if not path.exists():
            return -1
        fd = os.open(path, os.O_RDWR)
        try:
            size = os.fstat(fd).st_size
            good_end, line = _scan_tail(fd, size)
            if good_end != size:
                log.warning("audit checkpoint file ends in an incomplete line; cutting it off")
                os.ftruncate(fd, good_end)
                os.fsync(fd)
        finally:
            os.close(fd)
        try:
            seq = orjson.loads(line)["seq"] if line is not None else -1
        except (orjson.JSONDecodeError, TypeError, KeyError):
            log.warning("the last audit checkpoint cannot be read; a new one is written at the next chance")
            return -1
        return seq if type(seq) is int else -1

    def _reopen(self) -> None:
        """After a failure or a new segment: open the current segment and check it ends where we are."""
        try:
            last = self._open_segment()
        except ValueError as exc:
            log.error("%s; refusing to append", exc)
            raise AuditUnavailableError() from None
        if self._next_seq > self._segment_first:
            expected = (self._next_seq - 1, self._prev)
        else:
            expected = None
        found = None if last is None else (last["seq"], last["hash"])
        if found != expected:
            self._close_fd()
            log.error("audit segment %s no longer ends with record %s (found %s): someone changed it; "
                      "refusing to append", segment_name(self._segment_first),
                      expected and expected[0], found and found[0])
            raise AuditUnavailableError()

    def _close_fd(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    # -- appending
    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        """Write one record; return it completed (seq, time, prev, hash). The caller's dict is unchanged."""
        clash = RESERVED.intersection(record)
        if clash:
            raise ValueError(f"audit record keys {sorted(clash)} are set by the audit log")
        with self._lock:
            if self._closed:
                log.error("audit record refused: the audit log is closed")
                raise AuditUnavailableError()
            full = {**record, "seq": self._next_seq, "time": _iso(self._clock()), "prev": self._prev}
            full["hash"] = _sha256_hex(_canonical(full))
            line = _canonical(full) + b"\n"
            try:
                if self._fd is None:
                    self._reopen()
                assert self._fd is not None
                written = os.write(self._fd, line)
                if written != len(line):
                    raise OSError(errno.ENOSPC, f"short write ({written} of {len(line)} bytes)")
            except OSError as exc:
                log.error("audit record %d cannot be written (%s); the request is refused",
                          self._next_seq, exc)
                self._roll_back()
                raise AuditUnavailableError() from exc
            self._offset += written
            self._next_seq += 1
            self._prev = full["hash"]
            self._dirty = True
            try:
                if self._fsync_interval <= 0:
                    self._fsync_current()
                if self._offset >= self._segment_bytes:
                    self._fsync_current()
                    self._close_fd()
                    self._segment_first = self._next_seq  # Opened at the next append.
            except OSError as exc:  # Written, but maybe not durable: refuse anyway.
                log.error("audit log cannot be synced (%s); the request is refused", exc)
                self._close_fd()
                raise AuditUnavailableError() from exc
            due = self._next_seq - 1 - self._last_checkpoint_seq >= self._checkpoint_every
        if due:  # Outside the lock: other appends go on while this one waits for the fsyncs.
            try:
                self._checkpoint(at_least=self._checkpoint_every)  # unless another thread just did
            except OSError as exc:  # Written, but not checkpointed: refuse anyway.
                log.error("audit log cannot be checkpointed (%s); the request is refused", exc)
                raise AuditUnavailableError() from exc
        return full

    def _roll_back(self) -> None:
        fd = self._fd
        if fd is None:
            return
        try:
            os.ftruncate(fd, self._offset)
        except OSError as exc:  # The next open cuts the incomplete line off.
            log.error("audit segment cannot be truncated back (%s)", exc)
        self._close_fd()

    def _fsync_current(self) -> None:
        if self._fd is not None and self._dirty:
            os.fsync(self._fd)
            self._dirty = False

    def _sync_loop(self) -> None:
        while not self._stop.wait(self._fsync_interval):
            self.sync()
            if self._background_checkpoints:
                self._checkpoint_early()

    def _checkpoint_early(self) -> None:
        """The syncer signs the chain's end once half of `checkpoint_every` records wait, so a request
        meets the two fsyncs and the signature itself only when this thread fell behind (the bound of
        `checkpoint_every` unsigned records holds either way)."""
        with self._lock:
            pending = self._next_seq - 1 - self._last_checkpoint_seq
        half = max(1, self._checkpoint_every // 2)
        if pending < half:
            return
        try:
            self._checkpoint(at_least=half)
        except (OSError, AuditUnavailableError) as exc:
            log.error("audit checkpoint cannot be written in the background (%s); requests sign it themselves",
                      exc)

    def sync(self) -> None:
        """fsync the current segment if records were written since the last fsync (the syncer calls this)."""
        with self._lock:
            if self._fd is None or not self._dirty:
                return
            fd, generation = os.dup(self._fd), self._fd_generation
            self._dirty = False
        try:
            os.fsync(fd)  # Outside the lock: appends go on meanwhile.
        except OSError as exc:
            log.error("audit segment cannot be synced (%s); the next request reopens it", exc)
            with self._lock:
                if self._fd_generation == generation:
                    self._close_fd()
                    self._dirty = True  # Synced again, after the reopen, before any checkpoint.
        finally:
            os.close(fd)

    # -- checkpoints
    def checkpoint(self) -> dict[str, Any] | None:
        """Sign the chain's current end, if records were added since the last checkpoint; return it."""
        try:
            return self._checkpoint()
        except OSError as exc:
            log.error("audit checkpoint cannot be written (%s)", exc)
            raise AuditUnavailableError() from exc

    def _checkpoint(self, at_least: int = 1) -> dict[str, Any] | None:
        """Signs the chain's end as it is now, if at least `at_least` records came since the last checkpoint
        (checked once this one's turn comes: a request that found a checkpoint due does not sign again
        what another thread signed meanwhile). The fsyncs and the signature run outside `_lock`, so appends
        go on meanwhile; `_checkpoint_lock` keeps checkpoints in seq order. OSError when the records or
        the checkpoint cannot be made durable: nothing counts as checkpointed then, and the segment is
        reopened (and its end checked) by the next append."""
        with self._checkpoint_lock:
            with self._lock:
                if self._closed:
                    return None
                seq, prev = self._next_seq - 1, self._prev
                if seq - self._last_checkpoint_seq < at_least:
                    return None
                if self._fd is None and self._dirty:
                    self._reopen()
                fd = os.dup(self._fd) if self._fd is not None and self._dirty else None
                generation = self._fd_generation
                self._dirty = False
            try:
                if fd is not None:
                    os.fsync(fd)  # A checkpoint never names a record that is not on disk.
                checkpoint = self._sign(seq, prev)
            except OSError:
                with self._lock:
                    self._dirty = True
                    if self._fd_generation == generation:
                        self._close_fd()
                raise
            finally:
                if fd is not None:
                    os.close(fd)
            with self._lock:
                self._last_checkpoint_seq = max(self._last_checkpoint_seq, seq)
            return checkpoint

    def _sign(self, seq: int, prev: str) -> dict[str, Any]:
        """Signs (seq, prev) now, appends it durably to the checkpoint file, and ships it."""
        when = _iso(self._clock())
        signature = self._key.sign(_checkpoint_message(seq, prev, when))
        checkpoint = {"seq": seq, "hash": prev, "time": when, "key_id": self._key_id,
                      "signature": base64.b64encode(signature).decode()}
        line = _canonical(checkpoint) + b"\n"
        _append_line(self._checkpoints_path, line)
        if self._ship_path is not None:
            try:
                _append_line(self._ship_path, line)
            except OSError as exc:
                log.error("audit checkpoint %d cannot be shipped to %s (%s)", seq, self._ship_path, exc)
        if self._ship is not None:
            try:
                self._ship(dict(checkpoint))
            except Exception:  # noqa: BLE001 - shipping is best effort; the local copy is written
                log.exception("audit checkpoint %d cannot be shipped", seq)
        return checkpoint

    # -- reading
    def search(self, *, identity: str | None = None, action: str | None = None, index: str | None = None,
               outcome: str | None = None, doc_id: str | None = None, since_ms: int | None = None,
               until_ms: int | None = None, size: int = 100) -> list[dict[str, Any]]:
        """Records matching every given filter, newest first. `since_ms` and `until_ms` (epoch ms) are
        inclusive; `index` matches a record's "indices", `doc_id` its "revealed"."""
        found: list[dict[str, Any]] = []
        if size <= 0:
            return found
        for _first, path in reversed(_segments(self.directory)):
            for line in _lines_backwards(path):
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(record, dict) and _matches(record, identity, action, index, outcome, doc_id,
                                                         since_ms, until_ms):
                    found.append(record)
                    if len(found) >= size:
                        return found
        return found

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The checkpoints' verification key (for `verify` of this log while it runs)."""
        return self._key.public_key()

    @property
    def next_seq(self) -> int:
        return self._next_seq

    def close(self) -> None:
        """Checkpoint (when records were added since the last one), fsync and close. Idempotent."""
        with self._checkpoint_lock, self._lock:
            if self._closed:
                return
            self._closed = True
            self._stop.set()
            try:
                if self._fd is None and self._next_seq > self._segment_first:
                    self._reopen()
                self._fsync_current()  # A checkpoint never names a record that is not on disk.
                seq = self._next_seq - 1
                if seq > self._last_checkpoint_seq:
                    self._sign(seq, self._prev)
                    self._last_checkpoint_seq = seq
            except OSError as exc:
                log.error("audit log cannot be checkpointed on close (%s)", exc)
                raise AuditUnavailableError() from exc
            finally:
                self._close_fd()
        if self._syncer is not None:
            self._syncer.join()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _matches(record: dict[str, Any], identity: str | None, action: str | None, index: str | None,
             outcome: str | None, doc_id: str | None, since_ms: int | None, until_ms: int | None) -> bool:
    if identity is not None and record.get("identity") != identity:
        return False
    if action is not None and record.get("action") != action:
        return False
    if outcome is not None and record.get("outcome") != outcome:
        return False
    if index is not None and index not in _as_list(record.get("indices")):
        return False
    if doc_id is not None and not any(entry == doc_id or (isinstance(entry, list) and doc_id in entry[1:])
                                      for entry in _as_list(record.get("revealed"))):
        return False  # "revealed" lists ids, or [index, id] pairs
    if since_ms is not None or until_ms is not None:
        when = _time_ms(record.get("time"))
        if when is None or (since_ms is not None and when < since_ms):
            return False
        if until_ms is not None and when > until_ms:
            return False
    return True


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


# -- verification ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    records: int  # Records verified (up to the first bad one).
    checkpoints: int  # Checkpoint lines read.
    last_seq: int  # The last good record; -1 when none.
    bad_seq: int | None  # The first bad (or first unproven) record; None when ok or no record is to blame.
    reason: str | None
    last_checkpoint_seq: int | None = None  # Records after it are not yet signed.


class _Broken(Exception):
    def __init__(self, seq: int | None, reason: str) -> None:
        super().__init__(reason)
        self.seq, self.reason = seq, reason


def _read_checkpoints(path: Path, public_key: Ed25519PublicKey) -> list[tuple[int, str | None, str]]:
    """[(seq, hash or None when the signature fails, why)] in file order."""
    expected_key_id = key_id(public_key)
    found = []
    for number, line in enumerate(_complete_lines(path.read_bytes()), 1):
        try:
            checkpoint = orjson.loads(line)
            seq, chain_hash, when = checkpoint["seq"], checkpoint["hash"], checkpoint["time"]
            signature = base64.b64decode(checkpoint["signature"], validate=True)
            signer = checkpoint["key_id"]
            if type(seq) is not int or seq < 0 or not (isinstance(chain_hash, str) and isinstance(when, str)):
                raise TypeError
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise _Broken(None, f"checkpoint line {number} of {path.name} is malformed") from None
        if signer != expected_key_id:
            found.append((seq, None, f"its checkpoint was signed by another key (key id {str(signer)[:16]}, "
                                     f"expected {expected_key_id})"))
            continue
        try:
            public_key.verify(signature, _checkpoint_message(seq, chain_hash, when))
        except InvalidSignature:
            found.append((seq, None, "its checkpoint signature does not verify (forged or edited)"))
            continue
        found.append((seq, chain_hash, ""))
    return found


def _segment_lines(path: Path) -> Iterator[bytes]:
    """Lines with their newline; the last one may lack it (being written, or damaged)."""
    with open(path, "rb") as file:
        for line in file:
            yield line
            if not line.endswith(b"\n"):
                return  # More may arrive meanwhile; reading on would split a line in two.


def verify(directory: Path, public_key: Ed25519PublicKey, *, checkpoints: Path | None = None) -> VerifyReport:
    """Check the chain of an audit directory against its signed checkpoints. Read only; safe while the
    writer runs (a final line without newline is being written and is ignored).

    `checkpoints`: a checkpoint file to use instead of `<directory>/checkpoints.jsonl` (a shipped copy).
    FileNotFoundError when the directory, or an explicitly given checkpoint file, does not exist.
    """
    if not directory.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no audit directory", str(directory))
    checkpoint_path = checkpoints if checkpoints is not None else directory / CHECKPOINT_FILE
    if checkpoints is not None and not checkpoints.is_file():
        raise FileNotFoundError(errno.ENOENT, "no checkpoint file", str(checkpoints))
    count, last_seq, count_checkpoints, proven = 0, -1, 0, -1
    last_checkpoint: int | None = None

    def report(broken: _Broken | None) -> VerifyReport:
        return VerifyReport(ok=broken is None, records=count, checkpoints=count_checkpoints,
                            last_seq=last_seq,
                            bad_seq=broken and broken.seq, reason=broken and broken.reason,
                            last_checkpoint_seq=last_checkpoint)

    try:
        # Checkpoints first: every checkpoint read now names a record already in the segments.
        signed = _read_checkpoints(checkpoint_path, public_key) if checkpoint_path.is_file() else []
        count_checkpoints = len(signed)
        by_seq: dict[int, list[tuple[str | None, str]]] = {}
        for seq, chain_hash, why in signed:
            by_seq.setdefault(seq, []).append((chain_hash, why))
        if signed:
            last_checkpoint = max(seq for seq, _h, _w in signed)
        segments = _segments(directory)
        expected, prev = 0, GENESIS
        for position, (_first, path) in enumerate(segments):
            final_segment = position == len(segments) - 1
            for line in _segment_lines(path):
                if not line.endswith(b"\n"):
                    if final_segment:
                        break  # Being written right now.
                    raise _Broken(expected, f"segment {path.name} ends in an incomplete line")
                record = _parse_record(line[:-1])
                if record is None:
                    raise _Broken(expected, "the line is not a record as written (edited or damaged)")
                if record["seq"] != expected:
                    found = record["seq"]
                    if found < expected:
                        raise _Broken(expected, f"found record {found} again here (duplicated or reordered)")
                    raise _Broken(expected, f"it is missing: found record {found} in its place "
                                            "(removed, reordered or inserted)")
                if record_hash(record) != record["hash"]:
                    raise _Broken(expected, "its hash does not match its content (edited)")
                if record["prev"] != prev:
                    raise _Broken(expected, "it is not chained to the record before it (inserted or edited)")
                for chain_hash, why in by_seq.get(expected, ()):
                    if chain_hash is None:
                        raise _Broken(expected, why)
                    if chain_hash != record["hash"]:
                        raise _Broken(proven + 1, f"the chain differs from the signed checkpoint at record "
                                                  f"{expected}: records {proven + 1} to {expected} are not "
                                                  "proven (rewritten)")
                    proven = expected
                prev = record["hash"]
                last_seq, count, expected = expected, count + 1, expected + 1
        beyond = sorted((seq, chain_hash, why) for seq, chain_hash, why in signed if seq > last_seq)
        if beyond:
            seq, chain_hash, why = beyond[0]
            if chain_hash is None:
                raise _Broken(seq, why)
            raise _Broken(last_seq + 1, f"the log ends at record {last_seq} but a signed checkpoint covers "
                                        f"record {seq}: records from {last_seq + 1} on are missing (cut off)")
    except _Broken as broken:
        return report(broken)
    return report(None)
