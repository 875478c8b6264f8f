"""Core benchmark: bulk load and GET by id, Strongroom over HTTPS against raw tantivy in-process.

Both sides index the same synthetic residents in the same run; every figure is reported absolute
and as a ratio to the raw-tantivy baseline. Strongroom's numbers include TLS, authentication,
JSON parsing, mapping, the write-ahead log with fsync before each acknowledgement, and refresh.

    .venv/bin/python bench/core.py --docs 100000

Results: bench/results/core-<time>.json and .md (not committed).
"""

from __future__ import annotations

import argparse
import array
import base64
import http.client
import json
import mmap
import os
import platform
import random
import re
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, overload

import orjson
import tantivy

ROOT = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("STRONGROOM_BENCH_CACHE", Path.home() / ".cache" / "strongroom-bench"))
PASSWORD = "benchmark-password-not-secret"
BATCH = 2000


class Residents(Sequence[tuple[str, bytes]]):
    """(id, source JSON) rows of a cached residents file, read on demand: the file is mapped (its pages
    are the kernel's page cache, which it reclaims under pressure) and only each line's start and end
    are kept, 16 bytes per resident. As a list of bytes objects, 10M residents held ~8.7 GB of the
    harness's own memory beside the server and its index; now ~160 MB. Slices are views."""

    def __init__(self, mapped: mmap.mmap, starts: array.array, ends: array.array) -> None:
        self._mapped, self._starts, self._ends = mapped, starts, ends

    @classmethod
    def open(cls, path: Path) -> Residents:
        starts, ends = array.array("q"), array.array("q")
        with open(path, "rb") as handle:
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        position = 0
        while position < len(mapped):
            end = mapped.find(b"\n", position)
            end = len(mapped) if end < 0 else end
            if end > position:
                starts.append(position)
                ends.append(end)
            position = end + 1
        return cls(mapped, starts, ends)

    def __len__(self) -> int:
        return len(self._starts)

    @overload
    def __getitem__(self, index: int) -> tuple[str, bytes]: ...
    @overload
    def __getitem__(self, index: slice) -> Residents: ...

    def __getitem__(self, index: int | slice) -> tuple[str, bytes] | Residents:
        if isinstance(index, slice):
            return Residents(self._mapped, self._starts[index], self._ends[index])
        return self._row(self._mapped[self._starts[index]:self._ends[index]])

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        mapped = self._mapped
        for start, end in zip(self._starts, self._ends):
            yield self._row(mapped[start:end])

    @staticmethod
    def _row(line: bytes) -> tuple[str, bytes]:
        # Lines are orjson.dumps({"_id": id, "doc": doc}), so the source is the line's own "doc" slice,
        # exactly orjson.dumps(doc); anything else (an escaped id) goes through the parser.
        split = line.find(b'","doc":{')
        if line.startswith(b'{"_id":"') and split > 0 and b"\\" not in line[8:split] and line.endswith(b"}"):
            return line[8:split].decode(), line[split + 8:-1]
        row = orjson.loads(line)
        return row["_id"], orjson.dumps(row["doc"])


