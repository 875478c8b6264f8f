"""`_source` filtering (includes and excludes with `*` wildcards), as Elasticsearch applies it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..errors import RequestError


@lru_cache(maxsize=1024)
def _pattern(glob: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if part == "*" else re.escape(part) for part in re.split(r"(\*)", glob)) + r"\Z",
                      re.DOTALL)


@dataclass(frozen=True)
class SourceFilter:
    """`fetch=False` drops `_source`; otherwise includes (empty = everything) minus excludes."""

    fetch: bool = True
    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()

    @property
    def is_identity(self) -> bool:
        return self.fetch and not self.includes and not self.excludes

    def apply(self, source: dict[str, Any]) -> dict[str, Any]:
        if self.is_identity:
            return source
        return self._walk(source, "", not self.includes)

    def _included(self, path: str) -> bool:
        return any(_pattern(p).match(path) for p in self.includes)

    def _excluded(self, path: str) -> bool:
        return any(_pattern(p).match(path) for p in self.excludes)

    def _may_descend(self, path: str) -> bool:
        prefix = path + "."
        return any(p.startswith(prefix) or "*" in p for p in self.includes)

    def _walk(self, obj: dict[str, Any], prefix: str, included: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in obj.items():
            path = f"{prefix}.{key}" if prefix else key
            if self._excluded(path):
                continue
            full = included or self._included(path)
            if isinstance(value, dict):
                if full or self._may_descend(path):
                    inner = self._walk(value, path, full)
                    if inner or (full and not value):
                        out[key] = inner
            elif isinstance(value, list):
                items = self._list(value, path, full)
                if items or (full and not value):
                    out[key] = items
            elif full:
                out[key] = value
        return out

    def _list(self, values: list[Any], path: str, full: bool) -> list[Any]:
        out = []
        for item in values:
            if isinstance(item, dict):
                if full or self._may_descend(path):
                    inner = self._walk(item, path, full)
                    if inner or (full and not item):  # Objects emptied by filtering are dropped.
                        out.append(inner)
            elif isinstance(item, list):
                inner_list = self._list(item, path, full)
                if inner_list or (full and not item):
                    out.append(inner_list)
            elif full:
                out.append(item)
        return out


def _patterns(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(p for p in (s.strip() for s in value.split(",")) if p)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise RequestError(f"[{name}] must be a string or an array of strings")


def source_filter_from_params(source: str | None, includes: str | None, excludes: str | None) -> SourceFilter:
    """From URL parameters `_source`, `_source_includes`, `_source_excludes`."""
    # Only the exact words are booleans (Elasticsearch's Booleans.isTrue/isFalse); anything else
    # is a list of field patterns.
    if source == "false":
        return SourceFilter(fetch=False)
    inc = _patterns(includes, "_source_includes")
    if not inc and source is not None and source not in ("true", ""):
        inc = _patterns(source, "_source")  # `_source_includes` wins over patterns in `_source`.
    return SourceFilter(True, inc, _patterns(excludes, "_source_excludes"))


def source_filter_from_body(value: Any) -> SourceFilter:
    """From a body's `_source` key: a boolean, a pattern or list of patterns, or includes/excludes."""
    if value is None or value is True:
        return SourceFilter()
    if value is False:
        return SourceFilter(fetch=False)
    if isinstance(value, (str, list)):
        return SourceFilter(True, _patterns(value, "_source"))
    if isinstance(value, dict):
        unknown = set(value) - {"includes", "excludes", "include", "exclude"}
        if unknown:
            raise RequestError(f"[_source] does not support [{sorted(unknown)[0]}]")
        return SourceFilter(True, _patterns(value.get("includes", value.get("include")), "includes"),
                            _patterns(value.get("excludes", value.get("exclude")), "excludes"))
    raise RequestError("[_source] must be a boolean, a string, an array or an object")
