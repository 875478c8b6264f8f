"""Fuzzing the search request: every body gets a 2xx or a 4xx, never a 5xx, a hang or a crash.

Two layers share one grammar of Elasticsearch search bodies (query DSL of every query type the parser
knows, query_string / simple_query_string syntax, regexp patterns, aggregation trees, sort, highlight,
`_source`, paging values) plus random mutations of those bodies:

* in process, thousands of bodies go straight to `parse_search_request`, which must return or raise a
  `StrongroomError` with a 4xx status (nothing else: no TypeError, RecursionError, ...);
* live, a few hundred go over HTTPS to `_search`, `_count`, `_msearch` and `_delete_by_query` (on a
  throwaway index) of the session server, and every answer must be < 500 with Elasticsearch's error
  shape when it is a 4xx; the server must still answer `GET /` afterwards.

Bugs found by the fuzzer and not fixed yet are listed in KNOWN_BUGS (matched by exception type and the
deepest Strongroom frame, so anything else still fails the fuzz tests) and each has an explicit
`xfail(strict=True)` reproduction at the end of this file: fixing one turns its reproduction into an
XPASS failure, the cue to delete the xfail and its KNOWN_BUGS entry.

Runs are deterministic by default (derandomized). STRONGROOM_FUZZ_RANDOM=1 draws fresh examples, and
STRONGROOM_FUZZ_SCALE=10 multiplies the example counts, for longer hunts.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from live import LiveServer

from strongroom.engine.analysis import ANALYZERS
from strongroom.errors import StrongroomError
from strongroom.jsonio import loads_strict
from strongroom.query.search_request import parse_search_request

SCALE = max(1, int(os.environ.get("STRONGROOM_FUZZ_SCALE", "1")))
RANDOM = os.environ.get("STRONGROOM_FUZZ_RANDOM") == "1"
COMMON_SETTINGS: dict[str, Any] = dict(
    deadline=None, database=None, derandomize=not RANDOM, print_blob=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                           HealthCheck.large_base_example])
SLOW_EXAMPLE_SECONDS = 5.0  # one parse taking longer than this is a hang

# ==================================================================================================
# Known bugs (each reproduced by an xfail test below)
# ==================================================================================================


@dataclass(frozen=True)
class KnownBug:
    name: str  # the reproduction test's id
    exc: str  # exception class name
    function: str  # the deepest frame in Strongroom's code
    line: str  # text of that frame's source line


KNOWN_BUGS = [
    KnownBug("fuzziness-infinity", "OverflowError", "_fuzziness", "number != int(number)"),
    KnownBug("fuzziness-nan", "ValueError", "_fuzziness", "number != int(number)"),
    KnownBug("range-relation-not-a-string", "AttributeError", "_range", '.lower() not in ("intersects"'),
    KnownBug("stored-fields-not-a-list", "TypeError", "parse_search_request", "tuple(stored)"),
    KnownBug("stored-fields-not-strings", "AttributeError", "<listcomp>", 'name.startswith("_")'),
    KnownBug("highlight-tags-not-a-list", "TypeError", "_field_spec", "tuple(body["),
    KnownBug("time-zone-is-a-tzdata-directory", "IsADirectoryError", "_zone", "ZoneInfo(name)"),
    KnownBug("time-zone-too-long", "OSError", "_zone", "ZoneInfo(name)"),
    KnownBug("highlight-tags-not-strings", "TypeError", "_mark", "pre + _encode"),
    KnownBug("date-histogram-bounds-out-of-range", "ValueError", "_days_from_civil", "dt.date(y, m, d)"),
    KnownBug("date-histogram-bounds-out-of-range", "OverflowError", "_civil", "dt.timedelta(days=days)"),
    KnownBug("date-histogram-bounds-out-of-range", "ValueError", "_civil", "dt.timedelta(days=days)"),
    KnownBug("terms-include-bad-regex", "ValueError", "_run_tantivy", "searcher.aggregate"),
    KnownBug("bool-prefix-non-string-query-on-keyword", "TypeError", "rust_escape", '"".join('),
]


def known_bug(exc_type: str, frame: tuple[str, str] | None) -> KnownBug | None:
    if frame is None:
        return None
    function, line = frame
    for bug in KNOWN_BUGS:
        if bug.exc == exc_type and bug.function == function and bug.line in line:
            return bug
    return None


def deepest_strongroom_frame(exc: BaseException) -> tuple[str, str] | None:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/strongroom/" in f.filename.replace("\\", "/")
              and "/tests/" not in f.filename.replace("\\", "/")]
    return (frames[-1].name, frames[-1].line or "") if frames else None


# ==================================================================================================
# The grammar
# ==================================================================================================

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
MAPPED = ["t", "k", "l", "d", "dt", "b", "ip"]
FIELD = st.one_of(
    st.sampled_from(MAPPED), st.sampled_from(MAPPED),
    st.sampled_from(["*", "t*", "*t", "d*", "missing", "", " ", "t.raw", "a.b.c", "_id", "_index", "_source", "_score",
                     "_doc", "_seq_no", "t^2", "ünï", "k,l", "t\\", "[", "_exists_"]),
    st.text(max_size=6))
SHORT_TEXT = st.text(max_size=10)
INTS = st.one_of(st.integers(-3, 12), st.integers(-2**63, 2**64 - 1),
                 st.sampled_from([2**31 - 1, 2**31, -2**31 - 1, 2**53 + 1, 2**63, 2**64 - 1, -2**63]))
FLOATS = st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                   st.sampled_from([0.5, -0.0, 1e-300, 1e300, -1e300, 1.7976931348623157e308, 5e-324]))
NUMERIC_STRINGS = st.sampled_from(["0", "-1", "1.5", "1e3", "NaN", "Infinity", "-Infinity", "inf", "nan", "0x10",
                                   "1_000", " 7 ", "", "abc", "99999999999999999999999", "-0", "1e309", "٣", "+5",
                                   "1,5", "true"])
SCALAR = st.one_of(st.none(), st.booleans(), INTS, FLOATS, NUMERIC_STRINGS, SHORT_TEXT)


def _nested(leaf: st.SearchStrategy[Any], grow: Callable[[st.SearchStrategy[Any]], st.SearchStrategy[Any]],
            levels: int) -> st.SearchStrategy[Any]:
    """Trees at most `levels` deep (st.recursive retries past max_leaves, which is slow here)."""
    strategy = leaf
    for _ in range(levels):
        strategy = st.one_of(leaf, grow(strategy))
    return strategy


JUNK_KEYS = st.sampled_from(["a", "query", "field", "value", "", "_name"]) | st.text(max_size=4)
JUNK = _nested(SCALAR, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(JUNK_KEYS, inner, max_size=3), 2)

def chance(draw: Callable[..., Any], probability: float) -> bool:
    """True with about this probability (Hypothesis favours small integers, so 0 is not the rare case)."""
    return draw(st.integers(0, 999)) >= 1000 - round(probability * 1000)



_JUNK_SCALE = [1.0]  # 0 while drawing from `mostly_valid(...)`


def odd(valid: st.SearchStrategy[Any], junk_weight: int = 1, *, junk: st.SearchStrategy[Any] | None = None,
        probability: float = 0.1) -> st.SearchStrategy[Any]:
    """Mostly valid values (about 9 in 10), sometimes anything at all (or what `junk` draws)."""
    @st.composite
    def build(draw: Callable[..., Any]) -> Any:
        if chance(draw, probability * junk_weight * _JUNK_SCALE[0]):
            return draw(JUNK if junk is None else junk)
        return draw(valid)
    return build()


def mostly_valid(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The same grammar with the junk turned off, so more bodies get past the parser into the engine."""
    @st.composite
    def build(draw: Callable[..., Any]) -> Any:
        saved, _JUNK_SCALE[0] = _JUNK_SCALE[0], 0.0
        try:
            return draw(strategy)
        finally:
            _JUNK_SCALE[0] = saved
    return build()

