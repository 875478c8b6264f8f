"""Mappings: Elasticsearch's field types, dynamic mapping rules and value coercion.

A `Mapping` is immutable. Parsing a document against it yields the typed values per field path
and, when dynamic mapping introduces fields, the mapping fragment to merge before indexing.
Mappings only grow: fields are added, never retyped (as in Elasticsearch).
"""

from __future__ import annotations

import base64
import ipaddress
import math
import re
import struct
from collections.abc import Iterator, Mapping as MappingABC
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ..errors import IllegalArgumentError, MapperParsingError, StrictDynamicMappingError
from .analysis import ANALYZERS
from .dates import DEFAULT_DYNAMIC_DATE_FORMATS, DEFAULT_FORMAT, DateFormat, DateFormatError, DateParseError
from .dates import detect_dynamic_date

INTEGER_RANGES = {
    "long": (-(2**63), 2**63 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "short": (-(2**15), 2**15 - 1),
    "byte": (-(2**7), 2**7 - 1),
}
FLOAT_TYPES = frozenset({"double", "float", "half_float", "scaled_float"})
LEAF_TYPES = frozenset({"text", "match_only_text", "keyword", "date", "boolean", "ip", "binary", "geo_point",
                        *INTEGER_RANGES, *FLOAT_TYPES})
UNINDEXED_TYPES = frozenset({"binary", "geo_point"})  # kept in _source, `exists` only (no slot)
NUMERIC_TYPES = frozenset({*INTEGER_RANGES, *FLOAT_TYPES})
METADATA_FIELDS = frozenset({"_id", "_index", "_source", "_routing", "_seq_no", "_version", "_primary_term",
                             "_field_names", "_ignored", "_doc_count", "_tier", "_data_stream_timestamp"})

_COMMON = {"type", "index", "store", "doc_values", "fields", "meta", "copy_to", "protect"}
PROTECT_LEVELS = ("none", "blind", "encrypt")
PROTECTABLE = frozenset({"text", "keyword", "date", "boolean", *INTEGER_RANGES, "double", "float", "half_float"})
ALLOWED_PARAMS: dict[str, frozenset[str]] = {
    "text": frozenset(_COMMON | {"analyzer", "search_analyzer", "search_quote_analyzer", "norms", "index_options",
                                 "position_increment_gap", "term_vector", "fielddata", "eager_global_ordinals",
                                 "index_phrases", "index_prefixes", "similarity"}),
    "keyword": frozenset(_COMMON | {"ignore_above", "null_value", "normalizer", "eager_global_ordinals",
                                    "split_queries_on_whitespace", "similarity", "norms", "index_options",
                                    "blind_prefixes"}),
    "date": frozenset(_COMMON | {"format", "locale", "null_value", "ignore_malformed"}),
    "boolean": frozenset(_COMMON | {"null_value"}),
    **{t: frozenset(_COMMON | {"null_value", "coerce", "ignore_malformed"}) for t in INTEGER_RANGES},
    **{t: frozenset(_COMMON | {"null_value", "coerce", "ignore_malformed"}) for t in ("double", "float", "half_float")},
    "scaled_float": frozenset(_COMMON | {"null_value", "coerce", "ignore_malformed", "scaling_factor"}),
    "match_only_text": frozenset({"type", "fields", "meta", "analyzer", "search_analyzer", "search_quote_analyzer",
                                  "copy_to"}),
    "ip": frozenset(_COMMON | {"null_value", "ignore_malformed"}),
    "binary": frozenset({"type", "doc_values", "store", "meta", "copy_to"}),
    "geo_point": frozenset(_COMMON | {"ignore_malformed", "ignore_z_value", "null_value"}),
}
OBJECT_PARAMS = frozenset({"type", "properties", "dynamic", "enabled", "subobjects"})
ROOT_PARAMS = frozenset({"properties", "dynamic", "_source", "_routing", "date_detection", "numeric_detection",
                         "dynamic_date_formats", "_meta", "dynamic_templates", "enabled"})
UNSUPPORTED = {"nested": "nested fields", "flattened": "flattened fields", "join": "join fields",
               "geo_shape": "geo_shape fields", "dense_vector": "dense vectors", "wildcard": "wildcard fields",
               "completion": "completion fields", "search_as_you_type": "search_as_you_type fields",
               "percolator": "percolator fields", "alias": "field aliases", "unsigned_long": "unsigned_long fields",
               "constant_keyword": "constant_keyword fields",
               "integer_range": "range fields", "long_range": "range fields", "date_range": "range fields",
               "float_range": "range fields", "double_range": "range fields", "ip_range": "range fields",
               "token_count": "token_count fields", "histogram": "histogram fields", "version": "version fields",
               "date_nanos": "date_nanos fields", "rank_feature": "rank_feature fields",
               "rank_features": "rank_features fields", "sparse_vector": "sparse vectors"}

DYNAMIC_VALUES = {"true": "true", "false": "false", "strict": "strict", True: "true", False: "false"}
MAX_KEYWORD_BYTES = 32766  # Lucene's term limit; tantivy's is higher, Elasticsearch users expect this one.


def _bool_param(value: Any, name: str, path: str) -> bool:
    if value in (True, "true"):
        return True
    if value in (False, "false"):
        return False
    raise MapperParsingError(f"Failed to parse mapping: Cannot parse value [{value}] as only [true] or [false] "
                             f"are allowed for parameter [{name}] of field [{path}]")


@dataclass(frozen=True)
class FieldType:
    """One leaf field: `name.keyword` style multi-fields are fields of their own."""

    path: str
    type: str
    params: MappingABC[str, Any]
    subfields: tuple["FieldType", ...] = ()
    parent: str | None = None  # Set for multi-fields: the path whose values they index too.
    date_format: DateFormat | None = None

    @cached_property
    def protect(self) -> str:
        """none | blind (indexed as keyed tokens computed above the engine) | encrypt (not indexed)."""
        return str(self.params.get("protect", "none"))

    @cached_property
    def indexed(self) -> bool:
        return self.params.get("index", True) not in (False, "false") and self.protect != "encrypt"

    @cached_property
    def ancestry(self) -> tuple[str, ...]:
        """This field's path and every parent object path: the `_field_names` it contributes."""
        parts = self.path.split(".")
        return tuple(".".join(parts[:i]) for i in range(len(parts), 0, -1))

    @cached_property
    def _plain_string_limit(self) -> int:
        """Strings up to this many characters need no check beyond their type (-1: always check)."""
        if self.type == "text":
            return 1 << 62
        if self.type == "keyword" and "normalizer" not in self.params:
            limit = MAX_KEYWORD_BYTES // 4  # UTF-8 needs at most 4 bytes a character.
            if self.ignore_above is not None:
                limit = min(limit, self.ignore_above // 2)  # ignore_above counts UTF-16 units.
            return limit
        return -1

    @cached_property
    def ignore_above(self) -> int | None:
        value = self.params.get("ignore_above")
        return int(value) if value is not None else None

    def to_es(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, **self.params}
        if self.subfields:
            out["fields"] = {sub.path.rsplit(".", 1)[1]: sub.to_es() for sub in self.subfields}
        return out

    # -- value coercion --------------------------------------------------------------------
    def convert(self, value: Any, doc_id: str | None) -> Any:
        """The indexed value of one JSON value, or None when it is skipped (ignore_above, malformed+ignored)."""
        if type(value) is str and len(value) <= self._plain_string_limit:
            return value  # The common case: a string for a text or keyword field.
        if self.protect == "blind":
            return str(value)  # Tokens (strings), whatever the declared type: the layer above made them.
        try:
            return self._convert(value)
        except (ValueError, TypeError, OverflowError, DateParseError) as exc:
            if self.params.get("ignore_malformed") in (True, "true"):
                return None
            detail = str(exc) if isinstance(exc, _Explained) else None
            where = f" in document with id '{doc_id}'" if doc_id is not None else ""
            message = f"failed to parse field [{self.path}] of type [{self.type}]{where}"
            # The value itself is never echoed: it may be a protected value headed for an audit log.
            raise MapperParsingError(message + (f". {detail}" if detail else "")) from None

    def _convert(self, value: Any) -> Any:
        kind = self.type
        if kind == "geo_point":
            return _geo_point(value)
        if isinstance(value, (dict, list)):
            raise _Explained("Expected a single value but found an object or array")
        if value == "" and kind in NUMERIC_TYPES and self._coerce_allowed():
            return None  # Elasticsearch reads an empty string as null for numbers.
        if kind == "text" or kind == "match_only_text":
            return value if isinstance(value, str) else _scalar_text(value)
        if kind == "ip":
            if not isinstance(value, str):
                raise _Explained("an ip address must be a string")
            return str(ipaddress.ip_address(value.strip()))
        if kind == "binary":
            if not isinstance(value, str):
                raise _Explained("a binary value must be a base64 string")
            base64.b64decode(value, validate=True)
            return value
        if kind == "keyword":
            text = value if isinstance(value, str) else _scalar_text(value)
            limit = self.ignore_above
            if limit is not None and len(text) > limit // 2 and _utf16_length(text) > limit:
                return None
            if len(text.encode()) > MAX_KEYWORD_BYTES:
                raise _Explained(f"Document contains at least one immense term (longer than {MAX_KEYWORD_BYTES} "
                                 "bytes); use ignore_above to skip such values")
            if self.params.get("normalizer") == "lowercase":
                text = text.lower()
            return text
        if kind in INTEGER_RANGES:
            return self._integer(value)
        if kind in FLOAT_TYPES:
            return self._float(value)
        if kind == "boolean":
            if value is True or value == "true":
                return True
            if value is False or value in ("false", ""):
                return False
            raise _Explained("Failed to parse value as only [true] or [false] are allowed")
        if kind == "date":
            assert self.date_format is not None
            if isinstance(value, bool):
                raise _Explained("a boolean is not a date")
            return self.date_format.parse(value)
        raise AssertionError(kind)

    def _coerce_allowed(self) -> bool:
        return self.params.get("coerce", True) not in (False, "false")

    def _integer(self, value: Any) -> int:
        if isinstance(value, bool):
            raise _Explained("a boolean is not a number")
        if isinstance(value, int):
            number = value
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise _Explained("the value is not finite")
            if value != int(value) and not self._coerce_allowed():
                raise _Explained("Value has a decimal part")
            number = int(value)
        elif isinstance(value, str) and self._coerce_allowed():
            if not _NUMBER.match(value):
                raise ValueError("not a number")
            if _INTEGER.match(value):
                number = int(value)
            else:
                parsed = float(value)
                if not math.isfinite(parsed):
                    raise _Explained("the value is not finite") from None
                number = int(parsed)
        else:
            raise ValueError(type(value).__name__)
        low, high = INTEGER_RANGES[self.type]
        if not low <= number <= high:
            raise _Explained(f"Value is out of range for {'an' if self.type == 'integer' else 'a'} {self.type}")
        return number

    def _float(self, value: Any) -> float:
        if isinstance(value, bool):
            raise _Explained("a boolean is not a number")
        if isinstance(value, (int, float)):
            number = float(value)
        elif isinstance(value, str) and self._coerce_allowed():
            if not _NUMBER.match(value):
                raise ValueError("not a number")
            number = float(value)
        else:
            raise ValueError(type(value).__name__)
        if not math.isfinite(number):
            raise _Explained("the value is not finite")
        if self.type == "float":
            number = struct.unpack("<f", struct.pack("<f", number))[0]
        elif self.type == "half_float":
            number = struct.unpack("<e", struct.pack("<e", number))[0]
        elif self.type == "scaled_float":
            factor = float(self.params["scaling_factor"])
            number = math.floor(number * factor + 0.5) / factor  # Java's Math.round: half up.
        if not math.isfinite(number):
            raise _Explained(f"Value is out of range for a {self.type}")
        return number


# Java's number syntax (Double.parseDouble): no digit-group underscores, no surrounding spaces.
_NUMBER = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|NaN|Infinity)\Z")
_INTEGER = re.compile(r"[+-]?\d+\Z")
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z")


def _utf16_length(text: str) -> int:
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


_LAT_LON = re.compile(r"\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*\Z")
_WKT_POINT = re.compile(r"\s*POINT\s*\(\s*(-?\d+(?:\.\d+)?)\s+(-?\d+(?:\.\d+)?)(?:\s+-?\d+(?:\.\d+)?)?\s*\)\s*\Z",
                        re.IGNORECASE)
_GEOHASH = re.compile(r"[0-9bcdefghjkmnpqrstuvwxyz]{1,12}\Z")


def _geo_point(value: Any) -> tuple[float, float]:
    """A geo_point in any of Elasticsearch's forms → (lat, lon), range-checked."""
    if isinstance(value, dict):
        if set(value) == {"lat", "lon"}:
            lat, lon = float(value["lat"]), float(value["lon"])
        elif value.get("type", "").lower() == "point" and isinstance(value.get("coordinates"), list):
            lon, lat = (float(c) for c in value["coordinates"][:2])
        else:
            raise _Explained("a geo_point object needs [lat] and [lon]")
    elif isinstance(value, str):
        match = _LAT_LON.match(value)
        wkt = _WKT_POINT.match(value)
        if match:
            lat, lon = float(match.group(1)), float(match.group(2))
        elif wkt:
            lon, lat = float(wkt.group(1)), float(wkt.group(2))
        elif _GEOHASH.match(value):
            return (0.0, 0.0)  # A well-formed geohash; its cell is not needed while geo queries are unsupported.
        else:
            raise _Explained("unrecognised geo_point format")
    else:
        raise _Explained("unrecognised geo_point format")
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0) or math.isnan(lat) or math.isnan(lon):
        raise _Explained("geo_point latitude or longitude out of range")
    return (lat, lon)


