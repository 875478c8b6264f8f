"""File readers of `strongroom load`: every supported file becomes a stream of `Row`s.

Formats (from `format=` or the file's extension):

* ``csv`` (.csv), ``tsv`` (.tsv; .txt is sniffed: tabs in the first line make it TSV, else CSV).
  Standard quoting (quoted fields may hold delimiters, quotes doubled, newlines). The first
  non-blank record is the header; empty names become ``column_N`` (N = 1-based position) and a
  repeated name gets ``_2``, ``_3``…. Values are strings exactly as written ("" stays ""); no
  type guessing. A CSV without ``delimiter=`` whose first line has no comma uses ``;`` (or a tab)
  when the line has one. Blank lines are skipped.
* ``xlsx``: openpyxl, read-only streaming. The first non-empty row is the header; cells keep their
  type (int, float, bool, str); dates and times become ISO 8601 strings (a date-only cell gives
  ``2024-03-05``); empty cells are left out of ``values``; empty rows are skipped.
* ``ndjson`` (.ndjson, .jsonl): one JSON object per line; blank lines are skipped.
* ``json``: a JSON array of objects, parsed incrementally; or, when the file does not start with
  ``[``, one object per line as for NDJSON.
* ``parquet``: pyarrow, batch by batch; values become JSON-able Python values (dates and times as
  ISO strings, Decimal as str, bytes as UTF-8 text or base64, NaN and infinities as None).
* ``mbox`` (.mbox) and ``eml`` (.eml): fields ``message_id, date, from, to, cc, subject, body``.
  ``date`` is ISO 8601 when it parses, else the header text; addresses are ``Name <addr>``
  joined by ", "; ``body`` joins the text/plain parts, or, without one, the text/html parts with
  their tags stripped. Attachments are skipped. A message starts at a ``From `` line at the start
  of the file or after a blank line (the mbox family's rule); ``>From `` is unescaped.

Row numbers (`Row.number`, 1-based) are what a reject file names:

* CSV/TSV/xlsx: the data record's ordinal. The header is not a record, so 1 is the first data
  row; a record whose quoted field spans lines is one number; blank lines are not counted.
  `Row.line` gives the physical line (CSV) or sheet row (xlsx) where the record starts.
* NDJSON, and line-per-object JSON: the line number (blank lines keep their line but are no row).
* JSON array, Parquet, mbox: the record's index in the file (`Row.line`: where it starts, when
  known). An .eml file is the single record 1.

Text encodings (CSV, TSV, NDJSON, JSON): a BOM decides (UTF-8, UTF-16 LE/BE); else a BOM-less
UTF-16 is recognised by its NUL bytes; else the first 4 MiB are decoded as UTF-8: with no error,
or with errors few beside the valid non-ASCII characters (a file with a few broken rows), the file
is UTF-8; otherwise it is GB18030, the superset of GBK and GB2312 that Chinese spreadsheets use.
``encoding=`` overrides detection. Decoding is per row: a row with bytes that are not valid in
the file's encoding is one bad row ("broken encoding"), even past the first 4 MiB.

Errors: a bad row is yielded with ``values=None`` and ``error`` saying why; iteration goes on
with the next row. Error texts start with a fixed phrase: "broken encoding", "wrong number of
columns", "field [name] is wider than N bytes", "record longer than N bytes", "unterminated
quoted field", "invalid JSON", "not an object", "unreadable message". They never quote the
record's content. Problems with the file as a whole (unknown format, no such sheet, an mbox that
does not start with ``From ``) raise ValueError from `open_rows`.

Memory: every reader streams. Peak memory depends on the longest record, never on the file:
a record (line, array element, message) may hold at most ``16 × max_field_bytes`` (mail
``64 × max_field_bytes``) and is a bad row beyond that, read past without being kept. The JSON
array reader keeps one bounded window of text; Parquet holds one batch (and pyarrow one row
group); xlsx one row.
"""

from __future__ import annotations

import base64
import codecs
import datetime as dt
import email
import email.policy
import io
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import IO, Any, BinaryIO

__all__ = ["SUPPORTED_FORMATS", "Row", "RowSource", "count_records_hint", "open_rows"]

SUPPORTED_FORMATS = ("csv", "tsv", "txt", "xlsx", "ndjson", "jsonl", "json", "parquet", "mbox", "eml")
_EXTENSIONS = {
    ".csv": "csv", ".tsv": "tsv", ".txt": "txt", ".xlsx": "xlsx", ".ndjson": "ndjson",
    ".jsonl": "ndjson", ".json": "json", ".parquet": "parquet", ".mbox": "mbox", ".eml": "eml",
}
_TEXT_FORMATS = {"csv", "tsv", "txt", "ndjson", "json"}