def choice(*options: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """One of the strategies, each about equally likely (st.one_of flattens nested one_ofs, so a branch
    that is itself a one_of of many would crowd out the others)."""
    @st.composite
    def build(draw: Callable[..., Any]) -> Any:
        return draw(options[draw(st.integers(0, len(options) - 1))])
    return build()


def pick(draw: Callable[..., Any], params: dict[str, st.SearchStrategy[Any]], *, most: int = 4,
         unknown: float = 0.02) -> dict[str, Any]:
    """A random subset of the optional parameters, sometimes with an unknown one."""
    out: dict[str, Any] = {}
    keys = draw(st.lists(st.sampled_from(sorted(params)), max_size=most, unique=True)) if params else []
    for key in keys:
        out[key] = draw(params[key])
    if chance(draw, unknown):
        out[draw(st.sampled_from(["colour", "script", "nested_path", "", "Query", "boost ", "_name2"]))] = draw(JUNK)
    return out


BOOST = odd(st.sampled_from([1, 0, 2.5, -1, "2", "x", "NaN", "Infinity", 1e308, 0.0001]))
BOOLISH = odd(st.sampled_from([True, False, "true", "false", "yes", 0, 1, "", "TRUE"]))
INTISH = odd(st.one_of(st.integers(-10, 100), st.sampled_from([2**31, -2**31 - 1, "5", "x", 1.5, 0])))
NAME = odd(st.sampled_from(["q1", "named", "", "ü"]))
OPERATOR = odd(st.sampled_from(["or", "and", "OR", "AND", "And", "xor", ""]))
MSM = odd(st.one_of(st.integers(-5, 5), st.sampled_from(
    ["1", "2", "-1", "75%", "-25%", "100%", "0", "3<90%", "2<-25% 9<-3", "1<2<3", "abc", "%", "150%", "-999",
     "99999999999999999999", "1<", "<1", " ", "1< 2", "99999999999999999999%", "1<-99999999999999999999"])))
FUZZINESS = odd(st.one_of(st.integers(-3, 5), st.sampled_from(
    ["AUTO", "auto", "AUTO:1,4", "AUTO:4,1", "AUTO:a,b", "AUTO:", "AUTO:1", "AUTO:1,2,3", "0", "1", "2", "3", "1.5",
     "-1", "0.5", "AUTOX", "1e400", "2.0", "00", " 1", "Infinity", "NaN"])))
ANALYZER = odd(st.sampled_from([*ANALYZERS, "nope", "", "Standard"]))
ZERO_TERMS = odd(st.sampled_from(["none", "all", "NONE", "some"]))
DATES = st.sampled_from([
    "2020-01-01", "2020-01-01T00:00:00Z", "2020-01-01T00:00:00.123+05:30", "now", "now-1d/d", "now+1M/M", "now/y",
    "2020||+1M", "2020-01-01||/d", "now-1000000000y", "2020||+99999999999y", "1577836800000", "-62135596800001",
    "2020-13-45", "2020-02-30", "", "abc", "2020-01-01T25:61:61", "99999-01-01", "0000-01-01", "+002020-01-01",
    "2020-W01", "2020-001", "1e3", "now-", "now+1x", "||", "2020-01-01T00:00:00+99:00", "20200101",
    "9999-12-31", "9999-01-01T00:00:00Z", "0001-01-01", "253402300799999", "-1e300"])
DATE_FORMATS = odd(st.sampled_from([
    "yyyy-MM-dd", "epoch_millis", "epoch_second", "strict_date_optional_time||epoch_millis", "yyyy", "yyyy'",
    "'", "YYYY ww e", "uuuu-MM-dd'T'HH:mm:ss.SSSXXX", "xxx", "", "date_optional_time", "basic_date", "||", "nope",
    "dd/MM/yyyy HH:mm", "8yyyy", "yyyy-MM-dd||", "E, d MMM yyyy", "[yyyy]", "{}", "%Y"]))
TIME_ZONES = odd(st.sampled_from([
    "UTC", "utc", "Z", "+01:00", "-23:59", "+0530", "+99:99", "Europe/Paris", "America/New_York", "Etc/GMT+12", "",
    "a/../b", "/etc/passwd", "GMT", "PST", "local", "+1", "Europe/Nowhere", "UTC+01:00", "\x00", "America", "Etc",
    "Europe/", "x" * 300]))
IPS = st.sampled_from(["10.0.0.1", "10.0.0.0/8", "::1", "::ffff:10.0.0.1", "256.1.1.1", "1.2.3.4/99", "fe80::/10",
                       "0.0.0.0", "abc", "", "10.0.0.1/0", "2001:db8::/129"])
BOUND = st.one_of(DATES, INTS, FLOATS, IPS, SCALAR)
WORD_TEXT = st.one_of(st.lists(st.sampled_from(WORDS), min_size=0, max_size=5).map(" ".join), SHORT_TEXT,
                      st.sampled_from(["", " ", "的中文", "ALPHA-beta_gamma", "a" * 300, "α β", "\u0000", "🙂"]))
TEXT_VALUE = odd(st.one_of(WORD_TEXT, INTS, FLOATS, st.booleans()))

# -- Lucene syntax -----------------------------------------------------------------------------------
_QS_ATOMS = st.one_of(
    st.sampled_from(WORDS),
    st.builds(lambda f, w: f"{f}:{w}", st.sampled_from(MAPPED + ["*", "t*", "missing", "_exists_"]),
              st.sampled_from(WORDS + ["*", "1", "2020-01-01", ">5", ">=2020", "<=10", "<abc", "10.0.0.1"])),
    st.builds(lambda w, n: f'"{w}"~{n}', st.lists(st.sampled_from(WORDS), max_size=3).map(" ".join),
              st.sampled_from(["", "1", "2.5", "99999999999", "x", "1e999"])),
    st.builds(lambda w, n: f"{w}~{n}", st.sampled_from(WORDS), st.sampled_from(["", "0", "1", "2", "3", "0.5", "AUTO",
                                                                                "1e999", "-1", "Infinity"])),
    st.builds(lambda w, n: f"{w}^{n}", st.sampled_from(WORDS + ['"a b"', "(a)"]),
              st.sampled_from(["2", "0.5", "0", "", "x", "1.", "99999999999999999999"])),
    st.sampled_from(["alp*", "a?pha", "*", "*:*", "?", "*lpha", "al*ha?", "_exists_:t", "_exists_:", "t:", ":",
                     "[1 TO 5]", "{a TO *]", "[* TO *]", "l:[1 TO 5}", "dt:[now-1d TO now]", "dt:{2020 TO 2021]",
                     "[1 TO]", "[TO 5]", "[1 5]", "ip:[10.0.0.0 TO 10.255.255.255]", '["a" TO "b"]',
                     "/al.*a/", "/[a-z]{2,4}/", "/(((/", "/a{1,99999}/", "k:/b.t?a/", "/", "//", "\\+", "\\:",
                     "\\u00e9", "\\u12", "\\uZZZZ", "\\", "a\\ b", "NOT", "AND", "OR", "&&", "||", "!", "+", "-",
                     "(", ")", "^", "~", '"', '"unterminated', "a:(b c)", "a:(", "+alpha -beta", "!alpha",
                     "alpha AND NOT beta", "a OR b AND c", "l:>=5", "l:<10", "dt:>now-1y", "d:>1e400", "t:\\*",
                     "\u3000", "alpha\tbeta\nzeta"]),
    st.text(alphabet='abc *?~^:"()[]{}\\/+-!&|<>=,.0123456789TOANDRN', max_size=8))
QS_TEXT = st.one_of(
    _nested(_QS_ATOMS, lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from([" AND ", " OR ", " ", " && ", " || ", " NOT ", " -", " +", " AND NOT "]),
                  inner).map("".join),
        inner.map(lambda s: f"({s})"),
        st.tuples(st.sampled_from(MAPPED + ["*"]), inner).map(lambda p: f"{p[0]}:({p[1]})"),
        st.tuples(inner, st.sampled_from(["^2", "^0", "^"])).map("".join)), 4),
    st.lists(_QS_ATOMS, max_size=10).map(" ".join),
    st.lists(_QS_ATOMS, max_size=6).map("".join),
    st.integers(0, 40).map(lambda n: "(" * n + "alpha" + ")" * n),
    st.integers(0, 40).map(lambda n: "(" * n + "alpha"),
    st.integers(1, 200).map(lambda n: " OR ".join(["alpha"] * n)),
    st.sampled_from(["", " ", "*", "**", "\\", "a:b:c", "\u0000", "a" * 2000]))
