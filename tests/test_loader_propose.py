"""The mapping proposal of `strongroom load`: which columns are personal, and how each is protected."""

from __future__ import annotations

import datetime
import json
import random
from collections.abc import Iterator
from typing import Any

import pytest

from strongroom.demo import generate_residents
from strongroom.engine.dates import DateFormat
from strongroom.engine.index import normalize_settings
from strongroom.engine.mapping import Mapping
from strongroom.loader.propose import (
    check_mapping,
    field_names,
    profile,
    propose,
    resolve_columns,
)
from strongroom.pii import national_id_check_char

CITIES = ["北京市", "上海市", "广州市", "深圳市", "常州市", "黄石市", "武汉市", "杭州市", "成都市", "南京市"]
# The test spreadsheet's columns, in three header languages: a fixed meaning per position.
HEADERS = {
    "chinese": ["姓名", "身份证号", "手机", "地址", "出生日期", "性别", "城市", "金额", "备注"],
    "english": ["Full Name", "national_id", "Phone", "Address", "Date of Birth", "gender", "city", "amount", "notes"],
    "meaningless": [f"col{i}" for i in range(1, 10)],
}
# Expected (type, protect, blind_prefixes) per position.
EXPECTED: list[tuple[str, str, list[int] | None]] = [
    ("text", "blind", None),  # name
    ("keyword", "blind", [6]),  # national ID
    ("keyword", "blind", [3, 7]),  # mobile
    ("text", "blind", None),  # address
    ("date", "blind", None),  # birth date
    ("keyword", "none", None),  # gender
    ("keyword", "none", None),  # city
    ("double", "none", None),  # amount
    ("text", "blind", None),  # notes
]


def spreadsheet(headers: list[str], count: int = 300, *, python_values: bool = False) -> list[dict[str, Any]]:
    """Rows like a CSV export of a residents register (strings), or an xlsx one (Python values)."""
    rng = random.Random(7)
    rows = []
    for _, resident in generate_residents(count, seed=11):
        amount = round(rng.uniform(0, 5_000), 2)
        birth: Any = resident["birth_date"]
        phone: Any = resident["phone"]
        if python_values:
            birth = datetime.date.fromisoformat(birth)
            phone = int(phone)
        values = [resident["name"], resident["national_id"], phone, resident["address"], birth,
                  resident["gender"], rng.choice(CITIES), amount if python_values else f"{amount:.2f}",
                  resident["case_notes"]]
        rows.append(dict(zip(headers, values)))
    return rows


def definitions(headers: list[str], rows: list[dict[str, Any]], **kwargs: Any) -> dict[str, dict[str, Any]]:
    proposal = propose(profile(rows), **kwargs)
    names = field_names(headers)
    return {column: proposal.body["mappings"]["properties"][names[column]] for column in headers}


def _check_definition(definition: dict[str, Any], expected: tuple[str, str, list[int] | None]) -> None:
    kind, protect, prefixes = expected
    assert definition["type"] == kind
    assert definition.get("protect", "none") == protect
    assert definition.get("blind_prefixes") == prefixes


# --------------------------------------------------------------------------- the spreadsheet


@pytest.mark.parametrize("language", sorted(HEADERS))
@pytest.mark.parametrize("python_values", [False, True], ids=["csv", "xlsx"])
def test_personal_columns_are_protected_and_the_others_plain(language: str, python_values: bool) -> None:
    headers = HEADERS[language]
    mapped = definitions(headers, spreadsheet(headers, python_values=python_values))
    for column, expected in zip(headers, EXPECTED):
        _check_definition(mapped[column], expected)


def test_birth_dates_keep_the_format_of_the_file() -> None:
    rows = spreadsheet(HEADERS["chinese"], 100)
    days = [datetime.date.fromisoformat(row["出生日期"]) for row in rows]
    for i, (row, day) in enumerate(zip(rows, days)):  # Two Chinese spellings, mixed in one column.
        row["出生日期"] = f"{day.year}/{day.month}/{day.day}" if i % 2 else f"{day.year}年{day.month}月{day.day}日"
    birth = definitions(HEADERS["chinese"], rows)["出生日期"]
    assert (birth["type"], birth["protect"]) == ("date", "blind")
    assert set(birth["format"].split("||")) == {"yyyy/M/d", "yyyy'年'M'月'd'日'"}
    parser = DateFormat.compile(birth["format"])
    for row, day in zip(rows, days):  # The proposed format really parses every value, to the right day.
        millis = parser.parse(row["出生日期"])
        assert datetime.datetime.fromtimestamp(millis / 1000, datetime.UTC).date() == day


@pytest.mark.parametrize("language", sorted(HEADERS))
def test_the_proposal_is_accepted_by_the_mapping_parser(language: str) -> None:
    headers = HEADERS[language]
    body = propose(profile(spreadsheet(headers, 100))).body
    mapping = Mapping.parse_definition(body["mappings"])
    names = field_names(headers)
    for column, (_, protect, _) in zip(headers, EXPECTED):
        assert mapping.fields[names[column]].protect == protect
    settings = normalize_settings(body["settings"])
    assert settings["index.pii_detection"] == "reject"
    assert mapping.dynamic_at("") == "strict"


