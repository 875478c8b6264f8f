"""The official `elasticsearch` Python client (8.x) against a live server over TLS."""

from __future__ import annotations

import elasticsearch
import pytest
from elasticsearch import ApiError, ConflictError, NotFoundError, helpers

from live import LiveServer


def shards(total: int = 1) -> dict[str, int]:
    return {"total": total, "successful": total, "failed": 0}


def test_client_is_8x_and_accepts_the_server(es: elasticsearch.Elasticsearch) -> None:
    assert elasticsearch.__version__[0] == 8
    info = es.info()
    assert info["version"]["number"].startswith("8.")
    assert info["tagline"] == "You Know, for Search"
    assert es.ping()


def test_index_get_update_delete_round_trip(es: elasticsearch.Elasticsearch, index_name: str) -> None:
    created = es.index(index=index_name, id="1", document={"name": "张伟", "age": 30, "tags": ["a", "b"]})
    assert created.body == {"_index": index_name, "_id": "1", "_version": 1, "result": "created",
                            "_shards": shards(), "_seq_no": 0, "_primary_term": 1}
    got = es.get(index=index_name, id="1")
    assert got.body == {"_index": index_name, "_id": "1", "_version": 1, "_seq_no": 0, "_primary_term": 1,
                        "found": True, "_source": {"name": "张伟", "age": 30, "tags": ["a", "b"]}}
    replaced = es.index(index=index_name, id="1", document={"name": "张伟", "age": 31})
    assert (replaced["result"], replaced["_version"], replaced["_seq_no"]) == ("updated", 2, 1)

    updated = es.update(index=index_name, id="1", doc={"age": 32, "city": "上海"})
    assert updated.body == {"_index": index_name, "_id": "1", "_version": 3, "result": "updated",
                            "_shards": shards(), "_seq_no": 2, "_primary_term": 1}
    assert es.get(index=index_name, id="1")["_source"] == {"name": "张伟", "age": 32, "city": "上海"}
    noop = es.update(index=index_name, id="1", doc={"age": 32})
    assert noop.body == {"_index": index_name, "_id": "1", "_version": 3, "result": "noop",
                         "_shards": {"total": 0, "successful": 0, "failed": 0}, "_seq_no": 2, "_primary_term": 1}
    with_source = es.update(index=index_name, id="1", doc={"nested": {"x": 1}}, source=True)
    assert with_source["get"]["_source"] == {"name": "张伟", "age": 32, "city": "上海", "nested": {"x": 1}}
    merged = es.update(index=index_name, id="1", doc={"nested": {"y": 2}}, source=True)
    assert merged["get"]["_source"]["nested"] == {"x": 1, "y": 2}

    deleted = es.delete(index=index_name, id="1")
    assert deleted.body == {"_index": index_name, "_id": "1", "_version": 6, "result": "deleted",
                            "_shards": shards(), "_seq_no": 5, "_primary_term": 1}
    with pytest.raises(NotFoundError) as missing:
        es.get(index=index_name, id="1")
    assert missing.value.body == {"_index": index_name, "_id": "1", "found": False}
    with pytest.raises(NotFoundError) as again:
        es.delete(index=index_name, id="1")
    assert again.value.body["result"] == "not_found"
    assert not es.exists(index=index_name, id="1")


def test_auto_ids_create_and_upserts(es: elasticsearch.Elasticsearch, index_name: str) -> None:
    first = es.index(index=index_name, document={"n": 1})
    second = es.index(index=index_name, document={"n": 2})
    assert first["_id"] != second["_id"] and len(first["_id"]) == 20
    assert es.get(index=index_name, id=first["_id"])["_source"] == {"n": 1}
    made = es.create(index=index_name, id="c1", document={"n": 3})
    assert made["result"] == "created"
    with pytest.raises(ConflictError) as conflict:
        es.create(index=index_name, id="c1", document={"n": 4})
    assert conflict.value.body["error"]["type"] == "version_conflict_engine_exception"
    assert conflict.value.body["error"]["reason"] == ("[c1]: version conflict, document already exists "
                                                      "(current version [1])")
    with pytest.raises(NotFoundError) as no_doc:
        es.update(index=index_name, id="ghost", doc={"n": 5})
    assert no_doc.value.body["error"]["type"] == "document_missing_exception"
    upserted = es.update(index=index_name, id="u1", doc={"n": 6}, upsert={"n": 0})
    assert upserted["result"] == "created"
    assert es.get(index=index_name, id="u1")["_source"] == {"n": 0}
    as_upsert = es.update(index=index_name, id="u2", doc={"n": 7}, doc_as_upsert=True)
    assert as_upsert["result"] == "created"
    assert es.get(index=index_name, id="u2")["_source"] == {"n": 7}


