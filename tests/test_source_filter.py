"""`_source` filtering: includes, excludes, wildcards, arrays, and how requests spell them."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from expect import check
from strongroom.errors import RequestError
from strongroom.query.source import SourceFilter, source_filter_from_body, source_filter_from_params

DOC = {
    "name": "Ada",
    "name_alt": "A.",
    "age": 36,
    "address": {"city": "London", "zip": "W1", "geo": {"lat": 51.5, "lon": -0.1}},
    "tags": ["x", "y"],
    "jobs": [{"title": "analyst", "year": 1843}, {"title": "writer", "year": 1850}],
    "empty_obj": {},
    "empty_list": [],
    "nothing": None,
}


def apply(includes=(), excludes=(), doc=None):
    return SourceFilter(True, tuple(includes), tuple(excludes)).apply(
        copy.deepcopy(DOC if doc is None else doc)
    )


FILTERS = [
    pytest.param([], [], DOC, id="no-filter-is-identity"),
    pytest.param(["*"], [], DOC, id="include-star-is-everything"),
    pytest.param([], ["*"], {}, id="exclude-star-is-nothing"),
    pytest.param(["*"], ["*"], {}, id="exclude-wins-over-include-star"),
    pytest.param(["name"], [], {"name": "Ada"}, id="include-exact-not-prefix"),
    pytest.param(["name*"], [], {"name": "Ada", "name_alt": "A."}, id="include-prefix-wildcard"),
    pytest.param(["*alt"], [], {"name_alt": "A."}, id="include-suffix-wildcard"),
    pytest.param(["n*e"], [], {"name": "Ada"}, id="include-inner-wildcard"),
    pytest.param(["address"], [], {"address": DOC["address"]}, id="include-object-takes-subtree"),
    pytest.param(["address.city"], [], {"address": {"city": "London"}}, id="include-dotted-leaf"),
    pytest.param(["address.geo.lat"], [], {"address": {"geo": {"lat": 51.5}}}, id="include-deep-leaf"),
    pytest.param(["address.*"], [], {"address": DOC["address"]}, id="include-children-wildcard"),
    pytest.param(
        ["address.geo.*"], [], {"address": {"geo": DOC["address"]["geo"]}}, id="include-deep-wildcard"
    ),
    pytest.param(["address.nope"], [], {}, id="include-missing-child-drops-parent"),
    pytest.param(["name.first"], [], {}, id="include-below-a-leaf"),
    pytest.param(["tags"], [], {"tags": ["x", "y"]}, id="include-array-of-scalars"),
    pytest.param(
        ["jobs.title"],
        [],
        {"jobs": [{"title": "analyst"}, {"title": "writer"}]},
        id="include-field-inside-array-of-objects",
    ),
    pytest.param(
        ["jobs"],
        ["jobs.year"],
        {"jobs": [{"title": "analyst"}, {"title": "writer"}]},
        id="exclude-field-inside-included-array",
    ),
    pytest.param(
        ["address"],
        ["address.geo"],
        {"address": {"city": "London", "zip": "W1"}},
        id="exclude-inside-include",
    ),
    pytest.param(
        ["address.geo"],
        ["address.geo.lon"],
        {"address": {"geo": {"lat": 51.5}}},
        id="exclude-deep-inside-include",
    ),
    pytest.param(
        [],
        ["address", "jobs", "tags", "empty_obj", "empty_list", "nothing", "name*"],
        {"age": 36},
        id="exclude-several",
    ),
    pytest.param(
        [], ["address.geo"], {**DOC, "address": {"city": "London", "zip": "W1"}}, id="exclude-sub-object"
    ),
    pytest.param(["empty_obj"], [], {"empty_obj": {}}, id="included-empty-object-kept"),
    pytest.param(["empty_list"], [], {"empty_list": []}, id="included-empty-array-kept"),
    pytest.param(["empty_obj.x"], [], {}, id="empty-object-not-kept-for-deeper-include"),
    pytest.param(["empty_list.x"], [], {}, id="empty-array-not-kept-for-deeper-include"),
    pytest.param(["nothing"], [], {"nothing": None}, id="include-null"),
    pytest.param(["age", "name"], ["age"], {"name": "Ada"}, id="exclude-wins-over-exact-include"),
    pytest.param(["NAME"], [], {}, id="case-sensitive"),
]


@pytest.mark.parametrize(("includes", "excludes", "expected"), FILTERS)
def test_filter(includes, excludes, expected) -> None:
    assert apply(includes, excludes) == expected


@pytest.mark.parametrize(
    ("doc", "excludes", "expected"),
    [
        pytest.param({"a": {}, "b": 1}, ["a.x"], {"a": {}, "b": 1}, id="empty-object-under-exclusion-kept"),
        pytest.param({"a": [], "b": 1}, ["a.x"], {"a": [], "b": 1}, id="empty-array-under-exclusion-kept"),
        pytest.param({"a": [1, [2, 3]], "b": 1}, ["b"], {"a": [1, [2, 3]]}, id="nested-arrays-kept"),
        pytest.param({"a": {"b": 1, "c": 2}}, ["a.b"], {"a": {"c": 2}}, id="sibling-survives"),
        pytest.param(
            {"g": {"lat": 1, "lon": 2}, "h": {"lat": 3}}, ["*.lat"], {"g": {"lon": 2}}, id="wildcard-exclude"
        ),
    ],
)
def test_excludes(doc, excludes, expected) -> None:
    assert apply((), excludes, doc) == expected


def test_object_emptied_by_excludes() -> None:
    # Elasticsearch 8's streaming filter drops it; its older map filter kept `{}`. Both are Elasticsearch.
    assert apply((), ["a.b"], {"a": {"b": 1}, "c": 2}) in ({"c": 2}, {"a": {}, "c": 2})


@pytest.mark.parametrize(
    ("doc", "excludes", "expected"),
    [
        pytest.param({"a": [{"b": 1}, {"c": 2}]}, ["a.b"], [{"a": [{"c": 2}]}], id="one-element-emptied"),
        pytest.param(
            {"a": [{"b": 1}], "z": 0}, ["a.b"], [{"z": 0}, {"a": [], "z": 0}], id="all-elements-emptied"
        ),
        pytest.param({"a": [[{"b": 1}], [{"c": 2}]]}, ["a.b"], [{"a": [[{"c": 2}]]}], id="nested-array"),
    ],
)
def test_excludes_inside_arrays_of_objects(doc, excludes, expected) -> None:
    got = apply((), excludes, doc)
    check(got in expected, f"got {got!r}")


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param({"a": [[1, 2]], "b": 1}, id="scalars"),
        pytest.param({"a": [[]], "b": 1}, id="empty"),
        pytest.param({"a": [[{"c": 1}]], "b": 1}, id="objects"),
    ],
)
def test_nested_arrays_not_included_are_dropped(doc) -> None:
    got = apply(["b"], (), doc)
    check(got == {"b": 1}, f"got {got!r}")


def test_star_matches_field_names_with_newlines() -> None:
    doc = {"a\nb": 1, "c": 2}
    check(apply((), ["*"], doc) == {}, f"excludes=['*'] gave {apply((), ['*'], doc)!r}")
    check(apply(["a*"], (), doc) == {"a\nb": 1}, f"includes=['a*'] gave {apply(['a*'], (), doc)!r}")
    check(apply(["*"], (), doc) == doc, f"includes=['*'] gave {apply(['*'], (), doc)!r}")


def test_keys_with_dots_in_the_source_match_dotted_patterns() -> None:
    doc = {"a.b": 1, "a": {"b": 2, "c": 3}}
    assert apply(["a.b"], (), doc) == {"a.b": 1, "a": {"b": 2}}
    assert apply((), ["a.b"], doc) == {"a": {"c": 3}}


def test_pattern_characters_other_than_star_are_literal() -> None:
    doc = {"a[0]": 1, "a0": 2, "x+y": 3, "xxy": 4, "p?": 5, "pq": 6, "d.e": 7, "dxe": 8}
    assert apply(["a[0]", "x+y", "p?", "d.e"], (), doc) == {"a[0]": 1, "x+y": 3, "p?": 5, "d.e": 7}


def test_apply_does_not_mutate_the_source() -> None:
    doc = copy.deepcopy(DOC)
    SourceFilter(True, ("address.city", "jobs"), ("jobs.year",)).apply(doc)
    SourceFilter(True, (), ("address",)).apply(doc)
    assert doc == DOC


# -- from URL parameters --------------------------------------------------------------------------

PARAMS = [
    pytest.param((None, None, None), SourceFilter(), id="nothing"),
    pytest.param(("true", None, None), SourceFilter(), id="true"),
    pytest.param(("false", None, None), SourceFilter(fetch=False), id="false"),
    pytest.param(("a", None, None), SourceFilter(True, ("a",)), id="one-pattern"),
    pytest.param(("a,b.c", None, None), SourceFilter(True, ("a", "b.c")), id="comma-list"),
    pytest.param((None, "a,b", None), SourceFilter(True, ("a", "b")), id="includes"),
    pytest.param((None, None, "a,b"), SourceFilter(True, (), ("a", "b")), id="excludes"),
    pytest.param((None, "a", "a.b"), SourceFilter(True, ("a",), ("a.b",)), id="includes-and-excludes"),
    pytest.param(("true", None, "x"), SourceFilter(True, (), ("x",)), id="true-with-excludes"),
    pytest.param(("false", "a", None), SourceFilter(fetch=False), id="false-wins"),
]


@pytest.mark.parametrize(("args", "expected"), PARAMS)
def test_source_filter_from_params(args, expected) -> None:
    assert source_filter_from_params(*args) == expected


def test_source_includes_param_replaces_source_patterns() -> None:
    got = source_filter_from_params("a", "b", None)
    check(got == SourceFilter(True, ("b",)), f"got {got!r}")


@pytest.mark.parametrize("value", ["FALSE", "0", "no", "off", "1", "yes"])
def test_only_exact_true_false_are_booleans_in_source_param(value: str) -> None:
    # Elasticsearch 8 (Booleans.isTrue/isFalse): anything but the exact words is a list of field patterns.
    assert source_filter_from_params(value, None, None) == SourceFilter(True, (value,))


# -- from a request body --------------------------------------------------------------------------

BODIES = [
    pytest.param(None, SourceFilter(), id="absent"),
    pytest.param(True, SourceFilter(), id="true"),
    pytest.param(False, SourceFilter(fetch=False), id="false"),
    pytest.param("a", SourceFilter(True, ("a",)), id="string"),
    pytest.param("false", SourceFilter(True, ("false",)), id="string-false-is-a-pattern"),
    pytest.param(["a", "b.*"], SourceFilter(True, ("a", "b.*")), id="array"),
    pytest.param([], SourceFilter(), id="empty-array"),
    pytest.param({}, SourceFilter(), id="empty-object"),
    pytest.param({"includes": ["a"], "excludes": ["b"]}, SourceFilter(True, ("a",), ("b",)), id="object"),
    pytest.param({"includes": "a", "excludes": "b"}, SourceFilter(True, ("a",), ("b",)), id="object-strings"),
    pytest.param({"include": ["a"], "exclude": "b"}, SourceFilter(True, ("a",), ("b",)), id="singular-keys"),
    pytest.param({"excludes": ["b"]}, SourceFilter(True, (), ("b",)), id="excludes-only"),
]


@pytest.mark.parametrize(("body", "expected"), BODIES)
def test_source_filter_from_body(body, expected) -> None:
    assert source_filter_from_body(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(5, id="number"),
        pytest.param(1.5, id="float"),
        pytest.param([1], id="array-of-numbers"),
        pytest.param([None], id="array-of-null"),
        pytest.param(["a", ["b"]], id="nested-array"),
        pytest.param({"includes": [1]}, id="includes-of-numbers"),
        pytest.param({"includes": 5}, id="includes-number"),
        pytest.param({"includes": {}}, id="includes-object"),
        pytest.param({"excludes": True}, id="excludes-boolean"),
        pytest.param({"fields": ["a"]}, id="unknown-key"),
    ],
)
def test_source_filter_from_body_refuses(body) -> None:
    with pytest.raises(RequestError) as info:
        source_filter_from_body(body)
    assert info.value.status == 400


# -- properties -----------------------------------------------------------------------------------

NAMES = st.text(alphabet="abcxyz_", min_size=1, max_size=4)
ANY_KEYS = st.text(max_size=5)
LEAVES = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5)


def documents(keys, nested_arrays: bool = True):
    def extend(children):
        items = children if nested_arrays else children.filter(lambda v: not isinstance(v, list))
        return st.lists(items, max_size=3) | st.dictionaries(keys, children, max_size=3)

    return st.dictionaries(keys, st.recursive(LEAVES, extend, max_leaves=12), max_size=5)


@settings(max_examples=40, deadline=None)
@given(documents(ANY_KEYS))
def test_identity_and_star(doc) -> None:
    before = copy.deepcopy(doc)
    assert SourceFilter(True, (), ()).apply(doc) == before
    assert SourceFilter(True, ("*",), ()).apply(doc) == before
    assert SourceFilter(True, (), ("*",)).apply(doc) == {}
    assert SourceFilter(True, ("*",), ("*",)).apply(doc) == {}
    assert doc == before


@settings(max_examples=40, deadline=None)
@given(documents(NAMES), NAMES)
def test_single_top_level_include_and_exclude(doc, name) -> None:
    included = SourceFilter(True, (name,), ()).apply(doc)
    assert included == ({name: doc[name]} if name in doc else {})
    excluded = SourceFilter(True, (), (name,)).apply(doc)
    assert excluded == {k: v for k, v in doc.items() if k != name}
    assert (
        SourceFilter(True, (), ("qqqqq",)).apply(doc) == doc
    )  # an exclude that matches nothing changes nothing ("q" is outside NAMES' alphabet: no such key)


def _leaves(value, path=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v, path)
    else:
        yield path, value


@settings(max_examples=40, deadline=None)
@given(
    documents(NAMES),
    st.lists(NAMES.map(lambda s: s.replace("_", "*")), max_size=3),
    st.lists(NAMES.map(lambda s: s.replace("_", "*")), max_size=3),
)
def test_filtered_source_only_holds_leaves_of_the_original(doc, includes, excludes) -> None:
    out = SourceFilter(True, tuple(includes), tuple(excludes)).apply(doc)
    original = list(_leaves(doc))
    for leaf in _leaves(out):
        assert leaf in original
