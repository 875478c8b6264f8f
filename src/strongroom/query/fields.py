"""`docvalue_fields` and `fields`: per-hit field values, typed by the mapping.

Values are read from the document as the caller may see it and converted with the field's own
mapping, so they equal what was indexed: `docvalue_fields` gives index-form values (dates as
`strict_date_optional_time` unless a format is asked for, floats at their stored precision),
`fields` gives source values parsed by the mapping (dates in the field's format). Malformed values
that were ignored at index time are left out.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass
from typing import Any

from ..engine.dates import DateFormat, DateFormatError
from ..engine.mapping import FieldType, Mapping
from ..errors import IllegalArgumentError, RequestError
from ..jsonio import extract_values

ISO_MILLIS = "strict_date_optional_time"
NUMERIC = ("long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float")


@dataclass(frozen=True)
class FieldRequest:
    field: str
    format: str | None = None
    stored: bool = False  # from `stored_fields`: only fields mapped with `store: true` answer


def parse_field_requests(value: Any, kind: str) -> list[FieldRequest]:
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list):
        raise RequestError(f"[{kind}] must be an array")
    out = []
    for item in items:
        if isinstance(item, str):
            if item.strip():
                out.append(FieldRequest(item.strip()))
        elif isinstance(item, dict) and isinstance(item.get("field"), str):
            unknown = set(item) - {"field", "format", "include_unmapped"}
            if unknown:
                raise RequestError(f"[{kind}] unknown field [{sorted(unknown)[0]}]")
            fmt = item.get("format")
            if fmt is not None and not isinstance(fmt, str):
                raise RequestError(f"[{kind}] [format] must be a string")
            out.append(FieldRequest(item["field"], fmt))
        else:
            raise RequestError(f"[{kind}] entries must be field names or objects with a [field]")
    return out


def _expand(mapping: Mapping, pattern: str) -> list[str]:
    if "*" not in pattern:
        return [pattern] if pattern in mapping.fields else []
    return sorted(p for p in mapping.fields if fnmatch.fnmatchcase(p, pattern))


def retrieve(source: dict[str, Any], mapping: Mapping, requests: list[FieldRequest], *, docvalue: bool
             ) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for request in requests:
        for path in _expand(mapping, request.field):
            field_type = mapping.fields[path]
            if request.stored and field_type.params.get("store") not in (True, "true"):
                continue
            if request.format is not None and request.format != "use_field_mapping" and field_type.type not in (
                    "date", *NUMERIC):
                raise IllegalArgumentError(f"Field [{path}] of type [{field_type.type}] doesn't support formats.")
            if docvalue and field_type.type in ("text", "match_only_text"):
                raise IllegalArgumentError(f"Text fields are not optimised for operations that require per-document "
                                           f"field data like aggregations and sorting, so these operations are "
                                           f"disabled by default. Please use a keyword field instead. Alternatively, "
                                           f"set fielddata=true on [{path}] in order to load field data by "
                                           f"uninverting the inverted index.")
            values = _values(source, field_type, request.format, docvalue=docvalue)
            if values:
                out[path] = values
    return out


def _values(source: dict[str, Any], field_type: FieldType, fmt: str | None, *, docvalue: bool) -> list[Any]:
    raw = extract_values(source, field_type.parent or field_type.path)
    out = []
    for value in raw:
        try:
            converted = field_type._convert(value)
        except (ValueError, TypeError, OverflowError):
            continue  # ignore_malformed values were never indexed
        if converted is None:
            continue
        out.append(_render(converted, value, field_type, fmt, docvalue=docvalue))
    if docvalue and field_type.type not in ("text", "match_only_text"):
        try:
            out.sort()
        except TypeError:
            pass
    return out


def _render(converted: Any, original: Any, field_type: FieldType, fmt: str | None, *, docvalue: bool) -> Any:
    kind = field_type.type
    if kind == "date":
        if fmt == "use_field_mapping":
            fmt = None
        spec = fmt or (ISO_MILLIS if docvalue else field_type.params.get("format", ISO_MILLIS))
        if spec == "epoch_millis":
            return str(converted)
        try:
            return DateFormat.compile(spec).format(converted)
        except DateFormatError as exc:
            raise IllegalArgumentError(f"Invalid format: [{spec}]: {exc}") from None
    if kind == "geo_point":
        lat, lon = converted
        return {"type": "Point", "coordinates": [lon, lat]}
    if fmt is not None and fmt != "use_field_mapping" and isinstance(converted, (int, float)) \
            and not isinstance(converted, bool):
        return decimal_format(converted, fmt)
    if kind == "boolean":
        return bool(converted)
    return converted


def decimal_format(number: float, pattern: str) -> str:
    """Java DecimalFormat for the common patterns: `#`, `0`, `.`, `,` (e.g. "#.0", "0.00", "#,##0")."""
    if pattern in ("use_field_mapping",):
        return str(number)
    integer_part, _, fraction = pattern.partition(".")
    minimum_fraction = fraction.count("0")
    maximum_fraction = minimum_fraction + fraction.count("#")
    minimum_integer = integer_part.count("0")
    text = f"{number:.{maximum_fraction}f}" if math.isfinite(number) else str(number)
    if maximum_fraction > minimum_fraction and "." in text:
        whole, decimals = text.split(".")
        decimals = decimals.rstrip("0").ljust(minimum_fraction, "0")
        text = whole + ("." + decimals if decimals else "")
    whole, dot, decimals = text.partition(".")
    sign = "-" if whole.startswith("-") else ""
    whole = whole.lstrip("-")
    if minimum_integer == 0 and whole == "0" and decimals:
        whole = ""
    whole = whole.rjust(minimum_integer, "0")
    if "," in integer_part:
        whole = f"{int(whole or '0'):,}" if whole else whole
    return sign + whole + (dot + decimals if decimals else "")