_SQS_ATOMS = st.one_of(
    st.sampled_from(WORDS),
    st.sampled_from(["+", "|", "-", "--", '"', '"alpha beta"', '"alpha beta"~2', '"a"~', "alp*", "*", "alpha~",
                     "alpha~1", "alpha~-1", "alpha~99999999999999", "alpha~x", "(", ")", "()", '""', "\\", "\\(",
                     "\\\\", "~", "~2", "*~", "a*~", "\t", "\n"]),
    st.text(alphabet='ab +|-"()*~\\ 0123456789', max_size=6))
SQS_TEXT = st.one_of(
    st.lists(_SQS_ATOMS, max_size=12).map(" ".join), st.lists(_SQS_ATOMS, max_size=8).map("".join),
    st.integers(0, 40).map(lambda n: "(" * n + "alpha" + ")" * n), st.integers(0, 3000).map(lambda n: "(" * n),
    st.integers(1, 700).map(lambda n: " | ".join(["-alpha"] * n)))
_RE_ATOMS = st.one_of(
    st.sampled_from(["a", "b", ".", "[a-z]", "[^abc]", "[z-a]", '"quoted"', "<1-10>", "<10-1>", "@", "#", "\\d", "\\",
                     "\\.", "()", "[", "]", "{", "}", "&", "~", "|", "^", "$", "(?i)", "(?P<x>a)", "\\u0041", "[[:alpha:]]",
                     "[a-]", "alpha"]),
    st.text(alphabet="ab.*+?{}[]()|~&<>@#\\\"^-0123456789,", max_size=6))
REGEX = _nested(_RE_ATOMS, lambda inner: st.one_of(
    st.tuples(inner, inner).map("".join), st.tuples(inner, inner).map("|".join), st.tuples(inner, inner).map("&".join),
    inner.map(lambda s: f"({s})"), inner.map(lambda s: f"~{s}"),
    st.tuples(inner, st.sampled_from(["*", "+", "?", "{2}", "{1,3}", "{2,}", "{3,1}", "{1,99999}", "{,2}", "{"]))
    .map("".join)), 3)
WILDCARD = st.one_of(st.text(alphabet="ab*?\\[]{}.^$", max_size=10), st.sampled_from(["*", "?", "a*", "*a*", "\\*",
                                                                                      "\\", "*" * 50 + "a"]))

# -- queries -----------------------------------------------------------------------------------------


def _field_level(kind: str, value: st.SearchStrategy[Any], params: dict[str, st.SearchStrategy[Any]],
                 value_key: str | None) -> st.SearchStrategy[dict[str, Any]]:
    """`{kind: {field: value}}` or `{kind: {field: {value_key: value, ...options}}}`."""
    @st.composite
    def build(draw: Callable[..., Any]) -> dict[str, Any]:
        field = draw(FIELD)
        if value_key is None or chance(draw, 0.25):
            return {kind: {field: draw(value)}}
        spec = pick(draw, params)
        if not chance(draw, 0.05):
            spec[value_key] = draw(value)
        outer: dict[str, Any] = {field: spec}
        if chance(draw, 0.1):
            outer[draw(st.sampled_from(["boost", "_name", "other_field"]))] = draw(JUNK)
        return {kind: outer}
    return build()


MATCH_PARAMS = {"operator": OPERATOR, "minimum_should_match": MSM, "fuzziness": FUZZINESS, "prefix_length": INTISH,
                "max_expansions": INTISH, "fuzzy_transpositions": BOOLISH, "analyzer": ANALYZER,
                "zero_terms_query": ZERO_TERMS, "lenient": BOOLISH, "auto_generate_synonyms_phrase_query": BOOLISH,
                "fuzzy_rewrite": odd(st.just("constant_score")), "cutoff_frequency": odd(FLOATS), "boost": BOOST,
                "_name": NAME}
FIELD_LIST = odd(st.one_of(
    st.lists(st.one_of(st.sampled_from(MAPPED), st.sampled_from(
        ["*", "t^2", "k^0.5", "t^x", "t^-1", "^2", "t^1e400", "t^", "t^NaN", "", "t*^3", "d", "missing^2"])),
        max_size=5),
    st.sampled_from(MAPPED + ["*", "t^2"])))


@st.composite
def range_query(draw: Callable[..., Any]) -> dict[str, Any]:
    bounds = pick(draw, {"gte": odd(BOUND), "gt": odd(BOUND), "lte": odd(BOUND), "lt": odd(BOUND), "from": odd(BOUND),
                         "to": odd(BOUND), "include_lower": BOOLISH, "include_upper": BOOLISH,
                         "format": DATE_FORMATS, "time_zone": TIME_ZONES,
                         "relation": st.sampled_from(["intersects", "within", "contains", "INTERSECTS", "disjoint"]),
                         "boost": BOOST, "_name": NAME}, most=5)
    return {"range": {draw(FIELD): draw(JUNK) if chance(draw, 0.05) else bounds}}


TERM_VALUE = odd(st.one_of(st.sampled_from(WORDS), INTS, FLOATS, st.booleans(), DATES, IPS, SHORT_TEXT))
BIG_TERMS = [f"v{i}" for i in range(65_537)]