_DETECT_BYTES = 4 << 20  # Prefix decoded to choose the encoding.
_SLICE = 64 << 10
_JSON_CHUNK = 256 << 10  # Bytes decoded into the JSON array window at a time.

# Undecodable bytes become this lone surrogate: no strict decoder of UTF-8, UTF-16 or GB18030
# ever yields one, so its presence marks the row as broken.
_BAD = "\udfff"
_MARK = "strongroom.loader.mark"
codecs.register_error(_MARK, lambda exc: (_BAD, exc.end))  # type: ignore[arg-type, return-value]


@dataclass(frozen=True, slots=True)
class Row:
    """One record: `values` when it could be read, else `error` (and `values` is None)."""

    number: int
    values: dict[str, Any] | None
    error: str | None = None
    line: int | None = None  # Where the record starts in the file (line or sheet row), if known.


class RowSource:
    """An iterator of `Row`s over one file; close it (or use `with`) to release the file."""

    def __init__(
        self,
        rows: Iterator[Row],
        *,
        format: str,
        encoding: str | None,
        columns: list[str] | None,
        closers: list[Callable[[], Any]],
    ) -> None:
        self.format = format
        self.encoding = encoding  # Detected or given; None for formats that carry their own.
        self.columns = columns  # Known up front for CSV, TSV, xlsx, Parquet and mail; else None.
        self._rows = rows
        self._closers = closers

    def __iter__(self) -> RowSource:
        return self

    def __next__(self) -> Row:
        return next(self._rows)

    def close(self) -> None:
        close_rows = getattr(self._rows, "close", None)
        if close_rows is not None:
            close_rows()
        closers, self._closers = self._closers, []
        for closer in closers:
            closer()

    def __enter__(self) -> RowSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_rows(
    path: Path,
    *,
    format: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    sheet: str | None = None,
    max_field_bytes: int = 1 << 20,
) -> RowSource:
    """Open `path` and return its rows. Raises ValueError for a file that cannot be read at all."""
    path = Path(path)
    fmt = _format_of(path, format)
    if max_field_bytes < 1:
        raise ValueError("max_field_bytes must be positive.")
    if delimiter is not None and fmt not in ("csv", "tsv", "txt"):
        raise ValueError(f"delimiter applies to csv and tsv files, not {fmt}.")
    if delimiter is not None and (len(delimiter) != 1 or delimiter in '"\r\n'):
        raise ValueError("delimiter must be one character other than a quote or a newline.")
    if sheet is not None and fmt != "xlsx":
        raise ValueError(f"sheet applies to xlsx files, not {fmt}.")
    if encoding is not None:
        if fmt not in _TEXT_FORMATS:
            raise ValueError(f"encoding applies to text files (csv, tsv, ndjson, json), not {fmt}.")
        codecs.lookup(encoding)  # LookupError names an unknown encoding.
    if fmt in _TEXT_FORMATS:
        return _open_text(path, fmt, encoding, delimiter, max_field_bytes)
    if fmt == "xlsx":
        return _open_xlsx(path, sheet, max_field_bytes)
    if fmt == "parquet":
        return _open_parquet(path, max_field_bytes)
    if fmt == "mbox":
        return _open_mbox(path, max_field_bytes)
    return _open_eml(path, max_field_bytes)


def _format_of(path: Path, format: str | None) -> str:
    if format is not None:
        fmt = format.lower().lstrip(".")
        if fmt not in SUPPORTED_FORMATS:
            raise ValueError(f"unknown format [{format}]; supported: {', '.join(SUPPORTED_FORMATS)}")
        return "ndjson" if fmt == "jsonl" else fmt
    fmt = _EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"cannot tell the format of [{path.name}] from its extension; "
            f"supported: {', '.join(SUPPORTED_FORMATS)} (or pass a format)"
        )
    return fmt


# ---------------------------------------------------------------- encodings and text lines


def _is_line_safe(encoding: str) -> bool:
    """True when b"\\n" is always a line break in this encoding (never inside a character)."""
    name = codecs.lookup(encoding).name
    return not name.startswith(("utf-16", "utf-32", "utf_16", "utf_32")) and "\n".encode(encoding) == b"\n"


