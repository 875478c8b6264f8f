"""Aggregations against a plain-Python oracle, on one shard and on three shards.

The same deterministic corpus (keyword, long, double, date, boolean fields; missing and
multi-valued values) is indexed twice: index `one` with 1 shard and index `three` with 3 shards.
Every expected answer is computed here from the corpus itself, independently of the engine.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom.engine.aggs import MAX_BUCKETS, DecimalFormat, run_aggregations
from strongroom.engine.index import Index, WriteRequest
from strongroom.engine.node import Engine
from strongroom.engine.search import targets_for
from strongroom.errors import StrongroomError
from strongroom.query.aggs_request import parse_aggregations
from strongroom.query.dsl import parse_query

NOW = 1_710_979_200_000  # 2024-03-21T00:00:00Z
UTC = dt.UTC
NY = ZoneInfo("America/New_York")
TAGS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
MAPPINGS = {"properties": {"tag": {"type": "keyword"}, "n": {"type": "long"}, "x": {"type": "double"},
                           "flag": {"type": "boolean"}, "ts": {"type": "date"}, "title": {"type": "text"}}}
BASE = 1_709_596_800_000  # 2024-03-05T00:00:00Z
SPRING = 1_710_054_000_000  # 2024-03-10T07:00:00Z: New York springs from 02:00 EST to 03:00 EDT
FALL = 1_730_613_600_000  # 2024-11-03T06:00:00Z: New York falls back from 02:00 EDT to 01:00 EST


def make_docs() -> list[dict[str, Any]]:
    rng = random.Random(20240310)
    docs = []
    for i in range(320):
        doc: dict[str, Any] = {"title": f"document number {i}"}
        r = rng.random()
        if r < 0.1:
            pass
        elif r < 0.25:
            doc["tag"] = rng.sample(TAGS, 2)
        else:
            doc["tag"] = TAGS[min(int(rng.expovariate(0.45)), 7)]
        r = rng.random()
        if r < 0.08:
            pass
        elif r < 0.18:
            doc["n"] = rng.sample(range(-20, 81), rng.choice([2, 3]))
        else:
            doc["n"] = rng.randint(-20, 80)
        if rng.random() >= 0.1:
            doc["x"] = round((i * 7919 % 1000) / 7.0 - 40, 3)  # distinct for every document
        if rng.random() >= 0.1:
            doc["flag"] = rng.random() < 0.4
        r = rng.random()
        if r < 0.07:
            pass
        elif r < 0.25:
            doc["ts"] = SPRING - 5 * 3_600_000 + rng.randint(0, 10 * 3_600_000)  # around the spring DST change
        elif r < 0.32:
            doc["ts"] = FALL - 3 * 3_600_000 + rng.randint(0, 5 * 3_600_000)  # around the fall DST change
        else:
            doc["ts"] = BASE + rng.randint(0, 16 * 86_400_000)
        docs.append(doc)
    return docs


DOCS = make_docs()


@pytest.fixture(scope="module")
def indices(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    engine = Engine(Path(tmp_path_factory.mktemp("aggs")) / "data", writer_heap_bytes=20_000_000)
    one = engine.create_index("one", {"number_of_shards": 1}, MAPPINGS)
    three = engine.create_index("three", {"number_of_shards": 3}, MAPPINGS)
    other = engine.create_index("other", {"number_of_shards": 2}, {"properties": {"tag": {"type": "keyword"},
                                                                                    "n": {"type": "long"}}})
    for index in (one, three):
        index.write([WriteRequest("index", str(i), doc, orjson.dumps(doc)) for i, doc in enumerate(DOCS)])
        index.refresh()
    extra = [{"tag": "omega", "n": 5}, {"tag": "alpha"}, {"n": 7}]
    other.write([WriteRequest("index", f"o{i}", doc, orjson.dumps(doc)) for i, doc in enumerate(extra)])
    other.refresh()
    yield {"one": one, "three": three, "other": other, "extra": extra}
    engine.close()


def run(index: Index | list[Index], aggs: dict[str, Any], query: dict[str, Any] | None = None, **kw: Any
        ) -> dict[str, Any]:
    indices = index if isinstance(index, list) else [index]
    return run_aggregations(targets_for(indices), parse_query(query or {"match_all": {}}), parse_aggregations(aggs),
                            now_millis=NOW, **kw)


def both(indices: dict[str, Any], aggs: dict[str, Any], expected: dict[str, Any],
         query: dict[str, Any] | None = None, **kw: Any) -> None:
    for name in ("one", "three"):
        assert_close(run(indices[name], aggs, query, **kw), expected, name)


def assert_close(actual: Any, expected: Any, where: str = "") -> None:
    """Equal, with floats compared to 1e-9 relative (sums add up in a different order on each shard)."""
    if isinstance(expected, float) and isinstance(actual, (int, float)) and not isinstance(actual, bool):
        assert math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-9), f"{where}: {actual} != {expected}"
        return
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not an object"
        assert list(actual) == list(expected), f"{where}: keys {list(actual)} != {list(expected)}"
        for key in expected:
            assert_close(actual[key], expected[key], f"{where}.{key}")
        return
    if isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{where}: {actual!r} != {expected!r}"
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_close(a, e, f"{where}[{i}]")
        return
    assert actual == expected and type(actual) is type(expected), f"{where}: {actual!r} != {expected!r}"


# -- the oracle ---------------------------------------------------------------------------------
def values(doc: dict[str, Any], path: str) -> list[Any]:
    value = doc.get(path)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def matching(query: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
    return [d for d in DOCS if query is None or query(d)]


def iso(ms: int, tz: dt.tzinfo = UTC) -> str:
    moment = dt.datetime.fromtimestamp(ms / 1000, tz)
    offset = moment.utcoffset()
    assert offset is not None
    zone = "Z" if offset == dt.timedelta(0) else moment.strftime("%z")[:3] + ":" + moment.strftime("%z")[3:]
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}" + zone


def key_of(value: Any) -> Any:
    return 1 if value is True else 0 if value is False else value


def o_terms(docs: list[dict[str, Any]], path: str, *, size: int = 10, order: str = "count_desc",
            min_doc_count: int = 1, missing: Any = None, keep: Callable[[Any], bool] | None = None,
            sub: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None,
            sort_value: Callable[[list[dict[str, Any]]], Any] | None = None, descending: bool = True,
            render: Callable[[Any], dict[str, Any]] | None = None) -> dict[str, Any]:
    groups: dict[Any, list[dict[str, Any]]] = {}
    for doc in docs:
        vals = {key_of(v) for v in values(doc, path)}
        if not vals and missing is not None:
            vals = {key_of(missing)}
        for v in vals:
            groups.setdefault(v, []).append(doc)
    items = [(k, g) for k, g in groups.items() if (keep is None or keep(k)) and len(g) >= min_doc_count]
    items.sort(key=lambda kv: kv[0])
    if order == "count_desc":
        items.sort(key=lambda kv: -len(kv[1]))
    elif order == "count_asc":
        items.sort(key=lambda kv: len(kv[1]))
    elif order == "key_desc":
        items.sort(key=lambda kv: kv[0], reverse=True)
    elif order == "metric":
        assert sort_value is not None
        present = [kv for kv in items if sort_value(kv[1]) is not None]
        absent = [kv for kv in items if sort_value(kv[1]) is None]
        present.sort(key=lambda kv: sort_value(kv[1]), reverse=descending)
        items = present + absent
    chosen = items[:size]
    other = sum(len(g) for _, g in items[size:])
    buckets = []
    for key, group in chosen:
        bucket = render(key) if render else {"key": key}
        bucket["doc_count"] = len(group)
        if sub is not None:
            bucket.update(sub(group))
        buckets.append(bucket)
    return {"doc_count_error_upper_bound": 0, "sum_other_doc_count": other, "buckets": buckets}


def o_stats(docs: list[dict[str, Any]], path: str) -> tuple[int, float, float | None, float | None]:
    vals = [float(v) for d in docs for v in values(d, path)]
    return len(vals), float(sum(vals)), (min(vals) if vals else None), (max(vals) if vals else None)


def o_avg(docs: list[dict[str, Any]], path: str) -> float | None:
    count, total, _, _ = o_stats(docs, path)
    return total / count if count else None


def o_percentile(vals: list[float], p: float) -> float | None:
    if not vals:
        return None
    vals = sorted(vals)
    index = p / 100 * (len(vals) - 1)
    low = math.floor(index)
    high = min(low + 1, len(vals) - 1)
    return vals[low] + (index - low) * (vals[high] - vals[low])


def o_histogram(docs: list[dict[str, Any]], path: str, interval: float, *, offset: float = 0.0,
                min_doc_count: int = 0, extended: tuple[float, float] | None = None,
                hard: tuple[float, float] | None = None, missing: float | None = None,
                sub: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None) -> dict[str, Any]:
    def key(v: float) -> float:
        return math.floor((v - offset) / interval) * interval + offset
    groups: dict[float, list[dict[str, Any]]] = {}
    for doc in docs:
        vals = values(doc, path) or ([missing] if missing is not None else [])
        for k in {key(float(v)) for v in vals}:
            groups.setdefault(k, []).append(doc)
    if hard is not None:
        groups = {k: g for k, g in groups.items() if hard[0] <= k <= hard[1]}
    keys = sorted(groups)
    if min_doc_count == 0 and (keys or extended):
        low = min(keys + ([key(max(extended[0], hard[0]) if hard else extended[0])] if extended else []))
        high = max(keys + ([key(min(extended[1], hard[1]) if hard else extended[1])] if extended else []))
        for number in range(round((low - offset) / interval), round((high - offset) / interval) + 1):
            groups.setdefault(number * interval + offset, [])
    buckets = []
    for k in sorted(groups):
        if len(groups[k]) < max(min_doc_count, 0) or (min_doc_count > 0 and not groups[k]):
            continue
        bucket: dict[str, Any] = {"key": float(k), "doc_count": len(groups[k])}
        if sub is not None:
            bucket.update(sub(groups[k]))
        buckets.append(bucket)
    return {"buckets": buckets}


def day_start(ms: int, tz: dt.tzinfo) -> int:
    day = dt.datetime.fromtimestamp(ms / 1000, tz).date()
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=tz).timestamp() * 1000)


def next_day(ms: int, tz: dt.tzinfo) -> int:
    day = dt.datetime.fromtimestamp(ms / 1000, tz).date() + dt.timedelta(days=1)
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=tz).timestamp() * 1000)


def hour_start(ms: int, tz: dt.tzinfo) -> int:
    moment = dt.datetime.fromtimestamp(ms / 1000, tz)
    return int(moment.replace(minute=0, second=0, microsecond=0).timestamp() * 1000)


def month_start(ms: int, tz: dt.tzinfo) -> int:
    day = dt.datetime.fromtimestamp(ms / 1000, tz).date()
    return int(dt.datetime(day.year, day.month, 1, tzinfo=tz).timestamp() * 1000)


def next_month(ms: int, tz: dt.tzinfo) -> int:
    day = dt.datetime.fromtimestamp(ms / 1000, tz).date()
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return int(dt.datetime(year, month, 1, tzinfo=tz).timestamp() * 1000)


def o_date_histogram(docs: list[dict[str, Any]], path: str, round_: Callable[[int], int],
                     next_: Callable[[int], int], text: Callable[[int], str], *, min_doc_count: int = 0,
                     extended: tuple[int, int] | None = None, missing: int | None = None, keyed: bool = False,
                     sub: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None) -> dict[str, Any]:
    groups: dict[int, list[dict[str, Any]]] = {}
    for doc in docs:
        vals = values(doc, path) or ([missing] if missing is not None else [])
        for k in {round_(v) for v in vals}:
            groups.setdefault(k, []).append(doc)
    if min_doc_count == 0 and (groups or extended):
        keys = list(groups) + ([round_(extended[0]), round_(extended[1])] if extended else [])
        k, high = min(keys), max(keys)
        while k <= high:
            groups.setdefault(k, [])
            k = next_(k)
    buckets = []
    for k in sorted(groups):
        if min_doc_count and len(groups[k]) < min_doc_count:
            continue
        bucket: dict[str, Any] = {"key_as_string": text(k), "key": k, "doc_count": len(groups[k])}
        if sub is not None:
            bucket.update(sub(groups[k]))
        buckets.append(bucket)
    if keyed:
        return {"buckets": {b["key_as_string"]: b for b in buckets}}
    return {"buckets": buckets}


def in_range(v: float, low: float | None, high: float | None) -> bool:
    return (low is None or v >= low) and (high is None or v < high)


# -- terms --------------------------------------------------------------------------------------
def test_terms_on_keywords(indices: dict[str, Any]) -> None:
    docs = matching()
    both(indices, {"t": {"terms": {"field": "tag"}}}, {"t": o_terms(docs, "tag")})
    both(indices, {"t": {"terms": {"field": "tag", "size": 3}}}, {"t": o_terms(docs, "tag", size=3)})
    both(indices, {"t": {"terms": {"field": "tag", "order": {"_key": "desc"}, "size": 4}}},
         {"t": o_terms(docs, "tag", order="key_desc", size=4)})
    both(indices, {"t": {"terms": {"field": "tag", "order": {"_count": "asc"}}}},
         {"t": o_terms(docs, "tag", order="count_asc")})
    both(indices, {"t": {"terms": {"field": "tag", "min_doc_count": 40}}},
         {"t": o_terms(docs, "tag", min_doc_count=40)})
    both(indices, {"t": {"terms": {"field": "tag", "missing": "(none)"}}},
         {"t": o_terms(docs, "tag", missing="(none)")})
    both(indices, {"t": {"terms": {"field": "tag", "include": ".*ta"}}},
         {"t": o_terms(docs, "tag", keep=lambda k: k.endswith("ta"))})
    both(indices, {"t": {"terms": {"field": "tag", "include": ["beta", "eta", "nothing"]}}},
         {"t": o_terms(docs, "tag", keep=lambda k: k in ("beta", "eta"))})
    both(indices, {"t": {"terms": {"field": "tag", "exclude": "(alpha|beta)"}}},
         {"t": o_terms(docs, "tag", keep=lambda k: k not in ("alpha", "beta"))})
    query = {"range": {"n": {"gte": 50}}}
    both(indices, {"t": {"terms": {"field": "tag", "min_doc_count": 0, "size": 20}}},
         {"t": o_terms_zero(matching(lambda d: any(v >= 50 for v in values(d, "n"))))}, query)


def o_terms_zero(docs: list[dict[str, Any]]) -> dict[str, Any]:
    counts = Counter(v for d in docs for v in set(values(d, "tag")))
    everything = {v for d in DOCS for v in values(d, "tag")}
    items = sorted(((k, counts.get(k, 0)) for k in everything), key=lambda kv: (-kv[1], kv[0]))
    return {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0,
            "buckets": [{"key": k, "doc_count": c} for k, c in items]}


def test_terms_on_numbers_booleans_and_dates(indices: dict[str, Any]) -> None:
    docs = matching()
    both(indices, {"t": {"terms": {"field": "n", "size": 5, "shard_size": 200}}}, {"t": o_terms(docs, "n", size=5)})
    # Default shard_size on three shards: approximate, as in Elasticsearch, with an honest error bound.
    result = run(indices["three"], {"t": {"terms": {"field": "n", "size": 5}}})["t"]
    exact = o_terms(docs, "n", size=5)
    counted = sum(b["doc_count"] for b in result["buckets"]) + result["sum_other_doc_count"]
    assert counted == sum(b["doc_count"] for b in o_terms(docs, "n", size=1000)["buckets"])
    assert result["doc_count_error_upper_bound"] > 0
    for bucket in result["buckets"][:len(exact["buckets"])]:
        true_count = next(b["doc_count"] for b in o_terms(docs, "n", size=1000)["buckets"] if b["key"] == bucket["key"])
        assert true_count - result["doc_count_error_upper_bound"] <= bucket["doc_count"] <= true_count
    assert run(indices["one"], {"t": {"terms": {"field": "n", "size": 5}}})["t"] == exact
    both(indices, {"t": {"terms": {"field": "n", "size": 6, "order": {"_key": "asc"}, "include": [3, 4, 5, 70]}}},
         {"t": o_terms(docs, "n", size=6, order="key_asc", keep=lambda k: k in (3, 4, 5, 70))})
    both(indices, {"t": {"terms": {"field": "x", "size": 3, "order": {"_key": "asc"}}}},
         {"t": o_terms(docs, "x", size=3, order="key_asc")})
    both(indices, {"t": {"terms": {"field": "flag", "missing": False}}},
         {"t": o_terms(docs, "flag", missing=False,
                       render=lambda k: {"key": k, "key_as_string": "true" if k else "false"})})
    expected = o_terms(docs, "ts", size=4, order="key_asc",
                       render=lambda k: {"key": k, "key_as_string": iso(k)})
    for name in ("one", "three"):
        result = run(indices[name], {"t": {"terms": {"field": "ts", "size": 4, "order": {"_key": "asc"}}}})
        assert_close(result, {"t": expected}, name)


def test_terms_ordered_by_sub_metrics(indices: dict[str, Any]) -> None:
    docs = matching()
    both(indices, {"t": {"terms": {"field": "tag", "order": {"avg_x": "desc"}},
                         "aggs": {"avg_x": {"avg": {"field": "x"}}}}},
         {"t": o_terms(docs, "tag", order="metric", sort_value=lambda g: o_avg(g, "x"),
                       sub=lambda g: {"avg_x": {"value": o_avg(g, "x")}})})
    both(indices, {"t": {"terms": {"field": "tag", "size": 3, "order": {"st.max": "asc"}},
                         "aggs": {"st": {"stats": {"field": "n"}}}}},
         {"t": o_terms(docs, "tag", size=3, order="metric", descending=False,
                       sort_value=lambda g: o_stats(g, "n")[3], sub=lambda g: {"st": stats_json(g, "n")})})
    by_key_desc = sorted(o_terms(docs, "tag", size=100, sub=lambda g: {"c": high_count(g)})["buckets"],
                         key=lambda b: b["key"], reverse=True)
    ordered = sorted(by_key_desc, key=lambda b: -b["c"])
    both(indices, {"t": {"terms": {"field": "tag", "order": [{"hi>c": "desc"}, {"_key": "desc"}]},
                         "aggs": {"hi": {"filter": {"range": {"n": {"gte": 40}}},
                                         "aggs": {"c": {"value_count": {"field": "n"}}}}}}},
         {"t": {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0, "buckets": [
             {"key": b["key"], "doc_count": b["doc_count"],
              "hi": {"doc_count": sum(1 for d in docs if b["key"] in values(d, "tag")
                                      and any(v >= 40 for v in values(d, "n"))), "c": {"value": b["c"]}}}
             for b in ordered]}})


def high_count(group: list[dict[str, Any]]) -> int:
    return sum(len(values(d, "n")) for d in group if any(v >= 40 for v in values(d, "n")))


def stats_json(docs: list[dict[str, Any]], path: str) -> dict[str, Any]:
    count, total, low, high = o_stats(docs, path)
    return {"count": count, "min": low, "max": high, "avg": total / count if count else None,
            "sum": total if count else 0.0}


# -- histograms ---------------------------------------------------------------------------------
def test_histogram(indices: dict[str, Any]) -> None:
    docs = matching()
    both(indices, {"h": {"histogram": {"field": "n", "interval": 10}}}, {"h": o_histogram(docs, "n", 10)})
    both(indices, {"h": {"histogram": {"field": "n", "interval": 7, "offset": 3, "min_doc_count": 10}}},
         {"h": o_histogram(docs, "n", 7, offset=3, min_doc_count=10)})
    both(indices, {"h": {"histogram": {"field": "x", "interval": 12.5, "extended_bounds": {"min": -100, "max": 200},
                                       "hard_bounds": {"min": -60, "max": 150}}}},
         {"h": o_histogram(docs, "x", 12.5, extended=(-100, 200), hard=(-60, 150))})
    both(indices, {"h": {"histogram": {"field": "n", "interval": 25, "missing": 1000}}},
         {"h": o_histogram(docs, "n", 25, missing=1000)})
    both(indices, {"h": {"histogram": {"field": "n", "interval": 20},
                         "aggs": {"a": {"avg": {"field": "x"}}}}},
         {"h": o_histogram(docs, "n", 20, sub=lambda g: {"a": {"value": o_avg(g, "x")}})})
    keyed = run(indices["three"], {"h": {"histogram": {"field": "n", "interval": 50, "keyed": True}}})
    assert list(keyed["h"]["buckets"]) == ["-50.0", "0.0", "50.0"]
    query = {"range": {"n": {"gte": 1000}}}  # nothing: no buckets at all
    both(indices, {"h": {"histogram": {"field": "n", "interval": 10}}}, {"h": {"buckets": []}}, query)


def test_date_histogram_calendar_and_fixed(indices: dict[str, Any]) -> None:
    docs = matching(lambda d: d.get("ts") is not None and d["ts"] < FALL - 86_400_000)
    query = {"range": {"ts": {"lt": FALL - 86_400_000}}}
    both(indices, {"d": {"date_histogram": {"field": "ts", "calendar_interval": "day"}}},
         {"d": o_date_histogram(docs, "ts", lambda v: day_start(v, UTC), lambda k: next_day(k, UTC), iso)}, query)
    both(indices, {"d": {"date_histogram": {"field": "ts", "fixed_interval": "12h", "min_doc_count": 1}}},
         {"d": o_date_histogram(docs, "ts", lambda v: v - v % 43_200_000, lambda k: k + 43_200_000, iso,
                                min_doc_count=1)}, query)
    six = 6 * 3_600_000
    both(indices, {"d": {"date_histogram": {"field": "ts", "calendar_interval": "1d", "offset": "+6h",
                                            "format": "yyyy-MM-dd HH:mm"}}},
         {"d": o_date_histogram(docs, "ts", lambda v: day_start(v - six, UTC) + six,
                                lambda k: next_day(k - six, UTC) + six,
                                lambda k: dt.datetime.fromtimestamp(k / 1000, UTC).strftime("%Y-%m-%d %H:%M"))},
         query)
    monday = 4 * 86_400_000
    week = 7 * 86_400_000
    both(indices, {"d": {"date_histogram": {"field": "ts", "calendar_interval": "week", "keyed": True}}},
         {"d": o_date_histogram(docs, "ts", lambda v: (v - monday) // week * week + monday, lambda k: k + week, iso,
                                keyed=True)}, query)
    all_docs = matching()
    both(indices, {"d": {"date_histogram": {"field": "ts", "calendar_interval": "month", "missing": BASE,
                                            "extended_bounds": {"min": "2024-01-15", "max": "2024-12-01"}}}},
         {"d": o_date_histogram(all_docs, "ts", lambda v: month_start(v, UTC), lambda k: next_month(k, UTC), iso,
                                missing=BASE, extended=(1_705_276_800_000, 1_733_011_200_000))})
    both(indices, {"d": {"date_histogram": {"field": "ts", "interval": "month", "time_zone": "+05:30"}}},
         {"d": o_date_histogram(all_docs, "ts", lambda v: month_start(v, IST), lambda k: next_month(k, IST),
                                lambda k: iso(k, IST))})


IST = dt.timezone(dt.timedelta(hours=5, minutes=30))


def test_date_histogram_across_dst_changes(indices: dict[str, Any]) -> None:
    spring = matching(lambda d: d.get("ts") is not None and SPRING - 86_400_000 <= d["ts"] < SPRING + 86_400_000)
    query = {"range": {"ts": {"gte": SPRING - 86_400_000, "lt": SPRING + 86_400_000}}}
    expected = o_date_histogram(spring, "ts", lambda v: hour_start(v, NY), lambda k: hour_start(k + 3_600_000, NY),
                                lambda k: iso(k, NY))
    both(indices, {"d": {"date_histogram": {"field": "ts", "calendar_interval": "hour",
                                            "time_zone": "America/New_York"}}}, {"d": expected}, query)
    labels = [b["key_as_string"] for b in expected["buckets"]]
    assert "2024-03-10T01:00:00.000-05:00" in labels and "2024-03-10T03:00:00.000-04:00" in labels
    assert not any(label.startswith("2024-03-10T02:") for label in labels)  # that hour does not exist there

    fall = matching(lambda d: d.get("ts") is not None and d["ts"] >= FALL - 86_400_000)
    query = {"range": {"ts": {"gte": FALL - 86_400_000}}}
    expected = o_date_histogram(fall, "ts", lambda v: hour_start(v, NY), lambda k: hour_start(k + 3_600_000, NY),
                                lambda k: iso(k, NY))
    both(indices, {"d": {"date_histogram": {"field": "ts", "calendar_interval": "1h",
                                            "time_zone": "America/New_York"}}}, {"d": expected}, query)
    labels = [b["key_as_string"] for b in expected["buckets"]]
    assert "2024-11-03T01:00:00.000-04:00" in labels and "2024-11-03T01:00:00.000-05:00" in labels

    docs = matching()
    expected = o_date_histogram(docs, "ts", lambda v: day_start(v, NY), lambda k: next_day(k, NY),
                                lambda k: iso(k, NY), min_doc_count=1,
                                sub=lambda g: {"n": {"value": o_stats(g, "n")[1] if o_stats(g, "n")[0] else 0.0}})
    both(indices, {"d": {"date_histogram": {"field": "ts", "calendar_interval": "day", "min_doc_count": 1,
                                            "time_zone": "America/New_York"}, "aggs": {"n": {"sum": {"field": "n"}}}}},
         {"d": expected})
    keys = [b["key"] for b in expected["buckets"]]
    spring_day = day_start(SPRING, NY)
    assert next_day(spring_day, NY) - spring_day == 23 * 3_600_000 and spring_day in keys


# -- ranges ---------------------------------------------------------------------------------------
def o_range(docs: list[dict[str, Any]], path: str, ranges: list[tuple[str | None, float | None, float | None]],
            *, keyed: bool = False, text: Callable[[float], str] | None = None,
            sub: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None) -> dict[str, Any]:
    from strongroom.engine.aggs import java_double
    out = []
    order = sorted(ranges, key=lambda r: (-math.inf if r[1] is None else r[1], math.inf if r[2] is None else r[2]))
    for key, low, high in order:
        group = [d for d in docs if any(in_range(float(v), low, high) for v in values(d, path))]
        show = text or java_double
        bucket: dict[str, Any] = {"key": key or f"{'*' if low is None else show(low)}-"
                                               f"{'*' if high is None else show(high)}"}
        if low is not None:
            bucket["from"] = float(low)
            if text:
                bucket["from_as_string"] = text(low)
        if high is not None:
            bucket["to"] = float(high)
            if text:
                bucket["to_as_string"] = text(high)
        bucket["doc_count"] = len(group)
        if sub is not None:
            bucket.update(sub(group))
        out.append(bucket)
    if keyed:
        return {"buckets": {b.pop("key"): b for b in out}}
    return {"buckets": out}


def test_range_and_date_range(indices: dict[str, Any]) -> None:
    docs = matching()
    ranges: list[tuple[str | None, float | None, float | None]] = [
        (None, None, 0), ("mid", -5.5, 40.5), (None, 30, None), (None, 30, 35), ("empty", 10, 10)]
    both(indices, {"r": {"range": {"field": "n", "ranges": [
        {"to": 0}, {"key": "mid", "from": -5.5, "to": 40.5}, {"from": 30}, {"from": 30, "to": 35},
        {"key": "empty", "from": 10, "to": 10}]}, "aggs": {"c": {"cardinality": {"field": "tag"}}}}},
        {"r": o_range(docs, "n", ranges, sub=lambda g: {"c": {"value": len({v for d in g
                                                                             for v in values(d, "tag")})}})})
    both(indices, {"r": {"range": {"field": "x", "keyed": True, "ranges": [{"to": 10.25}, {"from": 10.25}]}}},
         {"r": o_range(docs, "x", [(None, None, 10.25), (None, 10.25, None)], keyed=True)})
    march_10 = 1_710_028_800_000
    day = 86_400_000
    both(indices, {"r": {"date_range": {"field": "ts", "ranges": [{"to": "2024-03-10"},
                                                                  {"from": "2024-03-10", "to": "now-10d/d"},
                                                                  {"from": "now-10d/d"}]}}},
         {"r": o_range(docs, "ts", [(None, None, march_10), (None, march_10, NOW - 10 * day),
                                    (None, NOW - 10 * day, None)], text=lambda v: iso(int(v)))})
    ny_start = int(dt.datetime(2024, 3, 10, tzinfo=NY).timestamp() * 1000)
    both(indices, {"r": {"date_range": {"field": "ts", "time_zone": "America/New_York", "format": "yyyy-MM-dd",
                                        "ranges": [{"key": "before", "to": "2024-03-10"},
                                                   {"key": "after", "from": "2024-03-10"}]}}},
         {"r": o_range(docs, "ts", [("before", None, ny_start), ("after", ny_start, None)],
                       text=lambda v: dt.datetime.fromtimestamp(v / 1000, NY).strftime("%Y-%m-%d"))})


# -- metrics --------------------------------------------------------------------------------------
def test_metrics(indices: dict[str, Any]) -> None:
    docs = matching()
    count, total, low, _high = o_stats(docs, "n")
    both(indices, {"a": {"avg": {"field": "n"}}, "mn": {"min": {"field": "n"}}, "mx": {"max": {"field": "x"}},
                   "s": {"sum": {"field": "x"}}, "vc": {"value_count": {"field": "n"}},
                   "vk": {"value_count": {"field": "tag"}}, "st": {"stats": {"field": "n"}}},
         {"a": {"value": total / count}, "mn": {"value": low}, "mx": {"value": o_stats(docs, "x")[3]},
          "s": {"value": o_stats(docs, "x")[1]}, "vc": {"value": count},
          "vk": {"value": sum(len(set(values(d, "tag"))) for d in docs)}, "st": stats_json(docs, "n")})
    xs = [float(v) for d in docs for v in values(d, "x")]
    mean = sum(xs) / len(xs)
    population = sum((v - mean) ** 2 for v in xs) / len(xs)
    sample = sum((v - mean) ** 2 for v in xs) / (len(xs) - 1)
    result = run(indices["three"], {"e": {"extended_stats": {"field": "x", "sigma": 3}}})["e"]
    assert result["count"] == len(xs) and math.isclose(result["avg"], mean)
    assert math.isclose(result["variance"], population, rel_tol=1e-6)
    assert math.isclose(result["std_deviation_sampling"], math.sqrt(sample), rel_tol=1e-6)
    assert math.isclose(result["std_deviation_bounds"]["upper"], mean + 3 * math.sqrt(population), rel_tol=1e-6)
    assert math.isclose(result["sum_of_squares"], sum(v * v for v in xs), rel_tol=1e-9)
    assert_close(run(indices["one"], {"e": {"extended_stats": {"field": "x", "sigma": 3}}})["e"], result)
    with_missing = [values(d, "n") or [100] for d in docs]
    flat = [float(v) for vs in with_missing for v in vs]
    both(indices, {"a": {"avg": {"field": "n", "missing": 100}}}, {"a": {"value": sum(flat) / len(flat)}})
    flags = [1.0 if v else 0.0 for d in docs for v in values(d, "flag")]
    both(indices, {"a": {"avg": {"field": "flag"}}, "m": {"max": {"field": "flag"}}},
         {"a": {"value": sum(flags) / len(flags)}, "m": {"value": 1.0}})
    stamps = [v for d in docs for v in values(d, "ts")]
    both(indices, {"lo": {"min": {"field": "ts"}}, "hi": {"max": {"field": "ts", "format": "yyyy-MM-dd"}}},
         {"lo": {"value": float(min(stamps)), "value_as_string": iso(min(stamps))},
          "hi": {"value": float(max(stamps)),
                 "value_as_string": dt.datetime.fromtimestamp(max(stamps) / 1000, UTC).strftime("%Y-%m-%d")}})
    query = {"term": {"tag": "no-such-tag"}}
    both(indices, {"a": {"avg": {"field": "n"}}, "s": {"sum": {"field": "n"}}, "c": {"value_count": {"field": "n"}},
                   "st": {"stats": {"field": "n"}}},
         {"a": {"value": None}, "s": {"value": 0.0}, "c": {"value": 0},
          "st": {"count": 0, "min": None, "max": None, "avg": None, "sum": 0.0}}, query)


def test_cardinality_and_percentiles(indices: dict[str, Any]) -> None:
    docs = matching()
    tags = {v for d in docs for v in values(d, "tag")}
    numbers = {v for d in docs for v in values(d, "n")}
    for name in ("one", "three"):
        result = run(indices[name], {"t": {"cardinality": {"field": "tag", "precision_threshold": 100}},
                                     "n": {"cardinality": {"field": "n"}}})
        assert abs(result["t"]["value"] - len(tags)) <= 0.05 * len(tags)
        assert abs(result["n"]["value"] - len(numbers)) <= 0.05 * len(numbers)
    ns = [float(v) for d in docs for v in values(d, "n")]
    xs = [float(v) for d in docs for v in values(d, "x")]
    spread = max(ns) - min(ns)
    for name in ("one", "three"):
        result = run(indices[name], {"p": {"percentiles": {"field": "n"}},
                                     "q": {"percentiles": {"field": "x", "percents": [10, 99.9], "keyed": False,
                                                           "tdigest": {"compression": 200}}}})
        assert list(result["p"]["values"]) == ["1.0", "5.0", "25.0", "50.0", "75.0", "95.0", "99.0"]
        for key, value in result["p"]["values"].items():
            assert abs(value - o_percentile(ns, float(key))) <= 0.02 * spread  # type: ignore[operator]
        assert [v["key"] for v in result["q"]["values"]] == [10.0, 99.9]
        for item in result["q"]["values"]:
            assert abs(item["value"] - o_percentile(xs, item["key"])) <= 0.02 * (max(xs) - min(xs))  # type: ignore


# -- single-bucket and filters --------------------------------------------------------------------
def test_filter_filters_missing_global(indices: dict[str, Any]) -> None:
    docs = matching()
    big = [d for d in docs if any(v >= 50 for v in values(d, "n"))]
    both(indices, {"f": {"filter": {"range": {"n": {"gte": 50}}}, "aggs": {"a": {"avg": {"field": "x"}}}}},
         {"f": {"doc_count": len(big), "a": {"value": o_avg(big, "x")}}})
    alpha = [d for d in docs if "alpha" in values(d, "tag")]
    flagged = [d for d in docs if True in values(d, "flag")]
    rest = [d for d in docs if d not in alpha and d not in flagged]
    both(indices, {"f": {"filters": {"filters": {"alpha": {"term": {"tag": "alpha"}}, "flag": {"term": {"flag": True}}},
                                     "other_bucket_key": "rest"}}},
         {"f": {"buckets": {"alpha": {"doc_count": len(alpha)}, "flag": {"doc_count": len(flagged)},
                            "rest": {"doc_count": len(rest)}}}})
    both(indices, {"f": {"filters": {"filters": [{"term": {"tag": "alpha"}}, {"exists": {"field": "ts"}}],
                                     "other_bucket": True}}},
         {"f": {"buckets": [{"doc_count": len(alpha)},
                            {"doc_count": sum(1 for d in docs if "ts" in d)},
                            {"doc_count": sum(1 for d in docs if "ts" not in d and d not in alpha)}]}})
    query = {"term": {"tag": "beta"}}
    beta = [d for d in docs if "beta" in values(d, "tag")]
    both(indices, {"m": {"missing": {"field": "n"}, "aggs": {"c": {"value_count": {"field": "x"}}}},
                   "g": {"global": {}, "aggs": {"all": {"value_count": {"field": "n"}}}},
                   "u": {"missing": {"field": "unknown"}}},
         {"m": {"doc_count": sum(1 for d in beta if not values(d, "n")),
                "c": {"value": sum(1 for d in beta if not values(d, "n") and "x" in d)}},
          "g": {"doc_count": len(DOCS), "all": {"value": sum(len(values(d, "n")) for d in DOCS)}},
          "u": {"doc_count": len(beta)}}, query)


def test_top_hits(indices: dict[str, Any]) -> None:
    docs = matching()
    for name in ("one", "three"):
        result = run(indices[name], {"t": {"terms": {"field": "tag", "size": 2},
                                           "aggs": {"top": {"top_hits": {"size": 2, "sort": [{"x": "desc"}],
                                                                         "_source": ["x", "tag"]}}}}})
        for bucket in result["t"]["buckets"]:
            group = [(i, d) for i, d in enumerate(docs) if bucket["key"] in values(d, "tag")]
            best = sorted((p for p in group if "x" in p[1]), key=lambda p: -p[1]["x"])[:2]
            hits = bucket["top"]["hits"]
            assert hits["total"] == {"value": len(group), "relation": "eq"} and hits["max_score"] is None
            assert [h["_id"] for h in hits["hits"]] == [str(i) for i, _ in best]
            assert [h["_source"] for h in hits["hits"]] == [{"tag": d["tag"], "x": d["x"]} for _, d in best]
            assert [h["sort"] for h in hits["hits"]] == [[d["x"]] for _, d in best]
            assert all(h["_index"] == name and h["_score"] is None for h in hits["hits"])
        plain = run(indices[name], {"t": {"top_hits": {}}}, {"term": {"tag": "theta"}})["t"]["hits"]
        assert len(plain["hits"]) == 3 and plain["max_score"] == pytest.approx(plain["hits"][0]["_score"])
        assert {"_index", "_id", "_score", "_source"} == set(plain["hits"][0])


# -- nesting, typed keys, unmapped fields, several indices ------------------------------------------
def test_sub_aggregations_three_deep(indices: dict[str, Any]) -> None:
    docs = matching()

    def per_day(group: list[dict[str, Any]]) -> dict[str, Any]:
        return {"by_day": o_date_histogram(group, "ts", lambda v: day_start(v, NY), lambda k: next_day(k, NY),
                                           lambda k: iso(k, NY), min_doc_count=1, sub=per_flag)}

    def per_flag(group: list[dict[str, Any]]) -> dict[str, Any]:
        on = [d for d in group if True in values(d, "flag")]
        return {"flags": {"buckets": {"on": {"doc_count": len(on), "x": {"value": o_stats(on, "x")[3]}}}}}

    query = {"range": {"ts": {"lt": SPRING + 86_400_000}}}
    subset = matching(lambda d: d.get("ts") is not None and d["ts"] < SPRING + 86_400_000)
    both(indices, {"t": {"terms": {"field": "tag", "size": 3}, "aggs": {
        "by_day": {"date_histogram": {"field": "ts", "calendar_interval": "day", "time_zone": "America/New_York",
                                      "min_doc_count": 1},
                   "aggs": {"flags": {"filters": {"filters": {"on": {"term": {"flag": True}}}},
                                      "aggs": {"x": {"max": {"field": "x"}}}}}}}}},
         {"t": o_terms(subset, "tag", size=3, sub=per_day)}, query)
    # filters inside terms, histogram inside histogram inside terms (tantivy nests all three).
    both(indices, {"t": {"terms": {"field": "flag"}, "aggs": {"h": {"histogram": {"field": "n", "interval": 50},
                                                                    "aggs": {"r": {"range": {"field": "x", "ranges": [
                                                                        {"to": 0}, {"from": 0}]}}}}}}},
         {"t": o_terms(docs, "flag", render=lambda k: {"key": k, "key_as_string": "true" if k else "false"},
                       sub=lambda g: {"h": o_histogram(g, "n", 50, sub=lambda g2: {
                           "r": o_range(g2, "x", [(None, None, 0), (None, 0, None)])})})})


def test_nesting_beyond_tantivys_bucket_limit(indices: dict[str, Any]) -> None:
    """100 terms x ~5,800 hourly New York buckets each is more than tantivy nests in one request: the
    hourly histogram is then computed per term bucket, with the same answer."""
    docs = matching()
    expected = o_terms(docs, "n", size=3, order="key_asc", sub=lambda g: {"h": o_date_histogram(
        g, "ts", lambda v: hour_start(v, NY), lambda k: hour_start(k + 3_600_000, NY), lambda k: iso(k, NY),
        min_doc_count=1)})
    both(indices, {"t": {"terms": {"field": "n", "size": 3, "order": {"_key": "asc"}, "shard_size": 200},
                         "aggs": {"h": {"date_histogram": {"field": "ts", "fixed_interval": "1h", "min_doc_count": 1,
                                                           "time_zone": "America/New_York"}}}}},
         {"t": expected})


def test_typed_keys(indices: dict[str, Any]) -> None:
    result = run(indices["three"], {
        "s": {"terms": {"field": "tag"}, "aggs": {"a": {"avg": {"field": "n"}}}},
        "l": {"terms": {"field": "n"}}, "d": {"terms": {"field": "x"}}, "b": {"terms": {"field": "flag"}},
        "dh": {"date_histogram": {"field": "ts", "calendar_interval": "month"}},
        "h": {"histogram": {"field": "n", "interval": 50}}, "r": {"range": {"field": "n", "ranges": [{"to": 1}]}},
        "dr": {"date_range": {"field": "ts", "ranges": [{"to": "now"}]}}, "f": {"filter": {"match_all": {}}},
        "fs": {"filters": {"filters": {"a": {"match_all": {}}}}}, "m": {"missing": {"field": "n"}},
        "g": {"global": {}}, "st": {"stats": {"field": "n"}}, "es": {"extended_stats": {"field": "n"}},
        "vc": {"value_count": {"field": "n"}}, "c": {"cardinality": {"field": "n"}},
        "p": {"percentiles": {"field": "n"}}, "th": {"top_hits": {"size": 1}}, "mn": {"min": {"field": "n"}},
        "mx": {"max": {"field": "n"}}, "sm": {"sum": {"field": "n"}}}, typed_keys=True)
    assert sorted(result) == sorted([
        "sterms#s", "lterms#l", "dterms#d", "lterms#b", "date_histogram#dh", "histogram#h", "range#r",
        "date_range#dr", "filter#f", "filters#fs", "missing#m", "global#g", "stats#st", "extended_stats#es",
        "value_count#vc", "cardinality#c", "tdigest_percentiles#p", "top_hits#th", "min#mn", "max#mx", "sum#sm"])
    assert all("avg#a" in b for b in result["sterms#s"]["buckets"])


def test_unmapped_fields_and_several_indices(indices: dict[str, Any]) -> None:
    both(indices, {"t": {"terms": {"field": "nope"}}, "a": {"avg": {"field": "nope"}},
                   "h": {"histogram": {"field": "nope", "interval": 5}},
                   "m": {"terms": {"field": "nope", "missing": "N/A"}, "aggs": {"s": {"sum": {"field": "n"}}}}},
         {"t": {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0, "buckets": []}, "a": {"value": None},
          "h": {"buckets": []},
          "m": {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0,
                "buckets": [{"key": "N/A", "doc_count": len(DOCS), "s": {"value": o_stats(DOCS, "n")[1]}}]}})
    extra = indices["extra"]
    combined = DOCS + extra
    result = run([indices["three"], indices["other"]],
                 {"t": {"terms": {"field": "tag", "size": 20}}, "x": {"max": {"field": "x", "missing": 500}},
                  "f": {"terms": {"field": "flag", "missing": True}}})
    assert_close(result["t"], o_terms(combined, "tag", size=20))
    assert result["x"] == {"value": 500.0}
    assert_close(result["f"], o_terms(DOCS + extra, "flag", missing=True,
                                      render=lambda k: {"key": k, "key_as_string": "true" if k else "false"}))


# -- ip fields, numeric formats, meta, value_type -----------------------------------------------------
IP_MAPPINGS = {"properties": {"ip": {"type": "ip"}, "v": {"type": "long"}, "b": {"type": "boolean"},
                              "secs": {"type": "date", "format": "epoch_second"}}}
ADDRESSES = ["::1", "127.0.0.1", "10.0.0.2", "192.168.0.1", "192.168.0.7", "192.168.255.255", "2001:db8::1",
             "ffff::1", "0.0.0.1"]


def make_ip_docs() -> list[dict[str, Any]]:
    rng = random.Random(4242)
    docs = []
    for i in range(90):
        doc: dict[str, Any] = {"v": i % 7}
        if i % 9:
            doc["ip"] = ADDRESSES[min(int(rng.expovariate(0.4)), len(ADDRESSES) - 1)]
        if i % 4:
            doc["b"] = i % 3 == 0
        doc["secs"] = 1000 * (i % 5)
        docs.append(doc)
    return docs


IP_DOCS = make_ip_docs()


@pytest.fixture(scope="module")
def ip_indices(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    engine = Engine(Path(tmp_path_factory.mktemp("ipaggs")) / "data", writer_heap_bytes=20_000_000)
    out = {}
    for name, shards in (("ips1", 1), ("ips3", 3)):
        index = engine.create_index(name, {"number_of_shards": shards}, IP_MAPPINGS)
        index.write([WriteRequest("index", str(i), doc, orjson.dumps(doc)) for i, doc in enumerate(IP_DOCS)])
        index.refresh()
        out[name] = index
    yield out
    engine.close()


def both_ip(ip_indices: dict[str, Any], aggs: dict[str, Any], expected: dict[str, Any], **kw: Any) -> None:
    for name in ("ips1", "ips3"):
        assert_close(run(ip_indices[name], aggs, **kw), expected, name)


def ip_number(text: str) -> int:
    """An address in Elasticsearch's order: IPv4 as IPv4-mapped IPv6."""
    address = ipaddress.ip_address(text)
    return int(address) if address.version == 6 else (0xFFFF << 32) + int(address)


