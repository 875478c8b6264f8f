"""Mappings: definitions, merges, dynamic mapping, value coercion per type, objects, arrays, nulls, limits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from expect import attempt, check, check_raises
from strongroom.engine.mapping import Mapping, MappingLimits
from strongroom.errors import (
    IllegalArgumentError,
    MapperParsingError,
    StrictDynamicMappingError,
    StrongroomError,
)

TEXT_WITH_KEYWORD = {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}


def mapping(properties=None, **root) -> Mapping:
    body = dict(root)
    if properties is not None:
        body["properties"] = properties
    return Mapping.parse_definition(body)


def values_of(field: dict, value) -> list:
    """The indexed values of `value` sent to a field `f` with definition `field`."""
    parsed = mapping({"f": field}).parse_document({"f": value}, "1")
    assert parsed.additions is None
    return parsed.values


def dynamic(doc: dict, **root):
    parsed = Mapping.parse_definition(root).parse_document(doc, "1")
    return parsed.values, parsed.additions


# -- definitions ----------------------------------------------------------------------------------

ACCEPTED_DEFINITIONS = [
    pytest.param({}, {}, id="empty"),
    pytest.param(None, {}, id="null"),
    pytest.param({"properties": {"k": {"type": "keyword"}}}, None, id="keyword"),
    pytest.param({"properties": {"t": TEXT_WITH_KEYWORD}}, None, id="text-with-keyword"),
    pytest.param(
        {"properties": {"a.b.c": {"type": "long"}}},
        {"properties": {"a": {"properties": {"b": {"properties": {"c": {"type": "long"}}}}}}},
        id="dotted-name-expands",
    ),
    pytest.param(
        {"properties": {"a.b": {"type": "keyword"}, "a": {"properties": {"c": {"type": "long"}}}}},
        {"properties": {"a": {"properties": {"b": {"type": "keyword"}, "c": {"type": "long"}}}}},
        id="dotted-and-object-merge",
    ),
    pytest.param({"properties": {"o": {"properties": {"x": {"type": "boolean"}}}}}, None, id="object"),
    pytest.param(
        {"dynamic": "strict", "properties": {"o": {"dynamic": True, "properties": {"x": {"type": "long"}}}}},
        {
            "dynamic": "strict",
            "properties": {"o": {"dynamic": "true", "properties": {"x": {"type": "long"}}}},
        },
        id="dynamic-boolean-normalised",
    ),
    pytest.param({"dynamic": False}, {"dynamic": "false"}, id="dynamic-false"),
    pytest.param({"enabled": False}, None, id="root-disabled"),
    pytest.param({"properties": {"o": {"type": "object", "enabled": False}}}, None, id="object-disabled"),
    pytest.param({"date_detection": False, "dynamic_date_formats": ["yyyy/MM"]}, None, id="root-params"),
    pytest.param(
        {"_source": {"excludes": ["secret"]}, "_routing": {"required": True}, "_meta": {"v": 1}},
        None,
        id="metadata-params",
    ),
    pytest.param(
        {"properties": {"k": {"type": "keyword", "ignore_above": "12"}}},
        {"properties": {"k": {"type": "keyword", "ignore_above": 12}}},
        id="ignore-above-string",
    ),
    pytest.param(
        {"properties": {"d": {"type": "date", "format": "yyyy-MM-dd||epoch_millis"}}}, None, id="date-format"
    ),
    pytest.param(
        {"properties": {"d": {"type": "date", "null_value": "2020-01-01"}}}, None, id="date-null-value"
    ),
    pytest.param(
        {"properties": {"p": {"type": "scaled_float", "scaling_factor": 100}}}, None, id="scaled-float"
    ),
    pytest.param(
        {
            "properties": {
                f"n_{t}": {"type": t, "coerce": False, "ignore_malformed": True, "null_value": 1}
                for t in ("long", "integer", "short", "byte", "double", "float", "half_float")
            }
        },
        None,
        id="numeric-params",
    ),
    pytest.param(
        {
            "properties": {
                "k": {
                    "type": "keyword",
                    "normalizer": "lowercase",
                    "null_value": "NULL",
                    "index": False,
                    "doc_values": True,
                    "store": "false",
                }
            }
        },
        None,
        id="keyword-params",
    ),
    pytest.param(
        {
            "properties": {
                "t": {"type": "text", "analyzer": "standard", "norms": False, "index_options": "positions"}
            }
        },
        None,
        id="text-params",
    ),
    pytest.param({"properties": {"b": {"type": "boolean", "null_value": False}}}, None, id="boolean"),
]


@pytest.mark.parametrize(("body", "expected"), ACCEPTED_DEFINITIONS)
def test_definition_accepted_and_round_trips(body, expected) -> None:
    m = Mapping.parse_definition(body)
    es = m.to_es()
    assert es == (body if expected is None else expected)
    assert Mapping.parse_definition(es).to_es() == es


REFUSED_DEFINITIONS = [
    pytest.param([], "mappings must be an object", id="not-an-object"),
    pytest.param(
        {"mappings": {}},
        r"Root mapping definition has unsupported parameters:  \[mappings\]",
        id="unknown-root-param",
    ),
    pytest.param({"properties": []}, r"\[properties\] of \[_doc\] must be an object", id="properties-array"),
    pytest.param({"properties": {"a": "keyword"}}, r"Expected map .* \[a\]", id="definition-not-object"),
    pytest.param(
        {"properties": {"a": {"type": "strnig"}}},
        r"No handler for type \[strnig\] declared on field \[a\]",
        id="unknown-type",
    ),
    pytest.param({"properties": {"a": {"type": 5}}}, "must be a string", id="type-not-string"),
    pytest.param(
        {"properties": {"a": {"type": "keyword", "foo": 1}}},
        r"unknown parameter \[foo\] on mapper \[a\] of type \[keyword\]",
        id="unknown-param",
    ),
    pytest.param(
        {"properties": {"a": {"type": "text", "null_value": "x"}}},
        r"unknown parameter \[null_value\] on mapper \[a\] of type \[text\]",
        id="param-of-other-type",
    ),
    pytest.param(
        {"properties": {"a": {"type": "keyword", "properties": {}}}},
        r"unknown parameter \[properties\]",
        id="properties-on-leaf",
    ),
    pytest.param(
        {"properties": {"a": {"type": "object", "format": "x"}}},
        r"unknown parameter \[format\] on mapper \[a\] of type \[object\]",
        id="unknown-object-param",
    ),
    pytest.param(
        {"properties": {"a": {"type": "keyword", "index": "yes"}}},
        r"Cannot parse value \[yes\] as only \[true\] or \[false\]",
        id="bad-boolean-param",
    ),
    pytest.param({"properties": {"a": {"enabled": "nope"}}}, r"parameter \[enabled\]", id="bad-enabled"),
    pytest.param({"dynamic": "sometimes"}, r"Could not convert \[dynamic\]", id="bad-dynamic"),
    pytest.param(
        {"properties": {"a": {"type": "keyword", "ignore_above": -1}}},
        r"\[ignore_above\]",
        id="negative-ignore-above",
    ),
    pytest.param(
        {"properties": {"a": {"type": "keyword", "ignore_above": 1.5}}},
        r"\[ignore_above\]",
        id="fractional-ignore-above",
    ),
    pytest.param(
        {"properties": {"a": {"type": "keyword", "ignore_above": True}}},
        r"\[ignore_above\]",
        id="boolean-ignore-above",
    ),
    pytest.param(
        {"properties": {"a": {"type": "keyword", "normalizer": "my_normalizer"}}},
        r"normalizer \[my_normalizer\] not found",
        id="unknown-normalizer",
    ),
    pytest.param(
        {"properties": {"a": {"type": "text", "analyzer": "my_analyzer"}}},
        r"analyzer \[my_analyzer\] has not been configured",
        id="unknown-analyzer",
    ),
    pytest.param(
        {"properties": {"a": {"type": "scaled_float"}}},
        r"\[scaling_factor\] is required",
        id="scaled-float-without-factor",
    ),
    pytest.param(
        {"properties": {"a": {"type": "scaled_float", "scaling_factor": 0}}},
        r"\[scaling_factor\]",
        id="scaled-float-zero-factor",
    ),
    pytest.param(
        {"properties": {"a": {"type": "long", "null_value": "abc"}}},
        r"\[null_value\] on field \[a\]",
        id="bad-numeric-null-value",
    ),
    pytest.param(
        {"properties": {"a": {"type": "boolean", "null_value": "yes"}}},
        r"\[null_value\]",
        id="bad-boolean-null-value",
    ),
    pytest.param(
        {"properties": {"a": {"type": "date", "null_value": "not a date"}}},
        r"\[null_value\]",
        id="bad-date-null-value",
    ),
    pytest.param(
        {"properties": {"a": {"type": "date", "format": "week_date"}}},
        r"\[format\] on field \[a\]",
        id="unsupported-date-format",
    ),
    pytest.param(
        {"properties": {"a": {"type": "date", "format": "'open"}}},
        r"\[format\] on field \[a\]",
        id="broken-date-format",
    ),
    pytest.param(
        {"properties": {"a": {"type": "date", "format": 7}}},
        r"\[format\] of field \[a\] must be a string",
        id="date-format-not-string",
    ),
    pytest.param(
        {"dynamic_date_formats": "yyyy"},
        r"\[dynamic_date_formats\] must be a list",
        id="dynamic-date-formats-not-list",
    ),
    pytest.param({"dynamic_date_formats": ["week_date"]}, r"\[format\]", id="bad-dynamic-date-format"),
    pytest.param(
        {"dynamic_templates": [{"strings": {"match_mapping_type": "string"}}]},
        r"\[dynamic_templates\] are not supported",
        id="dynamic-templates",
    ),
    pytest.param(
        {"_source": {"enabled": False}}, r"disabling \[_source\] is not supported", id="source-disabled"
    ),
    pytest.param({"_source": True}, r"\[_source\] must be an object", id="source-not-object"),
    pytest.param(
        {"properties": {"a": {"type": "text", "copy_to": "b"}}}, r"\[copy_to\] is not supported", id="copy-to"
    ),
    pytest.param(
        {"properties": {"a": {"type": "text", "fielddata": True}}}, r"\[fielddata\]", id="fielddata"
    ),
    pytest.param(
        {
            "properties": {
                "a": {
                    "type": "keyword",
                    "fields": {"r": {"type": "keyword", "fields": {"x": {"type": "keyword"}}}},
                }
            }
        },
        "cannot have multi-fields itself",
        id="nested-multi-field",
    ),
    pytest.param(
        {"properties": {"a": {"type": "keyword", "fields": {"r.x": {"type": "keyword"}}}}},
        "cannot contain '.'",
        id="dotted-multi-field",
    ),
    pytest.param(
        {"properties": {"a": {"type": "keyword", "fields": {"r": {"type": "object"}}}}},
        r"Type \[object\] cannot be used in multi field \[a.r\]",
        id="object-multi-field",
    ),
    pytest.param(
        {"properties": {"a": {"type": "keyword", "fields": []}}},
        r"\[fields\] of field \[a\]",
        id="fields-not-object",
    ),
    pytest.param({"properties": {"": {"type": "keyword"}}}, "cannot be an empty string", id="empty-name"),
    pytest.param({"properties": {" ": {"type": "keyword"}}}, "empty string|whitespace", id="blank-name"),
    pytest.param(
        {"properties": {".a": {"type": "keyword"}}}, r"starting or ending with a \[.\]", id="leading-dot"
    ),
    pytest.param(
        {"properties": {"a.": {"type": "keyword"}}}, r"starting or ending with a \[.\]", id="trailing-dot"
    ),
    pytest.param({"properties": {"a..b": {"type": "keyword"}}}, "empty string", id="double-dot"),
]


@pytest.mark.parametrize(("body", "message"), REFUSED_DEFINITIONS)
def test_definition_refused(body, message: str) -> None:
    with pytest.raises(MapperParsingError, match=message):
        Mapping.parse_definition(body)


@pytest.mark.parametrize(
    "kind",
    [
        "nested",
        "flattened",
        "geo_shape",
        "dense_vector",
        "join",
        "completion",
        "unsigned_long",
        "date_nanos",
        "wildcard",
        "integer_range",
        "alias",
        "percolator",
    ],
)
def test_unsupported_types_are_refused_clearly(kind: str) -> None:
    with pytest.raises(MapperParsingError, match=r"not supported by Strongroom \(field \[x\]\)"):
        Mapping.parse_definition({"properties": {"x": {"type": kind}}})
    with pytest.raises(MapperParsingError, match="not supported by Strongroom"):
        Mapping.parse_definition({"properties": {"t": {"type": "text", "fields": {"x": {"type": kind}}}}})


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            {"properties": {"o": {"dynamic": "strict"}}},
            {"properties": {"o": {"type": "object", "dynamic": "strict"}}},
            id="no-properties",
        ),
        pytest.param({"properties": {"o": {}}}, {"properties": {"o": {"type": "object"}}}, id="empty"),
        pytest.param(
            {"properties": {"o": {"type": "object", "properties": {"x": {"type": "long"}}}}},
            {"properties": {"o": {"properties": {"x": {"type": "long"}}}}},
            id="explicit-with-properties",
        ),
    ],
)
def test_object_type_rendering(body, expected) -> None:
    got = attempt(lambda: Mapping.parse_definition(body).to_es())
    check(got == expected, f"to_es() gave {got!r}")


def test_dynamic_empty_object_rendering() -> None:
    got = attempt(dynamic, {"f": {}})
    check(got == ([], {"properties": {"f": {"type": "object"}}}), f"got {got!r}")


def test_typed_mapping_is_refused() -> None:
    # Elasticsearch 8 (RestCreateIndexAction.prepareMappings): a mapping wrapped in its type name is refused.
    with pytest.raises(IllegalArgumentError, match=r"cannot be nested under a type \[_doc\]"):
        Mapping.parse_definition({"_doc": {"properties": {"k": {"type": "keyword"}}}})


def test_conflicting_definitions_in_one_body() -> None:
    with pytest.raises(IllegalArgumentError, match="can't merge a non object mapping"):
        Mapping.parse_definition({"properties": {"a.b": {"type": "keyword"}, "a": {"type": "keyword"}}})


@pytest.mark.parametrize("value", [["strict"], {"x": 1}], ids=["array", "object"])
def test_non_scalar_dynamic_is_a_mapping_error(value) -> None:
    check_raises(MapperParsingError, Mapping.parse_definition, {"dynamic": value})
    check_raises(MapperParsingError, Mapping.parse_definition, {"properties": {"o": {"dynamic": value}}})


def test_dynamic_runtime_is_either_supported_or_refused() -> None:
    m = attempt(Mapping.parse_definition, {"dynamic": "runtime"})
    if isinstance(m, MapperParsingError):
        return
    parsed = m.parse_document({"n": 5}, "1")
    check(parsed.additions is not None, "the new field was dropped without a mapping")


@pytest.mark.parametrize(("limit", "accepted"), [(3, True), (2, False)])
def test_definition_total_fields_limit(limit: int, accepted: bool) -> None:
    body = {
        "properties": {"t": {"type": "text", "fields": {"k": {"type": "keyword"}}}, "o": {"properties": {}}}
    }
    if accepted:  # t, t.k and o: multi-fields and objects count
        Mapping.parse_definition(body, MappingLimits(total_fields=limit))
    else:
        with pytest.raises(
            IllegalArgumentError, match=rf"Limit of total fields \[{limit}\] has been exceeded"
        ):
            Mapping.parse_definition(body, MappingLimits(total_fields=limit))


def _nested_definition(objects: int) -> dict:
    body: dict = {"properties": {"leaf": {"type": "keyword"}}}
    for i in reversed(range(objects)):
        body = {"properties": {f"o{i}": body}}
    return body


def test_definition_depth_limit() -> None:
    # Elasticsearch: an object at path o0.o1 has depth 3 (dots + 2); fields at the root count as depth 1.
    Mapping.parse_definition(_nested_definition(2), MappingLimits(depth=3))
    # Elasticsearch answers illegal_argument_exception here; Strongroom mapper_parsing_exception (both 400).
    with pytest.raises((MapperParsingError, IllegalArgumentError), match=r"Limit of mapping depth \[3\]"):
        Mapping.parse_definition(_nested_definition(4), MappingLimits(depth=3))


def test_definition_depth_limit_matches_elasticsearch() -> None:
    check_raises(
        (MapperParsingError, IllegalArgumentError),
        Mapping.parse_definition,
        _nested_definition(3),
        MappingLimits(depth=3),
    )


# -- merges ---------------------------------------------------------------------------------------

MERGES = [
    pytest.param(
        {"properties": {"a": {"type": "keyword"}}},
        {"properties": {"b": {"type": "long"}}},
        {"properties": {"a": {"type": "keyword"}, "b": {"type": "long"}}},
        id="add-field",
    ),
    pytest.param(
        {"properties": {"a": {"type": "keyword"}}},
        {"properties": {"a": {"type": "keyword"}}},
        {"properties": {"a": {"type": "keyword"}}},
        id="same-definition",
    ),
    pytest.param(
        {"properties": {"a": {"type": "keyword", "ignore_above": 10}}},
        {"properties": {"a": {"type": "keyword", "ignore_above": 20}}},
        {"properties": {"a": {"type": "keyword", "ignore_above": 20}}},
        id="update-ignore-above",
    ),
    pytest.param(
        {"properties": {"a": {"type": "text"}}},
        {"properties": {"a": {"type": "text", "fields": {"raw": {"type": "keyword"}}}}},
        {"properties": {"a": {"type": "text", "fields": {"raw": {"type": "keyword"}}}}},
        id="add-multi-field",
    ),
    pytest.param(
        {"properties": {"o": {"properties": {"x": {"type": "long"}}}}},
        {"properties": {"o": {"properties": {"y": {"type": "long"}}}}},
        {"properties": {"o": {"properties": {"x": {"type": "long"}, "y": {"type": "long"}}}}},
        id="add-inside-object",
    ),
    pytest.param(
        {"properties": {"o": {"properties": {"x": {"type": "long"}}}}},
        {"properties": {"o.y": {"type": "long"}}},
        {"properties": {"o": {"properties": {"x": {"type": "long"}, "y": {"type": "long"}}}}},
        id="add-with-dotted-name",
    ),
    pytest.param(
        {"properties": {"o": {"properties": {"x": {"type": "long"}}}}},
        {"properties": {"o": {"dynamic": "strict"}}},
        {"properties": {"o": {"dynamic": "strict", "properties": {"x": {"type": "long"}}}}},
        id="update-object-dynamic",
    ),
    pytest.param({"dynamic": "strict"}, {"dynamic": True}, {"dynamic": "true"}, id="update-root-dynamic"),
    pytest.param({}, {"date_detection": False}, {"date_detection": False}, id="update-root-param"),
]


@pytest.mark.parametrize(("base", "update", "expected"), MERGES)
def test_merge(base, update, expected) -> None:
    before = Mapping.parse_definition(base)
    merged = before.merge(update)
    assert merged.to_es() == expected
    assert before.to_es() == Mapping.parse_definition(base).to_es()  # mappings are immutable


MERGE_CONFLICTS = [
    pytest.param(
        {"properties": {"a": {"type": "keyword"}}},
        {"properties": {"a": {"type": "long"}}},
        r"mapper \[a\] cannot be changed from type \[keyword\] to \[long\]",
        id="retype",
    ),
    pytest.param(
        {"properties": {"a": {"type": "keyword"}}},
        {"properties": {"a": {"properties": {}}}},
        "can't merge a non object mapping",
        id="field-to-object",
    ),
    pytest.param(
        {"properties": {"a": {"properties": {}}}},
        {"properties": {"a": {"type": "long"}}},
        "can't merge a non object mapping",
        id="object-to-field",
    ),
    pytest.param(
        {"properties": {"a": {"type": "keyword"}}},
        {"properties": {"a": {"type": "keyword", "index": False}}},
        r"Cannot update parameter \[index\]",
        id="non-updatable-param",
    ),
    pytest.param(
        {"properties": {"a": {"type": "text", "fields": {"raw": {"type": "keyword"}}}}},
        {"properties": {"a": {"type": "text", "fields": {"raw": {"type": "long"}}}}},
        r"mapper \[a.raw\] cannot be changed",
        id="retype-multi-field",
    ),
    pytest.param(
        {"properties": {"o": {"properties": {}}}},
        {"properties": {"o": {"enabled": False}}},
        r"the \[enabled\] parameter can't be updated",
        id="object-enabled",
    ),
]


@pytest.mark.parametrize(("base", "update", "message"), MERGE_CONFLICTS)
def test_merge_conflict(base, update, message: str) -> None:
    with pytest.raises(IllegalArgumentError, match=message):
        Mapping.parse_definition(base).merge(update)


def test_merge_respects_total_fields_limit() -> None:
    m = Mapping.parse_definition({"properties": {"a": {"type": "long"}}}, MappingLimits(total_fields=2))
    m = m.merge({"properties": {"b": {"type": "long"}}})
    with pytest.raises(IllegalArgumentError, match="Limit of total fields"):
        m.merge({"properties": {"c": {"type": "long"}}})


# -- dynamic mapping ------------------------------------------------------------------------------

INFERRED = [
    pytest.param(True, {"type": "boolean"}, [("f", True)], id="boolean"),
    pytest.param(42, {"type": "long"}, [("f", 42)], id="integer-is-long"),
    pytest.param(-(2**63), {"type": "long"}, [("f", -(2**63))], id="long-min"),
    pytest.param(1.5, {"type": "float"}, [("f", 1.5)], id="float"),
    pytest.param("hi", TEXT_WITH_KEYWORD, [("f", "hi"), ("f.keyword", "hi")], id="string"),
    pytest.param("2015-09-02", {"type": "date"}, [("f", 1441152000000)], id="iso-date"),
    pytest.param("2015-09-02T10:20:30.5Z", {"type": "date"}, [("f", 1441189230500)], id="iso-datetime"),
    pytest.param("2015", TEXT_WITH_KEYWORD, [("f", "2015"), ("f.keyword", "2015")], id="year-only-is-text"),
    pytest.param(
        "1441152000000",
        TEXT_WITH_KEYWORD,
        [("f", "1441152000000"), ("f.keyword", "1441152000000")],
        id="numeric-string-is-text",
    ),
    pytest.param(
        "2015-02-30",
        TEXT_WITH_KEYWORD,
        [("f", "2015-02-30"), ("f.keyword", "2015-02-30")],
        id="impossible-date-is-text",
    ),
    pytest.param([3, 4], {"type": "long"}, [("f", 3), ("f", 4)], id="array"),
    pytest.param([None, "x"], TEXT_WITH_KEYWORD, [("f", "x"), ("f.keyword", "x")], id="array-first-non-null"),
    pytest.param([[1, [2]], 3], {"type": "long"}, [("f", 1), ("f", 2), ("f", 3)], id="nested-arrays-flatten"),
    pytest.param({"g": 1}, {"properties": {"g": {"type": "long"}}}, [("f.g", 1)], id="object"),
]


@pytest.mark.parametrize(("value", "definition", "values"), INFERRED)
def test_dynamic_mapping_infers(value, definition, values) -> None:
    got_values, additions = dynamic({"f": value})
    assert additions == {"properties": {"f": definition}}
    assert got_values == values


@pytest.mark.parametrize(
    "value", [None, [], [None, None], [[]]], ids=["null", "empty-array", "nulls", "empty-nested"]
)
def test_dynamic_mapping_adds_nothing_for_no_value(value) -> None:
    assert dynamic({"f": value}) == ([], None)


def test_date_detection_can_be_disabled() -> None:
    values, additions = dynamic({"f": "2015-09-02"}, date_detection=False)
    assert additions == {"properties": {"f": TEXT_WITH_KEYWORD}}


@pytest.mark.parametrize(
    ("value", "root", "millis"),
    [
        pytest.param("2015/09/02", {}, 1441152000000, id="default-slash-format"),
        pytest.param("2015/09/02 10:20:30", {}, 1441189230000, id="default-slash-datetime"),
        pytest.param(
            "02-09-2015", {"dynamic_date_formats": ["dd-MM-yyyy"]}, 1441152000000, id="custom-format"
        ),
    ],
)
def test_dynamic_dates_in_other_formats(value, root, millis) -> None:
    got = attempt(dynamic, {"d": value}, **root)
    check(not isinstance(got, Exception), f"refused: {got!r}")
    values, additions = got
    check(additions["properties"]["d"]["type"] == "date", f"mapped as {additions!r}")
    check(values == [("d", millis)], f"indexed {values!r}")


def test_numeric_detection() -> None:
    got = attempt(dynamic, {"i": "42", "x": "1.5"}, numeric_detection=True)
    check(got[1] == {"properties": {"i": {"type": "long"}, "x": {"type": "float"}}}, f"got {got!r}")


def test_additions_merge_and_reparse_cleanly() -> None:
    m = Mapping.parse_definition({"properties": {"known": {"type": "keyword"}}})
    doc = {"known": "k", "n": 1, "o": {"s": "x", "deep.er": [True]}}
    first = m.parse_document(doc, "1")
    assert first.additions == {
        "properties": {
            "n": {"type": "long"},
            "o": {
                "properties": {"s": TEXT_WITH_KEYWORD, "deep": {"properties": {"er": {"type": "boolean"}}}}
            },
        }
    }
    merged = m.merge(first.additions)
    second = merged.parse_document(doc, "1")
    assert second.additions is None
    assert second.values == first.values


# -- dynamic: strict / false / true ---------------------------------------------------------------

STRICT = {
    "dynamic": "strict",
    "properties": {
        "k": {"type": "keyword"},
        "open": {"dynamic": True},
        "closed": {"properties": {"x": {"type": "long"}}},
    },
}


@pytest.mark.parametrize(
    ("doc", "values", "additions"),
    [
        pytest.param({"k": "v"}, [("k", "v")], None, id="mapped"),
        pytest.param({"k": None}, [], None, id="mapped-null"),
        pytest.param(
            {"open": {"z": 1}},
            [("open.z", 1)],
            {"properties": {"open": {"properties": {"z": {"type": "long"}}}}},
            id="dynamic-true-child",
        ),
        pytest.param(
            {"open.z": 1},
            [("open.z", 1)],
            {"properties": {"open": {"properties": {"z": {"type": "long"}}}}},
            id="dynamic-true-child-dotted",
        ),
        pytest.param(
            {"open": {"p": {"q": 1}}},
            [("open.p.q", 1)],
            {"properties": {"open": {"properties": {"p": {"properties": {"q": {"type": "long"}}}}}}},
            id="added-object-inherits-true",
        ),
        pytest.param({"closed": {"x": 2}}, [("closed.x", 2)], None, id="inherited-strict-mapped"),
    ],
)
def test_strict_accepts(doc, values, additions) -> None:
    parsed = Mapping.parse_definition(STRICT).parse_document(doc, "1")
    assert (parsed.values, parsed.additions) == (values, additions)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        pytest.param(
            {"z": 1}, r"\[_doc\] .*strict, dynamic introduction of \[z\] within \[_doc\]", id="root"
        ),
        pytest.param({"z": {"a": 1}}, r"introduction of \[z\] within \[_doc\]", id="root-object"),
        pytest.param({"z.a": 1}, r"introduction of \[z\] within \[_doc\]", id="root-dotted"),
        pytest.param({"closed": {"y": 1}}, r"introduction of \[y\] within \[closed\]", id="inherited"),
        pytest.param({"closed.y": 1}, r"introduction of \[y\] within \[closed\]", id="inherited-dotted"),
    ],
)
def test_strict_refuses(doc, message: str) -> None:
    with pytest.raises(StrictDynamicMappingError, match=message) as info:
        Mapping.parse_definition(STRICT).parse_document(doc, "1")
    assert info.value.es_type == "strict_dynamic_mapping_exception"


@pytest.mark.parametrize("value", [None, [], [None]], ids=["null", "empty-array", "array-of-null"])
def test_strict_refuses_unmapped_null_and_empty_array(value) -> None:
    check_raises(
        StrictDynamicMappingError, Mapping.parse_definition(STRICT).parse_document, {"z": value}, "1"
    )


def test_dynamic_false_ignores_unmapped_fields() -> None:
    m = Mapping.parse_definition(
        {"dynamic": False, "properties": {"k": {"type": "keyword"}, "o": {"dynamic": True, "properties": {}}}}
    )
    parsed = m.parse_document({"k": "v", "z": 1, "y": {"a": "b"}, "y2.a": 1, "o": {"n": 1}}, "1")
    assert parsed.values == [("k", "v"), ("o.n", 1)]
    assert parsed.additions == {"properties": {"o": {"properties": {"n": {"type": "long"}}}}}


def test_dynamic_strict_inside_dynamic_true() -> None:
    m = Mapping.parse_definition({"properties": {"s": {"dynamic": "strict", "properties": {}}}})
    assert m.parse_document({"x": 1}, "1").additions == {"properties": {"x": {"type": "long"}}}
    with pytest.raises(StrictDynamicMappingError):
        m.parse_document({"s": {"x": 1}}, "1")


# -- disabled objects -----------------------------------------------------------------------------

DISABLED = {"properties": {"session": {"type": "object", "enabled": False}, "k": {"type": "keyword"}}}


def test_disabled_object_content_is_skipped() -> None:
    parsed = Mapping.parse_definition(DISABLED).parse_document(
        {"k": "v", "session": {"anything": [1, "x", {"deep": None}], "n": {"m": 1}}}, "1"
    )
    assert parsed.values == [("k", "v")]
    assert parsed.additions is None


def test_root_disabled_indexes_nothing() -> None:
    parsed = Mapping.parse_definition({"enabled": False}).parse_document({"a": 1, "b": {"c": "x"}}, "1")
    assert (parsed.values, parsed.additions) == ([], None)


def test_disabled_object_skips_dotted_keys() -> None:
    parsed = Mapping.parse_definition(DISABLED).parse_document({"session.x": 1}, "1")
    check((parsed.values, parsed.additions) == ([], None), f"got {parsed!r}")


@pytest.mark.parametrize("value", ["none", 5, ["a", 1]], ids=["string", "number", "array"])
def test_disabled_object_ignores_non_object_values(value) -> None:
    got = attempt(Mapping.parse_definition(DISABLED).parse_document, {"session": value}, "1")
    check(not isinstance(got, Exception), f"refused: {got!r}")
    check((got.values, got.additions) == ([], None), f"got {got!r}")


# -- value coercion -------------------------------------------------------------------------------

LONG = {"type": "long"}
CONVERTED = [
    # long and friends: strings and fractions are coerced (truncated towards zero) unless coerce is false
    pytest.param(LONG, 5, [5], id="long-int"),
    pytest.param(LONG, "5", [5], id="long-string"),
    pytest.param(LONG, "-5", [-5], id="long-negative-string"),
    pytest.param(LONG, "5.9", [5], id="long-fraction-string-truncates"),
    pytest.param(LONG, "-5.9", [-5], id="long-negative-fraction-string-truncates"),
    pytest.param(LONG, 5.9, [5], id="long-float-truncates"),
    pytest.param(LONG, "1e3", [1000], id="long-exponent-string"),
    pytest.param(LONG, 2**63 - 1, [2**63 - 1], id="long-max"),
    pytest.param(LONG, -(2**63), [-(2**63)], id="long-min"),
    pytest.param(LONG, "9223372036854775807", [2**63 - 1], id="long-max-string"),
    pytest.param(LONG, [1, "2", 3.5], [1, 2, 3], id="long-array-mixed"),
    pytest.param({"type": "long", "coerce": False}, 5.0, [5], id="long-no-coerce-integral-float"),
    pytest.param({"type": "integer"}, 2**31 - 1, [2**31 - 1], id="integer-max"),
    pytest.param({"type": "integer"}, -(2**31), [-(2**31)], id="integer-min"),
    pytest.param({"type": "short"}, "32767", [32767], id="short-max-string"),
    pytest.param({"type": "byte"}, -128, [-128], id="byte-min"),
    pytest.param({"type": "byte"}, 127.9, [127], id="byte-truncates-into-range"),
    # floating point
    pytest.param({"type": "double"}, 1, [1.0], id="double-int"),
    pytest.param({"type": "double"}, "1.5", [1.5], id="double-string"),
    pytest.param({"type": "double"}, 1e308, [1e308], id="double-max"),
    pytest.param({"type": "float"}, 0.1, [0.10000000149011612], id="float-rounds-to-float32"),
    pytest.param({"type": "float"}, 16777217, [16777216.0], id="float-int-precision"),
    pytest.param({"type": "half_float"}, 0.1, [0.0999755859375], id="half-float-rounds"),
    pytest.param({"type": "half_float"}, 65504, [65504.0], id="half-float-max"),
    pytest.param({"type": "scaled_float", "scaling_factor": 100}, 1.234, [1.23], id="scaled-float"),
    pytest.param({"type": "scaled_float", "scaling_factor": 100}, "1.236", [1.24], id="scaled-float-string"),
    # boolean: JSON booleans, "true", "false" and "" (false)
    pytest.param({"type": "boolean"}, True, [True], id="boolean-true"),
    pytest.param({"type": "boolean"}, "false", [False], id="boolean-string-false"),
    pytest.param({"type": "boolean"}, "true", [True], id="boolean-string-true"),
    # text and keyword take scalars as strings
    pytest.param({"type": "text"}, "Hello", ["Hello"], id="text"),
    pytest.param({"type": "text"}, 5, ["5"], id="text-number"),
    pytest.param({"type": "text"}, False, ["false"], id="text-boolean"),
    pytest.param({"type": "keyword"}, 5.0, ["5.0"], id="keyword-float"),
    pytest.param({"type": "keyword"}, True, ["true"], id="keyword-boolean"),
    pytest.param({"type": "keyword"}, ["a", "b"], ["a", "b"], id="keyword-array"),
    pytest.param({"type": "keyword", "ignore_above": 3}, "abc", ["abc"], id="ignore-above-at-limit"),
    pytest.param({"type": "keyword", "ignore_above": 3}, "abcd", [], id="ignore-above-skips"),
    pytest.param(
        {"type": "keyword", "ignore_above": 3}, ["ab", "abcd", "cd"], ["ab", "cd"], id="ignore-above-array"
    ),
    pytest.param({"type": "keyword", "ignore_above": 3}, "ééé", ["ééé"], id="ignore-above-counts-characters"),
    pytest.param({"type": "keyword", "ignore_above": 3}, 1234, [], id="ignore-above-number"),
    pytest.param(
        {"type": "keyword", "normalizer": "lowercase"}, "MiXeD", ["mixed"], id="lowercase-normalizer"
    ),
    pytest.param(
        {"type": "keyword", "ignore_above": 3, "normalizer": "lowercase"},
        "ABCD",
        [],
        id="ignore-above-before-normalizer",
    ),
    pytest.param({"type": "keyword", "index": False}, "x", [], id="not-indexed"),
    # dates
    pytest.param({"type": "date"}, "2015-01-01", [1420070400000], id="date"),
    pytest.param({"type": "date"}, "2015-01-01T12:10:30+01:00", [1420110630000], id="date-offset"),
    pytest.param(
        {"type": "date"}, "2015-01-01T00:00:00.123456Z", [1420070400123], id="date-truncates-micros"
    ),
    pytest.param({"type": "date"}, 1420070400001, [1420070400001], id="date-epoch-millis-number"),
    pytest.param({"type": "date"}, "1420070400001", [1420070400001], id="date-epoch-millis-string"),
    pytest.param(
        {"type": "date", "format": "yyyy/MM/dd"}, "2015/01/02", [1420156800000], id="date-custom-format"
    ),
    pytest.param(
        {"type": "date", "format": "epoch_second"}, 1420070400, [1420070400000], id="date-epoch-second"
    ),
    # null_value and ignore_malformed
    pytest.param({"type": "keyword", "null_value": "NULL"}, None, ["NULL"], id="keyword-null-value"),
    pytest.param(
        {"type": "keyword", "null_value": "NULL"}, [None, "a"], ["NULL", "a"], id="null-value-in-array"
    ),
    pytest.param({"type": "long", "null_value": 0}, None, [0], id="long-null-value"),
    pytest.param({"type": "boolean", "null_value": False}, None, [False], id="boolean-null-value"),
    pytest.param({"type": "date", "null_value": "2020-01-01"}, None, [1577836800000], id="date-null-value"),
    pytest.param({"type": "long"}, None, [], id="null-without-null-value"),
    pytest.param({"type": "long", "ignore_malformed": True}, "abc", [], id="ignore-malformed"),
    pytest.param(
        {"type": "long", "ignore_malformed": True}, [1, "x", 2], [1, 2], id="ignore-malformed-array"
    ),
    pytest.param({"type": "date", "ignore_malformed": True}, "nope", [], id="ignore-malformed-date"),
]


@pytest.mark.parametrize(("field", "value", "expected"), CONVERTED)
def test_values_are_converted(field, value, expected) -> None:
    assert values_of(field, value) == [("f", v) for v in expected]
    for got, want in zip(values_of(field, value), expected, strict=True):
        assert type(got[1]) is type(want)


MALFORMED = [
    pytest.param(LONG, "abc", None, id="long-word"),
    pytest.param(LONG, True, "a boolean is not a number", id="long-boolean"),
    pytest.param(LONG, 2**63, "out of range for a long", id="long-overflow"),
    pytest.param(LONG, -(2**63) - 1, "out of range for a long", id="long-underflow"),
    pytest.param(LONG, "9223372036854775808", "out of range for a long", id="long-overflow-string"),
    pytest.param(LONG, 1e19, "out of range for a long", id="long-overflow-float"),
    pytest.param(LONG, "NaN", "not finite", id="long-nan-string"),
    pytest.param(LONG, "Infinity", "not finite", id="long-infinity-string"),
    pytest.param(LONG, "1e400", None, id="long-huge-exponent-string"),
    pytest.param(LONG, "9" * 5000, None, id="long-5000-digits"),
    pytest.param(LONG, {"a": 1}, "found an object", id="long-object"),
    pytest.param(LONG, [1, {"a": 1}], "found an object", id="long-object-in-array"),
    pytest.param({"type": "long", "coerce": False}, "5", None, id="no-coerce-string"),
    pytest.param({"type": "long", "coerce": False}, 5.5, "decimal part", id="no-coerce-fraction"),
    pytest.param({"type": "integer"}, 2**31, "out of range for an integer", id="integer-overflow"),
    pytest.param(
        {"type": "integer"}, "-2147483649", "out of range for an integer", id="integer-underflow-string"
    ),
    pytest.param({"type": "short"}, 32768, "out of range for a short", id="short-overflow"),
    pytest.param({"type": "byte"}, -129, "out of range for a byte", id="byte-underflow"),
    pytest.param({"type": "double"}, "x", None, id="double-word"),
    pytest.param({"type": "double"}, "1e309", "not finite", id="double-overflow-string"),
    pytest.param({"type": "double"}, False, "a boolean is not a number", id="double-boolean"),
    pytest.param({"type": "double", "coerce": False}, "1.5", None, id="double-no-coerce-string"),
    pytest.param({"type": "float"}, 1e39, None, id="float-overflow"),
    pytest.param({"type": "half_float"}, 65520, None, id="half-float-overflow"),
    pytest.param({"type": "scaled_float", "scaling_factor": 100}, 1e308, None, id="scaled-float-overflow"),
    pytest.param({"type": "boolean"}, "TRUE", "only [true] or [false]", id="boolean-uppercase"),
    pytest.param({"type": "boolean"}, 1, "only [true] or [false]", id="boolean-number"),
    pytest.param({"type": "boolean"}, "on", "only [true] or [false]", id="boolean-on"),
    pytest.param({"type": "date"}, "2015-02-30", None, id="date-impossible"),
    pytest.param({"type": "date"}, "yesterday", None, id="date-word"),
    pytest.param({"type": "date"}, True, "a boolean is not a date", id="date-boolean"),
    pytest.param({"type": "date"}, 1e300, None, id="date-huge-number"),
    pytest.param({"type": "date", "format": "yyyy/MM/dd"}, "2015-01-01", None, id="date-wrong-format"),
    pytest.param({"type": "keyword"}, {"a": 1}, "found an object", id="keyword-object"),
    pytest.param({"type": "keyword"}, "x" * 32767, "immense term", id="keyword-immense"),
    pytest.param({"type": "text"}, {"a": 1}, "found an object", id="text-object"),
    pytest.param(
        {"type": "long", "ignore_malformed": True},
        {"a": 1},
        "found an object",
        id="ignore-malformed-does-not-cover-objects",
    ),
]


@pytest.mark.parametrize(("field", "value", "detail"), MALFORMED)
def test_malformed_values_are_refused(field, value, detail) -> None:
    with pytest.raises(MapperParsingError) as info:
        values_of(field, value)
    reason = info.value.reason
    assert reason.startswith(f"failed to parse field [f] of type [{field['type']}] in document with id '1'")
    if detail:
        assert detail in reason
    if isinstance(value, str) and len(value) > 3:
        assert value not in reason  # the value itself is never echoed


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        pytest.param({"type": "long"}, [], id="long"),
        pytest.param({"type": "double"}, [], id="double"),
        pytest.param({"type": "scaled_float", "scaling_factor": 10}, [], id="scaled-float"),
        pytest.param({"type": "integer", "null_value": 7}, [7], id="integer-null-value"),
    ],
)
def test_empty_string_is_null_for_numbers(field, expected) -> None:
    got = attempt(values_of, field, "")
    check(got == [("f", v) for v in expected], f"got {got!r}")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param(LONG, "1_000", id="long-underscore"),
        pytest.param({"type": "integer"}, "1_0", id="integer-underscore"),
        pytest.param({"type": "double"}, "1_000.5", id="double-underscore"),
        pytest.param(LONG, " 5", id="long-leading-space"),
    ],
)
def test_numeric_strings_follow_java_syntax(field, value) -> None:
    check_raises(MapperParsingError, values_of, field, value)


@pytest.mark.parametrize(
    ("value", "factor", "expected"),
    [
        pytest.param(0.125, 100, 0.13, id="0.125x100"),
        pytest.param(2.5, 1, 3.0, id="2.5x1"),
        pytest.param(0.5, 1, 1.0, id="0.5x1"),
    ],
)
def test_scaled_float_rounds_half_up(value, factor, expected) -> None:
    got = attempt(values_of, {"type": "scaled_float", "scaling_factor": factor}, value)
    check(got == [("f", expected)], f"got {got!r}")


def test_ignore_above_counts_utf16_units() -> None:
    got = attempt(values_of, {"type": "keyword", "ignore_above": 3}, "😀😀")
    check(got == [], f"got {got!r}")


# -- multi-fields ---------------------------------------------------------------------------------


def test_multi_fields_index_the_same_value() -> None:
    field = {
        "type": "text",
        "fields": {
            "raw": {"type": "keyword", "ignore_above": 5},
            "lower": {"type": "keyword", "normalizer": "lowercase"},
        },
    }
    m = mapping({"t": field})
    assert m.parse_document({"t": "Hello"}, "1").values == [
        ("t", "Hello"),
        ("t.lower", "hello"),
        ("t.raw", "Hello"),
    ]
    # ignore_above on one multi-field does not affect the others
    assert m.parse_document({"t": "Hello World"}, "1").values == [
        ("t", "Hello World"),
        ("t.lower", "hello world"),
    ]


def test_multi_field_still_indexed_when_parent_skips_value() -> None:
    m = mapping(
        {
            "k": {"type": "keyword", "ignore_above": 2, "fields": {"t": {"type": "text"}}},
            "n": {"type": "keyword", "index": False, "fields": {"raw": {"type": "keyword"}}},
        }
    )
    assert m.parse_document({"k": "long value", "n": "x"}, "1").values == [
        ("k.t", "long value"),
        ("n.raw", "x"),
    ]


def test_multi_field_conversion_failure_refuses_document() -> None:
    m = mapping({"k": {"type": "keyword", "fields": {"num": {"type": "long"}}}})
    assert m.parse_document({"k": "12"}, "1").values == [("k", "12"), ("k.num", 12)]
    with pytest.raises(MapperParsingError, match=r"failed to parse field \[k.num\] of type \[long\]"):
        m.parse_document({"k": "twelve"}, "1")


# -- objects, dotted keys, arrays -----------------------------------------------------------------

OBJECTS = {
    "properties": {
        "user": {
            "properties": {
                "name": {"type": "keyword"},
                "address": {"properties": {"city": {"type": "keyword"}}},
            }
        },
        "tag": {"type": "keyword"},
    }
}


@pytest.mark.parametrize(
    ("doc", "values"),
    [
        pytest.param({"user": {"name": "a"}}, [("user.name", "a")], id="object"),
        pytest.param({"user.name": "a"}, [("user.name", "a")], id="dotted-key"),
        pytest.param({"user.address.city": "c"}, [("user.address.city", "c")], id="deep-dotted-key"),
        pytest.param(
            {"user": {"address.city": "c"}}, [("user.address.city", "c")], id="dotted-key-in-object"
        ),
        pytest.param(
            {"user": {"name": "a"}, "user.name": "b"},
            [("user.name", "a"), ("user.name", "b")],
            id="object-and-dotted-key-both-count",
        ),
        pytest.param(
            {"user": [{"name": "a"}, {"name": "b"}]},
            [("user.name", "a"), ("user.name", "b")],
            id="array-of-objects-flattened",
        ),
        pytest.param(
            {"user": {"name": ["a", ["b"]]}}, [("user.name", "a"), ("user.name", "b")], id="nested-arrays"
        ),
        pytest.param({"user": None}, [], id="null-object"),
        pytest.param({"user": {}}, [], id="empty-object"),
        pytest.param({"user": [None, {"name": "a"}]}, [("user.name", "a")], id="null-in-object-array"),
        pytest.param({"tag": []}, [], id="empty-array"),
        pytest.param(
            {"x": {"_id": "nested metadata names are ordinary"}},
            [
                ("x._id", "nested metadata names are ordinary"),
                ("x._id.keyword", "nested metadata names are ordinary"),
            ],
            id="metadata-name-below-root",
        ),
    ],
)
def test_objects_and_arrays(doc, values) -> None:
    assert Mapping.parse_definition(OBJECTS).parse_document(doc, "1").values == values


@pytest.mark.parametrize(
    ("doc", "error", "message"),
    [
        pytest.param(
            {"user": "a"},
            MapperParsingError,
            r"object mapping for \[user\] tried to parse field \[user\] as "
            r"object, but found a concrete value",
            id="scalar-for-object",
        ),
        pytest.param(
            {"user": ["a"]}, MapperParsingError, "found a concrete value", id="scalar-array-for-object"
        ),
        pytest.param(
            {"tag": {"a": 1}},
            MapperParsingError,
            r"failed to parse field \[tag\] of type \[keyword\]",
            id="object-for-field",
        ),
        pytest.param(
            {"tag.sub": 1},
            MapperParsingError,
            r"Existing mapping for \[tag\] must be of type object",
            id="dotted-below-field",
        ),
        pytest.param(
            {"new": 1, "new.sub": 2},
            MapperParsingError,
            r"Existing mapping for \[new\] must be of type object",
            id="dynamic-field-then-dotted",
        ),
        pytest.param(
            {"new.sub": 2, "new": 1},
            MapperParsingError,
            "found a concrete value",
            id="dynamic-dotted-then-field",
        ),
        pytest.param(
            {"new": [1, "x"]},
            MapperParsingError,
            r"failed to parse field \[new\] of type \[long\]",
            id="dynamic-array-mixed-types",
        ),
        pytest.param(
            {"new": [1, {"a": 1}]}, MapperParsingError, "found an object", id="dynamic-array-then-object"
        ),
        pytest.param(
            {"new": [{"a": 1}, 1]},
            MapperParsingError,
            "found a concrete value",
            id="dynamic-object-then-scalar",
        ),
        pytest.param({"": 1}, MapperParsingError, "empty string", id="empty-key"),
        pytest.param({"   ": 1}, MapperParsingError, "whitespace", id="blank-key"),
        pytest.param({"a..b": 1}, MapperParsingError, "empty string", id="double-dot-key"),
        pytest.param({".a": 1}, MapperParsingError, r"starting or ending with a \[.\]", id="leading-dot-key"),
        pytest.param(
            {"a.": 1}, MapperParsingError, r"starting or ending with a \[.\]", id="trailing-dot-key"
        ),
        pytest.param({"..": 1}, MapperParsingError, "only whitespace or dots", id="dots-only-key"),
    ],
)
def test_document_shape_errors(doc, error, message: str) -> None:
    with pytest.raises(error, match=message):
        Mapping.parse_definition(OBJECTS).parse_document(doc, "1")


@pytest.mark.parametrize("key", ["a. ", " .a", "a. .b", "a.\t"])
def test_blank_segment_in_dotted_key_is_refused(key: str) -> None:
    check_raises(MapperParsingError, Mapping.parse_definition({}).parse_document, {key: 1}, "1")


def _has_blank_segment(doc) -> bool:
    if isinstance(doc, list):
        return any(_has_blank_segment(v) for v in doc)
    if not isinstance(doc, dict):
        return False
    return any(
        (len(k.split(".")) > 1 and any(p and not p.strip() for p in k.split("."))) or _has_blank_segment(v)
        for k, v in doc.items()
    )


@pytest.mark.parametrize(
    "name",
    [
        "_id",
        "_index",
        "_source",
        "_routing",
        "_seq_no",
        "_version",
        "_primary_term",
        "_field_names",
        "_ignored",
    ],
)
def test_metadata_fields_refused_inside_documents(name: str) -> None:
    with pytest.raises(
        MapperParsingError,
        match=rf"Field \[{name}\] is a metadata field and cannot be added inside "
        r"a document. Use the index API request parameters.",
    ):
        Mapping.parse_definition({}).parse_document({"ok": 1, name: "x"}, "1")


@pytest.mark.parametrize("name", ["_id", "_source", "_routing"])
def test_metadata_fields_refused_even_when_mapped(name: str) -> None:
    # Guards the mapped-scalar fast path in _DocParser.walk_object, which runs before the metadata check.
    try:
        m = Mapping.parse_definition({"properties": {name: {"type": "keyword"}}})
    except MapperParsingError:
        return
    with pytest.raises(MapperParsingError, match="is a metadata field"):
        m.parse_document({name: "x"}, "1")


@pytest.mark.parametrize("name", ["_id", "_routing", "_source"])
def test_metadata_names_refused_as_properties(name: str) -> None:
    # Elasticsearch: "Field [_id] is defined more than once".
    with pytest.raises(MapperParsingError, match=rf"Field \[{name}\] is defined more than once"):
        Mapping.parse_definition({"properties": {name: {"type": "keyword"}}})




@pytest.mark.parametrize(
    ("field", "expected"),
    [
        pytest.param({"type": "text"}, [""], id="text"),
        pytest.param({"type": "keyword"}, [""], id="keyword"),
        pytest.param({"type": "keyword", "normalizer": "lowercase"}, [""], id="keyword-normalized"),
        pytest.param({"type": "boolean"}, [False], id="boolean-is-false"),
        pytest.param(
            {"type": "date"}, MapperParsingError, id="date-is-malformed"
        ),
        pytest.param(
            {"type": "long", "coerce": False},
            MapperParsingError,
            id="long-without-coerce-is-malformed",
        ),
        pytest.param(
            {"type": "double", "coerce": False},
            MapperParsingError,
            id="double-without-coerce-is-malformed",
        ),
    ],
)
def test_empty_string(field, expected) -> None:
    if isinstance(expected, list):
        got = attempt(values_of, field, "")
        check(got == [("f", v) for v in expected], f"got {got!r}")
    else:
        check_raises(expected, values_of, field, "")


def test_non_string_types_never_index_a_string() -> None:
    leaked = []
    for kind in ("long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float", "date"):
        field = {"type": kind, "scaling_factor": 10} if kind == "scaled_float" else {"type": kind}
        got = attempt(values_of, field, "")
        if not isinstance(got, Exception) and any(isinstance(v, str) for _, v in got):
            leaked.append(kind)
    check(not leaked, f'"" is indexed as a string by {leaked}')


@pytest.mark.parametrize(
    ("source", "message"),
    [
        pytest.param(None, "document is empty", id="null"),
        pytest.param([], "must be a JSON object", id="array"),
        pytest.param("x", "must be a JSON object", id="string"),
        pytest.param(5, "must be a JSON object", id="number"),
    ],
)
def test_document_must_be_an_object(source, message: str) -> None:
    with pytest.raises(MapperParsingError, match=message):
        Mapping.parse_definition({}).parse_document(source, "1")


def test_error_without_document_id() -> None:
    with pytest.raises(MapperParsingError) as info:
        mapping({"f": LONG}).parse_document({"f": "x"}, None)
    assert info.value.reason == "failed to parse field [f] of type [long]"


# -- limits ---------------------------------------------------------------------------------------


def test_total_fields_limit_on_dynamic_mapping() -> None:
    m = Mapping.parse_definition({"properties": {"a": {"type": "long"}}}, MappingLimits(total_fields=3))
    assert m.parse_document({"b": 1, "c": 2}, "1").additions is not None
    with pytest.raises(IllegalArgumentError, match=r"Limit of total fields \[3\] has been exceeded"):
        m.parse_document({"b": 1, "c": 2, "d": 3}, "1")
    with pytest.raises(IllegalArgumentError, match=r"Limit of total fields \[3\]"):
        m.parse_document({"s": "text makes two fields", "t": 1}, "1")


def _nested_doc(objects: int, leaf: bool) -> dict:
    doc: dict = {"leaf": 1} if leaf else {}
    for i in reversed(range(objects)):
        doc = {f"o{i}": doc}
    return doc


def test_depth_limit_on_dynamic_mapping() -> None:
    m = Mapping.parse_definition({}, MappingLimits(depth=3))
    assert m.parse_document(_nested_doc(2, True), "1").values == [("o0.o1.leaf", 1)]
    with pytest.raises(
        MapperParsingError,
        match=r"Limit of mapping depth \[3\] has been exceeded due to object "
        r"field \[o0.o1.o2\]",
    ):
        m.parse_document(_nested_doc(3, True), "1")


def test_default_depth_limit_is_20() -> None:
    m = Mapping.parse_definition({})
    m.parse_document(_nested_doc(19, True), "1")
    with pytest.raises(MapperParsingError, match=r"Limit of mapping depth \[20\]"):
        m.parse_document(_nested_doc(20, True), "1")


def test_depth_limit_counts_empty_objects() -> None:
    m = Mapping.parse_definition({}, MappingLimits(depth=3))
    check_raises(MapperParsingError, m.parse_document, _nested_doc(3, False), "1")


def _nested_array(levels: int) -> list:
    value: list = [1, 2]
    for _ in range(levels - 1):
        value = [value]
    return value


def test_nested_arrays_are_flattened() -> None:
    assert dynamic({"a": _nested_array(15)}) == (
        [("a", 1), ("a", 2)],
        {"properties": {"a": {"type": "long"}}},
    )


def test_very_deep_arrays_do_not_crash() -> None:
    try:
        Mapping.parse_definition({}).parse_document({"a": _nested_array(1000)}, "1")
    except StrongroomError:
        pass


def test_arrays_nested_deeper_than_the_object_depth_limit() -> None:
    got = attempt(dynamic, {"a": _nested_array(25)})
    check(not isinstance(got, Exception) and got[0] == [("a", 1), ("a", 2)], f"got {got!r}")


# -- properties -----------------------------------------------------------------------------------

KEYS = st.text(alphabet="ab.xé _", min_size=0, max_size=4) | st.sampled_from(["_id", "a.b", "k", "keyword"])
SCALARS = (
    st.text(max_size=8)
    | st.integers()
    | st.booleans()
    | st.none()
    | st.floats(allow_nan=False, allow_infinity=False)
)
DOCUMENTS = st.dictionaries(
    KEYS,
    st.recursive(
        SCALARS, lambda c: st.lists(c, max_size=3) | st.dictionaries(KEYS, c, max_size=3), max_leaves=10
    ),
    max_size=5,
)


@settings(max_examples=80, deadline=None)
@given(DOCUMENTS)
def test_dynamic_parse_is_total_and_additions_are_complete(doc) -> None:
    m = Mapping.parse_definition({})
    try:
        first = m.parse_document(doc, "1")
    except StrongroomError:
        return
    if _has_blank_segment(doc):
        return  # known: test_blank_segment_in_dotted_key_is_refused
    if first.additions is None:
        assert first.values == []
        return
    merged = m.merge(first.additions)
    second = merged.parse_document(doc, "1")
    assert second.additions is None
    assert second.values == first.values
    es = merged.to_es()
    assert Mapping.parse_definition(es).to_es() == es


FIELD_DEFINITIONS = st.sampled_from(
    [
        {"type": t}
        for t in (
            "text",
            "keyword",
            "long",
            "integer",
            "short",
            "byte",
            "double",
            "float",
            "half_float",
            "boolean",
            "date",
        )
    ]
    + [
        {"type": "scaled_float", "scaling_factor": 10},
        {"type": "long", "coerce": False},
        {"type": "keyword", "ignore_above": 4, "normalizer": "lowercase"},
        {"type": "date", "format": "yyyy/MM/dd"},
        {"type": "long", "ignore_malformed": True},
        {"type": "date", "format": "epoch_second"},
    ]
)
ANY_VALUE = st.recursive(
    SCALARS
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from(
        ["2015-01-01", "1e3", " 7 ", "NaN", "-Infinity", "1.5e308", "-0", "", "true", "2015/01/01", "12:00"]
    ),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c, max_size=2),
    max_leaves=6,
)


@settings(max_examples=120, deadline=None)
@given(FIELD_DEFINITIONS, ANY_VALUE)
def test_explicit_fields_never_crash(field, value) -> None:
    try:
        values = values_of(field, value)
    except StrongroomError:
        return
    for path, _ in values:
        assert path == "f"


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "type",
                "format",
                "ignore_above",
                "null_value",
                "coerce",
                "index",
                "scaling_factor",
                "fields",
                "properties",
                "dynamic",
                "enabled",
                "normalizer",
            ]
        ),
        st.none()
        | st.booleans()
        | st.integers(-3, 300)
        | st.floats(allow_nan=False)
        | st.sampled_from(
            [
                "keyword",
                "long",
                "date",
                "object",
                "scaled_float",
                "strict",
                "yyyy",
                "[yyyy",
                "'",
                "lowercase",
                "true",
                "x",
            ]
        )
        | st.lists(st.sampled_from(["strict", 1]), max_size=1)
        | st.dictionaries(st.sampled_from(["k", "type"]), st.sampled_from(["keyword", {}]), max_size=1),
        max_size=4,
    )
)
def test_definitions_never_crash(definition) -> None:
    if isinstance(definition.get("dynamic"), (list, dict)):
        return  # known crash: test_non_scalar_dynamic_is_a_mapping_error
    try:
        m = Mapping.parse_definition({"properties": {"f": definition}})
    except StrongroomError:
        return
    es = m.to_es()
    assert Mapping.parse_definition(es).to_es() == es


@pytest.mark.parametrize(("definition", "value", "indexed"), [
    ({"type": "ip"}, "192.168.1.10", [("f", "192.168.1.10")]),
    ({"type": "ip"}, "::ffff:10.0.0.1", [("f", "::ffff:a00:1")]),
    ({"type": "binary"}, "YWJjZGU=", []),
    ({"type": "geo_point"}, {"lat": 31.2, "lon": 121.5}, []),
    ({"type": "geo_point"}, "31.2,121.5", []),
    ({"type": "geo_point"}, [121.5, 31.2], []),
    ({"type": "geo_point"}, "POINT (121.5 31.2)", []),
    ({"type": "match_only_text"}, "quick fox", [("f", "quick fox")]),
], ids=["ipv4", "ipv6-mapped", "binary", "geo-object", "geo-string", "geo-array", "geo-wkt", "match-only-text"])
def test_added_types_index_and_mark_existence(definition, value, indexed) -> None:
    parsed = Mapping.parse_definition({"properties": {"f": definition}}).parse_document({"f": value}, "1")
    assert parsed.values == indexed
    assert "f" in parsed.field_names  # `exists` finds every one of them


@pytest.mark.parametrize(("definition", "value"), [
    ({"type": "ip"}, "999.1.1.1"), ({"type": "ip"}, 5), ({"type": "binary"}, "not base64!"),
    ({"type": "geo_point"}, {"lat": 91, "lon": 0}), ({"type": "geo_point"}, "north pole"),
])
def test_added_types_refuse_malformed_values(definition, value) -> None:
    with pytest.raises(MapperParsingError):
        Mapping.parse_definition({"properties": {"f": definition}}).parse_document({"f": value}, "1")


# -- arrays of scalars take a shortcut: it must give what the general walk gives ----------------------
ARRAY_FIELDS = {"k": {"type": "keyword", "ignore_above": 6}, "n": {"type": "long"}, "t": {"type": "text"},
                "b": {"type": "boolean"}, "d": {"type": "date"}, "m": {"type": "keyword", "fields": {"x": {"type": "long"}}},
                "i": {"type": "integer", "ignore_malformed": True}, "nv": {"type": "keyword", "null_value": "NULL"}}
_scalar = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=8), st.sampled_from(["2020-01-02", "true", "12", "1.5", ""]))


def _general_walk(m: Mapping, doc: dict):
    """What the document gives through the general walk alone (walk_value for every key, no shortcut)."""
    from strongroom.engine.mapping import _DocParser

    parser = _DocParser(m, "1")
    for key, value in doc.items():
        parser.walk_value("", key.split("."), value, 1)
    return parser.values, parser.field_names


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(ARRAY_FIELDS)),
                       st.lists(st.one_of(_scalar, st.lists(_scalar, max_size=2)), max_size=4), max_size=4))
def test_arrays_of_scalars_index_as_the_general_walk_does(doc) -> None:
    m = mapping(ARRAY_FIELDS, dynamic="strict")
    try:
        expected = _general_walk(m, doc)
    except StrongroomError as exc:
        with pytest.raises(type(exc)) as raised:
            m.parse_document(doc, "1")
        assert str(raised.value) == str(exc)
        return
    parsed = m.parse_document(doc, "1")
    assert (parsed.values, parsed.field_names) == expected
