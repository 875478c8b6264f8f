"""Elasticsearch's wire format: JSON responses, headers, errors, bounded bodies, typed URL parameters."""

from __future__ import annotations

import logging
import re
import traceback
import zlib
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from starlette.datastructures import Headers, QueryParams
from starlette.requests import Request
from starlette.responses import Response

from ..errors import (IllegalArgumentError, InternalError, PayloadTooLargeError, RequestError, StrongroomError,
                      UnsupportedMediaTypeError)
from ..jsonio import loads_strict

log = logging.getLogger(__name__)

PRODUCT_HEADERS = {"X-Elastic-Product": "Elasticsearch"}
JSON_TYPE = "application/json; charset=UTF-8"
VENDOR_JSON_TYPE = "application/vnd.elasticsearch+json;compatible-with=8"
ACCEPTED_BODY_TYPES = ("application/json", "application/x-ndjson", "application/vnd.elasticsearch+json",
                       "application/vnd.elasticsearch+x-ndjson")


def _wants_vendor(request: Request) -> bool:
    return "vnd.elasticsearch" in request.headers.get("accept", "")


class IndexedHeaders(Headers):
    """Starlette's Headers, looked up through a dict (the first value of each name, as Headers answers)
    instead of a scan that raises KeyError for every absent header a request is asked about."""

    def __init__(self, scope: Any) -> None:
        super().__init__(scope=scope)
        index: dict[bytes, bytes] = {}
        for key, value in self._list:
            index.setdefault(key, value)
        self._index = index

    def __getitem__(self, key: str) -> str:
        value = self._index.get(key.lower().encode("latin-1"))
        if value is None:
            raise KeyError(key)
        return value.decode("latin-1")

    def __contains__(self, key: Any) -> bool:
        return isinstance(key, str) and key.lower().encode("latin-1") in self._index

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        value = self._index.get(key.lower().encode("latin-1"))
        return default if value is None else value.decode("latin-1")


_NO_PARAMS = QueryParams("")  # immutable, so one serves every request without a query string


class ApiRequest(Request):
    """The request every handler sees: Starlette's, with IndexedHeaders, and no parsing of an absent
    query string. `after`: what the dispatcher leaves to run once the response has been sent."""

    after: Callable[[], None] | None = None

    @property
    def headers(self) -> Headers:
        if not hasattr(self, "_headers"):
            self._headers = IndexedHeaders(self.scope)
        return self._headers

    @property
    def query_params(self) -> QueryParams:
        if not hasattr(self, "_query_params"):
            self._query_params = QueryParams(self.scope["query_string"]) if self.scope.get("query_string") \
                else _NO_PARAMS
        return self._query_params


def url_path(request: Request) -> str:
    """`request.url.path` (the decoded path, with `?`, `#` and `\\` escaped as Starlette's URL has it),
    without building the whole URL."""
    return request.scope["path"].replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")