def test_terms_on_ip_fields(ip_indices: dict[str, Any]) -> None:
    counts = Counter(d["ip"] for d in IP_DOCS if "ip" in d)
    ordered = sorted(counts, key=lambda k: (-counts[k], ip_number(k)))
    both_ip(ip_indices, {"t": {"terms": {"field": "ip", "size": 20}}},
            {"t": {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0,
                   "buckets": [{"key": k, "doc_count": counts[k]} for k in ordered]}})
    by_key = sorted(counts, key=ip_number)  # ::1 < 0.0.0.1 (::ffff:0:1) < ... < 2001:db8::1 < ffff::1
    result = run(ip_indices["ips3"], {"t": {"terms": {"field": "ip", "size": 20, "order": {"_key": "asc"}},
                                            "aggs": {"s": {"sum": {"field": "v"}}}}})
    assert [b["key"] for b in result["t"]["buckets"]] == by_key
    for name in ("ips1", "ips3"):  # more addresses than a shard is asked for: still the lowest, in byte order
        for direction, keys in (("asc", by_key[:2]), ("desc", by_key[::-1][:2])):
            small = run(ip_indices[name], {"t": {"terms": {"field": "ip", "size": 2, "shard_size": 2,
                                                           "order": {"_key": direction}}}})
            assert [b["key"] for b in small["t"]["buckets"]] == keys
    for bucket in result["t"]["buckets"]:
        assert bucket["s"]["value"] == float(sum(d["v"] for d in IP_DOCS if d.get("ip") == bucket["key"]))
        assert "key_as_string" not in bucket
    # include/exclude by address (any spelling), missing, and regexes refused like Elasticsearch (a 500)
    included = run(ip_indices["ips1"], {"t": {"terms": {"field": "ip", "include": ["127.0.0.1", "::ffff:10.0.0.2"]}}})
    assert {b["key"] for b in included["t"]["buckets"]} == {"127.0.0.1", "10.0.0.2"}
    excluded = run(ip_indices["ips1"], {"t": {"terms": {"field": "ip", "size": 20, "exclude": ["127.0.0.1"]}}})
    assert {b["key"] for b in excluded["t"]["buckets"]} == set(counts) - {"127.0.0.1"}
    absent = sum(1 for d in IP_DOCS if "ip" not in d)
    with_missing = run(ip_indices["ips3"], {"t": {"terms": {"field": "ip", "size": 20, "missing": "1.2.3.4"},
                                                  "aggs": {"c": {"value_count": {"field": "v"}}}}})
    bucket = next(b for b in with_missing["t"]["buckets"] if b["key"] == "1.2.3.4")
    assert bucket["doc_count"] == absent and bucket["c"] == {"value": absent}
    for bucket in with_missing["t"]["buckets"]:  # each bucket's sub-aggregation over its own documents
        assert bucket["c"] == {"value": bucket["doc_count"]}
    with pytest.raises(StrongroomError) as info:
        run(ip_indices["ips1"], {"t": {"terms": {"field": "ip", "exclude": "127.*"}}})
    assert info.value.status == 500 and info.value.es_type == "aggregation_execution_exception"
    assert "cannot support regular expression style include/exclude settings" in info.value.reason
    # metrics on ip fields: distinct addresses and values, with a `missing` address counted
    both_ip(ip_indices, {"c": {"cardinality": {"field": "ip"}}, "m": {"cardinality": {"field": "ip", "missing": "::9"}},
                         "n": {"value_count": {"field": "ip"}}},
            {"c": {"value": len(counts)}, "m": {"value": len(counts) + 1}, "n": {"value": sum(counts.values())}})


