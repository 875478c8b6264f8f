"""`strongroom load` against a live server: every format loads and is searchable; the proposed mapping
protects the personal columns of a spreadsheet and nothing else; broken rows go to the reject file with
their row numbers while the rest loads; a SIGKILLed load resumes with every row present exactly once;
a 1 GB NDJSON loads with the loader's peak RSS under 300 MiB (the last two in the slow suite)."""

from __future__ import annotations

import csv
import io
import json
import mailbox
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from live import LiveServer, run_strongroom, start_server
from strongroom.demo import generate_residents

HEADERS = ["姓名", "身份证号", "手机", "地址", "出生日期", "性别", "城市", "金额"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("loader")
    live = start_server(root / "data", root / "config")
    yield live
    live.stop()


def load(server: LiveServer, *args: str, timeout: float = 600) -> tuple[int, str]:
    process = run_strongroom(["load", *args, "--url", server.url, "--config-dir", str(server.config_dir)],
                             env={"STRONGROOM_PASSWORD": server.password})
    output = process.communicate(timeout=timeout)[0]
    return process.returncode, output


def people(count: int, seed: int = 5) -> list[dict[str, Any]]:
    rows = []
    rng = random.Random(seed)
    for _id, doc in generate_residents(count, seed=seed):
        rows.append({"姓名": doc["name"], "身份证号": doc["national_id"], "手机": doc["phone"], "地址": doc["address"],
                     "出生日期": doc["birth_date"], "性别": doc["gender"], "城市": doc["birthplace"],
                     "金额": rng.randint(1, 100_000)})
    return rows


def write_csv(path: Path, rows: list[dict[str, Any]], encoding: str = "utf-8", delimiter: str = ",") -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), delimiter=delimiter, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_bytes(text.getvalue().encode(encoding))


def http(server: LiveServer):  # type: ignore[no-untyped-def]
    import httpx
    return httpx.Client(base_url=server.url, verify=str(server.ca), auth=("admin", server.password), timeout=60)


def count(server: LiveServer, index: str, query: dict[str, Any] | None = None) -> int:
    with http(server) as client:
        client.post(f"/{index}/_refresh")
        body = {"query": query} if query else None
        return client.post(f"/{index}/_count", json=body).json()["count"]


def test_the_proposal_protects_the_personal_columns(server: LiveServer, tmp_path: Path) -> None:
    rows = people(300)
    sheet = tmp_path / "people.csv"
    write_csv(sheet, rows)
    code, planned = load(server, str(sheet), "--index", "planned", "--plan")
    assert code == 0, planned
    body = json.loads(planned[planned.index("{"):])
    properties = body["mappings"]["properties"]
    protected = {name for name, field in properties.items() if field.get("protect") in ("blind", "encrypt")}
    assert {"姓名", "身份证号", "手机", "地址", "出生日期"} <= protected, properties
    assert not {"性别", "城市", "金额"} & protected
    assert properties["金额"]["type"] == "long"
    with http(server) as client:  # --plan changes nothing
        assert client.get("/planned").status_code == 404
    code, output = load(server, str(sheet), "--index", "planned", "--yes")
    assert code == 0 and "loaded 300 rows" in output, output
    assert count(server, "planned") == 300
    probe = rows[17]
    assert count(server, "planned", {"term": {"身份证号": probe["身份证号"]}}) == 1
    assert count(server, "planned", {"match_phrase": {"地址": probe["地址"]}}) >= 1
    with http(server) as client:
        mapping = client.get("/planned/_mapping").json()["planned"]["mappings"]["properties"]
    assert mapping["身份证号"]["protect"] == "blind" and "protect" not in mapping["城市"]


def test_without_yes_nothing_is_created(server: LiveServer, tmp_path: Path) -> None:
    sheet = tmp_path / "p.csv"
    write_csv(sheet, people(20))
    code, output = load(server, str(sheet), "--index", "unasked")
    assert code != 0 and "--yes" in output
    with http(server) as client:
        assert client.get("/unasked").status_code == 404


