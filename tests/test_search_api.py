"""Search through the official client: Chinese analysis, helpers, scroll, aggregations, limits."""

from __future__ import annotations

import elasticsearch
import pytest
from elasticsearch import ApiError, NotFoundError, helpers

from strongroom.demo import RESIDENTS_BODY, generate_residents

RESIDENTS = "search-residents"
# The demo's fields without protection (this file tests search features on plain fields; protected
# fields are tests/test_protection.py's); personal data in plain fields is then only logged.
PLAIN_BODY = {
    "settings": {"index": {**RESIDENTS_BODY["settings"]["index"], "pii_detection": "warn"}},
    "mappings": {**RESIDENTS_BODY["mappings"], "properties": {
        name: {k: v for k, v in spec.items() if k not in ("protect", "blind_prefixes")}
        for name, spec in RESIDENTS_BODY["mappings"]["properties"].items()}},
}
PLAIN_BODY["mappings"]["properties"]["name"]["fields"] = {"keyword": {"type": "keyword"}}


@pytest.fixture(scope="module")
def residents(es: elasticsearch.Elasticsearch) -> list[tuple[str, dict]]:
    docs = list(generate_residents(2000))
    extra = [("zw-exact", {"name": "张伟", "national_id": "110101199001011237", "phone": "13800000000",
                           "address": "上海市浦东新区世纪大道100号", "birthplace": "浦东新区", "birth_date": "1990-01-01",
                           "gender": "男", "case_notes": "测试记录。"}),
             ("zw-longer", {"name": "张伟明", "national_id": "110101199001021234", "phone": "13800000001",
                            "address": "北京市海淀区中关村大街1号", "birthplace": "海淀区", "birth_date": "1990-01-02",
                            "gender": "男", "case_notes": "测试记录。"})]
    es.indices.create(index=RESIDENTS, **PLAIN_BODY)
    ok, errors = helpers.bulk(es, ({"_index": RESIDENTS, "_id": i, "_source": d} for i, d in docs + extra),
                              chunk_size=500)
    assert (ok, errors) == (len(docs) + 2, [])
    es.indices.refresh(index=RESIDENTS)
    return docs + extra


def ids(response: dict) -> list[str]:
    return [hit["_id"] for hit in response["hits"]["hits"]]


def test_cjk_bigrams_find_names_and_rank_exact_names_first(es: elasticsearch.Elasticsearch, residents: list) -> None:
    tokens = [t["token"] for t in es.indices.analyze(analyzer="default", text="张伟明 Café 42")["tokens"]]
    assert tokens == ["张伟", "伟明", "cafe", "42"]
    response = es.search(index=RESIDENTS, query={"match": {"name": "张伟"}}, size=50)
    found = ids(response)
    assert "zw-exact" in found and "zw-longer" in found
    assert found.index("zw-exact") < found.index("zw-longer")  # A shorter exact name scores higher.
    expected = {i for i, d in residents if "张伟" in d["name"]}
    assert set(found) == expected
    address = es.search(index=RESIDENTS, query={"match_phrase": {"address": "浦东新区"}}, size=100)
    assert "zw-exact" in ids(address)
    assert all("浦东新区" in hit["_source"]["address"] for hit in address["hits"]["hits"])


def test_highlight_marks_the_matched_bigrams(es: elasticsearch.Elasticsearch, residents: list) -> None:
    response = es.search(index=RESIDENTS, query={"match": {"address": "浦东新区"}},
                         highlight={"fields": {"address": {}}}, size=1)
    assert "<em>浦东新区</em>" in response["hits"]["hits"][0]["highlight"]["address"][0]


def test_helpers_scan_and_search_after(es: elasticsearch.Elasticsearch, residents: list) -> None:
    men = {i for i, d in residents if d["gender"] == "男"}
    scanned = {hit["_id"] for hit in helpers.scan(es, index=RESIDENTS, query={"query": {"term": {"gender": "男"}}},
                                                 size=300)}
    assert scanned == men
    seen: list[str] = []
    after = None
    while True:
        body = {"query": {"term": {"gender": "男"}}, "sort": [{"birth_date": "asc"}, {"national_id": "asc"}],
                "size": 400}
        if after is not None:
            body["search_after"] = after
        page = es.search(index=RESIDENTS, **body)["hits"]["hits"]
        if not page:
            break
        seen += [h["_id"] for h in page]
        after = page[-1]["sort"]
    assert len(seen) == len(set(seen)) == len(men)


