"""Protected fields: blind tokens answer the queries they can, the others are clear 400s, and a
protected index answers like an unprotected copy of the same data (differential, hypothesis).

Also PII detection at ingest: warn, reject (the default) and protect.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from argon2 import PasswordHasher
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom.engine.node import Engine
from strongroom.errors import StrongroomError
from strongroom.query.search_request import parse_search_request
from strongroom.security.gate import Gate
from strongroom.security.session import DocWrite, GetSpec, Session

FIELDS = {"national_id": {"type": "keyword", "protect": "blind", "blind_prefixes": [6]},
          "phone": {"type": "keyword", "protect": "blind"},
          "name": {"type": "text", "protect": "blind"},
          "address": {"type": "text", "protect": "blind"},
          "birth": {"type": "date", "protect": "blind"},
          "notes": {"type": "text", "protect": "encrypt"},
          "city": {"type": "keyword"}}
PLAIN = {k: {kk: vv for kk, vv in v.items() if kk not in ("protect", "blind_prefixes")} for k, v in FIELDS.items()}
NAMES = ["张伟", "张伟明", "王芳", "李娜", "刘洋", "王伟", "张丽", "李伟"]
STREETS = ["浦东新区张江路", "浦东新区世纪大道", "黄浦区南京东路", "徐汇区漕溪北路", "东城区王府井大街"]
CITIES = ["上海", "北京"]


def resident(n: int) -> dict[str, Any]:
    return {"national_id": f"3101{n % 7:02d}19{80 + n % 20:02d}0{1 + n % 9}1{n % 10}{n:04d}",
            "phone": f"13{n % 10}{n:08d}", "name": NAMES[n % len(NAMES)],
            "address": f"上海市{STREETS[n % len(STREETS)]}{n % 50}号", "birth": f"19{80 + n % 20}-0{1 + n % 9}-1{n % 10}",
            "notes": f"note {n}", "city": CITIES[n % 2]}


DOCS = {f"d{n}": resident(n) for n in range(60)}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    root: Path = tmp_path_factory.mktemp("protection")
    engine = Engine(root / "data")
    from strongroom.security.users import SecurityStore
    store = SecurityStore(root / "data", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    store.bootstrap("a long enough bootstrap passphrase")
    s = Gate(engine, store).system_session("test")

    async def load() -> None:
        await s.create_index("protected", {"number_of_shards": 2}, {"properties": FIELDS})
        await s.create_index("plain", {"number_of_shards": 2, "pii_detection": "warn"}, {"properties": PLAIN})
        for name in ("protected", "plain"):
            writes = [DocWrite("index", name, k, v, orjson.dumps(v)) for k, v in DOCS.items()]
            results, _ = await s.write(writes, refresh="true")
            assert all(not isinstance(r.outcome, StrongroomError) for r in results), results[0].outcome
    run(load())
    yield s
    engine.close()


def hits(s: Session, index: str, query: dict[str, Any]) -> list[tuple[str, float | None]]:
    out = run(s.search(index, parse_search_request({"query": query, "size": 100}, {})))
    return [(h.doc.doc_id, h.score) for h in out.hits]


def test_blind_fields_answer_exact_token_phrase_prefix_and_date_queries(session: Session) -> None:
    d = DOCS["d7"]
    assert [i for i, _ in hits(session, "protected", {"term": {"national_id": d["national_id"]}})] == ["d7"]
    assert [i for i, _ in hits(session, "protected", {"match": {"phone": d["phone"]}})] == ["d7"]
    prefix = {i for i, _ in hits(session, "protected", {"prefix": {"national_id": d["national_id"][:6]}})}
    assert prefix == {k for k, v in DOCS.items() if v["national_id"][:6] == d["national_id"][:6]}
    assert {i for i, _ in hits(session, "protected", {"term": {"birth": d["birth"][:4]}})} == \
        {k for k, v in DOCS.items() if v["birth"][:4] == d["birth"][:4]}
    ranked = hits(session, "protected", {"match": {"name": "张伟"}})
    first_zhang_wei_ming = next(n for n, (i, _) in enumerate(ranked) if DOCS[i]["name"] == "张伟明")
    assert all(DOCS[i]["name"] == "张伟" for i, _ in ranked[:first_zhang_wei_ming])  # exact names rank first
    assert run(session.get(GetSpec("protected", "d7"))).source == d  # the source comes back whole


@pytest.mark.parametrize("query", [
    {"range": {"birth": {"gte": "1990"}}}, {"range": {"phone": {"gte": "1"}}}, {"wildcard": {"phone": "138*"}}, {"fuzzy": {"name": "张伟"}},
    {"match": {"notes": "note"}}, {"prefix": {"national_id": "3101"}}, {"regexp": {"phone": "1.*"}},
    {"match": {"name": {"query": "张伟", "fuzziness": 1}}}, {"exists": {"field": "notes"}},
])
def test_queries_a_protected_form_cannot_answer_are_400s_naming_the_field(session: Session,
                                                                           query: dict[str, Any]) -> None:
    with pytest.raises(StrongroomError) as caught:
        hits(session, "protected", query)
    field = next(iter(next(iter(query.values())))) if "exists" not in query else "notes"
    assert caught.value.status == 400 and f"[{field}]" in str(caught.value)


@pytest.mark.parametrize("body", [{"sort": [{"phone": "asc"}]}, {"aggs": {"t": {"terms": {"field": "national_id"}}}},
                                  {"aggs": {"h": {"date_histogram": {"field": "birth", "calendar_interval": "year"}}}}])
def test_sorting_and_aggregating_on_protected_fields_are_400s(session: Session, body: dict[str, Any]) -> None:
    with pytest.raises(StrongroomError) as caught:
        run(session.search("protected", parse_search_request(body, {})))
    assert caught.value.status == 400


# -- differential: the protected index answers like the plain one --------------------------
def _values(field: str) -> st.SearchStrategy[Any]:
    return st.sampled_from([v[field] for v in DOCS.values()] + ["nothing-like-it"])


LEAF = st.one_of(
    st.builds(lambda v: {"term": {"national_id": v}}, _values("national_id")),
    st.builds(lambda v: {"terms": {"phone": v}}, st.lists(_values("phone"), min_size=1, max_size=3)),
    st.builds(lambda v: {"match": {"name": v}}, st.sampled_from(NAMES + ["张", "伟明"])),
    st.builds(lambda v, op: {"match": {"address": {"query": v, "operator": op}}},
              st.sampled_from(STREETS + ["浦东新区", "南京东路 王府井"]), st.sampled_from(["and", "or"])),
    st.builds(lambda v: {"match_phrase": {"address": v}}, st.sampled_from(["浦东新区", "张江路", "新区张江", "路张"])),
    st.builds(lambda v: {"term": {"city": v}}, st.sampled_from(CITIES)),
    st.builds(lambda v: {"term": {"birth": v}}, _values("birth")),
    st.builds(lambda low, high, lop, hop: {"range": {"birth": {lop: low, hop: high}}},
              st.sampled_from(["1980", "1985-03", "1990-01-01", "1984-02-29", "1979-12-31", "1999-02-15"]),
              st.sampled_from(["1989", "1991-06", "1999-12-31", "1984-03-01", "2005-01-01", "1987-07-14"]),
              st.sampled_from(["gte", "gt"]), st.sampled_from(["lte", "lt"])),
)
QUERY = st.recursive(LEAF, lambda inner: st.builds(
    lambda must, should, must_not: {"bool": {"must": must, "should": should, "must_not": must_not}},
    st.lists(inner, max_size=2), st.lists(inner, max_size=2), st.lists(inner, max_size=1)), max_leaves=5)


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(query=QUERY)
def test_protected_and_plain_indices_return_the_same_hits(session: Session, query: dict[str, Any]) -> None:
    protected = {i for i, _ in hits(session, "protected", query)}
    plain = {i for i, _ in hits(session, "plain", query)}
    assert protected == plain, query


# -- PII detection at ingest -----------------------------------------------------------------
def test_personal_data_in_unprotected_fields_is_rejected_by_default(session: Session) -> None:
    run(session.create_index("pii-reject", {}, {}))
    doc = {"contact": "13812345678", "comment": "fine"}
    results, _ = run(session.write([DocWrite("index", "pii-reject", "1", doc, orjson.dumps(doc))]))
    error = results[0].outcome
    assert isinstance(error, StrongroomError) and error.status == 400
    assert "[contact]" in str(error) and "mobile" in str(error) and "13812345678" not in str(error)
    doc = {"comment": "no identifiers here", "count": 3}
    results, _ = run(session.write([DocWrite("index", "pii-reject", "2", doc, orjson.dumps(doc))]))
    assert not isinstance(results[0].outcome, StrongroomError)


def test_a_value_a_protected_field_cannot_take_fails_only_its_item(session: Session) -> None:
    """In a bulk, a bad value in a blind field is that item's 400 (without the value); the others land."""
    run(session.create_index("protected-bulk", {}, {"properties": FIELDS}))
    bad, good = {**resident(900), "birth": "1990-13-45"}, resident(901)
    writes = [DocWrite("index", "protected-bulk", "bad", bad, orjson.dumps(bad)),
              DocWrite("index", "protected-bulk", "good", good, orjson.dumps(good))]
    results, _ = run(session.write(writes, refresh="true"))
    error = results[0].outcome
    assert isinstance(error, StrongroomError) and error.status == 400
    assert "[birth]" in str(error) and "1990-13-45" not in str(error)
    assert not isinstance(results[1].outcome, StrongroomError)
    assert run(session.get(GetSpec("protected-bulk", "good"))).doc is not None


