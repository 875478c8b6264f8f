"""Steal the data directory: 10,000 demo residents loaded over HTTPS, the server stopped, then every
file under the data and config directories (except the master key) and the server's own output
searched for every protected value — raw, UTF-16, digits-only, separated, hex and base64 — and
every shard opened directly with tantivy (no keys) to read every stored document and to look up
every protected value as a term of every field: nothing. The same over a snapshot repository taken
with 8,000 of them loaded (its shards rebuilt from the manifest and opened with tantivy alike).

Protected here (the demo mapping): name, national_id, phone, address, birth_date and case_notes.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
import tantivy

from live import LiveServer, start_server
from strongroom.demo import RESIDENTS_BODY, RESIDENTS_INDEX, generate_residents

COUNT = 10_000
DIGIT_FIELDS = ("national_id", "phone")
SEPARATORS = re.compile(rb"[ \-_.,:/]")


@dataclass
class Loot:
    server: LiveServer
    residents: list[dict[str, str]]
    repository: Path  # a snapshot repository holding 8,000 of the residents


@pytest.fixture(scope="module")
def stolen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loot]:
    root = tmp_path_factory.mktemp("steal")
    (root / "config").mkdir(mode=0o700)
    (root / "config" / "strongroom.toml").write_text(f'[path]\nrepo = ["{root / "backups"}"]\n')
    server = start_server(root / "data", root / "config")
    residents = [doc for _id, doc in generate_residents(COUNT, seed=7)]
    with server.client() as es:
        es.indices.create(index=RESIDENTS_INDEX, **RESIDENTS_BODY)
        es.snapshot.create_repository(name="backups", repository={
            "type": "fs", "settings": {"location": str(root / "backups" / "nightly")}})
        for start in range(0, COUNT, 2000):
            if start == COUNT - 2000:
                assert es.snapshot.create(repository="backups", snapshot="s1", wait_for_completion=True,
                                          indices=RESIDENTS_INDEX)["snapshot"]["state"] == "SUCCESS"
            lines = []
            for number, doc in enumerate(residents[start:start + 2000], start):
                lines += [{"index": {"_index": RESIDENTS_INDEX, "_id": f"r{number}"}}, doc]
            assert not es.bulk(operations=lines)["errors"]
        es.indices.refresh(index=RESIDENTS_INDEX)
        # Search still works on the protected fields (the point of blind indexes).
        probe = residents[123]
        assert es.count(index=RESIDENTS_INDEX, query={"term": {"national_id": probe["national_id"]}})["count"] == 1
        assert es.count(index=RESIDENTS_INDEX, query={"match_phrase": {"address": probe["address"]}})["count"] >= 1
    # Half the documents stay in the write-ahead log only: kill before they are committed to segments.
    server.kill()
    yield Loot(server, residents, root / "backups" / "nightly")


def _files(loot: Loot, where: str) -> Iterator[tuple[Path, bytes]]:
    """Every file of the data and config directories (but the master key) and the server's output; or
    every file of the snapshot repository."""
    roots = [loot.repository] if where == "snapshot" else [loot.server.data_dir, loot.server.config_dir]
    seen = 0
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.name != "master.key":
                seen += 1
                yield path, path.read_bytes()
    assert seen > 10
    if where == "data":
        yield Path("<server output>"), loot.server.log_text().encode()


def _tantivy_dirs(loot: Loot, where: str, scratch: Path) -> list[Path]:
    """Shard directories to open with tantivy; a snapshot's are rebuilt from its manifest and blobs (the
    layout is documented, so a thief can too)."""
    if where == "data":
        return [meta.parent for meta in loot.server.data_dir.rglob("meta.json")]
    dirs = []
    for manifest_path in (loot.repository / "snapshots").glob("*.json"):
        manifest = orjson.loads(manifest_path.read_bytes())
        for name, index in manifest["indices"].items():
            for number, shard in index["shards"].items():
                target = scratch / name / number
                target.mkdir(parents=True)
                for fname, entry in shard["files"].items():
                    blob = loot.repository / "blobs" / entry["blob"][:2] / entry["blob"]
                    (target / fname).write_bytes(blob.read_bytes())
                dirs.append(target)
    return dirs


def _digit_runs(data: bytes) -> Iterator[bytes]:
    """Digit strings a value could hide in: raw or separated, UTF-16, hex of ASCII, and base64."""
    for run in re.finditer(rb"\d(?:[ \-_.,:/]?\d){9,}", data):
        yield SEPARATORS.sub(b"", run.group())
    for run in re.finditer(rb"(?:\d\x00){10,}", data):  # UTF-16-LE
        yield run.group()[::2]
    for run in re.finditer(rb"(?:3\d){10,}", data, re.IGNORECASE):  # hex of ASCII digits
        yield binascii.unhexlify(run.group())
    for run in re.finditer(rb"[A-Za-z0-9+/]{16,}", data):  # base64, at every alignment
        text = run.group()
        for shift in range(4):
            chunk = text[shift:]
            chunk = chunk[:len(chunk) - len(chunk) % 4]
            try:
                decoded = base64.b64decode(chunk, validate=True)
            except (binascii.Error, ValueError):
                continue
            yield from (m.group() for m in re.finditer(rb"\d{10,}", decoded))


@pytest.mark.parametrize("where", ["data", "snapshot"])
def test_no_protected_digits_in_any_file(stolen: Loot, where: str) -> None:
    residents = stolen.residents
    secrets = {doc[f].encode() for doc in residents for f in DIGIT_FIELDS}
    secrets |= {doc["birth_date"].replace("-", "").encode() for doc in residents}
    lengths = sorted({len(s) for s in secrets})
    scanned = 0
    for path, data in _files(stolen, where):
        scanned += len(data)
        for run in _digit_runs(data):
            for length in lengths:
                for i in range(len(run) - length + 1):
                    assert run[i:i + length] not in secrets, f"{path} holds a protected number"
    assert scanned > 1_000_000  # the scan saw real data


@pytest.mark.parametrize("where", ["data", "snapshot"])
def test_no_protected_text_in_any_file(stolen: Loot, where: str) -> None:
    residents = stolen.residents
    names = {doc["name"] for doc in residents}
    addresses = [doc["address"] for doc in residents[:2000]]
    notes = [doc["case_notes"] for doc in residents[:2000] if doc.get("case_notes")]
    for path, data in _files(stolen, where):
        for encoding in ("utf-8", "utf-16-le"):
            text = data.decode(encoding, errors="ignore")
            runs = set(re.findall(r"[\u4e00-\u9fff]{2,}", text))
            # Random ciphertext read as UTF-16 is full of CJK pairs; three characters do not occur by chance.
            wanted = names if encoding == "utf-8" else {n for n in names if len(n) >= 3}
            assert not runs & wanted, f"{path} holds a protected name ({encoding})"
            joined = "\n".join(runs)
            for address in addresses:  # the street part: the region prefix is also a plain birthplace
                street = re.sub(r"^.*?[区县市]", "", address)
                street_cjk = "".join(re.findall(r"[\u4e00-\u9fff]+", street))
                assert len(street_cjk) < 3 or street_cjk not in joined, f"{path} holds an address ({encoding})"
            for note in notes[:300]:
                words = max(re.findall(r"[\u4e00-\u9fff]{4,}", note), key=len, default="")
                assert not words or words not in joined, f"{path} holds case notes ({encoding})"


@pytest.mark.parametrize("where", ["data", "snapshot"])
def test_tantivy_opened_without_keys_shows_nothing(stolen: Loot, where: str, tmp_path: Path) -> None:
    sample = stolen.residents[:500]
    metas = [directory / "meta.json" for directory in _tantivy_dirs(stolen, where, tmp_path)]
    assert metas
    opened = 0
    for meta in metas:
        index = tantivy.Index.open(str(meta.parent))
        index.reload()
        searcher = index.searcher()
        schema_fields = [f["name"] for f in orjson.loads(meta.read_bytes())["schema"]]
        total = searcher.num_docs
        opened += total
        stored = b"".join(
            orjson.dumps(searcher.doc(address).to_dict(), default=lambda v: v.hex() if isinstance(v, bytes) else str(v))
            for _score, address in searcher.search(tantivy.Query.all_query(), max(total, 1)).hits)
        for doc in sample:
            for field in ("national_id", "phone", "name", "address"):
                assert doc[field].encode() not in stored
                assert doc[field].encode().hex().encode() not in stored
        for doc in sample[:100]:
            for name in schema_fields:
                entry = next(e for e in orjson.loads(meta.read_bytes())["schema"] if e["name"] == name)
                if entry["type"] != "text" or not (entry["options"].get("indexing") or {}):
                    continue
                for field in ("national_id", "phone", "name", "birth_date"):
                    query = tantivy.Query.term_query(index.schema, name, doc[field])
                    assert searcher.search(query, 1).count == 0, f"{field} is a term of {name}"
    assert opened >= 8000  # the shards really held the residents
