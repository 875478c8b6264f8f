"""Snapshots through the real `elasticsearch` client: fs repositories under `path.repo`, create (incremental),
list, status, delete, restore (also renamed, and on a new node holding the master key), the refusals that
keep a repository away from the data and the keys, privileges, and failures midway that leave nothing
half-made. What a stolen repository shows is test_steal.py's."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import ApiError, BadRequestError, Elasticsearch, NotFoundError

from live import LiveServer, start_server
from strongroom.engine.node import Engine
from strongroom.engine.snapshots import CATALOG, FsRepository, SnapshotService

MASTER = base64.b64encode(os.urandom(32)).decode()
INDEX = "people"
MAPPINGS = {"properties": {"national_id": {"type": "keyword", "protect": "blind"},
                           "name": {"type": "text", "protect": "blind"},
                           "notes": {"type": "text", "protect": "encrypt"},
                           "district": {"type": "keyword"}, "n": {"type": "long"}}}


def person(i: int) -> dict[str, Any]:
    return {"national_id": f"110105198001{i:06d}", "name": f"王{'小明红'[i % 3]}{i}", "notes": f"案件 {i}",
            "district": f"d{i % 4}", "n": i}


def write_config(config: Path, root: Path) -> None:
    config.mkdir(parents=True, exist_ok=True, mode=0o700)
    (config / "strongroom.toml").write_text(f'[path]\nrepo = ["{root}"]\n')


def node(root: Path, name: str, *, master: str = MASTER) -> LiveServer:
    write_config(root / name / "config", root / "repos")
    return start_server(root / name / "data", root / name / "config", env={"STRONGROOM_MASTER_KEY": master})


def load(es: Elasticsearch, index: str, numbers: range) -> None:
    lines: list[Any] = []
    for i in numbers:
        lines += [{"index": {"_index": index, "_id": f"p{i}"}}, person(i)]
    assert not es.bulk(operations=lines, refresh=True)["errors"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, LiveServer]]:
    root = tmp_path_factory.mktemp("snap")
    server = node(root, "a")
    with server.client() as es:
        es.indices.create(index=INDEX, settings={"number_of_shards": 2}, mappings=MAPPINGS)
        load(es, INDEX, range(300))
    yield root, server
    server.stop()


@pytest.fixture
def es(cluster: tuple[Path, LiveServer]) -> Iterator[Elasticsearch]:
    with cluster[1].client() as client:
        yield client


def put_repo(es: Elasticsearch, name: str, location: Path | str, *, kind: str = "fs", **settings: Any) -> None:
    es.snapshot.create_repository(name=name, repository={"type": kind,
                                                         "settings": {"location": str(location), **settings}})


def repo(es: Elasticsearch, root: Path, name: str, **settings: Any) -> Path:
    location = root / "repos" / name
    put_repo(es, name, location, **settings)
    return location


def blobs(location: Path) -> set[str]:
    return {p.name for p in (location / "blobs").rglob("*") if p.is_file()}


def test_snapshot_restore_cycle(cluster: tuple[Path, LiveServer], es: Elasticsearch) -> None:
    root, _server = cluster
    location = repo(es, root, "cycle")
    assert es.snapshot.get_repository(name="cycle")["cycle"] == {"type": "fs",
                                                                 "settings": {"location": str(location)}}
    first = es.snapshot.create(repository="cycle", snapshot="one", indices=INDEX, wait_for_completion=True)["snapshot"]
    assert first["state"] == "SUCCESS" and first["indices"] == [INDEX]
    assert first["shards"] == {"total": 2, "failed": 0, "successful": 2}
    assert first["start_time"].endswith("Z") and first["end_time_in_millis"] >= first["start_time_in_millis"]
    after_first = blobs(location)

    # Incremental: the second snapshot stores only what changed (new segments and the small metadata files).
    load(es, INDEX, range(300, 330))
    es.snapshot.create(repository="cycle", snapshot="two", wait_for_completion=True)
    status = es.snapshot.status(repository="cycle", snapshot="two")["snapshots"][0]
    assert status["state"] == "SUCCESS"
    assert 0 < status["stats"]["incremental"]["size_in_bytes"] < status["stats"]["total"]["size_in_bytes"] / 2
    listed = es.snapshot.get(repository="cycle", snapshot="_all")
    assert [s["snapshot"] for s in listed["snapshots"]] == ["one", "two"] and listed["total"] == 2

    expected = {hit["_id"]: hit["_source"] for hit in
                es.search(index=INDEX, size=1000, query={"match_all": {}})["hits"]["hits"]}
    es.indices.delete(index=INDEX)
    restored = es.snapshot.restore(repository="cycle", snapshot="two", wait_for_completion=True)["snapshot"]
    assert restored == {"snapshot": "two", "indices": [INDEX], "shards": {"total": 2, "failed": 0, "successful": 2}}
    got = {hit["_id"]: hit["_source"] for hit in
           es.search(index=INDEX, size=1000, query={"match_all": {}})["hits"]["hits"]}
    assert got == expected and len(got) == 330
    assert es.count(index=INDEX, query={"term": {"national_id": person(17)["national_id"]}})["count"] == 1
    assert es.count(index=INDEX, query={"match_phrase": {"name": person(301)["name"]}})["count"] == 1
    assert es.get(index=INDEX, id="p5")["_source"] == person(5)
    load(es, INDEX, range(330, 331))  # the restored index takes writes
    assert es.count(index=INDEX)["count"] == 331

    # Restoring over an existing index is refused; renamed, the copy sits beside it.
    with pytest.raises(BadRequestError) as refused:
        es.snapshot.restore(repository="cycle", snapshot="one", wait_for_completion=True)
    assert refused.value.error == "snapshot_restore_exception" and "already exists" in str(refused.value)
    es.snapshot.restore(repository="cycle", snapshot="one", rename_pattern="(.+)", rename_replacement="restored-$1",
                        wait_for_completion=True)
    assert es.count(index="restored-people")["count"] == 300
    assert es.get(index="restored-people", id="p7")["_source"] == person(7)
    assert es.indices.get(index="restored-people")["restored-people"]["settings"]["index"]["uuid"] != \
        es.indices.get(index=INDEX)[INDEX]["settings"]["index"]["uuid"]

    # Deleting a snapshot frees what only it used; the other stays whole and restorable.
    es.snapshot.delete(repository="cycle", snapshot="one")
    catalog = json.loads((location / CATALOG).read_text())["snapshots"]
    manifest = json.loads((location / "snapshots" / f"{catalog[0]['uuid']}.json").read_text())
    used = {f["blob"] for index in manifest["indices"].values() for shard in index["shards"].values()
            for f in shard["files"].values()}
    assert blobs(location) == used and after_first - used  # what only "one" used is gone
    assert [s["snapshot"] for s in es.snapshot.get(repository="cycle", snapshot="*")["snapshots"]] == ["two"]
    es.snapshot.restore(repository="cycle", snapshot="two", rename_pattern="people", rename_replacement="again",
                        wait_for_completion=True)
    assert es.count(index="again")["count"] == 330
    es.snapshot.delete(repository="cycle", snapshot="two")
    assert blobs(location) == set()
    assert json.loads((location / CATALOG).read_text())["snapshots"] == []
    es.indices.delete(index="restored-people,again")


def test_background_snapshot_and_restore(cluster: tuple[Path, LiveServer], es: Elasticsearch) -> None:
    root, _server = cluster
    repo(es, root, "later")
    assert es.snapshot.create(repository="later", snapshot="bg", indices=[INDEX]).body == {"accepted": True}
    deadline = time.monotonic() + 30
    while es.snapshot.get(repository="later", snapshot="bg")["snapshots"][0]["state"] != "SUCCESS":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    answer = es.snapshot.restore(repository="later", snapshot="bg", rename_pattern="people", rename_replacement="bg")
    assert answer.body == {"accepted": True}
    while not es.indices.exists(index="bg"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert es.count(index="bg")["count"] == es.count(index=INDEX)["count"]
    es.indices.delete(index="bg")


def test_snapshot_while_writing_is_consistent(cluster: tuple[Path, LiveServer], es: Elasticsearch) -> None:
    """Writes continue during the snapshot; the restored copy is a prefix of them, every source opens."""
    import threading

    root, server = cluster
    repo(es, root, "busy")
    es.indices.create(index="busy", settings={"number_of_shards": 3, "refresh_interval": "50ms"}, mappings=MAPPINGS)
    stop = threading.Event()

    def writer() -> None:
        with server.client() as client:
            i = 0
            while not stop.is_set():
                load(client, "busy", range(i, i + 50))
                i += 50

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(0.5)
        for n in range(3):
            es.snapshot.create(repository="busy", snapshot=f"s{n}", indices="busy", wait_for_completion=True)
    finally:
        stop.set()
        thread.join()
    for n in range(3):
        es.snapshot.restore(repository="busy", snapshot=f"s{n}", rename_pattern="busy", rename_replacement=f"busy{n}",
                            wait_for_completion=True)
        hits = es.search(index=f"busy{n}", size=10_000, query={"match_all": {}})["hits"]["hits"]
        assert hits and all(hit["_source"] == person(int(hit["_id"][1:])) for hit in hits)
    es.indices.delete(index="busy,busy0,busy1,busy2")


def test_repository_refusals(cluster: tuple[Path, LiveServer], es: Elasticsearch) -> None:
    root, server = cluster

    def refused(location: str, kind: str = "fs") -> str:
        with pytest.raises(BadRequestError) as caught:
            put_repo(es, "bad", location, kind=kind)
        assert caught.value.error == "repository_exception"
        return str(caught.value)

    assert "path.repo" in refused(str(root / "elsewhere"))
    assert "path.repo" in refused(str(root / "repos" / ".." / "escape"))
    assert "does not exist" in refused(str(root / "repos" / "x"), kind="s3")
    # A repository inside the data or config directory would carry the data along with the keys.
    write_config(root / "c2" / "config", root)
    inner = start_server(root / "c2" / "data", root / "c2" / "config", env={"STRONGROOM_MASTER_KEY": MASTER})
    try:
        with inner.client() as client:
            for inside in (root / "c2" / "data" / "snap", root / "c2" / "config" / "snap", root):
                with pytest.raises(BadRequestError, match="overlaps the node's data or config directory"):
                    put_repo(client, "bad", inside)
    finally:
        inner.stop()
    with pytest.raises(NotFoundError) as missing:
        es.snapshot.get_repository(name="nope")
    assert missing.value.error == "repository_missing_exception"
    with pytest.raises(BadRequestError):
        put_repo(es, "_bad", root / "repos" / "u")
    with pytest.raises(BadRequestError):
        es.perform_request("PUT", "/_snapshot/bad", headers={"content-type": "application/json"},
                           body={"type": "fs", "settings": {"location": str(root / "repos" / "b")}, "extra": 1})


def test_snapshot_refusals(cluster: tuple[Path, LiveServer], es: Elasticsearch) -> None:
    root, _server = cluster
    repo(es, root, "names")
    for bad in ("UPPER", "_under", "with space", "a,b", "a#b", "x" * 256):
        with pytest.raises(BadRequestError) as caught:
            es.snapshot.create(repository="names", snapshot=bad, wait_for_completion=True)
        assert caught.value.error == "invalid_snapshot_name_exception", bad
    es.snapshot.create(repository="names", snapshot="taken", indices=INDEX, wait_for_completion=True)
    with pytest.raises(BadRequestError, match="already exists"):
        es.snapshot.create(repository="names", snapshot="taken", indices=INDEX, wait_for_completion=True)
    with pytest.raises(NotFoundError) as missing:
        es.snapshot.get(repository="names", snapshot="absent")
    assert missing.value.error == "snapshot_missing_exception"
    assert es.snapshot.get(repository="names", snapshot="absent", ignore_unavailable=True)["snapshots"] == []
    with pytest.raises(NotFoundError):
        es.snapshot.create(repository="nowhere", snapshot="x", wait_for_completion=True)
    with pytest.raises(NotFoundError) as no_index:
        es.snapshot.create(repository="names", snapshot="x", indices="no-such-index", wait_for_completion=True)
    assert no_index.value.error == "index_not_found_exception"
    with pytest.raises(BadRequestError, match="unknown key"):
        es.snapshot.restore(repository="names", snapshot="taken", body={"indices": INDEX, "bogus": 1})
    with pytest.raises(BadRequestError, match="not in the snapshot"):
        es.snapshot.restore(repository="names", snapshot="taken", indices="other", rename_pattern="(.+)",
                            rename_replacement="x$1", wait_for_completion=True)
    with pytest.raises(BadRequestError, match="rename_replacement"):
        es.snapshot.restore(repository="names", snapshot="taken", rename_pattern="(.+)",
                            rename_replacement="x$2", wait_for_completion=True)
    with pytest.raises(NotFoundError):
        es.snapshot.delete(repository="names", snapshot="absent")
    put_repo(es, "ro", root / "repos" / "names", readonly=True)
    assert [s["snapshot"] for s in es.snapshot.get(repository="ro", snapshot="_all")["snapshots"]] == ["taken"]
    with pytest.raises(BadRequestError, match="readonly"):
        es.snapshot.create(repository="ro", snapshot="y", wait_for_completion=True)
    with pytest.raises(BadRequestError, match="readonly"):
        es.snapshot.delete(repository="ro", snapshot="taken")
    es.snapshot.delete_repository(name="ro")
    with pytest.raises(NotFoundError):
        es.snapshot.get(repository="ro", snapshot="_all")


def test_privileges(cluster: tuple[Path, LiveServer], es: Elasticsearch) -> None:
    root, server = cluster
    repo(es, root, "priv")
    es.snapshot.create(repository="priv", snapshot="base", indices=INDEX, wait_for_completion=True)
    password = "a-long-snapshot-operator-passphrase"
    es.security.put_role(name="snap_watch", cluster=["monitor_snapshot"])
    es.security.put_role(name="snap_take", cluster=["create_snapshot"])
    es.security.put_role(name="snap_restore", cluster=["manage"], indices=[{"names": ["copy-*"],
                                                                              "privileges": ["create_index", "read"]}])
    for user in ("watch", "take", "restore"):
        es.security.put_user(username=user, password=password, roles=[f"snap_{user}"])

    def as_user(user: str) -> Elasticsearch:
        return Elasticsearch(server.url, ca_certs=str(server.ca), basic_auth=(user, password), request_timeout=60)

    with as_user("watch") as watch, as_user("take") as take, as_user("restore") as restore:
        assert watch.snapshot.get(repository="priv", snapshot="_all")["total"] == 1
        for attempt in (lambda c: c.snapshot.create(repository="priv", snapshot="w", wait_for_completion=True),
                        lambda c: c.snapshot.restore(repository="priv", snapshot="base", rename_pattern="(.+)",
                                                     rename_replacement="copy-$1", wait_for_completion=True),
                        lambda c: c.snapshot.delete(repository="priv", snapshot="base"),
                        lambda c: put_repo(c, "x", root / "repos" / "x")):
            with pytest.raises(ApiError) as denied:
                attempt(watch)
            assert denied.value.status_code == 403
        take.snapshot.create(repository="priv", snapshot="t", wait_for_completion=True)
        with pytest.raises(ApiError) as denied:
            take.snapshot.restore(repository="priv", snapshot="t", rename_pattern="(.+)", rename_replacement="copy-$1",
                                  wait_for_completion=True)
        assert denied.value.status_code == 403
        # `manage` restores, but only under names it may create.
        with pytest.raises(ApiError) as denied:
            restore.snapshot.restore(repository="priv", snapshot="base", rename_pattern="(.+)",
                                     rename_replacement="other-$1", wait_for_completion=True)
        assert denied.value.status_code == 403 and not es.indices.exists(index="other-people")
        restore.snapshot.restore(repository="priv", snapshot="base", rename_pattern="(.+)",
                                 rename_replacement="copy-$1", wait_for_completion=True)
        assert restore.count(index="copy-people")["count"] > 0
    es.indices.delete(index="copy-people")


def test_restore_needs_the_master_key(cluster: tuple[Path, LiveServer], es: Elasticsearch) -> None:
    """The data directory is lost: a new node with the master key gets everything back from the repository;
    a node with another master key gets nothing (and creates nothing)."""
    root, _server = cluster
    repo(es, root, "dr")
    es.snapshot.create(repository="dr", snapshot="full", indices=INDEX, wait_for_completion=True)
    count = es.count(index=INDEX)["count"]
    stranger = node(root, "stranger", master=base64.b64encode(os.urandom(32)).decode())
    try:
        with stranger.client() as client:
            put_repo(client, "dr", root / "repos" / "dr", readonly=True)
            with pytest.raises(BadRequestError) as refused:
                client.snapshot.restore(repository="dr", snapshot="full", wait_for_completion=True)
            assert "master key" in str(refused.value) and not client.indices.exists(index=INDEX)
    finally:
        stranger.stop()
    assert MASTER not in stranger.log_text()
    heir = node(root, "heir")
    try:
        with heir.client() as client:
            put_repo(client, "dr", root / "repos" / "dr")
            client.snapshot.restore(repository="dr", snapshot="full", wait_for_completion=True)
            assert client.count(index=INDEX)["count"] == count
            assert client.get(index=INDEX, id="p9")["_source"] == person(9)
            assert client.count(index=INDEX, query={"term": {"national_id": person(9)["national_id"]}})["count"] == 1
    finally:
        heir.stop()
    # Restored indices survive a restart of the node that restored them.
    again = start_server(root / "heir" / "data", root / "heir" / "config", env={"STRONGROOM_MASTER_KEY": MASTER})
    try:
        with again.client() as client:
            assert client.get(index=INDEX, id="p9")["_source"] == person(9)
    finally:
        again.stop()


# -- failures midway, in process ------------------------------------------------------------------

class Boom(Exception):
    pass


def test_an_interrupted_snapshot_or_restore_leaves_nothing_half_made(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Engine(tmp_path / "data")
    try:
        index = engine.create_index("docs", {"number_of_shards": 2}, None, keys=b"opaque wrapped keys")
        from strongroom.engine.index import WriteRequest
        index.write([WriteRequest("index", f"d{i}", document={"n": i}, source=json.dumps({"n": i}).encode()) for i in range(50)])
        service = SnapshotService(engine, roots=[tmp_path / "repos"])
        service.put_repository("r", {"type": "fs", "settings": {"location": str(tmp_path / "repos" / "r")}})
        service.begin("r", "good", ["docs"])()
        kept = blobs(tmp_path / "repos" / "r")

        calls = {"n": 0}
        real_store = FsRepository.store_blob

        def failing_store(self: FsRepository, source: Path) -> tuple[str, int]:
            calls["n"] += 1
            if calls["n"] == 3:
                raise Boom()
            return real_store(self, source)

        index.write([WriteRequest("index", f"e{i}", document={"n": i}, source=json.dumps({"n": i}).encode()) for i in range(50)])
        monkeypatch.setattr(FsRepository, "store_blob", failing_store)
        with pytest.raises(Boom):
            service.begin("r", "broken", ["docs"])()
        monkeypatch.undo()
        assert [s["snapshot"] for s in service.snapshots("r", ["_all"])] == ["good"]
        assert not (tmp_path / "data" / "snapshot-staging").exists() or \
            not any((tmp_path / "data" / "snapshot-staging").iterdir())
        service.cleanup("r")
        assert blobs(tmp_path / "repos" / "r") == kept  # the orphans of the broken one are gone

        def failing_fetch(self: FsRepository, digest: str, size: int, dest: Path) -> None:
            raise Boom()

        plan = service.plan_restore("r", "good", {"rename_pattern": "docs", "rename_replacement": "copy"})
        monkeypatch.setattr(FsRepository, "fetch_blob", failing_fetch)
        with pytest.raises(Boom):
            service.restore(plan)
        monkeypatch.undo()
        assert not engine.exists("copy")
        assert [p.name for p in (tmp_path / "data" / "indices").iterdir() if p.name.startswith(".")] == []
        assert service.restore(plan) == ["copy"]
        assert engine.index("copy").stats()["docs"] == 50
    finally:
        engine.close()


def test_a_corrupted_blob_is_refused(tmp_path: Path) -> None:
    engine = Engine(tmp_path / "data")
    try:
        index = engine.create_index("docs", None, None, keys=b"opaque wrapped keys")
        from strongroom.engine.index import WriteRequest
        index.write([WriteRequest("index", f"d{i}", document={"n": i}, source=json.dumps({"n": i}).encode()) for i in range(20)])
        service = SnapshotService(engine, roots=[tmp_path / "repos"])
        service.put_repository("r", {"type": "fs", "settings": {"location": str(tmp_path / "repos" / "r")}})
        service.begin("r", "s", ["docs"])()
        victim = max((p for p in (tmp_path / "repos" / "r" / "blobs").rglob("*") if p.is_file()),
                     key=lambda p: p.stat().st_size)
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0xFF
        victim.write_bytes(bytes(data))
        plan = service.plan_restore("r", "s", {"rename_pattern": "docs", "rename_replacement": "copy"})
        with pytest.raises(Exception, match="corrupted"):
            service.restore(plan)
        assert not engine.exists("copy")
    finally:
        engine.close()