def residents(count: int) -> Residents:
    """(id, source JSON) for `count` demo residents, cached outside git."""
    path = CACHE / f"residents-{count}.ndjson"
    if not path.exists():
        from strongroom.demo import generate_residents
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as out:
            for doc_id, doc in generate_residents(count):
                out.write(orjson.dumps({"_id": doc_id, "doc": doc}) + b"\n")
        tmp.replace(path)
    return Residents.open(path)


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of `fn()` in milliseconds over `repeat` calls, after one warm-up call."""
    fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


# -- baseline: raw tantivy, in-process --------------------------------------------------------
def tantivy_baseline(rows: list[tuple[str, bytes]], lookups: list[str], directory: Path) -> dict[str, float]:
    from strongroom.engine.analysis import analyzer, register_all

    builder = tantivy.SchemaBuilder()
    builder.add_text_field("_id", stored=True, tokenizer_name="raw", index_option="basic")
    builder.add_bytes_field("_source", stored=True)
    for name in ("name", "address", "case_notes"):
        builder.add_text_field(name, tokenizer_name="sr_cjk")
    for name in ("name_kw", "national_id", "phone", "birthplace", "gender"):
        builder.add_text_field(name, tokenizer_name="raw", fast=True, index_option="basic")
    builder.add_integer_field("birth_date", indexed=True, fast=True)
    schema = builder.build()
    index = tantivy.Index(schema, path=str(directory))
    register_all(index)
    cjk = analyzer("default")
    writer = index.writer(64 << 20, 1)
    started = time.perf_counter()
    for doc_id, source in rows:
        doc = orjson.loads(source)
        tdoc = tantivy.Document()
        tdoc.add_text("_id", doc_id)
        tdoc.add_bytes("_source", source)
        for name in ("name", "address", "case_notes"):
            tdoc.add_text(name, cjk.index_text(doc[name]))  # The same CJK bigram analysis as Strongroom's.
        tdoc.add_text("name_kw", doc["name"])
        for name in ("national_id", "phone", "birthplace", "gender"):
            tdoc.add_text(name, doc[name])
        year, month, day = map(int, doc["birth_date"].split("-"))
        tdoc.add_integer("birth_date", year * 10000 + month * 100 + day)
        writer.add_document(tdoc)
    writer.commit()
    load_seconds = time.perf_counter() - started
    index.reload()
    searcher = index.searcher()
    latencies = []
    for doc_id in lookups:
        t0 = time.perf_counter()
        hits = searcher.search(tantivy.Query.term_query(schema, "_id", doc_id), 1).hits
        orjson.loads(searcher.doc(hits[0][1]).get_first("_source"))
        latencies.append((time.perf_counter() - t0) * 1000)
    return {"bulk_docs_per_s": len(rows) / load_seconds,
            "get_p50_ms": percentile(latencies, 50), "get_p99_ms": percentile(latencies, 99)}


# -- Strongroom over HTTPS ----------------------------------------------------------------------
class Server:
    def __init__(self, root: Path) -> None:
        env = {**os.environ, "STRONGROOM_BOOTSTRAP_PASSWORD": PASSWORD, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen([sys.executable, "-m", "strongroom", "serve", "--data-dir", str(root / "data"),
                                         "--config-dir", str(root / "config"), "--port", "0"],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        assert self.process.stdout is not None
        for line in self.process.stdout:
            match = re.search(r"listening on https://127\.0\.0\.1:(\d+)", line)
            if match:
                self.port = int(match.group(1))
                break
        else:
            raise RuntimeError("server did not start")
        self.context = ssl.create_default_context(cafile=str(root / "config" / "certs" / "http_ca.crt"))

    def connection(self) -> "Connection":
        return Connection(self.port, self.context)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


class Connection:
    """One keep-alive HTTPS connection with basic authentication as the bootstrap admin."""

    def __init__(self, port: int, context: ssl.SSLContext) -> None:
        self.conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=300)
        token = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
        self.ndjson_headers = {**self.headers, "Content-Type": "application/x-ndjson"}

    def call(self, method: str, path: str, body: bytes | None = None, ndjson: bool = False) -> Any:
        self.conn.request(method, path, body=body, headers=self.ndjson_headers if ndjson else self.headers)
        response = self.conn.getresponse()
        data = response.read()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
        return orjson.loads(data)

    def close(self) -> None:
        self.conn.close()


def bulk_bodies(rows: Sequence[tuple[str, bytes]], part: int = 0, parts: int = 1) -> Iterator[bytes]:
    """`_bulk` bodies of BATCH index actions each, built as they are taken; with `parts` > 1, only
    bodies number `part`, `part + parts`, … (one loader's share)."""
    for start in range(part * BATCH, len(rows), parts * BATCH):
        lines = []
        for doc_id, source in rows[start:start + BATCH]:
            lines += [b'{"index":{"_id":"' + doc_id.encode() + b'"}}', source]
        yield b"\n".join(lines) + b"\n"


def strongroom_https(rows: Sequence[tuple[str, bytes]], lookups: list[str], root: Path) -> dict[str, float]:
    from strongroom.demo import RESIDENTS_BODY

    server = Server(root)
    try:
        conn = server.connection()
        conn.call("PUT", "/residents", orjson.dumps(RESIDENTS_BODY))
        bodies = list(bulk_bodies(rows))
        started = time.perf_counter()
        for body in bodies:
            result = conn.call("POST", "/residents/_bulk", body, ndjson=True)
            assert not result["errors"]
        conn.call("POST", "/residents/_refresh")
        load_seconds = time.perf_counter() - started
        conn.call("GET", f"/residents/_doc/{lookups[0]}")  # Authenticate once (argon2id), then cached.
        latencies = []
        for doc_id in lookups:
            t0 = time.perf_counter()
            conn.call("GET", f"/residents/_doc/{doc_id}")
            latencies.append((time.perf_counter() - t0) * 1000)
        return {"bulk_docs_per_s": len(rows) / load_seconds,
                "get_p50_ms": percentile(latencies, 50), "get_p99_ms": percentile(latencies, 99)}
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=2000)
    args = parser.parse_args()
    rows = residents(args.docs)
    rng = random.Random(7)
    lookups = [rows[rng.randrange(len(rows))][0] for _ in range(args.lookups)]
    work = Path(tempfile.mkdtemp(prefix="strongroom-bench-"))
    try:
        (work / "tantivy").mkdir()
        baseline = tantivy_baseline(rows, lookups, work / "tantivy")
        ours = strongroom_https(rows, lookups, work / "strongroom")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "docs": args.docs,
              "lookups": args.lookups, "machine": f"{platform.machine()}, {os.cpu_count()} cpus, "
                                                    f"Python {platform.python_version()}",
              "command": " ".join([Path(sys.executable).name, *sys.argv]),
              "raw_tantivy": baseline, "strongroom_https": ours,
              "ratios": {"bulk_docs_per_s": ours["bulk_docs_per_s"] / baseline["bulk_docs_per_s"],
                         "get_p50_ms": ours["get_p50_ms"] / baseline["get_p50_ms"],
                         "get_p99_ms": ours["get_p99_ms"] / baseline["get_p99_ms"]}}
    table = ["| measure | raw tantivy (in-process) | Strongroom (HTTPS, auth, fsync) | ratio |",
             "|---|---|---|---|"]
    for key, label in (("bulk_docs_per_s", "bulk load, docs/s"), ("get_p50_ms", "GET by id p50, ms"),
                       ("get_p99_ms", "GET by id p99, ms")):
        table.append(f"| {label} | {baseline[key]:.4g} | {ours[key]:.4g} | {report['ratios'][key]:.2f}× |")
    markdown = "\n".join(table) + f"\n\n{args.docs} residents, {args.lookups} lookups, {report['machine']}.\n"
    results = ROOT / "results"
    results.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (results / f"core-{stamp}.json").write_text(json.dumps(report, indent=2))
    (results / f"core-{stamp}.md").write_text(markdown)
    print(markdown)


if __name__ == "__main__":
    main()
