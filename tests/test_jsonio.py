"""`loads_strict`: orjson plus a duplicate-key check.

Everything valid is accepted; everything else is a JsonParseError (never another exception).
"""

from __future__ import annotations

import json
import math

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from expect import check
from strongroom.errors import JsonParseError, RequestError
from strongroom.jsonio import dumps, loads_strict


# -- valid input ----------------------------------------------------------------------------------

ACCEPTED = [
    (b'{"a":1,"b":2}', {"a": 1, "b": 2}),
    (b'{"a" : 1 , "b"\t:\n2}', {"a": 1, "b": 2}),
    (b'  {"a":1}\n', {"a": 1}),
    (b'{"a":"x\\":","b":1}', {"a": 'x":', "b": 1}),  # a key marker inside a value is not a key
    (b'{"a":"\\" : ","b":1}', {"a": '" : ', "b": 1}),
    (b'{"a":{"a":{"a":1}}}', {"a": {"a": {"a": 1}}}),  # the same key at different depths
    (b'[{"a":1},{"a":2}]', [{"a": 1}, {"a": 2}]),  # the same key in sibling objects
    (b'{"a\\"":1,"a":2}', {'a"': 1, "a": 2}),
    (b'{"":1}', {"": 1}),
    (b'{"A":1,"a":2}', {"A": 1, "a": 2}),  # keys are case-sensitive
    (b'{"\\u00e9":1,"e":2}', {"é": 1, "e": 2}),
    (b"{}", {}),
    (b"[]", []),
    (b'"text"', "text"),
    (b"true", True),
    (b"null", None),
    (b"-0.0", -0.0),
    (b"1e308", 1e308),
    (b"-1.5E-3", -0.0015),
    (b"9223372036854775807", 9223372036854775807),
    (b"-9223372036854775808", -9223372036854775808),
    (b"18446744073709551615", 18446744073709551615),
    ('{"é":"日本"}', {"é": "日本"}),  # str input
    (bytearray(b'{"a":1}'), {"a": 1}),
    (memoryview(b'{"a":[1,2]}'), {"a": [1, 2]}),
    (b'"\\ud83d\\ude00"', "😀"),  # an escaped surrogate pair
]


@pytest.mark.parametrize(("raw", "expected"), ACCEPTED, ids=[repr(r)[:40] for r, _ in ACCEPTED])
def test_accepts_valid_json(raw, expected) -> None:
    value = loads_strict(raw)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize("depth", [1, 100, 1024])
def test_accepts_nesting_up_to_1024(depth: int) -> None:
    assert loads_strict(b"[" * depth + b"]" * depth) is not None
    value = loads_strict(b'{"k":' * (depth - 1) + b"{}" + b"}" * (depth - 1))
    assert isinstance(value, dict)


# -- invalid input --------------------------------------------------------------------------------

REFUSED = [
    pytest.param(b"", id="empty"),
    pytest.param(b"   ", id="whitespace-only"),
    pytest.param(b'{"a":1', id="truncated"),
    pytest.param(b'{"a":1}x', id="trailing-garbage"),
    pytest.param(b'{"a":1}{"b":2}', id="two-documents"),
    pytest.param(b"[1,]", id="trailing-comma-array"),
    pytest.param(b'{"a":1,}', id="trailing-comma-object"),
    pytest.param(b"{'a':1}", id="single-quotes"),
    pytest.param(b"{a:1}", id="unquoted-key"),
    pytest.param(b"01", id="leading-zero"),
    pytest.param(b"1.", id="bare-decimal-point"),
    pytest.param(b"+1", id="plus-sign"),
    pytest.param(b"NaN", id="NaN"),
    pytest.param(b"[NaN]", id="NaN-in-array"),
    pytest.param(b"Infinity", id="Infinity"),
    pytest.param(b'{"a":-Infinity}', id="minus-Infinity"),
    pytest.param(b"1e309", id="overflowing-double"),
    pytest.param(b"-1E400", id="overflowing-negative-double"),
    pytest.param(b'{"a":[1e99999]}', id="overflowing-nested"),
    pytest.param(b'"\xff"', id="invalid-utf8-byte"),
    pytest.param(b'"\xc3"', id="truncated-utf8"),
    pytest.param(b'"\xed\xa0\x80"', id="utf8-encoded-surrogate"),
    pytest.param(b'"\xc0\xaf"', id="overlong-utf8"),
    pytest.param(b'{"\xff":1}', id="invalid-utf8-in-key"),
    pytest.param(b'"\x01"', id="raw-control-char"),
    pytest.param(b'"\\x41"', id="bad-escape"),
    pytest.param(b"[" * 1025 + b"]" * 1025, id="array-depth-1025"),
    pytest.param(b'{"k":' * 1025 + b"1" + b"}" * 1025, id="object-depth-1025"),
    pytest.param(b"[" * 100_000, id="very-deep-unclosed"),
]