class _Explained(ValueError):
    """A conversion failure whose message is safe to show (it never contains the value)."""


def _scalar_text(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return repr(value)  # 5.0 stays "5.0", as Elasticsearch renders it.
    return str(value)


@dataclass(frozen=True)
class ObjectType:
    path: str  # "" for the root
    properties: MappingABC[str, "FieldType | ObjectType"]
    dynamic: str | None = None  # None: inherit from the parent
    enabled: bool = True

    def to_es(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.path and not self.properties:
            out["type"] = "object"  # As Elasticsearch renders objects without properties.
        if self.dynamic is not None:
            out["dynamic"] = self.dynamic
        if not self.enabled:
            out["enabled"] = False
        if self.properties:
            out["properties"] = {name: node.to_es() for name, node in sorted(self.properties.items())}
        return out


@dataclass
class ParsedDocument:
    """Typed values of one document, keyed by field path, plus what dynamic mapping added."""

    values: list[tuple[str, Any]] = field(default_factory=list)
    field_names: set[str] = field(default_factory=set)
    additions: dict[str, Any] | None = None  # A `{"properties": …}` fragment, or None


@dataclass(frozen=True)
class MappingLimits:
    total_fields: int = 1000
    depth: int = 20


class Mapping:
    """An index's mapping. Build with `Mapping.parse_definition`; never mutate."""

    def __init__(self, root: ObjectType, root_params: MappingABC[str, Any], limits: MappingLimits) -> None:
        self.root = root
        self.root_params = dict(root_params)
        self.limits = limits
        self.fields: dict[str, FieldType] = {}
        self.objects: dict[str, ObjectType] = {}
        self._index(root)
        total = len(self.fields) + len(self.objects) - 1
        if total > limits.total_fields:
            raise IllegalArgumentError(f"Limit of total fields [{limits.total_fields}] has been exceeded")
        self.date_detection = root_params.get("date_detection", True) not in (False, "false")
        self.numeric_detection = root_params.get("numeric_detection", False) in (True, "true")
        self.dynamic_date_formats = tuple(root_params.get("dynamic_date_formats", DEFAULT_DYNAMIC_DATE_FORMATS))

    def _index(self, node: ObjectType) -> None:
        self.objects[node.path] = node
        for child in node.properties.values():
            if isinstance(child, ObjectType):
                self._index(child)
            else:
                self.fields[child.path] = child
                for sub in child.subfields:
                    self.fields[sub.path] = sub

    # -- definitions -----------------------------------------------------------------------
    @classmethod
    def parse_definition(cls, body: Any, limits: MappingLimits | None = None) -> "Mapping":
        """Validates a `mappings` body (Elasticsearch 8, typeless) and builds the mapping."""
        limits = limits or MappingLimits()
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise MapperParsingError("Failed to parse mapping: mappings must be an object")
        if "_doc" in body:
            raise IllegalArgumentError("The mapping definition cannot be nested under a type [_doc] unless "
                                       "include_type_name is set to true.")
        unknown = set(body) - ROOT_PARAMS
        if unknown:
            raise MapperParsingError(f"Root mapping definition has unsupported parameters:  "
                                     f"[{', '.join(sorted(unknown))}]")
        if body.get("dynamic_templates"):
            raise MapperParsingError("Failed to parse mapping: [dynamic_templates] are not supported by Strongroom")
        root_params = {k: v for k, v in body.items() if k not in ("properties", "dynamic", "enabled")}
        for name in ("_source", "_routing"):
            if name in root_params and not isinstance(root_params[name], dict):
                raise MapperParsingError(f"Failed to parse mapping: [{name}] must be an object")
        if body.get("_source", {}).get("enabled") in (False, "false"):
            raise MapperParsingError("Failed to parse mapping: disabling [_source] is not supported: "
                                     "Strongroom returns documents only from their sealed source")
        formats = root_params.get("dynamic_date_formats")
        if formats is not None:
            if not isinstance(formats, list) or not all(isinstance(f, str) for f in formats):
                raise MapperParsingError("Failed to parse mapping: [dynamic_date_formats] must be a list of strings")
            for spec in formats:
                _compile_format(spec, "dynamic_date_formats")
        root = _parse_object("", body, depth=1, limits=limits, root=True)
        return cls(root, root_params, limits)

    def merge(self, update: Any) -> "Mapping":
        """The mapping after adding `update` (a PUT _mapping body or a dynamic addition)."""
        incoming = Mapping.parse_definition(update, self.limits)
        root = _merge_objects(self.root, incoming.root)
        params = {**self.root_params, **incoming.root_params}
        return Mapping(root, params, self.limits)

    def to_es(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: v for k, v in self.root_params.items()}
        out.update(self.root.to_es())
        return out

    def dynamic_at(self, object_path: str) -> str:
        path = object_path
        while True:
            node = self.objects.get(path)
            if node is not None and node.dynamic is not None:
                return node.dynamic
            if not path:
                return "true"
            path = path.rsplit(".", 1)[0] if "." in path else ""

    # -- documents -------------------------------------------------------------------------
    def parse_document(self, source: Any, doc_id: str | None) -> ParsedDocument:
        if not isinstance(source, dict):
            raise MapperParsingError("failed to parse, document is empty" if source is None
                                     else "failed to parse: the document must be a JSON object")
        parser = _DocParser(self, doc_id)
        parser.walk_object(self.root, "", source, depth=1)
        parsed = ParsedDocument(parser.values, parser.field_names, parser.additions_fragment())
        return parsed


_NO_CHILDREN: dict[str, Any] = {}
_SCALARS = frozenset((str, int, float, bool))


class _DocParser:
    def __init__(self, mapping: Mapping, doc_id: str | None) -> None:
        self.mapping = mapping
        self.doc_id = doc_id
        self.values: list[tuple[str, Any]] = []
        self.field_names: set[str] = set()
        self.added: dict[str, FieldType | ObjectType] = {}  # path -> node created dynamically

    def node_at(self, path: str) -> FieldType | ObjectType | None:
        node = self.mapping.objects.get(path) or self.mapping.fields.get(path)
        if node is None:
            node = self.added.get(path)
        return node

    def walk_object(self, node: ObjectType | None, path: str, obj: dict[str, Any], depth: int) -> None:
        if depth > self.mapping.limits.depth:
            raise MapperParsingError(f"Limit of mapping depth [{self.mapping.limits.depth}] has been exceeded "
                                     f"due to object field [{path}]")
        if node is not None and not node.enabled:
            return
        children = node.properties if node is not None else _NO_CHILDREN
        for key, value in obj.items():
            child = children.get(key)
            kind = type(value)
            if child is not None and child.__class__ is FieldType and (
                    kind is str or kind is int or kind is float or kind is bool):
                self.emit(child, value)  # The common case: a mapped field with a scalar value.
                continue
            if kind is list and child is not None and child.__class__ is FieldType and child.type != "geo_point" \
                    and all(type(item) in _SCALARS for item in value):
                for item in value:  # As common: a flat array of scalars (blind tokens, tags), as walk_at would.
                    self.emit(child, item)
                continue
            if not path and key in METADATA_FIELDS:
                raise MapperParsingError(f"Field [{key}] is a metadata field and cannot be added inside a document. "
                                         "Use the index API request parameters.")
            _check_field_name(key, path)
            parts = key.split(".")
            self.walk_value(path, parts, value, depth)

    def walk_value(self, parent: str, parts: list[str], value: Any, depth: int) -> None:
        """`parts` is a dotted key split; intermediate parts are objects (as Elasticsearch expands them)."""
        for part in parts[:-1]:
            if not part.strip():
                raise MapperParsingError("field name cannot be an empty string")
            child = f"{parent}.{part}" if parent else part
            existing = self.node_at(child)
            if isinstance(existing, ObjectType) and not existing.enabled:
                return
            if isinstance(existing, FieldType):
                raise MapperParsingError(f"Could not dynamically add mapping for field [{child}.{parts[-1]}]. "
                                         f"Existing mapping for [{child}] must be of type object but found "
                                         f"[{existing.type}].")
            if existing is None:
                if not self._may_add(parent, child):
                    return
                self._add_object(child)
            parent = child
            depth += 1
        name = parts[-1]
        if not name.strip():
            raise MapperParsingError("field name cannot be an empty string")
        path = f"{parent}.{name}" if parent else name
        self.walk_at(parent, path, value, depth)

    def walk_at(self, parent: str, path: str, value: Any, depth: int) -> None:
        node = self.node_at(path)
        if isinstance(node, ObjectType) and not node.enabled:
            return  # A disabled object keeps whatever it holds in _source only.
        if node is None and (value is None or value == []):
            self._may_add(parent, path)  # Nothing to map, but strict still refuses the unknown field.
            return
        if isinstance(node, FieldType) and node.type == "geo_point" and isinstance(value, (dict, list)):
            points = [value] if isinstance(value, dict) or _is_coordinates(value) else value
            for point in points:
                if point is not None:
                    self.emit(node, {"lat": point[1], "lon": point[0]} if _is_coordinates(point) else point)
            return
        if isinstance(value, list):
            for item in _flatten(value):
                self.walk_at(parent, path, item, depth)
            return
        if value is None:
            if isinstance(node, FieldType) and "null_value" in node.params:
                self.emit(node, node.params["null_value"])
            return
        if isinstance(value, dict):
            if isinstance(node, FieldType):
                raise MapperParsingError(f"failed to parse field [{path}] of type [{node.type}] in document with "
                                         f"id '{self.doc_id}'. Expected a single value but found an object")
            if node is None:
                if not self._may_add(parent, path):
                    return
                node = self._add_object(path)
            obj_node = self.mapping.objects.get(path)
            self.walk_object(obj_node, path, value, depth + 1)
            if value:
                self.field_names.add(path)
            return
        if isinstance(node, ObjectType):
            raise MapperParsingError(f"object mapping for [{path}] tried to parse field [{path}] as object, but "
                                     "found a concrete value")
        if node is None:
            if not self._may_add(parent, path):
                return
            node = self._add_field(path, value)
        self.emit(node, value)

    def emit(self, node: FieldType, value: Any) -> None:
        converted = node.convert(value, self.doc_id)
        if converted is None and value == "" and node.type in NUMERIC_TYPES and "null_value" in node.params:
            converted = node.convert(node.params["null_value"], self.doc_id)
        if converted is not None and node.type in UNINDEXED_TYPES:
            self.field_names.update(node.ancestry)
        elif converted is not None and node.indexed:
            self.values.append((node.path, converted))
            self.field_names.update(node.ancestry)
        for sub in node.subfields:
            sub_value = sub.convert(value, self.doc_id)
            if sub_value is not None and sub.indexed:
                self.values.append((sub.path, sub_value))
                self.field_names.add(sub.path)

    def _may_add(self, parent: str, path: str) -> bool:
        mode = self.mapping.dynamic_at(parent) if parent in self.mapping.objects else self._added_dynamic(parent)
        if mode == "strict":
            raise StrictDynamicMappingError(parent, path.rsplit(".", 1)[-1])
        return mode == "true"

    def _added_dynamic(self, parent: str) -> str:
        # A dynamically added object inherits from its nearest mapped ancestor.
        path = parent
        while path and path not in self.mapping.objects:
            path = _parent(path)
        return self.mapping.dynamic_at(path)

    def _add_object(self, path: str) -> ObjectType:
        node = ObjectType(path, {})
        self.added[path] = node
        self._check_limits(path, is_object=True)
        return node

    def _add_field(self, path: str, value: Any) -> FieldType:
        definition = self._infer(value)
        node = _parse_field(path, definition, depth=path.count("."), limits=self.mapping.limits)
        self.added[path] = node
        for sub in node.subfields:
            self.added[sub.path] = sub
        self._check_limits(path, is_object=False)
        return node

    def _check_limits(self, path: str, *, is_object: bool) -> None:
        limits = self.mapping.limits
        if is_object and path.count(".") + 2 > limits.depth:
            raise MapperParsingError(f"Limit of mapping depth [{limits.depth}] has been exceeded due to object "
                                     f"field [{path}]")
        total = len(self.mapping.fields) + len(self.mapping.objects) - 1 + len(self.added)
        if total > limits.total_fields:
            raise IllegalArgumentError(f"Limit of total fields [{limits.total_fields}] has been exceeded while "
                                       f"adding new fields [{len(self.added)}]")

    def _infer(self, value: Any) -> dict[str, Any]:
        if isinstance(value, bool):
            return {"type": "boolean"}
        if isinstance(value, int):
            return {"type": "long"}
        if isinstance(value, float):
            return {"type": "float"}
        if isinstance(value, str):
            if self.mapping.numeric_detection and _DECIMAL.match(value):
                return {"type": "long" if _INTEGER.match(value) else "float"}
            if self.mapping.date_detection:
                matched = detect_dynamic_date(value, self.mapping.dynamic_date_formats)
                if matched is not None:
                    return {"type": "date"} if matched == "strict_date_optional_time" else \
                        {"type": "date", "format": matched}
            return {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
        raise MapperParsingError(f"failed to parse field [{value!r}]")  # Unreachable for JSON input.

    def additions_fragment(self) -> dict[str, Any] | None:
        if not self.added:
            return None
        root: dict[str, Any] = {}
        for path, node in self.added.items():
            if isinstance(node, FieldType) and node.parent is not None:
                continue  # Multi-fields travel with their parent.
            target = root
            parts = path.split(".")
            for part in parts[:-1]:
                target = target.setdefault("properties", {}).setdefault(part, {})
            leaf = target.setdefault("properties", {}).setdefault(parts[-1], {})
            if isinstance(node, FieldType):
                leaf.update(node.to_es())
        _mark_empty_objects(root)
        return root


def _mark_empty_objects(node: dict[str, Any]) -> None:
    """An object added without fields reads {"type": "object"}, as Elasticsearch renders it."""
    for child in node.get("properties", {}).values():
        if not child:
            child["type"] = "object"
        elif "properties" in child:
            _mark_empty_objects(child)


def _is_coordinates(value: Any) -> bool:
    return isinstance(value, list) and 2 <= len(value) <= 3 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)


def _flatten(values: list[Any]) -> Iterator[Any]:
    """Leaf items of nested arrays, iteratively (arrays do not count toward the depth limit)."""
    stack: list[Iterator[Any]] = [iter(values)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            yield item
        else:
            stack.pop()


def _parent(path: str) -> str:
    return path.rsplit(".", 1)[0] if "." in path else ""


def _check_field_name(key: str, parent: str) -> None:
    if not key:
        raise MapperParsingError("field name cannot be an empty string")
    if key.strip() == "" or key.strip(".") == "":
        raise MapperParsingError("field name cannot contain only whitespace or dots: ['" + key + "']")
    if key.startswith(".") or key.endswith("."):
        raise MapperParsingError(f"field name starting or ending with a [.] makes object resolution ambiguous: "
                                 f"[{key}]")


def _compile_format(spec: Any, path: str) -> DateFormat:
    if not isinstance(spec, str):
        raise MapperParsingError(f"Failed to parse mapping: [format] of field [{path}] must be a string")
    try:
        return DateFormat.compile(spec)
    except DateFormatError as exc:
        raise MapperParsingError(f"Failed to parse mapping: Error parsing [format] on field [{path}]: {exc}") from None


def _parse_object(path: str, body: dict[str, Any], *, depth: int, limits: MappingLimits, root: bool = False
                  ) -> ObjectType:
    """`depth` counts objects as Elasticsearch does: the root is 1, each nested object one more."""
    if not root and depth > limits.depth:
        raise MapperParsingError(f"Limit of mapping depth [{limits.depth}] has been exceeded due to object field "
                                 f"[{path}]")
    if not root:
        unknown = set(body) - OBJECT_PARAMS
        if unknown:
            raise MapperParsingError(f"Failed to parse mapping: unknown parameter [{sorted(unknown)[0]}] on "
                                     f"mapper [{path}] of type [object]")
    dynamic = body.get("dynamic")
    if dynamic is not None:
        if dynamic == "runtime":
            raise MapperParsingError("Failed to parse mapping: [dynamic: runtime] is not supported by Strongroom "
                                     "(runtime fields); use true, false or strict")
        if not isinstance(dynamic, (str, bool)) or dynamic not in DYNAMIC_VALUES:
            raise MapperParsingError(f"Failed to parse mapping: Could not convert [dynamic] to boolean or one of "
                                     f"[strict, runtime, true, false]: [{dynamic}]")
        dynamic = DYNAMIC_VALUES[dynamic]
    enabled = _bool_param(body.get("enabled", True), "enabled", path or "_doc")
    properties_body = body.get("properties", {})
    if not isinstance(properties_body, dict):
        raise MapperParsingError(f"Failed to parse mapping: [properties] of [{path or '_doc'}] must be an object")
    properties: dict[str, FieldType | ObjectType] = {}
    for raw_name, definition in properties_body.items():
        try:
            _check_field_name(raw_name, path)
        except MapperParsingError as exc:
            raise MapperParsingError(f"Failed to parse mapping: {exc.reason}") from IllegalArgumentError(exc.reason)
        if raw_name in METADATA_FIELDS and root:
            raise MapperParsingError(f"Failed to parse mapping: Field [{raw_name}] is defined more than once "
                                     "(it is a metadata field)")
        parts = raw_name.split(".")
        if len(parts) > 1:  # "a.b": {...} means {"a": {"properties": {"b": {...}}}}
            definition = _expand_dotted(parts[1:], definition)
        name = parts[0]
        child_path = f"{path}.{name}" if path else name
        node = _parse_node(child_path, definition, depth=depth + 1, limits=limits)
        if name in properties:
            node = _merge_nodes(properties[name], node)
        properties[name] = node
    return ObjectType(path, properties, dynamic, enabled)


def _expand_dotted(parts: list[str], definition: Any) -> dict[str, Any]:
    for part in reversed(parts):
        definition = {"properties": {part: definition}}
    return definition


def _parse_node(path: str, definition: Any, *, depth: int, limits: MappingLimits) -> FieldType | ObjectType:
    if not isinstance(definition, dict):
        raise MapperParsingError(f"Failed to parse mapping: Expected map for property [fields] on field [{path}] "
                                 f"but got a {type(definition).__name__}")
    kind = definition.get("type")
    if kind is None and ("properties" in definition or not definition or set(definition) <= OBJECT_PARAMS):
        return _parse_object(path, definition, depth=depth, limits=limits)
    if kind == "object":
        return _parse_object(path, definition, depth=depth, limits=limits)
    return _parse_field(path, definition, depth=depth, limits=limits)


def _parse_field(path: str, definition: dict[str, Any], *, depth: int, limits: MappingLimits,
                 parent: str | None = None) -> FieldType:
    kind = definition.get("type")
    if kind is None:
        raise MapperParsingError(f"Failed to parse mapping: No type specified for field [{path}]")
    if not isinstance(kind, str):
        raise MapperParsingError(f"Failed to parse mapping: the type of field [{path}] must be a string")
    if kind in UNSUPPORTED:
        raise MapperParsingError(f"Failed to parse mapping: {UNSUPPORTED[kind]} are not supported by Strongroom "
                                 f"(field [{path}])")
    if kind not in LEAF_TYPES:
        raise MapperParsingError(f"Failed to parse mapping: No handler for type [{kind}] declared on field [{path}]")
    params = {k: v for k, v in definition.items() if k not in ("type", "fields")}
    unknown = set(params) - ALLOWED_PARAMS[kind]
    if unknown:
        raise MapperParsingError(f"Failed to parse mapping: unknown parameter [{sorted(unknown)[0]}] on mapper "
                                 f"[{path}] of type [{kind}]")
    if "copy_to" in params:
        raise MapperParsingError(f"Failed to parse mapping: [copy_to] is not supported by Strongroom (field [{path}])")
    for flag in ("index", "store", "doc_values", "norms", "coerce", "ignore_malformed", "eager_global_ordinals"):
        if flag in params:
            _bool_param(params[flag], flag, path)
    if params.get("fielddata") in (True, "true"):
        raise MapperParsingError(f"Failed to parse mapping: [fielddata] on text field [{path}] is not supported; "
                                 "aggregate on a keyword sub-field")
    for name in ("analyzer", "search_analyzer", "search_quote_analyzer"):
        if name in params and params[name] not in ANALYZERS:
            raise MapperParsingError(f"Failed to parse mapping: analyzer [{params[name]}] has not been configured "
                                     f"in mappings")
    if params.get("similarity") not in (None, "BM25"):
        raise MapperParsingError(f"Failed to parse mapping: similarity [{params['similarity']}] is not supported")
    if "normalizer" in params and params["normalizer"] != "lowercase":
        raise MapperParsingError(f"Failed to parse mapping: normalizer [{params['normalizer']}] not found for field "
                                 f"[{path}]")
    if "ignore_above" in params:
        value = params["ignore_above"]
        if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).lstrip("-").isdigit() \
                or int(value) < 0:
            raise MapperParsingError(f"Failed to parse mapping: [ignore_above] must be a non-negative integer on "
                                     f"field [{path}]")
        params["ignore_above"] = int(value)
    if kind == "scaled_float":
        factor = params.get("scaling_factor")
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not math.isfinite(factor) \
                or factor <= 0:
            raise MapperParsingError(f"Failed to parse mapping: Field [scaling_factor] is required and must be a "
                                     f"positive number on field [{path}]")
    _check_protection(path, kind, params, definition, parent)
    date_format = None
    if kind == "date":
        date_format = _compile_format(params.get("format", DEFAULT_FORMAT), path)
    field_type = FieldType(path, kind, params, (), parent, date_format)
    if "null_value" in params and params["null_value"] is not None:
        try:
            field_type._convert(params["null_value"])
        except (ValueError, TypeError, DateParseError):
            raise MapperParsingError(f"Failed to parse mapping: Error parsing [null_value] on field [{path}]") from None
    subfields_body = definition.get("fields", {})
    if not isinstance(subfields_body, dict):
        raise MapperParsingError(f"Failed to parse mapping: [fields] of field [{path}] must be an object")
    if subfields_body and parent is not None:
        raise MapperParsingError(f"Failed to parse mapping: multi-field [{path}] cannot have multi-fields itself")
    subfields = []
    for sub_name, sub_definition in sorted(subfields_body.items()):
        _check_field_name(sub_name, path)
        if "." in sub_name:
            raise MapperParsingError(f"Failed to parse mapping: Field name [{sub_name}] which is a multi field of "
                                     f"[{path}] cannot contain '.'")
        if not isinstance(sub_definition, dict):
            raise MapperParsingError(f"Failed to parse mapping: multi-field [{path}.{sub_name}] must be an object")
        if sub_definition.get("type") in (None, "object") or "properties" in sub_definition:
            raise MapperParsingError(f"Failed to parse mapping: Type [object] cannot be used in multi field "
                                     f"[{path}.{sub_name}]")
        subfields.append(_parse_field(f"{path}.{sub_name}", sub_definition, depth=depth, limits=limits, parent=path))
    return FieldType(path, kind, params, tuple(subfields), parent, date_format)


def _check_protection(path: str, kind: str, params: dict[str, Any], definition: dict[str, Any],
                      parent: str | None) -> None:
    """`protect` and `blind_prefixes` (encryption at rest): what a protected field may declare."""
    level = params.get("protect", "none")
    if level not in PROTECT_LEVELS:
        raise MapperParsingError(f"Failed to parse mapping: [protect] of field [{path}] must be one of "
                                 f"{list(PROTECT_LEVELS)}")
    if "blind_prefixes" in params:
        lengths = params["blind_prefixes"]
        if level != "blind" or not isinstance(lengths, list) or not lengths or not all(
                isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 64 for n in lengths):
            raise MapperParsingError(f"Failed to parse mapping: [blind_prefixes] of field [{path}] must be a list of "
                                     "lengths 1 to 64, on a keyword field with [protect: blind]")
        params["blind_prefixes"] = sorted(set(lengths))
    if level == "none":
        return
    if kind not in PROTECTABLE:
        raise MapperParsingError(f"Failed to parse mapping: fields of type [{kind}] cannot be protected ([{path}])")
    if parent is not None:
        raise MapperParsingError(f"Failed to parse mapping: multi-field [{path}] cannot be protected on its own; "
                                 "protect its parent field")
    for name in ("fields", "null_value", "normalizer", "copy_to", "index_prefixes", "index_phrases"):
        if definition.get(name):
            raise MapperParsingError(f"Failed to parse mapping: [{name}] cannot be used on protected field [{path}] "
                                     "(it would index the clear value)")
    if level == "blind" and params.get("index") in (False, "false"):
        raise MapperParsingError(f"Failed to parse mapping: field [{path}] with [protect: blind] must be indexed; "
                                 "use [protect: encrypt] for a field that is never searched")


def _merge_nodes(old: FieldType | ObjectType, new: FieldType | ObjectType) -> FieldType | ObjectType:
    if isinstance(old, ObjectType) and isinstance(new, ObjectType):
        return _merge_objects(old, new)
    if isinstance(old, FieldType) and isinstance(new, FieldType):
        return _merge_fields(old, new)
    leaf = old if isinstance(old, FieldType) else new
    raise IllegalArgumentError(f"can't merge a non object mapping [{leaf.path}] with an object mapping")


def _merge_objects(old: ObjectType, new: ObjectType) -> ObjectType:
    properties = dict(old.properties)
    for name, node in new.properties.items():
        properties[name] = _merge_nodes(properties[name], node) if name in properties else node
    if old.path and old.enabled != new.enabled and "enabled" in (new.to_es()):
        raise IllegalArgumentError(f"the [enabled] parameter can't be updated for the object mapping [{old.path}]")
    dynamic = new.dynamic if new.dynamic is not None else old.dynamic
    return ObjectType(old.path, properties, dynamic, old.enabled)


UPDATABLE_PARAMS = frozenset({"ignore_above", "meta", "ignore_malformed", "search_analyzer", "search_quote_analyzer",
                              "eager_global_ordinals"})


def _merge_fields(old: FieldType, new: FieldType) -> FieldType:
    if old.type != new.type:
        raise IllegalArgumentError(f"mapper [{old.path}] cannot be changed from type [{old.type}] to [{new.type}]")
    params = dict(old.params)
    for name in set(old.params) | set(new.params):
        if old.params.get(name) == new.params.get(name):
            continue
        if name not in new.params:
            continue  # An update that omits a parameter keeps it.
        if name not in UPDATABLE_PARAMS:
            raise IllegalArgumentError(f"Mapper for [{old.path}] conflicts with existing mapper:\n\t"
                                       f"Cannot update parameter [{name}] from [{old.params.get(name)}] to "
                                       f"[{new.params.get(name)}]")
        params[name] = new.params[name]
    subfields = {sub.path: sub for sub in old.subfields}
    for sub in new.subfields:
        subfields[sub.path] = _merge_fields(subfields[sub.path], sub) if sub.path in subfields else sub
    return FieldType(old.path, old.type, params, tuple(subfields[p] for p in sorted(subfields)), old.parent,
                     old.date_format)
