"""Sealing: a document's `_source` at rest, AES-256-GCM under the index's current data key version.

Envelope (format 1):

    1 byte   format version (0x01)
    4 bytes  data key version, big endian
    12 bytes nonce (random for every seal)
    rest     ciphertext and 16-byte tag

The associated data binds the format version, the key version, the index uuid and the document id,
so a sealed source copied to another document or index, or relabelled with another key version,
does not open.

Leaks: the plaintext is padded before sealing (a 0x80 byte, then zeros, up to the next multiple
of 32 bytes), so the sealed size reveals the length rounded up to 32 bytes, and nothing finer.
Random 96-bit nonces are safe for about 2**32 seals per key version; rotate before that.

Every failure to open is the same `SealError`, which never says which check failed.
"""

from __future__ import annotations

import functools
import os
import struct

from cryptography.exceptions import InvalidTag

from .keys import DataKeys

FORMAT_VERSION = 1
NONCE_SIZE = 12
TAG_SIZE = 16
PAD_BLOCK = 32
_HEADER = struct.Struct(">BI")  # format version, key version
_LENGTH = struct.Struct(">I")
_BODY = _HEADER.size + NONCE_SIZE  # where the ciphertext starts
_MIN_SEALED = _BODY + TAG_SIZE + PAD_BLOCK
_AAD_LABEL = b"strongroom seal\x00"


class SealError(Exception):
    """Sealed data did not open: altered, truncated, or bound to another document, index or key."""

    def __init__(self) -> None:
        super().__init__("sealed data could not be opened: it was altered, or belongs to another"
                         " document, index or key")


def seal(keys: DataKeys, plaintext: bytes, *, index_uuid: str, doc_id: str,
         _nonce: bytes | None = None) -> bytes:
    """Seal `plaintext` for one document of one index. `_nonce` is for known-answer tests only."""
    version = keys.current_version
    nonce = os.urandom(NONCE_SIZE) if _nonce is None else _nonce
    if len(nonce) != NONCE_SIZE:
        raise ValueError("a nonce is 12 bytes")
    header = _HEADER.pack(FORMAT_VERSION, version)
    aead = keys.aead(version)
    return header + nonce + aead.encrypt(nonce, _pad(plaintext), _aad(header, index_uuid, doc_id))


def unseal(keys: DataKeys, sealed: bytes, *, index_uuid: str, doc_id: str) -> bytes:
    """Open what `seal` produced for the same index and document. `SealError` on any mismatch."""
    if type(sealed) is not bytes:
        sealed = bytes(sealed)
    if len(sealed) < _MIN_SEALED:
        raise SealError()
    format_version, version = _HEADER.unpack_from(sealed)
    if format_version != FORMAT_VERSION:
        raise SealError()
    try:
        aead = keys.aead(version)
    except KeyError:  # a version these keys do not hold
        raise SealError() from None
    try:
        padded = aead.decrypt(sealed[_HEADER.size:_BODY], sealed[_BODY:],
                              _aad(sealed[:_HEADER.size], index_uuid, doc_id))
    except InvalidTag:
        raise SealError() from None
    return _unpad(padded)


def _aad(header: bytes, index_uuid: str, doc_id: str) -> bytes:
    """Label, header, then index uuid and document id, each length-prefixed: unambiguous."""
    if not index_uuid or not doc_id:
        raise ValueError("sealing needs an index uuid and a document id")
    doc = doc_id.encode("utf-8", "surrogatepass")
    return b"".join((_AAD_LABEL, header, _uuid_part(index_uuid), _LENGTH.pack(len(doc)), doc))


@functools.lru_cache(maxsize=256)
def _uuid_part(index_uuid: str) -> bytes:
    """The index's length-prefixed uuid (a handful of indices: made once each)."""
    uuid = index_uuid.encode("utf-8", "surrogatepass")
    return _LENGTH.pack(len(uuid)) + uuid


def _pad(plaintext: bytes) -> bytes:
    """ISO/IEC 7816-4 padding: 0x80, then zeros to a multiple of 32 (always at least one byte)."""
    fill = PAD_BLOCK - len(plaintext) % PAD_BLOCK
    return bytes(plaintext) + b"\x80" + bytes(fill - 1)


def _unpad(padded: bytes) -> bytes:
    # Only ever runs on authenticated plaintext, so it is no padding oracle.
    end = len(padded.rstrip(b"\x00")) - 1
    if end < 0 or padded[end] != 0x80 or len(padded) - end > PAD_BLOCK:
        raise SealError()
    return padded[:end]