def o_ip_range(ranges: list[tuple[str | None, int | None, int | None]], missing: str | None = None
               ) -> list[tuple[str | None, int]]:
    out = []
    for key, low, high in ranges:
        count = 0
        for doc in IP_DOCS:
            value = doc.get("ip", missing)
            if value is not None and (low is None or ip_number(value) >= low) and \
                    (high is None or ip_number(value) < high):
                count += 1
        out.append((key, count))
    return out


def test_ip_range(ip_indices: dict[str, Any]) -> None:
    boundary = ip_number("192.168.0.0")
    top = ip_number("192.169.0.0")
    counts = o_ip_range([(None, None, boundary), (None, boundary, top), (None, top, None)])
    sums = [sum(d["v"] for d in IP_DOCS if "ip" in d and (lo is None or ip_number(d["ip"]) >= lo)
                and (hi is None or ip_number(d["ip"]) < hi)) for lo, hi in ((None, boundary), (boundary, top),
                                                                             (top, None))]
    request = {"r": {"ip_range": {"field": "ip", "ranges": [{"from": "192.169.0.0"}, {"to": "192.168.0.0"},
                                                            {"from": "192.168.0.0", "to": "192.169.0.0"}]},
                     "aggs": {"v": {"sum": {"field": "v"}}}}}
    both_ip(ip_indices, request, {"r": {"buckets": [  # ordered by from, then to
        {"key": "*-192.168.0.0", "to": "192.168.0.0", "doc_count": counts[0][1], "v": {"value": float(sums[0])}},
        {"key": "192.168.0.0-192.169.0.0", "from": "192.168.0.0", "to": "192.169.0.0", "doc_count": counts[1][1],
         "v": {"value": float(sums[1])}},
        {"key": "192.169.0.0-*", "from": "192.169.0.0", "doc_count": counts[2][1], "v": {"value": float(sums[2])}}]}})
    # masks: the key is the mask, `to` the address after the network; keyed; a `missing` address
    masked = {"r": {"ip_range": {"field": "ip", "keyed": True, "missing": "192.168.3.3",
                                 "ranges": [{"mask": "192.168.0.0/16"}, {"mask": "::/24"},
                                            {"key": "v6", "mask": "2001:db8::/32"}]}}}
    expected = o_ip_range([("192.168.0.0/16", boundary, top), ("::/24", 0, 1 << 104),
                           ("v6", ip_number("2001:db8::"), ip_number("2001:db9::"))], missing="192.168.3.3")
    both_ip(ip_indices, masked, {"r": {"buckets": {
        "::/24": {"from": "::", "to": "0:100::", "doc_count": expected[1][1]},
        "192.168.0.0/16": {"from": "192.168.0.0", "to": "192.169.0.0", "doc_count": expected[0][1]},
        "v6": {"from": "2001:db8::", "to": "2001:db9::", "doc_count": expected[2][1]}}}})
    assert run(ip_indices["ips1"], {"r": {"ip_range": {"field": "nope", "ranges": [{"to": "1.0.0.0"}]}}},
               typed_keys=True) == {"ip_range#r": {"buckets": [{"key": "*-1.0.0.0", "to": "1.0.0.0",
                                                                 "doc_count": 0}]}}
    for aggs, reason in (({"r": {"ip_range": {"field": "v", "ranges": [{"to": "1.0.0.0"}]}}},
                          "Field [v] of type [long] is not supported for aggregation [ip_range]"),
                         ({"r": {"ip_range": {"field": "ip", "ranges": [{"to": "1.0.0.300"}]}}},
                          "'1.0.0.300' is not an IP string literal."),
                         ({"r": {"histogram": {"field": "ip", "interval": 1}}},
                          "Field [ip] of type [ip] is not supported for aggregation [histogram]")):
        with pytest.raises(StrongroomError) as info:
            run(ip_indices["ips1"], aggs)
        assert info.value.status == 400 and reason in info.value.reason