def _decode_counts(raw: BinaryIO, encoding: str, start: int) -> tuple[int, int]:
    """(bad, non-ASCII) characters in the first 4 MiB from `start`, decoded slice by slice."""
    raw.seek(start)
    decoder = codecs.getincrementaldecoder(encoding)(_MARK)
    bad = nonascii = 0
    remaining = _DETECT_BYTES
    while remaining > 0:
        chunk = raw.read(min(_SLICE, remaining))
        remaining -= len(chunk)
        final = not chunk
        text = decoder.decode(chunk, final=final)
        bad += text.count(_BAD)
        nonascii += len(text) - len(text.encode("ascii", "ignore"))
        if final:
            break
    return bad, nonascii


def _detect_encoding(raw: BinaryIO) -> tuple[str, int]:
    """(encoding, bytes of BOM to skip) for a text file."""
    raw.seek(0)
    head = raw.read(4096)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", 3
    if head.startswith(codecs.BOM_UTF16_LE):
        return "utf-16-le", 2
    if head.startswith(codecs.BOM_UTF16_BE):
        return "utf-16-be", 2
    if len(head) >= 4 and b"\x00" in head:
        pairs = len(head) // 2
        even_nul = head[0 : pairs * 2 : 2].count(0)
        odd_nul = head[1 : pairs * 2 : 2].count(0)
        if odd_nul > 0.3 * pairs and even_nul < 0.05 * pairs:
            return "utf-16-le", 0
        if even_nul > 0.3 * pairs and odd_nul < 0.05 * pairs:
            return "utf-16-be", 0
    bad, nonascii = _decode_counts(raw, "utf-8", 0)
    if bad == 0 or nonascii - bad >= 4 * bad:
        return "utf-8", 0
    gb_bad, _ = _decode_counts(raw, "gb18030", 0)
    return ("gb18030", 0) if gb_bad < bad else ("utf-8", 0)


class _Lines:
    """Decoded lines of a text file, each decoded on its own, at most `limit` bytes per call.

    For encodings where b"\\n" is always a line break (UTF-8, GB18030, …) lines are split on
    bytes and decoded one by one, so a broken byte can never swallow a line break. UTF-16 goes
    through a TextIOWrapper (undecodable code units still become the `_BAD` marker).
    """

    def __init__(self, raw: BinaryIO, encoding: str, skip: int) -> None:
        raw.seek(skip)
        self._raw = raw
        codec = "utf-8" if encoding == "utf-8-sig" else encoding  # The BOM was skipped.
        self._decoder = codecs.getincrementaldecoder(codec)(_MARK)
        self._text: IO[str] | None = None
        if not _is_line_safe(codec):
            self._text = io.TextIOWrapper(raw, encoding=codec, errors=_MARK, newline="")
        self.cut = False  # The last readline stopped at `limit`, inside a line.

    def readline(self, limit: int) -> str:
        if self._text is not None:
            text = self._text.readline(limit)
            self.cut = len(text) >= limit and not text.endswith(("\n", "\r"))
            return text
        data = self._raw.readline(limit)
        self.cut = len(data) >= limit and not data.endswith(b"\n")
        # A character split by the limit waits in the decoder for the next piece.
        return self._decoder.decode(data, final=not self.cut)


def _text_chunks(raw: BinaryIO, encoding: str, skip: int, size: int) -> Iterator[str]:
    raw.seek(skip)
    codec = "utf-8" if encoding == "utf-8-sig" else encoding
    decoder = codecs.getincrementaldecoder(codec)(_MARK)
    while True:
        chunk = raw.read(size)
        text = decoder.decode(chunk, final=not chunk)
        if text:
            yield text
        if not chunk:
            return


def _first_line(raw: BinaryIO, encoding: str, skip: int) -> str:
    raw.seek(skip)
    codec = "utf-8" if encoding == "utf-8-sig" else encoding
    text = raw.read(64 << 10).decode(codec, "replace")
    return text.split("\n", 1)[0]


def _broken(encoding: str) -> str:
    return f"broken encoding: bytes not valid in {encoding}"


def _too_wide(name: str, limit: int) -> str:
    return f"field [{name}] is wider than {limit} bytes"


def _wider_than(value: str, limit: int) -> bool:
    return len(value) * 4 > limit and len(value.encode("utf-8", "surrogatepass")) > limit


def _open_text(path: Path, fmt: str, encoding: str | None, delimiter: str | None, limit: int) -> RowSource:
    raw: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed by the RowSource.
    try:
        if encoding is None:
            enc, skip = _detect_encoding(raw)
        else:
            enc, skip = encoding, 0
        if fmt in ("csv", "tsv", "txt"):
            return _open_csv(raw, fmt, enc, skip, delimiter, limit)
        if fmt == "json" and _starts_with_bracket(raw, enc, skip):
            rows = _json_array_rows(raw, enc, skip, limit)
            return RowSource(rows, format="json", encoding=enc, columns=None, closers=[raw.close])
        rows = _ndjson_rows(_Lines(raw, enc, skip), enc, limit)
        return RowSource(rows, format=fmt, encoding=enc, columns=None, closers=[raw.close])
    except BaseException:
        raw.close()
        raise


