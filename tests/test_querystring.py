"""query_string / simple_query_string → query DSL (strongroom.query.querystring).

Known answers follow Elasticsearch 8 (Lucene's classic parser as extended by QueryStringQueryParser,
and Lucene's SimpleQueryParser), then properties: the simple syntax never fails, the classic syntax
fails only with a RequestError, and only the query types the DSL compiler knows come out.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.errors import RequestError
from strongroom.query.querystring import (
    MAX_CLAUSES,
    MAX_DEPTH,
    QueryStringError,
    query_string_to_dsl,
    simple_query_string_to_dsl,
)

ALLOWED = {"bool", "match", "match_phrase", "match_phrase_prefix", "multi_match", "prefix", "wildcard",
           "regexp", "fuzzy", "range", "exists", "match_all", "match_none", "dis_max"}


def m(text: str, field: str = "f", **params: Any) -> dict:
    return {"match": {field: {"query": text, **params}}}


def mm(text: str, fields: list[str], **params: Any) -> dict:
    return {"multi_match": {"query": text, "fields": fields, **params}}


def bool_(**clauses: Any) -> dict:
    return {"bool": clauses}


NEG = [{"match_all": {}}]  # the filter Elasticsearch adds to a group of prohibited clauses only
F = {"default_field": "f"}

QUERY_STRING_CASES: list[tuple[str, dict, dict]] = [
    # terms and runs of words (whitespace is not an operator: one analysed text, one match)
    ("term", {"query": "a", **F}, m("a")),
    ("run of words", {"query": "new york city", **F}, m("new york city")),
    ("all fields by default", {"query": "new york"}, mm("new york", ["*"], lenient=True)),
    ("dotted field", {"query": "a.b.c:x", **F}, m("x", "a.b.c")),
    ("field applies to the next term only", {"query": "title:foo bar", **F},
     bool_(should=[m("foo", "title"), m("bar")])),
    ("field group", {"query": "title:(foo bar)", **F}, m("foo bar", "title")),
    ("field group with inner field", {"query": "title:(foo OR body:bar)", **F},
     bool_(should=[m("foo", "title"), m("bar", "body")])),
    ("wildcard field, escaped", {"query": r"name.\*:x", **F}, mm("x", ["name.*"])),
    ("all-fields prefix", {"query": "*:x", **F}, mm("x", ["*"])),
    # precedence: Lucene's classic parser assigns occurs left to right
    ("a AND b OR c", {"query": "a AND b OR c", **F}, bool_(must=[m("a"), m("b")], should=[m("c")])),
    ("a OR b AND c", {"query": "a OR b AND c", **F}, bool_(should=[m("a")], must=[m("b"), m("c")])),
    ("NOT a AND b", {"query": "NOT a AND b", **F}, bool_(must_not=[m("a")], must=[m("b")])),
    ("+a -b c", {"query": "+a -b c", **F}, bool_(must=[m("a")], must_not=[m("b")], should=[m("c")])),
    ("a OR NOT b", {"query": "a OR NOT b", **F}, bool_(should=[m("a")], must_not=[m("b")])),
    ("&& and ||", {"query": "a && b || c", **F}, bool_(must=[m("a"), m("b")], should=[m("c")])),
    ("run stops before a conjunction", {"query": "a b AND c", **F},
     bool_(should=[m("a")], must=[m("b"), m("c")])),
    ("groups", {"query": "(a OR b) AND c", **F}, bool_(must=[bool_(should=[m("a"), m("b")]), m("c")])),
    ("nested groups", {"query": "a AND (b OR (c AND d))", **F},
     bool_(must=[m("a"), bool_(should=[m("b"), bool_(must=[m("c"), m("d")])])])),
    ("parentheses alone add nothing", {"query": "((((a))))", **F}, m("a")),
    ("pure negative", {"query": "-a", **F}, bool_(must_not=[m("a")], filter=NEG)),
    ("! is NOT", {"query": "!a", **F}, bool_(must_not=[m("a")], filter=NEG)),
    ("negative group inside", {"query": "a (-b)", **F},
     bool_(should=[m("a"), bool_(must_not=[m("b")], filter=NEG)])),
    ("prohibited group", {"query": "a -(b c)", **F}, bool_(should=[m("a")], must_not=[m("b c")])),
    ("lone operators are words that analyse to nothing", {"query": "a - b", **F},
     bool_(should=[m("a"), m("b")])),
    # default_operator AND
    ("AND: run", {"query": "a b", "default_operator": "AND", **F}, m("a b", operator="and")),
    ("AND: OR makes both optional", {"query": "a OR b", "default_operator": "and", **F},
     bool_(should=[m("a", operator="and"), m("b", operator="and")])),
    ("AND: a b OR c", {"query": "a b OR c", "default_operator": "AND", **F},
     bool_(must=[m("a", operator="and")], should=[m("b", operator="and"), m("c", operator="and")])),
    ("AND: +a -b c", {"query": "+a -b c", "default_operator": "AND", **F},
     bool_(must=[m("a", operator="and"), m("c", operator="and")], must_not=[m("b", operator="and")])),
    # escapes
    ("escaped specials", {"query": r"\(1\+1\)\=2", **F}, m("(1+1)=2")),
    ("escaped colon", {"query": r"a\:b", **F}, m("a:b")),
    ("unicode escape", {"query": r"\u0041bc", **F}, m("Abc")),
    ("escaped star is literal", {"query": r"a\*b", **F}, m("a*b")),
    ("escape parameter", {"query": "a AND (b)", "escape": True, **F}, bool_(must=[m("a"), m("(b)")])),
    # wildcards, prefixes, regular expressions
    ("wildcard ?", {"query": "qu?ck", **F}, {"wildcard": {"f": {"value": "qu?ck"}}}),
    ("trailing * is prefix", {"query": "bro*", **F}, {"prefix": {"f": {"value": "bro"}}}),
    ("two stars is wildcard", {"query": "a*b*", **F}, {"wildcard": {"f": {"value": "a*b*"}}}),
    ("leading wildcard", {"query": "*ing", **F}, {"wildcard": {"f": {"value": "*ing"}}}),
    ("prefix with escaped star", {"query": r"a\*b*", **F}, {"prefix": {"f": {"value": "a*b"}}}),
    ("wildcard keeps escapes", {"query": r"a\-b?", **F}, {"wildcard": {"f": {"value": r"a\-b?"}}}),
    ("field:* is exists", {"query": "title:*", **F}, {"exists": {"field": "title"}}),
    ("* on all fields", {"query": "*"}, {"match_all": {}}),
    ("*:*", {"query": "*:*", **F}, {"match_all": {}}),
    ("* on the default field", {"query": "*", **F}, {"exists": {"field": "f"}}),
    ("regexp", {"query": "name:/jo[hn]+/", **F}, {"regexp": {"name": {"value": "jo[hn]+"}}}),
    ("regexp escaped slash", {"query": r"/a\/b/", "max_determinized_states": 500, **F},
     {"regexp": {"f": {"value": r"a\/b", "max_determinized_states": 500}}}),
    # fuzzy and proximity
    ("fuzzy default", {"query": "quikc~", **F}, {"fuzzy": {"f": {"value": "quikc", "fuzziness": "AUTO"}}}),
    ("fuzzy distance", {"query": "quikc~1", **F}, {"fuzzy": {"f": {"value": "quikc", "fuzziness": 1}}}),
    ("fuzzy 0", {"query": "quikc~0", **F}, {"fuzzy": {"f": {"value": "quikc", "fuzziness": 0}}}),
    ("fuzzy parameters", {"query": "quikc~", "fuzziness": "1", "fuzzy_prefix_length": 2,
                          "fuzzy_max_expansions": 10, "fuzzy_transpositions": False, **F},
     {"fuzzy": {"f": {"value": "quikc", "fuzziness": 1, "prefix_length": 2, "max_expansions": 10,
                      "transpositions": False}}}),
    ("fuzzy then boost", {"query": "quikc~1^3", **F},
     {"fuzzy": {"f": {"value": "quikc", "fuzziness": 1, "boost": 3.0}}}),
    ("phrase", {"query": '"john smith"', **F}, {"match_phrase": {"f": {"query": "john smith"}}}),
    ("proximity", {"query": '"fox quick"~5', **F}, {"match_phrase": {"f": {"query": "fox quick", "slop": 5}}}),
    ("phrase_slop", {"query": '"a b"', "phrase_slop": 2, **F}, {"match_phrase": {"f": {"query": "a b", "slop": 2}}}),
    ("quote_field_suffix", {"query": '"a b" c', "quote_field_suffix": ".exact", "default_field": "title"},
     bool_(should=[{"match_phrase": {"title.exact": {"query": "a b"}}}, m("c", "title")])),
    ("quote_analyzer", {"query": '"a b" c', "analyzer": "x", "quote_analyzer": "q", **F},
     bool_(should=[{"match_phrase": {"f": {"query": "a b", "analyzer": "q"}}}, m("c", analyzer="x")])),
    # boosts
    ("term boost", {"query": "quick^2 fox", **F}, bool_(should=[m("quick", boost=2.0), m("fox")])),
    ("group boost", {"query": "(foo bar)^4", **F}, m("foo bar", boost=4.0)),
    ("bool group boost", {"query": "(foo OR bar)^4 baz", **F},
     bool_(should=[{"bool": {"should": [m("foo"), m("bar")], "boost": 4.0}}, m("baz")])),
    ("phrase boost", {"query": '"john smith"^2', **F}, {"match_phrase": {"f": {"query": "john smith", "boost": 2.0}}}),
    ("fractional boost", {"query": "a^0.5", **F}, m("a", boost=0.5)),
    ("exists boost", {"query": "f:*^2", **F}, {"bool": {"must": [{"exists": {"field": "f"}}], "boost": 2.0}}),
    ("query boost", {"query": "a OR b", "boost": 3, **F}, {"bool": {"should": [m("a"), m("b")], "boost": 3.0}}),
    # ranges
    ("inclusive range", {"query": "date:[2012-01-01 TO 2012-12-31]", **F},
     {"range": {"date": {"gte": "2012-01-01", "lte": "2012-12-31"}}}),
    ("exclusive range", {"query": "tag:{alpha TO omega}", **F}, {"range": {"tag": {"gt": "alpha", "lt": "omega"}}}),
    ("mixed range", {"query": "count:[1 TO 5}", **F}, {"range": {"count": {"gte": "1", "lt": "5"}}}),
    ("open upper", {"query": "count:[10 TO *]", **F}, {"range": {"count": {"gte": "10"}}}),
    ("open lower", {"query": "date:{* TO 2012-01-01}", **F}, {"range": {"date": {"lt": "2012-01-01"}}}),
    ("open both ends", {"query": "count:[* TO *]", **F}, {"exists": {"field": "count"}}),
    ("quoted bound", {"query": 'date:["2020-01-01" TO now]', **F}, {"range": {"date": {"gte": "2020-01-01", "lte": "now"}}}),
    ("range boost and time_zone", {"query": "d:[1 TO 2]^2", "time_zone": "+01:00", **F},
     {"range": {"d": {"gte": "1", "lte": "2", "time_zone": "+01:00", "boost": 2.0}}}),
    ("> range", {"query": "age:>10", **F}, {"range": {"age": {"gt": "10"}}}),
    (">= range", {"query": "age:>=10", **F}, {"range": {"age": {"gte": "10"}}}),
    ("< range", {"query": "age:<10", **F}, {"range": {"age": {"lt": "10"}}}),
    ("<= range", {"query": "age:<=10", **F}, {"range": {"age": {"lte": "10"}}}),
    ("escaped > is still a range", {"query": r"age:\>10", **F}, {"range": {"age": {"gt": "10"}}}),
    ("two-sided with the short syntax", {"query": "age:(>=10 AND <20)", **F},
     bool_(must=[{"range": {"age": {"gte": "10"}}}, {"range": {"age": {"lt": "20"}}}])),
    ("> is text when only fields are given", {"query": ">5", "fields": ["a"]}, m(">5", "a")),
    # _exists_
    ("_exists_", {"query": "_exists_:title", **F}, {"exists": {"field": "title"}}),
    ("NOT _exists_", {"query": "NOT _exists_:title", **F},
     bool_(must_not=[{"exists": {"field": "title"}}], filter=NEG)),
    # several fields
    ("fields: terms", {"query": "this AND that", "fields": ["content", "name^5"]},
     bool_(must=[mm("this", ["content", "name^5"]), mm("that", ["content", "name^5"])])),
    ("fields: run", {"query": "this that", "fields": ["content", "name^5"], "tie_breaker": 0.3},
     mm("this that", ["content", "name^5"], tie_breaker=0.3)),
    ("fields: type most_fields", {"query": "a", "fields": ["x", "y"], "type": "most_fields"},
     mm("a", ["x", "y"], type="most_fields")),
    ("fields: cross_fields read as best_fields", {"query": "a", "fields": ["x", "y"], "type": "cross_fields"},
     mm("a", ["x", "y"])),
    ("fields: one boosted field", {"query": "a", "fields": ["x^2"]}, m("a", "x", boost=2.0)),
    ("fields: pattern", {"query": "a", "fields": ["city.*"]}, mm("a", ["city.*"])),
    ("fields: prefix", {"query": "a*", "fields": ["x^2", "y"], "tie_breaker": 0.3},
     {"dis_max": {"queries": [{"prefix": {"x": {"value": "a", "boost": 2.0}}}, {"prefix": {"y": {"value": "a"}}}],
                  "tie_breaker": 0.3}}),
    ("fields: fuzzy", {"query": "a~1", "fields": ["x", "y"]},
     {"dis_max": {"queries": [{"fuzzy": {"x": {"value": "a", "fuzziness": 1}}},
                              {"fuzzy": {"y": {"value": "a", "fuzziness": 1}}}]}}),
    ("fields: range, most_fields tie", {"query": "[1 TO 2]", "fields": ["x", "y"], "type": "most_fields"},
     {"dis_max": {"queries": [{"range": {"x": {"gte": "1", "lte": "2"}}}, {"range": {"y": {"gte": "1", "lte": "2"}}}],
                  "tie_breaker": 1.0}}),
    ("fields: *", {"query": "*", "fields": ["x", "y"]},
     {"dis_max": {"queries": [{"exists": {"field": "x"}}, {"exists": {"field": "y"}}]}}),
    ("fields: phrase", {"query": '"a b"', "fields": ["x", "y^2"]}, mm("a b", ["x", "y^2"], type="phrase")),
    ("fields: sloppy phrase", {"query": '"a b"~2', "fields": ["x", "y^2"]},
     {"dis_max": {"queries": [{"match_phrase": {"x": {"query": "a b", "slop": 2}}},
                              {"match_phrase": {"y": {"query": "a b", "slop": 2, "boost": 2.0}}}]}}),
    ("fields with *: lenient by default", {"query": "a", "fields": ["*", "x"]}, mm("a", ["*", "x"], lenient=True)),
    ("type phrase makes runs phrases", {"query": "a b", "type": "phrase", **F},
     {"match_phrase": {"f": {"query": "a b"}}}),
    ("type phrase_prefix", {"query": "a b", "type": "phrase_prefix", **F},
     {"match_phrase_prefix": {"f": {"query": "a b"}}}),
    ("lenient and analyzer", {"query": "a", "lenient": False, "analyzer": "std", **F},
     m("a", analyzer="std", lenient=False)),
    # minimum_should_match: top-level boolean only
    ("msm on a run", {"query": "this that thus", "minimum_should_match": 2, **F},
     m("this that thus", minimum_should_match=2)),
    ("msm on explicit ORs", {"query": "this OR that OR thus", "minimum_should_match": "2", **F},
     bool_(should=[m("this"), m("that"), m("thus")], minimum_should_match="2")),
    ("msm counts the words of a run", {"query": "this that +thus", "minimum_should_match": 2, **F},
     bool_(should=[m("this"), m("that")], must=[m("thus")], minimum_should_match=2)),
    ("msm does not apply across fields", {"query": "this that thus", "fields": ["title", "content"],
                                          "minimum_should_match": 2},
     mm("this that thus", ["title", "content"])),
    ("msm with fields and ORs", {"query": "this OR that", "fields": ["t", "c"], "minimum_should_match": 2},
     bool_(should=[mm("this", ["t", "c"]), mm("that", ["t", "c"])], minimum_should_match=2)),
    ("msm not on groups", {"query": "(a b) OR c", "minimum_should_match": 2, **F},
     bool_(should=[m("a b"), m("c")], minimum_should_match=2)),
    # empty
    ("empty query matches nothing", {"query": "", **F}, {"match_none": {}}),
    ("blank query matches nothing", {"query": "  \t ", **F}, {"match_none": {}}),
    ("only words that analyse to nothing", {"query": "( - )", **F}, {"match_none": {}}),
    ("numbers as query", {"query": 42, **F}, m("42")),
    ("accepted parameters", {"query": "a", "analyze_wildcard": True, "auto_generate_synonyms_phrase_query": False,
                             "rewrite": "constant_score", "_name": "n", "enable_position_increments": True,
                             "fuzzy_rewrite": "x", **F}, m("a")),
]


@pytest.mark.parametrize("body,expected", [(b, e) for _, b, e in QUERY_STRING_CASES],
                         ids=[name for name, _, _ in QUERY_STRING_CASES])
def test_query_string_known_answers(body: dict, expected: dict) -> None:
    assert query_string_to_dsl(body) == expected
    assert _types(expected) <= ALLOWED


QUERY_STRING_ERRORS = [
    ("dangling AND", "a AND"),
    ("dangling OR", "a OR"),
    ("dangling NOT", "NOT"),
    ("dangling modifier", "a -"),
    ("dangling field", "title:"),
    ("missing close paren", "(a"),
    ("missing close paren, nested", "((a)"),
    ("extra close paren", "a)"),
    ("empty group", "()"),
    ("unterminated quote", '"a b'),
    ("unterminated quote after words", 'a b "c'),
    ("unterminated regexp", "a/b"),
    ("trailing escape", "a\\"),
    ("truncated unicode escape", r"\u00"),
    ("bad unicode escape", r"\u00zz"),
    ("two colons", "a:b:c"),
    ("unescaped wildcard field", "name.*:x"),
    ("boost without number", "a^"),
    ("boost not a number", "a^x"),
    ("edit distance too large", "foo~3"),
    ("fractional edit distance", "foo~1.5"),
    ("fuzziness not a number", "foo~abc"),
    ("range without TO", "[a b]"),
    ("range unterminated", "[a TO b"),
    ("range missing bound", "[a TO]"),
    ("range too many parts", "{a TO b TO c}"),
    ("stray bracket", "a ]"),
    ("too deep", "(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1)),
    ("far too deep", "(" * 10_000 + "a" + ")" * 10_000),
    ("too many clauses", " ".join(f"+a{i}" for i in range(MAX_CLAUSES + 10))),
]


@pytest.mark.parametrize("query", [q for _, q in QUERY_STRING_ERRORS], ids=[n for n, _ in QUERY_STRING_ERRORS])
def test_query_string_syntax_errors(query: str) -> None:
    with pytest.raises(QueryStringError) as info:
        query_string_to_dsl({"query": query, "default_field": "f"})
    err = info.value
    assert err.status == 400 and err.es_type == "query_shard_exception"
    assert err.reason == f"Failed to parse query [{query}]"
    body = err.to_es()
    assert body["caused_by"]["type"] == "parse_exception"
    assert body["caused_by"]["reason"].startswith(f"Cannot parse '{query}': ")
    assert err.detail in body["caused_by"]["reason"]


def test_error_detail_is_specific() -> None:
    def detail(q: str, **kw: Any) -> str:
        with pytest.raises(QueryStringError) as info:
            query_string_to_dsl({"query": q, "default_field": "f", **kw})
        return info.value.detail

    assert "after [AND]" in detail("a AND")
    assert "missing [)]" in detail("(a")
    assert "unexpected [)]" in detail("a)")
    assert "unterminated quoted phrase" in detail('"a')
    assert f"deeper than [{MAX_DEPTH}]" in detail("(" * 50 + "a" + ")" * 50)
    assert f"more than [{MAX_CLAUSES}]" in detail(" ".join(f"+a{i}" for i in range(2000)))
    assert "not allowed as first character" in detail("*ing", allow_leading_wildcard=False)
    assert "malformed range" in detail("[a b]")


def test_depth_limit_is_exact() -> None:
    ok = "(" * MAX_DEPTH + "a" + ")" * MAX_DEPTH
    assert query_string_to_dsl({"query": ok, "default_field": "f"}) == m("a")


def test_leading_wildcard_switch() -> None:
    off = {"default_field": "f", "allow_leading_wildcard": False}
    for q in ("*ing", "?ing", "a OR *b"):
        with pytest.raises(QueryStringError):
            query_string_to_dsl({"query": q, **off})
    assert query_string_to_dsl({"query": "*", **off}) == {"exists": {"field": "f"}}
    assert query_string_to_dsl({"query": "in*", **off}) == {"prefix": {"f": {"value": "in"}}}
    assert query_string_to_dsl({"query": "i*g", **off}) == {"wildcard": {"f": {"value": "i*g"}}}


@pytest.mark.parametrize("body,message", [
    ({}, "[query_string] must be provided with a [query]"),
    ({"query": None}, "[query_string] must be provided with a [query]"),
    ({"query": "a", "split_on_whitespace": True}, "[query_string] query does not support [split_on_whitespace]"),
    ({"query": "a", "fields": ["x"], "default_field": "y"}, "cannot use [fields] parameter in conjunction"),
    ({"query": "a", "default_operator": "xor"}, "default_operator [xor]"),
    ({"query": "a", "type": "nonsense"}, "unknown type"),
    ({"query": "a", "fields": "x"}, "[query_string] query does not support [fields]"),
    ({"query": "a", "fields": ["x^y"]}, "is not a number"),
    ({"query": {"a": 1}}, "unknown token [START_OBJECT] after [query]"),
    ({"query": "a", "boost": -1}, "negative"),
    ({"query": "a", "phrase_slop": "many"}, "[phrase_slop]"),
])
def test_query_string_bad_parameters(body: dict, message: str) -> None:
    with pytest.raises(RequestError) as info:
        query_string_to_dsl(body)
    assert not isinstance(info.value, QueryStringError)
    assert message in info.value.reason


SIMPLE_CASES: list[tuple[str, dict, dict]] = [
    ("default fields", {"query": "a b"},
     bool_(should=[mm("a", ["*"], type="most_fields", lenient=True),
                   mm("b", ["*"], type="most_fields", lenient=True)])),
    ("one field", {"query": "a", "fields": ["f"]}, m("a")),
    ("several fields", {"query": "a", "fields": ["f", "g^2"]}, mm("a", ["f", "g^2"], type="most_fields")),
    ("default_operator and", {"query": "a b", "fields": ["f"], "default_operator": "and"},
     bool_(must=[m("a", operator="and"), m("b", operator="and")])),
    ("left to right", {"query": "a | b + c", "fields": ["f"]}, bool_(must=[bool_(should=[m("a"), m("b")]), m("c")])),
    ("left to right 2", {"query": "a + b | c", "fields": ["f"]}, bool_(should=[bool_(must=[m("a"), m("b")]), m("c")])),
    ("precedence", {"query": "a + (b | c)", "fields": ["f"]}, bool_(must=[m("a"), bool_(should=[m("b"), m("c")])])),
    ("not", {"query": "-a", "fields": ["f"]}, bool_(must_not=[m("a")], should=[{"match_all": {}}])),
    ("not under OR matches nearly everything", {"query": "a -b", "fields": ["f"]},
     bool_(should=[m("a"), bool_(must_not=[m("b")], should=[{"match_all": {}}])])),
    ("not under AND", {"query": "a -b", "fields": ["f"], "default_operator": "AND"},
     bool_(must=[m("a", operator="and"), bool_(must_not=[m("b", operator="and")], should=[{"match_all": {}}])])),
    ("double not", {"query": "--a", "fields": ["f"]}, m("a")),
    ("inner dash is text", {"query": "a-b", "fields": ["f"]}, m("a-b")),
    ("phrase", {"query": '"a b"', "fields": ["f"]}, {"match_phrase": {"f": {"query": "a b"}}}),
    ("phrase slop", {"query": '"a b"~2', "fields": ["f"]}, {"match_phrase": {"f": {"query": "a b", "slop": 2}}}),
    ("phrase on fields", {"query": '"a b"', "fields": ["f", "g"]}, mm("a b", ["f", "g"], type="phrase")),
    ("quote_field_suffix", {"query": '"a b"', "fields": ["f"], "quote_field_suffix": ".x"},
     {"match_phrase": {"f.x": {"query": "a b"}}}),
    ("prefix", {"query": "foo*", "fields": ["f"]}, {"prefix": {"f": {"value": "foo"}}}),
    ("prefix on fields", {"query": "foo*", "fields": ["f", "g"]},
     {"dis_max": {"queries": [{"prefix": {"f": {"value": "foo"}}}, {"prefix": {"g": {"value": "foo"}}}],
                  "tie_breaker": 1.0}}),
    ("inner star is text", {"query": "f*o", "fields": ["f"]}, m("f*o")),
    ("escaped star is text", {"query": "foo\\*", "fields": ["f"]}, m("foo*")),
    ("fuzzy default is 2", {"query": "foo~", "fields": ["f"]}, {"fuzzy": {"f": {"value": "foo", "fuzziness": 2}}}),
    ("fuzzy 1 with parameters", {"query": "foo~1", "fields": ["f"], "fuzzy_prefix_length": 1,
                                 "fuzzy_max_expansions": 5, "fuzzy_transpositions": False},
     {"fuzzy": {"f": {"value": "foo", "fuzziness": 1, "prefix_length": 1, "max_expansions": 5,
                      "transpositions": False}}}),
    ("fuzzy capped at 2", {"query": "foo~5", "fields": ["f"]}, {"fuzzy": {"f": {"value": "foo", "fuzziness": 2}}}),
    ("fuzzy garbage is 0", {"query": "foo~x", "fields": ["f"]}, m("foo")),
    ("unbalanced ( ignored", {"query": "(a", "fields": ["f"]}, m("a")),
    ("unbalanced ) ignored", {"query": "a) b", "fields": ["f"]}, bool_(should=[m("a"), m("b")])),
    ("unbalanced quote ignored", {"query": '"a b', "fields": ["f"]}, bool_(should=[m("a"), m("b")])),
    ("empty group", {"query": "()", "fields": ["f"]}, {"match_none": {}}),
    ("star is match_all", {"query": " * "}, {"match_all": {}}),
    ("empty", {"query": ""}, {"match_none": {}}),
    ("flags NONE: all literal", {"query": "a + -b", "fields": ["f"], "flags": "NONE"}, m("a + -b")),
    ("flags without NOT", {"query": "-a", "fields": ["f"], "flags": "OR|AND|WHITESPACE"}, m("-a")),
    ("flags without PREFIX", {"query": "a*", "fields": ["f"], "flags": "whitespace"}, m("a*")),
    ("numeric flags", {"query": "a*", "fields": ["f"], "flags": -1}, {"prefix": {"f": {"value": "a"}}}),
    ("msm", {"query": "a b c", "fields": ["f"], "minimum_should_match": "75%"},
     bool_(should=[m("a"), m("b"), m("c")], minimum_should_match="75%")),
    ("msm on one token", {"query": "a", "fields": ["f"], "minimum_should_match": 1},
     m("a", minimum_should_match=1)),
    ("boost", {"query": "a b", "fields": ["f"], "boost": 2},
     {"bool": {"should": [m("a"), m("b")], "boost": 2.0}}),
    ("analyzer and lenient", {"query": "a", "fields": ["f"], "analyzer": "x", "lenient": True},
     m("a", analyzer="x", lenient=True)),
    ("deep nesting is read flat past the limit", {"query": "(" * 10_000 + "a" + ")" * 10_000, "fields": ["f"]},
     m("a")),
]


@pytest.mark.parametrize("body,expected", [(b, e) for _, b, e in SIMPLE_CASES],
                         ids=[name for name, _, _ in SIMPLE_CASES])
def test_simple_query_string_known_answers(body: dict, expected: dict) -> None:
    assert simple_query_string_to_dsl(body) == expected


@pytest.mark.parametrize("body,message", [
    ({}, "[simple_query_string] query text missing"),
    ({"query": "a", "default_field": "x"}, "[simple_query_string] unsupported field [default_field]"),
    ({"query": "a", "flags": "AND|BOGUS"}, "Unknown [simple_query_string] flag [BOGUS]"),
])
def test_simple_query_string_bad_parameters(body: dict, message: str) -> None:
    with pytest.raises(RequestError) as info:
        simple_query_string_to_dsl(body)
    assert message in info.value.reason


def test_simple_query_string_many_unbalanced_brackets_is_fast() -> None:
    body = {"query": "(" * 20_000 + '"' + "\\" * 3 + "a", "fields": ["f"]}
    assert _types(simple_query_string_to_dsl(body)) <= ALLOWED


# --------------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------------

def _types(query: dict) -> set[str]:
    """Every query type in a DSL tree (iterative: outputs may nest deeply)."""
    seen: set[str] = set()
    stack = [query]
    while stack:
        node = stack.pop()
        assert isinstance(node, dict) and len(node) == 1, node
        kind, body = next(iter(node.items()))
        seen.add(kind)
        if kind == "bool":
            for key in ("must", "should", "filter", "must_not"):
                stack.extend(body.get(key, ()))
        elif kind == "dis_max":
            stack.extend(body["queries"])
    return seen


SYNTAX_PIECES = ["a", "b", "x1", " ", " ", "AND", "OR", "NOT", "TO", "&&", "||", "!", "+", "-", "(", ")", "[",
                 "]", "{", "}", '"', "~", "~2", "^", "^2", "*", "?", "\\", "/", ":", "f:", "_exists_:", ">",
                 ">=", "<", "|", "\\u00", "\u3000", "\t"]
syntax_text = st.lists(st.sampled_from(SYNTAX_PIECES), max_size=25).map("".join)
any_text = st.one_of(st.text(max_size=60), syntax_text)


@settings(max_examples=120, deadline=None)
@given(text=any_text, fields=st.sampled_from([None, ["f"], ["f", "g^2"], ["*"]]),
       operator=st.sampled_from(["or", "and"]), flags=st.sampled_from(["ALL", "NONE", "PHRASE|PREFIX", "NOT|OR"]))
def test_simple_query_string_never_raises(text: str, fields: list[str] | None, operator: str, flags: str) -> None:
    body: dict[str, Any] = {"query": text, "default_operator": operator, "flags": flags}
    if fields is not None:
        body["fields"] = fields
    out = simple_query_string_to_dsl(body)
    assert isinstance(out, dict)
    assert _types(out) <= ALLOWED


@settings(max_examples=160, deadline=None)
@given(text=any_text, fields=st.sampled_from([None, ["f"], ["f", "g^2"], ["*"]]),
       operator=st.sampled_from(["or", "and"]), msm=st.sampled_from([None, 2, "50%"]))
def test_query_string_returns_dsl_or_request_error(text: str, fields: list[str] | None, operator: str,
                                                   msm: Any) -> None:
    body: dict[str, Any] = {"query": text, "default_operator": operator}
    if fields is not None:
        body["fields"] = fields
    if msm is not None:
        body["minimum_should_match"] = msm
    try:
        out = query_string_to_dsl(body)
    except QueryStringError as exc:
        assert exc.reason == f"Failed to parse query [{text}]"
        return
    assert isinstance(out, dict)
    assert _types(out) <= ALLOWED


@pytest.mark.parametrize("text", [
    "(" * 10_000, ")" * 10_000, "(" * 10_000 + "a" + ")" * 10_000, "a:(" * 5_000, "[" * 10_000,
    '"' * 10_001, "\\" * 10_001, "-" * 10_000 + "a", "a^" * 5_000, "/" * 10_001, "a~" * 5_000,
])
def test_pathological_inputs(text: str) -> None:
    try:
        out = query_string_to_dsl({"query": text})
        assert _types(out) <= ALLOWED
    except QueryStringError:
        pass
    try:
        assert _types(simple_query_string_to_dsl({"query": text})) <= ALLOWED
    except QueryStringError as exc:  # a resource limit, never a syntax error
        assert exc.detail == f"query produces more than [{MAX_CLAUSES}] clauses"


def test_simple_query_string_clause_cap() -> None:
    """The one way simple_query_string fails: an output over MAX_CLAUSES query objects (Elasticsearch
    fails too, on indices.query.bool.max_clause_count). Syntax alone never fails."""
    ok = " ".join(f"w{i}" for i in range(MAX_CLAUSES - 1))
    assert len(simple_query_string_to_dsl({"query": ok, "fields": ["f"]})["bool"]["should"]) == MAX_CLAUSES - 1
    with pytest.raises(QueryStringError) as info:
        simple_query_string_to_dsl({"query": ok + " x y", "fields": ["f"]})
    assert f"more than [{MAX_CLAUSES}]" in info.value.detail