def test_protect_mode_maps_new_personal_fields_as_blind(session: Session) -> None:
    run(session.create_index("pii-protect", {"pii_detection": "protect"}, {}))
    doc = {"person": {"id_card": "110101199003071233"}, "note": "x"}
    results, _ = run(session.write([DocWrite("index", "pii-protect", "1", doc, orjson.dumps(doc))], refresh="true"))
    assert not isinstance(results[0].outcome, StrongroomError), results[0].outcome
    (view,) = run(session.get_indices("pii-protect"))
    assert view.mappings["properties"]["person"]["properties"]["id_card"]["protect"] == "blind"
    assert [i for i, _ in hits(session, "pii-protect", {"term": {"person.id_card": "110101199003071233"}})] == ["1"]


def test_warn_mode_logs_the_field_never_the_value(session: Session, caplog: pytest.LogCaptureFixture) -> None:
    run(session.create_index("pii-warn", {"pii_detection": "warn"}, {}))
    doc = {"mail": "zhang.wei@example.cn"}
    with caplog.at_level(logging.WARNING, logger="strongroom.ingest"):
        results, _ = run(session.write([DocWrite("index", "pii-warn", "1", doc, orjson.dumps(doc))]))
    assert not isinstance(results[0].outcome, StrongroomError)
    assert "[mail]" in caplog.text and "email" in caplog.text and "zhang.wei" not in caplog.text


