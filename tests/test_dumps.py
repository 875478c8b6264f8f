"""Query shapes (security/shapes.py) and the dump detector (security/dumps.py)."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.security.dumps import DetectorSettings, DumpDetector, Finding, Observation
from strongroom.security.shapes import KINDS, Shape, describe

KEY = b"test-shape-key"


def hasher(field: str, value: str) -> str:
    return hmac.new(KEY, f"{field}\x00{value}".encode(), hashlib.sha256).hexdigest()[:24]


def shape(query: Any) -> Shape:
    return describe(query, hasher)


# -- shapes: no plaintext -------------------------------------------------------------------
S = "ZQsecret"  # Every string literal below contains it; no hash (hex) or parameter can.
N = 7351982461  # Numeric sentinel.

SENTINEL_QUERIES: dict[str, Any] = {
    "term short": {"term": {"national_id": f"{S}110101199001011234"}},
    "term long": {"term": {"national_id": {"value": f"{S}1", "boost": 2, "case_insensitive": True}}},
    "term number": {"term": {"age": N}},
    "terms": {"terms": {"city": [f"{S}a", f"{S}b", N], "boost": 1.5}},
    "terms lookup": {"terms": {"city": {"index": f"{S}idx", "id": f"{S}doc", "path": "cities"}}},
    "match short": {"match": {"name": f"{S} wei"}},
    "match long": {"match": {"name": {"query": f"{S} wei", "operator": "and", "fuzziness": "AUTO"}}},
    "match_phrase": {"match_phrase": {"address": {"query": f"{S} road", "slop": 2}}},
    "match_phrase_prefix": {"match_phrase_prefix": {"name": f"{S} zh"}},
    "match_bool_prefix": {"match_bool_prefix": {"name": {"query": f"{S} zh", "operator": "or"}}},
    "multi_match": {"multi_match": {"query": f"{S} zhang", "fields": ["name^2", "alias"], "type": "phrase"}},
    "prefix": {"prefix": {"phone": f"{S}138"}},
    "prefix long": {"prefix": {"phone": {"value": f"{S}138", "case_insensitive": False}}},
    "wildcard": {"wildcard": {"phone": {"wildcard": f"{S}13?8*"}}},
    "wildcard value": {"wildcard": {"phone": {"value": f"{S}13?8*", "boost": 3}}},
    "regexp": {"regexp": {"phone": {"value": f"{S}13[0-9]+", "flags": "ALL"}}},
    "fuzzy": {"fuzzy": {"name": {"value": f"{S}zang", "fuzziness": 2}}},
    "range": {"range": {"born": {"gte": f"{S}1990", "lt": N, "format": "yyyy-MM-dd"}}},
    "range from to": {"range": {"born": {"from": f"{S}1", "to": f"{S}2", "include_lower": False}}},
    "ids": {"ids": {"values": [f"{S}id1", N]}},
    "query_string": {"query_string": {"query": f"national_id:{S}1101* AND name:{S}x", "default_operator": "AND"}},
    "query_string bad syntax": {"query_string": {"query": f"name:({S}((", "default_field": "name"}},
    "simple_query_string": {"simple_query_string": {"query": f"{S}zhang -{S}wei", "fields": ["name"]}},
    "more_like_this": {"more_like_this": {"fields": ["bio"], "like": [f"{S} text", {"_id": f"{S}7"}]}},
    "nested bool": {"bool": {"must": [{"term": {"a": f"{S}1"}}, {"bool": {"should": [
        {"prefix": {"b": f"{S}2"}}, {"range": {"c": {"lte": f"{S}3"}}}], "minimum_should_match": 1}}],
        "filter": {"constant_score": {"filter": {"terms": {"d": [f"{S}4"]}}, "boost": 2}},
        "must_not": {"dis_max": {"queries": [{"match": {"e": f"{S}5"}}], "tie_breaker": 0.3}}}},
    "boosting": {"boosting": {"positive": {"term": {"a": f"{S}1"}}, "negative": {"term": {"b": N}},
                              "negative_boost": 0.5}},
    "function_score": {"function_score": {"query": {"match": {"a": f"{S}1"}}, "functions": [
        {"filter": {"term": {"b": f"{S}2"}}, "weight": 2}, {"gauss": {"born": {"origin": f"{S}3"}}}]}},
    "nested": {"nested": {"path": "people", "query": {"term": {"people.name": f"{S}1"}}, "score_mode": "avg"}},
    "unknown type": {"geo_distance": {"distance": f"{S}10km", "pin": {"lat": N, "lon": f"{S}3"}}},
    "unknown type inside bool": {"bool": {"filter": [{"percolate": {"document": {"x": f"{S}1", "n": [N]}}}]}},
    "unknown value under field": {"term": {"a": {"value": {"deep": [f"{S}1"]}}}},
    "invalid multi-key": {"term": {"a": f"{S}1"}, "prefix": {"b": f"{S}2"}},
    "top-level scalar": f"{S}bare",
    "top-level list": [{"term": {"a": f"{S}1"}}, N],
    "parameter smuggling": {"term": {"a": {"value": "x", "_name": f"{S}110101199001011234"}}},
    "boost smuggling": {"bool": {"boost": f"{S}", "must": [{"term": {"a": "x"}}]}},
}


def plaintext_in(found: Shape) -> list[str]:
    text = repr(found) + json.dumps(found.sanitized)
    return [s for s in (S, str(N)) if s in text]


@pytest.mark.parametrize("query", SENTINEL_QUERIES.values(), ids=list(SENTINEL_QUERIES))
def test_shape_holds_no_plaintext_literal(query: Any) -> None:
    found = shape(query)
    assert plaintext_in(found) == []
    assert found.literals, "every sentinel query has at least one literal"
    assert all(lit.kind in KINDS and lit.hashed.startswith("h:") for lit in found.literals)


def test_the_plaintext_check_can_fail() -> None:
    leaky = Shape({"term": {"a": f"{S}1"}}, "0" * 64, (), frozenset())
    assert plaintext_in(leaky) == [S]


def test_sanitized_keeps_structure_fields_and_parameters_readable() -> None:
    query = {"bool": {"must": [
        {"match": {"name": {"query": "zhang wei", "operator": "and", "fuzziness": "AUTO", "analyzer": "standard",
                            "minimum_should_match": "75%", "boost": 2, "_name": "by_name"}}},
        {"range": {"born": {"gte": "1990-01-01", "lt": "now/d", "format": "yyyy-MM-dd", "time_zone": "+01:00",
                            "relation": "within"}}},
        {"exists": {"field": "phone"}}],
        "filter": {"term": {"active": True}}, "minimum_should_match": 1}}
    found = shape(query)
    match = found.sanitized["bool"]["must"][0]["match"]["name"]
    assert {k: v for k, v in match.items() if k != "query"} == {
        "operator": "and", "fuzziness": "AUTO", "analyzer": "standard", "minimum_should_match": "75%", "boost": 2,
        "_name": "by_name"}
    assert match["query"] == "h:" + hasher("name", "zhang wei")
    born = found.sanitized["bool"]["must"][1]["range"]["born"]
    assert (born["format"], born["time_zone"], born["relation"]) == ("yyyy-MM-dd", "+01:00", "within")
    assert born["gte"] == "h:" + hasher("born", "1990-01-01") and born["lt"] == "h:" + hasher("born", "now/d")
    assert found.sanitized["bool"]["must"][2] == {"exists": {"field": "phone"}}
    assert found.sanitized["bool"]["filter"] == {"term": {"active": True}}  # Booleans stay.
    assert found.fields == {"name", "born", "phone", "active"}
    assert [(lit.field, lit.kind, lit.length) for lit in found.literals] == [
        ("name", "match", 9), ("born", "range", 10), ("born", "range", 5)]


def test_query_string_literals_come_from_its_translation() -> None:
    found = shape({"query_string": {"query": "national_id:110101* AND name:zhang"}})
    assert found.sanitized == {"query_string": {"query": "h:" + hasher("*", "national_id:110101* AND name:zhang")}}
    assert {(lit.field, lit.kind, lit.length) for lit in found.literals} == {
        ("national_id", "prefix", 6), ("name", "match", 5)}
    assert found.fields == {"national_id", "name"}
    walk = shape({"query_string": {"query": "national_id:110102* AND name:wang"}})
    assert walk.fingerprint == found.fingerprint


def test_multi_match_and_query_string_use_the_named_field_or_star() -> None:
    one = shape({"multi_match": {"query": "x", "fields": ["name^3"]}})
    assert one.literals[0].field == "name" and one.fields == {"name"}
    many = shape({"multi_match": {"query": "x", "fields": ["name", "alias"], "type": "phrase_prefix"}})
    assert (many.literals[0].field, many.literals[0].kind) == ("*", "prefix")
    bad = shape({"query_string": {"query": "((", "default_field": "bio"}})
    assert (bad.literals[0].field, bad.literals[0].kind) == ("bio", "query_string")


# -- shapes: fingerprints -------------------------------------------------------------------
SAME_SHAPE = [
    ({"prefix": {"national_id": "110101"}}, {"prefix": {"national_id": "110130"}}),
    ({"term": {"id": "110101199001011234"}}, {"term": {"id": "x"}}),
    ({"terms": {"city": ["a", "b"]}}, {"terms": {"city": ["c", "d", "e"]}}),
    ({"range": {"born": {"gte": "1990", "lt": "1991"}}}, {"range": {"born": {"gte": 1980, "lt": "1981-06-01"}}}),
    ({"bool": {"must": [{"term": {"bp": "Hangzhou"}}, {"range": {"y": {"gte": 1990}}}]}},
     {"bool": {"must": [{"term": {"bp": "Ningbo"}}, {"range": {"y": {"gte": 1985}}}]}}),
    ({"term": {"a": {"value": "x", "boost": 2, "_name": "q1"}}}, {"term": {"a": {"value": "y", "boost": 3,
                                                                                 "_name": "q2"}}}),
    ({"geo_distance": {"distance": "1km", "pin": [1, 2]}}, {"geo_distance": {"distance": "9km", "pin": [3, 4]}}),
]
OTHER_SHAPE = [
    ({"prefix": {"national_id": "1101"}}, {"prefix": {"national_id": "110101"}}),  # Prefix length.
    ({"term": {"id": "x"}}, {"term": {"phone": "x"}}),  # Field.
    ({"term": {"id": "x"}}, {"prefix": {"id": "x"}}),  # Query type.
    ({"match": {"n": {"query": "x", "operator": "and"}}}, {"match": {"n": {"query": "x", "operator": "or"}}}),
    ({"bool": {"must": [{"term": {"a": "x"}}]}}, {"bool": {"must": [{"term": {"a": "x"}}, {"term": {"b": "y"}}]}}),
    ({"bool": {"must": [{"term": {"a": "x"}}]}}, {"bool": {"filter": [{"term": {"a": "x"}}]}}),
    ({"range": {"y": {"gte": 1}}}, {"range": {"y": {"gt": 1}}}),
]


@pytest.mark.parametrize(("a", "b"), SAME_SHAPE)
def test_fingerprint_ignores_literals(a: Any, b: Any) -> None:
    assert shape(a).fingerprint == shape(b).fingerprint


@pytest.mark.parametrize(("a", "b"), OTHER_SHAPE)
def test_fingerprint_follows_structure(a: Any, b: Any) -> None:
    assert shape(a).fingerprint != shape(b).fingerprint


def test_fingerprint_does_not_depend_on_the_key() -> None:
    other = describe({"term": {"a": "x"}}, lambda f, v: "k2" + hasher(f, v))
    assert other.fingerprint == shape({"term": {"a": "x"}}).fingerprint
    assert other.sanitized != shape({"term": {"a": "x"}}).sanitized


# Generated query trees: literal slots filled twice with different sentinels of one length.
FIELDS = st.sampled_from(["national_id", "name", "born", "phone", "people.name"])
LEAVES = st.sampled_from([
    lambda f: {"term": {f: "@"}}, lambda f: {"term": {f: {"value": "@", "boost": 2}}},
    lambda f: {"terms": {f: ["@", "@"]}}, lambda f: {"prefix": {f: "@"}}, lambda f: {"wildcard": {f: "@*"}},
    lambda f: {"regexp": {f: {"value": "@.*"}}}, lambda f: {"fuzzy": {f: "@"}},
    lambda f: {"match": {f: {"query": "@ @", "operator": "and"}}}, lambda f: {"match_phrase": {f: "@"}},
    lambda f: {"match_phrase_prefix": {f: "@"}}, lambda f: {"range": {f: {"gte": "@", "lt": "@"}}},
    lambda f: {"ids": {"values": ["@"]}}, lambda f: {"multi_match": {"query": "@", "fields": [f]}},
    lambda f: {"query_string": {"query": f"{f}:@ OR @"}}, lambda f: {"simple_query_string": {"query": "@"}},
    lambda f: {"made_up_query": {f: {"value": "@", "list": ["@", {"x": "@"}]}}},
])
QUERIES = st.recursive(
    st.builds(lambda make, f: make(f), LEAVES, FIELDS),
    lambda inner: st.one_of(
        st.builds(lambda must, should: {"bool": {"must": must, "should": should}}, st.lists(inner, max_size=3),
                  st.lists(inner, max_size=2)),
        st.builds(lambda q: {"constant_score": {"filter": q}}, inner),
        st.builds(lambda qs: {"dis_max": {"queries": qs}}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda q: {"nested": {"path": "people", "query": q}}, inner),
        st.builds(lambda q: {"function_score": {"query": q, "functions": [{"filter": q, "weight": 1}]}}, inner),
        st.builds(lambda q: {"unknown_wrapper": {"inner": q}}, inner),
    ),
    max_leaves=8)


def fill(template: Any, marker: str) -> Any:
    counter = iter(range(10**6))
    text = json.dumps(template)
    while '@' in text:
        text = text.replace("@", f"{marker}{next(counter):04d}", 1)
    return json.loads(text)


@settings(max_examples=150, deadline=None)
@given(template=QUERIES)
def test_generated_queries_hide_literals_and_keep_their_fingerprint(template: Any) -> None:
    first, second = shape(fill(template, S)), shape(fill(template, "ZQothers"))
    assert plaintext_in(first) == []
    assert "ZQother" not in repr(second)
    assert first.fingerprint == second.fingerprint
    assert [(lit.field, lit.kind, lit.length) for lit in first.literals] == \
        [(lit.field, lit.kind, lit.length) for lit in second.literals]


# -- shapes: odd input ----------------------------------------------------------------------
def deep(levels: int) -> dict:
    root: dict = {}
    node = root
    for _ in range(levels):
        node["bool"] = {"must": {}}
        node = node["bool"]["must"]
    node["term"] = {"a": f"{S}deep"}
    return root


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")


ODD = [None, {}, [], "text", 5, 1.5, float("nan"), True, {1: 2}, {"term": None}, {"term": []}, {"term": {}},
       {"bool": "x"}, {"bool": {"must": "x"}}, {"bool": {"must": [1, None, "x"]}}, {"range": {"a": [1, 2]}},
       {"terms": {"a": "not-a-list"}}, {"multi_match": {"query": ["a"], "type": ["x"], "fields": 5}},
       {"query_string": "x"}, {"query_string": {"query": {"x": 1}}}, {"ids": "x"}, {"ids": {"values": {"a": 1}}},
       {"term": {"a": 10**5000}}, {"term": {"a": Unprintable()}}, {"term": {(1, 2): "x"}}, {"x": {1.5: {None: []}}},
       {"term": {"a": "\ud800"}}, {"match": {"a": {"query": "x", "operator": {"nested": "and"}}}},
       deep(5000), {"terms": {"a": list(range(20_000))}}]


@pytest.mark.parametrize("query", ODD, ids=range(len(ODD)))
def test_odd_input_never_raises(query: Any) -> None:
    found = shape(query)
    assert isinstance(found.fingerprint, str) and len(found.fingerprint) == 64
    json.dumps(found.sanitized)  # Still JSON.
    assert S not in repr(found)


def test_too_deep_is_truncated_not_kept() -> None:
    found = shape(deep(5000))
    assert found.truncated and "<truncated>" in json.dumps(found.sanitized)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                        st.sampled_from(["term", "bool", "must", "query", "value", "range", "gte", "fields",
                                         "boost", "_name", "terms", "prefix", "multi_match", "query_string",
                                         "x", "nested", "path", "ids", "values"]) | st.text(max_size=4),
                        inner, max_size=4), max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(query=JSON)
def test_arbitrary_json_never_raises(query: Any) -> None:
    found = shape(copy.deepcopy(query))
    assert len(found.fingerprint) == 64


# -- detector -------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def detector(clock: Clock) -> DumpDetector:
    return DumpDetector(clock=clock)


def obs(query: Any = None, *, identity: str = "analyst", tenant: str | None = "police", offset: int = 0,
        size: int = 10, search_after: bool = False, scroll: bool = False, returned: int = 1,
        budget: float | None = None, has_shape: bool = True) -> Observation:
    return Observation(identity=identity, tenant=tenant, index="people",
                       shape=shape(query) if has_shape else None, offset=offset, size=size,
                       search_after=search_after, scroll=scroll, returned=returned, budget_fraction=budget)


def run(detector: DumpDetector, clock: Clock, observations: list[Observation], step: float) -> list[
        tuple[int, Finding]]:
    found = []
    for n, o in enumerate(observations, start=1):
        found.extend((n, f) for f in detector.observe(o))
        clock.now += step
    return found


def assert_no_plaintext(findings: list[tuple[int, Finding]], *values: str) -> None:
    text = repr(findings)
    assert not [v for v in values if v in text]


def prefix_walk(start: int, count: int, **kw: Any) -> list[Observation]:
    return [obs({"prefix": {"national_id": str(v)}}, **kw) for v in range(start, start + count)]


def test_prefix_walk_is_reported_at_the_twentieth_value(detector: DumpDetector, clock: Clock) -> None:
    found = run(detector, clock, prefix_walk(110101, 30), step=5)
    walks = [(n, f) for n, f in found if f.pattern == "prefix_walk"]
    assert [n for n, _ in walks] == [20]  # Once: the cooldown holds the other ten.
    finding = walks[0][1]
    assert finding.identity == "analyst" and finding.evidence["field"] == "national_id"
    assert finding.evidence["distinct_values"] == 20 and finding.evidence["literal_length"] == 6
    assert finding.evidence["fingerprint"] == shape({"prefix": {"national_id": "1"}}).fingerprint \
        or finding.evidence["fingerprint"] == shape({"prefix": {"national_id": "110101"}}).fingerprint
    assert all(h.startswith("h:") for h in finding.evidence["sample"])
    assert_no_plaintext(found, *(str(v) for v in range(110101, 110131)))


def test_nineteen_values_are_not_a_walk(detector: DumpDetector, clock: Clock) -> None:
    assert run(detector, clock, prefix_walk(110101, 19), step=5) == []


def test_short_exact_values_walk_too(detector: DumpDetector, clock: Clock) -> None:
    codes = [obs({"bool": {"filter": [{"term": {"region_code": str(v)}}]}}) for v in range(110101, 110121)]
    assert [f.pattern for _, f in run(detector, clock, codes, step=10)] == ["prefix_walk"]


def test_wildcard_and_query_string_walks(clock: Clock) -> None:
    wild = DumpDetector(clock=clock)
    found = run(wild, clock, [obs({"wildcard": {"phone": f"1380{v:03d}*"}}) for v in range(20)], step=1)
    assert [f.pattern for _, f in found] == ["prefix_walk"]
    qs = DumpDetector(clock=clock)
    found = run(qs, clock, [obs({"query_string": {"query": f"national_id:{v}*"}}) for v in range(110101, 110121)],
                step=1)
    assert [f.pattern for _, f in found] == ["prefix_walk"]


def test_walk_window_expires(detector: DumpDetector, clock: Clock) -> None:
    assert run(detector, clock, prefix_walk(110101, 19), step=1) == []
    # The same shape stays busy (one value again and again) while the first 18 values age out.
    assert run(detector, clock, prefix_walk(110119, 1) * 7, step=100) == []
    assert run(detector, clock, prefix_walk(110201, 18), step=1) == []  # 19 distinct in the last 600 s.
    assert [f.pattern for _, f in run(detector, clock, prefix_walk(110301, 1), step=1)] == ["prefix_walk"]


def test_cooldown_then_report_again(detector: DumpDetector, clock: Clock) -> None:
    first = run(detector, clock, prefix_walk(110101, 40), step=1)
    assert [n for n, f in first if f.pattern == "prefix_walk"] == [20]
    clock.now += 600  # Cooldown over; the walk goes on.
    again = run(detector, clock, prefix_walk(120101, 20), step=1)
    assert [n for n, f in again if f.pattern == "prefix_walk"] == [20]


def test_cooldown_is_per_identity(detector: DumpDetector, clock: Clock) -> None:
    found = run(detector, clock, prefix_walk(110101, 20, identity="a") + prefix_walk(110101, 20, identity="b"),
                step=1)
    assert [(n, f.identity) for n, f in found] == [(20, "a"), (40, "b")]


BIRTHPLACES = ["Hangzhou", "Ningbo", "Wenzhou", "Shaoxing", "Huzhou", "Jiaxing"]


def sweep_query(place: str, year: int) -> dict:
    return {"bool": {"filter": [{"term": {"birthplace": place}},
                                {"range": {"born": {"gte": f"{year}-01-01", "lt": f"{year + 1}-01-01"}}}]}}


def test_sweep_of_birthplace_by_year(detector: DumpDetector, clock: Clock) -> None:
    scraper = [obs(sweep_query(p, y), returned=40) for p in BIRTHPLACES for y in range(1980, 1990)]
    found = run(detector, clock, scraper, step=10)
    assert [(n, f.pattern) for n, f in found] == [(30, "sweep")]
    evidence = found[0][1].evidence
    assert evidence["distinct_combinations"] == 30 and set(evidence["fields"]) == {"birthplace", "born"}
    assert_no_plaintext(found, *BIRTHPLACES, "1980", "1985")


def test_sweep_year_outer_loop(detector: DumpDetector, clock: Clock) -> None:
    scraper = [obs(sweep_query(p, y)) for y in range(1980, 1990) for p in BIRTHPLACES]
    assert [(n, f.pattern) for n, f in run(detector, clock, scraper, step=10)] == [(30, "sweep")]


def test_sweep_of_date_ranges(detector: DumpDetector, clock: Clock) -> None:
    days = [obs({"range": {"born": {"gte": f"1990-{m:02d}-{d:02d}", "lte": f"1990-{m:02d}-{d:02d}"}}})
            for m in (1, 2) for d in range(1, 16)]
    assert "sweep" in {f.pattern for _, f in run(detector, clock, days, step=10)}


def test_sweep_window_expires(detector: DumpDetector, clock: Clock) -> None:
    scraper = [obs(sweep_query(p, y)) for p in BIRTHPLACES for y in range(1980, 1990)]
    assert run(detector, clock, scraper[:29], step=21) == []  # The 30th comes 609 s after the first.
    assert run(detector, clock, scraper[29:30], step=1) == []


def test_deep_from_in_one_request(detector: DumpDetector, clock: Clock) -> None:
    found = detector.observe(obs({"match_all": {}}, offset=990, size=10))
    assert [f.pattern for f in found] == ["deep_paging"]
    assert found[0].evidence["offset"] == 990
    assert detector.observe(obs({"match_all": {}}, offset=5000, size=10)) == []  # Cooldown.


def test_search_after_chain(detector: DumpDetector, clock: Clock) -> None:
    first = [obs({"term": {"city": "Hangzhou"}}, size=100, returned=100)]
    pages = [obs({"term": {"city": "Hangzhou"}}, size=100, returned=100, search_after=True) for _ in range(25)]
    found = run(detector, clock, first + pages, step=3)
    assert [(n, f.pattern) for n, f in found] == [(21, "deep_paging")]  # First page + 20 continuations.
    assert found[0][1].evidence["records"] == 2000 and found[0][1].evidence["via"] == "search_after"


def test_scroll_chain_without_query(detector: DumpDetector, clock: Clock) -> None:
    pages = [obs(has_shape=False, size=500, returned=500, scroll=True) for _ in range(4)]
    assert [(n, f.pattern) for n, f in run(detector, clock, pages, step=30)] == [(4, "deep_paging")]


def test_slow_paging_stays_under_the_window(detector: DumpDetector, clock: Clock) -> None:
    pages = [obs({"term": {"city": "Hangzhou"}}, size=100, returned=100, search_after=True) for _ in range(40)]
    assert run(detector, clock, pages, step=60) == []  # ≤ 1100 records in any 600 s.


def test_tenant_spread(detector: DumpDetector, clock: Clock) -> None:
    team = [obs({"term": {"id": "x"}}, identity=name, budget=b) for name, b in
            [("a", 0.9), ("b", 0.5), ("b", 0.85), ("a", 0.95), ("c", 0.8), ("d", 0.99)]]
    found = run(detector, clock, team, step=60)
    assert [(n, f.pattern, f.tenant) for n, f in found] == [(5, "tenant_spread", "police")]
    assert found[0][1].evidence["identities"] == ["a", "b", "c"]


def test_tenant_spread_needs_one_tenant_and_one_window(detector: DumpDetector, clock: Clock) -> None:
    other_tenants = [obs(identity=i, tenant=t, budget=0.9) for i, t in [("a", "x"), ("b", "y"), ("c", None)]]
    assert run(detector, clock, other_tenants, step=1) == []
    detector.observe(obs(identity="a", budget=0.9))
    clock.now += 100
    detector.observe(obs(identity="q", tenant="z", budget=0.9))
    clock.now += 1700
    detector.observe(obs(identity="b", budget=0.9))
    clock.now += 1801  # "a" is now older than an hour; "q" of tenant "z" is not.
    assert detector.observe(obs(identity="c", budget=0.9)) == []
    assert [f.pattern for f in detector.observe(obs(identity="a", budget=0.9))] == ["tenant_spread"]


def test_legitimate_workload_raises_nothing(detector: DumpDetector, clock: Clock) -> None:
    """Five investigators, one hour: 500 lookups of distinct national IDs by exact term (some with the
    same status filter or a date filter), repeated searches of one value, a few pages of a name
    search, one identity well into its budget."""
    workload = []
    for n in range(500):
        national_id = f"3301{n:06d}19800101{n % 10}"[:18]
        query: Any = {"term": {"national_id": national_id}}
        if n % 3 == 0:
            query = {"bool": {"filter": [query, {"term": {"status": "active"}}]}}
        elif n % 3 == 1:
            query = {"bool": {"filter": [query, {"range": {"updated": {"gte": "now-30d/d"}}}]}}
        workload.append(obs(query, identity=f"inv{n % 5}", budget=0.85 if n % 5 == 0 else 0.3))
        if n % 50 == 0:  # The same search again, a few times.
            workload += [obs({"match": {"name": "zhang wei"}}, identity="inv1")] * 3
        if n % 100 == 0:  # A name search read over three pages.
            workload += [obs({"match": {"name": "wang fang"}}, identity="inv2", offset=o, size=20, returned=20)
                         for o in (0, 20, 40)]
    found = run(detector, clock, workload, step=3600 / len(workload))
    assert found == []


def test_one_investigator_with_many_exact_lookups_is_not_a_walk(detector: DumpDetector, clock: Clock) -> None:
    # 200 full-length IDs in ten minutes: not enumeration by shape (the hourly budget bounds it).
    lookups = [obs({"term": {"national_id": f"110101199001{n:06d}"}}) for n in range(200)]
    assert run(detector, clock, lookups, step=3) == []


def test_memory_is_bounded(clock: Clock) -> None:
    small = DumpDetector(DetectorSettings(max_identities=50, max_shapes_per_identity=4), clock=clock)
    for n in range(500):
        small.observe(obs({"term": {f"f{n % 9}": "x"}}, identity=f"u{n}", budget=0.9, tenant=f"t{n % 7}"))
    sizes = small.tracked()
    assert sizes["identities"] == 50 and sizes["shapes"] <= 50 * 4
    clock.now += 3601
    small.observe(obs(identity="late"))
    assert small.tracked() == {"identities": 1, "tenants": 0, "cooldowns": 0, "shapes": 1}


def test_odd_observations_never_raise(detector: DumpDetector) -> None:
    odd = Observation(identity=None, tenant=7, index=None, shape=None, offset=None, size="x",  # type: ignore[arg-type]
                      search_after=True, scroll=None, returned=-5, budget_fraction=float("nan"))  # type: ignore[arg-type]
    assert detector.observe(odd) == []
    assert detector.observe(obs(budget=float("inf"))) == []
    assert detector.observe(obs({"term": {"a": "x"}}, offset=-10**30, size=10**30)) != []  # Past 1000.
