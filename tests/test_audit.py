"""The tamper-evident audit log: chain, checkpoints, fail-closed writes, verify and its CLI."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from strongroom.cli import main
from strongroom.security import audit as audit_module
from strongroom.errors import AuditUnavailableError
from strongroom.security.audit import (
    CHECKPOINT_FILE,
    GENESIS,
    AuditLog,
    load_audit_public_key,
    load_or_create_audit_key,
    record_hash,
    segment_name,
    verify,
)

KEY = Ed25519PrivateKey.generate()
PUBLIC = KEY.public_key()
COUNT, EVERY = 12, 5
CHECKPOINTS = (4, 9, 11)  # Every 5 records, and on close.
FIRST_SEGMENT = segment_name(0)


def request(i: int, **extra: Any) -> dict[str, Any]:
    return {"identity": f"user-{i % 3}", "address": "127.0.0.1", "action": "indices:data/read/search",
            "method": "POST", "path": "/residents/_search", "indices": ["residents"],
            "query": {"match": {"name": "?"}}, "revealed": [f"doc-{i}"], "purpose": "case 17",
            "outcome": "allowed", "status": 200, **extra}


class Ticker:
    """A clock that moves one second per call, from 2024-01-01T00:00:00Z."""

    def __init__(self) -> None:
        self.now = 1_704_067_200.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def open_log(directory: Path, **options: Any) -> AuditLog:
    options.setdefault("checkpoint_every", EVERY)
    options.setdefault("fsync_interval", 0.01)
    return AuditLog(directory, KEY, **options)


@pytest.fixture
def audit_dir(tmp_path: Path) -> Path:
    return tmp_path / "data" / "audit"


@pytest.fixture
def written(audit_dir: Path) -> Path:
    """A closed log of 12 records, checkpointed at 4, 9 and 11."""
    with open_log(audit_dir) as audit:
        for i in range(COUNT):
            audit.append(request(i))
    return audit_dir


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(lines))


def checkpoint_seqs(directory: Path) -> list[int]:
    return [orjson.loads(line)["seq"] for line in lines_of(directory / CHECKPOINT_FILE)]


def canonical_line(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS) + b"\n"


def rehashed(record: dict[str, Any], **changes: Any) -> dict[str, Any]:
    new = {**record, **changes}
    new["hash"] = record_hash(new)
    return new


def unproven_from(seq: int) -> int:
    """The first record after the last checkpoint before `seq`: where a rewrite is reported."""
    return max((c for c in CHECKPOINTS if c < seq), default=-1) + 1


# -- keys --------------------------------------------------------------------------------------------
def test_signing_key_is_created_once_with_private_modes(tmp_path: Path) -> None:
    config = tmp_path / "config"
    key = load_or_create_audit_key(config)
    assert stat.S_IMODE((config / "audit_signing.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((config / "audit_signing.pub").stat().st_mode) == 0o644
    assert b"BEGIN PRIVATE KEY" in (config / "audit_signing.key").read_bytes()
    again = load_or_create_audit_key(config)
    assert again.private_bytes_raw() == key.private_bytes_raw()
    assert load_audit_public_key(config) == key.public_key()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_signing_key_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    load_or_create_audit_key(tmp_path)
    os.chmod(tmp_path / "audit_signing.key", mode)
    with pytest.raises(ValueError, match="readable by other users"):
        load_or_create_audit_key(tmp_path)


def test_damaged_signing_key_or_foreign_public_key_is_refused(tmp_path: Path) -> None:
    load_or_create_audit_key(tmp_path)
    (tmp_path / "audit_signing.pub").write_bytes((tmp_path / "audit_signing.pub").read_bytes())
    other = tmp_path / "other"
    load_or_create_audit_key(other)
    shutil.copy(other / "audit_signing.pub", tmp_path / "audit_signing.pub")
    with pytest.raises(ValueError, match="does not belong"):
        load_or_create_audit_key(tmp_path)
    garbage = b"-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n"
    (tmp_path / "audit_signing.key").write_bytes(garbage)
    with pytest.raises(ValueError, match="not an unencrypted PEM Ed25519 private key"):
        load_or_create_audit_key(tmp_path)
    (tmp_path / "audit_signing.pub").write_bytes(b"not a key")
    with pytest.raises(ValueError):
        load_audit_public_key(tmp_path)


def test_missing_public_key_is_rewritten_from_the_private_key(tmp_path: Path) -> None:
    key = load_or_create_audit_key(tmp_path)
    (tmp_path / "audit_signing.pub").unlink()
    load_or_create_audit_key(tmp_path)
    assert load_audit_public_key(tmp_path) == key.public_key()


# -- writing -----------------------------------------------------------------------------------------
def test_round_trip_fields_modes_and_callers_dict_untouched(audit_dir: Path) -> None:
    clock = Ticker()
    original = request(0)
    snapshot = orjson.dumps(original)
    with open_log(audit_dir, clock=clock) as audit:
        first = audit.append(original)
        second = audit.append(request(1))
    assert orjson.dumps(original) == snapshot  # Never mutated.
    assert (first["seq"], first["prev"], first["time"]) == (0, GENESIS, "2024-01-01T00:00:01.000Z")
    assert (second["seq"], second["prev"]) == (1, first["hash"])
    assert first["hash"] == record_hash(first)
    assert {k: first[k] for k in original} == original
    segment = audit_dir / FIRST_SEGMENT
    assert [orjson.loads(line) for line in lines_of(segment)] == [first, second]
    assert stat.S_IMODE(audit_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(segment.stat().st_mode) == 0o600
    assert stat.S_IMODE((audit_dir / CHECKPOINT_FILE).stat().st_mode) == 0o600
    report = verify(audit_dir, PUBLIC)
    assert (report.ok, report.records, report.checkpoints, report.last_seq) == (True, 2, 1, 1)


def test_reserved_keys_are_refused(audit_dir: Path) -> None:
    with open_log(audit_dir) as audit:
        for key in ("seq", "time", "prev", "hash"):
            with pytest.raises(ValueError, match=key):
                audit.append({**request(0), key: 1})
        assert audit.next_seq == 0


def test_restart_continues_the_chain(audit_dir: Path) -> None:
    with open_log(audit_dir) as audit:
        before = [audit.append(request(i)) for i in range(3)]
    with open_log(audit_dir) as audit:
        after = [audit.append(request(i)) for i in range(3, 5)]
    assert [r["seq"] for r in before + after] == [0, 1, 2, 3, 4]
    assert after[0]["prev"] == before[-1]["hash"]
    report = verify(audit_dir, PUBLIC)
    assert (report.ok, report.records, report.last_seq) == (True, 5, 4)
    assert checkpoint_seqs(audit_dir) == [2, 4]  # One per close.


def test_checkpoints_every_n_and_on_close_and_shipped(tmp_path: Path, audit_dir: Path) -> None:
    shipped: list[dict[str, Any]] = []
    ship_path = tmp_path / "elsewhere" / "checkpoints.jsonl"
    ship_path.parent.mkdir()
    audit = open_log(audit_dir, ship_path=ship_path, ship=shipped.append)
    for i in range(COUNT):
        audit.append(request(i))
    assert checkpoint_seqs(audit_dir) == [4, 9]
    assert audit.checkpoint() is not None and audit.checkpoint() is None  # Nothing new the second time.
    audit.close()
    assert checkpoint_seqs(audit_dir) == [4, 9, 11]  # No second checkpoint of 11 on close.
    assert ship_path.read_bytes() == (audit_dir / CHECKPOINT_FILE).read_bytes()
    assert [c["seq"] for c in shipped] == [4, 9, 11]
    assert {"seq", "hash", "time", "key_id", "signature"} == set(shipped[0])
    with open_log(audit_dir) as again:  # Reopened and closed with nothing added: no checkpoint.
        pass
    assert checkpoint_seqs(audit_dir) == [4, 9, 11]
    report = verify(audit_dir, PUBLIC, checkpoints=ship_path)
    assert (report.ok, report.checkpoints, report.last_checkpoint_seq) == (True, 3, 11)
    del again


def test_a_failing_ship_callable_is_logged_never_raised(audit_dir: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    def broken(_checkpoint: dict[str, Any]) -> None:
        raise RuntimeError("collector down")

    with open_log(audit_dir, ship=broken) as audit:
        for i in range(COUNT):
            audit.append(request(i))
    assert "cannot be shipped" in caplog.text
    assert checkpoint_seqs(audit_dir) == [4, 9, 11]
    assert verify(audit_dir, PUBLIC).ok


def _wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_background_checkpoints_keep_fsyncs_and_signatures_off_the_appending_thread(
        audit_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    appending = threading.get_ident()
    synced_by: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced_by.append(threading.get_ident()), real_fsync(fd))[1])
    audit = open_log(audit_dir, checkpoint_every=10, fsync_interval=0.005, background_checkpoints=True)
    try:
        audit.append(request(0))  # creates the segment (and fsyncs its directory): once per segment
        synced_by.clear()
        for i in range(1, 40):
            audit.append(request(i))
            time.sleep(0.02)  # a server's pace: the syncer signs each half of checkpoint_every
        _wait_for(lambda: checkpoint_seqs(audit_dir)[-1:] == [39])
        assert appending not in synced_by and synced_by
    finally:
        audit.close()
    signed = checkpoint_seqs(audit_dir)
    assert signed[-1] == 39 and all(5 <= b - a <= 9 for a, b in zip([-1, *signed], signed)), signed
    assert verify(audit_dir, PUBLIC).ok


def test_a_request_signs_when_the_background_falls_behind(audit_dir: Path) -> None:
    # The syncer never wakes here (an hour's interval): the bound of checkpoint_every holds by the requests.
    with open_log(audit_dir, checkpoint_every=10, fsync_interval=3600, background_checkpoints=True) as audit:
        for i in range(25):
            audit.append(request(i))
        assert checkpoint_seqs(audit_dir) == [9, 19]
    assert checkpoint_seqs(audit_dir) == [9, 19, 24]


def test_a_failing_background_checkpoint_is_logged_and_the_request_then_fails_closed(
        audit_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    real_append_line = audit_module._append_line

    def full_disk(path: Path, line: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    audit = open_log(audit_dir, checkpoint_every=10, fsync_interval=0.005, background_checkpoints=True)
    try:
        monkeypatch.setattr(audit_module, "_append_line", full_disk)
        for i in range(9):
            audit.append(request(i))
        _wait_for(lambda: "cannot be written in the background" in caplog.text)
        with pytest.raises(AuditUnavailableError):  # the tenth record would leave ten unsigned: refused
            audit.append(request(9))
        monkeypatch.setattr(audit_module, "_append_line", real_append_line)
        _wait_for(lambda: (audit_dir / CHECKPOINT_FILE).exists() and checkpoint_seqs(audit_dir) == [9])  # signed
        assert audit.append(request(10))["seq"] == 10
    finally:
        audit.close()
    report = verify(audit_dir, PUBLIC)
    assert (report.ok, report.records, report.last_checkpoint_seq) == (True, 11, 10)


def test_background_checkpoints_with_many_threads_and_a_close(audit_dir: Path) -> None:
    threads_count, each = 8, 100
    audit = open_log(audit_dir, checkpoint_every=37, fsync_interval=0.001, background_checkpoints=True)
    workers = [threading.Thread(target=lambda n=n: [audit.append(request(i, thread=n)) for i in range(each)])
               for n in range(threads_count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    audit.close()
    signed = checkpoint_seqs(audit_dir)
    assert signed == sorted(set(signed)) and signed[-1] == threads_count * each - 1
    assert all(b - a <= 37 + threads_count - 1 for a, b in zip([-1, *signed], signed)), signed
    report = verify(audit_dir, PUBLIC)
    assert (report.ok, report.records, report.checkpoints) == (True, 800, len(signed))


def test_segments_roll_over_and_are_named_by_their_first_record(audit_dir: Path) -> None:
    with open_log(audit_dir, segment_bytes=1500) as audit:
        for i in range(30):
            audit.append(request(i))
    names = sorted(p.name for p in audit_dir.glob("audit-*.jsonl"))
    assert len(names) > 3
    for name in names:
        first = orjson.loads(lines_of(audit_dir / name)[0])
        assert name == segment_name(first["seq"])
    with open_log(audit_dir, segment_bytes=1500) as audit:
        assert audit.append(request(30))["seq"] == 30
    report = verify(audit_dir, PUBLIC)
    assert (report.ok, report.records) == (True, 31)


def test_many_threads_append_one_contiguous_chain(audit_dir: Path) -> None:
    threads_count, each = 8, 100
    seqs: list[list[int]] = [[] for _ in range(threads_count)]
    start = threading.Barrier(threads_count)

    def work(n: int) -> None:
        start.wait()
        for i in range(each):
            seqs[n].append(audit.append(request(i, thread=n))["seq"])

    audit = open_log(audit_dir, checkpoint_every=37, segment_bytes=8192)
    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads_count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    audit.close()
    assert sorted(s for mine in seqs for s in mine) == list(range(threads_count * each))
    assert all(mine == sorted(mine) for mine in seqs)
    report = verify(audit_dir, PUBLIC)
    assert (report.ok, report.records, report.last_seq) == (True, 800, 799)
    # A checkpoint signs the chain's end once its turn comes (its fsyncs run outside the append lock), so
    # the appends of the other threads meanwhile may join it: every 37 to 37 + 7 records, then the close's.
    seqs_signed = checkpoint_seqs(audit_dir)
    gaps = [b - a for a, b in zip([-1, *seqs_signed], seqs_signed)][:-1]
    assert seqs_signed[-1] == 799 and all(37 <= gap <= 37 + threads_count - 1 for gap in gaps), seqs_signed
    assert report.checkpoints == len(seqs_signed)


def test_torn_final_line_is_cut_off_on_open(audit_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    with open_log(audit_dir) as audit:
        for i in range(3):
            audit.append(request(i))
    segment = audit_dir / FIRST_SEGMENT
    intact = segment.read_bytes()
    with segment.open("ab") as file:
        file.write(b'{"action":"indices:data/read/se')  # A crash in the middle of a write.
    assert verify(audit_dir, PUBLIC).ok  # While "the server runs", a partial last line is ignored.
    with caplog.at_level(logging.WARNING), open_log(audit_dir) as audit:
        assert segment.read_bytes() == intact
        assert audit.append(request(3))["seq"] == 3
    assert "incomplete record" in caplog.text
    assert verify(audit_dir, PUBLIC).records == 4


def test_records_survive_a_process_killed_without_close_or_fsync(tmp_path: Path, audit_dir: Path) -> None:
    script = f"""