def test_optimistic_concurrency_and_external_versions(es: elasticsearch.Elasticsearch, index_name: str) -> None:
    doc = es.index(index=index_name, id="1", document={"v": 1})
    ok = es.index(index=index_name, id="1", document={"v": 2}, if_seq_no=doc["_seq_no"],
                  if_primary_term=doc["_primary_term"])
    assert ok["_version"] == 2
    with pytest.raises(ConflictError) as stale:
        es.index(index=index_name, id="1", document={"v": 3}, if_seq_no=doc["_seq_no"], if_primary_term=1)
    assert stale.value.body["error"]["reason"] == (
        f"[1]: version conflict, required seqNo [{doc['_seq_no']}], primary term [1]. current document has "
        f"seqNo [{ok['_seq_no']}] and primary term [1]")
    with pytest.raises(ConflictError):
        es.delete(index=index_name, id="1", if_seq_no=99, if_primary_term=1)
    with pytest.raises(ConflictError):
        es.update(index=index_name, id="1", doc={"v": 9}, if_seq_no=99, if_primary_term=1)
    assert es.get(index=index_name, id="1")["_source"] == {"v": 2}

    ext = es.index(index=index_name, id="e", document={"v": 1}, version=10, version_type="external")
    assert ext["_version"] == 10
    with pytest.raises(ConflictError) as lower:
        es.index(index=index_name, id="e", document={"v": 2}, version=10, version_type="external")
    assert "current version [10] is higher or equal to the one provided [10]" in lower.value.body["error"]["reason"]
    assert es.index(index=index_name, id="e", document={"v": 3}, version=10,
                    version_type="external_gte")["_version"] == 10
    with pytest.raises(ApiError) as internal:
        es.index(index=index_name, id="e", document={"v": 4}, version=11)
    assert internal.value.status_code == 400
    assert internal.value.body["error"]["type"] == "action_request_validation_exception"


def test_bulk_ten_thousand_then_get_mget_count(es: elasticsearch.Elasticsearch, index_name: str) -> None:
    actions = ({"_index": index_name, "_id": f"d{i}", "_source": {"n": i, "text": f"document number {i}",
                                                                  "even": i % 2 == 0}} for i in range(10_000))
    indexed, errors = helpers.bulk(es, actions, chunk_size=2_000)
    assert (indexed, errors) == (10_000, [])
    es.indices.refresh(index=index_name)
    assert es.count(index=index_name)["count"] == 10_000
    assert es.count(index=index_name, query={"term": {"even": True}})["count"] == 5_000
    assert es.count(index=index_name, query={"range": {"n": {"gte": 100, "lt": 200}}})["count"] == 100
    assert es.get(index=index_name, id="d1234")["_source"] == {"n": 1234, "text": "document number 1234",
                                                               "even": True}
    many = es.mget(index=index_name, ids=["d0", "d9999", "missing"])
    assert [d.get("found") for d in many["docs"]] == [True, True, False]
    assert many["docs"][1]["_source"]["n"] == 9999
    docs = es.mget(docs=[{"_index": index_name, "_id": "d5", "_source": ["n"]},
                         {"_index": "no-such-index", "_id": "x"}])["docs"]
    assert docs[0]["_source"] == {"n": 5}
    assert docs[1]["error"]["type"] == "index_not_found_exception"
    cat = es.cat.indices(index=index_name, format="json")
    assert cat[0]["docs.count"] == "10000"
    stats = es.indices.stats(index=index_name)
    assert stats["indices"][index_name]["primaries"]["docs"]["count"] == 10_000


def test_bulk_per_item_results(es: elasticsearch.Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, mappings={"properties": {"n": {"type": "integer"}}})
    response = es.bulk(operations=[
        {"index": {"_index": index_name, "_id": "1"}}, {"n": 1},
        {"create": {"_index": index_name, "_id": "1"}}, {"n": 2},
        {"index": {"_index": index_name, "_id": "2"}}, {"n": "not a number"},
        {"update": {"_index": index_name, "_id": "1"}}, {"doc": {"n": 3}},
        {"delete": {"_index": index_name, "_id": "nope"}},
        {"delete": {"_index": index_name, "_id": "1"}},
    ], refresh="wait_for")
    assert response["errors"] is True
    kinds = [(next(iter(item)), next(iter(item.values()))["status"]) for item in response["items"]]
    assert kinds == [("index", 201), ("create", 409), ("index", 400), ("update", 200), ("delete", 404),
                     ("delete", 200)]
    assert response["items"][2]["index"]["error"]["type"] == "mapper_parsing_exception"
    assert response["items"][1]["create"]["error"]["type"] == "version_conflict_engine_exception"
    assert es.count(index=index_name)["count"] == 0


