"""Ingest worker processes (security/ingest.py): a large batch derived and sealed in parallel writes
exactly what the request alone would, survives a dead worker, and leaves no worker behind a killed
server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from argon2 import PasswordHasher

from live import start_server
from strongroom.crypto.keys import MasterKey
from strongroom.demo import RESIDENTS_BODY, generate_residents
from strongroom.engine.node import Engine
from strongroom.errors import StrongroomError
from strongroom.security.gate import Gate
from strongroom.security.ingest import MIN_PARALLEL, IngestPool
from strongroom.query.search_request import parse_search_request
from strongroom.security.session import DocWrite, GetSpec, Session
from strongroom.security.users import SecurityStore
from strongroom.security.vault import Vault
from strongroom.settings import SETTINGS

RESIDENTS = [doc for _id, doc in generate_residents(1200, seed=91)]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def make_session(root: Path, pool: IngestPool | None, pii_detection: str = "reject", dynamic: str = "strict"
                 ) -> tuple[Session, Engine]:
    engine = Engine(root / "data")
    store = SecurityStore(root / "data", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    store.bootstrap("a long enough bootstrap passphrase")
    session = Gate(engine, store, vault=Vault(MasterKey.generate(), ingest=pool)).system_session("test")
    run(session.create_index("r", {"number_of_shards": 2, "pii_detection": pii_detection},
                             {**RESIDENTS_BODY["mappings"], "dynamic": dynamic}))
    return session, engine


@pytest.fixture()
def pool() -> Iterator[IngestPool]:
    workers = IngestPool(1)
    yield workers
    workers.close()


def batch() -> list[DocWrite]:
    """A large batch with everything a bulk can hold between its documents: explicit and generated ids,
    a document a protected field refuses, an update and a delete of earlier documents."""
    writes = []
    for n, doc in enumerate(RESIDENTS[:700]):
        doc_id = f"p{n}" if n % 3 else None
        if n == 301:
            doc = {**doc, "birth_date": "the day after tomorrow"}  # a blind date that is no date
        writes.append(DocWrite("create" if n % 5 == 0 else "index", "r", doc_id, doc, orjson.dumps(doc)))
        if n == 400:
            writes.append(DocWrite("update", "r", "p1", update={"doc": {"gender": "女"}}))
        if n == 520:
            writes.append(DocWrite("delete", "r", "p2"))
    return writes


def outcome(result: Any) -> Any:
    if isinstance(result.outcome, StrongroomError):
        return type(result.outcome).__name__
    return (result.op, result.outcome.result if hasattr(result.outcome, "result") else None)


def search(session: Session, query: dict[str, Any], size: int = 5) -> list[Any]:
    return run(session.search("r", parse_search_request({"query": query, "size": size}, {}))).hits


def found(session: Session, field: str, value: str) -> list[str]:
    return [hit.doc.doc_id for hit in search(session, {"term": {field: value}})]


def source(session: Session, doc_id: str) -> Any:
    return run(session.get(GetSpec("r", doc_id))).source


def test_workers_write_what_the_request_alone_writes(tmp_path: Path, pool: IngestPool) -> None:
    alone, alone_engine = make_session(tmp_path / "alone", None)
    parallel, parallel_engine = make_session(tmp_path / "parallel", pool)
    try:
        writes = batch()
        expected, _ = run(alone.write(writes, refresh="true"))
        got, _ = run(parallel.write(writes, refresh="true"))
        assert pool.derived == 699  # the workers did the work, all but the refused document
        assert [outcome(r) for r in got] == [outcome(r) for r in expected]
        assert outcome(got[301]) == "MapperParsingError"  # the refused document fails its item only
        generated = [r.doc_id for r in got if r.doc_id and not r.doc_id.startswith("p")]
        assert len(generated) == len(set(generated)) == 234
        for session in (alone, parallel):
            assert run(session.count("r", None))[0] == 700 - 2  # one refused, one deleted
            for n in (0, 5, 250, 699):  # found through the blind tokens, and opened from the sealed source
                ids = found(session, "national_id", RESIDENTS[n]["national_id"])
                assert len(ids) == 1 and source(session, ids[0]) == RESIDENTS[n]
            assert found(session, "phone", RESIDENTS[301]["phone"]) == []
            name = RESIDENTS[600]["name"]
            named = {source(session, h.doc.doc_id)["name"] for h in search(session, {"match_phrase": {"name": name}}, 700)}
            assert name in named
            assert source(session, "p1")["gender"] == "女"
    finally:
        alone_engine.close()
        parallel_engine.close()


def unparsed_batch() -> list[DocWrite]:
    """A bulk's writes as the api hands them over (sources not yet parsed), with everything a source
    line can get wrong, and personal data in a field that is not protected."""
    writes = []
    for n, doc in enumerate(RESIDENTS[:400]):
        raw = orjson.dumps(doc)
        if n == 10:
            raw = raw[:-1]  # cut short
        elif n == 20:
            raw = b'{"gender": "\xe5\xa5\xb3", "gender": "\xe7\x94\xb7", ' + raw[1:]  # a duplicate key
        elif n == 30:
            raw = b"[1, 2]"  # not an object
        elif n in (3, 250):  # a new, unmapped field: a plain value first, a mobile number later
            raw = orjson.dumps({**doc, "contact": "ask at the front desk" if n == 3 else "13812345678"})
        writes.append(DocWrite("index", "r", f"u{n}", None, raw, parsed=False))
    return writes


@pytest.mark.parametrize("mode", ["reject", "warn", "protect"])
def test_workers_parse_and_screen_what_the_request_would(tmp_path: Path, pool: IngestPool, mode: str,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    alone, alone_engine = make_session(tmp_path / "alone", None, mode, dynamic="true")
    parallel, parallel_engine = make_session(tmp_path / "parallel", pool, mode, dynamic="true")
    try:
        expected, _ = run(alone.write(unparsed_batch(), refresh="true"))
        caplog.clear()
        got, _ = run(parallel.write(unparsed_batch(), refresh="true"))
        assert [outcome(r) for r in got] == [outcome(r) for r in expected]
        assert [str(r.outcome) for r in got if isinstance(r.outcome, StrongroomError)] == \
            [str(r.outcome) for r in expected if isinstance(r.outcome, StrongroomError)]
        bad = {10, 20, 30} | ({250} if mode == "reject" else set())
        assert {n for n, r in enumerate(got) if isinstance(r.outcome, StrongroomError)} == bad
        assert "Duplicate field 'gender'" in str(got[20].outcome)
        assert pool.derived == 400 - 3  # all but those that do not parse (the workers screened the rest)
        if mode == "protect":  # the whole batch screened first: the workers derive it with the new mapping
            assert parallel_engine.index("r").mapping.fields["contact"].protect == "blind"
        else:
            assert parallel_engine.index("r").mapping.fields["contact"].protect == "none"
        warned = [r.getMessage() for r in caplog.records if "[contact]" in r.getMessage()]
        assert len(warned) == (1 if mode == "warn" else 0)
        assert "13812345678" not in caplog.text
        for session in (alone, parallel):
            assert run(session.count("r", None))[0] == 400 - len(bad)
            assert source(session, "u5") == RESIDENTS[5]
            assert len(found(session, "national_id", RESIDENTS[300]["national_id"])) == 1
    finally:
        alone_engine.close()
        parallel_engine.close()


def test_small_batches_stay_in_the_request(tmp_path: Path, pool: IngestPool) -> None:
    session, engine = make_session(tmp_path, pool)
    try:
        writes = [DocWrite("index", "r", f"s{n}", d, orjson.dumps(d)) for n, d in enumerate(RESIDENTS[:MIN_PARALLEL - 1])]
        results, _ = run(session.write(writes))
        assert all(not isinstance(r.outcome, StrongroomError) for r in results)
        assert pool.derived == 0 and pool.pids() == []  # no worker was even started
    finally:
        engine.close()


def test_a_dead_worker_loses_nothing(tmp_path: Path, pool: IngestPool) -> None:
    session, engine = make_session(tmp_path, pool)
    try:
        def load(docs: list[dict[str, Any]], prefix: str) -> None:
            results, _ = run(session.write([DocWrite("index", "r", f"{prefix}{n}", d, orjson.dumps(d))
                                            for n, d in enumerate(docs)], refresh="true"))
            assert all(not isinstance(r.outcome, StrongroomError) for r in results)

        load(RESIDENTS[:300], "a")
        first = pool.pids()
        assert first and pool.derived == 300
        for pid in first:
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
        load(RESIDENTS[300:600], "b")  # derived in the request: the pool is broken
        load(RESIDENTS[600:900], "c")  # a fresh pool
        assert pool.pids() and not set(pool.pids()) & set(first)
        assert run(session.count("r", None))[0] == 900
        for n in (1, 350, 899):
            assert len(found(session, "national_id", RESIDENTS[n]["national_id"])) == 1
    finally:
        engine.close()


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_workers_leave_with_a_killed_server_and_acknowledged_writes_stay(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", tmp_path / "config")
    try:
        es = server.client()
        es.indices.create(index="r", **RESIDENTS_BODY)
        docs = RESIDENTS[:400]
        operations: list[Any] = []
        for n, doc in enumerate(docs):
            operations += [{"index": {"_index": "r", "_id": f"k{n}"}}, doc]
        answer = es.bulk(operations=operations)
        assert not answer["errors"]
        workers = _children(server.process.pid)
        assert workers, "a bulk of 400 protected documents starts an ingest worker"
        server.kill()
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in workers):
            assert time.monotonic() < deadline, "ingest workers outlived the killed server"
            time.sleep(0.1)
    finally:
        server.stop()
    server = start_server(tmp_path / "data", tmp_path / "config")
    try:
        es = server.client()
        es.indices.refresh(index="r")
        assert es.count(index="r")["count"] == 400
        hits = es.search(index="r", query={"term": {"phone": docs[123]["phone"]}})["hits"]["hits"]
        assert [h["_id"] for h in hits] == ["k123"] and hits[0]["_source"] == docs[123]
    finally:
        server.stop()


def test_the_setting() -> None:
    setting = next(s for s in SETTINGS if s.name == "ingest.workers")
    assert setting.default == "auto"
    assert setting.parse("auto") == "auto" and setting.parse("0") == 0 and setting.parse(3) == 3
    for bad in ("-1", "many", True, "65"):
        with pytest.raises(ValueError):
            setting.parse(bad)


def test_no_import_side_effect_in_the_main_module() -> None:
    """A spawned worker imports its parent's main module: `python -m strongroom` must not start again."""
    done = subprocess.run([sys.executable, "-c", "import strongroom.__main__"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and done.stdout == "" and done.stderr == ""