def test_numeric_formats(ip_indices: dict[str, Any]) -> None:
    values_v = [d["v"] for d in IP_DOCS]
    histogram = run(ip_indices["ips3"], {"h": {"histogram": {"field": "v", "interval": 3,
                                                             "format": "Value is ##0.0"}}})["h"]["buckets"]
    assert [(b["key_as_string"], b["key"]) for b in histogram] == [("Value is 0.0", 0.0), ("Value is 3.0", 3.0),
                                                                    ("Value is 6.0", 6.0)]
    assert list(histogram[0]) == ["key_as_string", "key", "doc_count"]
    keyed = run(ip_indices["ips1"], {"h": {"histogram": {"field": "v", "interval": 3, "format": "0", "keyed": True}}})
    assert list(keyed["h"]["buckets"]) == ["0", "3", "6"]
    total = sum(values_v)
    both_ip(ip_indices, {"s": {"sum": {"field": "v", "format": "#,##0.00 units"}},
                         "a": {"avg": {"field": "v", "format": "0.#"}},
                         "t": {"terms": {"field": "v", "size": 2, "order": {"_key": "asc"}, "format": "'#'0"}},
                         "r": {"range": {"field": "v", "format": "0.0", "ranges": [{"to": 2.5}]}}},
            {"s": {"value": float(total), "value_as_string": f"{total:,}.00 units"},
             "a": {"value": total / len(values_v), "value_as_string": f"{total / len(values_v):.1f}".rstrip("0")
                   .rstrip(".")},
             "t": {"doc_count_error_upper_bound": 0, "sum_other_doc_count": values_v.count(2) + values_v.count(3)
                   + values_v.count(4) + values_v.count(5) + values_v.count(6),
                   "buckets": [{"key": 0, "key_as_string": "#0", "doc_count": values_v.count(0)},
                               {"key": 1, "key_as_string": "#1", "doc_count": values_v.count(1)}]},
             "r": {"buckets": [{"key": "*-2.5", "to": 2.5, "to_as_string": "2.5",
                                "doc_count": sum(1 for v in values_v if v < 2.5)}]}})


