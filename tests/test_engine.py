"""Engine-level properties that the HTTP tests cannot see directly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from strongroom.engine.index import Index, WriteRequest
from strongroom.engine.node import Engine
from strongroom.engine.shard import Conditions
from strongroom.query.dsl import parse_query


@pytest.fixture
def engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = Engine(tmp_path / "data", writer_heap_bytes=20_000_000)
    yield engine
    engine.close()


def put(index: Index, doc_id: str | None, doc: dict[str, Any], **kwargs: Any) -> Any:
    (outcome,) = index.write([WriteRequest("index", doc_id, doc, orjson.dumps(doc), **kwargs)])
    return outcome.result


def count(index: Index, query: dict[str, Any] | None = None) -> int:
    return index.count(parse_query(query or {"match_all": {}}))


def test_acknowledgement_comes_after_the_fsync_that_covers_it(engine: Engine) -> None:
    index, _ = engine.get_or_create("acks")
    shard = index.shards[0]
    log = shard._log
    synced_when_returned = []
    for i in range(20):
        result = put(index, f"d{i}", {"n": i})
        synced_when_returned.append((result.seq_no, log.synced_seq))
    assert all(synced >= seq for seq, synced in synced_when_returned)


def test_schema_grows_and_segments_still_merge(engine: Engine) -> None:
    index, _ = engine.get_or_create("grow")
    for round_ in range(40):
        put(index, f"r{round_}", {f"text{round_}": f"word{round_} common", f"num{round_}": round_, "all": "x"})
        index.refresh()
    shard = index.shards[0]
    shard._writer.wait_merging_threads()  # Let pending merges finish, then reopen the writer.
    shard._writer = shard._index.writer(20_000_000, 1)
    shard._index.reload()
    shard._open_searcher()
    assert shard.searcher.num_segments < 20, "merges stopped: a segment lacks something the schema needs"
    assert count(index) == 40
    for round_ in range(40):
        assert count(index, {"term": {f"text{round_}": f"word{round_}"}}) == 1
        assert count(index, {"term": {f"num{round_}": round_}}) == 1
    slots = {path: slot for path, slot in index.slots.items()}
    assert slots["text0"].norms is True  # Mapped before any segment existed.
    assert slots["text39"].norms is False  # Added to a shard with segments: no norms (documented).


def test_new_fields_survive_restart_before_commit(tmp_path: Path) -> None:
    engine = Engine(tmp_path / "data")
    index, _ = engine.get_or_create("late")
    put(index, "a", {"first": 1})
    index.refresh()
    put(index, "b", {"second": "two"})  # New slot; not yet committed.
    engine.close()
    reopened = Engine(tmp_path / "data")
    try:
        index = reopened.index("late")
        assert count(index, {"term": {"second.keyword": "two"}}) == 1
        meta = json.loads((index.path / "index.json").read_text())
        assert "second" in meta["mappings"]["properties"]
    finally:
        reopened.close()


def test_replay_restores_uncommitted_writes(tmp_path: Path) -> None:
    engine = Engine(tmp_path / "data")
    index = engine.create_index("replay", {"refresh_interval": "-1"})
    for i in range(30):
        put(index, f"d{i}", {"n": i})
    shard = index.shards[0]
    assert shard.committed_seq == -1  # Nothing committed: the writes live only in the log.
    # Simulate a crash: drop the writer without committing, keep the log as it is on disk.
    shard._writer.rollback()
    shard._writer.wait_merging_threads()  # Releases tantivy's writer lock, as process death would.
    shard._closed = True
    shard._log.close()
    engine._closed.set()
    reopened = Engine(tmp_path / "data")
    try:
        index = reopened.index("replay")
        assert count(index) == 30
        assert index.get("d7") is not None and orjson.loads(index.get("d7").source) == {"n": 7}
        assert index.shards[0].committed_seq == 29
    finally:
        reopened.close()


def test_routing_places_documents_and_get_needs_it(engine: Engine) -> None:
    index = engine.create_index("routed", {"number_of_shards": 4})
    put(index, "doc", {"n": 1}, routing="tenant-a")
    assert index.get("doc", routing="tenant-a") is not None
    placed = index.shard_for("doc", "tenant-a").number
    assert sum(1 for s in index.shards if s.get("doc") is not None) == 1
    assert index.shards[placed].get("doc") is not None


def test_versions_and_tombstones(engine: Engine) -> None:
    index, _ = engine.get_or_create("versions")
    assert put(index, "x", {"v": 1}).version == 1
    assert put(index, "x", {"v": 2}).version == 2
    (deleted,) = index.write([WriteRequest("delete", "x")])
    assert (deleted.result.result, deleted.result.version) == ("deleted", 3)
    assert put(index, "x", {"v": 3}).version == 4  # The tombstone remembers the version.
    (conflict,) = index.write([WriteRequest("index", "x", {"v": 4}, b'{"v":4}',
                                            Conditions(version=4, version_type="external"))])
    assert conflict.result.status == 409


def test_sequence_numbers_continue_after_restart(tmp_path: Path) -> None:
    engine = Engine(tmp_path / "data")
    index, _ = engine.get_or_create("seq")
    last = [put(index, f"d{i}", {"n": i}).seq_no for i in range(5)][-1]
    engine.close()
    reopened = Engine(tmp_path / "data")
    try:
        assert put(reopened.index("seq"), "next", {"n": 9}).seq_no == last + 1
    finally:
        reopened.close()


def test_deleted_index_leaves_nothing_on_disk(engine: Engine) -> None:
    index = engine.create_index("gone")
    put(index, "a", {"n": 1})
    path = index.path
    engine.delete_index("gone")
    assert not path.exists()
    assert not any(p.name.startswith(".") for p in (engine.data_dir / "indices").iterdir())


def test_a_search_idle_index_skips_scheduled_refreshes_and_its_next_search_refreshes(engine: Engine) -> None:
    import time as _time
    index = engine.create_index("idle", {"index.search.idle.after": "2s", "index.number_of_shards": "1"})
    explicit = engine.create_index("busy", {"index.search.idle.after": "2s", "index.refresh_interval": "1s"})
    _time.sleep(2.1)  # both are now unsearched for longer than search.idle.after
    for target in (index, explicit):
        put(target, "a", {"n": 1})
    _time.sleep(1.5)  # more than refresh_interval (1s default) and several refresher ticks
    assert index.shards[0].needs_refresh()  # search-idle: no commit
    assert not explicit.shards[0].needs_refresh()  # an explicit refresh_interval always refreshes
    assert count(index) == 1  # the search refreshed first: what was acknowledged is seen
    assert not index.shards[0].needs_refresh()
    # Searched again within search.idle.after: scheduled refreshes come back.
    put(index, "b", {"n": 2})
    _time.sleep(1.4)  # the refresh interval (1s) passes, search.idle.after (2s) not
    assert not index.shards[0].needs_refresh()
    # Idle again, a refresh=wait_for write is still answered by the next scheduled refresh.
    _time.sleep(0.8)
    (outcome,) = index.write([WriteRequest("index", "c", {"n": 3}, orjson.dumps({"n": 3}))])
    waiting = index.wait_for_refresh({0: outcome.result.seq_no})
    assert index.search_idle()
    for future in waiting:
        future.result(timeout=3)
    assert not index.shards[0].needs_refresh()


def test_size_zero_totals_count_without_ranking_and_skip_deleted_documents(engine: Engine) -> None:
    from strongroom.engine.search import SearchSpec, run_search, targets_for
    index = engine.create_index("totals", {"index.number_of_shards": "2"})
    for i in range(30):
        put(index, f"d{i}", {"n": i, "tag": "even" if i % 2 == 0 else "odd"})
    index.write([WriteRequest("delete", "d0", None, None)])
    index.refresh()
    for query in ({"match_all": {}}, {"term": {"tag": "even"}}, {"range": {"n": {"gte": 10}}}):
        node = parse_query(query)
        ranked = run_search(targets_for([index]), SearchSpec(query=node, size=10)).total
        counted = run_search(targets_for([index]), SearchSpec(query=node, size=0))
        assert counted.total == ranked == count(index, query) and counted.hits == []
        assert run_search(targets_for([index]), SearchSpec(query=node, size=0, track_total=False)).total is None
    assert run_search(targets_for([index]), SearchSpec(query=parse_query({"match_all": {}}), size=0)).total == 29


def test_match_all_counts_without_a_query_agree_with_counted_queries(engine: Engine) -> None:
    """A size-0 match_all total comes from the segment's live-document count minus the checkpoint
    marker, without running a query: it must agree with a counted query over every document after
    writes, updates, deletes and refreshes (markers come and go with each commit)."""
    import random

    from strongroom.engine.search import SearchSpec, count_matches, run_search, targets_for
    index = engine.create_index("live-counts", {"index.number_of_shards": "2"})
    rng = random.Random(7)
    live: set[str] = set()
    everything = parse_query({"match_all": {}})
    counted = parse_query({"bool": {"must": [{"match_all": {}}]}})  # not a bare match_all: a real count
    assert run_search(targets_for([index]), SearchSpec(query=everything, size=0)).total == 0  # nothing committed
    for round_ in range(6):
        for _ in range(40):
            doc_id = f"d{rng.randrange(60)}"
            if rng.random() < 0.25:
                index.write([WriteRequest("delete", doc_id, None, None)])
                live.discard(doc_id)
            else:
                put(index, doc_id, {"n": round_})
                live.add(doc_id)
        index.refresh()
        targets = targets_for([index])
        total = run_search(targets, SearchSpec(query=everything, size=0)).total
        assert total == len(live) == count_matches(targets, everything) == count_matches(targets, counted)
        assert run_search(targets, SearchSpec(query=everything, size=100)).total == len(live)
        restricted = targets_for([index], restrictions={"live-counts": parse_query({"term": {"n": round_}})})
        expected = run_search(restricted, SearchSpec(query=counted, size=0)).total
        assert run_search(restricted, SearchSpec(query=everything, size=0)).total == expected


def _versions(index: Index, ids: list[str]) -> dict[str, tuple[int, int] | None]:
    out: dict[str, tuple[int, int] | None] = {}
    for doc_id in ids:
        doc = index.get(doc_id, realtime=False)
        out[doc_id] = None if doc is None else (doc.version, doc.seq_no)
    return out


def test_a_crash_between_the_commit_and_the_checkpoint_file_replays_harmlessly(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checkpoint file is written after tantivy's commit and before the log is cut. A crash in
    between leaves the older checkpoint, so the operations the commit already holds are replayed:
    the index must come back exactly as acknowledged (each document once, same versions and sequence
    numbers) and go on numbering after them."""
    from strongroom.engine.shard import Shard
    from strongroom.engine.wal import LocalLog
    engine = Engine(tmp_path / "data", writer_heap_bytes=20_000_000)
    index = engine.create_index("crashy", {"index.number_of_shards": "1"})
    for i in range(10):
        put(index, f"d{i}", {"n": i})
    index.refresh()
    before = index.shards[0].committed_seq
    # From here on the process "dies" right after each commit: no checkpoint file, no log cut.
    monkeypatch.setattr(Shard, "_write_checkpoint", lambda self, seq: None)
    monkeypatch.setattr(LocalLog, "truncate_before", lambda self, seq: None)
    for i in range(5, 15):
        put(index, f"d{i}", {"n": i * 10})  # updates of d5-d9, new d10-d14
    index.write([WriteRequest("delete", "d0", None, None)])
    index.refresh()
    ids = [f"d{i}" for i in range(15)]
    expected = _versions(index, ids)
    engine.close()
    monkeypatch.undo()

    engine = Engine(tmp_path / "data", writer_heap_bytes=20_000_000)
    try:
        index = engine.index("crashy")
        shard = index.shards[0]
        assert shard.committed_seq > before  # the replayed operations were committed again
        assert _versions(index, ids) == expected
        assert count(index) == 14 == shard.num_docs()
        assert count(index, {"term": {"n": 50}}) == 1 and count(index, {"term": {"n": 5}}) == 0
        result = put(index, "d15", {"n": 15})
        assert result.seq_no == max(v[1] for v in expected.values() if v is not None) + 2  # after the delete
    finally:
        engine.close()