LEAF_QUERIES: list[st.SearchStrategy[dict[str, Any]]] = [
    odd(st.just({})).map(lambda s: {"match_all": s}),
    st.builds(lambda b: {"match_all": {"boost": b}}, BOOST),
    st.just({"match_none": {}}),
    _field_level("match", TEXT_VALUE, MATCH_PARAMS, "query"),
    _field_level("match_phrase", TEXT_VALUE, {"slop": INTISH, "analyzer": ANALYZER, "zero_terms_query": ZERO_TERMS,
                                              "boost": BOOST, "_name": NAME}, "query"),
    _field_level("match_phrase_prefix", TEXT_VALUE, {"slop": INTISH, "analyzer": ANALYZER, "max_expansions": INTISH,
                                                     "zero_terms_query": ZERO_TERMS, "boost": BOOST}, "query"),
    _field_level("match_bool_prefix", TEXT_VALUE, {k: v for k, v in MATCH_PARAMS.items()
                                                   if k not in ("zero_terms_query", "lenient", "cutoff_frequency")},
                 "query"),
    st.builds(lambda query, extra: {"multi_match": {"query": query, **extra}}, TEXT_VALUE, st.fixed_dictionaries(
        {}, optional={"fields": FIELD_LIST, "type": odd(st.sampled_from(
            ["best_fields", "most_fields", "cross_fields", "phrase", "phrase_prefix", "bool_prefix", "nope"])),
            "tie_breaker": odd(FLOATS), "slop": INTISH, "operator": OPERATOR, "minimum_should_match": MSM,
            "fuzziness": FUZZINESS, "analyzer": ANALYZER, "lenient": BOOLISH, "boost": BOOST,
            "zero_terms_query": ZERO_TERMS, "cutoff_frequency": odd(FLOATS)})),
    _field_level("term", TERM_VALUE, {"case_insensitive": BOOLISH, "boost": BOOST, "_name": NAME}, "value"),
    st.builds(lambda f, values, extra: {"terms": {f: values, **extra}}, FIELD, odd(odd(choice(
        st.lists(TERM_VALUE, max_size=8), st.lists(st.sampled_from(WORDS), max_size=300)),
        junk=st.just(BIG_TERMS), probability=0.01)), st.fixed_dictionaries({}, optional={"boost": BOOST,
                                                                                          "_name": NAME})),
    st.builds(lambda values, extra: {"ids": {"values": values, **extra}},
              odd(st.lists(st.one_of(st.integers(0, 60).map(str), INTS, SHORT_TEXT), max_size=6)),
              st.fixed_dictionaries({}, optional={"type": odd(st.just("_doc")), "boost": BOOST})),
    st.builds(lambda f: {"exists": {"field": f}}, odd(FIELD)),
    range_query(),
    _field_level("fuzzy", odd(st.sampled_from(WORDS) | SHORT_TEXT), {
        "fuzziness": FUZZINESS, "prefix_length": INTISH, "max_expansions": INTISH, "transpositions": BOOLISH,
        "rewrite": odd(st.just("constant_score")), "boost": BOOST}, "value"),
    _field_level("prefix", odd(st.sampled_from(["al", "", "ALPHA", "*", "10."]) | SHORT_TEXT),
                 {"case_insensitive": BOOLISH, "rewrite": odd(st.just("constant_score")), "boost": BOOST}, "value"),
    _field_level("wildcard", odd(WILDCARD), {"case_insensitive": BOOLISH, "rewrite": odd(st.just("top_terms_10")),
                                             "boost": BOOST}, "value"),
    _field_level("wildcard", odd(WILDCARD), {"case_insensitive": BOOLISH}, "wildcard"),
    _field_level("regexp", odd(REGEX), {
        "flags": odd(st.sampled_from(["ALL", "NONE", "INTERSECTION|COMPLEMENT", "ANYSTRING", "EMPTY|INTERVAL", "x", "",
                                      "|||"])),
        "case_insensitive": BOOLISH, "max_determinized_states": INTISH, "rewrite": odd(st.just("constant_score")),
        "boost": BOOST}, "value"),
    st.builds(lambda q, extra: {"query_string": {"query": q, **extra}}, odd(QS_TEXT), st.fixed_dictionaries({}, optional={
        "default_field": odd(st.sampled_from(MAPPED + ["*", "t*", ""])), "fields": FIELD_LIST,
        "default_operator": OPERATOR, "analyzer": ANALYZER, "quote_analyzer": ANALYZER,
        "allow_leading_wildcard": BOOLISH, "fuzziness": FUZZINESS, "fuzzy_max_expansions": INTISH,
        "fuzzy_prefix_length": INTISH, "fuzzy_transpositions": BOOLISH, "lenient": BOOLISH,
        "minimum_should_match": MSM, "phrase_slop": INTISH, "boost": BOOST, "time_zone": TIME_ZONES,
        "analyze_wildcard": BOOLISH, "escape": BOOLISH, "max_determinized_states": INTISH,
        "quote_field_suffix": odd(st.sampled_from([".exact", "", "x"])), "type": odd(st.sampled_from(
            ["best_fields", "most_fields", "cross_fields", "phrase", "phrase_prefix", "bool_prefix", "nope"])),
        "tie_breaker": odd(FLOATS), "rewrite": odd(st.just("constant_score")), "_name": NAME,
        "enable_position_increments": BOOLISH})),
    st.builds(lambda q, extra: {"simple_query_string": {"query": q, **extra}}, odd(SQS_TEXT), st.fixed_dictionaries(
        {}, optional={"fields": FIELD_LIST, "default_operator": OPERATOR, "analyzer": ANALYZER,
                      "flags": odd(st.one_of(st.sampled_from(["ALL", "NONE", "AND|OR", "PREFIX|PHRASE", "WHATEVER",
                                                              "", "|", "not|and", "SLOP|NEAR|FUZZY"]),
                                             st.integers(-2, 2048))),
                      "fuzzy_max_expansions": INTISH, "fuzzy_prefix_length": INTISH, "fuzzy_transpositions": BOOLISH,
                      "lenient": BOOLISH, "minimum_should_match": MSM, "quote_field_suffix": odd(st.just(".x")),
                      "analyze_wildcard": BOOLISH, "boost": BOOST, "_name": NAME})),
    st.builds(lambda kind, body: {kind: body}, st.sampled_from(
        ["nested", "script", "geo_distance", "more_like_this", "function_score", "span_term", "percolate", "", "Match",
         "has_child", "terms_set", "intervals", "wrapper", "knn", "distance_feature", "combined_fields"]), JUNK),
]
LEAF_QUERY = choice(*LEAF_QUERIES)


