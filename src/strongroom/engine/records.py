"""Payloads of write-ahead log records: the operations a shard applies, in a versioned binary form.

The sequence number lives in the log record header; the payload carries the rest. `source` is
opaque bytes to the engine (sealed ciphertext); `doc` is the indexable document (JSON of the values
the engine indexes: tokens for protected fields, never their clear values), from which replay
rebuilds the index. Format 1 records (before sealing) carry no `doc`: their source is the document.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

FORMAT = 2
OP_INDEX, OP_DELETE = 1, 2
_HEAD = struct.Struct("<BBQI")  # format, op, version, primary_term
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


class RecordFormatError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class LoggedOp:
    op: int
    doc_id: str
    version: int
    primary_term: int
    routing: str | None = None
    source: bytes | None = None  # index operations only
    doc: bytes | None = None  # index operations: the indexable document (None: the source is)

    def encode(self) -> bytes:
        doc_id = self.doc_id.encode()
        routing = (self.routing or "").encode()
        parts = [_HEAD.pack(FORMAT, self.op, self.version, self.primary_term),
                 _U16.pack(len(doc_id)), doc_id, _U16.pack(len(routing)), routing]
        if self.op == OP_INDEX:
            assert self.source is not None
            parts += [_U32.pack(len(self.source)), self.source]
            doc = self.doc if self.doc is not None else b""
            parts += [_U32.pack(len(doc)), doc]
        return b"".join(parts)

    @classmethod
    def decode(cls, payload: bytes) -> "LoggedOp":
        try:
            fmt, op, version, term = _HEAD.unpack_from(payload, 0)
            if fmt not in (1, FORMAT) or op not in (OP_INDEX, OP_DELETE):
                raise RecordFormatError(f"unknown record format {fmt} or operation {op}")
            offset = _HEAD.size
            (n,) = _U16.unpack_from(payload, offset)
            doc_id = payload[offset + 2: offset + 2 + n].decode()
            offset += 2 + n
            (n,) = _U16.unpack_from(payload, offset)
            routing = payload[offset + 2: offset + 2 + n].decode() or None
            offset += 2 + n
            source = doc = None
            if op == OP_INDEX:
                (n,) = _U32.unpack_from(payload, offset)
                source = payload[offset + 4: offset + 4 + n]
                if len(source) != n:
                    raise RecordFormatError("truncated source")
                offset += 4 + n
                if fmt >= 2:
                    (n,) = _U32.unpack_from(payload, offset)
                    doc = payload[offset + 4: offset + 4 + n] or None
                    if len(doc or b"") != n:
                        raise RecordFormatError("truncated document")
                    offset += 4 + n
            if offset != len(payload):
                raise RecordFormatError("trailing bytes")
            return cls(op, doc_id, version, term, routing, source, doc)
        except (struct.error, UnicodeDecodeError) as exc:
            raise RecordFormatError(str(exc)) from None
