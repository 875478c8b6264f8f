"""Data key rotation: new writes use the new version at once, the background re-seal brings every
document to it, a crash midway leaves everything readable, and the master key rewrap moves every
index to a new master key. The stored envelope's version field (bytes 1..4) is read from the engine,
below the vault, as an attacker with the disk would see it."""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import os
import ssl
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from live import LiveServer
from strongroom.crypto.keys import DataKeys, KeyProblem, MasterKey
from strongroom.engine.index import Index
from strongroom.query.search_request import parse_search_request
from strongroom.security.rotation import RewrapError, reseal, rewrap, rewrap_all, sealed_version
from strongroom.security.session import DocWrite, GetSpec, Session
from strongroom.server import StartupError, open_node
from strongroom.settings import load_settings

PASSWORD = "a long enough bootstrap passphrase"
INDEX = "people"
MAPPINGS = {"properties": {"national_id": {"type": "keyword", "protect": "blind"},
                           "notes": {"type": "text", "protect": "encrypt"}, "n": {"type": "long"}}}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def open_test_node(dirs: tuple[Path, Path], key: bytes):  # type: ignore[no-untyped-def]
    data, config = dirs
    env = {"STRONGROOM_MASTER_KEY": base64.b64encode(key).decode(), "STRONGROOM_BOOTSTRAP_PASSWORD": PASSWORD}
    return open_node(data, config, load_settings(config), environ=env)


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "data", tmp_path / "config"


def document(i: int) -> dict[str, Any]:
    return {"national_id": f"31011519900101{i:04d}", "notes": f"case notes {i}", "n": i}


def load(session: Session, count: int) -> None:
    async def go() -> None:
        await session.create_index(INDEX, {"number_of_shards": 2}, MAPPINGS)
        writes = [DocWrite("index", INDEX, f"d{i}", document(i), orjson.dumps(document(i))) for i in range(count)]
        results, _ = await session.write(writes, refresh="true")
        assert all(r.outcome.result == "created" for r in results)
    run(go())


def versions(index: Index, ids: list[str]) -> dict[str, int | None]:
    """Each document's key version, read from what the engine stores (no key involved)."""
    return {doc_id: sealed_version(index.get(doc_id).source) for doc_id in ids}


def assert_readable(session: Session, count: int) -> None:
    for i in range(count):
        assert run(session.get(GetSpec(INDEX, f"d{i}"))).source == document(i)


def wait_done(session: Session, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = run(session.rotate_index_keys(INDEX, mode="status"))
        if not status["running"]:
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.05)


def stored_key_versions(data: Path) -> list[int]:
    """The versions in the wrapped blob of index.json on disk."""
    (meta,) = list((data / "indices").glob("*/index.json"))
    blob = json.loads(base64.b64decode(json.loads(meta.read_bytes())["keys"]))
    return [entry["version"] for entry in blob["versions"]]


def test_rotation_seals_new_writes_with_the_new_version_and_reseals_the_rest(dirs: tuple[Path, Path]) -> None:
    node = open_test_node(dirs, os.urandom(32))
    try:
        session = node.gate.system_session("test")
        load(session, 40)
        index = node.engine.index(INDEX)
        ids = [f"d{i}" for i in range(40)]
        assert set(versions(index, ids).values()) == {1}
        answer = run(session.rotate_index_keys(INDEX))
        assert answer["index"] == INDEX and answer["key_version"] == 2 and answer["reseal"]["task"]
        assert answer["token_keys"] == "unchanged; rotating them means reindexing into a new index"
        assert stored_key_versions(dirs[0]) == [1, 2]  # persisted before anything was sealed with it
        # A new write uses the new version at once, whatever the job is doing.
        run(session.write([DocWrite("index", INDEX, "new", {"n": -1}, b'{"n": -1}')]))
        assert sealed_version(index.get("new").source) == 2
        status = wait_done(session)
        assert status == {"index": INDEX, "key_version": 2, "documents_total": 41, "documents_resealed": 41,
                          "documents_remaining": 0, "running": False, "task": answer["reseal"]["task"],
                          "error": None}
        assert set(versions(index, ids).values()) == {2}
        assert_readable(session, 40)
        # Blind tokens come from version 1 only: a term query on a protected field still finds its document.
        found = run(session.search(INDEX, parse_search_request(
            {"query": {"term": {"national_id": "310115199001010007"}}}, {})))
        assert [h.doc.doc_id for h in found.hits] == ["d7"]
    finally:
        node.close()