def test_scroll_ids_are_single_owner_and_clearable(es: elasticsearch.Elasticsearch, residents: list) -> None:
    first = es.search(index=RESIDENTS, scroll="30s", size=100, query={"match_all": {}})
    scroll_id = first["_scroll_id"]
    second = es.scroll(scroll_id=scroll_id, scroll="30s")
    assert ids(second) and not set(ids(second)) & set(ids(first))
    assert es.clear_scroll(scroll_id=scroll_id)["num_freed"] == 1
    with pytest.raises(NotFoundError) as gone:
        es.scroll(scroll_id=scroll_id, scroll="30s")
    assert gone.value.body["error"]["type"] == "search_context_missing_exception"
    with pytest.raises(ApiError) as too_long:
        es.search(index=RESIDENTS, scroll="2d", query={"match_all": {}})
    assert too_long.value.status_code == 400


def test_aggregations_over_the_residents(es: elasticsearch.Elasticsearch, residents: list) -> None:
    response = es.search(index=RESIDENTS, size=0, aggs={
        "gender": {"terms": {"field": "gender"}, "aggs": {"oldest": {"min": {"field": "birth_date"}}}},
        "decades": {"date_histogram": {"field": "birth_date", "calendar_interval": "year", "min_doc_count": 1}},
        "places": {"cardinality": {"field": "birthplace"}}})
    aggs = response["aggregations"]
    counts = {b["key"]: b["doc_count"] for b in aggs["gender"]["buckets"]}
    assert counts == {g: sum(1 for _i, d in residents if d["gender"] == g) for g in ("男", "女")}
    assert sum(b["doc_count"] for b in aggs["decades"]["buckets"]) == len(residents)
    assert aggs["places"]["value"] == len({d["birthplace"] for _i, d in residents})
    oldest = min(d["birth_date"] for _i, d in residents)
    assert any(b["oldest"]["value_as_string"].startswith(oldest) for b in aggs["gender"]["buckets"])


def test_limits_are_clear_400s(es: elasticsearch.Elasticsearch, residents: list) -> None:
    cases = [
        {"from": 9999, "size": 2},
        {"query": {"regexp": {"name.keyword": "a" * 1200}}},
        {"query": {"bool": {"should": [{"term": {"gender": str(i)}} for i in range(1100)]}}},
        {"aggs": {"t": {"histogram": {"field": "birth_date", "interval": 1}}}},
        {"query": {"query_string": {"query": "(" * 50 + "x" + ")" * 50}}},
    ]
    for body in cases:
        with pytest.raises(ApiError) as refused:
            es.search(index=RESIDENTS, **body)
        assert refused.value.status_code == 400, body
        assert refused.value.body["error"]["reason"]


def test_timeout_is_reported(es: elasticsearch.Elasticsearch, residents: list) -> None:
    response = es.search(index=RESIDENTS, query={"match_all": {}}, timeout="0ms")
    assert response["timed_out"] is True
    assert es.search(index=RESIDENTS, query={"match_all": {}}, timeout="30s")["timed_out"] is False


def test_delete_and_update_by_query(es: elasticsearch.Elasticsearch, index_name: str) -> None:
    helpers.bulk(es, ({"_index": index_name, "_id": str(i), "_source": {"n": i, "tag": "even" if i % 2 == 0 else "odd"}}
                      for i in range(100)), refresh=True)
    updated = es.update_by_query(index=index_name, query={"term": {"tag.keyword": "odd"}}, refresh=True)
    assert updated["updated"] == 50
    assert es.get(index=index_name, id="1")["_version"] == 2
    deleted = es.delete_by_query(index=index_name, query={"range": {"n": {"gte": 90}}}, refresh=True)
    assert deleted["deleted"] == 10
    assert es.count(index=index_name)["count"] == 90


def test_point_in_time_pages_a_frozen_view(es: elasticsearch.Elasticsearch, index_name: str) -> None:
    helpers.bulk(es, ({"_index": index_name, "_id": str(i), "_source": {"n": i}} for i in range(50)), refresh=True)
    pit = es.open_point_in_time(index=index_name, keep_alive="1m")["id"]
    es.index(index=index_name, id="late", document={"n": 999}, refresh=True)  # Not in the point in time.
    es.delete(index=index_name, id="0", refresh=True)  # Still in the point in time.
    seen: list[str] = []
    after = None
    while True:
        body: dict = {"pit": {"id": pit, "keep_alive": "1m"}, "size": 7, "sort": [{"n": "asc"}]}
        if after is not None:
            body["search_after"] = after
        response = es.search(**body)
        assert response["pit_id"] == pit
        page = response["hits"]["hits"]
        if not page:
            break
        seen += [h["_id"] for h in page]
        after = page[-1]["sort"]
    assert seen == [str(i) for i in range(50)]
    assert es.close_point_in_time(id=pit)["num_freed"] == 1
    with pytest.raises(NotFoundError):
        es.search(pit={"id": pit}, query={"match_all": {}})