# ---------------------------------------------------------------- CSV and TSV


def _scan_quotes(line: str, in_quotes: bool, delim: str) -> bool:
    """Whether `line` ends inside a quoted field, given whether it started inside one."""
    i, n = 0, len(line)
    while True:
        if in_quotes:
            j = line.find('"', i)
            if j < 0:
                return True
            if j + 1 < n and line[j + 1] == '"':
                i = j + 2
                continue
            in_quotes = False
            k = line.find(delim, j + 1)  # After the closing quote the field runs to a delimiter.
            if k < 0:
                return False
            i = k + 1
        elif i < n and line[i] == '"':
            in_quotes, i = True, i + 1
        else:
            k = line.find(delim, i)
            if k < 0:
                return False
            i = k + 1


def _split_record(record: str, delim: str) -> list[str]:
    """Fields of one complete record (line break at its end included), quoting as in Excel."""
    if record.endswith("\n"):
        record = record[:-2] if record.endswith("\r\n") else record[:-1]
    elif record.endswith("\r"):
        record = record[:-1]
    if '"' not in record:
        return record.split(delim)
    fields: list[str] = []
    i, n = 0, len(record)
    while True:
        if i < n and record[i] == '"':
            parts: list[str] = []
            i += 1
            while True:
                j = record.find('"', i)
                if j < 0:
                    parts.append(record[i:])
                    i = n
                    break
                parts.append(record[i:j])
                if j + 1 < n and record[j + 1] == '"':
                    parts.append('"')
                    i = j + 2
                    continue
                i = j + 1
                break
            k = record.find(delim, i)
            if k < 0:
                parts.append(record[i:])
                fields.append("".join(parts))
                return fields
            parts.append(record[i:k])
            fields.append("".join(parts))
            i = k + 1
        else:
            k = record.find(delim, i)
            if k < 0:
                fields.append(record[i:])
                return fields
            fields.append(record[i:k])
            i = k + 1


def _csv_records(lines: _Lines, delim: str, limit: int) -> Iterator[tuple[int, str | None, str | None]]:
    """(first line number, record text or None, error) for each record, blank lines included."""
    record_limit = 16 * limit
    piece_limit = min(record_limit, 1 << 20)
    line_no = start_line = 0
    parts: list[str] = []
    size = 0
    in_quotes = overflow = mid_line = False
    while True:
        piece = lines.readline(piece_limit)
        if not piece:
            break
        if not mid_line:
            line_no += 1
        mid_line = lines.cut
        ends = not mid_line
        if not parts and not overflow and not in_quotes:
            start_line = line_no
            if ends and '"' not in piece:  # The common case: one line, no quotes.
                yield start_line, piece, None
                continue
        in_quotes = _scan_quotes(piece, in_quotes, delim)
        if not overflow:
            parts.append(piece)
            size += len(piece)
            if size > record_limit:  # Read on to the record's end without keeping it.
                overflow, parts = True, []
        if in_quotes or mid_line:
            continue
        if overflow:
            yield start_line, None, f"record longer than {record_limit} bytes"
        else:
            yield start_line, "".join(parts), None
        parts, size, overflow = [], 0, False
    if in_quotes:
        yield start_line, None, "unterminated quoted field"
    elif overflow:
        yield start_line, None, f"record longer than {record_limit} bytes"
    elif parts:
        yield start_line, "".join(parts), None


def _header_names(names: list[str]) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for position, name in enumerate(names, 1):
        base = name.replace(_BAD, "\ufffd").strip().lstrip("\ufeff").strip() or f"column_{position}"
        candidate, suffix = base, 2
        while candidate in seen:
            candidate, suffix = f"{base}_{suffix}", suffix + 1
        seen.add(candidate)
        out.append(candidate)
    return out