@pytest.mark.parametrize("raw", REFUSED)
def test_refuses_invalid_json(raw: bytes) -> None:
    with pytest.raises(JsonParseError) as info:
        loads_strict(raw)
    assert info.value.status == 400
    assert info.value.es_type == "x_content_parse_exception"


def test_error_messages_name_the_problem() -> None:
    with pytest.raises(JsonParseError, match="nesting too deep"):
        loads_strict(b"[" * 2000 + b"]" * 2000)
    with pytest.raises(JsonParseError, match="invalid UTF-8"):
        loads_strict(b'"\xff"')
    with pytest.raises(JsonParseError, match="number out of range"):
        loads_strict(b"1e400")
    with pytest.raises(JsonParseError, match="line 1 column"):
        loads_strict(b'{"a":}')


# -- duplicate keys -------------------------------------------------------------------------------

DUPLICATES = [
    pytest.param(b'{"a":1,"a":2}', "a", id="top-level"),
    pytest.param(b'{"a":1,"a":1}', "a", id="same-value"),
    pytest.param(b'{"a":{"x":1},"a":null}', "a", id="object-and-null"),
    pytest.param(b'{"a" :1,"a":2}', "a", id="space-before-colon"),
    pytest.param(b'{"a"\t:1,"a"\n:2}', "a", id="tab-and-newline-before-colon"),
    pytest.param(b'{"a"\r\n :1,"a":2}', "a", id="crlf-before-colon"),
    pytest.param(b'{"a\\"b":1,"a\\"b":2}', 'a"b', id="escaped-quote-in-key"),
    pytest.param(b'{"a\\\\":1,"a\\\\":2}', "a\\", id="escaped-backslash-at-key-end"),
    pytest.param(b'{"a":1,"\\u0061":2}', "a", id="unicode-escape-spelling"),
    pytest.param(b'{"\\u00e9":1,"\xc3\xa9":2}', "é", id="escaped-and-raw-utf8"),
    pytest.param(b'{"":1,"":2}', "", id="empty-key"),
    pytest.param(b'{"x":{"y":{"z":1,"z":2}}}', "z", id="nested"),
    pytest.param(b'[{"a":1},{"b":1,"b":2}]', "b", id="array-of-objects"),
    pytest.param(b'[[[{"q":[{"k":1,"k":2}]}]]]', "k", id="deep-in-arrays"),
    pytest.param(b'{"s":"\\":\\":\\":","a":1,"a":2}', "a", id="markers-in-values"),
    pytest.param(b'{"a":1,"b":2,"c":3,"b":4}', "b", id="non-adjacent"),
]


@pytest.mark.parametrize(("raw", "key"), DUPLICATES)
def test_refuses_duplicate_keys(raw: bytes, key: str) -> None:
    with pytest.raises(JsonParseError) as info:
        loads_strict(raw)
    assert info.value.reason == f"Duplicate field '{key}'"




@pytest.mark.parametrize(
    "depth",
    [1, 100, 500, pytest.param(1000), pytest.param(1023)],
)
def test_refuses_duplicate_keys_at_any_depth(depth: int) -> None:
    in_arrays = b"[" * depth + b'{"a":1,"a":2}' + b"]" * depth
    in_objects = b'{"k":' * depth + b'{"a":1,"a":2}' + b"}" * depth
    for raw in (in_arrays, in_objects):
        try:
            loads_strict(raw)
        except JsonParseError as exc:
            assert exc.reason == "Duplicate field 'a'"
        else:
            check(False, f"duplicate at depth {depth} accepted")


