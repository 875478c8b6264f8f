"""Document and field level security, masks and purpose, through the session (in process).

One index of residents in two districts; roles see one district (document security), never the
case notes (field security), and phone, name and national ID masked. The HTTP-level proofs
(sentinels in every output, byte-identical answers for documents outside the role) are in
test_authz_live.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from argon2 import PasswordHasher

from strongroom.engine.node import Engine
from strongroom.errors import AuthorizationError, FieldSecurityError, IllegalArgumentError, StrongroomError
from strongroom.query.search_request import parse_search_request
from strongroom.security.gate import Gate
from strongroom.security.masks import Masker, first_char, last4, middle
from strongroom.security.policy import DOC_SEARCH as READ, RolePolicy
from strongroom.security.roles import parse_role
from strongroom.security.scroll import SearchContextMissingError
from strongroom.security.session import DocWrite, GetSpec, Session
from strongroom.security.users import Principal, SecurityStore

INDEX = "residents"
PUDONG, HUANGPU = "浦东新区", "黄浦区"
DOCS = {
    "p1": {"name": "张伟", "phone": "13812345678", "national_id": "310115199001011234", "district": PUDONG,
           "notes": "sentinel-alpha carried a parcel", "age": 34},
    "p2": {"name": "王芳", "phone": "13700001111", "national_id": "310115198502022345", "district": PUDONG,
           "notes": "nothing of note", "age": 39},
    "h1": {"name": "李娜", "phone": "13987654321", "national_id": "310101197703033456", "district": HUANGPU,
           "notes": "sentinel-bravo seen at the station", "age": 47},
    "h2": {"name": "赵磊", "phone": "13566667777", "national_id": "310101196604044567", "district": HUANGPU,
           "notes": "moved away", "age": 58},
}
PUDONG_ENTRY = {"names": [INDEX], "privileges": ["read", "bulk_export"], "field_security": {"grant": ["*"], "except": ["notes"]},
                "query": {"term": {"district": PUDONG}},
                "masks": {"phone": "last4", "name": "first_char", "national_id": "middle"}}
ROLES: dict[str, dict[str, Any]] = {
    "pudong": {"indices": [PUDONG_ENTRY]},
    "pudong_probe": {"indices": [{**PUDONG_ENTRY, "searchable_masked": True}]},
    "huangpu_clear": {"indices": [{"names": [INDEX], "privileges": ["read"], "query": {"term": {"district": HUANGPU}}}]},
    "purposeful": {"indices": [{"names": [INDEX], "privileges": ["read"], "require_purpose": True}]},
    "reader_writer": {"indices": [{**PUDONG_ENTRY, "privileges": ["read", "write"]}]},
    "nothing": {},
}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gate]:
    root: Path = tmp_path_factory.mktemp("authz")
    engine = Engine(root / "data")
    store = SecurityStore(root / "data", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    store.bootstrap("a long enough bootstrap passphrase")
    for name, body in ROLES.items():
        store.put_role(parse_role(name, body))
    gate = Gate(engine, store, mask_key=b"k" * 32)
    admin = gate.system_session("test")

    async def load() -> None:
        await admin.create_index(INDEX, {"number_of_shards": 2}, {"properties": {
            "district": {"type": "keyword"}, "phone": {"type": "keyword", "protect": "blind"},
            "national_id": {"type": "keyword", "protect": "blind", "blind_prefixes": [4]},
            "age": {"type": "long"}, "notes": {"type": "text", "store": True}}})
        writes = [DocWrite("index", INDEX, doc_id, doc, orjson.dumps(doc)) for doc_id, doc in DOCS.items()]
        await admin.write(writes, refresh="true")
    run(load())
    yield gate
    engine.close()


def session(gate: Gate, *roles: str, purpose: str | None = None) -> Session:
    return gate._session(Principal("u-" + "-".join(roles), roles), purpose)


def search(s: Session, body: dict[str, Any], params: dict[str, str] | None = None) -> Any:
    return run(s.search(INDEX, parse_search_request(body, params or {})))


def ids(outcome: Any) -> set[str]:
    return {hit.doc.doc_id for hit in outcome.hits}


# -- masks ----------------------------------------------------------------------------------
def test_mask_functions() -> None:
    assert last4("13812345678") == "*******5678"
    assert middle("13812345678") == "138****5678"
    assert first_char("张伟明") == "张**"
    assert last4("123") == "***" and middle("12345") == "*2345"
    masker = Masker(b"k" * 32)
    assert masker.apply("redact", "anything at all") == "[REDACTED]"
    assert masker.apply("last4", 13812345678) == "*******5678"
    assert masker.apply("last4", ["13812345678", None]) == ["*******5678", None]
    hashed = masker.apply("hash", "310115199001011234")
    assert hashed == masker.apply("hash", "310115199001011234")  # joinable
    assert hashed != Masker(b"j" * 32).apply("hash", "310115199001011234")  # keyed
    assert "310115" not in hashed


# -- document security ----------------------------------------------------------------------
def test_document_query_limits_search_count_and_aggregations(gate: Gate) -> None:
    s = session(gate, "pudong")
    out = search(s, {"query": {"match_all": {}}, "aggs": {"d": {"terms": {"field": "district"}},
                                                          "n": {"value_count": {"field": "age"}}}})
    assert ids(out) == {"p1", "p2"} and out.total == 2
    assert out.aggregations["d"]["buckets"] == [{"key": PUDONG, "doc_count": 2}]
    assert out.aggregations["n"]["value"] == 2
    assert run(s.count(INDEX, {"term": {"district": HUANGPU}}))[0] == 0
    assert run(s.count(INDEX, None))[0] == 2
    # An ids query cannot reach around the document query either.
    assert ids(search(s, {"query": {"ids": {"values": ["h1", "p1"]}}})) == {"p1"}


def test_documents_outside_the_query_read_as_missing(gate: Gate) -> None:
    s = session(gate, "pudong")
    outside = run(s.get(GetSpec(INDEX, "h1")))
    absent = run(s.get(GetSpec(INDEX, "no-such-id")))
    assert outside.doc is None and outside.source is None
    assert (outside.doc, outside.source, outside.fields) == (absent.doc, absent.source, absent.fields)
    results = run(s.mget([GetSpec(INDEX, "h1"), GetSpec(INDEX, "p1"), GetSpec(INDEX, "zzz")]))
    assert [r.doc is not None for r in results] == [False, True, False]
    # A version check must not tell an existing hidden document from a missing one.
    assert run(s.get(GetSpec(INDEX, "h1", version=99))).doc is None
    assert run(s.explain(INDEX, "h1", {"match_all": {}})) is None
    assert run(s.explain(INDEX, "p1", {"match_all": {}})) is not None


def test_a_fresh_document_is_judged_before_it_is_searchable(gate: Gate) -> None:
    admin = gate.system_session("fresh")
    doc = {"name": "钱七", "phone": "13011112222", "district": HUANGPU, "notes": "fresh"}
    run(admin.write([DocWrite("index", INDEX, "fresh-h", doc, orjson.dumps(doc))]))  # no refresh
    try:
        assert run(session(gate, "pudong").get(GetSpec(INDEX, "fresh-h"))).doc is None
        assert run(session(gate, "huangpu_clear").get(GetSpec(INDEX, "fresh-h"))).doc is not None
    finally:
        run(admin.write([DocWrite("delete", INDEX, "fresh-h")], refresh="true"))


# -- field security and masks -----------------------------------------------------------------
def test_hidden_fields_are_absent_and_masked_fields_masked_in_every_output(gate: Gate) -> None:
    s = session(gate, "pudong")
    out = search(s, {"query": {"term": {"district": PUDONG}}, "fields": ["*"], "docvalue_fields": ["phone"],
                     "stored_fields": ["notes", "_source"],
                     "aggs": {"top": {"top_hits": {"size": 5}}}, "sort": ["_doc"]})
    blob = orjson.dumps([[h.source, h.fields] for h in out.hits]).decode() + orjson.dumps(out.aggregations).decode()
    for doc in DOCS.values():
        for value in (doc["notes"], doc["phone"], doc["national_id"], doc["name"]):
            assert value not in blob
    p1 = next(h for h in out.hits if h.doc.doc_id == "p1")
    assert p1.source == {"name": "张*", "phone": "*******5678", "national_id": "310***********1234",
                         "district": PUDONG, "age": 34}
    assert p1.fields["phone"] == ["*******5678"] and "notes" not in p1.fields
    got = run(s.get(GetSpec(INDEX, "p1", stored_fields=("notes", "_source"))))
    assert got.source["phone"] == "*******5678" and "notes" not in got.source and got.fields is None


@pytest.mark.parametrize("body", [
    {"query": {"match": {"notes": "sentinel"}}},
    {"query": {"bool": {"must_not": [{"exists": {"field": "notes"}}]}}},
    {"query": {"match": {"name": "张伟"}}},
    {"query": {"term": {"phone": "13812345678"}}},
    {"query": {"prefix": {"national_id": "3101"}}},
    {"query": {"match_all": {}}, "sort": [{"phone": "asc"}]},
    {"query": {"match_all": {}}, "aggs": {"p": {"terms": {"field": "phone"}}}},
    {"query": {"match_all": {}}, "aggs": {"f": {"filter": {"match": {"notes": "x"}}}}},
    {"query": {"match_all": {}}, "aggs": {"t": {"top_hits": {"sort": [{"national_id": "asc"}]}}}},
    {"query": {"match_all": {}}, "post_filter": {"range": {"phone": {"gte": "138"}}}},
])
def test_hidden_and_masked_fields_cannot_be_queried_sorted_or_aggregated(gate: Gate, body: dict[str, Any]) -> None:
    with pytest.raises(FieldSecurityError) as caught:
        search(session(gate, "pudong"), body)
    assert caught.value.status == 403


def test_patterns_skip_fields_the_role_cannot_search(gate: Gate) -> None:
    s = session(gate, "pudong")
    for query in ({"multi_match": {"query": "sentinel-alpha"}}, {"query_string": {"query": "sentinel-alpha"}},
                  {"match": {"*": "sentinel-alpha"}}, {"simple_query_string": {"query": "parcel"}},
                  {"exists": {"field": "not*"}}):
        assert search(s, {"query": query}).total == 0, query
    assert search(session(gate, "huangpu_clear"), {"query": {"query_string": {"query": "sentinel-bravo"}}}).total == 1


def test_masked_exact_probe_only_where_the_role_allows_it(gate: Gate) -> None:
    s = session(gate, "pudong_probe")
    out = search(s, {"query": {"term": {"phone": "13812345678"}}})
    assert ids(out) == {"p1"}
    assert out.hits[0].source["phone"] == "*******5678"  # found by value, still shown masked
    assert search(s, {"query": {"terms": {"phone": ["13987654321"]}}}).total == 0  # outside the document query
    with pytest.raises(FieldSecurityError):
        search(s, {"query": {"wildcard": {"phone": "138*"}}})


def test_roles_combine_and_clear_values_only_where_the_clear_role_matches(gate: Gate) -> None:
    s = session(gate, "pudong", "huangpu_clear")
    out = search(s, {"query": {"match_all": {}}, "sort": ["_doc"], "size": 10})
    by_id = {h.doc.doc_id: h.source for h in out.hits}
    assert set(by_id) == set(DOCS)
    assert by_id["h1"]["phone"] == "13987654321" and by_id["h1"]["notes"] == DOCS["h1"]["notes"]
    assert by_id["p1"]["phone"] == "*******5678" and "notes" not in by_id["p1"]
    # Queries see each field only where it is clear: a Pudong phone cannot be probed, a Huangpu one can.
    assert search(s, {"query": {"term": {"phone": "13812345678"}}}).total == 0
    assert ids(search(s, {"query": {"term": {"phone": "13987654321"}}})) == {"h1"}
    assert ids(search(s, {"query": {"match": {"notes": "sentinel"}}})) == {"h1"}
    # must_not cannot tell a hidden value apart either: p1 stays whatever its phone is.
    out = search(s, {"query": {"bool": {"must_not": [{"term": {"phone": "13812345678"}}]}}})
    assert "p1" in ids(out)
    # Sorting reads every value: refused unless clear on every document.
    with pytest.raises(FieldSecurityError):
        search(s, {"query": {"match_all": {}}, "sort": [{"phone": "asc"}]})
    highlight = search(s, {"query": {"match": {"notes": "sentinel"}}, "highlight": {"fields": {"*": {}}}})
    assert highlight.hits[0].highlight


def test_purpose_is_required_when_a_role_says_so(gate: Gate) -> None:
    with pytest.raises(IllegalArgumentError, match="X-Strongroom-Purpose"):
        search(session(gate, "purposeful"), {"query": {"match_all": {}}})
    with pytest.raises(IllegalArgumentError, match="X-Strongroom-Purpose"):
        run(session(gate, "purposeful").get(GetSpec(INDEX, "p1")))
    assert search(session(gate, "purposeful", purpose="case 2026-0042"), {"query": {"match_all": {}}}).total == 4
    with pytest.raises(IllegalArgumentError):
        session(gate, "purposeful", purpose="x" * 300)


def test_partial_updates_are_refused_under_document_or_field_security(gate: Gate) -> None:
    s = session(gate, "reader_writer")
    results, _ = run(s.write([DocWrite("update", INDEX, "p1", update={"doc": {"age": 35}})]))
    assert isinstance(results[0].outcome, StrongroomError) and results[0].outcome.status == 400
    assert run(gate.system_session("t").get(GetSpec(INDEX, "p1"))).source["age"] == 34


def test_a_role_without_privileges_is_refused_everywhere(gate: Gate) -> None:
    s = session(gate, "nothing")
    with pytest.raises(AuthorizationError):
        search(s, {"query": {"match_all": {}}})
    with pytest.raises(AuthorizationError):
        run(s.get(GetSpec(INDEX, "p1")))
    with pytest.raises(AuthorizationError):
        run(s.count(INDEX, None))


def test_scrolls_belong_to_their_credential_and_end_when_rights_change(gate: Gate) -> None:
    mine = session(gate, "pudong")
    first = search(mine, {"query": {"match_all": {}}, "size": 1}, {"scroll": "1m"})
    assert first.total == 2
    with pytest.raises(SearchContextMissingError):  # another user: same as an unknown id
        run(session(gate, "huangpu_clear").scroll(first.scroll_id, None))
    key = gate._session(Principal("u-pudong", ("pudong",), auth="api_key", api_key_id="k1"))
    with pytest.raises(SearchContextMissingError):  # the owner's API key is another credential
        run(key.scroll(first.scroll_id, None))
    second = run(mine.scroll(first.scroll_id, None))
    assert ids(second) <= {"p1", "p2"} and second.hits[0].source["phone"].startswith("****")
    # The same name with other roles now: the scroll's view no longer matches what it may see.
    changed = gate._session(Principal("u-pudong", ("pudong", "huangpu_clear")))
    with pytest.raises(AuthorizationError):
        run(changed.scroll(first.scroll_id, None))
    with pytest.raises(AuthorizationError, match="export"):  # reading in bulk needs `bulk_export`
        search(session(gate, "huangpu_clear"), {"query": {"match_all": {}}, "size": 1}, {"scroll": "1m"})


def test_mappings_do_not_name_hidden_fields(gate: Gate) -> None:
    (view,) = run(session(gate, "pudong").get_indices(INDEX, "indices:data/read/search"))
    assert "notes" not in view.mappings["properties"] and "phone" in view.mappings["properties"]
    (full,) = run(session(gate, "huangpu_clear").get_indices(INDEX, "indices:data/read/search"))
    assert "notes" in full.mappings["properties"]


def test_a_changed_role_is_used_at_the_next_request() -> None:
    """Grants are kept per role object (policy.RolePolicy): a role put again, or deleted, counts at once."""
    roles: dict[str, Any] = {"r": parse_role("r", {"indices": [{"names": ["a"], "privileges": ["read"]}]})}
    policy = RolePolicy(roles.get)
    who = Principal("u", ("r",))
    assert policy.authorize_index(who, READ, "a").index == "a"
    assert policy.authorize_index(who, READ, "a") is policy.authorize_index(who, READ, "a")  # kept
    with pytest.raises(AuthorizationError):
        policy.authorize_index(who, READ, "b")
    roles["r"] = parse_role("r", {"indices": [{"names": ["b"], "privileges": ["read"], "query": {"term": {"x": 1}}}]})
    with pytest.raises(AuthorizationError):
        policy.authorize_index(who, READ, "a")
    grant = policy.authorize_index(who, READ, "b")
    assert not grant.unrestricted
    del roles["r"]
    with pytest.raises(AuthorizationError):
        policy.authorize_index(who, READ, "b")
