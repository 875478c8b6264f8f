"""The write-ahead log of one shard: the source of truth that the tantivy index is derived from.

`Log` is the narrow interface a replicated log (one stream per shard) will implement later;
`LocalLog` implements it with segment files in one directory.

Segment file `<first_seq:020d>.wal`:
    header  b"SRWAL\\x00\\x01\\n" (8 bytes)
    records [length u32][seq u64][payload crc32 u32][header crc32 u32][payload]  (little endian)
Record positions are the shard's sequence numbers, contiguous and increasing.

Recovery rules (on open):
* an incomplete record at the end of the last segment is a torn write (the process died inside
  `write`): it was never acknowledged, so it is dropped and the file truncated;
* anything else that does not check out (bad header or payload checksum, a sequence gap,
  an incomplete record in an older segment) is corruption of acknowledged data: opening fails
  with `LogCorruptionError` naming the file and byte offset. Nothing is skipped silently.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

from .fsutil import fsync_dir, make_dirs

log = logging.getLogger(__name__)

MAGIC = b"SRWAL\x00\x01\n"
_HEADER = struct.Struct("<IQI")  # length, seq, payload crc
_HEADER_CRC = struct.Struct("<I")
HEADER_SIZE = _HEADER.size + _HEADER_CRC.size  # 20 bytes
MAX_RECORD = 1 << 30
SUFFIX = ".wal"


class LogError(Exception):
    """The log could not be written or synced; the operation was not acknowledged."""


class LogCorruptionError(Exception):
    """Acknowledged log data does not check out. The shard must not start on guesswork."""

    def __init__(self, path: Path, offset: int, why: str) -> None:
        super().__init__(f"write-ahead log corrupted: {path} at byte offset {offset}: {why}")
        self.path, self.offset, self.why = path, offset, why


class Log(Protocol):
    @property
    def last_seq(self) -> int: ...  # -1 when nothing was ever appended

    def append(self, records: Sequence[tuple[int, bytes]]) -> int: ...
    def sync(self, through: int) -> None: ...
    def read_from(self, seq: int) -> Iterator[tuple[int, bytes]]: ...
    def truncate_before(self, seq: int) -> None: ...
    def close(self) -> None: ...


def encode_record(seq: int, payload: bytes) -> bytes:
    head = _HEADER.pack(len(payload), seq, zlib.crc32(payload))
    return head + _HEADER_CRC.pack(zlib.crc32(head)) + payload


class LocalLog:
    """Segmented, checksummed, fsynced log in one directory. Thread-safe.

    `append` is called by one writer at a time (the shard's write lock); `sync` from any number
    of threads: concurrent callers share one fsync (group commit).
    """

    def __init__(self, directory: Path, *, segment_bytes: int = 64 << 20, base_seq: int = 0) -> None:
        self._dir = directory
        self._segment_bytes = segment_bytes
        self._state = threading.Lock()  # appended/segments bookkeeping
        self._syncing = threading.Lock()  # one fsync at a time; also excludes segment rolls
        self._closed = False
        make_dirs(directory)
        self._segments: list[tuple[int, Path]] = self._list_segments()
        self._last_seq = base_seq - 1
        self._recover()
        if not self._segments:
            self._open_new_segment(self._last_seq + 1)
        else:
            first, path = self._segments[-1]
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            self._size = os.fstat(self._fd).st_size
        self._synced_seq = self._last_seq

    # -- reading and recovery ------------------------------------------------------------
    def _list_segments(self) -> list[tuple[int, Path]]:
        found = []
        for entry in self._dir.iterdir():
            if entry.name.endswith(SUFFIX) and entry.name[: -len(SUFFIX)].isdigit():
                found.append((int(entry.name[: -len(SUFFIX)]), entry))
            elif entry.name.endswith(".tmp"):
                entry.unlink()
        return sorted(found)

    def _recover(self) -> None:
        expected: int | None = None
        for position, (first, path) in enumerate(self._segments):
            is_last = position == len(self._segments) - 1
            if expected is not None and first != expected:
                raise LogCorruptionError(path, 0, f"segment starts at sequence {first}, expected {expected}")
            last = first - 1
            for seq, _payload, _offset in self._scan(path, first, is_last=is_last):
                last = seq
            expected = last + 1
            self._last_seq = max(self._last_seq, last)

    def _scan(self, path: Path, first: int, *, is_last: bool) -> Iterator[tuple[int, bytes, int]]:
        """Yields (seq, payload, offset) of every good record; handles the tail per the module rules."""
        with open(path, "rb") as handle:
            data = handle.read()
        if len(data) < len(MAGIC):
            if is_last and MAGIC.startswith(data):
                self._truncate_torn(path, 0, "incomplete segment header")
                return
            raise LogCorruptionError(path, 0, "bad segment header")
        if data[: len(MAGIC)] != MAGIC:
            raise LogCorruptionError(path, 0, "bad segment header")
        offset, expected = len(MAGIC), first
        size = len(data)
        while offset < size:
            if size - offset < HEADER_SIZE:
                if is_last:
                    self._truncate_torn(path, offset, "incomplete record header")
                    return
                raise LogCorruptionError(path, offset, "incomplete record in a closed segment")
            head = data[offset: offset + _HEADER.size]
            (header_crc,) = _HEADER_CRC.unpack_from(data, offset + _HEADER.size)
            if zlib.crc32(head) != header_crc:
                raise LogCorruptionError(path, offset, "record header checksum mismatch")
            length, seq, payload_crc = _HEADER.unpack(head)
            end = offset + HEADER_SIZE + length
            if length > MAX_RECORD:
                raise LogCorruptionError(path, offset, "record length out of range")
            if end > size:
                if is_last:
                    self._truncate_torn(path, offset, "incomplete record payload")
                    return
                raise LogCorruptionError(path, offset, "incomplete record in a closed segment")
            payload = data[offset + HEADER_SIZE: end]
            if zlib.crc32(payload) != payload_crc:
                raise LogCorruptionError(path, offset, "record payload checksum mismatch")
            if seq != expected:
                raise LogCorruptionError(path, offset, f"sequence {seq} where {expected} was expected")
            yield seq, payload, offset
            expected += 1
            offset = end

    def _truncate_torn(self, path: Path, offset: int, why: str) -> None:
        log.warning("write-ahead log %s: dropping a torn record at byte offset %d (%s); "
                    "it was never acknowledged", path, offset, why)
        with open(path, "r+b") as handle:
            if offset == 0:
                handle.write(MAGIC)
                offset = len(MAGIC)
            handle.truncate(offset)
            handle.flush()
            os.fsync(handle.fileno())

    def read_from(self, seq: int) -> Iterator[tuple[int, bytes]]:
        """Records with sequence ≥ seq, in order. Call before concurrent appends start, or accept
        that records appended meanwhile may or may not be included."""
        with self._state:
            segments = list(self._segments)
        for position, (first, path) in enumerate(segments):
            following = segments[position + 1][0] if position + 1 < len(segments) else None
            if following is not None and following <= seq:
                continue
            for record_seq, payload, _offset in self._scan(path, first, is_last=following is None):
                if record_seq >= seq:
                    yield record_seq, payload

    # -- writing -------------------------------------------------------------------------
    @property
    def last_seq(self) -> int:
        return self._last_seq

    @property
    def synced_seq(self) -> int:
        return self._synced_seq

    def append(self, records: Sequence[tuple[int, bytes]]) -> int:
        """Writes records (not yet durable: call `sync`). Returns the last sequence written."""
        if not records:
            return self._last_seq
        if self._closed:
            raise LogError("log is closed")
        if self._size >= self._segment_bytes:
            self._roll(records[0][0])
        expected = self._last_seq + 1
        chunks = []
        for seq, payload in records:
            if seq != expected:
                raise ValueError(f"log sequence {seq} appended where {expected} was expected")
            chunks.append(encode_record(seq, payload))
            expected += 1
        blob = b"".join(chunks)
        with self._state:
            try:
                view = memoryview(blob)
                while view:
                    view = view[os.write(self._fd, view):]
            except OSError as exc:
                # A partial write would be a torn record followed by later appends: cut it off.
                self._cut_back()
                raise LogError(f"write-ahead log append failed: {exc.strerror}") from exc
            self._size += len(blob)
            self._last_seq = expected - 1
        return self._last_seq

    def _cut_back(self) -> None:
        try:
            os.ftruncate(self._fd, self._size)
        except OSError:
            log.exception("write-ahead log: could not cut back a failed append; closing the log")
            self._closed = True

    def sync(self, through: int) -> None:
        """Returns once every record with sequence ≤ through is on stable storage."""
        if self._synced_seq >= through:
            return
        with self._syncing:
            if self._synced_seq >= through:
                return  # Another thread's fsync covered us.
            if self._closed:
                raise LogError("log is closed")
            target = self._last_seq
            try:
                os.fdatasync(self._fd)
            except OSError as exc:
                raise LogError(f"write-ahead log fsync failed: {exc.strerror}") from exc
            self._synced_seq = target

    def _roll(self, next_seq: int) -> None:
        with self._syncing:
            os.fdatasync(self._fd)
            self._synced_seq = self._last_seq
            os.close(self._fd)
            self._open_new_segment(next_seq)

    def _open_new_segment(self, first: int) -> None:
        path = self._dir / f"{first:020d}{SUFFIX}"
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, MAGIC)
        os.fsync(fd)
        os.close(fd)
        os.replace(tmp, path)
        fsync_dir(self._dir)
        with self._state:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            self._size = len(MAGIC)
            self._segments.append((first, path))

    def truncate_before(self, seq: int) -> None:
        """Drops records with sequence < seq (they are covered by a durable index commit)."""
        if self._closed:
            return
        with self._state:
            active_first = self._segments[-1][0]
            roll = self._size > len(MAGIC) and self._last_seq < seq and active_first < seq
        if roll:  # Everything in the active segment is covered: start a fresh one so it can go.
            self._roll(self._last_seq + 1)
        with self._state:
            doomed = [path for (first, path), nxt in zip(self._segments, self._segments[1:]) if nxt[0] <= seq]
            self._segments = self._segments[len(doomed):]
        for path in doomed:
            path.unlink()
        if doomed:
            fsync_dir(self._dir)

    def close(self) -> None:
        with self._syncing:
            if self._closed:
                return
            self._closed = True
            try:
                os.fdatasync(self._fd)
            finally:
                os.close(self._fd)
