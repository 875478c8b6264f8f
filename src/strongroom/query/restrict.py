"""Policy rewrite of query trees: field level security inside queries.

The security layer knows, for each field, three regions of the caller's documents:

- `visible`: where the field is shown at all (clear or masked) — what `exists` may look at;
- `probe`:   where an exact-value probe (`term`, `terms`) may match — where the field is clear, or
             masked under a role that allows `searchable_masked`;
- `clear`:   where the field is shown in clear — what every other query may look at.

A region is `EVERYWHERE` (every document the caller may see), `NOWHERE`, or a query node. Each leaf
is rewritten to match only inside its region (`leaf AND region`), so a query can never tell
anything about a value the caller may not see: outside the region the leaf is false whatever the
value, and `must_not` of it is true whatever the value. A field named explicitly whose region is
`NOWHERE` is refused (403); fields reached through a pattern (`*`, `name.*`) are dropped silently,
as Elasticsearch does with fields outside field security.

This module decides nothing about roles; it only applies the regions it is given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ..engine.plan import (Bool, DisMax, Exists, Fuzzy, Ids, Match, MatchAll, MatchBoolPrefix, MatchNone,
                           MatchPhrase, MatchPhrasePrefix, MultiMatch, Node, Prefix, Range, Regexp, Term, Terms,
                           Wildcard, combine_per_field, map_children, match_over_pattern)


class _Everywhere:
    def __repr__(self) -> str:
        return "EVERYWHERE"


class _Nowhere:
    def __repr__(self) -> str:
        return "NOWHERE"


EVERYWHERE: Any = _Everywhere()
NOWHERE: Any = _Nowhere()
Region = Any  # EVERYWHERE | NOWHERE | Node

# Fields every reader may query: they describe the document, not the person.
META_FIELDS = frozenset({"_id", "_index", "_routing", "_seq_no", "_version", "_primary_term", "_doc_count"})
TEXTUAL = ("text", "keyword")


@dataclass(frozen=True)
class FieldRegions:
    visible: Region
    probe: Region
    clear: Region


ALL_CLEAR = FieldRegions(EVERYWHERE, EVERYWHERE, EVERYWHERE)


class Denied(Exception):
    """A field the caller may not use this way; the security layer turns it into a 403."""

    def __init__(self, field: str, why: str) -> None:
        super().__init__(field, why)
        self.field = field
        self.why = why


def within(node: Node, region: Region) -> Node:
    if region is EVERYWHERE:
        return node
    if region is NOWHERE:
        return MatchNone()
    return Bool(must=(node,), filter=(region,))


class Restrictor:
    """Rewrites query trees for one index. `regions(path)` gives a field's regions; `fields(pattern)`
    lists the mapped fields a pattern names as (path, kind) pairs, as the compiler expands them."""

    def __init__(self, regions: Callable[[str], FieldRegions], fields: Callable[[str], list[tuple[str, str]]]) -> None:
        self._regions = regions
        self._fields = fields

    def regions(self, path: str) -> FieldRegions:
        if path in META_FIELDS:
            return ALL_CLEAR
        return self._regions(path)

    def require_clear(self, path: str, what: str) -> None:
        """Sorting and aggregating read every value of a field: only a field clear everywhere may."""
        regions = self.regions(path)
        if regions.clear is not EVERYWHERE:
            raise Denied(path, f"{what} needs the field in clear on every document this role can see")

    # -- rewriting ---------------------------------------------------------------------------
    def rewrite(self, node: Node) -> Node:
        compound = map_children(node, self.rewrite)
        if compound is not None:
            return compound
        match node:
            case MatchAll() | MatchNone() | Ids():
                return node
            case Exists():
                if "*" in node.field:
                    return self._per_field(node, self._fields(node.field), "visible")
                return self._leaf(node, node.field, "visible")
            case Term() | Terms():
                return self._leaf(node, node.field, "probe")
            case Match() if "*" in node.field:
                return self._multi_match(match_over_pattern(node))
            case MultiMatch():
                return self._multi_match(node)
            case Prefix() | Wildcard() | Regexp() | Fuzzy() if node.normalize and "*" in node.field:
                paths = [(p, k) for p, k in self._fields(node.field) if k in TEXTUAL]
                return self._per_field(node, paths, "clear")
            case Range() | Match() | MatchPhrase() | MatchPhrasePrefix() | MatchBoolPrefix() | Prefix() | Wildcard() \
                    | Regexp() | Fuzzy():
                return self._leaf(node, node.field, "clear")
        raise AssertionError(f"the policy rewrite does not know {type(node).__name__}")

    def _leaf(self, node: Node, path: str, kind: str) -> Node:
        regions = self.regions(path)
        region = getattr(regions, kind)
        if region is NOWHERE:
            if regions.visible is NOWHERE:
                raise Denied(path, "the field is not visible to this role")
            if kind == "probe":
                raise Denied(path, "the field is masked and this role may not search it by value "
                                   "(searchable_masked)")
            raise Denied(path, "the field is masked for this role; only exact-value term queries may use it, "
                               "where the role allows it")
        return within(node, region)

    def _per_field(self, node: Any, paths: list[tuple[str, str]], kind: str) -> Node:
        """A pattern leaf: one leaf per field the caller may use (others dropped), best one wins."""
        parts = []
        for path, _kind in paths:
            region = getattr(self.regions(path), kind)
            if region is not NOWHERE:
                parts.append(within(replace(node, field=path), region))
        if not parts:
            return MatchNone()
        if isinstance(node, Exists):
            return parts[0] if len(parts) == 1 else Bool(should=tuple(parts))
        return parts[0] if len(parts) == 1 else DisMax(tuple(parts), 0.0)

    def _multi_match(self, node: MultiMatch) -> Node:
        patterns = node.fields or (("*", 1.0),)
        clear: list[tuple[str, float]] = []
        regional: list[tuple[str, float, Node]] = []
        changed = False
        for pattern, boost in patterns:
            is_pattern = "*" in pattern
            paths = self._fields(pattern) if is_pattern else [(pattern, "")]
            for path, _kind in paths:
                region = self.regions(path).clear
                if region is EVERYWHERE:
                    clear.append((path, boost))
                    continue
                changed = True
                if region is NOWHERE:
                    if not is_pattern:
                        self._leaf(Match(path, node.query), path, "clear")  # raises the 403
                    continue
                regional.append((path, boost, region))
        if not changed:
            return node
        lenient = node.lenient or any("*" in p for p, _ in patterns)
        parts: list[Node] = []
        if clear:
            parts.append(replace(node, fields=tuple(clear), lenient=lenient))
        for path, boost, region in regional:
            parts.append(within(replace(node, fields=((path, boost),), lenient=lenient), region))
        return combine_per_field(node, parts)