def test_a_shard_with_the_old_checkpoint_document_is_migrated(tmp_path: Path) -> None:
    """Shards written before the checkpoint file kept the checkpoint in a marker document with an
    empty id. Opening one moves the checkpoint to the file and deletes the marker: counts and
    aggregations then see only documents, and nothing is replayed twice."""
    import tantivy

    from strongroom.engine.shard import CHECKPOINT_FILE
    engine = Engine(tmp_path / "data", writer_heap_bytes=20_000_000)
    index = engine.create_index("legacy", {"index.number_of_shards": "1"})
    for i in range(6):
        put(index, f"d{i}", {"n": i})
    index.refresh()
    shard = index.shards[0]
    seq, directory = shard.committed_seq, shard._tantivy_dir
    engine.close()
    # Turn it into a shard of the old format: a marker document, no checkpoint file.
    raw = tantivy.Index.open(str(directory))
    writer = raw.writer(20_000_000, 1)
    marker = tantivy.Document()
    marker.add_text("_id", "")
    marker.add_integer("_ckpt", seq)
    writer.add_document(marker)
    writer.commit()
    writer.wait_merging_threads()
    del writer, raw
    (directory / CHECKPOINT_FILE).unlink()

    engine = Engine(tmp_path / "data", writer_heap_bytes=20_000_000)
    try:
        index = engine.index("legacy")
        shard = index.shards[0]
        assert shard.committed_seq == seq
        assert json.loads((directory / CHECKPOINT_FILE).read_bytes()) == {"committed_seq": seq}
        assert shard.num_docs() == 6 == count(index) == shard.searcher.num_docs
        assert put(index, "d6", {"n": 6}).seq_no == seq + 1
    finally:
        engine.close()


