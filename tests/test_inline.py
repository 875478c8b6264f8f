"""Which searches run on the event loop (lookups, and small pages that read few postings) and which go
to a worker thread."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from strongroom.engine.index import WriteRequest
from strongroom.engine.node import Engine
from strongroom.engine.search import postings, targets_for
from strongroom.query.dsl import parse_query
from strongroom.query.search_request import parse_search_request
from strongroom.security import session as session_module
from strongroom.security.gate import Gate
from strongroom.security.session import _bounded, is_lookup
from strongroom.security.users import SecurityStore


@pytest.mark.parametrize("query", [
    {"term": {"national_id": "110101199003071234"}},
    {"terms": {"phone": ["13800000000", "13900000000"]}},
    {"ids": {"values": ["a", "b"]}},
    {"constant_score": {"filter": {"term": {"phone": "13800000000"}}}},
    {"bool": {"filter": [{"term": {"national_id": "x"}}], "must_not": [{"term": {"gender": "M"}}]}},
])
def test_lookups(query: dict) -> None:
    assert is_lookup(parse_query(query))


@pytest.mark.parametrize("query", [
    {"match": {"name": "张伟"}},
    {"match_all": {}},
    {"range": {"birth_date": {"gte": "1990-01-01"}}},
    {"prefix": {"national_id": "1101"}},
    {"terms": {"phone": [str(n) for n in range(65)]}},  # many values: not bounded by a few postings
    {"bool": {"should": [{"term": {"a": "x"}}, {"term": {"a": "y"}}]}},
    {"bool": {"must_not": [{"term": {"gender": "M"}}]}},  # everything else: unbounded
    {"bool": {"filter": [{"term": {"a": "x"}}, {"range": {"n": {"gte": 1}}}]}},
])
def test_not_lookups(query: dict) -> None:
    assert not is_lookup(parse_query(query))


def test_only_small_plain_pages_by_score_may_run_inline() -> None:
    term = {"query": {"term": {"national_id": "x"}}}
    assert _bounded(parse_search_request(term, {}))
    for extra in ({"size": 500}, {"from": 95, "size": 10}, {"sort": [{"birth_date": "asc"}]},
                  {"aggs": {"g": {"terms": {"field": "gender"}}}}, {"highlight": {"fields": {"name": {}}}},
                  {"post_filter": {"term": {"gender": "M"}}}, {"explain": True}, {"timeout": "1s"}):
        assert not _bounded(parse_search_request({**term, **extra}, {})), extra


# -- postings: what a query reads, from the shard's document frequencies --------------------------------
DOCS = [{"city": "shanghai" if n % 10 else "beijing", "note": f"common words {'rare' if n == 7 else 'usual'}",
         "n": n} for n in range(100)]


@pytest.fixture
def engine(tmp_path: Path) -> Any:
    engine = Engine(tmp_path / "data", writer_heap_bytes=20_000_000)
    index = engine.create_index("people", {"number_of_shards": 2}, {"properties": {
        "city": {"type": "keyword"}, "note": {"type": "text"}, "n": {"type": "long"}}})
    index.write([WriteRequest("index", f"d{n}", doc, orjson.dumps(doc)) for n, doc in enumerate(DOCS)])
    index.refresh()
    yield engine
    engine.close()


@pytest.mark.parametrize(("query", "expected"), [
    ({"term": {"city": "beijing"}}, 10),
    ({"terms": {"city": ["beijing", "shanghai"]}}, 100),
    ({"term": {"city": "nowhere"}}, 0),
    ({"ids": {"values": ["d1", "d2", "d3"]}}, 6),  # each shard is asked for every id
    ({"match": {"note": "rare usual"}}, 100),  # a union reads every part
    ({"match": {"note": {"query": "common rare", "operator": "and"}}}, 2),  # led by the rarest part
    ({"match_phrase": {"note": "words rare"}}, 2),
    ({"bool": {"must": [{"match": {"note": "rare"}}], "filter": [{"term": {"city": "shanghai"}}]}}, 2),
    ({"bool": {"filter": [{"term": {"city": "beijing"}}], "must_not": [{"term": {"city": "x"}}]}}, 20),
    ({"constant_score": {"filter": {"term": {"city": "beijing"}}}}, 10),
    ({"match_all": {}}, 100),
    ({"range": {"n": {"gte": 5}}}, None),
    ({"prefix": {"city": "bei"}}, None),
    ({"match": {"note": {"query": "rare", "fuzziness": 1}}}, None),
    ({"bool": {"must_not": [{"term": {"city": "beijing"}}]}}, None),
])
def test_postings(engine: Engine, query: dict[str, Any], expected: int | None) -> None:
    targets = targets_for([engine.index("people")])
    assert postings(targets, parse_query(query)) == expected


def test_document_frequencies_are_kept_per_searcher_and_renewed_by_a_refresh(engine: Engine) -> None:
    index = engine.index("people")
    query = parse_query({"term": {"city": "beijing"}})
    assert postings(targets_for([index]), query) == 10
    memos = [shard.doc_freqs(shard.searcher) for shard in index.shards]
    assert all(memo is not None and any(term == "beijing" for _field, term in memo) for memo in memos)
    for memo in memos:  # the next estimate answers from the memo, not from the searcher
        for key in memo:
            memo[key] = 1000
    assert postings(targets_for([index]), query) == 2000
    old = [shard.searcher for shard in index.shards]
    index.write([WriteRequest("index", f"e{n}", {"city": "beijing"}, orjson.dumps({"city": "beijing"}))
                 for n in range(10)])
    index.refresh()
    assert postings(targets_for([index]), query) == 20  # a new searcher, a new memo
    assert all(shard.doc_freqs(searcher) is None for shard, searcher in zip(index.shards, old))


def test_searches_that_read_few_postings_stay_on_the_loop(tmp_path: Path, monkeypatch: Any) -> None:
    engine = Engine(tmp_path / "data", writer_heap_bytes=20_000_000)
    users = SecurityStore(tmp_path / "data")
    users.bootstrap("a long enough bootstrap passphrase")
    session = Gate(engine, users).system_session("test")
    offloaded: list[str] = []
    real_run = session_module._run

    async def spy(fn: Any, *args: Any) -> Any:
        offloaded.append(getattr(fn, "__name__", "?"))
        return await real_run(fn, *args)

    monkeypatch.setattr(session_module, "_run", spy)
    monkeypatch.setattr(session_module, "INLINE_MAX_POSTINGS", 50)

    async def scenario() -> list[int]:
        await session.create_index("people", {}, {"properties": {"city": {"type": "keyword"},
                                                                 "note": {"type": "text"}}})
        await session.write([session_module.DocWrite("index", "people", f"d{n}", doc, orjson.dumps(doc))
                             for n, doc in enumerate(DOCS)], refresh="true")
        offloaded.clear()
        found = []
        for body in ({"query": {"match": {"note": "rare"}}},  # 1 posting: inline
                     {"query": {"match": {"note": "usual"}}},  # 99: a worker thread
                     {"query": {"match": {"note": "rare"}}, "sort": [{"city": "asc"}]}):  # sorted: a thread
            found.append((await session.search("people", parse_search_request(body, {}))).total)
        return found

    try:
        assert asyncio.run(scenario()) == [1, 99, 1]
    finally:
        engine.close()
    assert offloaded == ["_search_now", "_search_now"]


@pytest.mark.parametrize("query", [
    {"match": {"note": " ".join(["usual"] * 65)}},  # more terms than the estimate looks at
    {"match": {"note": "x" * 1025}},  # a long text is not analysed before the search
    {"terms": {"city": [f"c{n}" for n in range(65)]}},
    {"bool": {"should": [{"term": {"city": f"c{n}"}} for n in range(65)]}},
])
def test_large_queries_are_not_estimated(engine: Engine, query: dict[str, Any]) -> None:
    assert postings(targets_for([engine.index("people")]), parse_query(query)) is None