def test_a_concurrent_change_is_skipped_not_overwritten(dirs: tuple[Path, Path]) -> None:
    node = open_test_node(dirs, os.urandom(32))
    try:
        session = node.gate.system_session("test")
        load(session, 6)
        vault, index = node.gate._vault, node.engine.index(INDEX)
        assert vault.rotate(index) == 2
        indexable = functools.partial(session._indexable, index)
        changed = {"n": 99}

        def racing(document_: Any, plain: bytes) -> tuple[Any, bytes]:
            if document_["n"] == 3:  # d3 changes after the job's view was taken, before its write
                results, _ = run(session.write([DocWrite("index", INDEX, "d3", changed, orjson.dumps(changed))]))
                assert results[0].outcome.result == "updated"
            return indexable(document_, plain)

        counts = reseal(vault, index, racing)
        assert (counts.resealed, counts.skipped, counts.failed) == (5, 1, 0)
        assert run(session.get(GetSpec(INDEX, "d3"))).source == changed  # the newer write won
        assert set(versions(index, [f"d{i}" for i in range(6)]).values()) == {2}
    finally:
        node.close()


def test_a_crash_midway_leaves_every_document_readable_and_rotating_again_completes(
        dirs: tuple[Path, Path]) -> None:
    key = os.urandom(32)
    node = open_test_node(dirs, key)
    try:
        session = node.gate.system_session("test")
        load(session, 20)
        vault, index = node.gate._vault, node.engine.index(INDEX)
        vault.rotate(index)
        counts = reseal(vault, index, functools.partial(session._indexable, index), limit=10)
        assert counts.resealed == 10
    finally:
        node.close()  # the "crash": half re-sealed, no job left
    node = open_test_node(dirs, key)
    try:
        session = node.gate.system_session("test")
        index = node.engine.index(INDEX)
        ids = [f"d{i}" for i in range(20)]
        assert sorted(versions(index, ids).values()) == [1] * 10 + [2] * 10
        assert_readable(session, 20)
        status = run(session.rotate_index_keys(INDEX, mode="status"))  # counted by scanning, after a restart
        assert (status["key_version"], status["documents_total"], status["documents_resealed"],
                status["documents_remaining"], status["running"], status["task"]) == (2, 20, 10, 10, False, None)
        assert run(session.rotate_index_keys(INDEX, mode="resume"))["key_version"] == 2
        assert wait_done(session)["documents_remaining"] == 0
        assert set(versions(index, ids).values()) == {2}
        assert run(session.rotate_index_keys(INDEX))["key_version"] == 3  # and rotating again completes
        status = wait_done(session)
        assert (status["documents_resealed"], status["documents_remaining"], status["error"]) == (20, 0, None)
        assert set(versions(index, ids).values()) == {3}
        assert_readable(session, 20)
    finally:
        node.close()
    assert stored_key_versions(dirs[0]) == [1, 2, 3]  # never dropped here


def test_rewrap_all_moves_every_index_to_the_new_master_key(dirs: tuple[Path, Path]) -> None:
    old, new = os.urandom(32), os.urandom(32)
    node = open_test_node(dirs, old)
    try:
        session = node.gate.system_session("test")
        load(session, 8)
        run(session.rotate_index_keys(INDEX))
        wait_done(session)
        with pytest.raises(RewrapError, match="in use"):  # never while a server holds the data directory
            rewrap_all(dirs[0], MasterKey(old), MasterKey(new))
    finally:
        node.close()
    with pytest.raises(RewrapError, match="nothing was changed"):  # a wrong old key changes nothing
        rewrap_all(dirs[0], MasterKey(os.urandom(32)), MasterKey(new))
    report = rewrap_all(dirs[0], MasterKey(old), MasterKey(new))
    assert (report.rewrapped, report.already, report.plain) == ([INDEX], [], [])
    assert rewrap_all(dirs[0], MasterKey(old), MasterKey(new)).already == [INDEX]  # a second run finishes nothing
    with pytest.raises(StartupError, match="sealed"):
        open_test_node(dirs, old)
    node = open_test_node(dirs, new)
    try:
        session = node.gate.system_session("test")
        assert_readable(session, 8)
        assert stored_key_versions(dirs[0]) == [1, 2]
        assert set(versions(node.engine.index(INDEX), [f"d{i}" for i in range(8)]).values()) == {2}
    finally:
        node.close()


def test_rewrap_keeps_the_keys_and_changes_the_wrapping() -> None:
    old, new = MasterKey.generate(), MasterKey.generate()
    keys, blob = DataKeys.create(old)
    blob = keys.add_version(old)
    moved = rewrap(old, new, blob)
    again = DataKeys.open(new, moved)
    assert again.versions == (1, 2)
    assert all(again.sealing_key(v) == keys.sealing_key(v) for v in (1, 2))
    assert again.token_key("national_id", "value") == keys.token_key("national_id", "value")
    with pytest.raises(KeyProblem):
        DataKeys.open(old, moved)
    with pytest.raises(KeyProblem):
        rewrap(new, old, blob)