def _open_csv(
    raw: BinaryIO, fmt: str, enc: str, skip: int, delimiter: str | None, limit: int
) -> RowSource:
    if delimiter is None:
        first = _first_line(raw, enc, skip)
        if fmt == "tsv" or (fmt == "txt" and "\t" in first):
            delimiter, fmt = "\t", "tsv"
        elif "," in first:
            delimiter, fmt = ",", "csv"
        elif ";" in first:
            delimiter, fmt = ";", "csv"
        elif "\t" in first:
            delimiter, fmt = "\t", "tsv"
        else:
            delimiter, fmt = ",", "csv"
    elif fmt == "txt":
        fmt = "tsv" if delimiter == "\t" else "csv"
    records = _csv_records(_Lines(raw, enc, skip), delimiter, limit)
    columns: list[str] = []
    for _line, record, error in records:
        if record is not None and record.strip("\r\n") == "":
            continue
        if record is None:
            raise ValueError(f"the header row could not be read: {error}")
        columns = _header_names(_split_record(record, delimiter))
        break
    rows = _csv_rows(records, columns, delimiter, enc, limit)
    return RowSource(rows, format=fmt, encoding=enc, columns=columns, closers=[raw.close])


def _csv_rows(
    records: Iterator[tuple[int, str | None, str | None]],
    columns: list[str],
    delim: str,
    enc: str,
    limit: int,
) -> Iterator[Row]:
    number = 0
    width = len(columns)
    for line, record, error in records:
        if record is not None and (record == "\n" or record == "\r\n" or record == "\r"):
            continue
        number += 1
        if record is None:
            yield Row(number, None, error, line)
            continue
        if _BAD in record:
            yield Row(number, None, _broken(enc), line)
            continue
        fields = _split_record(record, delim)
        if len(fields) != width:
            yield Row(number, None, f"wrong number of columns: expected {width}, got {len(fields)}", line)
            continue
        if len(record) * 4 > limit:
            wide = next((c for c, f in zip(columns, fields) if _wider_than(f, limit)), None)
            if wide is not None:
                yield Row(number, None, _too_wide(wide, limit), line)
                continue
        yield Row(number, dict(zip(columns, fields)), None, line)


# ---------------------------------------------------------------- JSON


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def _check_object(value: Any, text_len: int, limit: int) -> str | None:
    if not isinstance(value, dict):
        return f"not an object (got {_json_kind(value)})"
    if text_len * 4 > limit:
        for key, item in value.items():
            if isinstance(item, str):
                if _wider_than(item, limit):
                    return _too_wide(key, limit)
            elif not isinstance(item, (int, float, bool)) and item is not None:
                if len(json.dumps(item, ensure_ascii=False).encode("utf-8", "surrogatepass")) > limit:
                    return _too_wide(key, limit)
    return None


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def _ndjson_rows(lines: _Lines, enc: str, limit: int) -> Iterator[Row]:
    record_limit = 16 * limit
    line_no = 0
    while True:
        line = lines.readline(record_limit + 2)  # Room for the line break.
        if not line:
            return
        line_no += 1
        if lines.cut:
            while lines.cut:  # Read past the rest of the over-long line.
                lines.readline(1 << 20)
            yield Row(line_no, None, f"record longer than {record_limit} bytes", line_no)
            continue
        if not line.strip():
            continue
        if _BAD in line:
            yield Row(line_no, None, _broken(enc), line_no)
            continue
        try:
            value = _DECODER.decode(line.lstrip("\ufeff"))
        except ValueError as exc:
            yield Row(line_no, None, f"invalid JSON: {_json_error(exc)}", line_no)
            continue
        error = _check_object(value, len(line), limit)
        yield Row(line_no, None if error else value, error, line_no)


