"""The file readers of `strongroom load`: every format, every encoding, bad rows, bounded memory.

Every input file is generated here. Known answers sit beside a property (CSV written by Python's
own csv module reads back field for field).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import mailbox
import tracemalloc
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom.loader.readers import Row, count_records_hint, open_rows

CHINESE = ["张三", "李四", "王五", "北京市朝阳区", "上海", "身份证号", "电话"]


def read_all(path: Path, **kwargs: object) -> tuple[list[Row], object]:
    with open_rows(path, **kwargs) as source:  # type: ignore[arg-type]
        return list(source), source


def good(rows: list[Row]) -> list[dict[str, object]]:
    return [r.values for r in rows if r.values is not None]


# ---------------------------------------------------------------- CSV and TSV


def test_csv_round_trip_with_quotes_newlines_and_chinese(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_bytes(
        'name,name,,城市\n'
        '张三,"a,b","two\nlines",北京\n'
        '\n'
        'x,"",,上海\n'
        '"say ""hi""",2,"three\r\nmore\nlines",广州\r\n'
        'last,row,here,深圳'.encode()
    )
    rows, source = read_all(path)
    assert source.columns == ["name", "name_2", "column_3", "城市"]
    assert (source.format, source.encoding) == ("csv", "utf-8")
    assert [(r.number, r.line, r.error) for r in rows] == [(1, 2, None), (2, 5, None), (3, 6, None), (4, 9, None)]
    assert rows[0].values == {"name": "张三", "name_2": "a,b", "column_3": "two\nlines", "城市": "北京"}
    assert rows[1].values == {"name": "x", "name_2": "", "column_3": "", "城市": "上海"}  # "" kept.
    assert rows[2].values == {"name": 'say "hi"', "name_2": "2", "column_3": "three\r\nmore\nlines", "城市": "广州"}
    assert rows[3].values == {"name": "last", "name_2": "row", "column_3": "here", "城市": "深圳"}


field = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(st.lists(field, min_size=3, max_size=3), max_size=8))
def test_csv_written_by_python_reads_back_exactly(tmp_path: Path, records: list[list[str]]) -> None:
    path = tmp_path / "prop.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL)
        writer.writerow(["a", "b", "c"])
        writer.writerows(records)
    rows, _ = read_all(path)
    # A record that is a lone empty field is written as an empty line, which is no record.
    expected = [dict(zip("abc", r)) for r in records]
    assert [r.error for r in rows] == [None] * len(rows)
    assert good(rows) == expected
    assert [r.number for r in rows] == list(range(1, len(rows) + 1))


def test_tsv_and_txt_sniffed_as_tsv(tmp_path: Path) -> None:
    body = "姓名\t电话\t备注\n张三\t138\t\"含\t制表符\"\n李四\t139\t\n"
    for name in ("data.tsv", "data.txt"):
        path = tmp_path / name
        path.write_text(body, encoding="utf-8")
        rows, source = read_all(path)
        assert source.format == "tsv" and source.columns == ["姓名", "电话", "备注"]
        assert good(rows) == [
            {"姓名": "张三", "电话": "138", "备注": "含\t制表符"},
            {"姓名": "李四", "电话": "139", "备注": ""},
        ]


def test_semicolon_csv_and_explicit_delimiter(tmp_path: Path) -> None:
    path = tmp_path / "eu.csv"
    path.write_text("a;b\n1,5;2\n", encoding="utf-8")
    assert good(read_all(path)[0]) == [{"a": "1,5", "b": "2"}]
    path.write_text("a|b\n1|2\n", encoding="utf-8")
    assert good(read_all(path, delimiter="|")[0]) == [{"a": "1", "b": "2"}]


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [
        ("gbk", "gb18030"),  # GB18030 is a superset: GBK bytes decode the same.
        ("gb2312", "gb18030"),
        ("gb18030", "gb18030"),
        ("utf-8-sig", "utf-8-sig"),
        ("utf-16", "utf-16-le"),  # Python writes a little-endian BOM.
        ("utf-16-be-bom", "utf-16-be"),
        ("utf-16-le", "utf-16-le"),  # No BOM: recognised by its NUL bytes.
    ],
)
def test_encodings_are_detected(tmp_path: Path, encoding: str, expected: str) -> None:
    names = CHINESE * 30  # Enough text for the detector to judge.
    extra = "𠀀€" if encoding == "gb18030" else ""  # Outside GBK: only GB18030 has them.
    text = "姓名,城市\r\n" + "".join(f"{n}{extra},北京\r\n" for n in names)
    if encoding == "utf-16-be-bom":
        data = b"\xfe\xff" + text.encode("utf-16-be")
    else:
        data = text.encode(encoding)
    path = tmp_path / "enc.csv"
    path.write_bytes(data)
    rows, source = read_all(path)
    assert source.encoding == expected
    assert source.columns == ["姓名", "城市"]
    assert good(rows) == [{"姓名": n + extra, "城市": "北京"} for n in names]


