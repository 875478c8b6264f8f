"""Bad input gets the right 4xx in Elasticsearch's error shape; the server keeps serving and stored
data is unchanged."""

from __future__ import annotations

import gzip
import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from live import LiveServer, start_server

LIMIT = 1024 * 1024
INDEX = "records"
JSON = {"Content-Type": "application/json"}
NDJSON = {"Content-Type": "application/x-ndjson"}


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("bad-input")
    (root / "config").mkdir(mode=0o700)
    (root / "config" / "strongroom.toml").write_text(f"[http]\nmax_content_length = {LIMIT}\n")
    live = start_server(root / "data", root / "config")
    yield live
    live.stop()


@pytest.fixture(scope="module")
def http(small_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=small_server.url, verify=ssl.create_default_context(cafile=small_server.ca),
                      auth=("admin", small_server.password), timeout=60) as client:
        created = client.put(f"/{INDEX}", json={"mappings": {"properties": {
            "n": {"type": "integer"}, "name": {"type": "text"}, "born": {"type": "date"}}}})
        assert created.status_code == 200, created.text
        for i in range(20):
            client.put(f"/{INDEX}/_doc/s{i}", json={"n": i, "name": f"sentinel {i}", "born": "2000-01-01"})
        client.post(f"/{INDEX}/_refresh")
        yield client


def snapshot(http: httpx.Client) -> dict[str, Any]:
    docs = http.post(f"/{INDEX}/_mget", json={"ids": [f"s{i}" for i in range(20)] + ["x", "y1", "y2"]}).json()
    return {"count": http.post(f"/{INDEX}/_count").json()["count"],
            "docs": docs, "mapping": http.get(f"/{INDEX}/_mapping").json(),
            "indices": sorted(line.split()[2] for line in http.get("/_cat/indices").text.splitlines())}


def deep(n: int, leaf: str = "1") -> bytes:
    return ('{"a":' * n + leaf + "}" * n).encode()


def deep_bool(n: int) -> bytes:
    return ('{"query":' + '{"bool":{"must":' * n + '{"match_all":{}}' + "}}" * n + "}").encode()


@dataclass
class Case:
    name: str
    method: str
    path: str
    body: bytes | None
    status: int
    error_type: str | None
    headers: dict[str, str] | None = None


BIG = b'{"name":"' + b"x" * (LIMIT + 10) + b'"}'
BOMB = gzip.compress(b'{"name":"' + b"0" * (50 * LIMIT) + b'"}')

