"""Which searches run on the event loop (bounded lookups) and which go to a worker thread."""

from __future__ import annotations

import pytest

from strongroom.query.dsl import parse_query
from strongroom.query.search_request import parse_search_request
from strongroom.security.session import _inline, is_lookup


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


def test_only_small_plain_pages_of_lookups_run_inline() -> None:
    term = {"query": {"term": {"national_id": "x"}}}
    assert _inline(parse_search_request(term, {}))
    for extra in ({"size": 500}, {"from": 95, "size": 10}, {"sort": [{"birth_date": "asc"}]},
                  {"aggs": {"g": {"terms": {"field": "gender"}}}}, {"highlight": {"fields": {"name": {}}}},
                  {"post_filter": {"term": {"gender": "M"}}}, {"explain": True}, {"timeout": "1s"}):
        assert not _inline(parse_search_request({**term, **extra}, {})), extra