def test_bulk_bad_source_lines_fail_their_items(es: elasticsearch.Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name)
    body = (f'{{"index":{{"_index":"{index_name}","_id":"blank"}}}}\n   \n'
            f'{{"index":{{"_index":"{index_name}","_id":"cut"}}}}\n{{"n":\n'
            f'{{"create":{{"_index":"{index_name}","_id":"dup"}}}}\n{{"n":1,"n":2}}\n'
            f'{{"index":{{"_index":"{index_name}","_id":"ok"}}}}\n{{"n":1}}\n')
    response = es.bulk(operations=body, refresh=True)
    items = [next(iter(item.values())) for item in response["items"]]
    assert [(item["_id"], item["status"]) for item in items] == [("blank", 400), ("cut", 400), ("dup", 400),
                                                               ("ok", 201)]
    assert [item.get("error", {}).get("type") for item in items] == [
        "action_request_validation_exception", "mapper_parsing_exception", "mapper_parsing_exception", None]
    assert "source is missing" in items[0]["error"]["reason"]
    assert "Duplicate field 'n'" in items[2]["error"]["reason"]
    assert es.count(index=index_name)["count"] == 1


def test_refresh_semantics(es: elasticsearch.Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, settings={"refresh_interval": "-1"})
    es.index(index=index_name, id="1", document={"a": 1})
    assert es.get(index=index_name, id="1")["found"]  # GET is realtime.
    assert es.count(index=index_name)["count"] == 0  # Search is not, until a refresh.
    forced = es.index(index=index_name, id="2", document={"a": 2}, refresh=True)
    assert forced["forced_refresh"] is True
    assert es.count(index=index_name)["count"] == 2
    es.index(index=index_name, id="3", document={"a": 3})
    with pytest.raises(NotFoundError):
        es.get(index=index_name, id="3", realtime=False)
    es.indices.refresh(index=index_name)
    assert es.get(index=index_name, id="3", realtime=False)["found"]


def test_periodic_refresh_and_wait_for(es: elasticsearch.Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, settings={"refresh_interval": "200ms"})
    es.index(index=index_name, id="1", document={"a": 1}, refresh="wait_for")
    assert es.count(index=index_name)["count"] == 1


def test_index_admin(es: elasticsearch.Elasticsearch, index_name: str) -> None:
    body = es.indices.create(index=index_name, settings={"number_of_shards": 3, "number_of_replicas": 0},
                             mappings={"dynamic": "strict", "properties": {
                                 "name": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
                                 "born": {"type": "date", "format": "yyyy-MM-dd"},
                                 "addr": {"properties": {"city": {"type": "keyword", "ignore_above": 10}}}}})
    assert body.body == {"acknowledged": True, "shards_acknowledged": True, "index": index_name}
    assert es.indices.exists(index=index_name)
    with pytest.raises(ApiError) as exists:
        es.indices.create(index=index_name)
    assert exists.value.status_code == 400
    assert exists.value.body["error"]["type"] == "resource_already_exists_exception"
    mapping = es.indices.get_mapping(index=index_name)[index_name]["mappings"]
    assert mapping == {"dynamic": "strict", "properties": {
        "addr": {"properties": {"city": {"type": "keyword", "ignore_above": 10}}},
        "born": {"type": "date", "format": "yyyy-MM-dd"},
        "name": {"type": "text", "fields": {"raw": {"type": "keyword"}}}}}
    settings = es.indices.get_settings(index=index_name)[index_name]["settings"]["index"]
    assert (settings["number_of_shards"], settings["number_of_replicas"]) == ("3", "0")
    with pytest.raises(ApiError) as strict:
        es.index(index=index_name, id="1", document={"name": "x", "extra": 1})
    assert strict.value.body["error"]["type"] == "strict_dynamic_mapping_exception"
    assert es.indices.put_mapping(index=index_name, properties={"extra": {"type": "long"}})["acknowledged"]
    for i in range(30):  # Spread over three shards, all reached by get and count.
        es.index(index=index_name, id=str(i), document={"name": f"n{i}", "born": "2000-01-02", "extra": i,
                                                        "addr": {"city": "Shanghai"}})
    es.indices.refresh(index=index_name)
    assert es.count(index=index_name)["count"] == 30
    assert es.count(index=index_name, query={"term": {"name.raw": "n7"}})["count"] == 1
    assert es.count(index=index_name, query={"term": {"addr.city": "Shanghai"}})["count"] == 30
    assert {es.get(index=index_name, id=str(i))["_source"]["extra"] for i in range(30)} == set(range(30))
    got = es.indices.get(index=index_name)[index_name]
    assert set(got) == {"aliases", "mappings", "settings"}
    with pytest.raises(ApiError) as conflict:
        es.indices.put_mapping(index=index_name, properties={"extra": {"type": "text"}})
    assert conflict.value.body["error"]["reason"] == "mapper [extra] cannot be changed from type [long] to [text]"
    assert es.indices.delete(index=index_name).body == {"acknowledged": True}
    assert not es.indices.exists(index=index_name)
    with pytest.raises(NotFoundError) as gone:
        es.indices.delete(index=index_name)
    assert gone.value.body["error"]["type"] == "index_not_found_exception"


