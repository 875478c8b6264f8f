"""What one principal may see of one index, for one request: document and field level security.

Built from the policy's `IndexGrant` (layers that must all allow — an API key and its owner —
each a union of role views). It gives the engine two things, and filters every output:

- `restriction`: the documents that exist for the caller, AND over layers of OR over the views'
  document queries. Searches, counts, aggregations, scrolls, explain and by-query requests run on
  targets scoped to it; get and mget treat a document outside it as missing.
- `transform`: the policy rewrite of each query (query/restrict.py), from each field's regions:
  a field is clear on a document only where a view that shows it clear also matches the document.
- `doc_filters`: per returned document, which fields are hidden, masked (and how) or clear, applied
  to `_source`, `fields`, `docvalue_fields`, highlight and top_hits.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ..engine.aggs import AggNode, TopHitsAgg
from ..engine.index import Index
from ..engine.plan import Bool, Node, expand_slots
from ..engine.search import SearchSpec, Target, matching_ids
from ..errors import FieldSecurityError
from ..query.dsl import parse_query
from ..query.restrict import EVERYWHERE, NOWHERE, Denied, FieldRegions, Region, Restrictor
from .masks import STRICTNESS, Masker, strictest
from .policy import IndexGrant, RoleView

_DROP = object()


@functools.lru_cache(maxsize=1024)
def _parse(query_json: bytes) -> Node:
    return parse_query(orjson.loads(query_json))


@dataclass(frozen=True)
class _View:
    role: RoleView
    node: Node | None  # the parsed document query; None: every document
    key: int  # position among all views of the grant

    def allows(self, path: str) -> bool:
        return self.role.fields.allows(path)

    def mask(self, path: str) -> str | None:
        return self.role.mask_of(path)


def _or(nodes: list[Node]) -> Node:
    return nodes[0] if len(nodes) == 1 else Bool(should=tuple(nodes), minimum_should_match=1)


def _and(nodes: list[Node]) -> Node:
    return nodes[0] if len(nodes) == 1 else Bool(filter=tuple(nodes))


class Access:
    def __init__(self, grant: IndexGrant, index: Index, masker: Masker, principal: str) -> None:
        self.grant = grant
        self.index = index
        self.principal = principal
        self._masker = masker
        self.layers: list[list[_View]] = []
        count = 0
        for layer in grant.layers:
            views = []
            for role in layer:
                node = _parse(orjson.dumps(role.query, option=orjson.OPT_SORT_KEYS)) if role.query is not None \
                    else None
                views.append(_View(role, node, count))
                count += 1
            self.layers.append(views)
        self.restriction = self._restriction()
        self.fields_restricted = any(not v.role.fields.unrestricted or v.role.masks
                                     for layer in self.layers for v in layer)
        self._restrictor = Restrictor(self._regions, self._fields) if self.fields_restricted else None
        self._region_cache: dict[str, FieldRegions] = {}

    @property
    def unrestricted(self) -> bool:
        return self.restriction is None and not self.fields_restricted

    def _restriction(self) -> Node | None:
        per_layer = []
        for layer in self.layers:
            if any(v.node is None for v in layer):
                continue
            per_layer.append(_or([v.node for v in layer if v.node is not None]))
        return _and(per_layer) if per_layer else None

    # -- queries -----------------------------------------------------------------------------
    def _fields(self, pattern: str) -> list[tuple[str, str]]:
        slots = self.index.slots
        return [(path, slots[path].kind) for path in expand_slots(slots, pattern)]

    def _region(self, path: str, keep: Any) -> Region:
        per_layer = []
        for layer in self.layers:
            chosen = [v for v in layer if keep(v, path)]
            if not chosen:
                return NOWHERE
            if len(chosen) == len(layer) or any(v.node is None for v in chosen):
                continue  # the layer's own part of the restriction already says it
            per_layer.append(_or([v.node for v in chosen if v.node is not None]))
        return EVERYWHERE if not per_layer else _and(per_layer)

    def _regions(self, path: str) -> FieldRegions:
        cached = self._region_cache.get(path)
        if cached is None:
            cached = FieldRegions(
                self._region(path, lambda v, p: v.allows(p)),
                self._region(path, lambda v, p: v.allows(p) and (v.mask(p) is None or v.role.searchable_masked)),
                self._region(path, lambda v, p: v.allows(p) and v.mask(p) is None))
            self._region_cache[path] = cached
        return cached

    def may_see(self, path: str) -> bool:
        """Whether the field is shown (clear or masked) on any document the caller may see."""
        return self._regions(path).visible is not NOWHERE

    def _denied(self, denied: Denied) -> FieldSecurityError:
        return FieldSecurityError(self.principal, denied.field, denied.why)

    def transform(self, node: Node) -> Node:
        if self._restrictor is None:
            return node
        try:
            return self._restrictor.rewrite(node)
        except Denied as denied:
            raise self._denied(denied) from None

    def check_request(self, spec: SearchSpec, aggs: dict[str, AggNode] | None) -> None:
        """Refuses sorting, collapsing or aggregating on a field that is not clear everywhere, and
        rewrites (so checks) the query and post filter early, before any engine work."""
        if self._restrictor is None:
            return
        self.transform(spec.query)
        if spec.post_filter is not None:
            self.transform(spec.post_filter)
        try:
            for key in spec.sort or ():
                if key.field not in ("_score", "_doc", "_shard_doc"):
                    self._restrictor.require_clear(key.field, "sorting")
            if aggs:
                self._check_aggs(aggs)
        except Denied as denied:
            raise self._denied(denied) from None

    def _check_aggs(self, aggs: dict[str, AggNode]) -> None:
        assert self._restrictor is not None
        for node in aggs.values():
            path = getattr(node, "field", None)
            if isinstance(path, str):
                self._restrictor.require_clear(path, "aggregating")
            if isinstance(node, TopHitsAgg):
                for key in node.sort or ():
                    if key.field not in ("_score", "_doc"):
                        self._restrictor.require_clear(key.field, "sorting")
            for query in (getattr(node, "query", None), *(q for _, q in getattr(node, "filters", ()))):
                if query is not None:
                    self.transform(query)
            sub = getattr(node, "aggs", None)
            if sub:
                self._check_aggs(sub)

    # -- outputs -----------------------------------------------------------------------------
    def doc_filters(self, targets: Sequence[Target], ids: Sequence[str]) -> dict[str, "DocFilter"]:
        """The output filter of each document (by id); documents outside the restriction get none."""
        if not self.fields_restricted or not ids:
            return {}
        matched: dict[str, set[int]] = {doc_id: set() for doc_id in ids}
        by_query: dict[int, list[_View]] = {}
        for layer in self.layers:
            for view in layer:
                if view.node is None:
                    for keys in matched.values():
                        keys.add(view.key)
                else:
                    by_query.setdefault(id(view.node), []).append(view)
        for views in by_query.values():
            for doc_id in matching_ids(targets, views[0].node, list(ids)):  # type: ignore[arg-type]
                matched[doc_id].update(v.key for v in views)
        filters: dict[frozenset[int], DocFilter] = {}
        out = {}
        for doc_id, keys in matched.items():
            frozen = frozenset(keys)
            if frozen not in filters:
                filters[frozen] = DocFilter([[v for v in layer if v.key in frozen] for layer in self.layers],
                                            self._masker)
            out[doc_id] = filters[frozen]
        return out


class DocFilter:
    """Field visibility on one document: the views that match it, layer by layer."""

    def __init__(self, layers: list[list[_View]], masker: Masker) -> None:
        self._layers = layers
        self._masker = masker
        self._status: dict[str, str] = {}

    def status(self, path: str) -> str:
        """"clear", "hidden", or the name of the mask to apply."""
        cached = self._status.get(path)
        if cached is not None:
            return cached
        result = "clear"
        masks: set[str] = set()
        for layer in self._layers:
            allowed = [v for v in layer if v.allows(path)]
            if not allowed:
                result = "hidden"
                break
            kinds = [v.mask(path) for v in allowed]
            if any(kind is None for kind in kinds):
                continue
            # Within a layer (a union of roles) the most revealing mask applies; across layers the strictest.
            masks.add(max((k for k in kinds if k is not None), key=STRICTNESS.index))
        if result != "hidden" and masks:
            result = strictest(masks)
        self._status[path] = result
        return result

    def source(self, document: dict[str, Any]) -> dict[str, Any]:
        out = self._walk(document, "")
        return out if isinstance(out, dict) else {}

    def _walk(self, value: Any, path: str) -> Any:
        if isinstance(value, dict):
            out = {}
            for key, child in value.items():
                kept = self._walk(child, f"{path}.{key}" if path else key)
                if kept is not _DROP:
                    out[key] = kept
            return _DROP if value and not out and path else out
        if isinstance(value, list):
            items = [kept for kept in (self._walk(item, path) for item in value) if kept is not _DROP]
            return _DROP if value and not items else items
        status = self.status(path)
        if status == "clear":
            return value
        if status == "hidden":
            return _DROP
        return self._masker.apply(status, value)

    def values(self, path: str, values: list[Any]) -> list[Any] | None:
        status = self.status(path)
        if status == "clear":
            return values
        if status == "hidden":
            return None
        return [self._masker.apply(status, v) for v in values]

    def shows_clear(self, path: str) -> bool:
        return self.status(path) == "clear"
