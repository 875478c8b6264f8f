"""Canary records: synthetic residents planted in an index that no legitimate workflow touches.

Any response that reveals one raises an alert (`CanaryStore.match`, called for every revealed
document); a personal canary (planted with an `owner`) is shown only to that identity, so a leaked
copy that contains it names the account it came from (`CanaryStore.attribute`).

What is stored where:

* `<config>/canary.key` - 32 random bytes, mode 0600. The config directory never travels with the
  data directory. HKDF-SHA256 derives five subkeys from it (distinct info strings): `id`, `value`,
  `seal`, `mac`, `check`.
* The store file (`CanaryStore(path, key)`, JSON, mode 0600, written atomically; it may lie in the
  data directory)::

      {"format": "strongroom.canaries", "version": 1,
       "key_check": hex HMAC(k_check, "strongroom canary key check"),
       "canaries": [{"index_uuid": "...",
                     "id_hash": hex HMAC-SHA256(k_id, index_uuid + "\\0" + doc_id),
                     "owner": "alice" | null,
                     "value_hashes": {"name": hex HMAC(k_value, field + "\\0" + normalized value), ...},
                     "sealed_id": base64(0x01 | nonce(12) | AES-256-GCM(k_seal, padded JSON
                                  {"id": doc_id, "created": ms}, AD = index_uuid))}, ...],
       "mac": hex HMAC(k_mac, canonical JSON of format, version, key_check and canaries)}

  Entries are sorted by `id_hash`, so their order says nothing about planting order.

What a thief with the data directory (and this file, without the key) learns: how many canaries each
index uuid holds and the owner names that have personal canaries. Not which records are canaries:
ids appear only keyed (`id_hash`) or sealed (`sealed_id`, padded to 128-byte blocks so even the id's
length is hidden), values only keyed. The planting time is sealed too, because auto ids embed their
creation time in milliseconds and a plaintext timestamp would point at the matching ids. Equal
`value_hashes` show which canaries share a value (e.g. a gender), never the value.

Tampering (changing an owner to frame someone, dropping entries) breaks `mac`; the store then
refuses to open under the right key. Rolling the whole file back to an older version is not detected.
A wrong key is not an error on open (the server can still start): `match` finds nothing, `ids`,
`attribute` and every change raise `CanaryKeyError`.

Limits: planted ids should come from the index's own id generator (`make_canaries(new_id=...)`),
whose output the canaries then share; the default imitates it (time, random node prefix, counter).
A canary in a demo index is told apart by anyone who regenerates the public demo data set and diffs.
"""

from __future__ import annotations

import base64
import codecs
import csv
import hashlib
import hmac
import io
import json
import os
import random
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from faker import Faker

from .. import demo
from ..engine.fsutil import atomic_write, fsync_dir

__all__ = [
    "KEY_FILE",
    "Attribution",
    "CanaryHit",
    "CanaryKeyError",
    "CanaryStore",
    "CanaryStoreError",
    "fit_to_mapping",
    "load_or_create_canary_key",
    "make_canaries",
    "name_parts",
    "normalize_value",
    "read_leak_file",
]

KEY_FILE = "canary.key"
KEY_SIZE = 32
FORMAT = "strongroom.canaries"
VERSION = 1

# Values that many ordinary people share; they are hashed (and reported when they match alongside a
# canary) but never count towards recognising one.
WEAK_FIELDS: frozenset[str] = frozenset({"gender", "birthplace", "birth_date"})
# A leaked row names a canary when it holds this many of its strong values (fewer if it has fewer).
STRONG_MATCHES_REQUIRED = 2


class CanaryStoreError(ValueError):
    """The canary store file cannot be used (unreadable, or altered since it was written)."""


class CanaryKeyError(CanaryStoreError):
    def __init__(self) -> None:
        super().__init__("the canary key does not open this canary store (wrong canary.key?)")


# --------------------------------------------------------------------------- key