def test_str_with_lone_surrogate_is_a_parse_error() -> None:
    try:
        loads_strict('{"a":"\ud800"}')
    except JsonParseError:
        return
    except Exception as exc:
        check(False, f"raised {type(exc).__name__}: {exc}")
    check(False, "accepted")


# -- properties -----------------------------------------------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
KEYS = st.text(max_size=6) | st.sampled_from(['"', '":', '" :', "\\", 'a"', "\n", "é", "😀", "\u2028"])
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=25,
)


def _same(a, b) -> bool:
    """Equality that also tells 0.0 from -0.0 and int from float."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return a == b


@settings(max_examples=60, deadline=None)
@given(JSON_VALUES)
def test_round_trips_everything_orjson_writes(value) -> None:
    assert _same(loads_strict(orjson.dumps(value)), value)
    assert _same(loads_strict(orjson.dumps(value).decode()), value)
    assert _same(
        loads_strict(json.dumps(value, indent=1, ensure_ascii=True)), value
    )  # whitespace, \u escapes
    assert _same(loads_strict(json.dumps(value, separators=(" , ", " : "))), value)


def _count_objects(value) -> int:
    if isinstance(value, dict):
        return 1 + sum(_count_objects(v) for v in value.values())
    if isinstance(value, list):
        return sum(_count_objects(v) for v in value)
    return 0


def _key_text(key: str, escaped: bool) -> str:
    if not escaped:
        return json.dumps(key, ensure_ascii=False)
    units = key.encode("utf-16-be")
    return (
        '"'
        + "".join(f"\\u{int.from_bytes(units[i : i + 2], 'big'):04x}" for i in range(0, len(units), 2))
        + '"'
    )


def _render_with_duplicate(value, target: int, key: str, spellings, gaps, positions, extra) -> str:
    """JSON text for `value` where object number `target` (pre-order) gets `key` twice more."""
    counter = [0]

    def render(node) -> str:
        if isinstance(node, list):
            return "[" + ",".join(render(v) for v in node) + "]"
        if not isinstance(node, dict):
            return json.dumps(node, ensure_ascii=False)
        index = counter[0]
        counter[0] += 1
        members = [_key_text(k, False) + ":" + render(v) for k, v in node.items()]
        if index == target:
            for spelling, gap, position, payload in zip(spellings, gaps, positions, extra, strict=True):
                members.insert(
                    position % (len(members) + 1), _key_text(key, spelling) + gap + ":" + json.dumps(payload)
                )
        return "{" + ",".join(members) + "}"

    return render(value)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    value=JSON_VALUES,
    data=st.data(),
    key=KEYS,
    spellings=st.tuples(st.booleans(), st.booleans()),
    gaps=st.tuples(*[st.sampled_from(["", " ", "\t", "\n", "\r\n  "])] * 2),
    positions=st.tuples(st.integers(0, 8), st.integers(0, 8)),
    extra=st.tuples(SCALARS, SCALARS),
    as_bytes=st.booleans(),
)
def test_any_injected_duplicate_is_refused(
    value, data, key, spellings, gaps, positions, extra, as_bytes
) -> None:
    if _count_objects(value) == 0:
        value = {"wrapper": value}
    target = data.draw(st.integers(0, _count_objects(value) - 1), label="target object")
    text = _render_with_duplicate(value, target, key, spellings, gaps, positions, extra)
    with pytest.raises(JsonParseError, match="^Duplicate field"):
        loads_strict(text.encode() if as_bytes else text)


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=40) | st.text(max_size=40).map(str.encode))
def test_arbitrary_bytes_parse_or_raise_json_parse_error(raw: bytes) -> None:
    try:
        loads_strict(raw)
    except JsonParseError:
        pass


@settings(max_examples=30, deadline=None)
@given(JSON_VALUES)
def test_truncated_documents_are_refused(value) -> None:
    raw = orjson.dumps(value)
    assume(len(raw) > 1 and raw[:1] in (b"[", b"{", b'"'))
    with pytest.raises(RequestError):
        loads_strict(raw[:-1])


def test_dumps_is_compact_and_accepts_non_string_keys() -> None:
    assert dumps({"a": [1, 2.5, None, True]}) == b'{"a":[1,2.5,null,true]}'
    assert dumps({1: "x"}) == b'{"1":"x"}'
    assert loads_strict(dumps({"é": "日本"})) == {"é": "日本"}