def test_odd_columns_still_give_a_parsable_mapping() -> None:
    rows = [{"a.b": "x", " ": 1, "_id": True, "tags": ["a", "b"], "meta": {"k": 1},
             "when": datetime.datetime(2024, 1, 2, 3, 4), "notes": "n" * 1_500, "姓名": "张伟",
             "身份证": "110101199003074578"} for _ in range(30)]
    body = propose(profile(rows)).body
    mapping = Mapping.parse_definition(body["mappings"])
    assert mapping.fields["a_b"].type == "keyword" and mapping.fields["when"].type == "date"
    assert body["mappings"]["properties"]["meta"] == {"type": "object", "enabled": False}
    # Very long notes are documents: encrypted, not indexed.
    assert body["mappings"]["properties"]["notes"]["protect"] == "encrypt"


# --------------------------------------------------------------------------- thresholds


def _national_id(rng: random.Random) -> str:
    body = f"110105{rng.randint(1950, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    return body + national_id_check_char(body)


def _codes(column: str, count: int, id_share: float, seed: int = 3) -> list[dict[str, str]]:
    rng = random.Random(seed)
    ids = int(count * id_share)
    values = [_national_id(rng) for _ in range(ids)] + [f"REF-{rng.randint(0, 10**8):08d}" for _ in range(count - ids)]
    rng.shuffle(values)
    return [{column: value, "金额": str(rng.randint(1, 100))} for value in values]


def test_a_few_stray_id_like_values_leave_a_column_plain() -> None:
    proposal = propose(profile(_codes("参考号", 200, 0.05)))
    definition = proposal.body["mappings"]["properties"]["参考号"]
    assert definition == {"type": "keyword"}
    finding = proposal.findings[0]
    assert finding.kind is None and "national_id" in finding.reason  # …with a note on the strays


@pytest.mark.parametrize(("column", "share", "protected"), [
    ("参考号", 0.55, False),  # below 60%, no hint
    ("参考号", 0.60, True),  # 60%: by content alone
    ("证件号", 0.25, True),  # the header agrees: 20% suffices
    ("证件号", 0.15, False),  # …but not less
])
def test_detector_thresholds(column: str, share: float, protected: bool) -> None:
    definition = propose(profile(_codes(column, 200, share))).body["mappings"]["properties"][column]
    assert (definition.get("protect") == "blind") is protected


def test_cities_and_birthplaces_are_not_names_or_addresses() -> None:
    rng = random.Random(5)
    regions = ["内蒙古自治区", "广西壮族自治区", "新疆维吾尔自治区", "宁夏回族自治区", "西藏自治区", "黑龙江省"]
    rows = [{"城市": rng.choice(CITIES), "出生地": rng.choice(["闵行区", "佛山市", "常熟市", "黄浦区"]),
             "省份": rng.choice(regions)} for _ in range(100)]
    assert [p.kind for p in profile(rows)] == [None, None, None]


def test_latin_names_need_the_header() -> None:
    rng = random.Random(9)
    names = [f"{rng.choice(['Wei', 'Mary', 'John', 'Li'])} {rng.choice(['Zhang', 'Smith', 'Chen', 'Brown'])}"
             for _ in range(50)]
    rows = [{"full_name": n, "product": n} for n in names]
    by_column = {p.name: p.kind for p in profile(rows)}
    assert by_column == {"full_name": "name", "product": None}


def test_identifiers_inside_free_text_make_notes() -> None:
    rng = random.Random(2)
    rows = [{"description": f"Called back on 1{rng.randint(3, 9)}{rng.randint(0, 10**9 - 1):09d} about the parcel"
             if i % 3 == 0 else "Parcel delivered to the front desk, signed by the porter"} for i in range(60)]
    (column,) = profile(rows)
    assert column.kind == "notes"
    assert propose([column]).body["mappings"]["properties"]["description"]["protect"] == "blind"


# --------------------------------------------------------------------------- types


def test_types_are_inferred_only_when_every_value_fits() -> None:
    rows = [{"code": f"{i:05d}", "count": str(i), "ratio": f"{i / 7:.3f}", "flag": "true" if i % 2 else "false",
             "mixed": str(i) if i else "n/a", "sentence": f"the quick brown fox number {i} jumps over the lazy dog"}
            for i in range(40)]
    types = {p.name: p.type for p in profile(rows)}
    assert types == {"code": "keyword", "count": "long", "ratio": "double", "flag": "boolean", "mixed": "keyword",
                     "sentence": "text"}


def test_profile_reads_only_the_sample() -> None:
    read = 0

    def rows() -> Iterator[dict[str, str]]:
        nonlocal read
        for i in range(1_000):
            read += 1
            yield {"n": str(i)}

    (column,) = profile(rows(), sample=100)
    assert (read, column.count) == (100, 100)