@pytest.mark.parametrize(("pattern", "value", "text"), [
    ("Value is ##0.0", 150.0, "Value is 150.0"), ("#,##0.00", 1234567.891, "1,234,567.89"), ("#.##", 0.5, ".5"),
    ("#.##", 0.001, "0"), ("0.0", 0.15, "0.1"), ("0.0", 0.25, "0.2"), ("0", 2.5, "2"), ("0", 3.5, "4"),
    ("0.00", 0.125, "0.12"), ("0.0;(0.0)", -1.5, "(1.5)"), ("0.0", -1.25, "-1.2"), ("#%", 0.256, "26%"),
    ("0.###E0", 1234.0, "1.234E3"), ("0.###E0", 0.00012, "1.2E-4"), ("##0.#####E0", 123456.0, "123.456E3"),
    ("'#'0", 5.0, "#5"), ("000", 7, "007"), ("0.000000000000000000000", 0.1, "0.100000000000000000000"),
    ("0", -0.0, "-0"), ("0.0", float("nan"), "NaN"), ("0.0", float("inf"), "\u221e")])
def test_decimal_format_patterns(pattern: str, value: float, text: str) -> None:
    assert DecimalFormat(pattern).format(value) == text


def test_dates_read_in_the_field_format(ip_indices: dict[str, Any]) -> None:
    # numbers in date_range bounds and in terms include lists are dates in the field's format (epoch_second)
    seconds = Counter(d["secs"] for d in IP_DOCS)
    both_ip(ip_indices, {"r": {"date_range": {"field": "secs", "ranges": [{"from": 1000, "to": 3000},
                                                                         {"from": 3000}]}}},
            {"r": {"buckets": [
                {"key": "1000-3000", "from": 1_000_000.0, "from_as_string": "1000", "to": 3_000_000.0,
                 "to_as_string": "3000", "doc_count": seconds[1000] + seconds[2000]},
                {"key": "3000-*", "from": 3_000_000.0, "from_as_string": "3000",
                 "doc_count": seconds[3000] + seconds[4000]}]}})
    result = run(ip_indices["ips3"], {"t": {"terms": {"field": "secs", "include": [2000, "4000"]}},
                                      "x": {"terms": {"field": "secs", "exclude": ["0"]}}})
    assert [(b["key"], b["key_as_string"]) for b in result["t"]["buckets"]] == [(2_000_000, "2000"),
                                                                              (4_000_000, "4000")]
    assert {b["key"] for b in result["x"]["buckets"]} == {1_000_000, 2_000_000, 3_000_000, 4_000_000}


