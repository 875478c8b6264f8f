"""The write-ahead log: round trips, torn tails dropped, corruption refused with file and offset."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.engine.wal import HEADER_SIZE, MAGIC, LocalLog, LogCorruptionError


def fill(log: LocalLog, payloads: list[bytes]) -> None:
    start = log.last_seq + 1
    log.append([(start + i, p) for i, p in enumerate(payloads)])
    log.sync(log.last_seq)


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.wal"))


@settings(max_examples=40, deadline=None)
@given(batches=st.lists(st.lists(st.binary(max_size=300), min_size=1, max_size=8), max_size=12),
       segment_bytes=st.sampled_from([64, 500, 1 << 20]))
def test_records_round_trip_across_segments_and_reopen(tmp_path_factory, batches, segment_bytes) -> None:
    directory = tmp_path_factory.mktemp("wal")
    log = LocalLog(directory, segment_bytes=segment_bytes)
    expected: list[bytes] = []
    for batch in batches:
        fill(log, batch)
        expected.extend(batch)
    log.close()
    reopened = LocalLog(directory, segment_bytes=segment_bytes)
    assert reopened.last_seq == len(expected) - 1
    assert [p for _s, p in reopened.read_from(0)] == expected
    assert [s for s, _p in reopened.read_from(0)] == list(range(len(expected)))
    reopened.close()


def test_truncate_before_drops_covered_segments_only(tmp_path: Path) -> None:
    log = LocalLog(tmp_path, segment_bytes=100)
    for i in range(20):
        fill(log, [b"x" * 40 + bytes([i])])
    before = len(segment_files(tmp_path))
    log.truncate_before(15)
    assert len(segment_files(tmp_path)) < before
    assert [s for s, _ in log.read_from(15)] == list(range(15, 20))
    log.truncate_before(20)  # Everything covered: the active segment rolls and the old one goes.
    assert list(log.read_from(0)) == []
    fill(log, [b"after"])
    log.close()
    reopened = LocalLog(tmp_path)
    assert list(reopened.read_from(0)) == [(20, b"after")]
    reopened.close()


@pytest.mark.parametrize("cut", [1, HEADER_SIZE - 1, HEADER_SIZE, HEADER_SIZE + 3])
def test_torn_last_record_is_dropped(tmp_path: Path, cut: int) -> None:
    log = LocalLog(tmp_path)
    fill(log, [b"first", b"second", b"third-record"])
    log.close()
    (path,) = segment_files(tmp_path)
    size = path.stat().st_size
    last_record = HEADER_SIZE + len(b"third-record")
    with open(path, "r+b") as handle:  # Keep only `cut` bytes of the last record.
        handle.truncate(size - last_record + cut)
    reopened = LocalLog(tmp_path)
    assert [p for _s, p in reopened.read_from(0)] == [b"first", b"second"]
    assert path.stat().st_size == size - last_record  # The torn bytes are gone for good.
    fill(reopened, [b"new-third"])  # Sequence continues where the good records ended.
    assert list(reopened.read_from(2)) == [(2, b"new-third")]
    reopened.close()


def test_torn_segment_header_is_repaired(tmp_path: Path) -> None:
    log = LocalLog(tmp_path)
    fill(log, [b"a"])
    log.close()
    (path,) = segment_files(tmp_path)
    nxt = tmp_path / f"{1:020d}.wal"
    nxt.write_bytes(MAGIC[:3])  # Died while creating the next segment.
    reopened = LocalLog(tmp_path)
    assert list(reopened.read_from(0)) == [(0, b"a")]
    fill(reopened, [b"b"])
    assert list(reopened.read_from(0)) == [(0, b"a"), (1, b"b")]
    reopened.close()


@pytest.mark.parametrize("where", ["header", "payload", "last-payload"])
def test_corrupted_acknowledged_record_refuses_to_open(tmp_path: Path, where: str) -> None:
    log = LocalLog(tmp_path)
    fill(log, [b"alpha" * 4, b"bravo" * 4, b"charlie" * 4])
    log.close()
    (path,) = segment_files(tmp_path)
    data = bytearray(path.read_bytes())
    second = len(MAGIC) + HEADER_SIZE + 20
    third = second + HEADER_SIZE + 20
    position = {"header": second + 2, "payload": second + HEADER_SIZE + 5,
                "last-payload": third + HEADER_SIZE + 1}[where]
    data[position] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(LogCorruptionError) as caught:
        LocalLog(tmp_path)
    expected_offset = third if where == "last-payload" else second
    assert caught.value.offset == expected_offset
    assert str(path) in str(caught.value) and f"offset {expected_offset}" in str(caught.value)
    assert path.read_bytes() == bytes(data)  # Refusing to open changes nothing on disk.


def test_deleted_record_is_a_sequence_gap(tmp_path: Path) -> None:
    log = LocalLog(tmp_path)
    fill(log, [b"one", b"two", b"three"])
    log.close()
    (path,) = segment_files(tmp_path)
    data = path.read_bytes()
    start = len(MAGIC) + HEADER_SIZE + 3
    path.write_bytes(data[:start] + data[start + HEADER_SIZE + 3:])  # Drop record 1.
    with pytest.raises(LogCorruptionError, match="sequence 2 where 1 was expected"):
        LocalLog(tmp_path)


def test_incomplete_record_in_older_segment_is_corruption(tmp_path: Path) -> None:
    log = LocalLog(tmp_path, segment_bytes=10)
    fill(log, [b"x" * 30])
    fill(log, [b"y" * 30])
    log.close()
    first, _second = segment_files(tmp_path)
    with open(first, "r+b") as handle:
        handle.truncate(first.stat().st_size - 4)
    with pytest.raises(LogCorruptionError, match="closed segment"):
        LocalLog(tmp_path)


def test_concurrent_syncs_share_fsyncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writers that arrive during an fsync are all covered by the next single fsync (group commit)."""
    log = LocalLog(tmp_path)
    calls: list[int] = []
    first_started, release = threading.Event(), threading.Event()
    real = os.fdatasync

    def slow_fsync(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 1:
            first_started.set()
            assert release.wait(10)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", slow_fsync)
    append_lock = threading.Lock()

    def write_and_sync() -> None:
        with append_lock:  # The shard's write lock: one appender at a time.
            seq = log.append([(log.last_seq + 1, b"payload")])
        log.sync(seq)
        assert log.synced_seq >= seq

    first = threading.Thread(target=write_and_sync)
    first.start()
    assert first_started.wait(10)  # The first fsync is under way and stalls…
    followers = [threading.Thread(target=write_and_sync) for _ in range(7)]
    for thread in followers:
        thread.start()
    deadline = time.monotonic() + 10
    while log.last_seq < 7 and time.monotonic() < deadline:  # …while seven more writers append and wait.
        time.sleep(0.005)
    assert log.last_seq == 7
    release.set()
    for thread in [first, *followers]:
        thread.join(10)
    assert len(calls) == 2  # One fsync for the first writer, one shared by the seven that queued behind it.
    assert log.synced_seq == 7
    log.close()