@pytest.mark.parametrize("how_many", [1, 2, 16, 62, 63, 100])
def test_terms_match_the_same_documents_with_a_constant_score_however_many_values(engine: Engine,
                                                                                   how_many: int) -> None:
    """Up to 64 values compile to a union of term queries, more to tantivy's term set: same answers."""
    from strongroom.engine.plan import TERM_SET_AS_TERMS
    from strongroom.engine.search import SearchSpec, run_search, targets_for

    index = engine.create_index("codes", {"number_of_shards": 2}, {"properties": {
        "code": {"type": "keyword"}, "n": {"type": "long"}, "note": {"type": "text"}}})
    index.write([WriteRequest("index", f"d{n}", doc, orjson.dumps(doc)) for n, doc in enumerate(
        {"code": f"c{n % 50}", "n": n % 7, "note": "alpha beta" if n % 3 else "alpha"} for n in range(300))])
    index.refresh()
    codes = [f"c{k}" for k in range(0, 2 * how_many, 2)] + ["c0", "absent"]  # a repeat and a miss too
    expected = {f"d{n}" for n in range(300) if f"c{n % 50}" in codes}
    for query in ({"terms": {"code": codes}},
                  {"bool": {"must": [{"match": {"note": "beta"}}], "filter": [{"terms": {"code": codes}}]}},
                  {"bool": {"must": [{"terms": {"code": codes}}, {"terms": {"n": [1, 3]}}]}}):
        result = run_search(targets_for([index]), SearchSpec(query=parse_query(query), size=300))
        got = {hit.doc.doc_id for hit in result.hits}
        if "match" in str(query):
            assert got == {d for d in expected if int(d[1:]) % 3}
        elif "must" in query.get("bool", {}):
            assert got == {d for d in expected if int(d[1:]) % 7 in (1, 3)}
            assert {hit.score for hit in result.hits} <= {2.0}  # two constant-score clauses: 1 each
        else:
            assert got == expected
            assert {hit.score for hit in result.hits} <= {1.0}
        assert result.total == len(got)
    shard = index.shards[0]
    compiled = repr(index.compiler(shard).compile(parse_query({"terms": {"code": codes}})))
    assert TERM_SET_AS_TERMS == 64 and ("TermSetQuery" in compiled) == (len(codes) > 64)
    assert "TermSetQuery" not in repr(index.compiler(shard).compile(parse_query({"terms": {"code": ["c1"]}})))