def json_response(request: Request, body: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> Response:
    params = request.query_params
    if "filter_path" in params and isinstance(body, dict):
        body = filter_path(body, params["filter_path"])
    option = orjson.OPT_NON_STR_KEYS
    if "pretty" in params and params["pretty"] != "false":
        option |= orjson.OPT_INDENT_2
    payload = orjson.dumps(body, option=option)
    if option & orjson.OPT_INDENT_2:
        payload += b"\n"
    media = VENDOR_JSON_TYPE if _wants_vendor(request) else JSON_TYPE
    all_headers = {**PRODUCT_HEADERS, **(headers or {})}
    if request.method == "HEAD":
        all_headers["content-length"] = str(len(payload))
        return Response(b"", status_code=status, headers=all_headers, media_type=media)
    return Response(payload, status_code=status, headers=all_headers, media_type=media)


def text_response(request: Request, text: str, status: int = 200) -> Response:
    return Response(text.encode(), status_code=status, headers=PRODUCT_HEADERS,
                    media_type="text/plain; charset=UTF-8")


def head_response(status: int) -> Response:
    return Response(b"", status_code=status, headers={**PRODUCT_HEADERS, "content-length": "0"})


def error_body(error: StrongroomError) -> dict[str, Any]:
    return {"error": error.to_es(), "status": error.status}


def error_response(request: Request, error: StrongroomError) -> Response:
    if request.method == "HEAD":
        return Response(b"", status_code=error.status, headers={**PRODUCT_HEADERS, **error.headers()})
    return json_response(request, error_body(error), error.status, error.headers())


def internal_error(request: Request, exc: BaseException, where: str) -> Response:
    # Details go to the server log, naming the route pattern, never the path: a path can carry a
    # document id, and ids can be personal data. The caller gets a generic message.
    # Exception messages can quote request values, so only the type and the frames are logged.
    frames = "".join(traceback.format_tb(exc.__traceback__))
    log.error("internal error on %s %s: %s\n%s", request.method, where, type(exc).__name__, frames)
    return error_response(request, InternalError())


# -- request bodies ------------------------------------------------------------------------
async def read_body(request: Request, limit: int) -> bytes:
    """The request body, decompressed if needed, refused beyond `limit` bytes (413)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise _too_large(limit)
        except ValueError:
            raise RequestError("invalid Content-Length header") from None
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", "deflate"):
        raise UnsupportedMediaTypeError(f"Content-Encoding [{encoding}] is not supported")
    decoder = None
    if encoding != "identity":
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        if decoder is not None:
            try:
                chunk = decoder.decompress(chunk, limit + 1 - size)
            except zlib.error:
                raise RequestError(f"request body is not valid {encoding} data") from None
            if decoder.unconsumed_tail:
                raise _too_large(limit)
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    if decoder is not None:
        try:
            tail = decoder.flush()
        except zlib.error:
            raise RequestError(f"request body is not valid {encoding} data") from None
        if not decoder.eof:
            raise RequestError(f"request body is truncated {encoding} data")
        size += len(tail)
        if size > limit:
            raise _too_large(limit)
        chunks.append(tail)
    body = b"".join(chunks)
    if body:
        check_content_type(request)
    return body


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"Request content is too long: the limit is [{limit}] bytes")


def check_content_type(request: Request) -> None:
    media = request.headers.get("content-type")
    if media is None:
        raise UnsupportedMediaTypeError("Content-Type header is missing")
    base = media.split(";", 1)[0].strip().lower()
    if base not in ACCEPTED_BODY_TYPES:
        raise UnsupportedMediaTypeError(f"Content-Type header [{media}] is not supported")


def parse_json_body(body: bytes, *, required: bool = False, what: str = "request body") -> Any:
    if not body.strip():
        if required:
            raise RequestError(f"{what} is required")
        return None
    value = loads_strict(body)
    if not isinstance(value, dict):
        raise RequestError(f"{what} must be a JSON object")
    return value


# -- URL parameters ------------------------------------------------------------------------
COMMON_PARAMS = frozenset({"pretty", "human", "error_trace", "filter_path"})


class Params:
    """Typed access to URL parameters with Elasticsearch's error messages."""

    def __init__(self, request: Request, allowed: Iterable[str]) -> None:
        self._params = request.query_params
        allowed_set = COMMON_PARAMS | set(allowed)
        unknown = [k for k in self._params.keys() if k not in allowed_set]
        if unknown:
            plural = "s" if len(unknown) > 1 else ""
            raise IllegalArgumentError(f"request [{url_path(request)}] contains unrecognized parameter{plural}: "
                                       f"[{'], ['.join(sorted(unknown))}]")

    def str(self, name: str, default: str | None = None) -> str | None:
        return self._params.get(name, default)

    def has(self, name: str) -> bool:
        return name in self._params

    def bool(self, name: str, default: bool = False) -> bool:
        value = self._params.get(name)
        if value is None:
            return default
        if value in ("", "true"):
            return True
        if value == "false":
            return False
        raise IllegalArgumentError(f"Failed to parse value [{value}] as only [true] or [false] are allowed.")

    def int(self, name: str, default: int | None = None) -> int | None:
        value = self._params.get(name)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError:
            raise IllegalArgumentError(f"Failed to parse int parameter [{name}] with value [{value}]") from None

    def refresh(self) -> str | None:
        value = self._params.get("refresh")
        if value is None:
            return None
        if value not in ("", "true", "false", "wait_for"):
            raise IllegalArgumentError(f"Unknown value for refresh: [{value}].")
        return value

    def index_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if "ignore_unavailable" in self._params:
            options["ignore_unavailable"] = self.bool("ignore_unavailable")
        if "allow_no_indices" in self._params:
            options["allow_no_indices"] = self.bool("allow_no_indices", True)
        if "expand_wildcards" in self._params:
            value = self._params["expand_wildcards"]
            kinds = {v.strip() for v in value.split(",")}
            if not kinds <= {"open", "closed", "hidden", "none", "all"}:
                raise IllegalArgumentError(f"No enum constant for expand_wildcards [{value}]")
            options["expand_wildcards"] = "none" if kinds == {"none"} else "open"
        return options


INDEX_OPTION_PARAMS = ("ignore_unavailable", "allow_no_indices", "expand_wildcards")


# -- filter_path ---------------------------------------------------------------------------
def filter_path(body: dict[str, Any], spec: str) -> dict[str, Any]:
    """Keeps only the paths named (dotted, `*` matches one level, `**` any number of levels)."""
    patterns = [p.strip().split(".") for p in spec.split(",") if p.strip() and not p.strip().startswith("-")]
    if not patterns:
        return body
    result = _filter(body, patterns)
    return result if isinstance(result, dict) else {}


def _segment_matches(pattern: str, key: str) -> bool:
    if "*" not in pattern:
        return pattern == key
    return re.fullmatch(".*".join(re.escape(p) for p in pattern.split("*")), key) is not None


def _filter(value: Any, patterns: list[list[str]]) -> Any:
    if any(not p for p in patterns):
        return value
    if isinstance(value, list):
        items = [_filter(v, patterns) for v in value]
        return [i for i in items if i is not _MISSING]
    if not isinstance(value, dict):
        return _MISSING
    out = {}
    for key, child in value.items():
        next_patterns: list[list[str]] = []
        for pattern in patterns:
            head = pattern[0]
            if head == "**":
                next_patterns.append(pattern)  # ** keeps matching deeper levels
                if len(pattern) > 1 and _segment_matches(pattern[1], key):
                    next_patterns.append(pattern[2:])
            elif _segment_matches(head, key):
                next_patterns.append(pattern[1:])
        if next_patterns:
            filtered = _filter(child, next_patterns)
            if filtered is not _MISSING and filtered != {} and filtered != []:
                out[key] = filtered
    return out if out else _MISSING


_MISSING: Any = object()
