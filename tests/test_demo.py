"""Tests for strongroom.demo: the synthetic residents data set."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import subprocess
import sys
from collections import Counter

import pytest
from faker import Faker
from faker.providers.ssn.zh_CN import Provider as ZhCnSsnProvider

from strongroom import demo
from strongroom.demo import (
    PROVINCES,
    REFERENCE_DATE,
    REGIONS,
    RESIDENTS_BODY,
    RESIDENTS_INDEX,
    generate_residents,
)
from strongroom.pii import PROVINCE_CODES, is_mainland_mobile, is_valid_national_id

SAMPLE_SIZE = 2_000
REGION_NAMES = {region.code: region.name for region in REGIONS}
MOBILE_RE = re.compile(r"1(?:3[0-9]|5[0-35-9]|7[0-9]|8[0-9]|9[0-9])[0-9]{8}", re.ASCII)


@pytest.fixture(scope="module")
def sample() -> list[tuple[str, dict[str, str]]]:
    return list(generate_residents(SAMPLE_SIZE))


def _digest(docs: list[tuple[str, dict[str, str]]]) -> str:
    blob = json.dumps(docs, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def _age_on(birth: datetime.date, day: datetime.date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


# --------------------------------------------------------------------------- index definition


def test_index_body_shape() -> None:
    assert RESIDENTS_INDEX == "residents"
    assert RESIDENTS_BODY == {
        "settings": {"index": {"number_of_shards": 1, "number_of_replicas": 0}},
        "mappings": {
            "dynamic": "strict",
            "properties": {
                "name": {"type": "text", "protect": "blind"},
                "national_id": {"type": "keyword", "protect": "blind", "blind_prefixes": [6]},
                "phone": {"type": "keyword", "protect": "blind", "blind_prefixes": [3, 7]},
                "address": {"type": "text", "protect": "blind"},
                "birthplace": {"type": "keyword", "fields": {"text": {"type": "text"}}},
                "birth_date": {"type": "date", "format": "strict_date", "protect": "blind"},
                "gender": {"type": "keyword"},
                "case_notes": {"type": "text", "protect": "blind"},
            },
        },
    }
    json.dumps(RESIDENTS_BODY)  # plain JSON, nothing exotic


# --------------------------------------------------------------------------- determinism


def test_two_runs_are_identical(sample: list[tuple[str, dict[str, str]]]) -> None:
    again = list(generate_residents(SAMPLE_SIZE))
    assert again == sample
    assert _digest(again) == _digest(sample)


def test_prefix_property(sample: list[tuple[str, dict[str, str]]]) -> None:
    for n in (0, 1, 7, 500):
        assert list(generate_residents(n)) == sample[:n]


def test_seed_changes_the_data(sample: list[tuple[str, dict[str, str]]]) -> None:
    other = list(generate_residents(50, seed=7))
    assert other == list(generate_residents(50, seed=7))
    assert [doc for _, doc in other] != [doc for _, doc in sample[:50]]


def test_same_output_in_another_process_with_another_hash_seed(
    sample: list[tuple[str, dict[str, str]]],
) -> None:
    code = (
        "import hashlib, json\n"
        "from strongroom.demo import generate_residents\n"
        "docs = list(generate_residents(300))\n"
        "blob = json.dumps(docs, ensure_ascii=False, separators=(',', ':')).encode('utf-8')\n"
        "print(hashlib.sha256(blob).hexdigest())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == _digest(sample[:300])


def test_surname_sampler_matches_faker() -> None:
    ours, theirs = Faker("zh_CN"), Faker("zh_CN")
    ours.seed_instance(99)
    theirs.seed_instance(99)
    sampler = demo._surname_sampler(ours)
    assert sampler != ours.last_name  # the fast path is in use with this Faker release
    assert [sampler() for _ in range(2_000)] == [theirs.last_name() for _ in range(2_000)]


def test_bad_arguments() -> None:
    # Raised by the call itself, not on first iteration.
    for count in (-1, 1.5, "10", True, None):
        with pytest.raises(ValueError):
            generate_residents(count)  # type: ignore[arg-type]
    for seed in ("x", 1.0, None):
        with pytest.raises(ValueError):
            generate_residents(1, seed=seed)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the documents


def test_ids_are_sequential_and_unique(sample: list[tuple[str, dict[str, str]]]) -> None:
    ids = [doc_id for doc_id, _ in sample]
    assert ids == [f"r{n:07d}" for n in range(1, SAMPLE_SIZE + 1)]
    assert len({doc["national_id"] for _, doc in sample}) == SAMPLE_SIZE


def test_documents_match_the_mapping(sample: list[tuple[str, dict[str, str]]]) -> None:
    properties = set(RESIDENTS_BODY["mappings"]["properties"])
    for _, doc in sample:
        assert set(doc) == properties
        assert all(isinstance(value, str) and value for value in doc.values())


def test_documents_are_valid_and_consistent(sample: list[tuple[str, dict[str, str]]]) -> None:
    for doc_id, doc in sample:
        national_id = doc["national_id"]
        assert is_valid_national_id(national_id), doc_id
        assert len(national_id) == 18 and national_id.isascii() and national_id.isdigit(), doc_id
        # Region code <-> birthplace.
        assert REGION_NAMES[national_id[:6]] == doc["birthplace"], doc_id
        # Birth date <-> id, and age 1-95 on the reference date.
        birth = datetime.date.fromisoformat(doc["birth_date"])
        assert doc["birth_date"] == f"{national_id[6:10]}-{national_id[10:12]}-{national_id[12:14]}"
        assert 1 <= _age_on(birth, REFERENCE_DATE) <= 95, doc_id
        # Gender <-> 17th digit.
        assert doc["gender"] == ("男" if int(national_id[16]) % 2 else "女"), doc_id
        assert national_id[14:17] != "000", doc_id
        # Phone.
        assert is_mainland_mobile(doc["phone"]), doc_id
        assert MOBILE_RE.fullmatch(doc["phone"]), doc_id
        # Name: a surname (one or two characters) and a given name (one or two), all Han.
        assert 2 <= len(doc["name"]) <= 4 and re.fullmatch(r"[\u4e00-\u9fff]+", doc["name"]), doc_id
        # Address: starts with a province-level name.
        assert doc["address"].startswith(tuple(PROVINCES.values())), doc_id
        assert "号" in doc["address"], doc_id
        # Case notes: one to three sentences.
        assert 1 <= doc["case_notes"].count("。") <= 3 and doc["case_notes"].endswith("。"), doc_id


def test_realistic_distributions(sample: list[tuple[str, dict[str, str]]]) -> None:
    docs = [doc for _, doc in sample]
    names = Counter(doc["name"] for doc in docs)
    assert names.most_common(1)[0][1] >= 2  # common names repeat, as in real data
    lengths = Counter(len(doc["name"]) for doc in docs)
    assert lengths[2] > 0 and lengths[3] > 0
    genders = Counter(doc["gender"] for doc in docs)
    assert set(genders) == {"男", "女"} and min(genders.values()) > 0.4 * SAMPLE_SIZE
    assert len({doc["birthplace"] for doc in docs}) >= 100
    assert len({doc["national_id"][:2] for doc in docs}) >= 25
    # About half the people live in their birthplace's province.
    home = sum(doc["address"].startswith(PROVINCES[doc["national_id"][:2]]) for doc in docs)
    assert 0.4 * SAMPLE_SIZE < home < 0.7 * SAMPLE_SIZE
    # Case notes are varied and mention places and common terms.
    notes = [doc["case_notes"] for doc in docs]
    assert len(set(notes)) > 0.9 * SAMPLE_SIZE
    for term in ("纠纷", "盗窃", "迁入", "身份证"):
        assert sum(term in note for note in notes) >= 20, term
    assert sum(any(name in note for name in REGION_NAMES.values()) for note in notes) > 0.3 * SAMPLE_SIZE
    ages = [_age_on(datetime.date.fromisoformat(doc["birth_date"]), REFERENCE_DATE) for doc in docs]
    assert min(ages) <= 5 and max(ages) >= 90


def test_case_note_templates() -> None:
    templates = [template for _, template in demo._NOTE_TEMPLATES]
    assert len(set(templates)) >= 30
    for template in templates:
        assert template.endswith("。") and template.count("。") == 1, template


# --------------------------------------------------------------------------- the region table


def test_region_table() -> None:
    assert len(REGIONS) >= 60
    codes = [region.code for region in REGIONS]
    names = [region.name for region in REGIONS]
    assert len(set(codes)) == len(codes)
    assert len(set(names)) == len(names)  # a birthplace determines its code
    faker_codes = set(ZhCnSsnProvider.area_codes)
    for region in REGIONS:
        assert re.fullmatch(r"[0-9]{6}", region.code) and not region.code.endswith("0000"), region
        assert region.code in faker_codes, region  # a real code (Faker ships the official list)
        assert region.code[:2] in PROVINCES and region.code[:2] in PROVINCE_CODES, region
        assert region.name.endswith(("市", "区", "县", "州")), region
    assert len({code[:2] for code in codes}) >= 25
    assert set(PROVINCES) <= PROVINCE_CODES
