"""Authorization over HTTP, on a real server: the issue's proofs.

1. Inventory: every route and method, called by an identity whose role grants nothing, is a 403
   (or, for calls that only touch the caller's own objects, reveals nothing).
2. Sentinels: a reader under document and field security calls every output path; no response
   body or header holds a hidden or masked sentinel value in raw, digits-only, separated or base64
   form.
3. BOLA: documents outside the reader's document query, asked by id, by `ids` query, by `_mget`,
   by `_explain`, or through another identity's scroll id, answer byte-identically to a
   nonexistent id.
4. Escalation: a read identity cannot delete, write, change mappings or settings, create indices,
   and the state is unchanged afterwards.
"""

from __future__ import annotations

import base64
import re
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from live import PASSWORD, LiveServer, start_server
from strongroom.api.app import build_router
from strongroom.api.router import Route
from strongroom.security.roles import parse_role
from strongroom.security.users import SecurityStore

INDEX = "strongroom-example"  # the router's example index name: every route's example path hits it
READER_PASSWORD = "reader passphrase that is long enough"
EMPTY_PASSWORD = "empty passphrase that is long enough"
OTHER_PASSWORD = "other passphrase that is long enough"
PUDONG, HUANGPU = "浦东新区", "黄浦区"
# Values that must never reach the reader: hidden notes, clear values of masked fields, and the whole
# records outside its document query.
SENTINEL_NOTES = "qzxv-sentinel-notes-7731"
SENTINEL_PHONE = "13912340987"
SENTINEL_ID = "310115199912319876"
SENTINEL_NAME = "欧阳娜娜"
OUTSIDE_PHONE = "13655554444"
OUTSIDE_NAME = "司马相如"
SENTINELS = [SENTINEL_NOTES, SENTINEL_PHONE, SENTINEL_ID, SENTINEL_NAME, OUTSIDE_PHONE, OUTSIDE_NAME]
DOCS = {
    "1": {"name": SENTINEL_NAME, "phone": SENTINEL_PHONE, "national_id": SENTINEL_ID, "district": PUDONG,
          "notes": SENTINEL_NOTES + " met the courier", "age": 31},
    "2": {"name": "张三", "phone": "13800000002", "national_id": "310115198001010002", "district": PUDONG,
          "notes": "courier notes", "age": 44},
    "9": {"name": OUTSIDE_NAME, "phone": OUTSIDE_PHONE, "national_id": "310101197001019999", "district": HUANGPU,
          "notes": "outside courier record", "age": 52},
}
ROLES = {
    "reader": {"cluster": ["monitor"], "indices": [{
        "names": [INDEX], "privileges": ["read", "view_index_metadata", "bulk_export"],
        "field_security": {"grant": ["*"], "except": ["notes"]}, "query": {"term": {"district": PUDONG}},
        "masks": {"phone": "last4", "national_id": "middle", "name": "first_char"}}]},
    "other_reader": {"indices": [{"names": [INDEX], "privileges": ["read", "bulk_export"]}]},
    "empty": {},
}