def test_highlighting_a_blind_text_field_marks_the_clear_words(session: Session) -> None:
    out = run(session.search("protected", parse_search_request(
        {"query": {"match_phrase": {"address": "浦东新区"}}, "highlight": {"fields": {"address": {}}}, "size": 1}, {})))
    assert "<em>浦东</em>" in out.hits[0].highlight["address"][0] or "<em>浦东新区</em>" in out.hits[0].highlight["address"][0]


def test_a_birth_year_range_on_a_blind_date_uses_year_month_and_day_tokens(session: Session) -> None:
    query = {"range": {"birth": {"gte": "1983-11-20", "lt": "1990"}}}
    expected = {k for k, v in DOCS.items() if "1983-11-20" <= v["birth"] < "1990-01-01"}
    assert expected and {i for i, _ in hits(session, "protected", query)} == expected
    # Year tokens make long spans cheap; a span that needs more than 1,024 tokens is refused, not slow.
    assert len(hits(session, "protected", {"range": {"birth": {"gte": "1900-01-01", "lte": "2099-12-31"}}})) == 60
    with pytest.raises(StrongroomError) as caught:
        hits(session, "protected", {"range": {"birth": {"gte": "0001-01-02", "lte": "2999-12-31"}}})
    assert caught.value.status == 400 and "1024" in str(caught.value)


@settings(max_examples=300, deadline=None)
@given(st.dates().map(lambda d: d.isoformat()) | st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z"),
       st.sampled_from(["strict_date", "strict_date_optional_time||epoch_millis", "yyyy-MM-dd", "date"]))
def test_the_iso_day_shortcut_gives_the_field_parsers_day(value: str, fmt: str) -> None:
    import datetime as dt

    from strongroom.engine.mapping import Mapping, MappingLimits
    from strongroom.security.protect import Protector
    mapping = Mapping.parse_definition({"properties": {"d": {"type": "date", "format": fmt, "protect": "blind"}}},
                                       MappingLimits(1000, 20))
    field = mapping.fields["d"]
    protector = Protector.__new__(Protector)  # the value methods need no keys
    try:  # the field parser's day (the path every other date takes)
        millis = int(protector._exact_text(field, value))
        expected: str | None = (dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
                                + dt.timedelta(milliseconds=millis)).date().isoformat()
    except (StrongroomError, OverflowError):
        expected = None
    try:
        got: str | None = protector._date_text(field, value)
    except StrongroomError:  # never anything else (an OverflowError would be a 500)
        got = None
    assert got == expected
