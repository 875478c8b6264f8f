"""Crash safety: SIGKILL at random moments during concurrent bulk writes, restart, verify.

Invariants after every restart:
* every acknowledged write is present with exactly the acknowledged content;
* every acknowledged delete stays deleted;
* a write in flight at the kill is either fully applied or not at all (never a mix of versions);
* counts agree with the documents present.
Also: a torn tail of the log is dropped on restart; a corrupted acknowledged record stops the
start with a message naming the file and the byte offset.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import random
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from live import PASSWORD, LiveServer, run_strongroom, start_server
from strongroom.engine.wal import encode_record

ROUNDS = int(os.environ.get("STRONGROOM_CRASH_ROUNDS", "20"))
WRITERS = 3
INDEX = "crash"


class Connection:
    def __init__(self, server: LiveServer) -> None:
        context = ssl.create_default_context(cafile=str(server.ca))
        self._conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=context, timeout=30)
        token = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}

    def request(self, method: str, path: str, body: bytes | None = None, ndjson: bool = False) -> tuple[int, Any]:
        headers = dict(self._headers)
        if ndjson:
            headers["Content-Type"] = "application/x-ndjson"
        self._conn.request(method, path, body=body, headers=headers)
        response = self._conn.getresponse()
        return response.status, json.loads(response.read() or b"null")

    def close(self) -> None:
        self._conn.close()


@dataclass
class Model:
    """What clients were told. `maybe` holds ids whose last write was in flight: allowed states."""

    live: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    maybe: dict[str, list[dict[str, Any] | None]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def writer(server: LiveServer, model: Model, number: int, round_: int, stop: threading.Event,
           seed: int) -> None:
    rng = random.Random(seed)
    conn = Connection(server)
    counter = 0
    try:
        while not stop.is_set():
            lines: list[bytes] = []
            planned: dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]] = {}
            with model.lock:
                mine = [i for i in model.live if i.startswith(f"w{number}-")]
            for _ in range(rng.randint(10, 60)):
                choice = rng.random()
                if choice < 0.6 or not mine:
                    counter += 1
                    doc_id = f"w{number}-{round_}-{counter}"
                    body = {"w": number, "round": round_, "n": counter, "text": f"resident {counter} of {number}",
                            f"f{round_}": rng.randint(0, 1000)}
                    lines += [json.dumps({"index": {"_index": INDEX, "_id": doc_id}}).encode(),
                              json.dumps(body).encode()]
                    planned[doc_id] = (None, body)
                    continue
                doc_id = rng.choice(mine)
                if doc_id in planned:
                    continue
                before = model.live[doc_id]
                if choice < 0.8:
                    patch = {"gen": rng.randint(0, 10**6), "nested": {"round": round_}}
                    after = {**before, **patch, "nested": {**before.get("nested", {}), **patch["nested"]}}
                    lines += [json.dumps({"update": {"_index": INDEX, "_id": doc_id}}).encode(),
                              json.dumps({"doc": patch}).encode()]
                elif choice < 0.9:
                    after = {"w": number, "replaced": round_, "text": "replaced document"}
                    lines += [json.dumps({"index": {"_index": INDEX, "_id": doc_id}}).encode(),
                              json.dumps(after).encode()]
                else:
                    after = None
                    lines.append(json.dumps({"delete": {"_index": INDEX, "_id": doc_id}}).encode())
                planned[doc_id] = (before, after)
            try:
                status, response = conn.request("POST", "/_bulk", b"\n".join(lines) + b"\n", ndjson=True)
            except (OSError, http.client.HTTPException):
                with model.lock:  # Killed mid-request: each item may or may not have been applied.
                    for doc_id, (before, after) in planned.items():
                        model.maybe[doc_id] = [before, after]
                return
            assert status == 200 and not response["errors"], response
            with model.lock:
                for doc_id, (_before, after) in planned.items():
                    if after is None:
                        model.live.pop(doc_id, None)
                        model.deleted.add(doc_id)
                    else:
                        model.live[doc_id] = after
                mine = [i for i in model.live if i.startswith(f"w{number}-")]
    finally:
        conn.close()


def observe(server: LiveServer, ids: list[str]) -> dict[str, dict[str, Any] | None]:
    conn = Connection(server)
    seen: dict[str, dict[str, Any] | None] = {}
    try:
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            status, body = conn.request("POST", f"/{INDEX}/_mget", json.dumps({"ids": chunk}).encode())
            assert status == 200, body
            for doc in body["docs"]:
                seen[doc["_id"]] = doc["_source"] if doc.get("found") else None
    finally:
        conn.close()
    return seen


def verify(server: LiveServer, model: Model) -> None:
    ids = sorted(set(model.live) | model.deleted | set(model.maybe))
    seen = observe(server, ids)
    for doc_id in ids:
        if doc_id in model.maybe:
            assert seen[doc_id] in model.maybe[doc_id], (doc_id, seen[doc_id], model.maybe[doc_id])
            continue
        if doc_id in model.deleted:
            assert seen[doc_id] is None, f"acknowledged delete of {doc_id} came back"
        else:
            assert seen[doc_id] == model.live[doc_id], f"acknowledged write of {doc_id} lost or changed"
    for doc_id in model.maybe:  # Settle in-flight ids to what survived.
        if seen[doc_id] is None:
            model.live.pop(doc_id, None)
            model.deleted.add(doc_id)
        else:
            model.live[doc_id] = seen[doc_id]
            model.deleted.discard(doc_id)
    model.maybe.clear()
    conn = Connection(server)
    try:
        conn.request("POST", f"/{INDEX}/_refresh")
        status, body = conn.request("POST", f"/{INDEX}/_count")
        assert status == 200 and body["count"] == len(model.live), (body, len(model.live))
    finally:
        conn.close()


def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    data, config = tmp_path / "data", tmp_path / "config"
    server = start_server(data, config)
    conn = Connection(server)
    status, _ = conn.request("PUT", f"/{INDEX}", json.dumps(
        {"settings": {"number_of_shards": 2, "refresh_interval": "300ms"}}).encode())
    conn.close()
    assert status == 200
    model = Model()
    rng = random.Random(20221)
    try:
        for round_ in range(ROUNDS):
            stop = threading.Event()
            threads = [threading.Thread(target=writer, args=(server, model, w, round_, stop, rng.random()))
                       for w in range(WRITERS)]
            for thread in threads:
                thread.start()
            time.sleep(rng.uniform(0.2, 1.5))
            server.kill()
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
            server = start_server(data, config)
            verify(server, model)
        assert len(model.live) > 500  # The workload really wrote.
    finally:
        server.stop()


def _wal_segments(data: Path) -> list[Path]:
    return sorted(p for p in data.glob("indices/*/shards/*/translog/*.wal") if p.stat().st_size > 8)


def _unflushed_server(tmp_path: Path) -> tuple[Path, Path, dict[str, Any]]:
    """Writes documents with refresh disabled and kills the server, so they live only in the log."""
    data, config = tmp_path / "data", tmp_path / "config"
    server = start_server(data, config)
    conn = Connection(server)
    conn.request("PUT", "/logonly", json.dumps({"settings": {"refresh_interval": "-1"}}).encode())
    docs = {f"d{i}": {"n": i, "name": f"resident {i}"} for i in range(50)}
    lines = []
    for doc_id, doc in docs.items():
        lines += [json.dumps({"index": {"_id": doc_id}}).encode(), json.dumps(doc).encode()]
    status, body = conn.request("POST", "/logonly/_bulk", b"\n".join(lines) + b"\n", ndjson=True)
    assert status == 200 and not body["errors"]
    conn.close()
    server.kill()
    return data, config, docs


def test_torn_log_tail_is_dropped_and_the_rest_recovered(tmp_path: Path) -> None:
    data, config, docs = _unflushed_server(tmp_path)
    (segment,) = _wal_segments(data)
    torn = encode_record(len(docs), b"x" * 100)[:60]  # The next record, cut short inside its payload.
    with open(segment, "ab") as handle:
        handle.write(torn)
    server = start_server(data, config)
    try:
        assert "dropping a torn record" in server.log_text()
        seen = observe_index(server, "logonly", list(docs))
        assert seen == docs
    finally:
        server.stop()


def observe_index(server: LiveServer, index: str, ids: list[str]) -> dict[str, Any]:
    conn = Connection(server)
    try:
        status, body = conn.request("POST", f"/{index}/_mget", json.dumps({"ids": ids}).encode())
        assert status == 200
        return {d["_id"]: d["_source"] for d in body["docs"] if d.get("found")}
    finally:
        conn.close()


def test_corrupted_acknowledged_record_stops_start_naming_file_and_offset(tmp_path: Path) -> None:
    data, config, _docs = _unflushed_server(tmp_path)
    (segment,) = _wal_segments(data)
    raw = bytearray(segment.read_bytes())
    middle = len(raw) // 2
    raw[middle] ^= 0xFF
    segment.write_bytes(bytes(raw))
    process = run_strongroom(["serve", "--data-dir", str(data), "--config-dir", str(config), "--port", "0"])
    output, _ = process.communicate(timeout=60)
    assert process.returncode != 0
    assert str(segment) in output and "offset" in output, output
    assert segment.read_bytes() == bytes(raw)  # Nothing was "repaired" behind the operator's back.
