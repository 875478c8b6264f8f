"""Sealed `_source` at rest: what the engine stores is ciphertext bound to index and id; every read
path opens it; the server refuses to start with a master key that does not open its indices."""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path
from typing import Any

import orjson
import pytest
import tantivy

from strongroom.engine.index import WriteRequest
from strongroom.query.search_request import parse_search_request
from strongroom.server import StartupError, open_node
from strongroom.security.session import DocWrite, GetSpec, Session
from strongroom.settings import load_settings

SENTINEL = "sentinel-4471-never-in-clear"
PASSWORD = "a long enough bootstrap passphrase"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def node_env(key: bytes) -> dict[str, str]:
    return {"STRONGROOM_MASTER_KEY": base64.b64encode(key).decode(), "STRONGROOM_BOOTSTRAP_PASSWORD": PASSWORD}


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "data", tmp_path / "config"


def open_test_node(dirs: tuple[Path, Path], key: bytes):  # type: ignore[no-untyped-def]
    data, config = dirs
    return open_node(data, config, load_settings(config), environ=node_env(key))


def load(session: Session) -> None:
    async def go() -> None:
        await session.create_index("people", {"number_of_shards": 1}, {"properties": {"tags": {"type": "keyword"}}})
        docs = {"a": {"note": SENTINEL, "tags": ["x", "z"], "n": 1}, "b": {"note": "plain", "tags": ["y"], "n": 2}}
        await session.write([DocWrite("index", "people", k, v, orjson.dumps(v)) for k, v in docs.items()],
                            refresh="true")
    run(go())


def stored_sources(data: Path) -> list[bytes]:
    out = []
    for meta in data.rglob("meta.json"):
        index = tantivy.Index.open(str(meta.parent))
        searcher = index.searcher()
        for _score, address in searcher.search(tantivy.Query.all_query(), 100).hits:
            source = searcher.doc(address).get_first("_source")
            if source is not None:
                out.append(source)
    return out


def test_sources_are_sealed_and_every_read_path_opens_them(dirs: tuple[Path, Path]) -> None:
    key = os.urandom(32)
    node = open_test_node(dirs, key)
    try:
        session = node.gate.system_session("test")
        load(session)
        sources = stored_sources(dirs[0])
        assert len(sources) == 2
        assert all(SENTINEL.encode() not in s and not s.startswith(b"{") for s in sources)
        assert run(session.get(GetSpec("people", "a"))).source["note"] == SENTINEL
        out = run(session.search("people", parse_search_request(
            {"query": {"match": {"note": SENTINEL}}, "aggs": {"t": {"top_hits": {}}},
             "sort": [{"tags": {"order": "desc", "mode": "max"}}]}, {})))
        assert [h.source["note"] for h in out.hits] == [SENTINEL]
        assert out.aggregations["t"]["hits"]["hits"][0]["_source"]["note"] == SENTINEL
        # A partial update opens, merges and seals again, atomically under the shard lock.
        results, _ = run(session.write([DocWrite("update", "people", "a", update={"doc": {"n": 5}})], refresh="true"))
        assert results[0].outcome.result == "updated"
        assert run(session.get(GetSpec("people", "a"))).source == {"note": SENTINEL, "tags": ["x", "z"], "n": 5}
        results, _ = run(session.write([DocWrite("update", "people", "a", update={"doc": {"n": 5}})]))
        assert results[0].outcome.result == "noop"
        # Auto ids are chosen before sealing (the id is bound into the ciphertext).
        results, _ = run(session.write([DocWrite("index", "people", None, {"note": "auto"}, b'{"note": "auto"}')]))
        assert run(session.get(GetSpec("people", results[0].doc_id))).source == {"note": "auto"}
        assert all(SENTINEL.encode() not in s for s in stored_sources(dirs[0]))
    finally:
        node.close()
    # The write-ahead log is replayed after a restart with the same key; the documents read back.
    node = open_test_node(dirs, key)
    try:
        got = run(node.gate.system_session("test").get(GetSpec("people", "a")))
        assert got.source["note"] == SENTINEL
    finally:
        node.close()


def test_a_sealed_source_moved_to_another_document_does_not_open(dirs: tuple[Path, Path]) -> None:
    node = open_test_node(dirs, os.urandom(32))
    try:
        session = node.gate.system_session("test")
        load(session)
        index = node.engine.index("people")
        stolen = index.get("a").source
        # Write the ciphertext of "a" as the stored source of "c", below the vault (as a disk attacker could).
        index.write([WriteRequest("index", "c", {"note": "x"}, stolen)])
        with pytest.raises(Exception) as caught:
            run(session.get(GetSpec("people", "c")))
        assert getattr(caught.value, "status", 500) == 500 and SENTINEL not in str(caught.value)
    finally:
        node.close()


def test_the_server_refuses_a_master_key_that_does_not_open_its_indices(dirs: tuple[Path, Path]) -> None:
    node = open_test_node(dirs, os.urandom(32))
    try:
        load(node.gate.system_session("test"))
    finally:
        node.close()
    other = os.urandom(32)
    with pytest.raises(StartupError) as caught:
        open_test_node(dirs, other)
    message = str(caught.value)
    assert message.startswith("sealed:") and "people" in message
    assert base64.b64encode(other).decode() not in message and other.hex() not in message
    bad = {"STRONGROOM_MASTER_KEY": "too-short", "STRONGROOM_BOOTSTRAP_PASSWORD": PASSWORD}
    with pytest.raises(StartupError, match="sealed"):
        open_node(dirs[0], dirs[1], load_settings(dirs[1]), environ=bad)


def test_without_a_configured_key_one_is_generated_outside_the_data_directory(dirs: tuple[Path, Path]) -> None:
    data, config = dirs
    node = open_node(data, config, load_settings(config), environ={"STRONGROOM_BOOTSTRAP_PASSWORD": PASSWORD})
    node.close()
    key_file = config / "master.key"
    assert key_file.exists() and key_file.stat().st_mode & 0o077 == 0
    assert not any(p.name == "master.key" for p in data.rglob("*"))
    node = open_node(data, config, load_settings(config), environ={})  # the same key next time
    node.close()