def _json_error(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at column {exc.colno}"  # Position only: never the content.
    return str(exc)


def _starts_with_bracket(raw: BinaryIO, enc: str, skip: int) -> bool:
    for text in _text_chunks(raw, enc, skip, _SLICE):
        stripped = text.lstrip(" \t\r\n\ufeff")
        if stripped:
            return stripped[0] == "["
    return False


_WS = re.compile(r"[ \t\r\n]*")
_RESYNC = re.compile(r"\}[ \t\r\n]*,[ \t\r\n]*(?=\{)")


def _json_array_rows(raw: BinaryIO, enc: str, skip: int, limit: int) -> Iterator[Row]:
    """Elements of a top-level JSON array, decoded one by one from a bounded window of text."""
    record_limit = 16 * limit
    chunks = _text_chunks(raw, enc, skip, _JSON_CHUNK)
    buf = ""
    pos = 0
    line = 1  # Line number at `pos`.
    eof = False

    def fill(want: int = 1) -> bool:
        """Drop what was consumed and add at least `want` characters; False at the end."""
        nonlocal buf, pos, eof
        if eof:
            return False
        added: list[str] = []
        got = 0
        while got < want:
            chunk = next(chunks, None)
            if chunk is None:
                eof = True
                break
            added.append(chunk)
            got += len(chunk)
        if not added:
            return False
        buf = buf[pos:] + "".join(added)
        pos = 0
        return True

    def advance(to: int) -> None:
        nonlocal pos, line
        line += buf.count("\n", pos, to)
        pos = to

    def skip_ws() -> str | None:
        while True:
            advance(_WS.match(buf, pos).end())  # type: ignore[union-attr]
            if pos < len(buf):
                return buf[pos]
            if not fill():
                return None

    def resync() -> bool:
        """Move to the next `{` that follows `},`; False at the end of the file."""
        while True:
            found = _RESYNC.search(buf, pos)
            if found is not None:
                advance(found.end())
                return True
            advance(max(pos, len(buf) - 64))  # Keep a tail: the pattern may straddle chunks.
            if not fill():
                return False

    first = skip_ws()
    if first != "[":
        return
    advance(pos + 1)
    number = 0
    expect_value = True
    while True:
        ch = skip_ws()
        if ch is None:
            if expect_value and number:
                number += 1
                yield Row(number, None, "invalid JSON: unexpected end of file", line)
            return
        if ch == "]" and (number == 0 or not expect_value):
            return
        if not expect_value:
            if ch == ",":
                advance(pos + 1)
                expect_value = True
                continue
            number += 1
            yield Row(number, None, "invalid JSON: expected ',' or ']' between elements", line)
            if not resync():
                return
            continue
        if len(buf) - pos < _JSON_CHUNK // 2:
            fill()
        start_line = line
        while True:
            try:
                value, end = _DECODER.raw_decode(buf, pos)
            except ValueError as exc:
                # Maybe cut by the window's end: double the window (so a large element costs
                # O(size × log size)) until it decodes or passes the record limit.
                if len(buf) - pos <= record_limit and fill(len(buf) - pos):
                    continue
                number += 1
                if len(buf) - pos > record_limit:
                    error = f"record longer than {record_limit} bytes"
                else:
                    error = f"invalid JSON: {exc.msg if isinstance(exc, json.JSONDecodeError) else exc}"
                yield Row(number, None, error, start_line)
                if not resync():
                    return
                expect_value = True
                break
            if end == len(buf) and fill():  # A number may go on in the next chunk.
                continue
            number += 1
            if _BAD in buf[pos:end]:
                yield Row(number, None, _broken(enc), start_line)
            elif end - pos > record_limit:
                yield Row(number, None, f"record longer than {record_limit} bytes", start_line)
            else:
                error = _check_object(value, end - pos, limit)
                yield Row(number, None if error else value, error, start_line)
            advance(end)
            expect_value = False
            break


# ---------------------------------------------------------------- xlsx


def _cell_value(cell: Any) -> Any:
    value = cell.value
    if isinstance(value, dt.datetime):
        fmt = (getattr(cell, "number_format", "") or "").lower()
        if value.time() == dt.time(0) and "h" not in fmt and "s" not in fmt:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _open_xlsx(path: Path, sheet: str | None, limit: int) -> RowSource:
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # zipfile, XML and openpyxl's own errors.
        raise ValueError(f"[{path.name}] is not a readable xlsx file ({type(exc).__name__})") from None
    try:
        if sheet is not None:
            if sheet not in book.sheetnames:
                raise ValueError(f"sheet [{sheet}] not found; sheets: {', '.join(book.sheetnames)}")
            ws = book[sheet]
        else:
            ws = book.worksheets[0]
        cells = ws.iter_rows()
        columns: list[str] = []
        header_row = 0
        for row_no, row in enumerate(cells, 1):
            names = [c.value for c in row]
            if any(v is not None and v != "" for v in names):
                while names and (names[-1] is None or names[-1] == ""):
                    names.pop()
                columns = _header_names(["" if v is None else str(_cell_value(c)) for v, c in zip(names, row)])
                header_row = row_no
                break
        rows = _xlsx_rows(cells, columns, header_row, limit)
    except BaseException:
        book.close()
        raise
    return RowSource(rows, format="xlsx", encoding=None, columns=columns, closers=[book.close])


def _xlsx_rows(cells: Iterator[Any], columns: list[str], header_row: int, limit: int) -> Iterator[Row]:
    number = 0
    width = len(columns)
    for sheet_row, row in enumerate(cells, header_row + 1):
        values: dict[str, Any] = {}
        error = None
        for i, cell in enumerate(row):
            value = cell.value
            if value is None:
                continue
            if i >= width:
                if value != "":
                    error = f"wrong number of columns: a value in column {i + 1}, the header has {width}"
                continue
            value = _cell_value(cell)
            if isinstance(value, str) and _wider_than(value, limit) and error is None:
                error = _too_wide(columns[i], limit)
            values[columns[i]] = value
        if not values and error is None:
            continue  # Empty row.
        number += 1
        yield Row(number, None if error else values, error, sheet_row)


# ---------------------------------------------------------------- Parquet


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(data).decode("ascii")
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


def _open_parquet(path: Path, limit: int) -> RowSource:
    import pyarrow.parquet as pq

    raw = open(path, "rb")  # noqa: SIM115 - closed by the RowSource.
    try:
        parquet = pq.ParquetFile(raw)
    except Exception as exc:  # pyarrow's ArrowInvalid and friends.
        raw.close()
        raise ValueError(f"[{path.name}] is not a readable parquet file ({type(exc).__name__})") from None
    columns = list(parquet.schema_arrow.names)
    rows = _parquet_rows(parquet, limit)
    return RowSource(rows, format="parquet", encoding=None, columns=columns, closers=[raw.close])


def _parquet_rows(parquet: Any, limit: int) -> Iterator[Row]:
    number = 0
    for batch in parquet.iter_batches(batch_size=1024):
        for record in batch.to_pylist():
            number += 1
            values = {str(k): _jsonable(v) for k, v in record.items()}
            wide = next((k for k, v in values.items() if isinstance(v, str) and _wider_than(v, limit)), None)
            if wide is not None:
                yield Row(number, None, _too_wide(wide, limit))
            else:
                yield Row(number, values)


# ---------------------------------------------------------------- mail

MAIL_COLUMNS = ["message_id", "date", "from", "to", "cc", "subject", "body"]


class _HtmlText(HTMLParser):
    _BLOCKS = frozenset({"p", "br", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("script", "style", "head"):
            self._skip += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head"):
            self._skip = max(0, self._skip - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _strip_html(html: str) -> str:
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)


def _part_text(part: Any) -> str:
    try:
        return str(part.get_content())
    except (LookupError, UnicodeError, KeyError, ValueError):
        payload = part.get_payload(decode=True) or b""
        return payload.decode("utf-8", "replace")


def _header_text(msg: Any, name: str) -> str | None:
    try:
        value = msg.get(name)
    except Exception:  # A malformed header: fall back to its raw text.
        value = _raw_header(msg, name)
    if value is None:
        return None
    return " ".join(str(value).split()) or None


def _raw_header(msg: Any, name: str) -> str | None:
    for key, value in msg.raw_items():
        if key.lower() == name.lower():
            return str(value)
    return None


def _addresses(msg: Any, name: str) -> str | None:
    out: list[str] = []
    try:
        headers = msg.get_all(name) or []
        for header in headers:
            groups = getattr(header, "addresses", None)
            if groups is None:
                out.append(str(header).strip())
                continue
            for address in groups:
                spec = address.addr_spec
                out.append(f"{address.display_name} <{spec}>" if address.display_name else spec)
    except Exception:  # A malformed address header: keep its raw text.
        raw = _raw_header(msg, name)
        return " ".join(raw.split()) if raw else None
    return ", ".join(o for o in out if o) or None


def _date(msg: Any) -> str | None:
    try:
        header = msg.get("Date")
    except Exception:  # Unparseable date header.
        raw = _raw_header(msg, "Date")
        return raw.strip() if raw else None
    if header is None:
        return None
    when = getattr(header, "datetime", None)
    if when is not None:
        return when.isoformat()
    raw = _raw_header(msg, "Date")  # Unparseable: the parsed header would be empty.
    return " ".join(raw.split()) if raw else None


def _body(msg: Any) -> str:
    plain: list[str] = []
    html: list[str] = []
    for part in msg.walk():
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        ctype = part.get_content_type()
        if ctype == "text/plain":
            plain.append(_part_text(part).strip())
        elif ctype == "text/html":
            html.append(_strip_html(_part_text(part)))
    return "\n\n".join(p for p in (plain or html) if p)


def _mail_row(number: int, data: bytes, limit: int, line: int | None) -> Row:
    try:
        msg = email.message_from_bytes(data, policy=email.policy.default)
        values = {
            "message_id": _header_text(msg, "Message-ID"),
            "date": _date(msg),
            "from": _addresses(msg, "From"),
            "to": _addresses(msg, "To"),
            "cc": _addresses(msg, "Cc"),
            "subject": _header_text(msg, "Subject"),
            "body": _body(msg),
        }
    except Exception as exc:  # The email package raises many kinds on hostile input.
        return Row(number, None, f"unreadable message ({type(exc).__name__})", line)
    wide = next((k for k, v in values.items() if isinstance(v, str) and _wider_than(v, limit)), None)
    if wide is not None:
        return Row(number, None, _too_wide(wide, limit), line)
    return Row(number, values, None, line)


_FROM_ESCAPED = re.compile(rb"^>(>*From )")


def _open_mbox(path: Path, limit: int) -> RowSource:
    raw = open(path, "rb")  # noqa: SIM115 - closed by the RowSource.
    try:
        first = raw.readline(1 << 16)
        while first and not first.strip():
            first = raw.readline(1 << 16)
        if first and not first.startswith(b"From "):
            raise ValueError(f"[{path.name}] is not an mbox file: it does not start with a 'From ' line")
        raw.seek(0)
    except BaseException:
        raw.close()
        raise
    return RowSource(
        _mbox_rows(raw, limit), format="mbox", encoding=None, columns=list(MAIL_COLUMNS), closers=[raw.close]
    )


def _mbox_rows(raw: BinaryIO, limit: int) -> Iterator[Row]:
    message_limit = 64 * limit
    number = line_no = start_line = 0
    parts: list[bytes] = []
    size = 0
    started = overflow = False
    previous_blank = True
    mid_line = False

    def finish() -> Row:
        if overflow:
            return Row(number, None, f"record longer than {message_limit} bytes", start_line)
        return _mail_row(number, b"".join(parts), limit, start_line)

    while True:
        piece = raw.readline(1 << 20)
        if not piece:
            break
        at_line_start = not mid_line
        mid_line = not piece.endswith(b"\n")
        if at_line_start:
            line_no += 1
            if previous_blank and piece.startswith(b"From "):
                if started:
                    yield finish()
                started, overflow, parts, size = True, False, [], 0
                number += 1
                start_line = line_no
                previous_blank = False
                continue
            previous_blank = piece in (b"\n", b"\r\n")
            piece = _FROM_ESCAPED.sub(rb"\1", piece)
        if not started or overflow:
            continue
        parts.append(piece)
        size += len(piece)
        if size > message_limit:
            overflow, parts = True, []
    if started:
        yield finish()


def _open_eml(path: Path, limit: int) -> RowSource:
    message_limit = 64 * limit
    with open(path, "rb") as raw:
        data = raw.read(message_limit + 1)
    if len(data) > message_limit:
        row = Row(1, None, f"record longer than {message_limit} bytes", 1)
    else:
        row = _mail_row(1, data, limit, 1)
    return RowSource(iter([row]), format="eml", encoding=None, columns=list(MAIL_COLUMNS), closers=[])


# ---------------------------------------------------------------- record count hint


def _count_lines(path: Path, pattern: bytes = b"\n") -> int:
    """Occurrences of `pattern` (plus a last unterminated line): exact to 16 MiB, else estimated."""
    size = path.stat().st_size
    sample = 4 << 20
    with open(path, "rb") as raw:
        if size <= 16 << 20:
            data = raw.read()
            return data.count(pattern) + (1 if data and not data.endswith(b"\n") and pattern == b"\n" else 0)
        head = raw.read(sample)
    return round(head.count(pattern) * size / len(head))


def count_records_hint(path: Path, *, format: str | None = None) -> int | None:
    """A fast estimate of the number of records, for a progress bar; None when unknown.

    Text formats count lines (exactly up to 16 MiB, else extrapolated from the first 4 MiB; the
    CSV header is subtracted); Parquet and xlsx read their metadata; a JSON array gives None.
    """
    path = Path(path)
    fmt = _format_of(path, format)
    try:
        if fmt in ("csv", "tsv", "txt"):
            return max(0, _count_lines(path) - 1)
        if fmt == "ndjson":
            return _count_lines(path)
        if fmt == "json":
            with open(path, "rb") as raw:
                head = raw.read(4096).lstrip(b" \t\r\n\xef\xbb\xbf")
            return None if head.startswith(b"[") else _count_lines(path)
        if fmt == "mbox":
            with open(path, "rb") as raw:
                starts = 1 if raw.read(5) == b"From " else 0
            return starts + _count_lines(path, b"\n\nFrom ") + _count_lines(path, b"\n\r\nFrom ")
        if fmt == "eml":
            return 1
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        import openpyxl

        book = openpyxl.load_workbook(path, read_only=True)
        try:
            rows = book.worksheets[0].max_row
        finally:
            book.close()
        return None if rows is None else max(0, rows - 1)
    except (OSError, ValueError):
        return None
    except Exception:  # A hint must never stop a load: pyarrow and openpyxl raise their own kinds.
        return None