def test_dynamic_mapping_follows_elasticsearch(es: elasticsearch.Elasticsearch, index_name: str) -> None:
    es.index(index=index_name, id="1", document={"s": "text", "i": 5, "f": 1.5, "b": True, "d": "2024-01-31",
                                                 "o": {"x.y": "z"}, "arr": [1, 2], "nil": None})
    mapping = es.indices.get_mapping(index=index_name)[index_name]["mappings"]["properties"]
    keyword = {"keyword": {"type": "keyword", "ignore_above": 256}}
    assert mapping == {"arr": {"type": "long"}, "b": {"type": "boolean"}, "d": {"type": "date"},
                       "f": {"type": "float"}, "i": {"type": "long"},
                       "o": {"properties": {"x": {"properties": {"y": {"type": "text", "fields": keyword}}}}},
                       "s": {"type": "text", "fields": keyword}}


def test_mapping_grows_after_documents_exist(es: elasticsearch.Elasticsearch, index_name: str) -> None:
    # New fields after the first commit get new tantivy fields; older segments must stay searchable
    # and keep merging.
    for round_ in range(12):
        es.index(index=index_name, id=f"r{round_}", document={f"field{round_}": "value", "round": round_},
                 refresh=True)
    assert es.count(index=index_name)["count"] == 12
    for round_ in range(12):
        assert es.count(index=index_name, query={"term": {f"field{round_}.keyword": "value"}})["count"] == 1
    assert es.count(index=index_name, query={"range": {"round": {"gte": 6}}})["count"] == 6


def test_cluster_health_and_cat(es: elasticsearch.Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, settings={"number_of_replicas": 0})
    es.index(index=index_name, id="1", document={"a": 1}, refresh=True)
    health = es.cluster.health(index=index_name)
    assert (health["status"], health["number_of_nodes"], health["active_primary_shards"]) == ("green", 1, 1)
    assert es.cluster.health(index=index_name, wait_for_status="green")["timed_out"] is False
    text = es.cat.indices(index=index_name, v=True).body
    header, row = text.splitlines()
    assert header.split()[:3] == ["health", "status", "index"] and row.split()[:3] == ["green", "open", index_name]
    assert es.cat.count(index=index_name, format="json")[0]["count"] == "1"


def test_wrong_password_is_rejected(server: LiveServer) -> None:
    from elasticsearch import AuthenticationException, Elasticsearch
    client = Elasticsearch(server.url, ca_certs=str(server.ca), basic_auth=("admin", "wrong-password-xxxxxxxx"))
    with client, pytest.raises(AuthenticationException) as denied:
        client.info()
    assert denied.value.body["error"]["type"] == "security_exception"


def test_fingerprint_pinning_works(server: LiveServer) -> None:
    """Clients can pin the CA fingerprint printed at start instead of trusting a CA file."""
    from elasticsearch import Elasticsearch
    printed = next(line for line in server.output if "SHA-256 fingerprint" in line).split()[-1]
    with Elasticsearch(server.url, ssl_assert_fingerprint=printed, basic_auth=("admin", server.password)) as client:
        assert client.info()["tagline"] == "You Know, for Search"


def test_dynamic_settings_update(es: elasticsearch.Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, settings={"number_of_replicas": 0})
    assert es.indices.put_settings(index=index_name, settings={"index": {"refresh_interval": "-1"}})["acknowledged"]
    es.index(index=index_name, id="1", document={"a": 1})
    assert es.count(index=index_name)["count"] == 0  # Periodic refresh is off now.
    settings = es.indices.get_settings(index=index_name, flat_settings=True)[index_name]["settings"]
    assert settings["index.refresh_interval"] == "-1"
    es.indices.put_settings(index=index_name, settings={"refresh_interval": None})  # Back to the default.
    defaults = es.indices.get_settings(index=index_name, include_defaults=True, flat_settings=True)[index_name]
    assert "index.refresh_interval" not in defaults["settings"]
    assert defaults["defaults"]["index.refresh_interval"] == "1s"
    with pytest.raises(ApiError) as static:
        es.indices.put_settings(index=index_name, settings={"number_of_shards": 3})
    assert static.value.status_code == 400
    assert "Can't update non dynamic settings" in static.value.body["error"]["reason"]