CASES = [
    Case("malformed json", "PUT", f"/{INDEX}/_doc/x", b'{"n":', 400, "mapper_parsing_exception"),
    Case("trailing garbage", "PUT", f"/{INDEX}/_doc/x", b'{"n":1} xyz', 400, "mapper_parsing_exception"),
    Case("not an object", "PUT", f"/{INDEX}/_doc/x", b'[1,2]', 400, "mapper_parsing_exception"),
    Case("empty body", "PUT", f"/{INDEX}/_doc/x", b"", 400, "action_request_validation_exception"),
    Case("arrays nested 10000 deep", "PUT", f"/{INDEX}/_doc/x", b"[" * 10000 + b"]" * 10000, 400,
         "mapper_parsing_exception"),
    Case("objects nested 10000 deep", "PUT", f"/{INDEX}/_doc/x", deep(10000), 400, "mapper_parsing_exception"),
    Case("objects nested 500 deep", "PUT", f"/{INDEX}/_doc/x", deep(500), 400, "mapper_parsing_exception"),
    Case("query nested 10000 deep", "POST", f"/{INDEX}/_count", deep_bool(10000), 400, None),
    Case("query nested 100 deep", "POST", f"/{INDEX}/_count", deep_bool(100), 400, "parsing_exception"),
    Case("5000-digit number", "PUT", f"/{INDEX}/_doc/x", b'{"n":' + b"9" * 5000 + b"}", 400,
         "mapper_parsing_exception"),
    Case("5000-digit number in a query", "POST", f"/{INDEX}/_count",
         b'{"query":{"term":{"n":' + b"9" * 5000 + b"}}}", 400, None),
    Case("out of range integer", "PUT", f"/{INDEX}/_doc/x", b'{"n":3000000000}', 400, "mapper_parsing_exception"),
    Case("NaN literal", "PUT", f"/{INDEX}/_doc/x", b'{"n":NaN}', 400, "mapper_parsing_exception"),
    Case("duplicate keys", "PUT", f"/{INDEX}/_doc/x", b'{"n":1,"n":2}', 400, "mapper_parsing_exception"),
    Case("duplicate nested keys", "PUT", f"/{INDEX}/_doc/x", b'{"o":{"k":1,"k":2}}', 400,
         "mapper_parsing_exception"),
    Case("duplicate keys in a query", "POST", f"/{INDEX}/_count", b'{"query":{"match_all":{}},"query":{}}', 400,
         "x_content_parse_exception"),
    Case("invalid utf-8", "PUT", f"/{INDEX}/_doc/x", b'{"name":"\xff\xfe"}', 400, "mapper_parsing_exception"),
    Case("lone surrogate escape", "PUT", f"/{INDEX}/_doc/x", b'{"name":"\\ud800"}', 400,
         "mapper_parsing_exception"),
    Case("invalid utf-8 in the path", "GET", f"/{INDEX}/_doc/%ff%fe", None, 400, "parsing_exception"),
    Case("wrong type for a field", "PUT", f"/{INDEX}/_doc/x", b'{"n":"abc"}', 400, "mapper_parsing_exception"),
    Case("object for a leaf field", "PUT", f"/{INDEX}/_doc/x", b'{"n":{"v":1}}', 400, "mapper_parsing_exception"),
    Case("bad date", "PUT", f"/{INDEX}/_doc/x", b'{"born":"2024-02-30"}', 400, "mapper_parsing_exception"),
    Case("metadata field in a document", "PUT", f"/{INDEX}/_doc/x", b'{"_id":"y"}', 400,
         "mapper_parsing_exception"),
    Case("empty field name", "PUT", f"/{INDEX}/_doc/x", b'{"":1}', 400, "mapper_parsing_exception"),
    Case("2000 new fields", "PUT", f"/{INDEX}/_doc/x",
         json.dumps({f"f{i}": i for i in range(2000)}).encode(), 400, "illegal_argument_exception"),
    Case("id too long", "PUT", f"/{INDEX}/_doc/" + "i" * 600, b'{"n":1}', 400,
         "action_request_validation_exception"),
    Case("body over the limit", "PUT", f"/{INDEX}/_doc/x", BIG, 413, "content_too_long_exception"),
    Case("gzip bomb", "PUT", f"/{INDEX}/_doc/x", BOMB, 413, "content_too_long_exception",
         {"Content-Encoding": "gzip", "Content-Type": "application/json"}),
    Case("corrupt gzip", "PUT", f"/{INDEX}/_doc/x", b"\x1f\x8b\x08\x00garbage", 400, "parsing_exception",
         {"Content-Encoding": "gzip", "Content-Type": "application/json"}),
    Case("unsupported content type", "PUT", f"/{INDEX}/_doc/x", b'{"n":1}', 406, "media_type_header_exception",
         {"Content-Type": "application/x-www-form-urlencoded"}),
    Case("unknown url parameter", "PUT", f"/{INDEX}/_doc/x?colour=red", b'{"n":1}', 400,
         "illegal_argument_exception"),
    Case("bad integer parameter", "PUT", f"/{INDEX}/_doc/x?if_seq_no=abc&if_primary_term=1", b'{"n":1}', 400,
         "illegal_argument_exception"),
    Case("bad refresh value", "PUT", f"/{INDEX}/_doc/x?refresh=sometimes", b'{"n":1}', 400,
         "illegal_argument_exception"),
    Case("invalid index name", "PUT", "/Records", b"{}", 400, "invalid_index_name_exception"),
    Case("unknown query", "POST", f"/{INDEX}/_count", b'{"query":{"smell":{}}}', 400, "parsing_exception"),
    Case("unknown create key", "PUT", "/other", b'{"colour":{}}', 400, "parsing_exception"),
    Case("unknown setting", "PUT", "/other", b'{"settings":{"colour":"red"}}', 400, "illegal_argument_exception"),
    Case("unknown field type", "PUT", "/other2", b'{"mappings":{"properties":{"a":{"type":"colour"}}}}', 400,
         "mapper_parsing_exception"),
    Case("update with a script", "POST", f"/{INDEX}/_update/s1", b'{"script":"ctx._source.n = 0"}', 400,
         "parsing_exception"),
    Case("update body not an object", "POST", f"/{INDEX}/_update/s1", b'[1]', 400, "parsing_exception"),
    Case("mget without ids", "POST", f"/{INDEX}/_mget", b'{"docs":[{}]}', 400, "action_request_validation_exception"),
    Case("delete all indices", "DELETE", "/_all", None, 400, None),
    # Broken bulk framing: nothing applied, including the valid items before the break.
    Case("bulk without final newline", "POST", f"/{INDEX}/_bulk",
         b'{"index":{"_id":"y1"}}\n{"n":1}\n{"index":{"_id":"y2"}}\n{"n":2}', 400, "illegal_argument_exception"),
    Case("bulk action not json", "POST", f"/{INDEX}/_bulk", b'{"index":{"_id":"y1"}}\n{"n":1}\n{"index":\n', 400,
         "illegal_argument_exception"),
    Case("bulk unknown action", "POST", f"/{INDEX}/_bulk", b'{"index":{"_id":"y1"}}\n{"n":1}\n{"upsert":{}}\n{}\n',
         400, "illegal_argument_exception"),
    Case("bulk unknown metadata", "POST", f"/{INDEX}/_bulk",
         b'{"index":{"_id":"y1"}}\n{"n":1}\n{"index":{"_id":"y2","colour":1}}\n{"n":2}\n', 400,
         "illegal_argument_exception"),
    Case("bulk missing source", "POST", f"/{INDEX}/_bulk", b'{"index":{"_id":"y1"}}\n{"n":1}\n{"index":{}}\n', 400,
         "illegal_argument_exception"),
    Case("bulk broken update body", "POST", f"/{INDEX}/_bulk",
         b'{"index":{"_id":"y1"}}\n{"n":1}\n{"update":{"_id":"s1"}}\n{"doc":\n', 400, "x_content_parse_exception"),
    Case("bulk action with two keys", "POST", f"/{INDEX}/_bulk",
         b'{"index":{"_id":"y1"},"delete":{}}\n{"n":1}\n', 400, "illegal_argument_exception"),
    Case("bulk empty", "POST", f"/{INDEX}/_bulk", b"\n\n", 400, "action_request_validation_exception"),
    Case("bulk duplicate keys in action", "POST", f"/{INDEX}/_bulk",
         b'{"index":{"_id":"y1","_id":"y2"}}\n{"n":1}\n', 400, "illegal_argument_exception"),
]
DEPTH_30 = {"mappings": {}}
_node: dict[str, Any] = DEPTH_30["mappings"]
for _level in range(30):
    _node["properties"] = {"a": {}}
    _node = _node["properties"]["a"]