def test_an_unprotected_mapping_is_refused_unless_allowed(server: LiveServer, tmp_path: Path) -> None:
    sheet = tmp_path / "p.csv"
    write_csv(sheet, people(50))
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"mappings": {"properties": {h: {"type": "keyword"} for h in HEADERS}},
                                   "settings": {"index": {"pii_detection": "warn"}}}))
    code, output = load(server, str(sheet), "--index", "plain", "--mapping", str(mapping))
    assert code != 0 and "身份证号" in output and "--allow-plain" in output
    code, output = load(server, str(sheet), "--index", "plain", "--mapping", str(mapping),
                        *[f"--allow-plain={h}" for h in ("姓名", "身份证号", "手机", "地址", "出生日期")])
    assert code == 0, output
    assert count(server, "plain") == 50


def test_an_api_key_and_a_profile_instead_of_a_password(server: LiveServer, tmp_path: Path) -> None:
    with http(server) as client:
        key = client.post("/_security/api_key", json={"name": "loader"}).json()["encoded"]
    sheet = tmp_path / "k.csv"
    write_csv(sheet, people(10, seed=21))
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(f'[profiles.lab]\nurl = "{server.url}"\nca_certs = "{server.ca}"\n'
                        'api_key_env = "LAB_KEY"\n')
    process = run_strongroom(["load", str(sheet), "--index", "keyed", "--yes", "--profile", "lab"],
                             env={"STRONGROOM_PROFILES": str(profiles), "LAB_KEY": key})
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 0, output
    assert count(server, "keyed") == 10


def make_files(tmp_path: Path, rows: list[dict[str, Any]]) -> dict[str, Path]:
    import openpyxl
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = {}
    write_csv(files.setdefault("csv", tmp_path / "utf8.csv"), rows)
    write_csv(files.setdefault("gbk", tmp_path / "gbk.csv"), rows, encoding="gbk")
    write_csv(files.setdefault("tsv", tmp_path / "tabs.tsv"), rows, delimiter="\t")
    (files.setdefault("ndjson", tmp_path / "rows.ndjson")).write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    (files.setdefault("json", tmp_path / "rows.json")).write_text(json.dumps(rows, ensure_ascii=False))
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(list(rows[0]))
    for row in rows:
        sheet.append(list(row.values()))
    book.save(files.setdefault("xlsx", tmp_path / "rows.xlsx"))
    pq.write_table(pa.Table.from_pylist(rows), files.setdefault("parquet", tmp_path / "rows.parquet"))
    box = mailbox.mbox(str(files.setdefault("mbox", tmp_path / "mail.mbox")))
    for n in range(len(rows)):
        message = EmailMessage()
        message["From"] = f"Sender {n} <sender{n}@example.org>"
        message["To"] = "case-desk@example.org"
        message["Subject"] = f"case {n} update"
        message["Message-ID"] = f"<m{n}@example.org>"
        message.set_content(f"Report number {n}: the courier arrived at {rows[n]['城市']}.")
        box.add(message)
    box.flush()
    box.close()
    return files


def test_every_format_loads(server: LiveServer, tmp_path: Path) -> None:
    rows = people(40, seed=9)
    for kind, path in make_files(tmp_path, rows).items():
        code, output = load(server, str(path), "--index", f"fmt-{kind}", "--yes")
        assert code == 0, f"{kind}: {output}"
        assert count(server, f"fmt-{kind}") == 40, kind
        if kind != "mbox":
            assert count(server, f"fmt-{kind}", {"term": {"身份证号": rows[3]["身份证号"]}}) == 1, kind
        else:
            assert count(server, f"fmt-{kind}", {"match": {"subject": "case 7"}}) >= 1
    eml = tmp_path / "one.eml"
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.org", "b@example.org", "hello"
    message.set_content("<p>the parcel is <b>late</b></p>", subtype="html")
    eml.write_bytes(bytes(message))
    code, output = load(server, str(eml), "--index", "fmt-eml", "--yes")
    assert code == 0, output
    assert count(server, "fmt-eml", {"match": {"body": "parcel"}}) == 1


