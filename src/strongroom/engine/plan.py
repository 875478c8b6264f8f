"""The engine's query plan: a small typed tree the engine can execute, and its compilation to tantivy.

The query layer parses the Elasticsearch DSL into these nodes (and rewrites them for the caller's
policy); the engine turns them into tantivy queries, per shard. Client text never reaches
tantivy's own query parser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

import tantivy

from ..errors import RequestError
from .mapping import FieldType, Mapping

Occur = tantivy.Occur


@dataclass(frozen=True)
class MatchAll:
    boost: float = 1.0


@dataclass(frozen=True)
class MatchNone:
    pass


@dataclass(frozen=True)
class Term:
    field: str
    value: Any
    boost: float = 1.0


@dataclass(frozen=True)
class Terms:
    field: str
    values: tuple[Any, ...]
    boost: float = 1.0


@dataclass(frozen=True)
class Ids:
    values: tuple[str, ...]
    boost: float = 1.0


@dataclass(frozen=True)
class Exists:
    field: str
    boost: float = 1.0


@dataclass(frozen=True)
class Range:
    field: str
    gte: Any = None
    gt: Any = None
    lte: Any = None
    lt: Any = None
    boost: float = 1.0


@dataclass(frozen=True)
class Bool:
    must: tuple["Node", ...] = ()
    should: tuple["Node", ...] = ()
    filter: tuple["Node", ...] = ()
    must_not: tuple["Node", ...] = ()
    minimum_should_match: int | None = None
    boost: float = 1.0


@dataclass(frozen=True)
class ConstantScore:
    filter: "Node"
    boost: float = 1.0


Node = Union[MatchAll, MatchNone, Term, Terms, Ids, Exists, Range, Bool, ConstantScore]


@dataclass
class Compiler:
    """Compiles plan nodes for one shard's schema, resolving field paths through the mapping."""

    schema: tantivy.Schema
    mapping: Mapping
    slots: dict[str, Any]  # path -> Slot
    cache: dict[int, tantivy.Query] = field(default_factory=dict)

    def compile(self, node: Node) -> tantivy.Query:
        query = self._compile(node)
        boost = getattr(node, "boost", 1.0)
        if boost != 1.0 and not isinstance(node, (Bool, ConstantScore)):
            query = tantivy.Query.boost_query(query, boost)
        return query

    def _compile(self, node: Node) -> tantivy.Query:
        match node:
            case MatchAll():
                return tantivy.Query.all_query()
            case MatchNone():
                return tantivy.Query.empty_query()
            case Ids(values=values):
                if not values:
                    return tantivy.Query.empty_query()
                return tantivy.Query.term_set_query(self.schema, "_id", [v for v in values if v])
            case Term(field=path, value=value):
                return self._term(path, value)
            case Terms(field=path, values=values):
                return self._terms(path, values)
            case Exists(field=path):
                return self._exists(path)
            case Range():
                return self._range(node)
            case ConstantScore(filter=inner, boost=boost):
                return tantivy.Query.const_score_query(self.compile(inner), boost)
            case Bool():
                return self._bool(node)
        raise AssertionError(f"unknown plan node {node!r}")

    def _field(self, path: str) -> tuple[FieldType, Any] | None:
        field_type = self.mapping.fields.get(path)
        slot = self.slots.get(path)
        if field_type is None or slot is None:
            return None
        return field_type, slot

    def _value(self, field_type: FieldType, value: Any) -> Any:
        if field_type.type == "text":
            if isinstance(value, (dict, list)):
                raise RequestError(f"[term] query does not support a structured value on field [{field_type.path}]")
            return value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
        try:
            converted = field_type._convert(value)
        except (ValueError, TypeError, OverflowError) as exc:
            raise RequestError(f"failed to create query: value for field [{field_type.path}] of type "
                               f"[{field_type.type}] cannot be parsed") from exc
        if converted is None:  # keyword longer than ignore_above: it was never indexed.
            return None
        return converted

    def _term(self, path: str, value: Any) -> tantivy.Query:
        if path == "_id":
            return tantivy.Query.term_query(self.schema, "_id", str(value)) if value else tantivy.Query.empty_query()
        resolved = self._field(path)
        if resolved is None:
            return tantivy.Query.empty_query()
        field_type, slot = resolved
        converted = self._value(field_type, value)
        if converted is None:
            return tantivy.Query.empty_query()
        return tantivy.Query.term_query(self.schema, slot.name, converted)

    def _terms(self, path: str, values: tuple[Any, ...]) -> tantivy.Query:
        if path == "_id":
            return self._compile(Ids(tuple(str(v) for v in values)))
        resolved = self._field(path)
        if resolved is None or not values:
            return tantivy.Query.empty_query()
        field_type, slot = resolved
        converted = [c for c in (self._value(field_type, v) for v in values) if c is not None]
        if not converted:
            return tantivy.Query.empty_query()
        return tantivy.Query.term_set_query(self.schema, slot.name, converted)

    def _exists(self, path: str) -> tantivy.Query:
        if path == "_id":
            return tantivy.Query.all_query()
        return tantivy.Query.term_query(self.schema, "_field_names", path)

    def _range(self, node: Range) -> tantivy.Query:
        resolved = self._field(node.field)
        if resolved is None:
            return tantivy.Query.empty_query()
        field_type, slot = resolved
        kinds = {"i64": tantivy.FieldType.Integer, "f64": tantivy.FieldType.Float}
        if slot.kind not in kinds:
            raise RequestError(f"[range] queries on field [{node.field}] of type [{field_type.type}] are not "
                               "supported yet")
        lower, include_lower = (node.gte, True) if node.gte is not None else (node.gt, False)
        upper, include_upper = (node.lte, True) if node.lte is not None else (node.lt, False)
        lower = self._value(field_type, lower) if lower is not None else None
        upper = self._value(field_type, upper) if upper is not None else None
        if lower is None and upper is None:
            return self._exists(node.field)
        # tantivy wants an unbounded side to be "inclusive".
        return tantivy.Query.range_query(self.schema, slot.name, kinds[slot.kind], lower, upper,
                                         include_lower or lower is None, include_upper or upper is None)

    def _bool(self, node: Bool) -> tantivy.Query:
        clauses: list[tuple[tantivy.Occur, tantivy.Query]] = []
        clauses += [(Occur.Must, self.compile(n)) for n in node.must]
        clauses += [(Occur.Must, tantivy.Query.const_score_query(self.compile(n), 0.0)) for n in node.filter]
        clauses += [(Occur.MustNot, self.compile(n)) for n in node.must_not]
        should = [(Occur.Should, self.compile(n)) for n in node.should]
        msm = node.minimum_should_match
        if msm is None:
            msm = 0 if (node.must or node.filter) else (1 if should else 0)
        if should and msm > len(should):
            return tantivy.Query.empty_query()
        if not clauses and not should:
            query = tantivy.Query.all_query()
        elif should and msm > 0:
            query = tantivy.Query.boolean_query(clauses + should, msm)
        else:
            query = tantivy.Query.boolean_query(clauses + should)
        if not node.must and not node.should and node.must_not and not node.filter:
            # Only exclusions: Elasticsearch matches everything else.
            query = tantivy.Query.boolean_query([(Occur.Must, tantivy.Query.all_query())] + clauses)
        if node.boost != 1.0:
            query = tantivy.Query.boost_query(query, node.boost)
        return query