def _auth(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root: Path = tmp_path_factory.mktemp("authz-live")
    store = SecurityStore(root / "data")
    store.bootstrap(PASSWORD)
    for name, body in ROLES.items():
        store.put_role(parse_role(name, body))
    for user, password, role in (("reader", READER_PASSWORD, "reader"), ("empty", EMPTY_PASSWORD, "empty"),
                                 ("other", OTHER_PASSWORD, "other_reader")):
        store.put_user(user, password=password, password_hash=None, roles=[role], full_name=None, email=None,
                       metadata={}, enabled=True)
    server = start_server(root / "data", root / "config")
    with server.client() as es:
        es.indices.create(index=INDEX, settings={"number_of_shards": 2}, mappings={"properties": {
            "district": {"type": "keyword"}, "phone": {"type": "keyword", "store": True, "protect": "blind"},
            "national_id": {"type": "keyword", "protect": "blind"}, "notes": {"type": "text", "store": True}, "age": {"type": "long"},
            "name": {"type": "text", "fields": {"raw": {"type": "keyword"}}}}})
        for doc_id, doc in DOCS.items():
            es.index(index=INDEX, id=doc_id, document=doc)
        es.indices.refresh(index=INDEX)
    yield server
    server.stop()


def client(live: LiveServer, user: str, password: str) -> httpx.Client:
    return httpx.Client(base_url=live.url, verify=ssl.create_default_context(cafile=live.ca), timeout=30,
                        headers=_auth(user, password))


@pytest.fixture(scope="module")
def reader(live: LiveServer) -> Iterator[httpx.Client]:
    with client(live, "reader", READER_PASSWORD) as http:
        yield http


@pytest.fixture(scope="module")
def admin(live: LiveServer) -> Iterator[httpx.Client]:
    with client(live, "admin", PASSWORD) as http:
        yield http


# -- 1. inventory ---------------------------------------------------------------------------
# Calls that act only on the caller's own objects: allowed to anyone authenticated, and they show
# nothing of anyone else (an unknown scroll or point-in-time id is a 404 for everyone).
SELF_SERVICE = {"GET /_search/scroll", "GET /_search/scroll/{scroll_id}", "POST /_search/scroll",
                "POST /_search/scroll/{scroll_id}", "DELETE /_search/scroll", "DELETE /_search/scroll/{scroll_id}",
                "DELETE /_pit", "GET /_security/_authenticate", "PUT /_security/user/_password",
                "POST /_security/user/_password", "GET /_strongroom/usage"}
BODIES = {"_mget": b'{"docs": [{"_index": "%s", "_id": "1"}]}' % INDEX.encode(),
          "_bulk": b'{"index": {"_index": "%s", "_id": "x"}}\n{"a": 1}\n' % INDEX.encode(),
          "_update/": b'{"doc": {"a": 1}}', "_explain": b'{"query": {"match_all": {}}}',
          "_by_query": b'{"query": {"match_all": {}}}',
          "_msearch": b'{}\n{"query": {"match_all": {}}}\n', "_search/scroll": b'{"scroll_id": "c2Nyb2xs"}',
          "_pit": b'{"id": "c2Nyb2xs"}', "_password": b'{"password": "too short"}',  # a refused change keeps the identity usable
          "_analyze": b'{"text": "x"}', "/_security/api_key": b'{"ids": ["someone-elses-key"]}'}


def _body(route: Route) -> bytes:
    for suffix, body in BODIES.items():
        if suffix in str(route):
            return body
    return b"{}"


@pytest.fixture(scope="module")
def nobody(live: LiveServer) -> Iterator[httpx.Client]:
    with client(live, "empty", EMPTY_PASSWORD) as http:
        yield http


@pytest.mark.parametrize("route", build_router().routes, ids=str)
def test_every_route_refuses_an_identity_without_privileges(nobody: httpx.Client, route: Route) -> None:
    path = route.example_path + ("?keep_alive=1m" if route.pattern.endswith("/_pit") else "")
    response = nobody.request(route.method, path, content=_body(route),
                              headers={"Content-Type": "application/x-ndjson" if "_bulk" in str(route)
                                       or "_msearch" in str(route) else "application/json"})
    text = response.text
    for sentinel in SENTINELS:
        assert sentinel not in text
    if str(route) in SELF_SERVICE:
        assert response.status_code in (200, 400, 404), text[:300]
        return
    if route.pattern.endswith(("_bulk", "_msearch", "_mget")) and response.status_code == 200:
        # Multi-item calls answer 200 with one error per item, as Elasticsearch does.
        body = response.json()
        if "_bulk" in route.pattern:
            statuses = [next(iter(i.values()))["status"] for i in body["items"]]
        elif "_mget" in route.pattern:
            statuses = [d["error"]["type"] == "security_exception" and 403 for d in body["docs"]]
        else:
            statuses = [i["status"] for i in body["responses"]]
        assert statuses and all(s == 403 for s in statuses), text[:300]
        return
    assert response.status_code == 403, f"{route}: {response.status_code} {text[:300]}"


# -- 2. sentinels ---------------------------------------------------------------------------
def _forms(value: str) -> list[str]:
    digits = re.sub(r"\D", "", value)
    forms = [value, base64.b64encode(value.encode()).decode().rstrip("=")]
    if len(digits) >= 6:
        forms += [digits, " ".join(digits), "-".join(digits), digits[:3] + " " + digits[3:7] + " " + digits[7:]]
    return forms


def _assert_clean(response: httpx.Response, what: str) -> None:
    text = response.text + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    squeezed = re.sub(r"\s", "", text)
    for sentinel in SENTINELS:
        for form in _forms(sentinel):
            assert form not in text and form.replace(" ", "") not in squeezed or not form.strip(), \
                f"{what} leaked {sentinel!r} as {form!r}"


OUTPUT_CALLS: list[tuple[str, str, Any]] = [
    ("POST", f"/{INDEX}/_search", {"query": {"match_all": {}}, "fields": ["*"], "docvalue_fields": ["phone", "age"],
                                   "stored_fields": ["phone", "notes", "_source"], "version": True}),
    ("POST", f"/{INDEX}/_search", {"query": {"match_all": {}}, "highlight": {"fields": {"*": {}}}}),
    ("POST", f"/{INDEX}/_search", {"query": {"query_string": {"query": "courier"}},
                                   "highlight": {"fields": {"*": {}}}}),
    ("POST", f"/{INDEX}/_search", {"query": {"match_all": {}}, "sort": [{"age": "desc"}, "_doc"],
                                   "search_after": [100, 0]}),
    ("POST", f"/{INDEX}/_search", {"size": 0, "aggs": {
        "d": {"terms": {"field": "district"}, "aggs": {"top": {"top_hits": {"size": 5}}}},
        "a": {"stats": {"field": "age"}}, "h": {"histogram": {"field": "age", "interval": 10}}}}),
    ("POST", f"/{INDEX}/_search?scroll=1m", {"size": 1, "query": {"match_all": {}}}),
    ("POST", f"/{INDEX}/_count", {"query": {"match_all": {}}}),
    ("POST", f"/{INDEX}/_count", {"query": {"ids": {"values": ["9"]}}}),
    ("GET", f"/{INDEX}/_doc/1", None),
    ("GET", f"/{INDEX}/_doc/1?stored_fields=phone,notes", None),
    ("GET", f"/{INDEX}/_source/1", None),
    ("GET", f"/{INDEX}/_doc/9", None),
    ("POST", f"/{INDEX}/_mget", {"ids": ["1", "2", "9"]}),
    ("POST", "/_mget", {"docs": [{"_index": INDEX, "_id": "1", "stored_fields": ["notes", "phone"]}]}),
    ("POST", f"/{INDEX}/_explain/1", {"query": {"match": {"district": PUDONG}}}),
    ("POST", f"/{INDEX}/_explain/9", {"query": {"match_all": {}}}),
    ("GET", f"/{INDEX}/_mapping", None),
    ("GET", f"/{INDEX}", None),
    # Errors must not echo stored values either.
    ("POST", f"/{INDEX}/_search", {"query": {"term": {"phone": SENTINEL_PHONE[:5]}}}),
    ("POST", f"/{INDEX}/_search", {"query": {"match": {"notes": "courier"}}}),
    ("POST", f"/{INDEX}/_search", {"query": {"match_all": {}}, "sort": [{"phone": "asc"}]}),
]


def test_no_output_path_shows_a_hidden_or_masked_value(reader: httpx.Client) -> None:
    for method, path, body in OUTPUT_CALLS:
        response = reader.request(method, path, content=orjson.dumps(body) if body is not None else None,
                                  headers={"Content-Type": "application/json"})
        assert response.status_code < 500, (path, response.text[:300])
        _assert_clean(response, f"{method} {path} {body}")
        if path.endswith("scroll=1m"):
            scroll_id = response.json()["_scroll_id"]
            page = reader.post("/_search/scroll", json={"scroll": "1m", "scroll_id": scroll_id})
            assert page.status_code == 200 and page.json()["hits"]["hits"]
            _assert_clean(page, "scroll page")
    msearch = reader.post("/_msearch", content=b'{"index": "%s"}\n{"query": {"match_all": {}}}\n' % INDEX.encode(),
                          headers={"Content-Type": "application/x-ndjson"})
    assert msearch.status_code == 200
    _assert_clean(msearch, "_msearch")


def test_the_reader_sees_masked_values_and_its_district_only(reader: httpx.Client) -> None:
    hits = reader.post(f"/{INDEX}/_search", json={"query": {"match_all": {}}, "sort": ["_doc"]}).json()["hits"]
    assert hits["total"]["value"] == 2
    one = next(h for h in hits["hits"] if h["_id"] == "1")["_source"]
    assert one == {"name": "欧***", "phone": "*******0987", "national_id": "310***********9876",
                   "district": PUDONG, "age": 31}
    mapping = reader.get(f"/{INDEX}/_mapping").json()[INDEX]["mappings"]["properties"]
    assert "notes" not in mapping and "phone" in mapping


# -- 3. BOLA --------------------------------------------------------------------------------
def test_documents_outside_the_role_answer_like_nonexistent_ones(live: LiveServer, reader: httpx.Client) -> None:
    pairs = [("GET", f"/{INDEX}/_doc/9", f"/{INDEX}/_doc/404"),
             ("HEAD", f"/{INDEX}/_doc/9", f"/{INDEX}/_doc/404"),
             ("GET", f"/{INDEX}/_source/9", f"/{INDEX}/_source/404"),
             ("GET", f"/{INDEX}/_doc/9?version=1", f"/{INDEX}/_doc/404?version=1"),
             ("POST", f"/{INDEX}/_explain/9", f"/{INDEX}/_explain/404")]
    for method, outside, missing in pairs:
        a = reader.request(method, outside, json={"query": {"match_all": {}}} if "explain" in outside else None)
        b = reader.request(method, missing, json={"query": {"match_all": {}}} if "explain" in missing else None)
        same = a.content.replace(b'"9"', b'"404"').replace(b"/[9]", b"/[404]")
        assert (a.status_code, same, a.headers.get("content-type")) == (b.status_code, b.content,
                                                                        b.headers.get("content-type")), outside
    mget = reader.post(f"/{INDEX}/_mget", json={"ids": ["9", "404"]}).json()["docs"]
    assert {k: v for k, v in mget[0].items() if k != "_id"} == {k: v for k, v in mget[1].items() if k != "_id"}
    by_ids = reader.post(f"/{INDEX}/_search", json={"query": {"ids": {"values": ["9"]}}}).json()
    assert by_ids["hits"]["total"]["value"] == 0 and by_ids["hits"]["hits"] == []
    # Another identity's scroll id reads exactly like an unknown one.
    with client(live, "other", OTHER_PASSWORD) as other:
        theirs = other.post(f"/{INDEX}/_search?scroll=1m", json={"size": 1}).json()["_scroll_id"]
    unknown = base64.urlsafe_b64encode(b"\0" * 24).decode()
    a = reader.post("/_search/scroll", json={"scroll_id": theirs})
    b = reader.post("/_search/scroll", json={"scroll_id": unknown})
    assert a.status_code == b.status_code == 404
    assert a.json()["error"]["type"] == b.json()["error"]["type"]
    assert theirs[:64] not in b.text and a.content.replace(theirs[:64].encode(), unknown[:64].encode()) == b.content


# -- 4. escalation --------------------------------------------------------------------------
def test_a_reader_cannot_change_or_destroy_anything(reader: httpx.Client, admin: httpx.Client) -> None:
    before = admin.get(f"/{INDEX}/_mapping").content, admin.post(f"/{INDEX}/_count").json()["count"]
    attempts = [("DELETE", f"/{INDEX}", None), ("PUT", f"/{INDEX}/_mapping", {"properties": {"x": {"type": "text"}}}),
                ("PUT", f"/{INDEX}/_settings", {"index": {"number_of_replicas": 0}}),
                ("PUT", f"/{INDEX}/_doc/1", {"name": "x"}), ("DELETE", f"/{INDEX}/_doc/1", None),
                ("POST", f"/{INDEX}/_update/1", {"doc": {"phone": "0"}}),
                ("POST", f"/{INDEX}/_delete_by_query", {"query": {"match_all": {}}}),
                ("POST", f"/{INDEX}/_update_by_query", {"query": {"match_all": {}}}),
                ("PUT", "/another-index", None), ("PUT", "/_security/role/reader", {"indices": []}),
                ("PUT", "/_security/user/reader", {"roles": ["superuser"]})]
    for method, path, body in attempts:
        response = reader.request(method, path, json=body)
        assert response.status_code == 403, (method, path, response.status_code, response.text[:200])
    bulk = reader.post("/_bulk", content=b'{"delete": {"_index": "%s", "_id": "1"}}\n' % INDEX.encode(),
                       headers={"Content-Type": "application/x-ndjson"}).json()
    assert bulk["items"][0]["delete"]["status"] == 403
    assert (admin.get(f"/{INDEX}/_mapping").content, admin.post(f"/{INDEX}/_count").json()["count"]) == before
    assert admin.head("/another-index").status_code == 404


def test_purpose_header_reaches_the_session(live: LiveServer, admin: httpx.Client) -> None:
    response = admin.get("/", headers={"X-Strongroom-Purpose": "x" * 300})
    assert response.status_code == 400 and "X-Strongroom-Purpose" in response.text