def test_broken_rows_go_to_the_reject_file(server: LiveServer, tmp_path: Path) -> None:
    rows = people(2000, seed=3)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(list(rows[0]))
    broken = set(random.Random(1).sample(range(1, 2001), 20))  # 1%: row numbers, 1 = first data row
    lines = [text.getvalue().encode()]
    for number, row in enumerate(rows, 1):
        values = [str(v) for v in row.values()]
        if number in broken and number % 2:
            values = values[:3]  # too few columns
        line = io.StringIO()
        csv.writer(line, lineterminator="\n").writerow(values)
        data = line.getvalue().encode()
        if number in broken and not number % 2:
            data = data[:-1] + b"\xff\xfe\n"  # bytes no encoding reads
        lines.append(data)
    sheet = tmp_path / "broken.csv"
    sheet.write_bytes(b"".join(lines))
    code, output = load(server, str(sheet), "--index", "broken", "--yes")
    assert code == 0, output
    rejects = [json.loads(line) for line in (tmp_path / "broken.csv.rejects.ndjson").read_text().splitlines()]
    assert {r["row"] for r in rejects} == broken
    assert all(r["reason"] for r in rejects)
    assert count(server, "broken") == 2000 - len(broken)
    assert "20 rejected" in output
    reject_text = (tmp_path / "broken.csv.rejects.ndjson").read_text()
    assert not any(row["身份证号"] in reject_text for row in rows)  # numbers and reasons, never values


# -- slow: interruption and memory ---------------------------------------------------------------------------

def _peak_rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


@pytest.mark.slow
def test_sigkill_then_resume_loads_every_row_exactly_once(server: LiveServer, tmp_path: Path) -> None:
    total = 200_000
    sheet = tmp_path / "big.csv"
    with open(sheet, "w") as out:
        out.write("seq,city,amount\n")
        rng = random.Random(8)
        for n in range(1, total + 1):
            out.write(f"{n},city{rng.randint(1, 300)},{rng.randint(1, 10**6)}\n")
    args = ["load", str(sheet), "--index", "resumed", "--yes", "--batch-bytes", "262144", "--url", server.url,
            "--config-dir", str(server.config_dir)]
    process = run_strongroom(args, env={"STRONGROOM_PASSWORD": server.password})
    deadline = time.monotonic() + 300
    state = tmp_path / "big.csv.strongroom-load.json"
    while time.monotonic() < deadline:  # kill it in the middle, after some batches were acknowledged
        if state.exists() and json.loads(state.read_text()).get("acknowledged", 0) > total // 3:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = count(server, "resumed")
    assert 0 < partial < total
    code, output = load(server, str(sheet), "--index", "resumed", "--yes", "--batch-bytes", "262144")
    assert code != 0 and "--resume" in output  # an interrupted load is never silently restarted
    code, output = load(server, str(sheet), "--index", "resumed", "--resume", "--batch-bytes", "262144")
    assert code == 0, output
    assert count(server, "resumed") == total
    with http(server) as client:
        stats = client.post("/resumed/_search", json={"size": 0, "aggs": {
            "low": {"min": {"field": "seq"}}, "high": {"max": {"field": "seq"}}}}).json()["aggregations"]
    assert stats["low"]["value"] == 1 and stats["high"]["value"] == total
    assert not state.exists()


@pytest.mark.slow
def test_a_1gb_ndjson_loads_in_bounded_memory(server: LiveServer, tmp_path: Path) -> None:
    path = tmp_path / "big.ndjson"
    words = [f"word{n}" for n in range(5000)]
    rng = random.Random(4)
    size = 0
    rows = 0
    with open(path, "w") as out:
        while size < 1 << 30:
            text = " ".join(rng.choices(words, k=1500))
            line = json.dumps({"seq": rows, "topic": f"t{rows % 50}", "text": text}) + "\n"
            out.write(line)
            size += len(line)
            rows += 1
    args = [sys.executable, "-m", "strongroom", "load", str(path), "--index", "gigabyte", "--yes", "--url",
            server.url, "--config-dir", str(server.config_dir)]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "STRONGROOM_PASSWORD": server.password})
    peak = 0
    while process.poll() is None:
        peak = max(peak, _peak_rss_kib(process.pid) or 0)
        time.sleep(0.2)
    output = process.stdout.read() if process.stdout else ""
    assert process.returncode == 0, output[-2000:]
    assert count(server, "gigabyte") == rows
    print(f"loader peak RSS: {peak / 1024:.0f} MiB for {rows} rows ({size / 2**20:.0f} MiB)")
    assert 0 < peak < 300 * 1024, f"peak RSS {peak} KiB"
