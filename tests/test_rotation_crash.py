"""Crash during key rotation: SIGKILL the server at random points of the background re-seal, restart,
and every document still opens; the restarted server resumes the re-seal by itself and brings every
document to the newest version.

Marked slow (several server starts); `.ci/run` runs it.
"""

from __future__ import annotations

import base64
import random
import re
import ssl
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from live import PASSWORD, LiveServer, start_server

pytestmark = pytest.mark.slow

INDEX = "rotating"
COUNT = 4000
MAPPINGS = {"properties": {"national_id": {"type": "keyword", "protect": "blind"},
                           "notes": {"type": "text", "protect": "encrypt"}, "n": {"type": "long"}}}


def document(i: int) -> dict[str, Any]:
    return {"national_id": f"31011519900101{i:04d}", "notes": f"case notes {i}", "n": i}


def http(server: LiveServer) -> httpx.Client:
    token = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    return httpx.Client(base_url=server.url, verify=ssl.create_default_context(cafile=server.ca), timeout=60,
                        headers={"Authorization": f"Basic {token}"})


def check_all_readable(server: LiveServer) -> None:
    with http(server) as client:
        ids = [f"d{i}" for i in range(COUNT)]
        for start in range(0, COUNT, 500):
            docs = client.post(f"/{INDEX}/_mget", json={"ids": ids[start:start + 500]}).json()["docs"]
            for doc in docs:
                assert doc.get("found") is True, doc
                assert doc["_source"] == document(int(doc["_id"][1:]))
        probe = random.Random(5).randrange(COUNT)
        hits = client.post(f"/{INDEX}/_search", json={"query": {"term": {"national_id": document(probe)["national_id"]}}})
        assert [h["_id"] for h in hits.json()["hits"]["hits"]] == [f"d{probe}"]


def wait_for_reseal(server: LiveServer) -> dict[str, Any]:
    with http(server) as client:
        deadline = time.monotonic() + 120
        while (status := client.get(f"/_strongroom/keys/{INDEX}/_rotate").json())["running"]:
            assert time.monotonic() < deadline, status
            time.sleep(0.2)
    return status


def test_sigkill_during_reseal_leaves_every_document_readable(tmp_path: Path) -> None:
    data, config = tmp_path / "data", tmp_path / "config"
    server = start_server(data, config)
    with http(server) as client:
        assert client.put(f"/{INDEX}", json={"settings": {"number_of_shards": 2}, "mappings": MAPPINGS}).is_success
        for start in range(0, COUNT, 1000):
            lines = b"".join(b'{"index": {"_id": "d%d"}}\n' % i + orjson.dumps(document(i)) + b"\n"
                             for i in range(start, min(start + 1000, COUNT)))
            assert client.post(f"/{INDEX}/_bulk", content=lines,
                               headers={"Content-Type": "application/x-ndjson"}).json()["errors"] is False
        client.post(f"/{INDEX}/_refresh")
    rng = random.Random(20261128)
    version = 1
    remaining: list[int] = []
    for _round in range(3):
        with http(server) as client:
            answer = client.post(f"/_strongroom/keys/{INDEX}/_rotate").json()
            version += 1
            assert answer["key_version"] == version
        time.sleep(rng.uniform(0.0, 0.6))  # somewhere in the re-seal (or just after it)
        server.kill()
        server = start_server(data, config)
        check_all_readable(server)
        wait_for_reseal(server)
        resumed = re.findall(r"re-seal of index \[rotating\] done: (\d+) documents sealed again", server.log_text())
        remaining.append(int(resumed[0]) if resumed else 0)  # what the restarted server had left to do
    assert any(remaining), remaining  # at least one kill interrupted a re-seal, which was then resumed
    status = wait_for_reseal(server)  # the restarted server resumed the re-seal by itself
    assert (status["documents_remaining"], status["documents_resealed"]) == (0, COUNT), status
    check_all_readable(server)
    server.stop()
