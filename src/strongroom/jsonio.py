"""Strict JSON in and out.

Requests are parsed with orjson (UTF-8 checked, nesting bounded at 1024 levels, NaN and
Infinity refused, numbers that overflow a double refused) and then checked for duplicate keys,
which Elasticsearch refuses and orjson silently collapses. The check is cheap on the common path:
the number of `"…":` key markers in the raw text can only be ≥ the number of keys of the parsed
value, and equals it exactly when there are no duplicates; only when they differ does the slow,
exact parser run to find the duplicate.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from typing import Any

import orjson

from .errors import ActionRequestValidationError, JsonParseError, MapperParsingError

_KEY_MARKER = re.compile(rb'"\s*:')
_WHITESPACE_AFTER_QUOTE = re.compile(rb'"[ \t\n\r]')  # JSON whitespace: a key may be spaced from its colon


def _key_markers(raw: bytes) -> int:
    if _WHITESPACE_AFTER_QUOTE.search(raw):
        return len(_KEY_MARKER.findall(raw))
    return raw.count(b'":')


def _count_keys(value: Any) -> int:
    """Keys of every object in `value`, a dict or a list (iterative: JSON nests deeper than Python's stack)."""
    count = 0
    stack = [value]
    pop, push = stack.pop, stack.append
    while stack:
        item = pop()
        if type(item) is dict:
            count += len(item)
            children = item.values()
        else:  # only dicts and lists are pushed
            children = item
        for child in children:
            if type(child) is dict or type(child) is list:
                push(child)
    return count


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


_RECURSION = threading.Lock()


def _find_duplicate(raw: bytes) -> str | None:
    # orjson already accepted the text, so nesting is at most 1024 levels; the standard parser
    # recurses once per level, so give it the room it needs for this call.
    with _RECURSION:
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 4000))
        try:
            json.loads(raw, object_pairs_hook=_reject_duplicates)
        except _DuplicateKey as dup:
            return dup.key
        except (ValueError, RecursionError):
            return None
        finally:
            sys.setrecursionlimit(limit)
    return None


def loads_strict(raw: bytes | bytearray | memoryview | str) -> Any:
    """Parses one JSON value; raises JsonParseError (400) with a message safe to return."""
    if isinstance(raw, str):
        try:
            raw = raw.encode()
        except UnicodeEncodeError:
            raise JsonParseError("Failed to parse JSON: invalid UTF-8") from None
    elif not isinstance(raw, bytes):
        raw = bytes(raw)
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise JsonParseError(f"Failed to parse JSON: {_describe(exc)}") from None
    if type(value) is dict or type(value) is list:
        if _key_markers(raw) != _count_keys(value):
            duplicate = _find_duplicate(raw)
            if duplicate is not None:
                raise JsonParseError(f"Duplicate field '{duplicate}'")
    return value


def loads_document(raw: bytes) -> dict[str, Any]:
    """A document body: a JSON object, parsed strictly; else the mapper_parsing_exception (400) that
    Elasticsearch answers (action_request_validation_exception for an empty body)."""
    if not raw.strip():
        raise ActionRequestValidationError("source is missing")
    try:
        document = loads_strict(raw)
    except JsonParseError as exc:
        raise MapperParsingError(f"failed to parse: {exc.reason}") from None
    if not isinstance(document, dict):
        raise MapperParsingError("failed to parse: the document must be a JSON object")
    return document


def _describe(exc: orjson.JSONDecodeError) -> str:
    message = exc.msg
    if "depth limit" in message or "recursion" in message:
        return "nesting too deep"
    if "UTF-8" in message or "surrogates" in message:
        return "invalid UTF-8"
    if "infinity" in message:
        return "number out of range"
    return f"{message} at line {exc.lineno} column {exc.colno}"


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


def extract_values(source: dict[str, Any], path: str) -> list[Any]:
    """Leaf values at a dotted path, following objects, arrays and dotted keys as mapping does."""
    out: list[Any] = []

    def walk(value: Any, rest: str) -> None:
        if not rest:
            if isinstance(value, list):
                for item in value:
                    walk(item, "")
            elif value is not None and not isinstance(value, dict):
                out.append(value)
            return
        if isinstance(value, list):
            for item in value:
                walk(item, rest)
            return
        if not isinstance(value, dict):
            return
        for key, child in value.items():
            if rest == key:
                walk(child, "")
            elif rest.startswith(key + "."):
                walk(child, rest[len(key) + 1:])

    walk(source, path)
    return out