_node["type"] = "long"
CASES += [
    Case("mapping deeper than 20", "PUT", "/other3", json.dumps(DEPTH_30).encode(), 400, "mapper_parsing_exception"),
    Case("mapping with 2000 fields", "PUT", "/other4", json.dumps(
        {"mappings": {"properties": {f"f{i}": {"type": "long"} for i in range(2000)}}}).encode(), 400,
        "illegal_argument_exception"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input_is_refused_and_changes_nothing(case: Case, http: httpx.Client) -> None:
    before = snapshot(http)
    headers = case.headers or (NDJSON if "_bulk" in case.path else JSON)
    response = http.request(case.method, case.path, content=case.body, headers=headers)
    assert response.status_code == case.status, response.text[:500]
    body = response.json()
    assert body["status"] == case.status
    assert isinstance(body["error"]["reason"], str) and body["error"]["root_cause"]
    if case.error_type:
        assert body["error"]["type"] == case.error_type, body
    assert http.get("/").status_code == 200  # Still serving.
    http.post(f"/{INDEX}/_refresh")
    assert snapshot(http) == before  # Nothing stored changed, no index appeared.


def test_error_messages_do_not_echo_document_values(http: httpx.Client) -> None:
    secret = "110105194912310021"
    response = http.put(f"/{INDEX}/_doc/x", json={"n": secret + "abc"})
    assert response.status_code == 400
    assert secret not in response.text


def test_many_bad_requests_in_a_row_leave_the_server_healthy(http: httpx.Client) -> None:
    for i in range(200):
        http.put(f"/{INDEX}/_doc/x", content=b'{"n":' + b"[" * (i % 50), headers=JSON)
    assert http.get("/").status_code == 200
    assert http.post(f"/{INDEX}/_count").json()["count"] == 20


def test_deeply_nested_arrays_flatten_like_elasticsearch(http: httpx.Client) -> None:
    # Arrays do not count toward the mapping depth limit: [[[…1…]]] is the value 1 (up to JSON's 1024 levels).
    body = b"{\"n\":" + b"[" * 500 + b"777" + b"]" * 500 + b"}"
    assert http.put(f"/{INDEX}/_doc/nested", content=body, headers=JSON).status_code == 201
    http.post(f"/{INDEX}/_refresh")
    assert http.post(f"/{INDEX}/_count", json={"query": {"term": {"n": 777}}}).json()["count"] == 1
    assert http.delete(f"/{INDEX}/_doc/nested").status_code == 200
    http.post(f"/{INDEX}/_refresh")
