"""Differential test: Strongroom's query engine against a plain-Python oracle (tests/oracle.py).

A fixed, deterministic corpus of ~300 residents-like records (Chinese and Latin names and
addresses, notes, keywords, longs, doubles, dates, booleans; missing fields, multi-valued arrays,
full-width forms, accents) is indexed twice in-process: `one` with 1 shard and `three` with 3
shards. Hypothesis generates random Elasticsearch queries (trees of depth <= 3) whose values come
from the corpus's own vocabulary (so they match something) plus deliberate misses. For each query
the set of matching `_id`s, the total, `_count` and a few aggregations must equal the oracle's, on
both indices; single-token `match` queries must rank like the oracle's BM25 on the 1-shard index.

Runs derandomized (a fixed sequence of examples, so CI is repeatable). Set
STRONGROOM_DIFF_RANDOM=1 to explore new examples, and STRONGROOM_DIFF_SCALE=N to multiply the
number of examples.

Known discrepancies are listed in KNOWN_ISSUES (each with the reason): queries they cover are
generated but not compared.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oracle import FieldSpec, Oracle, analyze, min_should_match, parse_date
from strongroom.engine.aggs import run_aggregations
from strongroom.engine.index import Index, WriteRequest
from strongroom.engine.node import Engine
from strongroom.engine.search import run_search, targets_for
from strongroom.query.dsl import parse_query
from strongroom.query.search_request import parse_search_request

NOW = 1_716_249_600_000  # 2024-05-21T00:00:00Z (no query uses `now`; fixed for reproducibility)
SEED = 20240521
N_DOCS = 300
RANDOM = os.environ.get("STRONGROOM_DIFF_RANDOM", "") not in ("", "0")
SCALE = float(os.environ.get("STRONGROOM_DIFF_SCALE", "1"))

MAPPING: dict[str, FieldSpec] = {
    "name": FieldSpec("text"),
    "address": FieldSpec("text"),
    "note": FieldSpec("text"),
    "city": FieldSpec("keyword"),
    "code": FieldSpec("keyword"),
    "labels": FieldSpec("keyword"),
    "age": FieldSpec("long"),
    "visits": FieldSpec("long"),
    "balance": FieldSpec("double"),
    "born": FieldSpec("date", "strict_date"),
    "updated": FieldSpec("date"),
    "active": FieldSpec("boolean"),
}
ES_MAPPINGS = {"properties": {
    path: ({"type": spec.type, "format": spec.format} if spec.format else {"type": spec.type})
    for path, spec in MAPPING.items()}}

# -- the corpus -----------------------------------------------------------------------------------
SURNAMES = ["张", "王", "李", "刘", "陈", "杨", "赵", "黄", "周", "吴"]
GIVEN = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "涛", "明", "伟明", "小红", "建国",
         "秀英", "志强", "伟华"]
ALIASES = ["David", "Zhāng Wěi", "ＷＥＩ", "Li Wei", "Fang", "Mary-Jane"]
LATIN_NAMES = ["José García", "Zoë Müller", "ＷＡＮＧ Fang", "Seán O'Brien", "Björn Ødegaard", "Li Wei", "Zhāng Wěi",
               "Anna-Lena Krause", "Łukasz Żak", "Æsa Þórsdóttir", "Jean-Luc Café", "Иван Петров", "WANG FANG",
               "Chloé Dubois"]
ASIAN_NAMES = ["さくら 田中", "김민수", "ｻｸﾗ", "山田 タロウ", "이서연", "田中さくら"]
CITY_DISTRICTS = [("上海市", ["浦东新区", "徐汇区", "静安区", "黄浦区"]), ("北京市", ["朝阳区", "海淀区", "东城区"]),
                  ("广州市", ["天河区", "越秀区"]), ("深圳市", ["南山区", "福田区"]), ("杭州市", ["西湖区", "滨江区"])]
ROADS = ["世纪大道", "张江路", "陆家嘴环路", "建国路", "中关村大街", "天河路", "科技园路", "文三路", "漕溪北路", "南京西路"]
LATIN_ADDRESSES = ["12 Rue de la Paix, Paris", "Hauptstraße 5, München", "221B Baker Street, London",
                   "Calle Mayor 3, Madrid", "Ｒｏｏｍ ８０８, Central Plaza", "5 Avenue Café, Genève"]
NOTE_WORDS = ["vip", "客户", "老客户", "café", "naïve", "résumé", "urgent", "follow-up", "回访", "已核实", "待审核",
              "电话", "Email", "ＶＩＰ", "fiancée", "Straße", "ok", "2024", "第3期", "Zoë", "数据", "隐私", "VIP客户",
              "CAFÉ", "ｶﾌｪ", "カフェ"]
CITIES = ["上海", "北京", "广州", "深圳", "杭州", "Shanghai", "shanghai", "São Paulo", "New York", ""]
CODE_PREFIXES = ["SH", "BJ", "GZ", "sh", "X"]
LABELS = ["vip", "VIP", "new", "飞行常客", "blocked", "老客户", "a b"]
DAYS = [dt.date(2023, 1, 1) + dt.timedelta(days=d) for d in range(0, 730, 17)]  # 43 days, so values share days


def _iso(millis: int, style: int) -> Any:
    moment = dt.datetime.fromtimestamp(millis / 1000, dt.UTC)
    if style == 0:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if millis % 1000 == 0 else \
            moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"
    if style == 1:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"
    if style == 2:
        local = moment + dt.timedelta(hours=8)
        return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}+08:00"
    if style == 3:
        return millis  # epoch_millis
    if style == 4:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}"  # no zone: UTC
    return moment.strftime("%Y-%m-%d") if millis % 86_400_000 == 0 else _iso(millis, 1)


def _day_millis(day: dt.date) -> int:
    return (day.toordinal() - dt.date(1970, 1, 1).toordinal()) * 86_400_000


def make_corpus() -> dict[str, dict[str, Any]]:
    rng = random.Random(SEED)
    docs: dict[str, dict[str, Any]] = {}
    for i in range(N_DOCS):
        doc: dict[str, Any] = {}
        r = rng.random()
        if r < 0.08:
            doc["name"] = "张伟"
        elif r < 0.13:
            doc["name"] = "张伟明"
        elif r < 0.18:
            doc["name"] = "王芳"
        elif r < 0.66:
            doc["name"] = rng.choice(SURNAMES) + rng.choice(GIVEN)
        elif r < 0.76:
            doc["name"] = rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice([" ", "（", "·", ""]) + rng.choice(ALIASES)
        elif r < 0.92:
            doc["name"] = rng.choice(LATIN_NAMES)
        else:
            doc["name"] = rng.choice(ASIAN_NAMES)

        def address() -> str:
            if rng.random() < 0.12:
                return rng.choice(LATIN_ADDRESSES)
            city, districts = rng.choice(CITY_DISTRICTS)
            text = city + rng.choice(districts) + rng.choice(ROADS) + str(rng.randint(1, 999)) + "号"
            extra = rng.random()
            if extra < 0.2:
                text += "".join(chr(ord(c) + 0xFEE0) for c in str(rng.randint(101, 2505))) + "室"  # full-width digits
            elif extra < 0.35:
                text += f" Room {rng.randint(101, 2505)}"
            elif extra < 0.45:
                text += f"{rng.randint(1, 30)}栋"
            return text
        r = rng.random()
        if r < 0.12:
            pass
        elif r < 0.27:
            doc["address"] = [address(), address()]
        else:
            doc["address"] = address()

        def note() -> str:
            words = rng.sample(NOTE_WORDS, rng.randint(1, 4))
            return rng.choice([" ", "，", "", "; "]).join(words)
        r = rng.random()
        if r < 0.4:
            pass
        elif r < 0.42:
            doc["note"] = rng.choice(["", "——"])  # present, but no token
        elif r < 0.55:
            doc["note"] = [note(), note()]
        elif r < 0.57:
            doc["note"] = None
        else:
            doc["note"] = note()

        if rng.random() < 0.88:
            doc["city"] = rng.choices(CITIES, weights=[20, 15, 10, 8, 6, 4, 3, 2, 2, 1])[0]
        r = rng.random()
        if r < 0.85:
            prefix = rng.choice(CODE_PREFIXES)
            doc["code"] = f"{prefix}-{rng.randint(0, 2000):04d}" if rng.random() < 0.9 else f"{prefix.lower()}_{i}"
        r = rng.random()
        if r < 0.3:
            pass
        elif r < 0.45:
            doc["labels"] = rng.choice(LABELS)
        elif r < 0.47:
            doc["labels"] = []
        else:
            doc["labels"] = rng.sample(LABELS, rng.randint(1, 3))

        r = rng.random()
        if r < 0.09:
            pass
        elif r < 0.11:
            doc["age"] = None
        elif r < 0.14:
            doc["age"] = str(rng.randint(18, 90))  # coerced
        else:
            doc["age"] = rng.randint(18, 90)
        r = rng.random()
        if r < 0.15:
            pass
        elif r < 0.4:
            doc["visits"] = rng.sample(range(-5, 61), rng.randint(2, 3))
        else:
            doc["visits"] = rng.randint(-5, 60)
        r = rng.random()
        if r < 0.12:
            pass
        elif r < 0.22:
            doc["balance"] = rng.randint(-1000, 50000) // 100 * 100  # a JSON integer in a double field
        elif r < 0.32:
            doc["balance"] = [round(rng.uniform(-1000, 50000), 2), round(rng.uniform(-1000, 50000), 2)]
        else:
            doc["balance"] = round(rng.uniform(-1000, 50000), 2)
        if rng.random() < 0.9:
            doc["born"] = (dt.date(1950, 1, 1) + dt.timedelta(days=rng.randint(0, 20000))).isoformat()

        def instant() -> Any:
            day = _day_millis(rng.choice(DAYS))
            r = rng.random()
            if r < 0.3:
                millis = day
            elif r < 0.4:
                millis = day + 86_400_000 - 1
            elif r < 0.5:
                millis = day + rng.randint(0, 86_399) * 1000  # whole seconds
            else:
                millis = day + rng.randint(0, 86_399_999)
            return _iso(millis, rng.randint(0, 5))
        r = rng.random()
        if r < 0.1:
            pass
        elif r < 0.25:
            doc["updated"] = [instant(), instant()]
        else:
            doc["updated"] = instant()
        r = rng.random()
        if r < 0.1:
            pass
        elif r < 0.15:
            doc["active"] = rng.choice(["true", "false"])
        elif r < 0.17:
            doc["active"] = [True, False]
        else:
            doc["active"] = rng.random() < 0.6
        docs[f"r{i:03d}"] = doc
    return docs


CORPUS = make_corpus()
ORACLE = Oracle(CORPUS, MAPPING)
IDS = sorted(CORPUS)
DATE_VALUES = {path: sorted({parse_date(v) for d in CORPUS.values()
                             for v in (d.get(path) if isinstance(d.get(path), list) else [d.get(path)])
                             if v is not None})
               for path, spec in MAPPING.items() if spec.type == "date"}


@pytest.fixture(scope="module")
def indices(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Index]]:
    engine = Engine(Path(tmp_path_factory.mktemp("differential")) / "data", writer_heap_bytes=20_000_000)
    out = {}
    for name, shards in (("one", 1), ("three", 3)):
        index = engine.create_index(name, {"number_of_shards": shards}, ES_MAPPINGS)
        outcomes = index.write([WriteRequest("index", doc_id, doc, orjson.dumps(doc))
                                for doc_id, doc in CORPUS.items()])
        failed = [(o.doc_id, o.result) for o in outcomes if isinstance(o.result, Exception)]
        assert not failed, failed
        index.refresh()
        out[name] = index
    assert out["one"].count(parse_query({"match_all": {}})) == N_DOCS
    yield out
    engine.close()


# -- known discrepancies --------------------------------------------------------------------------
def walk(query: Any) -> Iterator[tuple[str, Any]]:
    """Every (kind, body) in a query tree."""
    if not isinstance(query, dict) or len(query) != 1:
        return
    ((kind, body),) = query.items()
    yield kind, body
    if kind == "bool":
        for occur in ("must", "filter", "should", "must_not"):
            clauses = body.get(occur) or []
            for clause in clauses if isinstance(clauses, list) else [clauses]:
                yield from walk(clause)
    elif kind == "constant_score":
        yield from walk(body["filter"])
    elif kind == "dis_max":
        for clause in body["queries"]:
            yield from walk(clause)


@dataclass(frozen=True)
class KnownIssue:
    name: str
    reason: str
    covers: Callable[[dict[str, Any]], bool]  # on the whole query


def _msm_above_clauses(query: dict[str, Any]) -> bool:
    """minimum_should_match (as Elasticsearch computes it, unclamped) above the number of optional
    clauses: a multi-token `match` (operator or), or a bool that is not made of must_not only."""
    for kind, body in walk(query):
        if kind == "match":
            ((path, spec),) = ((k, v) for k, v in body.items() if k not in ("boost", "_name"))
            if not isinstance(spec, dict) or spec.get("minimum_should_match") is None \
                    or MAPPING.get(path, FieldSpec("")).type != "text":
                continue
            tokens = analyze(spec["query"])
            if len(tokens) > 1 and str(spec.get("operator", "or")).lower() == "or" \
                    and min_should_match(len(tokens), spec["minimum_should_match"]) > len(tokens):
                return True
        elif kind == "bool" and body.get("minimum_should_match") is not None:
            should = body.get("should") or []
            count = len(should) if isinstance(should, list) else 1
            if not any(body.get(o) for o in ("must", "filter", "should")):
                continue  # must_not only: msm is dropped
            if min_should_match(count, body["minimum_should_match"]) > count:
                return True
    return False


def _wildcard_star_then_many_single(query: dict[str, Any]) -> bool:
    """A wildcard with a `*` followed (later) by a run of five or more `?`."""
    for kind, body in walk(query):
        if kind == "wildcard":
            ((_, spec),) = ((k, v) for k, v in body.items() if k not in ("boost", "_name"))
            pattern = spec["value"] if isinstance(spec, dict) else spec
            if re.search(r"\*.*\?{5}", pattern):
                return True
    return False


KNOWN_ISSUES: list[KnownIssue] = [
    KnownIssue("wildcard-dfa-limit",
               "a wildcard such as \"*B??????\" (a `*`, then a literal and six `?`) fails with 400 \"invalid or too "
               "complex pattern\" (tantivy-fst: \"Compiled regex exceeds size limit of 1000 states\"); Lucene "
               "determinizes it well within its 10,000-state limit and Elasticsearch answers it",
               _wildcard_star_then_many_single),
    KnownIssue("msm-clamped",
               "minimum_should_match larger than the number of optional clauses is clamped to that number "
               "(plan.resolve_minimum_should_match), and ignored in a bool without should clauses; "
               "Elasticsearch (since elastic/elasticsearch#15571) then matches nothing", _msm_above_clauses),
]


# Known: scores are Lucene's BM25 times (k1 + 1) = 2.2. tantivy's Bm25Weight keeps the constant factor
# that Lucene 8 dropped (LUCENE-8563), so every full-text `_score` is 2.2 times Elasticsearch's;
# orderings are unaffected. Set to 1.0 once scores match Elasticsearch's.
KNOWN_SCORE_FACTOR = 2.2


def known(query: dict[str, Any]) -> KnownIssue | None:
    return next((issue for issue in KNOWN_ISSUES if issue.covers(query)), None)


# -- running a query ------------------------------------------------------------------------------
def engine_search(index: Index, body: dict[str, Any]) -> tuple[list[str], int | None, list[float | None]]:
    request = parse_search_request(body, {})
    result = run_search(targets_for([index]), request.spec, now_millis=NOW)
    return [h.doc.doc_id for h in result.hits], result.total, [h.score for h in result.hits]


def engine_aggs(index: Index, query: dict[str, Any], aggs: dict[str, Any]) -> dict[str, Any]:
    request = parse_search_request({"query": query, "size": 0, "aggs": aggs}, {})
    assert request.aggs is not None
    return run_aggregations(targets_for([index]), request.spec.query, request.aggs, now_millis=NOW)


def show(query: Any) -> str:
    return orjson.dumps(query).decode()


def check_query(indices: dict[str, Index], query: dict[str, Any]) -> None:
    expected = ORACLE.search(query)
    if known(query) is not None:
        return
    for name, index in indices.items():
        ids, total, _ = engine_search(index, {"query": query, "size": 1000, "track_total_hits": True})
        got = set(ids)
        assert len(got) == len(ids), f"[{name}] duplicate hits for {show(query)}"
        assert got == expected, (f"[{name}] {show(query)}\n  engine-only: {sorted(got - expected)}\n"
                                 f"  oracle-only: {sorted(expected - got)}")
        assert total == len(expected), f"[{name}] total {total} != {len(expected)} for {show(query)}"
        count = index.count(parse_query(query))
        assert count == len(expected), f"[{name}] _count {count} != {len(expected)} for {show(query)}"


def assert_close(actual: Any, expected: Any, where: str) -> None:
    if isinstance(expected, float) and isinstance(actual, (int, float)) and not isinstance(actual, bool):
        assert math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-6), f"{where}: {actual} != {expected}"
        return
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not an object"
        assert list(actual) == list(expected), f"{where}: keys {list(actual)} != {list(expected)}"
        for key in expected:
            assert_close(actual[key], expected[key], f"{where}.{key}")
        return
    if isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), \
            f"{where}: {show(actual)} != {show(expected)}"
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_close(a, e, f"{where}[{i}]")
        return
    assert actual == expected and type(actual) is type(expected), f"{where}: {actual!r} != {expected!r}"


# -- vocabulary, from the corpus ------------------------------------------------------------------
def _values(path: str) -> list[Any]:
    out = []
    for doc in CORPUS.values():
        value = doc.get(path)
        for v in value if isinstance(value, list) else [value]:
            if v is not None:
                out.append(v)
    return out


TEXT_FIELDS = ["name", "address", "note"]
TEXT_VALUES = {f: sorted({v for v in _values(f) if v}) for f in TEXT_FIELDS}
TEXT_TOKENS = {f: sorted({t for v in TEXT_VALUES[f] for t in analyze(v)}) for f in TEXT_FIELDS}
# Where one value ends and the next begins: a phrase spanning the two must not match.
BOUNDARIES = {f: sorted({a[-3:] + " " + b[:3] for doc in CORPUS.values()
                         if isinstance(doc.get(f), list) for a, b in zip(doc[f], doc[f][1:]) if a and b})
              for f in TEXT_FIELDS}
TEXT_MISSES = ["不存在", "xyzzy", "张三丰", "Zhangwei", "浦西", "——", "!!", "ｘｙｚ", "伟张"]
KEYWORD_FIELDS = ["city", "code", "labels"]
KEYWORD_VALUES = {f: sorted({v for v in _values(f)}) for f in KEYWORD_FIELDS}
KEYWORD_MISSES = ["SHANGHAI", "Sao Paulo", "vip ", "SH-", "nothing", "上"]
LONG_VALUES = {f: sorted({int(v) for v in _values(f)}) for f in ("age", "visits")}
DOUBLE_VALUES = sorted({float(v) for v in _values("balance")})
UPDATED_MILLIS = DATE_VALUES["updated"]
BORN_DAYS = sorted({v for v in _values("born")})
ALL_FIELDS = list(MAPPING)


def _fmt_day(millis: int) -> str:
    return dt.datetime.fromtimestamp(millis // 86_400_000 * 86_400, dt.UTC).strftime("%Y-%m-%d")


def _shift_day(day: str, days: int) -> str:
    return (dt.date.fromisoformat(day) + dt.timedelta(days=days)).isoformat()


# -- strategies: leaves ---------------------------------------------------------------------------
@st.composite
def substring(draw: st.DrawFn, texts: list[str], longest: int = 10) -> str:
    text = draw(st.sampled_from(texts))
    start = draw(st.integers(0, max(len(text) - 1, 0)))
    length = draw(st.integers(1, longest))
    return text[start:start + length]


def text_query_string(path: str) -> st.SearchStrategy[str]:
    tokens = TEXT_TOKENS[path]
    options = [substring(TEXT_VALUES[path]), st.sampled_from(tokens),
               st.lists(st.sampled_from(tokens), min_size=2, max_size=4).map(" ".join),
               st.sampled_from(TEXT_MISSES),
               st.tuples(substring(TEXT_VALUES[path]), st.sampled_from(TEXT_MISSES)).map(" ".join)]
    if BOUNDARIES[path]:
        options.append(st.sampled_from(BOUNDARIES[path]))
    return st.one_of(*options)


def msm_values() -> st.SearchStrategy[Any]:
    return st.one_of(st.integers(-2, 4), st.sampled_from(["1", "2", "-1", "50%", "75%", "-25%", "100%"]))


@st.composite
def match_query(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.integers(0, 9)) == 0:  # match on a keyword: the whole value
        return {"match": {"city": draw(st.sampled_from(KEYWORD_VALUES["city"] + KEYWORD_MISSES))}}
    path = draw(st.sampled_from(TEXT_FIELDS))
    text = draw(text_query_string(path))
    style = draw(st.integers(0, 3))
    if style == 0:
        return {"match": {path: text}}
    if style == 1:
        return {"match": {path: {"query": text, "operator": draw(st.sampled_from(["and", "or", "AND"]))}}}
    # minimum_should_match with the default operator (or); distinct words, as duplicates count twice.
    if style == 2:
        words = draw(st.lists(st.sampled_from(TEXT_TOKENS[path]), min_size=1, max_size=5, unique=True))
        text = " ".join(words)
    return {"match": {path: {"query": text, "minimum_should_match": draw(msm_values())}}}


def phrase_string(path: str) -> st.SearchStrategy[str]:
    """Mostly contiguous pieces of real values (which match), some word salads and value boundaries
    (which mostly must not)."""
    pieces = [substring(TEXT_VALUES[path], 12), substring(TEXT_VALUES[path], 12), st.sampled_from(TEXT_VALUES[path]),
              st.lists(st.sampled_from(TEXT_TOKENS[path]), min_size=2, max_size=3).map(" ".join),
              st.sampled_from(TEXT_MISSES)]
    if BOUNDARIES[path]:
        pieces.append(st.sampled_from(BOUNDARIES[path]))
    return st.one_of(*pieces)


@st.composite
def phrase_query(draw: st.DrawFn) -> dict[str, Any]:
    path = draw(st.sampled_from(TEXT_FIELDS))
    text = draw(phrase_string(path))
    if draw(st.booleans()):
        return {"match_phrase": {path: text}}
    return {"match_phrase": {path: {"query": text}}}


def _long_value(path: str) -> st.SearchStrategy[Any]:
    values = LONG_VALUES[path]
    return st.one_of(st.sampled_from(values), st.sampled_from(values).map(lambda v: v + 1),
                     st.sampled_from(values).map(lambda v: v + 0.5), st.sampled_from(values).map(str),
                     st.sampled_from([1000, -1000, 0]))


def _double_value() -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(DOUBLE_VALUES), st.sampled_from(DOUBLE_VALUES).map(lambda v: v + 0.005),
                     st.sampled_from([v for v in DOUBLE_VALUES if v.is_integer()]).map(int),
                     st.sampled_from([0.0, -0.01, 1e6]))


def _updated_value(bound: bool = False) -> st.SearchStrategy[Any]:
    millis = st.sampled_from(UPDATED_MILLIS)
    return st.one_of(
        millis.map(_fmt_day),  # a bare day: rounds up as an upper bound
        millis.map(lambda m: _shift_day(_fmt_day(m), -1)),
        millis.map(lambda m: _iso(m, 1)),  # the exact instant
        millis.map(lambda m: _iso(m - m % 1000, 0)),  # whole second, no fraction: rounds up
        millis.map(lambda m: _iso(m, 2)),  # +08:00
        millis.map(lambda m: m + 1), millis.map(lambda m: m - 1),  # epoch millis
        millis.map(lambda m: _fmt_day(m)[:7]) if bound else millis.map(_fmt_day),  # yyyy-MM
    )


def _born_value() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(BORN_DAYS), st.sampled_from(BORN_DAYS).map(lambda d: _shift_day(d, 1)))


def term_value(path: str) -> st.SearchStrategy[Any]:
    spec = MAPPING[path]
    if spec.type == "text":
        tokens = TEXT_TOKENS[path]
        return st.one_of(st.sampled_from(tokens), st.sampled_from(tokens).map(str.upper),
                         st.sampled_from(TEXT_VALUES[path]), st.sampled_from(TEXT_MISSES))
    if spec.type == "keyword":
        return st.one_of(st.sampled_from(KEYWORD_VALUES[path]), st.sampled_from(KEYWORD_MISSES))
    if spec.type == "long":
        return _long_value(path)
    if spec.type == "double":
        return _double_value()
    if spec.type == "boolean":
        return st.sampled_from([True, False, "true", "false"])
    if path == "born":
        return _born_value()
    return _updated_value()


@st.composite
def term_query(draw: st.DrawFn) -> dict[str, Any]:
    path = draw(st.sampled_from(ALL_FIELDS))
    value = draw(term_value(path))
    if draw(st.booleans()):
        return {"term": {path: value}}
    return {"term": {path: {"value": value}}}


@st.composite
def terms_query(draw: st.DrawFn) -> dict[str, Any]:
    path = draw(st.sampled_from(ALL_FIELDS))
    return {"terms": {path: draw(st.lists(term_value(path), min_size=1, max_size=4))}}


def range_bound(path: str) -> st.SearchStrategy[Any]:
    spec = MAPPING[path]
    if spec.type == "long":
        return _long_value(path)
    if spec.type == "double":
        return _double_value()
    if spec.type == "keyword":
        return st.one_of(st.sampled_from(KEYWORD_VALUES[path]), st.sampled_from(["SH", "S", "sh-1", "X-1", "北"]))
    if path == "born":
        return _born_value()
    return _updated_value(bound=True)


@st.composite
def range_query(draw: st.DrawFn) -> dict[str, Any]:
    path = draw(st.sampled_from(["age", "visits", "balance", "born", "updated", "updated", "code", "city"]))
    bounds: dict[str, Any] = {}
    lower = draw(st.sampled_from([None, "gt", "gte"]))
    upper = draw(st.sampled_from([None, "lt", "lte"] if lower else ["lt", "lte"]))
    for op in (lower, upper):
        if op is not None:
            bounds[op] = draw(range_bound(path))
    if path == "updated" and len({isinstance(b, int) for b in bounds.values()}) > 1:
        # Elasticsearch parses both bounds as epoch_millis when either is a number (a string date in the
        # other is then a 400): keep the bounds of one kind.
        bounds = {op: parse_date(b, round_up=op in ("gt", "lte")) if isinstance(b, str) else b
                  for op, b in bounds.items()}
    return {"range": {path: bounds}}


@st.composite
def exists_query(draw: st.DrawFn) -> dict[str, Any]:
    return {"exists": {"field": draw(st.sampled_from(ALL_FIELDS + ["nope"]))}}


@st.composite
def ids_query(draw: st.DrawFn) -> dict[str, Any]:
    values = draw(st.lists(st.one_of(st.sampled_from(IDS), st.sampled_from(["r999", "R001", "x"])),
                           min_size=1, max_size=6))
    return {"ids": {"values": values}}


@st.composite
def prefix_query(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.integers(0, 3)) == 0:
        path = draw(st.sampled_from(TEXT_FIELDS))
        token = draw(st.sampled_from(TEXT_TOKENS[path]))
        value = token[:draw(st.integers(1, len(token)))]
    else:
        path = draw(st.sampled_from(KEYWORD_FIELDS))
        word = draw(st.sampled_from(KEYWORD_VALUES[path] + KEYWORD_MISSES))
        value = word[:draw(st.integers(0, len(word)))]
    return {"prefix": {path: value}} if draw(st.booleans()) else {"prefix": {path: {"value": value}}}


@st.composite
def wildcard_pattern(draw: st.DrawFn, word: str) -> str:
    chars = list(word)
    for i in range(len(chars)):
        if draw(st.integers(0, 5)) == 0:
            chars[i] = "?"
    if chars and draw(st.booleans()):
        start = draw(st.integers(0, len(chars) - 1))
        end = draw(st.integers(start, len(chars)))
        chars[start:end] = ["*"]
    if draw(st.integers(0, 4)) == 0:
        chars.insert(draw(st.integers(0, len(chars))), draw(st.sampled_from(["*", "?", "x"])))
    return "".join(chars)


@st.composite
def wildcard_query(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.integers(0, 3)) == 0:
        path = draw(st.sampled_from(TEXT_FIELDS))
        word = draw(st.sampled_from(TEXT_TOKENS[path]))
    else:
        path = draw(st.sampled_from(KEYWORD_FIELDS))
        word = draw(st.sampled_from(KEYWORD_VALUES[path] + KEYWORD_MISSES))
    pattern = draw(wildcard_pattern(word))
    return {"wildcard": {path: {"value": pattern}}} if draw(st.booleans()) else {"wildcard": {path: pattern}}


TERM_LEVEL = st.one_of(term_query(), term_query(), terms_query(), range_query(), range_query(), exists_query(),
                       ids_query(), prefix_query(), wildcard_query())
FULL_TEXT = st.one_of(match_query(), phrase_query())
LEAF = st.one_of(TERM_LEVEL, FULL_TEXT, st.sampled_from([{"match_all": {}}, {"match_none": {}}]))


# -- strategies: compound queries -----------------------------------------------------------------
def compound(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    @st.composite
    def bool_query(draw: st.DrawFn) -> dict[str, Any]:
        body: dict[str, Any] = {}
        count = 0 if draw(st.integers(0, 19)) == 0 else draw(st.integers(1, 4))  # an empty bool matches all
        for _ in range(count):
            occur = draw(st.sampled_from(["must", "filter", "should", "should", "must_not"]))
            body.setdefault(occur, []).append(draw(children))
        for occur, clauses in list(body.items()):
            if len(clauses) == 1 and draw(st.booleans()):
                body[occur] = clauses[0]  # a single clause may be an object instead of a list
        if draw(st.integers(0, 3)) == 0:
            body["minimum_should_match"] = draw(msm_values())
        return {"bool": body}

    @st.composite
    def node(draw: st.DrawFn) -> dict[str, Any]:
        # An explicit draw rather than st.one_of, which in practice picked constant_score 80% of the time.
        kind = draw(st.integers(0, 9))
        if kind < 6:
            return draw(bool_query())
        if kind < 8:
            return {"constant_score": {"filter": draw(children)}}
        return {"dis_max": {"queries": draw(st.lists(children, min_size=1, max_size=3))}}

    return node()


def either(first: st.SearchStrategy[Any], second: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """One of two strategies, half and half (st.one_of leans heavily on its simpler branch)."""
    return st.booleans().flatmap(lambda pick: first if pick else second)


DEPTH_2 = compound(LEAF)  # depth 2
DEPTH_3 = compound(either(LEAF, DEPTH_2))  # depth <= 3

SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
            HealthCheck.function_scoped_fixture]


def examples(n: int) -> settings:
    return settings(max_examples=max(1, int(n * SCALE)), deadline=None, derandomize=not RANDOM, database=None,
                    suppress_health_check=SUPPRESS)


# -- the generated tests --------------------------------------------------------------------------
@examples(900)
@given(query=TERM_LEVEL)
def test_term_level_queries(indices: dict[str, Index], query: dict[str, Any]) -> None:
    check_query(indices, query)


@examples(800)
@given(query=FULL_TEXT)
def test_full_text_queries(indices: dict[str, Index], query: dict[str, Any]) -> None:
    check_query(indices, query)


@examples(900)
@given(query=DEPTH_3)
def test_compound_queries(indices: dict[str, Index], query: dict[str, Any]) -> None:
    check_query(indices, query)


@st.composite
def aggregation(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["terms", "metric", "histogram", "range"]))
    if kind == "terms":
        # Few distinct values (or a size above the count), so each shard returns all its terms and the
        # merged counts are exact on 3 shards too (as in Elasticsearch).
        path = draw(st.sampled_from(["city", "labels", "active", "age", "visits"]))
        size = draw(st.sampled_from([1, 2, 3, 5, 10])) if path in ("city", "labels", "active") else 100
        return {"terms": {"field": path, "size": size}}
    path = draw(st.sampled_from(["age", "visits", "balance"]))
    if kind == "metric":
        return {draw(st.sampled_from(["avg", "min", "max", "sum", "value_count"])): {"field": path}}
    if kind == "histogram":
        interval = draw(st.sampled_from({"age": [1, 5, 7, 10, 2.5], "visits": [1, 3, 10, 2.5],
                                         "balance": [1000, 2500, 7777.5]}[path]))
        body: dict[str, Any] = {"field": path, "interval": interval}
        if draw(st.integers(0, 3)) == 0:
            body["min_doc_count"] = 1
        if draw(st.integers(0, 4)) == 0:
            body["offset"] = draw(st.sampled_from([1, 0.5]))
        return {"histogram": body}
    points = sorted(draw(st.lists(st.sampled_from({"age": [18, 30, 45, 45.5, 60, 90], "visits": [-5, 0, 10, 33],
                                                   "balance": [-500, 0, 100.25, 20000, 49999.99]}[path]),
                                  min_size=1, max_size=3, unique=True)))
    ranges: list[dict[str, Any]] = [{"to": points[0]}]
    ranges += [{"from": a, "to": b} for a, b in zip(points, points[1:])]
    ranges.append({"from": points[-1]})
    return {"range": {"field": path, "ranges": ranges}}


@examples(400)
@given(query=either(LEAF, DEPTH_2), aggs=st.lists(aggregation(), min_size=1, max_size=3))
def test_aggregations(indices: dict[str, Index], query: dict[str, Any], aggs: list[dict[str, Any]]) -> None:
    if known(query) is not None:
        return
    body = {f"a{i}": agg for i, agg in enumerate(aggs)}
    expected = ORACLE.aggregate(body, ORACLE.search(query))
    for name, index in indices.items():
        assert_close(engine_aggs(index, query, body), expected, f"[{name}] aggs {show(body)} query {show(query)}")


@st.composite
def single_token_match(draw: st.DrawFn) -> tuple[str, str]:
    path = draw(st.sampled_from(TEXT_FIELDS))
    text = draw(st.one_of(st.sampled_from(TEXT_TOKENS[path]),
                          substring(TEXT_VALUES[path]).filter(lambda s: len(analyze(s)) == 1)))
    return path, text


@examples(300)
@given(case=single_token_match())
def test_bm25_ranking_on_one_shard(indices: dict[str, Index], case: tuple[str, str]) -> None:
    path, text = case
    (token,) = analyze(text)
    query = {"match": {path: text}}
    expected = ORACLE.bm25(path, token)
    ids, _, scores = engine_search(indices["one"], {"query": query, "size": 1000})
    assert set(ids) == set(expected), show(query)
    got = dict(zip(ids, scores))
    if path == "name":  # in every document, so N and avgdl are the same whichever way they are counted
        for doc_id, score in got.items():
            assert score is not None and math.isclose(score, expected[doc_id] * KNOWN_SCORE_FACTOR, rel_tol=0.10), \
                f"{show(query)}: {doc_id} scored {score}, BM25 says {expected[doc_id]} (x{KNOWN_SCORE_FACTOR})"
    ranked = sorted(expected, key=lambda i: -expected[i])
    for i, high in enumerate(ranked):
        for low in ranked[i + 1:]:
            if expected[high] > expected[low] * 1.10:
                assert got[high] > got[low], (f"{show(query)}: {high} ({CORPUS[high].get(path)!r}, BM25 "
                                              f"{expected[high]:.4f}, engine {got[high]}) should rank above {low} "
                                              f"({CORPUS[low].get(path)!r}, BM25 {expected[low]:.4f}, engine "
                                              f"{got[low]})")


# -- known answers (the product brief) ------------------------------------------------------------
def with_name(predicate: Callable[[str], bool]) -> set[str]:
    return {i for i, d in CORPUS.items() if predicate(d["name"])}


def test_match_zhang_wei_finds_the_zhang_wei_records(indices: dict[str, Index]) -> None:
    exact = with_name(lambda n: n == "张伟")
    containing = with_name(lambda n: "张伟" in n)
    assert len(exact) >= 5 and len(containing) > len(exact)
    for index in indices.values():
        ids, total, _ = engine_search(index, {"query": {"match": {"name": "张伟"}}, "size": 1000})
        assert set(ids) == containing == ORACLE.search({"match": {"name": "张伟"}})


def test_pudong_xinqu_finds_the_addresses_containing_it(indices: dict[str, Index]) -> None:
    def addresses(doc: dict[str, Any]) -> list[str]:
        value = doc.get("address")
        return [] if value is None else value if isinstance(value, list) else [value]
    having = {i for i, d in CORPUS.items() if any("浦东新区" in a for a in addresses(d))}
    assert len(having) >= 5
    for index in indices.values():
        ids, _, _ = engine_search(index, {"query": {"match": {"address": "浦东新区"}}, "size": 1000})
        assert having <= set(ids)
        assert set(ids) == ORACLE.search({"match": {"address": "浦东新区"}})
        phrase, _, _ = engine_search(index, {"query": {"match_phrase": {"address": "浦东新区"}}, "size": 1000})
        assert set(phrase) == having
    ranked, _, _ = engine_search(indices["one"], {"query": {"match": {"address": "浦东新区"}}, "size": len(having)})
    assert set(ranked) == having  # all three bigrams beat one or two of them


def test_exact_zhang_wei_ranks_above_zhang_wei_ming(indices: dict[str, Index]) -> None:
    ids, _, scores = engine_search(indices["one"], {"query": {"match": {"name": "张伟"}}, "size": 1000})
    position = {doc_id: i for i, doc_id in enumerate(ids)}
    exact = with_name(lambda n: n == "张伟")
    longer = with_name(lambda n: n == "张伟明")
    assert exact and longer
    assert max(position[i] for i in exact) < min(position[i] for i in longer)
    assert CORPUS[ids[0]]["name"] == "张伟"