def test_date_range_on_unmapped_field(indices: dict[str, Any]) -> None:
    both(indices, {"r": {"date_range": {"field": "nope", "ranges": [{"from": "2020-01-01T00:00:00Z"}]},
                         "aggs": {"c": {"cardinality": {"field": "nope2"}}}}},
         {"r": {"buckets": [{"key": "2020-01-01T00:00:00.000Z-*", "from": 1_577_836_800_000.0,
                             "from_as_string": "2020-01-01T00:00:00.000Z", "doc_count": 0, "c": {"value": 0}}]}})


def test_unmapped_terms_with_value_type(indices: dict[str, Any]) -> None:
    def buckets(*items: dict[str, Any]) -> dict[str, Any]:
        return {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0, "buckets": list(items)}
    count = len(DOCS)
    both(indices, {"b": {"terms": {"field": "nope", "value_type": "boolean", "missing": True}},
                   "d": {"terms": {"field": "nope", "value_type": "date", "missing": "2016-05-11"}},
                   "l": {"terms": {"field": "nope", "value_type": "long", "missing": 3}},
                   "f": {"terms": {"field": "nope", "value_type": "double", "missing": 3}},
                   "s": {"terms": {"field": "nope", "value_type": "string", "missing": 3}},
                   "i": {"terms": {"field": "nope", "value_type": "ip", "missing": "::ffff:1.2.3.4"}}},
         {"b": buckets({"key": 1, "key_as_string": "true", "doc_count": count}),
          "d": buckets({"key": 1_462_924_800_000, "key_as_string": "2016-05-11T00:00:00.000Z", "doc_count": count}),
          "l": buckets({"key": 3, "doc_count": count}), "f": buckets({"key": 3.0, "doc_count": count}),
          "s": buckets({"key": "3", "doc_count": count}), "i": buckets({"key": "1.2.3.4", "doc_count": count})})
    with pytest.raises(StrongroomError) as info:
        parse_aggregations({"x": {"terms": {"field": "nope", "value_type": "colour"}}})
    assert info.value.reason == "Unknown value type [colour]"