def test_encoding_argument_overrides_detection(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("name\nJosé\n".encode("latin-1"))
    rows, source = read_all(path, encoding="latin-1")
    assert source.encoding == "latin-1" and good(rows) == [{"name": "José"}]


@pytest.mark.parametrize("encoding", ["utf-8", "gbk"])
def test_one_percent_broken_rows_are_reported_and_the_rest_read(tmp_path: Path, encoding: str) -> None:
    lines = ["编号,姓名,城市"]
    expected_errors: dict[int, str] = {}
    expected_good: list[dict[str, str]] = []
    raw_lines: list[bytes] = [lines[0].encode(encoding)]
    for number in range(1, 2001):
        name = CHINESE[number % len(CHINESE)]
        if number % 100 == 37:  # Bytes no decoder accepts, mid-row.
            raw_lines.append(f"{number},".encode(encoding) + b"\xff\xfe\x80" + f"{name},北京".encode(encoding))
            expected_errors[number] = "broken encoding"
        elif number % 100 == 73:
            raw_lines.append(f"{number},{name}".encode(encoding))  # A column missing.
            expected_errors[number] = "wrong number of columns: expected 3, got 2"
        elif number % 200 == 99:
            raw_lines.append(f"{number},{name},北京,extra".encode(encoding))
            expected_errors[number] = "wrong number of columns: expected 3, got 4"
        else:
            raw_lines.append(f"{number},{name},北京".encode(encoding))
            expected_good.append({"编号": str(number), "姓名": name, "城市": "北京"})
    path = tmp_path / "broken.csv"
    path.write_bytes(b"\n".join(raw_lines) + b"\n")
    rows, source = read_all(path)
    assert source.encoding == ("utf-8" if encoding == "utf-8" else "gb18030")
    errors = {r.number: r.error for r in rows if r.error is not None}
    assert {n: e[: len(expected_errors[n])] for n, e in errors.items()} == expected_errors
    assert all(r.values is None for r in rows if r.error)
    assert good(rows) == expected_good
    assert [r.number for r in rows] == list(range(1, 2001))
    assert all(r.line == r.number + 1 for r in rows)


def test_broken_bytes_past_the_detection_prefix_are_a_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "late.csv"
    row = "张三,北京市朝阳区某某街道一号院\n".encode()
    count = (5 << 20) // len(row)
    with path.open("wb") as out:
        out.write(b"name,address\n")
        for _ in range(count):
            out.write(row)
        out.write(b"late,\xe4\xb8\n")  # A truncated UTF-8 character 5 MiB in.
        out.write("after,还在\n".encode())
    with open_rows(path) as source:
        rows = list(source)
    assert source.encoding == "utf-8"
    assert len(rows) == count + 2
    assert rows[-2].number == count + 1 and rows[-2].error and rows[-2].error.startswith("broken encoding")
    assert rows[-1].values == {"name": "after", "address": "还在"}


def test_unterminated_quote_at_the_end_is_one_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "open.csv"
    path.write_text('a,b\n1,2\n3,"never closed\n4,5\n', encoding="utf-8")
    rows, _ = read_all(path)
    assert [(r.number, r.error) for r in rows] == [(1, None), (2, "unterminated quoted field")]


def test_max_field_bytes_in_csv_and_ndjson(tmp_path: Path) -> None:
    csv_path = tmp_path / "wide.csv"
    csv_path.write_text("id,note\n1,short\n2," + "长" * 40 + "\n3,ok\n", encoding="utf-8")  # 120 bytes.
    rows, _ = read_all(csv_path, max_field_bytes=100)
    assert [(r.number, r.error) for r in rows] == [(1, None), (2, "field [note] is wider than 100 bytes"), (3, None)]
    assert good(read_all(csv_path, max_field_bytes=120)[0])[1]["note"] == "长" * 40

    nd = tmp_path / "wide.ndjson"
    nd.write_text('{"a": "x"}\n{"a": "' + "y" * 101 + '"}\n{"a": "z"}\n', encoding="utf-8")
    rows, _ = read_all(nd, max_field_bytes=100)
    assert [(r.number, r.error) for r in rows] == [(1, None), (2, "field [a] is wider than 100 bytes"), (3, None)]


def test_a_record_past_the_record_limit_is_read_past_not_kept(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    path.write_text('a,b\n1,"' + "x" * 5000 + '\nmore"\n2,3\n', encoding="utf-8")
    rows, _ = read_all(path, max_field_bytes=100)  # Record limit: 16 × 100 bytes.
    assert [(r.number, r.error) for r in rows] == [(1, "record longer than 1600 bytes"), (2, None)]
    assert rows[1].values == {"a": "2", "b": "3"}


# ---------------------------------------------------------------- JSON


def test_ndjson_numbers_are_line_numbers_and_bad_lines_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "people.jsonl"
    path.write_bytes(
        b'{"name": "\xe5\xbc\xa0\xe4\xb8\x89", "age": 30}\n'
        b"\n"
        b'{"name": broken}\n'
        b"[1, 2]\n"
        b'{"name": "\xff\xfe"}\n'
        b'{"v": NaN}\n'
        b'{"name": "\xe6\x9d\x8e\xe5\x9b\x9b", "tags": ["a"], "x": null}'
    )
    rows, source = read_all(path)
    assert source.format == "ndjson" and source.columns is None
    assert [(r.number, (r.error or "").split(":")[0]) for r in rows] == [
        (1, ""), (3, "invalid JSON"), (4, "not an object (got array)"), (5, "broken encoding"),
        (6, "invalid JSON"), (7, ""),
    ]
    assert good(rows) == [{"name": "张三", "age": 30}, {"name": "李四", "tags": ["a"], "x": None}]


def test_json_one_object_per_line(tmp_path: Path) -> None:
    path = tmp_path / "lines.json"
    path.write_text('{"a": 1}\n\n{"a": "二"}\n', encoding="utf-8")
    rows, source = read_all(path)
    assert source.format == "json"
    assert [(r.number, r.values) for r in rows] == [(1, {"a": 1}), (3, {"a": "二"})]


def test_json_array_elements_with_bad_ones(tmp_path: Path) -> None:
    path = tmp_path / "array.json"
    path.write_text(
        '[\n  {"name": "张三", "n": 1.5},\n  "a string",\n  {"name": oops},\n  {"name": "李四"},\n'
        '  {"big": 12345678901234567890}\n]\n',
        encoding="utf-8",
    )
    rows, source = read_all(path)
    assert source.format == "json"
    assert [(r.number, r.line, (r.error or "").split(":")[0]) for r in rows] == [
        (1, 2, ""), (2, 3, "not an object (got string)"), (3, 4, "invalid JSON"), (4, 5, ""), (5, 6, ""),
    ]
    assert good(rows) == [{"name": "张三", "n": 1.5}, {"name": "李四"}, {"big": 12345678901234567890}]


def test_json_array_elements_across_chunk_boundaries(tmp_path: Path) -> None:
    path = tmp_path / "chunks.json"
    records: list[dict[str, object]] = [{"i": i, "text": "数据" * (i % 50), "n": 10**15 + i} for i in range(60_000)]
    records.insert(30_000, {"i": -1, "text": "长" * 300_000})  # 900 KB: wider than one read window.
    path.write_text("[" + ",".join(json.dumps(r, ensure_ascii=False) for r in records) + "]", encoding="utf-8")
    rows, _ = read_all(path)
    assert [r.error for r in rows if r.error] == []
    assert good(rows) == records


def test_empty_json_array_and_empty_files(tmp_path: Path) -> None:
    (tmp_path / "e.json").write_text(" [ ] ")
    (tmp_path / "e.csv").write_text("")
    (tmp_path / "e.ndjson").write_text("\n\n")
    assert read_all(tmp_path / "e.json")[0] == []
    rows, source = read_all(tmp_path / "e.csv")
    assert (rows, source.columns) == ([], [])
    assert read_all(tmp_path / "e.ndjson")[0] == []


# ---------------------------------------------------------------- xlsx


def test_xlsx_keeps_types_and_writes_dates_as_iso(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "名单"
    ws.append([])  # A leading empty row: the header is the first non-empty one.
    ws.append(["姓名", "年龄", "余额", "会员", "生日", "登记时间", None, "姓名"])
    ws.append(["张三", 30, 12.5, True, dt.date(1990, 3, 5), dt.datetime(2024, 1, 2, 13, 45, 6), None, "重复"])
    ws.append([None, None, None, None, None, None, None, None])  # Empty row: skipped.
    ws.append(["李四", None, -1.25, False, None, None])
    ws.append(["王五", 1, 2, 3, 4, 5, 6, 7, "past the header"])
    book.create_sheet("other").append(["k"])
    book["other"].append(["v"])
    path = tmp_path / "book.xlsx"
    book.save(path)

    rows, source = read_all(path)
    assert source.format == "xlsx"
    assert source.columns == ["姓名", "年龄", "余额", "会员", "生日", "登记时间", "column_7", "姓名_2"]
    assert rows[0] == Row(1, {"姓名": "张三", "年龄": 30, "余额": 12.5, "会员": True, "生日": "1990-03-05",
                              "登记时间": "2024-01-02T13:45:06", "姓名_2": "重复"}, None, 3)
    assert rows[1] == Row(2, {"姓名": "李四", "余额": -1.25, "会员": False}, None, 5)
    assert (rows[2].number, rows[2].line, rows[2].values) == (3, 6, None)
    assert rows[2].error and rows[2].error.startswith("wrong number of columns")
    assert type(rows[0].values["年龄"]) is int and type(rows[0].values["会员"]) is bool  # type: ignore[index]
    assert good(read_all(path, sheet="other")[0]) == [{"k": "v"}]
    with pytest.raises(ValueError, match=r"sheet \[nope\] not found"):
        open_rows(path, sheet="nope")
    assert count_records_hint(path) == 5  # From the sheet's dimension: rows 2-6, empty ones too.


# ---------------------------------------------------------------- Parquet


def test_parquet_values_become_json_values(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({
        "name": ["张三", None, "王五"],
        "age": pa.array([30, 41, None], pa.int64()),
        "score": [1.5, float("nan"), 3.0],
        "seen": pa.array([dt.datetime(2024, 1, 2, 3, 4, 5), None, None], pa.timestamp("us")),
        "born": pa.array([dt.date(1990, 3, 5), None, None], pa.date32()),
        "money": pa.array([Decimal("12.34"), None, None], pa.decimal128(10, 2)),
        "raw": [b"\x00\xff", b"text", None],
        "tags": [["a", "北"], [], None],
    })
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=2)
    rows, source = read_all(path)
    assert source.columns == ["name", "age", "score", "seen", "born", "money", "raw", "tags"]
    assert [r.number for r in rows] == [1, 2, 3]
    assert rows[0].values == {"name": "张三", "age": 30, "score": 1.5, "seen": "2024-01-02T03:04:05",
                              "born": "1990-03-05", "money": "12.34", "raw": "AP8=", "tags": ["a", "北"]}
    assert rows[1].values == {"name": None, "age": 41, "score": None, "seen": None, "born": None,
                              "money": None, "raw": "text", "tags": []}
    assert json.loads(json.dumps([r.values for r in rows])) == [r.values for r in rows]
    assert count_records_hint(path) == 3


# ---------------------------------------------------------------- mail


def _message(number: int, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Message-ID"] = f"<m{number}@example.org>"
    msg["Date"] = "Tue, 02 Jan 2024 13:45:06 +0800"
    msg["From"] = "张三 <zhang@example.org>"
    msg["To"] = "Li Si <li@example.org>, wang@example.org"
    if number == 2:
        msg["Cc"] = "Boss <boss@example.org>"
    msg["Subject"] = f"会议 {number}"
    msg.set_content(body)
    if number == 3:
        msg.add_alternative("<p>html twin</p>", subtype="html")
        msg.add_attachment(b"%PDF", maintype="application", subtype="pdf", filename="a.pdf")
    return msg


def test_mbox_with_three_messages(tmp_path: Path) -> None:
    path = tmp_path / "inbox.mbox"
    box = mailbox.mbox(path)
    box.add(_message(1, "第一封\nFrom the start of a line, escaped by mailbox.\n"))
    box.add(_message(2, "second"))
    box.add(_message(3, "third, plain part wins"))
    box.close()
    rows, source = read_all(path)
    assert source.format == "mbox" and source.columns == ["message_id", "date", "from", "to", "cc", "subject", "body"]
    assert [r.number for r in rows] == [1, 2, 3] and all(r.error is None for r in rows)
    first = rows[0].values
    assert first == {
        "message_id": "<m1@example.org>",
        "date": "2024-01-02T13:45:06+08:00",
        "from": "张三 <zhang@example.org>",
        "to": "Li Si <li@example.org>, wang@example.org",
        "cc": None,
        "subject": "会议 1",
        "body": "第一封\nFrom the start of a line, escaped by mailbox.",
    }
    assert rows[1].values["cc"] == "Boss <boss@example.org>"  # type: ignore[index]
    assert rows[2].values["body"] == "third, plain part wins"  # type: ignore[index]
    assert count_records_hint(path) == 3


def test_eml_with_html_only_body(tmp_path: Path) -> None:
    msg = EmailMessage()
    msg["From"] = "=?utf-8?b?5byg5LiJ?= <zhang@example.org>"  # Encoded word: 张三.
    msg["To"] = "li@example.org"
    msg["Subject"] = "通知"
    msg.set_content(
        "<html><head><style>p {color: red}</style></head><body><p>您好，&amp; welcome</p>"
        "<script>alert(1)</script><div>第二段</div></body></html>",
        subtype="html",
    )
    path = tmp_path / "one.eml"
    path.write_bytes(b"Date: not a date\n" + bytes(msg))  # EmailMessage would refuse to write it.
    rows, source = read_all(path)
    assert source.format == "eml"
    assert rows == [Row(1, {
        "message_id": None, "date": "not a date", "from": "张三 <zhang@example.org>", "to": "li@example.org",
        "cc": None, "subject": "通知", "body": "您好，& welcome\n第二段",
    }, None, 1)]


def test_not_an_mbox_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.mbox"
    path.write_text("Subject: hi\n\nbody\n")
    with pytest.raises(ValueError, match="does not start with a 'From ' line"):
        open_rows(path)


# ---------------------------------------------------------------- formats, hints, memory


def test_unknown_extension_names_the_supported_formats(tmp_path: Path) -> None:
    path = tmp_path / "data.xls"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"\[data.xls\].*supported: csv, tsv, txt, xlsx, ndjson"):
        open_rows(path)
    with pytest.raises(ValueError, match=r"unknown format \[yaml\]"):
        open_rows(path, format="yaml")
    with pytest.raises(ValueError, match="delimiter applies to csv and tsv"):
        open_rows(tmp_path / "x.ndjson", delimiter=";")


def test_format_argument_wins_over_the_extension(tmp_path: Path) -> None:
    path = tmp_path / "export.dat"
    path.write_text('{"a": 1}\n', encoding="utf-8")
    assert good(read_all(path, format="jsonl")[0]) == [{"a": 1}]


def test_count_records_hint_for_text(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("a\n" + "x\n" * 99, encoding="utf-8")
    assert count_records_hint(path) == 99
    nd = tmp_path / "c.ndjson"
    nd.write_text('{"a":1}\n' * 10 + '{"a":1}', encoding="utf-8")
    assert count_records_hint(nd) == 11
    arr = tmp_path / "c.json"
    arr.write_text("[]")
    assert count_records_hint(arr) is None


def test_close_releases_the_file_mid_iteration(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("a\n1\n2\n", encoding="utf-8")
    source = open_rows(path)
    assert next(source).values == {"a": "1"}
    source.close()
    with pytest.raises(StopIteration):
        next(source)


def _peak_while_reading(path: Path) -> tuple[int, int]:
    tracemalloc.start()
    try:
        count = 0
        with open_rows(path) as source:
            for row in source:
                assert row.error is None
                count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return count, peak


def _write_big_csv(path: Path, size: int) -> int:
    line = "12345,张三,北京市朝阳区建国路88号,13800138000,some notes about this person here\n".encode()
    blocks = size // (len(line) * 1000) + 1
    with path.open("wb") as out:
        out.write(b"id,name,address,phone,notes\n")
        block = line * 1000
        for _ in range(blocks):
            out.write(block)
    return blocks * 1000


def _write_big_json_array(path: Path, size: int) -> int:
    element = json.dumps({"id": 12345, "name": "张三", "address": "北京市朝阳区建国路88号", "tags": ["a", "b"]},
                         ensure_ascii=False).encode()
    blocks = size // ((len(element) + 2) * 1000) + 1
    with path.open("wb") as out:
        out.write(b"[")
        block = b",\n".join([element] * 1000)
        for i in range(blocks):
            out.write((b",\n" if i else b"") + block)
        out.write(b"]")
    return blocks * 1000


@pytest.mark.parametrize("kind", ["csv", "json"])
def test_memory_peak_is_far_below_the_file_size(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"mid.{kind}"
    expected = (_write_big_csv if kind == "csv" else _write_big_json_array)(path, 6 << 20)
    count, peak = _peak_while_reading(path)
    assert count == expected
    assert peak < 4 << 20, f"peak {peak} bytes for a {path.stat().st_size}-byte file"


@pytest.mark.slow  # tracemalloc makes this ~1 minute.
@pytest.mark.parametrize("kind", ["csv", "json"])
def test_memory_stays_bounded_for_a_50_mb_file(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"big.{kind}"
    expected = (_write_big_csv if kind == "csv" else _write_big_json_array)(path, 50 << 20)
    assert path.stat().st_size > 50 << 20
    count, peak = _peak_while_reading(path)
    assert count == expected
    assert peak < 8 << 20, f"peak {peak} bytes"


def test_reading_text_through_a_bom_keeps_the_first_column_name(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "编号,名字\n1,张三\n".encode())
    rows, source = read_all(path)
    assert source.encoding == "utf-8-sig" and source.columns == ["编号", "名字"]
    assert good(rows) == [{"编号": "1", "名字": "张三"}]
    forced, _ = read_all(path, encoding="utf-8")  # A BOM left in by the given codec is dropped.
    assert good(forced) == [{"编号": "1", "名字": "张三"}]


def test_csv_row_numbers_point_at_the_record_after_multiline_fields(tmp_path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "note"])
    for i in range(1, 51):
        writer.writerow([str(i), "line\n" * (i % 4) + "end"])
    buffer.write("bad,row,extra\n")  # Record 51.
    buffer.write("52,fine\n")
    path = tmp_path / "multi.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    rows, _ = read_all(path)
    assert [r.number for r in rows] == list(range(1, 53))
    assert [r.number for r in rows if r.error] == [51]
    assert rows[-1].values == {"id": "52", "note": "fine"}
    text_lines = buffer.getvalue().split("\n")
    assert text_lines[rows[50].line - 1] == "bad,row,extra"  # type: ignore[operator]


def test_a_line_longer_than_one_read_keeps_characters_split_by_the_read(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    note = "长" * 500_000  # 1.5 MB on one line: read in pieces that cut a character in two.
    path.write_text(f"id,note\n1,{note}\n2,短\n", encoding="utf-8")
    rows, _ = read_all(path, max_field_bytes=4 << 20)
    assert [r.error for r in rows] == [None, None]
    assert good(rows) == [{"id": "1", "note": note}, {"id": "2", "note": "短"}]


def test_an_over_long_ndjson_line_is_skipped_and_the_next_line_read(tmp_path: Path) -> None:
    path = tmp_path / "long.ndjson"
    path.write_text('{"a": "' + "长" * 2000 + '"}\n{"a": "ok"}\n', encoding="utf-8")
    rows, _ = read_all(path, max_field_bytes=100)  # Record limit 1600 bytes.
    assert [(r.number, r.error) for r in rows] == [(1, "record longer than 1600 bytes"), (2, None)]
    assert rows[1].values == {"a": "ok"}


def test_mbox_splits_only_at_from_lines_after_a_blank_line(tmp_path: Path) -> None:
    path = tmp_path / "raw.mbox"
    path.write_bytes(
        b"From a@example.org Tue Jan  2 13:45:06 2024\n"
        b"Subject: one\n\nfirst line\nFrom here on, an unescaped body line.\n>From an escaped one.\n\n"
        b"From b@example.org Tue Jan  2 13:45:07 2024\n"
        b"Subject: two\n\nsecond\n"
    )
    rows, _ = read_all(path)
    assert [(r.number, r.line) for r in rows] == [(1, 1), (2, 8)]
    assert [r.values["subject"] for r in rows] == ["one", "two"]  # type: ignore[index]
    assert rows[0].values["body"] == (  # type: ignore[index]
        "first line\nFrom here on, an unescaped body line.\nFrom an escaped one."
    )