# -- over HTTP, on the shared live server -------------------------------------------------------
KEYADMIN_PASSWORD = "key admin passphrase that is long enough"
NOBODY_PASSWORD = "nobody passphrase that is long enough"


def _http(server: LiveServer, user: str, password: str) -> httpx.Client:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return httpx.Client(base_url=server.url, verify=ssl.create_default_context(cafile=server.ca), timeout=30,
                        headers={"Authorization": f"Basic {token}"})


def test_the_rotate_endpoint_needs_manage_security_and_reports_progress(server: LiveServer) -> None:
    name = "t-rotation-http"
    with _http(server, "admin", server.password) as admin:
        for role, body in (("rotation_nobody", {}), ("rotation_keys", {"cluster": ["manage_security"]})):
            assert admin.put(f"/_security/role/{role}", json=body).status_code == 200
        for user, password, role in (("rotation-nobody", NOBODY_PASSWORD, "rotation_nobody"),
                                     ("rotation-keys", KEYADMIN_PASSWORD, "rotation_keys")):
            assert admin.put(f"/_security/user/{user}", json={"password": password, "roles": [role]}
                             ).status_code == 200
        admin.delete(f"/{name}")
        assert admin.put(f"/{name}", json={"mappings": MAPPINGS}).status_code == 200
        lines = b"".join(b'{"index": {"_id": "d%d"}}\n' % i + orjson.dumps(document(i)) + b"\n" for i in range(12))
        assert admin.post(f"/{name}/_bulk?refresh=true", content=lines,
                          headers={"Content-Type": "application/x-ndjson"}).json()["errors"] is False
    path = f"/_strongroom/keys/{name}/_rotate"
    with _http(server, "rotation-nobody", NOBODY_PASSWORD) as nobody:
        for method in ("POST", "GET"):
            refused = nobody.request(method, path)
            assert (refused.status_code, refused.json()["error"]["type"]) == (403, "security_exception")
            # Refused before the index is looked up: an unknown index answers the same.
            assert nobody.request(method, "/_strongroom/keys/no-such-index/_rotate").status_code == 403
    with _http(server, "rotation-keys", KEYADMIN_PASSWORD) as keys:  # no index privilege needed
        answer = keys.post(path)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["index"], body["key_version"]) == (name, 2) and body["reseal"]["task"]
        assert body["token_keys"].startswith("unchanged")
        deadline = time.monotonic() + 30
        while (status := keys.get(path).json())["running"]:
            assert time.monotonic() < deadline, status
            time.sleep(0.05)
        assert {k: status[k] for k in ("key_version", "documents_total", "documents_resealed",
                                       "documents_remaining", "running")} == \
            {"key_version": 2, "documents_total": 12, "documents_resealed": 12, "documents_remaining": 0,
             "running": False}
        assert keys.post(path + "?reseal_only=true").json()["key_version"] == 2
        assert keys.get("/_strongroom/keys/no-such-index/_rotate").status_code == 404
    with _http(server, "admin", server.password) as admin:
        assert admin.get(f"/{name}/_doc/d5").json()["_source"] == document(5)
        admin.delete(f"/{name}")


def test_the_rewrap_command_moves_every_index_to_a_new_master_key(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from strongroom.cli import main
    from strongroom.crypto.keys import MasterKey
    from strongroom.server import StartupError, open_node
    from strongroom.settings import load_settings

    data, config = tmp_path / "data", tmp_path / "config"
    env = {"STRONGROOM_BOOTSTRAP_PASSWORD": "a long enough bootstrap passphrase"}
    node = open_node(data, config, load_settings(config), environ=env)
    try:
        session = node.gate.system_session("t")
        asyncio.run(session.create_index("kept", {}, {"properties": {"id": {"type": "keyword", "protect": "blind"}}}))
        doc = {"id": "110101199003071233"}
        asyncio.run(session.write([DocWrite("index", "kept", "1", doc, orjson.dumps(doc))], refresh="true"))
    finally:
        node.close()
    new_key = tmp_path / "new.key"
    new_key.write_text(MasterKey.generate().key_file_text())
    new_key.chmod(0o600)
    result = CliRunner().invoke(main, ["keys", "rewrap", "--data-dir", str(data), "--config-dir", str(config),
                                       "--new-key-file", str(new_key)], env={"STRONGROOM_MASTER_KEY": ""})
    assert result.exit_code == 0, result.output
    assert "Rewrapped: kept" in result.output
    with pytest.raises(StartupError, match="sealed"):  # the old key no longer opens the index
        open_node(data, config, load_settings(config), environ={})
    (config / "master.key").write_bytes(new_key.read_bytes())
    node = open_node(data, config, load_settings(config), environ={})
    try:
        got = asyncio.run(node.gate.system_session("t").get(GetSpec("kept", "1")))
        assert got.source == doc
    finally:
        node.close()