def test_meta_is_returned(indices: dict[str, Any]) -> None:
    aggs = {"c": {"meta": {"foo": "bar", "n": [1, 2]}, "cardinality": {"field": "tag"}},
            "t": {"terms": {"field": "tag", "size": 2}, "meta": {"level": 1},
                  "aggs": {"m": {"max": {"field": "n"}, "meta": {"level": 2}},
                           "f": {"filter": {"term": {"flag": True}}, "meta": {"level": 3}}}}}
    for name in ("one", "three"):
        result = run(indices[name], aggs)
        assert list(result["c"]) == ["meta", "value"] and result["c"]["meta"] == {"foo": "bar", "n": [1, 2]}
        assert result["t"]["meta"] == {"level": 1}
        for bucket in result["t"]["buckets"]:
            assert bucket["m"]["meta"] == {"level": 2} and list(bucket["m"]) == ["meta", "value"]
            assert bucket["f"]["meta"] == {"level": 3}
    typed = run(indices["one"], aggs, typed_keys=True)
    assert typed["cardinality#c"]["meta"] == {"foo": "bar", "n": [1, 2]}


def test_metrics_on_booleans_with_missing(ip_indices: dict[str, Any]) -> None:
    flags = [d.get("b") for d in IP_DOCS]
    filled = [True if f is None else f for f in flags]
    both_ip(ip_indices, {"a": {"avg": {"field": "b", "missing": True}},
                         "c": {"cardinality": {"field": "b", "missing": False}},
                         "t": {"terms": {"field": "v", "size": 1, "order": {"_key": "asc"}},
                               "aggs": {"s": {"sum": {"field": "b", "missing": True}}}}},
            {"a": {"value": sum(filled) / len(filled)},
             "c": {"value": len({bool(f) for f in flags})},
             "t": {"doc_count_error_upper_bound": 0, "sum_other_doc_count": len(IP_DOCS) - sum(
                 1 for d in IP_DOCS if d["v"] == 0),
                   "buckets": [{"key": 0, "doc_count": sum(1 for d in IP_DOCS if d["v"] == 0),
                                "s": {"value": float(sum(f for d, f in zip(IP_DOCS, filled) if d["v"] == 0))}}]}})


