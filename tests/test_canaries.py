"""Canary records: generation, the keyed store, what its file hides, and leak attribution."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import random
import re
import stat
import threading
from pathlib import Path

import pytest

from strongroom.demo import RESIDENTS_BODY, generate_residents
from strongroom.pii import detect, is_mainland_mobile, is_valid_national_id
from strongroom.security.canaries import (
    Attribution,
    CanaryHit,
    CanaryKeyError,
    CanaryStore,
    CanaryStoreError,
    fit_to_mapping,
    load_or_create_canary_key,
    make_canaries,
    name_parts,
    normalize_value,
    read_leak_file,
)

UUID_A, UUID_B = "xq3MiC0BSlyNqcJ9ZL7dtw", "Z0n2aYYrQ5aXc8Vjbd8Q1A"
KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
FIELDS = set(RESIDENTS_BODY["mappings"]["properties"])
AUTO_ID = re.compile(r"[A-Za-z0-9_-]{20}")
_CJK_NAME = re.compile(r"[\u4e00-\u9fff]{2,4}")


@pytest.fixture(scope="module")
def ordinary() -> list[dict[str, str]]:
    return [doc for _, doc in generate_residents(500, seed=2022)]


def store_at(tmp_path: Path, key: bytes = KEY) -> CanaryStore:
    return CanaryStore(tmp_path / "canaries.json", key)


# --------------------------------------------------------------------------- key


def test_key_is_created_private_and_reused(tmp_path: Path) -> None:
    key = load_or_create_canary_key(tmp_path)
    path = tmp_path / "canary.key"
    assert len(key) == 32 and path.read_bytes() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_canary_key(tmp_path) == key
    assert [p.name for p in tmp_path.iterdir()] == ["canary.key"]  # No temporary file left behind.


def test_truncated_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "canary.key").write_bytes(os.urandom(31))
    with pytest.raises(ValueError, match="truncated"):
        load_or_create_canary_key(tmp_path)


# --------------------------------------------------------------------------- generation


def test_canaries_are_plausible_residents() -> None:
    canaries = make_canaries(200)
    for doc_id, doc in canaries:
        assert AUTO_ID.fullmatch(doc_id), doc_id
        assert set(doc) == FIELDS
        assert is_valid_national_id(doc["national_id"]) and "national_id" in detect(doc["national_id"])
        assert is_mainland_mobile(doc["phone"]) and "mobile" in detect(doc["phone"])
        assert _CJK_NAME.fullmatch(doc["name"]), doc["name"]
        # The 17th digit carries the gender; the id carries the birth date.
        assert (int(doc["national_id"][16]) % 2 == 1) == (doc["gender"] == "男")
        assert doc["national_id"][6:14] == doc["birth_date"].replace("-", "")
    assert len({doc_id for doc_id, _ in canaries}) == 200
    assert len({doc["national_id"] for _, doc in canaries}) == 200


def test_default_ids_have_the_auto_id_layout() -> None:
    [(doc_id, _)] = make_canaries(1, now=1_700_000_000.123)
    raw = base64.urlsafe_b64decode(doc_id)
    assert len(raw) == 15 and int.from_bytes(raw[:6], "big") == 1_700_000_000_123


def test_ids_come_from_the_given_generator() -> None:
    ids = iter(["AAAAAAAAAAAAAAAAAAA1", "AAAAAAAAAAAAAAAAAAA2"])
    assert [doc_id for doc_id, _ in make_canaries(2, new_id=lambda: next(ids))] == [
        "AAAAAAAAAAAAAAAAAAA1", "AAAAAAAAAAAAAAAAAAA2"]


def test_canaries_differ_between_calls() -> None:
    first, second = make_canaries(20), make_canaries(20)
    assert not {i for i, _ in first} & {i for i, _ in second}
    assert not {d["national_id"] for _, d in first} & {d["national_id"] for _, d in second}
    assert [d["name"] for _, d in first] != [d["name"] for _, d in second]


def test_canaries_never_replay_the_demo(ordinary: list[dict[str, str]]) -> None:
    demo_ids = {doc["national_id"] for doc in ordinary}
    demo_phones = {doc["phone"] for doc in ordinary}
    for rng in (None, random.Random(2022)):  # Even the demo's own seed does not replay it.
        canaries = [doc for _, doc in make_canaries(500, rng=rng)]
        assert not any(doc in ordinary for doc in canaries)
        assert not {doc["national_id"] for doc in canaries} & demo_ids
        assert not {doc["phone"] for doc in canaries} & demo_phones


def test_canary_names_do_not_follow_the_demo_sequence(ordinary: list[dict[str, str]]) -> None:
    for rng in (None, random.Random(2022)):
        names = [doc["name"] for _, doc in make_canaries(100, rng=rng)]
        assert sum(a == b["name"] for a, b in zip(names, ordinary)) < 5


def test_name_parts() -> None:
    assert name_parts("王伟") == ["王伟"]
    assert name_parts("王伟华") == ["王伟", "伟华"]
    assert name_parts("欧阳明月") == ["阳明", "明月"]  # not the surname alone
    assert name_parts("李") == ["李"]


def test_canaries_avoid_what_the_index_holds(ordinary: list[dict[str, str]]) -> None:
    """With `unused` (the index asked through its blind tokens), no real person's name lookup, ID or
    phone finds a canary. The index here is the demo's residents, whose names share Faker's few given
    names: without `unused`, canaries take those names too."""
    held: dict[str, set[str]] = {"national_id": {d["national_id"] for d in ordinary},
                                 "phone": {d["phone"] for d in ordinary},
                                 "name": {d["name"][i:i + 2] for d in ordinary for i in range(len(d["name"]) - 1)}}
    asked: list[tuple[str, str]] = []

    def unused(field: str, value: str) -> bool:
        asked.append((field, value))
        return value not in held[field]

    def clashes(canaries: list[dict[str, str]]) -> list[tuple[str, str]]:
        return [(d["name"], c["name"]) for c in canaries for d in ordinary if d["name"] in c["name"]]

    assert clashes([doc for _, doc in make_canaries(200, rng=random.Random(3))])  # what this prevents
    canaries = [doc for _, doc in make_canaries(200, rng=random.Random(3), unused=unused)]
    assert clashes(canaries) == []
    assert {"national_id", "phone", "name"} <= {field for field, _ in asked}
    for doc in canaries:
        assert _CJK_NAME.fullmatch(doc["name"]) and is_valid_national_id(doc["national_id"])
    with pytest.raises(ValueError, match="no canary name"):
        make_canaries(1, unused=lambda field, value: field != "name")


def test_seeded_rng_is_reproducible_apart_from_time() -> None:
    first = make_canaries(3, rng=random.Random(5), now=1.0)
    assert make_canaries(3, rng=random.Random(5), now=1.0) == first


def test_fit_to_mapping() -> None:
    [(_, doc)] = make_canaries(1)
    assert fit_to_mapping(doc, {"name": {}, "phone": {}, "vin": {}}) == {"name": doc["name"], "phone": doc["phone"]}
    with pytest.raises(ValueError, match=r"\['sku', 'vin'\]"):
        fit_to_mapping(doc, {"vin": {}, "sku": {}})


# --------------------------------------------------------------------------- the store


def test_plant_match_ids_round_trip_and_persist(tmp_path: Path) -> None:
    now = [1_700_000_000.5]
    store = CanaryStore(tmp_path / "canaries.json", KEY, clock=lambda: now[0])
    general, alices = make_canaries(3), make_canaries(2)
    store.plant(UUID_A, general, None)
    store.plant(UUID_A, alices, "alice")
    assert stat.S_IMODE((tmp_path / "canaries.json").stat().st_mode) == 0o600
    for reopened in (store, store_at(tmp_path)):
        assert reopened.match(UUID_A, alices[0][0]) == CanaryHit("alice", 1_700_000_000_500)
        assert reopened.match(UUID_A, general[1][0]) == CanaryHit(None, 1_700_000_000_500)
        assert reopened.match(UUID_A, "AAAAAAAAAAAAAAAAAAAA") is None
        assert reopened.ids(UUID_A) == sorted([(i, None) for i, _ in general] + [(i, "alice") for i, _ in alices])
    assert store.remove(UUID_A, [general[0][0], "not-a-canary"]) == 1
    assert store_at(tmp_path).match(UUID_A, general[0][0]) is None
    assert len(store_at(tmp_path).ids(UUID_A)) == 4


def test_planting_an_id_twice_is_refused(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    canaries = make_canaries(2)
    store.plant(UUID_A, canaries, None)
    with pytest.raises(ValueError, match="already a canary"):
        store.plant(UUID_A, canaries[:1], "alice")
    assert store.match(UUID_A, canaries[0][0]) == CanaryHit(None, store.match(UUID_A, canaries[0][0]).created)


def test_indices_are_isolated(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    canaries = make_canaries(2)
    store.plant(UUID_A, canaries, "alice")
    store.plant(UUID_B, make_canaries(1), None)
    assert store.match(UUID_B, canaries[0][0]) is None
    assert [owner for _, owner in store.ids(UUID_B)] == [None]
    assert store.remove(UUID_B, [canaries[0][0]]) == 0
    assert store.forget_index(UUID_A) == 2
    reopened = store_at(tmp_path)
    assert reopened.ids(UUID_A) == [] and reopened.match(UUID_A, canaries[0][0]) is None
    assert len(reopened.ids(UUID_B)) == 1


def test_wrong_key_finds_nothing_and_refuses_the_rest(tmp_path: Path) -> None:
    canaries = make_canaries(2)
    store_at(tmp_path).plant(UUID_A, canaries, "alice")
    wrong = store_at(tmp_path, OTHER_KEY)  # Opening works, so a server with a stale key still starts.
    assert wrong.match(UUID_A, canaries[0][0]) is None
    with pytest.raises(CanaryKeyError, match="wrong canary.key"):
        wrong.ids(UUID_A)
    with pytest.raises(CanaryKeyError):
        wrong.plant(UUID_A, make_canaries(1), None)
    with pytest.raises(CanaryKeyError):
        wrong.attribute([{"a": canaries[0][1]["phone"]}])
    assert store_at(tmp_path).ids(UUID_A) == sorted((i, "alice") for i, _ in canaries)  # Unharmed.


def test_altered_file_is_refused(tmp_path: Path) -> None:
    store_at(tmp_path).plant(UUID_A, make_canaries(1), "alice")
    path = tmp_path / "canaries.json"
    data = json.loads(path.read_text())
    data["canaries"][0]["owner"] = "bob"  # Framing another account.
    path.write_text(json.dumps(data))
    with pytest.raises(CanaryStoreError, match="altered"):
        store_at(tmp_path)


def test_sealed_ids_open_only_for_their_index(tmp_path: Path) -> None:
    store_at(tmp_path).plant(UUID_A, make_canaries(1), None)
    path = tmp_path / "canaries.json"
    data = json.loads(path.read_text())
    store = store_at(tmp_path)
    record = data["canaries"][0]
    with pytest.raises(ValueError):
        store._unseal(record["sealed_id"], UUID_B)
    assert store._unseal(record["sealed_id"], UUID_A)[0] == store.ids(UUID_A)[0][0]


def test_concurrent_plants_all_persist(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    batches = [make_canaries(3) for _ in range(8)]
    threads = [threading.Thread(target=store.plant, args=(UUID_A, batch, f"user{n}"))
               for n, batch in enumerate(batches)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store_at(tmp_path).ids(UUID_A)) == 24


def _forms(text: str) -> list[bytes]:
    raw = text.encode("utf-8")
    forms = [raw, json.dumps(text).strip('"').encode(), raw.hex().encode(), raw.hex().upper().encode(),
             base64.b64encode(raw).rstrip(b"="), base64.urlsafe_b64encode(raw).rstrip(b"=")]
    if AUTO_ID.fullmatch(text):
        decoded = base64.urlsafe_b64decode(text)
        forms += [decoded.hex().encode(), base64.b64encode(decoded).rstrip(b"=")]
    return forms


def test_store_file_holds_no_plaintext(tmp_path: Path) -> None:
    now = 1_700_000_123.456
    store = CanaryStore(tmp_path / "canaries.json", KEY, clock=lambda: now)
    canaries = make_canaries(20, now=now)
    store.plant(UUID_A, canaries[:10], "alice")
    store.plant(UUID_A, canaries[10:], None)
    blob = (tmp_path / "canaries.json").read_bytes()
    sentinels = [str(int(now * 1000)), str(int(now))]
    for doc_id, doc in canaries:
        sentinels += [doc_id, doc["national_id"], doc["phone"], doc["name"], doc["address"], doc["case_notes"][:8]]
    for sentinel in sentinels:
        for form in _forms(sentinel):
            assert form not in blob, sentinel
    # Sealed ids hide the id's length too: every envelope has the same size.
    assert len({len(r["sealed_id"]) for r in json.loads(blob)["canaries"]}) == 1


def test_sealed_id_hides_the_id_length(tmp_path: Path) -> None:
    [(_, doc)] = make_canaries(1)
    store_at(tmp_path).plant(UUID_A, [("r1", doc), ("r" * 40, dict(doc))], None)
    records = json.loads((tmp_path / "canaries.json").read_text())["canaries"]
    assert len(records[0]["sealed_id"]) == len(records[1]["sealed_id"])


# --------------------------------------------------------------------------- normalization and leaks


@pytest.mark.parametrize("written, normalized", [
    ("138-1234-5678", "13812345678"),
    ("+86 138 1234 5678", "13812345678"),
    ("0086-13812345678", "13812345678"),
    ("１３８１２３４５６７８", "13812345678"),
    (" 11010519491231002x ", "11010519491231002x"),
    ("11010519491231002X", "11010519491231002x"),
    ("张 伟", "张伟"),
    ("1990-03-07", "19900307"),
    ("Zhang  Wei", "zhang wei"),
])  # fmt: skip
def test_normalize_value(written: str, normalized: str) -> None:
    assert normalize_value(written) == normalized


def _planted(tmp_path: Path) -> tuple[CanaryStore, list, list, list]:
    store = store_at(tmp_path)
    general, alices, bobs = (make_canaries(5, rng=random.Random(seed)) for seed in (7, 8, 9))
    store.plant(UUID_A, general, None)
    store.plant(UUID_A, alices, "alice")
    store.plant(UUID_B, bobs, "bob")
    return store, general, alices, bobs


def _dashed(phone: str) -> str:
    return f"{phone[:3]}-{phone[3:7]}-{phone[7:]}"


def test_gbk_csv_leak_names_the_owner(tmp_path: Path, ordinary: list[dict[str, str]]) -> None:
    store, _general, alices, _bobs = _planted(tmp_path)
    rows = [["姓名", "身份证号", "联系电话", "住址"]]
    rows += [[d["name"], d["national_id"], _dashed(d["phone"]), d["address"]] for d in ordinary]
    for position, (_, doc) in zip((123, 377), alices[:2]):
        rows.insert(position, [doc["name"], doc["national_id"], _dashed(doc["phone"]), doc["address"]])
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    leak = tmp_path / "leak.csv"
    leak.write_bytes(out.getvalue().encode("gbk"))
    with pytest.raises(UnicodeDecodeError):
        leak.read_bytes().decode("utf-8")  # The file really is not UTF-8.
    [found] = store.attribute(read_leak_file(leak))
    assert found == Attribution("alice", 2, ("address", "name", "national_id", "phone"), 2, (UUID_A,))


def test_ndjson_leak_with_nested_numbers(tmp_path: Path, ordinary: list[dict[str, str]]) -> None:
    store, general, _alices, bobs = _planted(tmp_path)
    lines = [{"_id": f"r{n}", "_source": {"xm": d["name"], "tel": int(d["phone"])}} for n, d in enumerate(ordinary)]
    for _, doc in bobs[:3]:
        lines.insert(50, {"_id": "x", "_source": {"xm": doc["name"], "tel": int(doc["phone"])}})
    lines.append({"hits": [{"id_card": general[0][1]["national_id"], "phone": "+86 " + general[0][1]["phone"]}]})
    leak = tmp_path / "leak.ndjson"
    leak.write_text("\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n", encoding="utf-8")
    found = store.attribute(read_leak_file(leak))
    assert [(a.owner, a.matches, a.fields) for a in found] == [
        ("bob", 3, ("name", "phone")), (None, 1, ("national_id", "phone"))]


def test_json_search_response_leak(tmp_path: Path) -> None:
    store, _general, alices, _bobs = _planted(tmp_path)
    response = {"hits": {"total": {"value": 1}, "hits": [{"_id": doc_id, "_source": doc} for doc_id, doc in alices]}}
    leak = tmp_path / "leak.json"
    leak.write_text(json.dumps(response, indent=2, ensure_ascii=False), encoding="utf-8-sig")
    [found] = store.attribute(read_leak_file(leak))
    assert (found.owner, found.matches) == ("alice", 5)
    array = tmp_path / "leak-array.json"
    array.write_text(json.dumps([doc for _, doc in alices[:2]]), encoding="utf-8")
    assert [(a.owner, a.matches) for a in store.attribute(read_leak_file(array))] == [("alice", 2)]


def test_leak_without_canaries_attributes_nothing(tmp_path: Path, ordinary: list[dict[str, str]]) -> None:
    store, general, alices, _bobs = _planted(tmp_path)
    rows = list(ordinary)
    # A namesake, and a row that shares only a canary's common values (gender, birthplace, birth date).
    rows.append({**ordinary[0], "name": alices[0][1]["name"]})
    rows.append({**ordinary[1], **{f: general[0][1][f] for f in ("gender", "birthplace", "birth_date")}})
    leak = tmp_path / "clean.tsv"
    with leak.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)
    read = list(read_leak_file(leak))
    assert len(read) == 502 and read[0]["name"] == ordinary[0]["name"]  # BOM and tabs understood.
    assert store.attribute(read) == []


def test_most_canaries_first(tmp_path: Path) -> None:
    store, general, alices, bobs = _planted(tmp_path)
    rows = [dict(doc) for _, doc in alices[:1] + bobs[:4] + general[:2]]
    assert [(a.owner, a.matches) for a in store.attribute(rows)] == [("bob", 4), (None, 2), ("alice", 1)]


def test_fitted_canary_with_one_strong_field_is_still_recognised(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    [(doc_id, doc)] = make_canaries(1)
    fitted = fit_to_mapping(doc, {"phone": {}, "gender": {}})
    store.plant(UUID_A, [(doc_id, fitted)], "carol")
    assert [a.owner for a in store.attribute([{"tel": _dashed(doc["phone"])}])] == ["carol"]