def _compound(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    clause = odd(choice(inner, st.lists(inner, max_size=4)))

    @st.composite
    def boolean(draw: Callable[..., Any]) -> dict[str, Any]:
        return {"bool": pick(draw, {"must": clause, "should": clause, "filter": clause, "must_not": clause,
                                    "minimum_should_match": MSM, "adjust_pure_negative": BOOLISH, "boost": BOOST,
                                    "_name": NAME}, most=5)}
    return choice(
        boolean(),
        st.builds(lambda f, extra: {"constant_score": {"filter": f, **extra}}, inner,
                  st.fixed_dictionaries({}, optional={"boost": BOOST, "_name": NAME})),
        st.builds(lambda qs, extra: {"dis_max": {"queries": qs, **extra}}, odd(st.lists(inner, min_size=1, max_size=4)),
                  st.fixed_dictionaries({}, optional={"tie_breaker": odd(FLOATS), "boost": BOOST})),
        st.builds(lambda pos, neg, nb: {"boosting": {"positive": pos, "negative": neg, "negative_boost": nb}},
                  inner, inner, odd(st.sampled_from([0.5, 0, -1, 2, "0.2", "x"]))))


QUERY = _nested(LEAF_QUERY, _compound, 3)


@st.composite
def deep_query(draw: Callable[..., Any]) -> dict[str, Any]:
    """A query wrapped in up to 30 levels of compound queries (the parser's limit is 20)."""
    query = draw(LEAF_QUERY)
    for _ in range(draw(st.integers(0, 30))):
        query = draw(st.sampled_from([
            lambda q: {"bool": {"must": q}}, lambda q: {"bool": {"should": [q, {"match_all": {}}]}},
            lambda q: {"bool": {"filter": [q]}}, lambda q: {"constant_score": {"filter": q}},
            lambda q: {"dis_max": {"queries": [q]}},
            lambda q: {"boosting": {"positive": q, "negative": {"match_none": {}}, "negative_boost": 0.5}}]))(query)
    return query


ANY_QUERY = choice(QUERY, QUERY, QUERY, QUERY, deep_query())

# -- aggregations ------------------------------------------------------------------------------------
AGG_NAME = odd(st.sampled_from(["a", "b", "by_k", "x y", "ü", "a.b", "0"]) | st.text("abcxyz_-", min_size=1, max_size=5),
              junk=st.sampled_from(["", "a>b", "a[b]", "]", "[x"]), probability=0.03)
ORDER_PATH = st.sampled_from(["_count", "_key", "_term", "a", "b", "a.value", "a.avg", "a>b", "a[50.0]", "a.99",
                              "missing", "a>b>c", "", ">", "a.", "[x]"])
ORDER = odd(st.one_of(st.dictionaries(ORDER_PATH, odd(st.sampled_from(["asc", "desc", "ASC", "up"])), max_size=2),
                      st.lists(st.dictionaries(ORDER_PATH, st.sampled_from(["asc", "desc"]), max_size=2),
                               max_size=3)))
INTERVAL_TEXT = st.sampled_from(["1s", "1m", "1h", "1d", "1w", "1M", "1q", "1y", "second", "minute", "hour", "day",
                                 "week", "month", "quarter", "year", "2d", "90m", "1ms", "0s", "-1d", "+1d", "1.5h",
                                 "d", "", "1 d", "1D", "1Y", "100000000000d", "3M", "decade", "7"])
AGG_FIELD = odd(st.one_of(st.sampled_from(MAPPED), FIELD))
MISSING = odd(st.one_of(DATES, INTS, FLOATS, IPS, st.sampled_from(WORDS)))
FORMAT = odd(st.sampled_from(["0.00", "#,##0", "#.#E0", "yyyy", "yyyy-MM-dd", "epoch_millis", "'", "", "0.0;(0.0)",
                              "%", "¤#"]))
SOURCE = odd(st.one_of(st.booleans(), st.sampled_from(MAPPED + ["*", "t*", "", "a.*.b", "**"]),
                       st.lists(st.sampled_from(MAPPED + ["*", "x*"]), max_size=3),
                       st.fixed_dictionaries({}, optional={
                           "includes": odd(st.lists(st.sampled_from(MAPPED + ["*", "t*"]), max_size=3)),
                           "excludes": odd(st.lists(st.sampled_from(MAPPED + ["*", "d*"]), max_size=3)),
                           "include": odd(st.sampled_from(MAPPED)), "exclude": odd(st.sampled_from(MAPPED))})))
SORT_ORDER = odd(st.sampled_from(["asc", "desc", "ASC", "Desc", "up", ""]))
SORT_ITEM = odd(choice(
    st.sampled_from(MAPPED + ["_score", "_doc", "_id", "_index", "_shard_doc", "t.keyword", "missing", ""]),
    st.builds(lambda f, o: {f: o}, st.sampled_from(MAPPED + ["_score", "_doc", "missing"]), SORT_ORDER),
    st.builds(lambda f, spec: {f: spec}, st.sampled_from(MAPPED + ["_score", "_doc", "missing", "_id"]),
              st.fixed_dictionaries({}, optional={
                  "order": SORT_ORDER, "missing": odd(st.sampled_from(["_last", "_first", 0, "x", -1e300])),
                  "mode": odd(st.sampled_from(["min", "max", "sum", "avg", "median", "mode"])),
                  "unmapped_type": odd(st.sampled_from(["long", "keyword", "date", "colour", "text", "boolean"])),
                  "numeric_type": odd(st.sampled_from(["double", "long", "date", "date_nanos", "x"])),
                  "format": odd(st.sampled_from(["strict_date_optional_time_nanos", "yyyy", "'"])),
                  }))))
SORT = choice(SORT_ITEM, st.lists(SORT_ITEM, max_size=4))


def _metric(kind: str, extra: dict[str, st.SearchStrategy[Any]] | None = None) -> st.SearchStrategy[Any]:
    @st.composite
    def build(draw: Callable[..., Any]) -> dict[str, Any]:
        spec = pick(draw, {"missing": MISSING, "format": FORMAT, "value_type": odd(st.sampled_from(
            ["long", "double", "date", "ip", "string", "boolean", "colour"])), **(extra or {})})
        if not chance(draw, 0.1):
            spec["field"] = draw(AGG_FIELD)
        return {kind: spec}
    return build()


HIT_COUNT = odd(st.one_of(st.integers(-2, 120), st.sampled_from([2**31, "3", "x", 1.5])))


@st.composite
def bucket_agg(draw: Callable[..., Any]) -> dict[str, Any]:
    kind = draw(st.sampled_from(["terms", "histogram", "date_histogram", "range", "date_range", "ip_range",
                                 "filters", "filter", "missing", "global"]))
    field = {} if chance(draw, 0.1) else {"field": draw(AGG_FIELD)}
    range_item = st.fixed_dictionaries({}, optional={"from": odd(BOUND), "to": odd(BOUND), "key": odd(SHORT_TEXT),
                                                     "mask": odd(IPS)})
    bounds = odd(st.fixed_dictionaries({}, optional={"min": odd(BOUND), "max": odd(BOUND)}))
    if kind == "terms":
        return {kind: {**field, **pick(draw, {
            "size": HIT_COUNT, "shard_size": HIT_COUNT, "order": ORDER, "min_doc_count": HIT_COUNT,
            "shard_min_doc_count": HIT_COUNT, "missing": MISSING, "format": FORMAT,
            "include": odd(st.one_of(st.sampled_from(["al.*", "a|b", ".*", "((", "[a-", "*", "a{2,1}"]),
                                     st.lists(st.sampled_from(WORDS)))),
            "exclude": odd(st.one_of(st.sampled_from(["be.*", "x"]), st.lists(st.sampled_from(WORDS)))),
            "show_term_doc_count_error": BOOLISH, "execution_hint": odd(st.sampled_from(["map", "global_ordinals"])),
            "collect_mode": odd(st.sampled_from(["breadth_first", "depth_first"])),
            "value_type": odd(st.sampled_from(["string", "long", "ip", "nope"]))})}}
    if kind == "histogram":
        return {kind: {**field, "interval": draw(odd(st.one_of(st.sampled_from([1, 10, 0.5, 0, -1, 1e-300, 1e300]),
                                                              FLOATS))),
                       **pick(draw, {"offset": odd(FLOATS), "min_doc_count": HIT_COUNT, "extended_bounds": bounds,
                                     "hard_bounds": bounds, "missing": MISSING, "keyed": BOOLISH, "order": ORDER,
                                     "format": FORMAT})}}
    if kind == "date_histogram":
        interval = draw(st.sampled_from(["calendar_interval", "fixed_interval", "interval"]))
        return {kind: {**field, interval: draw(odd(INTERVAL_TEXT)), **pick(draw, {
            "time_zone": TIME_ZONES, "format": DATE_FORMATS, "offset": odd(st.sampled_from(["+1h", "-1d", "1d", "x",
                                                                                          "+30m", 3600000])),
            "min_doc_count": HIT_COUNT, "keyed": BOOLISH, "order": ORDER, "missing": odd(DATES),
            "extended_bounds": odd(st.fixed_dictionaries({}, optional={"min": odd(DATES), "max": odd(DATES)})),
            "hard_bounds": odd(st.fixed_dictionaries({}, optional={"min": odd(DATES), "max": odd(DATES)})),
            "calendar_interval": odd(INTERVAL_TEXT), "fixed_interval": odd(INTERVAL_TEXT)})}}
    if kind in ("range", "date_range", "ip_range"):
        extra = {"time_zone": TIME_ZONES, "format": DATE_FORMATS} if kind == "date_range" else {"format": FORMAT}
        return {kind: {**field, "ranges": draw(odd(st.lists(range_item, max_size=4))),
                       **pick(draw, {"keyed": BOOLISH, "missing": MISSING, **extra})}}
    if kind == "filters":
        filters = odd(st.one_of(st.dictionaries(AGG_NAME, QUERY, max_size=3), st.lists(QUERY, max_size=3)))
        return {kind: pick(draw, {"filters": filters, "other_bucket": BOOLISH, "other_bucket_key": odd(SHORT_TEXT),
                                  "keyed": BOOLISH}, unknown=0.02) | ({"filters": draw(filters)}
                                                                     if not chance(draw, 0.1) else {})}
    if kind == "filter":
        return {kind: draw(QUERY)}
    if kind == "missing":
        return {kind: field}
    return {kind: draw(odd(st.just({})))}


AGG_LEAF = choice(
    *[_metric(kind) for kind in ("avg", "min", "max", "sum", "stats", "value_count")],
    _metric("extended_stats", {"sigma": odd(st.sampled_from([2, 0, -1, 3.5]))}),
    _metric("cardinality", {"precision_threshold": HIT_COUNT}),
    _metric("percentiles", {"percents": odd(st.one_of(st.lists(st.one_of(st.integers(-5, 105), FLOATS), max_size=5),
                                                      st.integers(0, 100))),
                            "keyed": BOOLISH, "tdigest": odd(st.fixed_dictionaries({}, optional={
                                "compression": odd(FLOATS), "execution_hint": odd(st.just("high_accuracy"))})),
                            "hdr": odd(st.fixed_dictionaries({}, optional={
                                "number_of_significant_value_digits": odd(st.integers(-1, 9))}))}),
    st.builds(lambda spec: {"top_hits": spec}, st.fixed_dictionaries({}, optional={
        "size": HIT_COUNT, "from": HIT_COUNT, "sort": SORT, "_source": SOURCE, "track_scores": BOOLISH,
        "version": BOOLISH, "explain": BOOLISH, "seq_no_primary_term": BOOLISH, "stored_fields": JUNK,
        "docvalue_fields": JUNK, "fields": JUNK})),
    st.builds(lambda kind, body: {kind: body}, st.sampled_from(
        ["composite", "nested", "significant_terms", "scripted_metric", "bucket_sort", "geo_bounds", "nope",
         "Terms", "rare_terms", "avg_bucket"]), odd(st.just({"field": "k"}))),
    bucket_agg())


@st.composite
def aggs_tree(draw: Callable[..., Any], depth: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for _ in range(draw(st.integers(1, 3 if depth == 0 else 2))):
        definition = dict(draw(AGG_LEAF))
        if depth < 3 and chance(draw, 0.3):
            definition[draw(st.sampled_from(["aggs", "aggregations"]))] = draw(aggs_tree(depth + 1))
        if chance(draw, 0.05):
            definition["meta"] = draw(JUNK)
        out[draw(AGG_NAME)] = definition
    return out


@st.composite
def deep_aggs(draw: Callable[..., Any]) -> dict[str, Any]:
    """A chain of terms aggregations up to 13 levels deep (the limit is 10)."""
    tree: dict[str, Any] = {"leaf": draw(AGG_LEAF)}
    for level in range(draw(st.integers(1, 13))):
        tree = {f"l{level}": {"terms": {"field": draw(st.sampled_from(["k", "l", "b"]))}, "aggs": tree}}
    return tree


AGGS = st.one_of(aggs_tree(), aggs_tree(), deep_aggs(), JUNK)

# -- the whole body ----------------------------------------------------------------------------------
PAGING = odd(st.one_of(st.integers(-5, 30), st.sampled_from(
    [-1, 10_000, 10_001, 2**31 - 1, 2**31, -2**31 - 1, 2**63, "10", "-1", "abc", "", 1.5, 2.0, None, True, 1e300])),
    junk_weight=1)
HIGHLIGHT_FIELD_OPTIONS = {
    "pre_tags": odd(st.lists(st.sampled_from(["<b>", "", "<em class='x'>", "\u0000"]), max_size=3)),
    "post_tags": odd(st.lists(st.sampled_from(["</b>", "", "]"]), max_size=3)),
    "fragment_size": INTISH, "number_of_fragments": INTISH, "no_match_size": INTISH,
    "order": odd(st.sampled_from(["score", "none", "x"])), "require_field_match": BOOLISH,
    "encoder": odd(st.sampled_from(["html", "default", "x"])), "type": odd(st.sampled_from(["unified", "plain",
                                                                                         "fvh", "x"])),
    "tags_schema": odd(st.sampled_from(["styled", "x"])), "boundary_scanner": odd(st.sampled_from(["word", "chars"])),
    "max_analyzed_offset": INTISH, "fragmenter": odd(st.sampled_from(["simple", "span"])),
    "matched_fields": JUNK, "highlight_query": QUERY}


@st.composite
def highlight(draw: Callable[..., Any]) -> dict[str, Any]:
    options = st.builds(lambda: None) | st.just({}) | st.builds(lambda d: d, st.fixed_dictionaries(
        {}, optional={k: v for k, v in HIGHLIGHT_FIELD_OPTIONS.items() if k != "highlight_query"}))
    fields = draw(odd(st.one_of(
        st.dictionaries(st.sampled_from(MAPPED + ["*", "t*", "missing"]), options, max_size=3),
        st.lists(st.dictionaries(st.sampled_from(MAPPED + ["*"]), options, min_size=1, max_size=1), max_size=3))))
    return {"fields": fields, **pick(draw, HIGHLIGHT_FIELD_OPTIONS, most=3, unknown=0.03)}


FIELDS_REQUEST = odd(st.one_of(st.lists(st.one_of(
    st.sampled_from(MAPPED + ["*", "t*", "_id", ""]),
    st.fixed_dictionaries({"field": st.sampled_from(MAPPED + ["*"])}, optional={
        "format": odd(st.sampled_from(["epoch_millis", "yyyy", "0.00", "'", "use_field_mapping", "#E0"])),
        "include_unmapped": BOOLISH})), max_size=3), st.sampled_from(["t,k", "*"])))
BODY_KEYS: dict[str, st.SearchStrategy[Any]] = {
    "from": PAGING, "size": PAGING, "sort": SORT, "_source": SOURCE, "track_total_hits": PAGING,
    "track_scores": BOOLISH,
    "search_after": odd(st.lists(st.one_of(INTS, FLOATS, st.sampled_from(WORDS), DATES, JUNK), max_size=3)),
    "aggs": AGGS, "aggregations": AGGS, "post_filter": odd(QUERY), "highlight": odd(highlight()),
    "explain": BOOLISH, "version": BOOLISH, "seq_no_primary_term": BOOLISH,
    "stored_fields": odd(st.one_of(st.sampled_from(["_none_", "_source", "t", "t,k", "*"]),
                                   st.lists(st.sampled_from(["t", "_source", "k", "_id"]), max_size=3))),
    "docvalue_fields": FIELDS_REQUEST, "fields": FIELDS_REQUEST,
    "min_score": odd(st.one_of(FLOATS, st.integers(-5, 5))), "timeout": odd(st.sampled_from(["1s", "10ms", "x"])),
    "terminate_after": INTISH, "profile": odd(st.just(False)), "stats": odd(st.lists(st.just("group"))),
}
REFUSED_KEYS = st.sampled_from(["collapse", "rescore", "suggest", "script_fields", "runtime_mappings", "pit", "knn",
                                "slice", "indices_boost", "ext", "rank", "colour", "Query", "", "profile"])


@st.composite
def search_body(draw: Callable[..., Any]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if not chance(draw, 0.2):
        body["query"] = draw(JUNK if chance(draw, 0.03) else ANY_QUERY)
    for key in draw(st.lists(st.sampled_from(sorted(BODY_KEYS)), max_size=3, unique=True)):
        body[key] = draw(BODY_KEYS[key])
    if chance(draw, 0.03):
        body[draw(REFUSED_KEYS)] = draw(JUNK)
    return body


# -- mutations of generated bodies ---------------------------------------------------------------------


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value[:20]):
            yield from _paths(child, (*prefix, index))


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def _set(root: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    _get(root, path[:-1])[path[-1]] = new
    return root


@st.composite
def mutated_body(draw: Callable[..., Any]) -> dict[str, Any]:
    body: Any = json.loads(json.dumps(draw(search_body())))
    for _ in range(draw(st.integers(1, 4))):
        paths = list(_paths(body))
        path = draw(st.sampled_from(paths))
        target = _get(body, path)
        how = draw(st.sampled_from(["drop", "junk", "unknown_key", "wrap_list", "unwrap", "deepen", "retype",
                                    "duplicate", "empty", "hoist"]))
        if how == "drop" and path:
            parent = _get(body, path[:-1])
            del parent[path[-1]]
        elif how == "junk":
            body = _set(body, path, draw(JUNK))
        elif how == "unknown_key" and isinstance(target, dict):
            target[draw(st.sampled_from(["colour", "boost", "_name", "query", "bool", "", "aggs", "size"]))] = \
                draw(JUNK)
        elif how == "wrap_list":
            body = _set(body, path, [target])
        elif how == "unwrap" and isinstance(target, (list, dict)) and target:
            body = _set(body, path, target[0] if isinstance(target, list) else next(iter(target.values())))
        elif how == "deepen":
            for _ in range(draw(st.integers(1, 30))):
                target = draw(st.sampled_from([{"bool": {"must": target}}, {"constant_score": {"filter": target}},
                                               [target], {"a": target}]))
            body = _set(body, path, target)
        elif how == "retype":
            if isinstance(target, bool):
                new: Any = str(target).lower()
            elif isinstance(target, (int, float)):
                new = str(target)
            elif isinstance(target, str):
                new = draw(st.sampled_from([len(target), [target], {target: target}, None, target.upper()]))
            else:
                new = json.dumps(target)
            body = _set(body, path, new)
        elif how == "duplicate" and isinstance(target, dict) and target:
            key = draw(st.sampled_from(sorted(target)))
            target[key + draw(st.sampled_from(["", "s", "_2"]))] = json.loads(json.dumps(target[key]))
        elif how == "empty":
            body = _set(body, path, draw(st.sampled_from([{}, [], "", None, 0])))
        elif how == "hoist" and path:
            body = target if isinstance(target, dict) else body
    return body if isinstance(body, dict) else {"query": body}


# -- URL parameters ------------------------------------------------------------------------------------
PARAM_VALUES: dict[str, st.SearchStrategy[str]] = {
    "q": st.one_of(QS_TEXT, st.sampled_from(["alpha", "t:beta", "*", ""])),
    "df": st.sampled_from(MAPPED + ["*", "", "missing"]),
    "default_operator": st.sampled_from(["AND", "or", "xor", ""]), "analyzer": st.sampled_from(["standard", "x"]),
    "analyze_wildcard": st.sampled_from(["true", "false", "x"]), "lenient": st.sampled_from(["true", "false", "x"]),
    "from": st.sampled_from(["0", "5", "-1", "x", "1.5", "99999999999", "", " 3"]),
    "size": st.sampled_from(["0", "10", "-1", "x", "10001", "1e3", ""]),
    "sort": st.sampled_from(["l", "l:desc", "k:asc,l", ":", "l:up", ",", "a:b:c", "_score", "t", "_doc:desc"]),
    "_source": st.sampled_from(["false", "true", "", "t,k", "*", "t*"]),
    "_source_includes": st.sampled_from(["t", "", "*,,"]), "_source_excludes": st.sampled_from(["t", "", "d*"]),
    "track_total_hits": st.sampled_from(["true", "false", "-1", "-2", "100", "x", "0"]),
    "track_scores": st.sampled_from(["true", "x"]), "explain": st.sampled_from(["true", "false", "1", ""]),
    "version": st.sampled_from(["true", "no"]), "seq_no_primary_term": st.sampled_from(["true", "x"]),
    "stored_fields": st.sampled_from(["_none_", "t", "_source,t", ""]),
    "docvalue_fields": st.sampled_from(["l", "t", "dt,k", ""]), "timeout": st.sampled_from(["1s", "x"]),
    "terminate_after": st.sampled_from(["1", "x"]), "rest_total_hits_as_int": st.sampled_from(["true", "false", "x"]),
    "typed_keys": st.sampled_from(["true", "x"]), "include_named_queries_score": st.sampled_from(["true", "x"]),
    "request_cache": st.sampled_from(["true", "false"]), "preference": st.sampled_from(["_local", "x"]),
    "routing": st.sampled_from(["1", ""]), "search_type": st.sampled_from(["query_then_fetch", "dfs_query_then_fetch"]),
    "allow_partial_search_results": st.sampled_from(["true", "false"]),
}
IN_PROCESS_PARAMS = {**PARAM_VALUES, "scroll": st.sampled_from(["1m", "x", "0s"])}


@st.composite
def url_params(draw: Callable[..., Any], values: dict[str, st.SearchStrategy[str]]) -> dict[str, str]:
    if not chance(draw, 0.3):
        return {}
    keys = draw(st.lists(st.sampled_from(sorted(values)), max_size=3, unique=True))
    return {key: draw(values[key]) for key in keys}


# ==================================================================================================
# Layer 1: in process
# ==================================================================================================


def _as_received(body: Any) -> Any:
    """The body as the server would see it after its strict JSON parser, or None if it refuses it."""
    try:
        return loads_strict(json.dumps(body).encode())
    except StrongroomError:
        return None


def check_parse(body: Any, params: dict[str, str]) -> None:
    received = _as_received(body)
    if not isinstance(received, dict):
        event("body refused by the JSON parser")
        return
    started = time.monotonic()
    try:
        parse_search_request(received, params)
        event("parsed")
    except StrongroomError as error:
        assert 400 <= error.status < 500, f"{type(error).__name__} with status {error.status}: {error.reason}"
        assert isinstance(error.to_es()["reason"], str) and error.to_es()["type"]
        event(f"refused: {error.es_type}")
    except Exception as error:
        bug = known_bug(type(error).__name__, deepest_strongroom_frame(error))
        if bug is None:
            raise
        event(f"known bug: {bug.name}")
    elapsed = time.monotonic() - started
    assert elapsed < SLOW_EXAMPLE_SECONDS, f"parsing took {elapsed:.1f}s"


@pytest.mark.timeout(120)
@settings(max_examples=1500 * SCALE, **COMMON_SETTINGS)
@given(body=search_body(), params=url_params(IN_PROCESS_PARAMS))
def test_grammar_bodies_parse_or_get_a_4xx(body: dict[str, Any], params: dict[str, str]) -> None:
    check_parse(body, params)


@pytest.mark.timeout(120)
@settings(max_examples=1000 * SCALE, **COMMON_SETTINGS)
@given(body=mutated_body(), params=url_params(IN_PROCESS_PARAMS))
def test_mutated_bodies_parse_or_get_a_4xx(body: dict[str, Any], params: dict[str, str]) -> None:
    check_parse(body, params)


@pytest.mark.timeout(120)
@settings(max_examples=1500 * SCALE, **COMMON_SETTINGS)
@given(kind=st.sampled_from(["query_string", "simple_query_string"]), text=st.one_of(QS_TEXT, SQS_TEXT, st.text()),
       fields=st.one_of(st.just({}), st.fixed_dictionaries({"fields": FIELD_LIST}),
                        st.fixed_dictionaries({"default_field": st.sampled_from(["t", "*", "k"])})),
       extra=st.fixed_dictionaries({}, optional={"default_operator": OPERATOR, "minimum_should_match": MSM,
                                                 "fuzziness": FUZZINESS, "phrase_slop": INTISH,
                                                 "escape": BOOLISH, "allow_leading_wildcard": BOOLISH,
                                                 "flags": st.sampled_from(["ALL", "NONE", "PRECEDENCE|ESCAPE"])}))
def test_query_string_syntax_parses_or_gets_a_4xx(kind: str, text: str, fields: dict[str, Any],
                                                  extra: dict[str, Any]) -> None:
    if kind == "query_string":
        extra.pop("flags", None)
    else:
        for key in ("fuzziness", "phrase_slop", "escape", "allow_leading_wildcard"):
            extra.pop(key, None)
        if "default_field" in fields:
            fields = {}
    check_parse({"query": {kind: {"query": text, **fields, **extra}}}, {})
    check_parse({}, {"q": text})


# ==================================================================================================
# Layer 2: live, over HTTPS
# ==================================================================================================
INDEX = "fuzz-dsl"
SCRATCH = "fuzz-dsl-scratch"
MAPPING = {"properties": {"t": {"type": "text"}, "k": {"type": "keyword"}, "l": {"type": "long"},
                          "d": {"type": "double"}, "dt": {"type": "date"}, "b": {"type": "boolean"},
                          "ip": {"type": "ip"}}}
ERROR_LINE = re.compile(r"internal error on \S+ \S+: (\w+)")
FRAME_LINE = re.compile(r'File "([^"]+)", line \d+, in (\S+)')


def _documents() -> list[dict[str, Any]]:
    import random
    rnd = random.Random(20240601)
    docs = []
    for i in range(50):
        doc: dict[str, Any] = {
            "t": " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(1, 12))), "k": rnd.choice(WORDS),
            "l": rnd.randint(-10**6, 10**6), "d": round(rnd.uniform(-1000, 1000), 3),
            "dt": f"{rnd.randint(1990, 2030)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}T"
                  f"{rnd.randint(0, 23):02d}:{rnd.randint(0, 59):02d}:00Z",
            "b": rnd.random() < 0.5, "ip": f"10.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}"}
        if i % 10 == 0:
            doc["t"] = [doc["t"], "alpha beta"]
            doc["l"] = [doc["l"], 0]
        if i % 13 == 0:
            del doc["d"], doc["ip"]
        docs.append(doc)
    return docs


def _bulk(http: httpx.Client, index: str) -> None:
    lines = []
    for i, doc in enumerate(_documents()):
        lines += [json.dumps({"index": {"_index": index, "_id": str(i)}}), json.dumps(doc)]
    response = http.post("/_bulk?refresh=true", content="\n".join(lines) + "\n",
                         headers={"Content-Type": "application/x-ndjson"})
    assert response.status_code == 200 and not response.json()["errors"], response.text[:500]


@dataclass
class Live:
    server: LiveServer
    http: httpx.Client

    def __repr__(self) -> str:  # Hypothesis prints the arguments of a failing example.
        return f"Live({self.server.url})"

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request; a 5xx is a bug unless the server's log shows a known one."""
        before = len(self.server.output)
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            pytest.fail(f"{method} {path} hung past the 30 s client timeout: {kwargs!r}"[:2000])
        if response.status_code >= 500:
            bug = self._known_from_log(before)
            if bug is not None:
                event(f"known bug: {bug.name}")
                return response
            raise AssertionError(f"{method} {path} answered {response.status_code}: {response.text[:300]}\n"
                                 f"server log:\n{self._log_since(before)[-3000:]}")
        check_error_shape(response)
        event(f"{path.rsplit('/', 1)[-1]} {response.status_code}")
        return response

    def _log_since(self, start: int) -> str:
        """The server's output since `start`, once the error's traceback is complete (read by a thread)."""
        deadline = time.monotonic() + 3.0
        seen = -1
        while time.monotonic() < deadline:
            now = len(self.server.output)
            if now == seen and ERROR_LINE.search("".join(self.server.output[start:now])):
                break
            seen = now
            time.sleep(0.1)
        return "".join(self.server.output[start:])

    def _known_from_log(self, start: int) -> KnownBug | None:
        text = self._log_since(start)
        found = ERROR_LINE.search(text)
        if found is None:
            return None
        lines = text[found.end():].splitlines()
        frame = None
        for i, line in enumerate(lines):
            match = FRAME_LINE.search(line)
            if match and "/strongroom/" in match.group(1) and "/site-packages/" not in match.group(1):
                frame = (match.group(2), lines[i + 1].strip() if i + 1 < len(lines) else "")
            elif ERROR_LINE.search(line):
                break  # the next error's traceback
        return known_bug(found.group(1), frame)


def check_error_shape(response: httpx.Response) -> None:
    assert response.status_code < 500
    if response.status_code < 400:
        return
    body = response.json()
    if response.status_code == 409 and "failures" in body:  # a by-query conflict report
        return
    assert body["status"] == response.status_code, body
    error = body["error"]
    assert isinstance(error["type"], str) and error["type"], body
    assert isinstance(error["reason"], str), body
    assert isinstance(error["root_cause"], list) and error["root_cause"], body


@pytest.fixture(scope="module")
def live(server: LiveServer) -> Iterator[Live]:
    with httpx.Client(base_url=server.url, verify=ssl.create_default_context(cafile=server.ca),
                      auth=("admin", server.password), timeout=30) as http:
        for index in (INDEX, SCRATCH):
            http.delete(f"/{index}")
            created = http.put(f"/{index}", json={"mappings": MAPPING})
            assert created.status_code == 200, created.text
            _bulk(http, index)
        yield Live(server, http)
        http.delete(f"/{SCRATCH}")
        http.delete(f"/{INDEX}")


def _query_of(body: dict[str, Any]) -> dict[str, Any]:
    return {"query": body["query"]} if "query" in body else {}


@pytest.mark.timeout(240)
@settings(max_examples=1200 * SCALE, **COMMON_SETTINGS)
@given(body=choice(search_body(), mostly_valid(search_body()), mostly_valid(search_body()), mutated_body()),
       params=url_params(PARAM_VALUES),
       route=st.sampled_from(["search"] * 6 + ["count", "msearch", "delete_by_query"]),
       more=st.lists(search_body(), max_size=2))
def test_live_search_answers_below_500(live: Live, body: dict[str, Any], params: dict[str, str], route: str,
                                       more: list[dict[str, Any]]) -> None:
    if route == "search":
        live.call("POST", f"/{INDEX}/_search", json=body, params=params)
    elif route == "count":
        count_params = {k: v for k, v in params.items() if k in ("q", "df", "default_operator", "analyzer", "lenient")}
        live.call("POST", f"/{INDEX}/_count", json=_query_of(body), params=count_params)
    elif route == "msearch":
        lines = []
        for item in [body, *more]:
            lines += [json.dumps({} if len(lines) % 4 else {"index": INDEX}), json.dumps(item)]
        response = live.call("POST", f"/{INDEX}/_msearch", content="\n".join(lines) + "\n",
                             headers={"Content-Type": "application/x-ndjson"})
        if response.status_code == 200:
            for item in response.json()["responses"]:
                assert item["status"] < 500, item
                if item["status"] >= 400:
                    assert isinstance(item["error"]["type"], str) and isinstance(item["error"]["reason"], str), item
    else:
        by_query = {k: v for k, v in params.items() if k in ("q", "df", "default_operator", "analyzer", "lenient")}
        response = live.call("POST", f"/{SCRATCH}/_delete_by_query", json=_query_of(body),
                             params={**by_query, "refresh": "true"})
        if response.status_code == 200 and response.json().get("deleted"):
            _bulk(live.http, SCRATCH)  # Put the documents back for the next examples.


def test_live_server_still_serves_after_fuzzing(live: Live) -> None:
    assert live.http.get("/").status_code == 200
    count = live.http.post(f"/{INDEX}/_count").json()
    assert count["count"] == 50, count  # _delete_by_query only ever touched the scratch copy
    assert live.server.process.poll() is None


# ==================================================================================================
# Regression tests: the bugs these fuzzers found (each was a 500 or an uncaught exception)
# ==================================================================================================


def _parse_4xx_or_ok(body: dict[str, Any], params: dict[str, str] | None = None) -> None:
    try:
        parse_search_request(body, params or {})
    except StrongroomError as error:
        assert 400 <= error.status < 500


PARSER_BUGS = [
    pytest.param({"query": {"match": {"t": {"query": "alpha", "fuzziness": "Infinity"}}}},
                 id="fuzziness-infinity"),
    pytest.param({"query": {"fuzzy": {"k": {"value": "alpha", "fuzziness": "NaN"}}}},
                 id="fuzziness-nan"),
    pytest.param({"query": {"range": {"l": {"gte": 1, "relation": 1}}}},
                 id="range-relation-not-a-string"),
    pytest.param({"stored_fields": 5},
                 id="stored-fields-not-a-list"),
    pytest.param({"stored_fields": [1]},
                 id="stored-fields-not-strings"),
    pytest.param({"highlight": {"fields": {"t": {}}, "pre_tags": 5}},
                 id="highlight-tags-not-a-list"),
    pytest.param({"aggs": {"h": {"date_histogram": {"field": "dt", "calendar_interval": "day",
                                                    "time_zone": "America"}}}}, id="time-zone-is-a-tzdata-directory"),
    pytest.param({"aggs": {"h": {"date_histogram": {"field": "dt", "calendar_interval": "day",
                                                    "time_zone": "a" * 300}}}},
                 id="time-zone-too-long"),
]


@pytest.mark.parametrize("body", PARSER_BUGS)
def test_parser_bug_reproduction(body: dict[str, Any]) -> None:
    _parse_4xx_or_ok(body)


LIVE_BUGS = [
    pytest.param({"query": {"match": {"t": "alpha"}}, "highlight": {"fields": {"t": {}}, "pre_tags": [1]}},
                 id="highlight-tags-not-strings"),
    pytest.param({"query": {"range": {"dt": {"gte": "2020-01-01", "time_zone": "America"}}}}, id="range-time-zone-is-a-tzdata-directory"),
    pytest.param({"query": {"query_string": {"query": "dt:[2020 TO 2021]", "time_zone": "Etc"}}}, id="query-string-time-zone-is-a-tzdata-directory"),
    pytest.param({"size": 0, "aggs": {"h": {"date_histogram": {
        "field": "dt", "calendar_interval": "year", "extended_bounds": {"min": "9999-01-01", "max": "9999-06-01"}}}}}, id="date-histogram-extended-bounds-year-9999"),
    pytest.param({"size": 0, "aggs": {"h": {"date_histogram": {
        "field": "dt", "calendar_interval": "year", "extended_bounds": {"min": -1e300, "max": 1e300}}}}},
                 id="date-histogram-extended-bounds-huge"),
    pytest.param({"size": 0, "aggs": {"h": {"date_histogram": {
        "field": "dt", "calendar_interval": "month", "offset": "+99999999999999d"}}}},
                 id="date-histogram-offset-huge"),
    pytest.param({"size": 0, "aggs": {"h": {"terms": {"field": "k", "include": "(("}}}}, id="terms-include-bad-regex"),
    pytest.param({"query": {"match_bool_prefix": {"k": 5}}}, id="bool-prefix-non-string-query-on-keyword"),
    pytest.param({"query": {"multi_match": {"query": False, "type": "bool_prefix", "fields": ["k"]}}}, id="multi-match-bool-prefix-non-string-query"),
]


@pytest.mark.parametrize("body", LIVE_BUGS)
def test_live_bug_reproduction(live: Live, body: dict[str, Any]) -> None:
    response = live.http.post(f"/{INDEX}/_search", json=body)
    assert response.status_code < 500, response.text[:300]
    check_error_shape(response)