# -- errors ---------------------------------------------------------------------------------------
ERRORS = [
    ({"x": {"bogus": {}}}, "parsing_exception", "Unknown aggregation type [bogus]"),
    ({"x": {"terms": "tag"}}, "parsing_exception",
     "Expected [START_OBJECT] under [terms], but got a [VALUE_STRING] in [x]"),
    ({"x": "terms"}, "parsing_exception",
     "Aggregation definition for [x starts with a [VALUE_STRING], expected a [START_OBJECT]."),
    ({"x": {"terms": {"field": "tag"}, "avg": {"field": "n"}}}, "parsing_exception",
     "Found two aggregation type definitions in [x]: [terms] and [avg]"),
    ({"x": {"aggs": {"y": {"avg": {"field": "n"}}}}}, "parsing_exception", "Missing definition for aggregation [x]"),
    ({"a>b": {"avg": {"field": "n"}}}, "parsing_exception", "Invalid aggregation name [a>b]"),
    ({"x": {"terms": {}}}, "illegal_argument_exception", "Required one of fields [field, script]"),
    ({"x": {"terms": {"field": "tag", "size": 0}}}, "illegal_argument_exception",
     "[size] must be greater than 0. Found [0] in [x]"),
    ({"x": {"terms": {"field": "tag", "sizee": 3}}}, "x_content_parse_exception", "[terms] unknown field [sizee]"),
    ({"x": {"terms": {"field": "tag", "order": {"nope": "asc"}}}}, "aggregation_execution_exception",
     "Invalid aggregation order path [nope]"),
    ({"x": {"terms": {"field": "tag", "order": {"s": "asc"}}, "aggs": {"s": {"stats": {"field": "n"}}}}},
     "aggregation_execution_exception", "a metric name must be specified"),
    ({"x": {"terms": {"field": "tag", "order": {"_count": "up"}}}}, "parsing_exception",
     "Unknown terms order direction [up]"),
    ({"x": {"histogram": {"field": "n", "interval": 0}}}, "illegal_argument_exception",
     "[interval] must be >0 for histogram aggregation [x]"),
    ({"x": {"histogram": {"field": "n", "interval": 5, "extended_bounds": {"min": 9, "max": 1}}}},
     "illegal_argument_exception", "[extended_bounds.min][9.0] cannot be greater than [extended_bounds.max][1.0]"),
    ({"x": {"date_histogram": {"field": "ts"}}}, "illegal_argument_exception",
     "Invalid interval specified, must be non-null and non-empty"),
    ({"x": {"date_histogram": {"field": "ts", "calendar_interval": "2d"}}}, "illegal_argument_exception",
     "The supplied interval [2d] could not be parsed as a calendar interval."),
    ({"x": {"date_histogram": {"field": "ts", "fixed_interval": "1M"}}}, "illegal_argument_exception",
     "failed to parse setting [date_histogram.fixedInterval] with value [1M] as a time value"),
    ({"x": {"date_histogram": {"field": "ts", "fixed_interval": "1d", "calendar_interval": "1d"}}},
     "illegal_argument_exception", "Cannot use [fixed_interval] with [calendar_interval] configuration option."),
    ({"x": {"date_histogram": {"field": "ts", "calendar_interval": "day", "time_zone": "Mars/Olympus"}}},
     "illegal_argument_exception", "Unknown time-zone ID: Mars/Olympus"),
    ({"x": {"date_histogram": {"field": "ts", "calendar_interval": "day", "format": "yyyy-MM-dd qqq"}}},
     "illegal_argument_exception", "Invalid format: [yyyy-MM-dd qqq]"),
    ({"x": {"range": {"field": "n"}}}, "illegal_argument_exception", "No [ranges] specified for the [x] aggregation"),
    ({"x": {"range": {"field": "n", "ranges": [{"from": 1, "too": 2}]}}}, "x_content_parse_exception",
     "[range] unknown field [too]"),
    ({"x": {"percentiles": {"field": "n", "percents": [50, 101]}}}, "illegal_argument_exception",
     "percent must be in [0,100], got [101.0]: [x]"),
    ({"x": {"avg": {"field": "n"}, "aggs": {"y": {"max": {"field": "n"}}}}}, "aggregation_initialization_exception",
     "Aggregator [x] of type [avg] cannot accept sub-aggregations"),
    ({"x": {"terms": {"field": "tag"}, "aggs": {"g": {"global": {}}}}}, "aggregation_execution_exception",
     "Global aggregations can only be defined as top level aggregations"),
    ({"x": {"top_hits": {"size": 101}}}, "illegal_argument_exception", "Top hits result window is too large"),
    ({"x": {"filter": {"no_such_query": {}}}}, "parsing_exception", "unknown query [no_such_query]"),
    ({"x": {"filters": {"filters": {}}}}, "illegal_argument_exception", "[filters] cannot be empty."),
    ({"x": {"terms": {"field": "tag", "script": "doc['n']"}}}, "parsing_exception", "scripts are not supported"),
    ({"x": {"composite": {"sources": []}}}, "parsing_exception", "[composite] is not supported"),
    ({"x": {"cardinality": {"field": "tag", "precision_threshold": -1}}}, "illegal_argument_exception",
     "[precisionThreshold] must be greater than or equal to 0. Found [-1] in [x]"),
    ({"x": {"ip_range": {"field": "ip", "ranges": [{"mask": "10.0.0.0/8", "to": "10.1.0.0"}]}}},
     "illegal_argument_exception", "Cannot specify both a mask and [from] or [to]"),
    ({"x": {"ip_range": {"field": "ip", "ranges": [{"mask": "10.0.0.0/33"}]}}}, "illegal_argument_exception",
     "Expected [ip/prefix] but was [10.0.0.0/33]"),
    ({"x": {"avg": {"field": "n"}, "meta": "m"}}, "parsing_exception",
     "Expected [START_OBJECT] under [meta], but got a [VALUE_STRING] in [x]"),
]


def nested(depth: int) -> dict[str, Any]:
    body: dict[str, Any] = {"leaf": {"avg": {"field": "n"}}}
    for level in range(depth - 1):
        body = {f"l{level}": {"terms": {"field": "tag"}, "aggs": body}}
    return body


@pytest.mark.parametrize(("aggs", "es_type", "reason"), ERRORS + [
    (nested(11), "illegal_argument_exception", "[10] levels deep")])
def test_request_errors(aggs: dict[str, Any], es_type: str, reason: str) -> None:
    with pytest.raises(StrongroomError) as info:
        parse_aggregations(aggs)
    assert info.value.status == 400
    assert info.value.es_type == es_type
    assert reason in info.value.reason


def test_ten_levels_are_allowed(indices: dict[str, Any]) -> None:
    result = run(indices["one"], nested(10), {"term": {"tag": "alpha"}})
    assert result["l8"]["buckets"][0]["key"] == "alpha"


@pytest.mark.parametrize(("aggs", "es_type", "reason"), [
    ({"x": {"terms": {"field": "title"}}}, "illegal_argument_exception",
     "Text fields are not optimised for operations that require per-document field data like aggregations"),
    ({"x": {"terms": {"field": "tag"}, "aggs": {"y": {"cardinality": {"field": "title"}}}}},
     "illegal_argument_exception", "Text fields are not optimised"),
    ({"x": {"avg": {"field": "tag"}}}, "illegal_argument_exception",
     "Field [tag] of type [keyword] is not supported for aggregation [avg]"),
    ({"x": {"histogram": {"field": "tag", "interval": 1}}}, "illegal_argument_exception",
     "Field [tag] of type [keyword] is not supported for aggregation [histogram]"),
    ({"x": {"histogram": {"field": "x", "interval": 0.001}}}, "too_many_buckets_exception",
     f"Trying to create too many buckets. Must be less than or equal to: [{MAX_BUCKETS}] but was ["),
    ({"x": {"date_histogram": {"field": "ts", "fixed_interval": "1m"}}}, "too_many_buckets_exception",
     "This limit can be set by changing the [search.max_buckets] cluster level setting."),
    ({"x": {"terms": {"field": "tag"}, "aggs": {"h": {"histogram": {"field": "x", "interval": 0.01}}}}},
     "too_many_buckets_exception", "Trying to create too many buckets"),
    ({"x": {"date_histogram": {"field": "ts", "calendar_interval": "day",
                               "extended_bounds": {"min": "1800-01-01", "max": "2024-01-01"}}}},
     "too_many_buckets_exception", "Trying to create too many buckets"),
    ({"x": {"date_range": {"field": "ts", "ranges": [{"from": "yesterday"}]}}}, "illegal_argument_exception",
     "failed to parse date field [yesterday]"),
])
def test_execution_errors(indices: dict[str, Any], aggs: dict[str, Any], es_type: str, reason: str) -> None:
    for name in ("one", "three"):
        with pytest.raises(StrongroomError) as info:
            run(indices[name], aggs)
        assert info.value.status == 400
        assert info.value.es_type == es_type
        assert reason in info.value.reason
        if es_type == "too_many_buckets_exception":
            assert info.value.to_es()["max_buckets"] == MAX_BUCKETS


# -- random requests against the oracle -------------------------------------------------------------
FIELDS = {"tag": "keyword", "n": "long", "x": "double"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(["tag", "n", "x", "flag"]), size=st.integers(1, 12),
       order=st.sampled_from(["count_desc", "count_asc", "key_asc", "key_desc"]), min_doc_count=st.integers(1, 6),
       low=st.integers(-20, 60))
def test_random_terms(indices: dict[str, Any], path: str, size: int, order: str, min_doc_count: int,
                      low: int) -> None:
    query = {"range": {"n": {"gte": low}}}
    docs = matching(lambda d: any(v >= low for v in values(d, "n")))
    request_order = {"count_desc": {"_count": "desc"}, "count_asc": {"_count": "asc"}, "key_asc": {"_key": "asc"},
                     "key_desc": {"_key": "desc"}}[order]
    render = (lambda k: {"key": k, "key_as_string": "true" if k else "false"}) if path == "flag" else None
    expected = o_terms(docs, path, size=size, order=order, min_doc_count=min_doc_count, render=render)
    aggs = {"t": {"terms": {"field": path, "size": size, "order": request_order, "min_doc_count": min_doc_count,
                            "shard_size": 1000}}}
    both(indices, aggs, {"t": expected}, query)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(["n", "x"]), interval=st.sampled_from([1, 2.5, 3, 7, 10, 33.3, 100]),
       offset=st.sampled_from([0, 1, 2.5]), min_doc_count=st.integers(0, 3),
       tag=st.sampled_from([None] + TAGS[:4]))
def test_random_histograms(indices: dict[str, Any], path: str, interval: float, offset: float, min_doc_count: int,
                           tag: str | None) -> None:
    query = {"term": {"tag": tag}} if tag else None
    docs = matching(lambda d: tag is None or tag in values(d, "tag"))
    offset = offset % interval
    expected = o_histogram(docs, path, interval, offset=offset, min_doc_count=min_doc_count,
                           sub=lambda g: {"c": {"value": sum(len(values(d, "n")) for d in g)}})
    both(indices, {"h": {"histogram": {"field": path, "interval": interval, "offset": offset,
                                       "min_doc_count": min_doc_count},
                         "aggs": {"c": {"value_count": {"field": "n"}}}}}, {"h": expected}, query)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(["n", "x"]),
       bounds=st.lists(st.tuples(st.one_of(st.none(), st.integers(-30, 160).map(lambda v: v / 2)),
                                 st.one_of(st.none(), st.integers(-30, 160).map(lambda v: v / 2))),
                       min_size=1, max_size=5))
def test_random_ranges(indices: dict[str, Any], path: str, bounds: list[tuple[float | None, float | None]]) -> None:
    ranges = []
    for low, high in bounds:
        item = {}
        if low is not None:
            item["from"] = low
        if high is not None:
            item["to"] = high
        ranges.append(item)
    expected = o_range(matching(), path, [(None, low, high) for low, high in bounds],
                       sub=lambda g: {"m": {"value": o_stats(g, "x")[2]}})
    both(indices, {"r": {"range": {"field": path, "ranges": ranges}, "aggs": {"m": {"min": {"field": "x"}}}}},
         {"r": expected})