def load_or_create_canary_key(config_dir: Path) -> bytes:
    """The deployment's canary key (`<config>/canary.key`, mode 0600), generated on first use.

    Two processes starting together agree on one key: the new key is linked into place, which fails
    if another process got there first, and then that key is read.
    """
    path = config_dir / KEY_FILE
    if not path.exists():
        tmp = config_dir / f".{KEY_FILE}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, os.urandom(KEY_SIZE))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
        fsync_dir(config_dir)
    key = path.read_bytes()
    if len(key) != KEY_SIZE:
        raise ValueError(f"{path} is truncated or damaged: a canary key has exactly {KEY_SIZE} bytes")
    return key


# --------------------------------------------------------------------------- generating canaries


def _imitated_auto_id(rng: random.Random, now: float) -> Callable[[], str]:
    """Ids shaped like `engine.node.Node.new_id`: 6 bytes of ms time, 3 of node prefix, 6 of counter."""
    prefix = rng.randbytes(3)
    counter = rng.randrange(1, 2_000_000)
    millis = int(now * 1000)

    def new_id() -> str:
        nonlocal counter
        counter += 1
        raw = millis.to_bytes(6, "big") + prefix + counter.to_bytes(6, "big")
        return base64.urlsafe_b64encode(raw).decode()

    return new_id


# Characters common in given names, beyond Faker's zh_CN list (about 100 characters): names drawn
# from them when a Faker name is taken (see `make_canaries`) still read like ordinary names.
GIVEN_NAME_CHARACTERS = (
    "子梓浩宇轩涵欣怡思雨嘉俊博文晨佳一诗可梦昊然皓睿泽瑞钰琪雅婷萱妍铭航鑫晓颖彤昕悦馨蕾璐瑶琳蓉"
    "薇凡帆逸哲翔旭阳杰磊宏毅诚弘景煜锦程恒远朗清澄沐霖溪岚峰岩松柏桐楠枫荣华安康宁静慧敏淑贤"
    "若依语彦修启明哲之允辰星月云霞露冰雪晴朝暮秋冬春夏兰竹菊梅蓓蕊芝芷茜莹璇琦瑾瑜璟珂玥"
)

# A canary name draws again at most this many times when the index already holds its name parts.
MAX_NAME_DRAWS = 500


def _canary_name(fake: Faker, rng: random.Random, male: bool, draw: int) -> str:
    """The first draw is a Faker name, like the demo's; later ones take a 2-character given name
    from GIVEN_NAME_CHARACTERS, which makes far more names."""
    if draw == 0:
        return fake.last_name() + (fake.first_name_male() if male else fake.first_name_female())
    return fake.last_name() + "".join(rng.choice(GIVEN_NAME_CHARACTERS) for _ in range(2))


def name_parts(name: str) -> list[str]:
    """The two-character windows of `name` that reach into its given name.

    A legitimate lookup of another person by name (a phrase of their name, analysed into CJK
    bigrams) can only return a canary whose name contains that person's whole name, so it contains
    one of these windows; when the index holds none of them, no such person exists (yet). Windows
    inside a two-character surname (欧阳) are left out: no one's full name is a surname alone.
    """
    windows = [name[i:i + 2] for i in range(len(name) - 1)] or [name]  # 王伟华 -> 王伟, 伟华
    return windows[1:] if len(name) >= 4 else windows  # 欧阳明月 -> 阳明, 明月