def test_columns_keep_first_seen_order_and_skip_empty_values() -> None:
    rows = [{"b": "1", "a": ""}, {"a": None, "c": "x"}, {"a": "  ", "b": float("nan")}]
    assert [(p.name, p.count) for p in profile(rows)] == [("b", 1), ("a", 0), ("c", 1)]


# --------------------------------------------------------------------------- allow_plain


def test_allow_plain_leaves_a_column_unprotected_and_says_so() -> None:
    headers = HEADERS["chinese"]
    rows = spreadsheet(headers, 100)
    proposal = propose(profile(rows), allow_plain=["手机"])
    properties = proposal.body["mappings"]["properties"]
    assert "protect" not in properties["手机"]
    assert properties["身份证号"]["protect"] == "blind"  # the others are untouched
    assert proposal.plain_overrides == ("手机",)
    finding = next(f for f in proposal.findings if f.column == "手机")
    assert (finding.kind, finding.protection) == ("mobile", "none") and "allow_plain" in finding.reason
    # `reject` would refuse every row of a plain phone column, so the override lowers it, visibly.
    assert proposal.body["settings"]["index"]["pii_detection"] == "warn" and proposal.notes
    assert propose(profile(rows)).body["settings"]["index"]["pii_detection"] == "reject"


def test_allow_plain_of_an_unknown_column_is_an_error() -> None:
    with pytest.raises(ValueError, match="phone_number"):
        propose(profile(spreadsheet(HEADERS["chinese"], 20)), allow_plain=["phone_number"])


# --------------------------------------------------------------------------- operator mappings


def test_check_mapping_catches_an_unprotected_national_id() -> None:
    headers = HEADERS["english"]
    profiles = profile(spreadsheet(headers, 100))
    good = propose(profiles).body
    assert check_mapping(good, profiles) == []
    assert check_mapping(good["mappings"], profiles) == []  # a bare mappings body too

    bad = json.loads(json.dumps(good))
    bad["mappings"]["properties"]["national_id"] = {"type": "keyword"}
    (problem,) = check_mapping(bad, profiles)
    assert "[national_id]" in problem and "without protection" in problem
    assert check_mapping(bad, profiles, allow_plain=["national_id"]) == []


def test_check_mapping_on_missing_fields_depends_on_dynamic() -> None:
    headers = HEADERS["chinese"]
    profiles = profile(spreadsheet(headers, 100))
    properties = dict(propose(profiles).body["mappings"]["properties"])
    del properties["身份证号"], properties["性别"]
    dynamic = check_mapping({"properties": properties}, profiles)  # dynamic defaults to true
    assert len(dynamic) == 1 and "[身份证号]" in dynamic[0] and "dynamic" in dynamic[0]
    strict = check_mapping({"dynamic": "strict", "properties": properties}, profiles)
    assert len(strict) == 2 and all("strict" in p for p in strict)  # gender too: rows would be refused
    assert check_mapping({"dynamic": False, "properties": properties}, profiles) == []  # _source only


def test_check_mapping_finds_fields_by_column_name_and_nested_paths() -> None:
    rows = [{"person.national_id": _national_id(random.Random(i))} for i in range(30)]
    profiles = profile(rows)
    nested = {"properties": {"person": {"properties": {"national_id": {"type": "keyword"}}}}}
    assert resolve_columns(nested, ["person.national_id"]) == {"person.national_id": "person.national_id"}
    assert len(check_mapping(nested, profiles)) == 1
    nested["properties"]["person"]["properties"]["national_id"]["protect"] = "blind"
    assert check_mapping(nested, profiles) == []


# --------------------------------------------------------------------------- field names and output


@pytest.mark.parametrize(("columns", "expected"), [
    ([" First Name "], ["first_name"]),
    (["a.b.c"], ["a_b_c"]),
    (["身份证 号"], ["身份证_号"]),
    (["Ｅｍａｉｌ（主）"], ["email_主"]),
    (["_id"], ["id"]),
    (["", "..."], ["column_1", "column_2"]),
    (["Name", "name", "NAME"], ["name", "name_2", "name_3"]),
    (["金额(元)", "金额[元]"], ["金额_元", "金额_元_2"]),
])
def test_field_names(columns: list[str], expected: list[str]) -> None:
    names = field_names(columns)
    assert [names[c] for c in columns] == expected
    Mapping.parse_definition({"properties": {n: {"type": "keyword"} for n in expected}})


def test_table_and_json_name_every_column() -> None:
    headers = HEADERS["english"]
    proposal = propose(profile(spreadsheet(headers, 50)))
    table = proposal.table()
    lines = table.splitlines()
    assert lines[0].split() == ["column", "field", "type", "protection", "why"]
    for column in headers:
        assert column in table
    assert "blind prefixes 6" in table and "blind prefixes 3,7" in table
    decoded = json.loads(proposal.to_json())
    assert decoded["body"] == proposal.body
    assert [f["column"] for f in decoded["findings"]] == headers
    assert decoded["columns"] == {f: c for c, f in field_names(headers).items()}
    # No sampled value ever appears in the report.
    row = spreadsheet(headers, 1)[0]
    assert row["national_id"] not in table and row["national_id"] not in proposal.to_json()