import os, sys
from pathlib import Path
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from strongroom.security.audit import AuditLog
audit = AuditLog(Path(sys.argv[1]), Ed25519PrivateKey.generate(), fsync_interval=3600, checkpoint_every=1000)
for i in range(50):
    audit.append({{"identity": "alice", "n": i}})
fd = os.open(Path(sys.argv[1]) / "{FIRST_SEGMENT}", os.O_WRONLY | os.O_APPEND)
os.write(fd, b'{{"identity": "al')  # Killed in the middle of the next record.
os._exit(9)
"""
    done = subprocess.run([sys.executable, "-c", script, str(audit_dir)], capture_output=True, timeout=120)
    assert done.returncode == 9, done.stderr.decode()
    with open_log(audit_dir) as audit:
        assert audit.next_seq == 50
        assert audit.append({"identity": "bob"})["seq"] == 50
    report = verify(audit_dir, PUBLIC)  # The killed writer never checkpointed; this one did on close.
    assert (report.ok, report.records, report.checkpoints) == (True, 51, 1)


def test_open_refuses_a_log_cut_below_a_signed_checkpoint(written: Path) -> None:
    segment = written / FIRST_SEGMENT
    write_lines(segment, lines_of(segment)[:7])
    with pytest.raises(ValueError, match="records are missing"):
        open_log(written)


# -- fail closed -------------------------------------------------------------------------------------
def _in(directory: Path) -> Callable[[int], bool]:
    def check(fd: int) -> bool:
        try:
            return os.readlink(f"/proc/self/fd/{fd}").startswith(str(directory))
        except OSError:
            return False
    return check


@pytest.fixture
def fail_writes(monkeypatch: pytest.MonkeyPatch, audit_dir: Path) -> Iterator[Callable[[str], None]]:
    real_write, real_truncate, is_audit = os.write, os.ftruncate, _in(audit_dir)
    modes: set[str] = set()

    def write(fd: int, data: bytes) -> int:
        if not modes or not is_audit(fd):
            return real_write(fd, data)
        if "raise" in modes:
            raise OSError(errno.ENOSPC, "No space left on device")
        written = real_write(fd, bytes(data)[: len(data) // 2])
        if "partial_then_raise" in modes:
            raise OSError(errno.ENOSPC, "No space left on device")
        return written  # "short": a short write

    def ftruncate(fd: int, length: int) -> None:
        if "no_truncate" in modes and is_audit(fd):
            raise OSError(errno.EIO, "Input/output error")
        real_truncate(fd, length)

    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(os, "ftruncate", ftruncate)

    def set_modes(*names: str) -> None:
        modes.clear()
        modes.update(names)

    yield set_modes  # type: ignore[misc]


@pytest.mark.parametrize("how", ["raise", "partial_then_raise", "short"])
def test_a_failed_write_is_refused_leaves_no_partial_line_and_recovers(
        audit_dir: Path, fail_writes: Callable[..., None], how: str) -> None:
    audit = open_log(audit_dir)
    for i in range(3):
        audit.append(request(i))
    segment = audit_dir / FIRST_SEGMENT
    before = segment.read_bytes()
    fail_writes(how)
    for _ in range(3):
        with pytest.raises(AuditUnavailableError):
            audit.append(request(99))
        assert segment.read_bytes() == before  # Nothing half-written stays behind.
    fail_writes()
    resumed = [audit.append(request(i))["seq"] for i in range(3, 7)]
    assert resumed == [3, 4, 5, 6]  # The refused records used no seq.
    audit.close()
    report = verify(audit_dir, PUBLIC)
    assert (report.ok, report.records, report.last_seq) == (True, 7, 6)


def test_a_partial_line_that_cannot_be_rolled_back_is_cut_at_reopen(
        audit_dir: Path, fail_writes: Callable[..., None]) -> None:
    audit = open_log(audit_dir)
    audit.append(request(0))
    segment = audit_dir / FIRST_SEGMENT
    before = segment.read_bytes()
    fail_writes("partial_then_raise", "no_truncate")
    with pytest.raises(AuditUnavailableError):
        audit.append(request(1))
    assert segment.read_bytes() != before  # The disk kept half a line.
    fail_writes()
    assert audit.append(request(1))["seq"] == 1
    audit.close()
    assert segment.read_bytes().startswith(before)
    assert verify(audit_dir, PUBLIC).records == 2


def test_refused_while_the_segment_cannot_be_reopened(
        audit_dir: Path, fail_writes: Callable[..., None], monkeypatch: pytest.MonkeyPatch) -> None:
    audit = open_log(audit_dir)
    audit.append(request(0))
    fail_writes("raise")
    with pytest.raises(AuditUnavailableError):
        audit.append(request(1))
    fail_writes()
    real_open = os.open

    def refuse(path: Any, *args: Any, **kwargs: Any) -> int:
        if str(path).startswith(str(audit_dir)):
            raise OSError(errno.EACCES, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    for _ in range(2):
        with pytest.raises(AuditUnavailableError):
            audit.append(request(1))
    monkeypatch.setattr(os, "open", real_open)
    assert audit.append(request(1))["seq"] == 1
    audit.close()
    assert verify(audit_dir, PUBLIC).ok


def test_a_failed_fsync_refuses_and_the_written_record_stays_in_the_chain(
        audit_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    audit = open_log(audit_dir, fsync_interval=0)  # fsync on every append
    audit.append(request(0))
    real_fsync, is_audit = os.fsync, _in(audit_dir)

    def fsync(fd: int) -> None:
        if is_audit(fd):
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(AuditUnavailableError):
        audit.append(request(1))
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert audit.append(request(2))["seq"] == 2
    audit.close()
    report = verify(audit_dir, PUBLIC)
    assert (report.ok, report.records) == (True, 3)


def test_a_segment_changed_while_unavailable_stays_refused(
        audit_dir: Path, fail_writes: Callable[..., None]) -> None:
    audit = open_log(audit_dir)
    first = audit.append(request(0))
    fail_writes("raise")
    with pytest.raises(AuditUnavailableError):
        audit.append(request(1))
    fail_writes()
    forged = rehashed(first, seq=1, prev=first["hash"], identity="mallory")
    with (audit_dir / FIRST_SEGMENT).open("ab") as file:
        file.write(canonical_line(forged))
    with pytest.raises(AuditUnavailableError):
        audit.append(request(1))
    with pytest.raises(AuditUnavailableError):
        audit.close()  # Not even a checkpoint is signed over the forged record.
    assert not (audit_dir / CHECKPOINT_FILE).exists()


def test_a_closed_log_refuses(audit_dir: Path) -> None:
    audit = open_log(audit_dir)
    audit.close()
    with pytest.raises(AuditUnavailableError):
        audit.append(request(0))


# -- verify: every tampering at every position -------------------------------------------------------
def broken_at(directory: Path, **kwargs: Any) -> int | None:
    report = verify(directory, PUBLIC, **kwargs)
    assert not report.ok and report.reason
    return report.bad_seq


def test_the_untouched_log_verifies(written: Path) -> None:
    report = verify(written, PUBLIC)
    assert report == type(report)(ok=True, records=12, checkpoints=3, last_seq=11, bad_seq=None, reason=None,
                                  last_checkpoint_seq=11)


@pytest.mark.parametrize("position", range(COUNT))
def test_any_changed_byte_is_found_at_its_record(written: Path, position: int) -> None:
    segment = written / FIRST_SEGMENT
    lines = lines_of(segment)
    line = lines[position]
    for offset in range(len(line)):
        changed = bytearray(line)
        changed[offset] ^= 0x01
        write_lines(segment, [*lines[:position], bytes(changed), *lines[position + 1:]])
        assert broken_at(written) == position, (offset, bytes(changed))


@pytest.mark.parametrize("spelling", [
    lambda line: line.replace(b'{"action"', b'{ "action"', 1),  # Whitespace.
    lambda line: line.replace(b'"address"', b'"addr\\u0065ss"', 1),  # An escape for a plain character.
    lambda line: line.replace(b'{"action"', b'{"action":"x","action"', 1),  # A duplicate key, last one wins.
], ids=["space", "escape", "duplicate-key"])
def test_the_same_record_spelled_differently_is_found(written: Path,
                                                      spelling: Callable[[bytes], bytes]) -> None:
    segment = written / FIRST_SEGMENT
    lines = lines_of(segment)
    respelled = spelling(lines[6])
    assert respelled != lines[6] and orjson.loads(respelled) == orjson.loads(lines[6])  # Same content.
    write_lines(segment, [*lines[:6], respelled, *lines[7:]])
    assert broken_at(written) == 6


@pytest.mark.parametrize("position", range(COUNT))
def test_a_deleted_record_is_found(written: Path, position: int) -> None:
    segment = written / FIRST_SEGMENT
    lines = lines_of(segment)
    write_lines(segment, lines[:position] + lines[position + 1:])
    assert broken_at(written) == position


@pytest.mark.parametrize("position", range(COUNT))
def test_a_duplicated_record_is_found_where_its_copy_stands(written: Path, position: int) -> None:
    segment = written / FIRST_SEGMENT
    lines = lines_of(segment)
    write_lines(segment, lines[:position + 1] + lines[position:])
    assert broken_at(written) == position + 1


@pytest.mark.parametrize("position", range(COUNT - 1))
def test_swapped_records_are_found(written: Path, position: int) -> None:
    segment = written / FIRST_SEGMENT
    lines = lines_of(segment)
    lines[position], lines[position + 1] = lines[position + 1], lines[position]
    write_lines(segment, lines)
    assert broken_at(written) == position


@pytest.mark.parametrize("position", range(COUNT + 1))
def test_an_inserted_unchained_record_is_found(written: Path, position: int) -> None:
    segment = written / FIRST_SEGMENT
    lines = lines_of(segment)
    template = orjson.loads(lines[0])
    forged = rehashed(template, seq=position, prev="f" * 64, identity="mallory")  # Hash right, chain wrong.
    write_lines(segment, [*lines[:position], canonical_line(forged), *lines[position:]])
    assert broken_at(written) == position


@pytest.mark.parametrize("position", range(COUNT))
def test_an_inserted_chained_record_is_found_at_the_record_it_displaces(written: Path, position: int) -> None:
    segment = written / FIRST_SEGMENT
    lines = lines_of(segment)
    prev = orjson.loads(lines[position - 1])["hash"] if position else GENESIS
    forged = rehashed(orjson.loads(lines[position]), prev=prev, identity="mallory")
    write_lines(segment, [*lines[:position], canonical_line(forged), *lines[position:]])
    assert broken_at(written) == (unproven_from(position) if position in CHECKPOINTS else position + 1)


@pytest.mark.parametrize("position", range(COUNT))
def test_an_edited_and_rehashed_record_breaks_the_chain_after_it(written: Path, position: int) -> None:
    segment = written / FIRST_SEGMENT
    lines = lines_of(segment)
    lines[position] = canonical_line(rehashed(orjson.loads(lines[position]), purpose="none of your business"))
    write_lines(segment, lines)
    # Its successor no longer chains to it; a checkpointed record is caught by its checkpoint first.
    assert broken_at(written) == (unproven_from(position) if position in CHECKPOINTS else position + 1)


@pytest.mark.parametrize("position", range(COUNT))
def test_a_rewritten_chain_suffix_is_caught_only_by_the_signed_checkpoint(written: Path,
                                                                           position: int) -> None:
    segment = written / FIRST_SEGMENT
    records = [orjson.loads(line) for line in lines_of(segment)]
    records[position]["revealed"] = []  # Hide that a document was shown, and re-hash everything after.
    for seq in range(position, COUNT):
        prev = records[seq - 1]["hash"] if seq else GENESIS
        records[seq] = rehashed(records[seq], prev=prev)
    write_lines(segment, [canonical_line(r) for r in records])
    (written / CHECKPOINT_FILE).rename(written.parent / "aside.jsonl")
    assert verify(written, PUBLIC).ok  # The chain alone is consistent again ...
    (written.parent / "aside.jsonl").rename(written / CHECKPOINT_FILE)
    report = verify(written, PUBLIC)  # ... the signed checkpoints are not.
    assert not report.ok and "signed checkpoint" in (report.reason or "")
    assert report.bad_seq == unproven_from(position)


@pytest.mark.parametrize("position", range(COUNT))
@pytest.mark.parametrize("mid_line", [False, True])
def test_a_truncated_log_is_found(written: Path, position: int, mid_line: bool) -> None:
    segment = written / FIRST_SEGMENT
    lines = lines_of(segment)
    kept = lines[:position] + ([lines[position][:40]] if mid_line else [])
    write_lines(segment, kept)
    assert broken_at(written) == position


def test_a_removed_segment_is_found(audit_dir: Path) -> None:
    with open_log(audit_dir, segment_bytes=1500) as audit:
        for i in range(30):
            audit.append(request(i))
    segments = sorted(audit_dir.glob("audit-*.jsonl"))
    middle, last = segments[len(segments) // 2], segments[-1]
    aside = audit_dir.parent / "aside"
    middle.rename(aside)
    assert broken_at(audit_dir) == int(middle.name[6:18])
    aside.rename(middle)
    last.unlink()
    assert broken_at(audit_dir) == int(last.name[6:18])  # Truncated: the checkpoint on close names 29.


def test_wrong_public_key_or_edited_checkpoint_fails(written: Path) -> None:
    other = Ed25519PrivateKey.generate().public_key()
    report = verify(written, other)
    assert (report.ok, report.bad_seq) == (False, 4) and "another key" in (report.reason or "")
    checkpoints = written / CHECKPOINT_FILE
    lines = lines_of(checkpoints)
    second = orjson.loads(lines[1])
    forged = {**second, "hash": orjson.loads(lines_of(written / FIRST_SEGMENT)[9])["hash"][::-1]}
    write_lines(checkpoints, [lines[0], canonical_line(forged), lines[2]])
    report = verify(written, PUBLIC)
    assert (report.ok, report.bad_seq) == (False, 9) and "signature does not verify" in (report.reason or "")
    write_lines(checkpoints, [lines[0], b"{not json\n", lines[2]])
    report = verify(written, PUBLIC)
    assert (report.ok, report.bad_seq) == (False, None) and "malformed" in (report.reason or "")


def test_a_shipped_checkpoint_copy_catches_what_the_local_copy_lost(tmp_path: Path, audit_dir: Path) -> None:
    ship_path = tmp_path / "shipped.jsonl"
    with open_log(audit_dir, ship_path=ship_path) as audit:
        for i in range(COUNT):
            audit.append(request(i))
    segment, checkpoints = audit_dir / FIRST_SEGMENT, audit_dir / CHECKPOINT_FILE
    write_lines(segment, lines_of(segment)[:7])  # Cut the log at 7 and the local checkpoints with it.
    write_lines(checkpoints, lines_of(checkpoints)[:1])
    assert verify(audit_dir, PUBLIC).ok  # Not detectable locally (the module docstring says so).
    report = verify(audit_dir, PUBLIC, checkpoints=ship_path)
    assert (report.ok, report.bad_seq) == (False, 7) and "missing" in (report.reason or "")


def test_verify_of_missing_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        verify(tmp_path / "nowhere", PUBLIC)
    tmp_path.joinpath("audit").mkdir()
    with pytest.raises(FileNotFoundError):
        verify(tmp_path / "audit", PUBLIC, checkpoints=tmp_path / "missing.jsonl")
    report = verify(tmp_path / "audit", PUBLIC)
    assert (report.ok, report.records, report.last_seq) == (True, 0, -1)


# -- search ------------------------------------------------------------------------------------------
def test_search_filters_newest_first_across_segments(audit_dir: Path) -> None:
    clock = Ticker()
    start_ms = int((clock.now + 1) * 1000)
    with open_log(audit_dir, clock=clock, checkpoint_every=1000, segment_bytes=1200) as audit:
        made = []
        for i in range(20):
            made.append(audit.append(request(
                i, identity="alice" if i % 2 else "bob", action="read" if i % 3 else "write",
                indices=["residents", "cases"] if i % 4 == 0 else ["residents"],
                outcome="denied" if i == 7 else "allowed", revealed=[f"doc-{i}", "doc-shared"])))
        assert len(list(audit_dir.glob("audit-*.jsonl"))) > 2

        def seqs(**filters: Any) -> list[int]:
            return [r["seq"] for r in audit.search(**filters)]

        assert seqs() == list(range(19, -1, -1))
        assert seqs(size=3) == [19, 18, 17]
        assert seqs(identity="alice") == [19, 17, 15, 13, 11, 9, 7, 5, 3, 1]
        assert seqs(identity="alice", action="write") == [15, 9, 3]
        assert seqs(index="cases") == [16, 12, 8, 4, 0]
        assert seqs(outcome="denied") == [7]
        assert seqs(doc_id="doc-13") == [13]
        assert seqs(doc_id="doc-shared", size=2) == [19, 18]
        assert seqs(since_ms=start_ms + 15_000) == [19, 18, 17, 16, 15]  # One record per second.
        assert seqs(since_ms=start_ms + 2_000, until_ms=start_ms + 4_000) == [4, 3, 2]
        assert seqs(identity="nobody") == []
        assert audit.search(doc_id="doc-5")[0] == made[5]


# -- CLI ---------------------------------------------------------------------------------------------
@pytest.fixture
def deployment(tmp_path: Path) -> tuple[Path, Path]:
    data, config = tmp_path / "data", tmp_path / "config"
    key = load_or_create_audit_key(config)
    with AuditLog(data / "audit", key, checkpoint_every=EVERY) as audit:
        for i in range(COUNT):
            audit.append(request(i))
    return data, config


def run_verify(data: Path, config: Path, *extra: str) -> Any:
    return CliRunner().invoke(main, ["audit", "verify", "--data-dir", str(data), "--config-dir", str(config),
                                     *extra])


def test_cli_verify_intact(deployment: tuple[Path, Path]) -> None:
    result = run_verify(*deployment)
    assert result.exit_code == 0, result.output
    assert "audit chain intact: 12 records, 3 checkpoints, last record 11" in result.output


def test_cli_verify_names_the_broken_record(deployment: tuple[Path, Path]) -> None:
    data, config = deployment
    segment = data / "audit" / FIRST_SEGMENT
    lines = lines_of(segment)
    write_lines(segment, lines[:7] + lines[8:])
    result = run_verify(data, config)
    assert result.exit_code == 1
    assert "audit chain broken at record 7:" in result.output


def test_cli_verify_with_a_shipped_copy_and_another_audit_dir(tmp_path: Path,
                                                             deployment: tuple[Path, Path]) -> None:
    data, config = deployment
    moved = tmp_path / "moved-audit"
    shutil.copytree(data / "audit", moved)
    copy = tmp_path / "copy.jsonl"
    shutil.copy(moved / CHECKPOINT_FILE, copy)
    result = run_verify(data, config, "--audit-dir", str(moved), "--checkpoints", str(copy))
    assert result.exit_code == 0, result.output
    write_lines(moved / FIRST_SEGMENT, lines_of(moved / FIRST_SEGMENT)[:10])
    result = run_verify(data, config, "--audit-dir", str(moved), "--checkpoints", str(copy))
    assert result.exit_code == 1 and "audit chain broken at record 10:" in result.output


@pytest.mark.parametrize("missing", ["public key", "audit dir", "checkpoints"])
def test_cli_verify_missing_files_exit_2(deployment: tuple[Path, Path], missing: str) -> None:
    data, config = deployment
    extra: list[str] = []
    if missing == "public key":
        (config / "audit_signing.pub").unlink()
    elif missing == "audit dir":
        shutil.rmtree(data / "audit")
    else:
        extra = ["--checkpoints", str(data / "nope.jsonl")]
    result = run_verify(data, config, *extra)
    assert result.exit_code == 2, result.output
    assert "Error" in result.output or "no " in result.output


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"")), max_size=12),
       tail=st.binary(max_size=10).map(lambda b: b.replace(b"\n", b"")), chunk=st.integers(1, 40))
def test_lines_backwards_reads_what_a_whole_read_gives(tmp_path_factory: pytest.TempPathFactory, lines: list[bytes],
                                                       tail: bytes, chunk: int) -> None:
    """Searching reads segments from the end in chunks: any chunk size gives the complete lines of a
    whole read, last first, and never the line being written."""
    from strongroom.security.audit import _complete_lines, _lines_backwards
    path = tmp_path_factory.mktemp("lines") / "segment.jsonl"
    data = b"".join(line + b"\n" for line in lines) + tail
    path.write_bytes(data)
    assert list(_lines_backwards(path, chunk)) == list(reversed(_complete_lines(data)))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(min_value=-1e9, max_value=4e9, allow_nan=False), min_size=1, max_size=20))
def test_record_time_is_utc_to_the_millisecond_whatever_came_before(moments: list[float]) -> None:
    """`_iso` keeps the last second's text: any sequence of times still formats each one exactly."""
    import datetime as dt

    from strongroom.security.audit import _iso

    for seconds in moments:
        ms = int(seconds * 1000)
        expected = (dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        assert _iso(seconds) == expected + "Z"