def make_canaries(
    count: int,
    *,
    rng: random.Random | None = None,
    new_id: Callable[[], str] | None = None,
    now: float | None = None,
    unused: Callable[[str, str], bool] | None = None,
) -> list[tuple[str, dict[str, str]]]:
    """`count` fresh synthetic residents as `(doc_id, document)`, with the demo's field set and style.

    `rng` defaults to one seeded from the operating system, so canaries are never replayable from
    the demo's seeds; a given `rng` is used only to draw seeds for private generators, so even
    `random.Random(2022)` does not replay the demo. Ids come from `new_id` (pass the index's own
    generator, `Index.new_id`, for ids truly indistinguishable from the index's auto ids); by default
    they imitate its 20-character form, with `now` (seconds, default: the clock) as their time.

    `unused(field, value)`: whether the index holds no document with `value` in `field` (for
    `name`, the value is one of `name_parts`). With it, a canary's national ID and phone number are
    nobody else's, and its name contains nobody else's name, so looking up a real person by ID, phone
    or name does not return a canary and raise a false alarm. Draws that fail are repeated
    (ValueError after MAX_NAME_DRAWS).
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError("count must be a non-negative integer")
    rng = rng if rng is not None else random.Random(os.urandom(32))
    fake = Faker("zh_CN")
    fake.seed_instance(rng.getrandbits(64))
    private = random.Random(rng.getrandbits(256))
    new_id = new_id or _imitated_auto_id(private, time.time() if now is None else now)
    issued: set[str] = set()
    ids: set[str] = set()
    canaries: list[tuple[str, dict[str, str]]] = []
    while len(canaries) < count:
        male = private.random() < 0.5
        birth = demo._random_date(private, demo._BIRTH_FIRST, demo._BIRTH_LAST)
        home = private.choice(demo.REGIONS)
        if private.random() < 0.5:
            lives = private.choice(demo._REGIONS_BY_PROVINCE[home.code[:2]])
        else:
            lives = private.choice(demo.REGIONS)
        name = _canary_name(fake, private, male, 0)
        national_id = demo._national_id(private, home, birth, male, issued)
        phone = demo._phone(private)
        if unused is not None:
            for draw in range(1, MAX_NAME_DRAWS + 1):
                if all(unused("name", part) for part in name_parts(name)):
                    break
                name = _canary_name(fake, private, male, draw)
            else:
                raise ValueError(f"no canary name found in {MAX_NAME_DRAWS} draws that contains nobody "
                                 "else's name")
            for _ in range(MAX_NAME_DRAWS):
                if unused("national_id", national_id):
                    break
                national_id = demo._national_id(private, home, birth, male, issued)
            else:
                raise ValueError("no unused national ID found for a canary")
            for _ in range(MAX_NAME_DRAWS):
                if unused("phone", phone):
                    break
                phone = demo._phone(private)
            else:
                raise ValueError("no unused phone number found for a canary")
        document = {
            "name": name,
            "gender": "男" if male else "女",
            "birth_date": birth.isoformat(),
            "birthplace": home.name,
            "national_id": national_id,
            "phone": phone,
            "address": demo._address(private, lives, fake.city_name() + fake.street_suffix()),
            "case_notes": demo._case_notes(private, birth, home),
        }
        doc_id = new_id()
        if doc_id in ids:
            raise ValueError("the id generator repeated an id")
        ids.add(doc_id)
        canaries.append((doc_id, document))
    return canaries


def fit_to_mapping(doc: dict[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
    """`doc` reduced to the fields that `properties` (an index mapping's properties) defines.

    Raises ValueError when none of them fits: such an index cannot hold a canary.
    """
    fitted = {field: value for field, value in doc.items() if field in properties}
    if not fitted:
        raise ValueError(
            f"no canary field fits the index's fields {sorted(properties)}: "
            f"a canary needs at least one of {sorted(doc)}"
        )
    return fitted


# --------------------------------------------------------------------------- normalization

_DIGIT_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212.()/+]")
_DIGITS = re.compile(r"[0-9]+x?")
_SPACES = re.compile(r"\s+")
_ASCII_LETTER = re.compile(r"[a-z]")


def normalize_value(value: str) -> str:
    """The form a value is compared in: NFKC, trimmed, case-folded; digit strings without separators.

    "138-1234-5678", "+86 138 1234 5678" and "１３８１２３４５６７８" all give "13812345678";
    "1990-03-07" gives "19900307"; "张 伟" gives "张伟"; other text keeps single inner spaces.
    """
    text = unicodedata.normalize("NFKC", value).strip().casefold()
    compact = _DIGIT_SEPARATORS.sub("", text)
    if compact and _DIGITS.fullmatch(compact):
        if len(compact) == 13 and compact.startswith("861"):
            compact = compact[2:]
        elif len(compact) == 15 and compact.startswith("00861"):
            compact = compact[4:]
        return compact
    text = _SPACES.sub(" ", text)
    if not _ASCII_LETTER.search(text):  # Chinese text: spaces are layout, not content.
        text = text.replace(" ", "")
    return text


# --------------------------------------------------------------------------- the store


@dataclass(frozen=True)
class CanaryHit:
    owner: str | None
    created: int  # ms since the epoch


@dataclass(frozen=True)
class Attribution:
    """Canaries of one owner (None: general canaries) found in a leaked file."""

    owner: str | None
    matches: int  # distinct canaries found
    fields: tuple[str, ...]  # our names of the fields whose values were found
    rows: int  # leaked rows that held one of them
    index_uuids: tuple[str, ...]  # indices the canaries were planted in


@dataclass(frozen=True)
class _Canary:
    index_uuid: str
    id_hash: str
    owner: str | None
    created: int
    doc_id: str
    value_hashes: dict[str, str]
    sealed_id: str

    def record(self) -> dict[str, Any]:
        return {"index_uuid": self.index_uuid, "id_hash": self.id_hash, "owner": self.owner,
                "value_hashes": self.value_hashes, "sealed_id": self.sealed_id}

    def recognised_by(self, matched: set[str]) -> bool:
        """Whether a row holding the values of `matched` fields names this canary."""
        strong = [field for field in self.value_hashes if field not in WEAK_FIELDS]
        counted = matched.difference(WEAK_FIELDS) if strong else matched
        return len(counted) >= min(STRONG_MATCHES_REQUIRED, len(strong) or len(self.value_hashes))


def _subkey(key: bytes, purpose: str) -> bytes:
    info = f"strongroom.canaries.v1|{purpose}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key)


def _mac_hex(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()


class CanaryStore:
    """The planted canaries of every index, by keyed id hash. Thread-safe.

    Readers (`match`, `ids`) use an immutable snapshot that writers replace whole, so they take no
    lock; writers serialise on one lock, persist first and publish after.
    """

    SEAL_VERSION: ClassVar[bytes] = b"\x01"
    PAD: ClassVar[int] = 128  # Ids up to about 85 characters all seal to one size.

    def __init__(self, path: Path, key: bytes, *, clock: Callable[[], float] = time.time) -> None:
        if len(key) != KEY_SIZE:
            raise ValueError(f"the canary key must be {KEY_SIZE} bytes")
        self._path = path
        self._clock = clock
        self._k_id = _subkey(key, "id")
        self._k_value = _subkey(key, "value")
        self._k_mac = _subkey(key, "mac")
        self._aead = AESGCM(_subkey(key, "seal"))
        self._key_check = _mac_hex(_subkey(key, "check"), "strongroom canary key check")
        self._lock = threading.Lock()
        self._key_ok = True
        # index uuid -> id_hash -> canary; never mutated once published.
        self._by_index: dict[str, dict[str, _Canary]] = {}
        self._load()

    # -- persistence -----------------------------------------------------------------------
    def _load(self) -> None:
        if not self._path.exists():
            return
        try:
            data = json.loads(self._path.read_bytes())
            if data.get("format") != FORMAT or data.get("version") != VERSION:
                raise CanaryStoreError(f"{self._path} is not a version {VERSION} canary store")
            key_check, records, mac = data["key_check"], data["canaries"], data["mac"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            if isinstance(exc, CanaryStoreError):
                raise
            raise CanaryStoreError(f"{self._path} is not a readable canary store") from None
        if not hmac.compare_digest(str(key_check), self._key_check):
            self._key_ok = False  # Open, but useless: match finds nothing, the rest refuses.
            return
        if not hmac.compare_digest(str(mac), self._file_mac(records)):
            raise CanaryStoreError(f"{self._path} was altered since it was written")
        by_index: dict[str, dict[str, _Canary]] = {}
        try:
            for record in records:
                doc_id, created = self._unseal(record["sealed_id"], record["index_uuid"])
                canary = _Canary(record["index_uuid"], record["id_hash"], record["owner"], created, doc_id,
                                 dict(record["value_hashes"]), record["sealed_id"])
                by_index.setdefault(canary.index_uuid, {})[canary.id_hash] = canary
        except (KeyError, TypeError, ValueError):
            raise CanaryStoreError(f"{self._path} holds a damaged canary entry") from None
        self._by_index = by_index

    def _file_mac(self, records: list[dict[str, Any]]) -> str:
        canonical = json.dumps({"format": FORMAT, "version": VERSION, "key_check": self._key_check,
                                "canaries": records}, sort_keys=True, separators=(",", ":"))
        return _mac_hex(self._k_mac, canonical)

    def _persist(self, by_index: dict[str, dict[str, _Canary]]) -> None:
        canaries = sorted((c for entries in by_index.values() for c in entries.values()),
                          key=lambda c: (c.id_hash, c.index_uuid))
        records = [c.record() for c in canaries]
        data = {"format": FORMAT, "version": VERSION, "key_check": self._key_check,
                "canaries": records, "mac": self._file_mac(records)}
        atomic_write(self._path, json.dumps(data, indent=1).encode("utf-8"), mode=0o600)

    # -- primitives --------------------------------------------------------------------------
    def _id_hash(self, index_uuid: str, doc_id: str) -> str:
        return _mac_hex(self._k_id, index_uuid + "\0" + doc_id)

    def _value_hash(self, field: str, normalized: str) -> str:
        return _mac_hex(self._k_value, field + "\0" + normalized)

    def _seal(self, doc_id: str, created: int, index_uuid: str) -> str:
        plain = json.dumps({"id": doc_id, "created": created}).encode("utf-8")
        plain += b" " * (-len(plain) % self.PAD)  # Hide the id's length.
        nonce = os.urandom(12)
        sealed = self.SEAL_VERSION + nonce + self._aead.encrypt(nonce, plain, index_uuid.encode("utf-8"))
        return base64.b64encode(sealed).decode()

    def _unseal(self, sealed_b64: str, index_uuid: str) -> tuple[str, int]:
        sealed = base64.b64decode(sealed_b64, validate=True)
        if sealed[:1] != self.SEAL_VERSION or len(sealed) < 1 + 12 + 16:
            raise ValueError("bad envelope")
        try:
            plain = self._aead.decrypt(sealed[1:13], sealed[13:], index_uuid.encode("utf-8"))
        except InvalidTag:
            raise ValueError("bad envelope") from None
        content = json.loads(plain)
        doc_id, created = content["id"], content["created"]
        if not isinstance(doc_id, str) or not isinstance(created, int):
            raise ValueError("bad envelope")
        return doc_id, created

    def _require_key(self) -> None:
        if not self._key_ok:
            raise CanaryKeyError()

    # -- changes -----------------------------------------------------------------------------
    def plant(self, index_uuid: str, docs: list[tuple[str, dict[str, Any]]], owner: str | None) -> None:
        """Record `docs` (already indexed in `index_uuid`) as canaries of `owner` (None: general)."""
        self._require_key()
        if not isinstance(index_uuid, str) or not index_uuid or "\0" in index_uuid:
            raise ValueError("index_uuid must be a non-empty string")
        if owner is not None and (not isinstance(owner, str) or not owner):
            raise ValueError("owner must be a non-empty string or None")
        created = int(self._clock() * 1000)
        fresh: dict[str, _Canary] = {}
        for doc_id, doc in docs:
            if not isinstance(doc_id, str) or not doc_id:
                raise ValueError("a canary id must be a non-empty string")
            id_hash = self._id_hash(index_uuid, doc_id)
            if id_hash in fresh:
                raise ValueError(f"canary id [{doc_id}] is given twice")
            value_hashes = {field: self._value_hash(field, normalize_value(value))
                            for field, value in sorted(doc.items())
                            if isinstance(value, str) and normalize_value(value)}
            if not value_hashes:
                raise ValueError(f"canary [{doc_id}] has no string value to recognise it by")
            fresh[id_hash] = _Canary(index_uuid, id_hash, owner, created, doc_id, value_hashes,
                                     self._seal(doc_id, created, index_uuid))
        with self._lock:
            current = self._by_index.get(index_uuid, {})
            clash = next((c.doc_id for h, c in fresh.items() if h in current), None)
            if clash is not None:
                raise ValueError(f"[{clash}] is already a canary of this index")
            by_index = dict(self._by_index)
            by_index[index_uuid] = {**current, **fresh}
            self._persist(by_index)
            self._by_index = by_index

    def remove(self, index_uuid: str, doc_ids: Iterable[str]) -> int:
        """Forget the given canaries of `index_uuid` (ids that are not canaries are ignored)."""
        self._require_key()
        hashes_ = {self._id_hash(index_uuid, doc_id) for doc_id in doc_ids}
        with self._lock:
            current = self._by_index.get(index_uuid, {})
            kept = {h: c for h, c in current.items() if h not in hashes_}
            removed = len(current) - len(kept)
            if removed:
                by_index = dict(self._by_index)
                if kept:
                    by_index[index_uuid] = kept
                else:
                    del by_index[index_uuid]
                self._persist(by_index)
                self._by_index = by_index
            return removed

    def forget_index(self, index_uuid: str) -> int:
        """Forget every canary of `index_uuid` (the index was deleted); returns how many."""
        self._require_key()
        with self._lock:
            if index_uuid not in self._by_index:
                return 0
            by_index = dict(self._by_index)
            removed = len(by_index.pop(index_uuid))
            self._persist(by_index)
            self._by_index = by_index
            return removed

    # -- reads -------------------------------------------------------------------------------
    def match(self, index_uuid: str, doc_id: str) -> CanaryHit | None:
        """The canary that `doc_id` of `index_uuid` is, if it is one. One HMAC and a dict lookup."""
        entries = self._by_index.get(index_uuid)
        if not entries:
            return None
        canary = entries.get(self._id_hash(index_uuid, doc_id))
        return None if canary is None else CanaryHit(canary.owner, canary.created)

    def ids(self, index_uuid: str) -> list[tuple[str, str | None]]:
        """`(doc_id, owner)` of every canary of `index_uuid`, sorted by id."""
        self._require_key()
        return sorted((c.doc_id, c.owner) for c in self._by_index.get(index_uuid, {}).values())

    def attribute(self, rows: Iterable[dict[str, str]]) -> list[Attribution]:
        """Which owners' canaries a leaked file holds, most canaries first.

        Every cell is compared with every stored value, whatever its column is called. A row names a
        canary when it holds two of the canary's strong values (name, national_id, phone, address,
        case_notes; fewer if the canary has fewer): a shared name or birthplace alone is common.
        """
        self._require_key()
        snapshot = [c for entries in self._by_index.values() for c in entries.values()]
        lookup: dict[str, list[tuple[_Canary, str]]] = {}
        for canary in snapshot:
            for field, value_hash in canary.value_hashes.items():
                lookup.setdefault(value_hash, []).append((canary, field))
        fields = sorted({field for canary in snapshot for field in canary.value_hashes})
        cache: dict[str, list[tuple[_Canary, str]]] = {}
        found: dict[tuple[str, str], tuple[_Canary, set[str], int]] = {}
        for row in rows:
            in_row: dict[tuple[str, str], tuple[_Canary, set[str]]] = {}
            for cell in row.values():
                if not isinstance(cell, str):
                    continue
                normalized = normalize_value(cell)
                if not normalized:
                    continue
                hits = cache.get(normalized)
                if hits is None:
                    hits = [hit for field in fields for hit in lookup.get(self._value_hash(field, normalized), ())]
                    if len(cache) > 100_000:
                        cache.clear()
                    cache[normalized] = hits
                for canary, field in hits:
                    in_row.setdefault((canary.index_uuid, canary.id_hash), (canary, set()))[1].add(field)
            for ref, (canary, matched) in in_row.items():
                if canary.recognised_by(matched):
                    _, seen, count = found.get(ref, (canary, set(), 0))
                    found[ref] = (canary, seen | matched, count + 1)
        by_owner: dict[str | None, tuple[set[tuple[str, str]], set[str], int, set[str]]] = {}
        for ref, (canary, matched, count) in found.items():
            refs, owner_fields, rows_count, indices = by_owner.setdefault(canary.owner, (set(), set(), 0, set()))
            refs.add(ref)
            owner_fields |= matched
            indices.add(canary.index_uuid)
            by_owner[canary.owner] = (refs, owner_fields, rows_count + count, indices)
        result = [Attribution(owner, len(refs), tuple(sorted(owner_fields)), rows_count, tuple(sorted(indices)))
                  for owner, (refs, owner_fields, rows_count, indices) in by_owner.items()]
        result.sort(key=lambda a: (-a.matches, -a.rows, a.owner is None, a.owner or ""))
        return result


# --------------------------------------------------------------------------- leaked files

_SNIFF_BYTES = 64 * 1024


def _encoding(path: Path) -> str:
    """utf-16 (by BOM), utf-8-sig (valid UTF-8, BOM or not), else gb18030 (a superset of GBK)."""
    with path.open("rb") as raw:
        head = raw.read(4)
        if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            return "utf-16"
        raw.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            while chunk := raw.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "gb18030"
    return "utf-8-sig"


def _text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False)


def _flatten(value: Any, prefix: str, into: dict[str, str]) -> dict[str, str]:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), into)
    elif isinstance(value, list):
        for n, item in enumerate(value):
            _flatten(item, f"{prefix}.{n}" if prefix else str(n), into)
    elif value is not None:
        into[prefix or "value"] = _text_of(value)
    return into


def _csv_rows(stream: io.TextIOBase, path: Path) -> Iterator[dict[str, str]]:
    sample = stream.read(_SNIFF_BYTES)
    stream.seek(0)
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",\t;|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(stream, dialect)
    try:
        header = next(reader, None)
        if header is None:
            return
        names: list[str] = []
        for n, name in enumerate(header):
            name = name.strip() or f"column_{n + 1}"
            names.append(name if name not in names else f"{name}#{n + 1}")
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            yield {(names[n] if n < len(names) else f"column_{n + 1}"): cell for n, cell in enumerate(cells)}
    except csv.Error as exc:
        raise ValueError(f"{path}: line {reader.line_num}: not readable as CSV ({exc})") from None


def _json_rows(stream: io.TextIOBase, path: Path, first: str) -> Iterator[dict[str, str]]:
    if first == "{":  # NDJSON, unless its first line is not a whole JSON value (pretty-printed JSON).
        line_no, whole_file = 0, False
        for line in stream:
            line_no += 1
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError:
                if line_no == 1:
                    whole_file = True
                    break
                raise ValueError(f"{path}: line {line_no} is not JSON") from None
            yield _flatten(value, "", {})
        if not whole_file:
            return
        stream.seek(0)
    try:
        value = json.load(stream)
    except ValueError:
        raise ValueError(f"{path} is not JSON") from None
    for item in value if isinstance(value, list) else [value]:
        yield _flatten(item, "", {})


def read_leak_file(path: Path) -> Iterator[dict[str, str]]:
    """The rows of a leaked file as `{column: text}`, streamed for CSV and NDJSON.

    CSV (or TSV, ";" or "|" separated) with a header row, in UTF-8 (with or without BOM), UTF-16
    with BOM, or GB18030/GBK; NDJSON (one JSON value per line, e.g. a `_bulk` body); or one JSON
    document (an array gives one row per element, an object, such as a `_search` response, one
    row). Nested values are flattened to `a.b.0` keys; numbers and booleans become their JSON text.
    """
    encoding = _encoding(path)
    with path.open("r", encoding=encoding, newline="") as stream:
        head = stream.read(_SNIFF_BYTES).lstrip()
        first = head[:1]
        stream.seek(0)
        suffix = path.suffix.lower()
        if suffix in (".csv", ".tsv", ".txt") or first not in ("{", "["):
            yield from _csv_rows(stream, path)
        else:
            yield from _json_rows(stream, path, first)

