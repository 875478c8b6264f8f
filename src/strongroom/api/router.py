"""Routes on the raw (still percent-encoded) path, so that ids containing `/` route correctly.

A route is (method, pattern, handler, allowed URL parameters). Literal segments win over
parameters at the same position, as in Elasticsearch's path trie. `{index}` does not match a
segment starting with `_` (those are endpoints) except `_all`; `{id}` matches any segment.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from ..errors import RequestError

if TYPE_CHECKING:
    from .handlers import Call

Handler = Callable[["Call"], Awaitable[Any]]
EXAMPLES = {"index": "strongroom-example", "id": "1", "target": "strongroom-example", "scroll_id": "c2Nyb2xs",
            "repository": "backups", "snapshot": "nightly"}


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    handler: Handler
    params: frozenset[str]
    body: bool  # whether the route reads a request body

    @functools.cached_property
    def segments(self) -> list[str]:
        return [s for s in self.pattern.split("/") if s]

    @property
    def example_path(self) -> str:
        parts = []
        for segment in self.segments:
            parts.append(EXAMPLES[segment[1:-1]] if segment.startswith("{") else segment)
        return "/" + "/".join(parts)

    @functools.cached_property
    def literals(self) -> tuple[tuple[int, str], ...]:
        return tuple((i, s) for i, s in enumerate(self.segments) if not s.startswith("{"))

    def match(self, segments: list[str]) -> tuple[dict[str, str], tuple[int, ...]] | None:
        mine = self.segments
        if len(mine) != len(segments):
            return None
        for position, literal in self.literals:  # the cheap refusal first: most routes differ in a literal
            if segments[position] != literal:
                return None
        params: dict[str, str] = {}
        rank = []
        for pattern, value in zip(mine, segments):
            if pattern.startswith("{"):
                name = pattern[1:-1]
                if not value or (name == "index" and value.startswith("_") and value != "_all"):
                    return None
                params[name] = value
                rank.append(1)
            elif pattern != value:
                return None
            else:
                rank.append(0)
        return params, tuple(rank)

    def __str__(self) -> str:
        return f"{self.method} {self.pattern}"


# Path parameters whose values may be kept in the router's memo: names of indices and repositories.
# A path holding a document id, a scroll id or a snapshot name is matched afresh every time, so the
# memo never keeps what a caller looked up.
MEMO_PARAMS = frozenset({"index", "target", "repository"})
MEMO_ENTRIES = 1024


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []
        # Only routes with as many segments can match, and of those only the ones whose last segment is
        # that literal or a parameter: a handful of candidates instead of every route.
        self._index: dict[tuple[int, str | None], list[Route]] = {}
        # (method, raw path) → what `_match` found, for matched paths whose parameters are all in
        # MEMO_PARAMS: a search's path repeats, and matching it took ~20 µs of a ~600 µs lookup.
        self._memo: dict[tuple[str, str], tuple[Route, dict[str, str], list[str]]] = {}

    def add(self, methods: Iterable[str], patterns: Iterable[str], handler: Handler, *, params: Iterable[str] = (),
            body: bool = False) -> None:
        allowed = frozenset(params)
        self._memo.clear()  # a new route may win over what was matched before
        for method in methods:
            for pattern in patterns:
                route = Route(method, pattern, handler, allowed, body)
                self.routes.append(route)
                last = route.segments[-1] if route.segments else ""
                key = (len(route.segments), None if last.startswith("{") else last)
                self._index.setdefault(key, []).append(route)

    def resolve(self, method: str, raw_path: str) -> tuple[Route | None, dict[str, str], list[str]]:
        """(route, path params, allowed methods for the path). Route is None when nothing matches."""
        key = (method, raw_path)
        known = self._memo.get(key)
        if known is not None:
            return known[0], dict(known[1]), list(known[2])
        route, params, allowed = self._match(method, raw_path)
        if route is not None and MEMO_PARAMS.issuperset(params):
            if len(self._memo) >= MEMO_ENTRIES:
                self._memo.clear()
            self._memo[key] = (route, dict(params), list(allowed))
        return route, params, allowed

    def _match(self, method: str, raw_path: str) -> tuple[Route | None, dict[str, str], list[str]]:
        segments = split_path(raw_path)
        best: tuple[tuple[int, ...], Route, dict[str, str]] | None = None
        allowed: set[str] = set()
        best_for_path: tuple[int, ...] | None = None
        candidates: list[tuple[tuple[int, ...], Route, dict[str, str]]] = []
        last = segments[-1] if segments else ""
        for route in (*self._index.get((len(segments), last), ()), *self._index.get((len(segments), None), ())):
            matched = route.match(segments)
            if matched is None:
                continue
            params, rank = matched
            candidates.append((rank, route, params))
            if best_for_path is None or rank < best_for_path:
                best_for_path = rank
        for rank, route, params in candidates:
            if rank != best_for_path:
                continue
            allowed.add(route.method)
            if route.method == method and (best is None or rank < best[0]):
                best = (rank, route, params)
        if best is None:
            return None, {}, sorted(allowed)
        return best[1], best[2], sorted(allowed)


def split_path(raw_path: str) -> list[str]:
    segments = []
    for raw in raw_path.split("/"):
        if not raw:
            continue
        try:
            segments.append(unquote(raw, errors="strict"))
        except UnicodeDecodeError:
            raise RequestError("the request path is not valid UTF-8 after percent-decoding") from None
    return segments
