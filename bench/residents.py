"""Residents benchmark (issue 9): eight query classes, bulk load, memory and disk, Strongroom over HTTPS
against raw tantivy in-process on the same residents in the same run.

    .venv/bin/python bench/residents.py --residents 100000 [--clients 1,2] [--queries 2000]

Data. `strongroom.demo.generate_residents(N)` (deterministic), cached outside git as
`$STRONGROOM_BENCH_CACHE/residents-N.ndjson` (default `~/.cache/strongroom-bench`, shared with
`bench/core.py`). Query values are drawn with a fixed seed from the loaded residents, so every
query hits (the harness checks each answer after timing it).

Strongroom. A real `strongroom serve` in a temporary directory with its defaults: TLS (generated
CA), authentication (HTTP basic as the bootstrap `admin`, cached after the first argon2id check),
audit log, dump detection. Index `residents` is created with `demo.RESIDENTS_BODY`: sealed sources,
blind tokens for name, national ID, phone, address, birth date and case notes. The admin is an
unmetered identity (no record budget; the dump detector alerts but never blocks it), so the figures
include budget bookkeeping only as far as an unmetered identity pays for it.
- bulk load, docs/s: `_bulk` batches of 2,000 on one keep-alive HTTPS connection, each acknowledged
  after the write-ahead log's fsync, then `_refresh`; wall time of all of it, client JSON included.
- the harness's memory: residents are read from the mapped cache file on demand (`core.Residents`),
  so the harness stays small beside the server and its index (10M: ~160 MB of line offsets, where a
  list of the rows held ~8.7 GB and the prebuilt bodies another ~3.5 GB). The raw loader reads its
  rows before its clock starts; Strongroom's loaders build each body as they send it (~7 ms per body
  of 2,000, ~1 % of the time the server takes for it).
- before the queries, the harness waits until the server and its workers are idle (under 5 % of a
  core over 5 s, at most 15 minutes; the wait is reported): after a large load, background work
  (merges, the log cut at a checkpoint) can go on for minutes, and queries beside it would measure it.
- per query class, latency (ms): from sending the request to the parsed JSON answer on a keep-alive
  HTTPS connection (http.client), so TLS, auth, audit, planning, blind tokens, unsealing every hit
  and the HTTP stack are all inside; p50/p95/p99 come from the 1-client run. Throughput (req/s): all
  requests of the class divided by the wall time, with 1 and 2 client threads, each thread on its
  own connection (2 clients = 2 connections). Each connection sends a few untimed warm-up requests
  per class first. The classes take turns: five rounds, each over a fifth of every class's queries,
  so a burst of noise on a shared machine falls on all classes alike (raw tantivy likewise).
- peak RSS of the server process: VmHWM from /proc/<pid>/status at the end of the load (and the sum of
  its child processes' VmHWM: the ingest workers that derive tokens and seal, `ingest.workers`); then the
  high-water mark is reset (write "5" to /proc/<pid>/clear_refs) and VmHWM is read again after the
  queries. VmRSS is also sampled every 50 ms in both phases (the fallback if the reset is refused).
- index size on disk: every file under the server's `<data-dir>/indices` after the queries
  (segments, write-ahead log, metadata), extrapolated linearly to one million residents.

Raw tantivy (the engine floor; plain, no protection, no network). The same JSON residents, the
same CJK-bigram analysis as Strongroom's default analyzer (`strongroom.engine.analysis`: Python
bigrams, then tantivy's regex tokenizer, lowercase and ASCII folding), one index:
- load, docs/s: parse JSON, analyze, build the tantivy document, add it; one commit at the end.
  "1 thread": one feeding Python thread, writer with 1 indexing thread (64 MiB heap). "2 threads":
  two feeding Python threads (add_document under a lock: the writer is not shareable), writer with
  2 indexing threads (64 MiB each).
- per query class the same work, timed from building the query (analysis included) to the parsed
  `_source` of every hit: term queries on raw fields; a phrase query of bigrams; a boolean AND of
  bigram terms; bool of name bigrams (OR), birthplace term and an integer range (yyyymmdd) over
  one year; BM25 top 10 over OR-ed bigrams; a tantivy terms aggregation (`Searcher.aggregate`, the
  same request Strongroom's engine sends) over all documents; `_mget` as one term-set query on
  `_id` and fetching the 10 documents. 1 and 2 threads on one shared searcher.

Every Strongroom figure is reported absolute and as a ratio to the raw figure of the same run
(latency: Strongroom / raw, so 10 means ten times slower; throughput: Strongroom / raw).

Results: bench/results/residents-<time>.json, .md and .png (not committed); the Markdown table is
printed too. `--results-dir` writes elsewhere (the smoke test uses it).

Long runs. `--keep DIR` works in DIR and keeps both indexes (and the server's data and config) there;
`--reuse DIR` later runs only the queries against them, with the same `--residents` (a 10M load takes
about an hour here, its queries a few minutes). A reused run reports no bulk or load-memory figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
import tantivy

from core import PASSWORD, Connection, bulk_bodies, percentile, residents  # bench/ is the script's directory: its sibling modules import

ROOT = Path(__file__).resolve().parent
INDEX = "residents"
WRITER_HEAP = 64 << 20  # per indexing thread, as Strongroom's engine.writer_heap_bytes default
WARMUP = 10  # untimed requests per connection (or thread) and class
ROUNDS = 5  # the query classes take turns in this many rounds (run_rounds)

CLASSES: dict[str, str] = {
    "national_id": "exact national ID (term)",
    "phone": "exact phone (term)",
    "full_name": "full name (match_phrase)",
    "address": "address, 2 terms AND",
    "name_place_year": "name + birthplace + birth-year range",
    "case_notes": "case notes OR, top-10 BM25",
    "terms_agg": "terms aggregation (birthplace)",
    "mget": "_mget of 10 ids",
}
# Words common in case notes (demo templates); a query takes two or three that its resident's notes contain.
NOTE_WORDS = ("居民身份证", "报警", "纠纷", "调解", "被盗", "立案", "户籍", "派出所", "民警", "办理", "申请",
              "钱包", "诈骗", "损失", "迁入", "遗失", "交通事故")
Row = tuple[str, bytes]  # (id, source JSON)


# -- data: the residents and percentiles come from bench/core.py (same cache) --------------------------


def address_words(address: str) -> tuple[str, str] | None:
    """Two words of a demo address: its district or city name and its street name (关岭路)."""
    from strongroom.demo import PROVINCES, REGIONS
    head = re.sub(r"\d+号.*$", "", address)
    for region in REGIONS:
        prefix = PROVINCES[region.code[:2]] + region.parent + region.name
        if head.startswith(prefix) and len(head) > len(prefix) + 1:
            return region.name, head[len(prefix):]
    return None


def workload(rows: Sequence[Row], per_class: int, seed: int = 9) -> dict[str, list[dict[str, Any]]]:
    """Per class, `per_class` parameter sets drawn deterministically from the residents."""
    rng = random.Random(seed)
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in CLASSES}

    def pick() -> tuple[str, dict[str, str]]:
        doc_id, source = rows[rng.randrange(len(rows))]
        return doc_id, orjson.loads(source)

    for _ in range(per_class):
        doc_id, doc = pick()
        out["national_id"].append({"value": doc["national_id"]})
        out["phone"].append({"value": doc["phone"]})
        out["full_name"].append({"value": doc["name"]})
        words = None
        while words is None:
            words = address_words(doc["address"])
            if words is None:
                doc_id, doc = pick()
        out["address"].append({"words": list(words)})
        _, doc = pick()
        out["name_place_year"].append({"name": doc["name"], "birthplace": doc["birthplace"],
                                       "year": int(doc["birth_date"][:4])})
        present: list[str] = []
        while len(present) < 2:
            _, doc = pick()
            present = [w for w in NOTE_WORDS if w in doc["case_notes"]]
        out["case_notes"].append({"words": rng.sample(present, min(len(present), rng.choice((2, 3))))})
        out["terms_agg"].append({"field": "birthplace"})
        out["mget"].append({"ids": [rows[rng.randrange(len(rows))][0] for _ in range(10)]})
    return out


def timed_clients(workers: Sequence[Callable[[dict[str, Any]], None]], items: list[dict[str, Any]]
                  ) -> tuple[list[float], float]:
    """Runs `items` spread over the workers (one thread each): every request's latency (ms), and the wall
    time (s) of the whole."""
    latencies: list[list[float]] = [[] for _ in workers]
    start = threading.Barrier(len(workers) + 1)

    def client(k: int) -> None:
        mine, worker = latencies[k], workers[k]
        start.wait()
        for item in items[k::len(workers)]:
            t0 = time.perf_counter()
            worker(item)
            mine.append((time.perf_counter() - t0) * 1000)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(len(workers))]
    for thread in threads:
        thread.start()
    start.wait()
    t0 = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - t0
    merged = [x for part in latencies for x in part]
    if len(merged) != len(items):
        raise RuntimeError("a client thread failed (see above)")
    return merged, wall


def figures(latencies: list[float], wall: float) -> dict[str, float]:
    return {"p50_ms": percentile(latencies, 50), "p95_ms": percentile(latencies, 95),
            "p99_ms": percentile(latencies, 99), "req_per_s": len(latencies) / wall, "requests": len(latencies)}


def run_clients(workers: Sequence[Callable[[dict[str, Any]], None]], items: list[dict[str, Any]]) -> dict[str, float]:
    """Runs `items` spread over the workers (one thread each) after an untimed warm-up; latency
    percentiles (ms) and req/s."""
    for worker in workers:
        for item in items[:WARMUP]:
            worker(item)
    return figures(*timed_clients(workers, items))


def run_rounds(workers_for: Callable[[str], Sequence[Callable[[dict[str, Any]], None]]],
               work: dict[str, list[dict[str, Any]]], rounds: int = ROUNDS) -> dict[str, dict[str, float]]:
    """Every class in turn, `rounds` times over a share of its items each, so that a burst of noise on a
    shared machine (or the server's background work) falls on all classes alike rather than on
    whichever class it happens to meet; figures per class over all its rounds. Warm-up first."""
    for cls, items in work.items():
        for worker in workers_for(cls):
            for item in items[:WARMUP]:
                worker(item)
    latencies: dict[str, list[float]] = {cls: [] for cls in work}
    wall = dict.fromkeys(work, 0.0)
    for k in range(rounds):
        for cls, items in work.items():
            part, seconds = timed_clients(workers_for(cls), items[k::rounds])
            latencies[cls] += part
            wall[cls] += seconds
    return {cls: figures(latencies[cls], wall[cls]) for cls in work}


# Before the queries, the server must be idle: after a large load its background work (merges, the log
# cut at a checkpoint) can go on for minutes, and queries beside it would measure that work too
# (2026-11-29: the first 10M run's data directory shrank by 0.6 GB during its queries).
SETTLE_WINDOW = 5.0  # seconds
SETTLE_BUSY = 0.05  # of one core
SETTLE_LIMIT = 900.0  # seconds


# -- raw tantivy, in-process --------------------------------------------------------------------------
class Raw:
    """The engine floor: the residents in one plain tantivy index, queried in-process."""

    TEXT = ("name", "address", "case_notes")
    KEYWORDS = ("national_id", "phone", "birthplace", "gender")

    def __init__(self, directory: Path) -> None:
        from strongroom.engine.analysis import analyzer, register_all
        builder = tantivy.SchemaBuilder()
        builder.add_text_field("_id", stored=True, tokenizer_name="raw", index_option="basic")
        builder.add_bytes_field("_source", stored=True)
        for name in self.TEXT:
            builder.add_text_field(name, tokenizer_name="sr_cjk")  # positions, for phrases
        for name in self.KEYWORDS:
            builder.add_text_field(name, tokenizer_name="raw", fast=True, index_option="basic")
        builder.add_integer_field("birth_date", indexed=True, fast=True)  # yyyymmdd
        self.schema = builder.build()
        self.directory = directory
        self.index = tantivy.Index(self.schema, path=str(directory))
        register_all(self.index)
        self.cjk = analyzer("default")

    def document(self, doc_id: str, source: bytes) -> tantivy.Document:
        doc = orjson.loads(source)
        tdoc = tantivy.Document()
        tdoc.add_text("_id", doc_id)
        tdoc.add_bytes("_source", source)
        for name in self.TEXT:
            tdoc.add_text(name, self.cjk.index_text(doc[name]))
        for name in self.KEYWORDS:
            tdoc.add_text(name, doc[name])
        tdoc.add_integer("birth_date", int(doc["birth_date"].replace("-", "")))
        return tdoc

    def load(self, rows: Sequence[Row], threads: int) -> float:
        """Docs/s: analysis and document building in Python, indexing in tantivy, one commit."""
        writer = self.index.writer(WRITER_HEAP * threads, threads)
        lock = threading.Lock()

        def feed(part: Sequence[Row]) -> None:
            for doc_id, source in part:
                tdoc = self.document(doc_id, source)
                with lock:
                    writer.add_document(tdoc)

        parts = [list(rows[k::threads]) for k in range(threads)]  # read before the clock starts, as always
        started = time.perf_counter()
        feeders = [threading.Thread(target=feed, args=(part,)) for part in parts]
        for feeder in feeders:
            feeder.start()
        for feeder in feeders:
            feeder.join()
        writer.commit()
        writer.wait_merging_threads()
        seconds = time.perf_counter() - started
        self.open(len(rows))
        return len(rows) / seconds

    def open(self, expected: int) -> None:
        """The searcher over what the index holds now, which must be `expected` documents."""
        self.index.reload()
        self.searcher = self.index.searcher()
        if self.searcher.num_docs != expected:
            raise RuntimeError(f"raw tantivy holds {self.searcher.num_docs} documents, expected {expected}")

    # Query building, timed with the search: the client's analysis is part of the work.
    def _term(self, field: str, value: str) -> tantivy.Query:
        return tantivy.Query.term_query(self.schema, field, value)

    def _all_of(self, field: str, terms: list[str]) -> tantivy.Query:
        return tantivy.Query.boolean_query([(tantivy.Occur.Must, self._term(field, t)) for t in terms])

    def _any_of(self, field: str, terms: list[str]) -> tantivy.Query:
        return tantivy.Query.boolean_query([(tantivy.Occur.Should, self._term(field, t)) for t in terms])

    def _phrase(self, field: str, text: str) -> tantivy.Query:
        terms = self.cjk.terms(text)
        return self._term(field, terms[0]) if len(terms) == 1 else tantivy.Query.phrase_query(self.schema, field, terms)

    def _hits(self, query: tantivy.Query, limit: int = 10) -> int:
        result = self.searcher.search(query, limit)
        for _score, address in result.hits:
            orjson.loads(self.searcher.doc(address).get_first("_source"))
        return result.count or 0

    def query(self, cls: str, p: dict[str, Any]) -> int:
        """Runs one query of class `cls`; returns how many documents (or buckets) answered."""
        if cls in ("national_id", "phone"):
            return self._hits(self._term(cls, p["value"]))
        if cls == "full_name":
            return self._hits(self._phrase("name", p["value"]))
        if cls == "address":
            return self._hits(self._all_of("address", [t for w in p["words"] for t in self.cjk.terms(w)]))
        if cls == "name_place_year":
            year = p["year"] * 10000
            return self._hits(tantivy.Query.boolean_query([
                (tantivy.Occur.Must, self._any_of("name", self.cjk.terms(p["name"]))),
                (tantivy.Occur.Must, self._term("birthplace", p["birthplace"])),
                (tantivy.Occur.Must, tantivy.Query.range_query(self.schema, "birth_date", tantivy.FieldType.Integer,
                                                               year + 101, year + 1231)),
            ]))
        if cls == "case_notes":
            return self._hits(self._any_of("case_notes", self.cjk.terms(" ".join(p["words"]))))
        if cls == "terms_agg":
            result = self.searcher.aggregate(tantivy.Query.all_query(),
                                             {"agg": {"terms": {"field": p["field"], "size": 10}}})
            return len(result["agg"]["buckets"])
        if cls == "mget":
            query = tantivy.Query.term_set_query(self.schema, "_id", p["ids"])
            return self._hits(query, limit=len(p["ids"]))
        raise ValueError(cls)


# -- Strongroom over HTTPS ------------------------------------------------------------------------------
class Server:
    """`strongroom serve` with its defaults (TLS and authentication on) in a temporary directory.
    `source`: another checkout whose `src` the server runs (bench/interleaved.py), instead of this one;
    `python`: the interpreter to run it with (a venv's, holding the dependencies), instead of this one."""

    def __init__(self, root: Path, source: Path | None = None, python: str | None = None) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "STRONGROOM_BOOTSTRAP_PASSWORD": PASSWORD, "PYTHONUNBUFFERED": "1"}
        if source is not None:
            env["PYTHONPATH"] = str(source / "src")
        self.log_path = root / "server.log"
        self.log = open(self.log_path, "w")  # a file, not a pipe: a full pipe would stall the server
        self.process = subprocess.Popen([python or sys.executable, "-m", "strongroom", "serve", "--data-dir",
                                         str(root / "data"), "--config-dir", str(root / "config"), "--port", "0"],
                                        stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 120
        while True:
            match = re.search(r"listening on https://127\.0\.0\.1:(\d+)", self.log_path.read_text())
            if match:
                self.port = int(match.group(1))
                break
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.05)
        self.context = ssl.create_default_context(cafile=str(root / "config" / "certs" / "http_ca.crt"))

    def connection(self) -> Connection:
        return Connection(self.port, self.context)

    def status(self, key: str) -> int:
        """A /proc/<pid>/status figure in bytes (VmRSS, VmHWM)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(key)

    def _family(self) -> list[tuple[Path, list[str], bool]]:
        """(/proc directory, stat fields after the name, is a child) of the server and its child processes
        (its ingest workers); processes that end meanwhile are left out."""
        out = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                child = int(fields[1]) == self.process.pid
                if child or int(stat.parent.name) == self.process.pid:
                    out.append((stat.parent, fields, child))
            except (OSError, IndexError, ValueError):
                continue
        return out

    def children_status(self, key: str) -> int:
        """The sum of a /proc status figure over the server's child processes (its ingest workers)."""
        total = 0
        for directory, _fields, child in self._family():
            try:
                if child:
                    for line in (directory / "status").read_text().splitlines():
                        if line.startswith(key + ":"):
                            total += int(line.split()[1]) * 1024
            except OSError:
                continue  # a process that ended meanwhile
        return total

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server and its child processes have used so far."""
        tick = os.sysconf("SC_CLK_TCK")
        return sum(int(fields[11]) + int(fields[12]) for _directory, fields, _child in self._family()) / tick

    def settle(self, window: float = SETTLE_WINDOW, limit: float = SETTLE_LIMIT) -> float:
        """Waits until the server is idle (under SETTLE_BUSY of a core over `window` seconds: the merges
        that follow a large load are done), at most `limit` seconds; returns the seconds waited."""
        started = time.monotonic()
        while True:
            before = self.cpu_seconds()
            time.sleep(window)
            if self.cpu_seconds() - before < SETTLE_BUSY * window or time.monotonic() - started >= limit:
                return time.monotonic() - started

    def reset_peak(self) -> bool:
        try:
            Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    def index_bytes(self) -> int:
        return sum(p.stat().st_size for p in (self.root / "data" / "indices").rglob("*") if p.is_file())

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


FLOOR_APP = """
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route


async def ok(request):
    await request.body()
    return Response(b'{"ok":true}', media_type="application/json")

app = Starlette(routes=[Route("/{path:path}", ok, methods=["GET", "POST"])])
"""


class Floor:
    """The HTTPS floor: a trivial Starlette endpoint on uvicorn with Strongroom's TLS settings, certificate
    and event loop (uvloop where installed, as server.serve_forever), in its own process; the same client
    measures it, so its latency is what any answer over this stack costs before Strongroom does anything."""

    def __init__(self, server: Server) -> None:
        certs = server.root / "config" / "certs"
        (server.root / "floor_app.py").write_text(FLOOR_APP)
        code = ("import sys, ssl, uvicorn; sys.path.insert(0, sys.argv[1]); from floor_app import app;"
                "c = uvicorn.Config(app, host='127.0.0.1', port=0, log_level='warning', access_log=False, "
                "lifespan='off', server_header=False, ssl_certfile=sys.argv[2], ssl_keyfile=sys.argv[3], "
                "ssl_ciphers='ECDHE+AESGCM:ECDHE+CHACHA20'); c.load(); s = uvicorn.Server(c);"
                "import asyncio\nasync def main():\n t = asyncio.create_task(s.serve())\n"
                " while not s.started: await asyncio.sleep(0.02)\n"
                " print('port', s.servers[0].sockets[0].getsockname()[1], flush=True)\n await t\n"
                "\ntry:\n import uvloop\nexcept ImportError:\n asyncio.run(main())\nelse:\n uvloop.run(main())")
        self.process = subprocess.Popen([sys.executable, "-c", code, str(server.root), str(certs / "http.crt"),
                                         str(certs / "http.key")], stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line.startswith("port "):
            self.process.kill()
            raise RuntimeError("the floor server did not start")
        self.port = int(line.split()[1])
        self.context = server.context

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def es_request(cls: str, p: dict[str, Any]) -> tuple[str, str, bytes]:
    """The Elasticsearch request of one query: (method, path, body)."""
    search = f"/{INDEX}/_search"
    if cls in ("national_id", "phone"):
        body: dict[str, Any] = {"query": {"term": {cls: p["value"]}}}
    elif cls == "full_name":
        body = {"query": {"match_phrase": {"name": p["value"]}}}
    elif cls == "address":
        body = {"query": {"match": {"address": {"query": " ".join(p["words"]), "operator": "and"}}}}
    elif cls == "name_place_year":
        body = {"query": {"bool": {"must": [{"match": {"name": p["name"]}}],
                                   "filter": [{"term": {"birthplace": p["birthplace"]}},
                                              {"range": {"birth_date": {"gte": f"{p['year']}-01-01",
                                                                        "lte": f"{p['year']}-12-31"}}}]}}}
    elif cls == "case_notes":
        body = {"query": {"match": {"case_notes": " ".join(p["words"])}}, "size": 10}
    elif cls == "terms_agg":
        body = {"size": 0, "aggs": {"agg": {"terms": {"field": p["field"], "size": 10}}}}
    elif cls == "mget":
        return "POST", f"/{INDEX}/_mget", orjson.dumps({"ids": p["ids"]})
    else:
        raise ValueError(cls)
    return "POST", search, orjson.dumps(body)


def answered(cls: str, answer: dict[str, Any]) -> int:
    """How many documents (or buckets) an answer holds."""
    if cls == "mget":
        return sum(1 for doc in answer["docs"] if doc.get("found"))
    if cls == "terms_agg":
        return len(answer["aggregations"]["agg"]["buckets"])
    return answer["hits"]["total"]["value"]


class Sampler:
    """Samples a value every `interval` seconds in a thread; `peak` is the largest seen."""

    def __init__(self, read: Callable[[], int], interval: float = 0.05) -> None:
        self.read, self.interval, self.peak = read, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.read())
            except (OSError, KeyError):
                return
            self._stop.wait(self.interval)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def items_count(work: dict[str, list[dict[str, Any]]]) -> int:
    return len(next(iter(work.values())))


def measure_get(port: int, context: ssl.SSLContext, count: int, clients: list[int]) -> dict[str, Any]:
    """`GET /` over keep-alive HTTPS, timed as the query classes are."""
    out = {}
    for n in clients:
        conns = [Connection(port, context) for _ in range(n)]
        out[str(n)] = run_clients([lambda _p, c=c: c.call("GET", "/") for c in conns], [{}] * count)
        for c in conns:
            c.close()
    return out


def load_strongroom(server: Server, rows: Sequence[Row], bulk_clients: int) -> tuple[float, dict[str, Any]]:
    """`_bulk` of every resident over `bulk_clients` connections, then `_refresh`: (seconds, memory)."""
    from strongroom.demo import RESIDENTS_BODY

    conn = server.connection()
    conn.call("PUT", f"/{INDEX}", orjson.dumps(RESIDENTS_BODY))
    sampler = Sampler(lambda: server.status("VmRSS"))
    loaders = [server.connection() for _ in range(bulk_clients)]
    failures: list[BaseException] = []

    def load(k: int) -> None:
        try:
            for body in bulk_bodies(rows, k, bulk_clients):  # built as sent: ~7 ms per body, ~1 % of its time
                result = loaders[k].call("POST", f"/{INDEX}/_bulk", body, ndjson=True)
                if result["errors"]:
                    raise RuntimeError(f"bulk errors: {orjson.dumps(result)[:500]!r}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    started = time.perf_counter()
    threads = [threading.Thread(target=load, args=(k,)) for k in range(bulk_clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    conn.close()  # idle through the load: the server's keep-alive timeout (60 s) has closed it
    conn = server.connection()
    conn.call("POST", f"/{INDEX}/_refresh")
    load_seconds = time.perf_counter() - started
    for loader in loaders:
        loader.close()
    memory = {"load_vmrss_sampled_peak_bytes": sampler.stop(), "load_vmhwm_bytes": server.status("VmHWM"),
              "load_workers_vmhwm_bytes": server.children_status("VmHWM")}
    conn.close()
    return load_seconds, memory


def strongroom_run(rows: Sequence[Row], work: dict[str, list[dict[str, Any]]], clients: list[int],
                   root: Path, bulk_clients: int = 2, *, reuse: bool = False) -> dict[str, Any]:
    """`reuse`: `root` holds the server of an earlier run (`--keep`) with these residents loaded: no load,
    queries only."""
    server = Server(root)
    try:
        if reuse:
            conn = server.connection()
            held = conn.call("GET", f"/{INDEX}/_count")["count"]
            conn.close()
            if held != len(rows):
                raise RuntimeError(f"the kept server holds {held} residents, not {len(rows)}")
            load_seconds = None
            memory: dict[str, Any] = {"load_vmrss_sampled_peak_bytes": None, "load_vmhwm_bytes": None,
                                      "load_workers_vmhwm_bytes": None}
        else:
            load_seconds, memory = load_strongroom(server, rows, bulk_clients)
        settle_seconds = server.settle()
        reset = server.reset_peak()
        sampler = Sampler(lambda: server.status("VmRSS"))
        classes: dict[str, dict[str, Any]] = {cls: {} for cls in work}
        for n in clients:
            conns = [server.connection() for _ in range(n)]

            def workers_for(cls: str, conns: list[Connection] = conns) -> list[Callable[[dict[str, Any]], None]]:
                def worker(p: dict[str, Any], c: Connection) -> None:
                    method, path, body = es_request(cls, p)
                    if not answered(cls, c.call(method, path, body)):
                        raise RuntimeError(f"{cls}: no hit for {p}")
                return [lambda p, c=c: worker(p, c) for c in conns]

            for cls, result in run_rounds(workers_for, work).items():
                classes[cls][str(n)] = result
            for c in conns:
                c.close()
        memory["queries_vmrss_sampled_peak_bytes"] = sampler.stop()
        memory["queries_vmhwm_bytes"] = server.status("VmHWM") if reset else None
        floors = {"strongroom_root": measure_get(server.port, server.context, items_count(work), clients)}
        floor = Floor(server)
        try:
            floors["starlette"] = measure_get(floor.port, floor.context, items_count(work), clients)
        finally:
            floor.stop()
        return {"bulk_docs_per_s": len(rows) / load_seconds if load_seconds else None,
                "load_seconds": load_seconds, "settle_seconds": settle_seconds, "memory": memory,
                "index_bytes": server.index_bytes(), "classes": classes, "floors": floors}
    finally:
        server.stop()


def raw_run(rows: Sequence[Row], work: dict[str, list[dict[str, Any]]], clients: list[int],
            root: Path, one_thread: bool = True, *, reuse: bool = False) -> dict[str, Any]:
    """Raw tantivy: loads with 2 threads, then (unless `one_thread` is False: long 10M runs) again with
    one, and queries the last index loaded. `reuse`: queries the index an earlier run (`--keep`) left
    in `root`, without loading."""
    two = root / "raw-2"
    load_1 = load_2 = None
    if reuse:
        one = root / "raw-1" if (root / "raw-1").is_dir() else two
        raw = Raw(one)
        raw.open(len(rows))
    else:
        two.mkdir(parents=True)
        raw = Raw(two)
        load_2 = raw.load(rows, threads=2)
        one = two
    if one_thread and not reuse:
        del raw
        shutil.rmtree(two, ignore_errors=True)
        one = root / "raw-1"
        one.mkdir(parents=True)
        raw = Raw(one)
        load_1 = raw.load(rows, threads=1)
    classes: dict[str, dict[str, Any]] = {cls: {} for cls in work}
    for n in clients:
        def workers_for(cls: str, n: int = n) -> list[Callable[[dict[str, Any]], None]]:
            def worker(p: dict[str, Any]) -> None:
                if not raw.query(cls, p):
                    raise RuntimeError(f"raw {cls}: no hit for {p}")
            return [worker] * n

        for cls, result in run_rounds(workers_for, work).items():
            classes[cls][str(n)] = result
    index_bytes = sum(p.stat().st_size for p in one.rglob("*") if p.is_file())
    return {"bulk_docs_per_s": {"1": load_1, "2": load_2}, "index_bytes": index_bytes, "classes": classes}


# -- report ----------------------------------------------------------------------------------------------
def ratios(ours: dict[str, Any], raw: dict[str, Any], clients: list[int]) -> dict[str, float]:
    first = str(clients[0])
    out = {key: ours[first][key] / raw[first][key] for key in ("p50_ms", "p95_ms", "p99_ms")}
    for n in clients:
        out[f"req_per_s_{n}"] = ours[str(n)]["req_per_s"] / raw[str(n)]["req_per_s"]
    return out


def markdown(report: dict[str, Any]) -> str:
    clients = report["clients"]
    first = str(clients[0])
    head = ["query class", "raw p50 ms", "p50 ms", "p95 ms", "p99 ms", "p50 ratio", "added p50 ms",
            *(f"req/s {n} client{'s' if n > 1 else ''}" for n in clients)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cls, label in CLASSES.items():
        entry = report["classes"][cls]
        ours, raw = entry["strongroom"], entry["raw"]
        cells = [label, f"{raw[first]['p50_ms']:.3g}", f"{ours[first]['p50_ms']:.3g}",
                 f"{ours[first]['p95_ms']:.3g}", f"{ours[first]['p99_ms']:.3g}", f"{entry['ratios']['p50_ms']:.0f}×",
                 f"{ours[first]['p50_ms'] - raw[first]['p50_ms']:.2f}",
                 *(f"{ours[str(n)]['req_per_s']:,.0f}" for n in clients)]
        lines.append("| " + " | ".join(cells) + " |")
    for key, label in (("starlette", "HTTPS floor: trivial Starlette `GET /` (own process)"),
                       ("strongroom_root", "Strongroom `GET /` (auth, audit, no search)")):
        floor = report["floors"][key]
        lines.append("| " + " | ".join([label, "", f"{floor[first]['p50_ms']:.3g}", f"{floor[first]['p95_ms']:.3g}",
                                         f"{floor[first]['p99_ms']:.3g}", "", "",
                                         *(f"{floor[str(n)]['req_per_s']:,.0f}" for n in clients)]) + " |")
    load, mem = report["load"], report["strongroom_memory"]
    mib = 1 << 20
    queries_peak = mem["queries_vmhwm_bytes"] or mem["queries_vmrss_sampled_peak_bytes"]
    if report.get("reused"):
        loads = ["| bulk load, docs/s | not measured (queries only, on the indexes of an earlier --keep run) "
                 "| | |"]
    else:
        one = "| bulk load, docs/s (raw: 1 thread) | | not measured (--no-raw-one-thread) | |"
        if load["ratio_1_thread"]:
            one = (f"| bulk load, docs/s (raw: 1 thread) | {load['strongroom_docs_per_s']:,.0f} | "
                   f"{load['raw_docs_per_s']['1']:,.0f} | {load['ratio_1_thread']:.2f}× |")
        loads = [one, f"| bulk load, docs/s (raw: 2 threads) | {load['strongroom_docs_per_s']:,.0f} | "
                      f"{load['raw_docs_per_s']['2']:,.0f} | {load['ratio_2_threads']:.2f}× |"]
    load_rss, workers_rss = (f"{mem[key] / mib:,.0f}" if mem[key] is not None else "not measured"
                             for key in ("load_vmhwm_bytes", "load_workers_vmhwm_bytes"))
    lines += ["", "| measure | Strongroom | raw tantivy | ratio |", "|---|---|---|---|", *loads,
              f"| index on disk per 1M residents (linear extrapolation), MiB | "
              f"{report['disk']['strongroom_bytes_per_million'] / mib:,.0f} | "
              f"{report['disk']['raw_bytes_per_million'] / mib:,.0f} | {report['disk']['ratio']:.2f}× |",
              f"| server peak RSS during load, MiB | {load_rss} | | |",
              f"| its ingest worker processes' peak RSS during load (sum), MiB | {workers_rss} | | |",
              f"| server peak RSS during queries, MiB | {queries_peak / mib:,.0f} | | |",
              "", "| issue-9 target | measured | met |", "|---|---|---|",
              *(f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else 'no'} |" for t in report["targets"]),
              "", f"{report['residents']:,} residents, {report['queries']:,} queries per class and client count; "
              f"p50/p95/p99 with {clients[0]} client(s); ratio = Strongroom p50 / raw tantivy p50; added = Strongroom "
              f"p50 − raw p50; bulk load over {report['bulk_clients']} connection(s); queries began once the "
              f"server was idle (a wait of {report['settle_seconds']:.0f} s). "
              f"{report['machine']['summary']}. Command: `{report['command']}`."]
    return "\n".join(lines) + "\n"


# The best peer p50 (ms) the issue lists for the full-text classes (SQLite FTS5, PostgreSQL, Sphinx,
# Xapian; 1M residents on this machine), and the best peer bulk rate.
PEER_BEST_P50 = {"address": 0.88, "case_notes": 7.3}
PEER_BEST_BULK = 29_000


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 9's targets that one run can check (the 10M ones need a 10M run)."""
    first = str(report["clients"][0])
    cls = report["classes"]

    def ours(name: str, key: str = "p50_ms", n: str = first) -> float:
        return cls[name]["strongroom"][n][key]

    out = []
    for name in ("national_id", "phone"):
        out.append({"target": f"1. {CLASSES[name]}: p50 ≤ 1 ms, p99 ≤ 3 ms",
                    "measured": f"p50 {ours(name):.2f} ms, p99 {ours(name, 'p99_ms'):.2f} ms",
                    "met": ours(name) <= 1 and ours(name, "p99_ms") <= 3})
    for name, best in PEER_BEST_P50.items():
        out.append({"target": f"2. {CLASSES[name]}: p50 below every peer (best {best} ms)",
                    "measured": f"p50 {ours(name):.2f} ms", "met": ours(name) < best})
    for name in ("full_name", "name_place_year"):
        out.append({"target": f"2. {CLASSES[name]}: p50 ≤ 1 ms", "measured": f"p50 {ours(name):.2f} ms",
                    "met": ours(name) <= 1})
    added = {name: ours(name) - cls[name]["raw"][first]["p50_ms"] for name in CLASSES}
    worst = max(added, key=added.__getitem__)
    out.append({"target": "3. added p50 over raw tantivy ≤ 0.5 ms, every class",
                "measured": f"worst {added[worst]:.2f} ms ({CLASSES[worst]})", "met": added[worst] <= 0.5})
    load = report["load"]
    if load["strongroom_docs_per_s"] is not None:
        out.append({"target": f"4. bulk ≥ 33,000 docs/s, above every peer ({PEER_BEST_BULK:,}) and ≥ 0.5× "
                              "raw 2 threads",
                    "measured": f"{load['strongroom_docs_per_s']:,.0f} docs/s, "
                                f"{load['ratio_2_threads']:.2f}× raw",
                    "met": load["strongroom_docs_per_s"] >= 33_000 and load["ratio_2_threads"] >= 0.5})
    if "2" in cls["national_id"]["strongroom"]:
        rate = min(ours(name, "req_per_s", "2") for name in ("national_id", "phone"))
        out.append({"target": "7. ≥ 3,000 exact lookups/s with 2 clients", "measured": f"{rate:,.0f}/s",
                    "met": rate >= 3000})
    return out


def chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = str(report["clients"][0])
    names = list(CLASSES)
    raw = [report["classes"][c]["raw"][first]["p50_ms"] for c in names]
    ours = [report["classes"][c]["strongroom"][first]["p50_ms"] for c in names]
    fig, ax = plt.subplots(figsize=(10, 5))
    x = range(len(names))
    ax.bar([i - 0.2 for i in x], raw, width=0.4, label="raw tantivy (in-process)")
    ax.bar([i + 0.2 for i in x], ours, width=0.4, label="Strongroom (HTTPS, auth, sealing, blind tokens)")
    ax.axhline(report["floors"]["starlette"][first]["p50_ms"], color="grey", linestyle="--", linewidth=1,
               label="HTTPS floor (trivial Starlette endpoint)")
    ax.set_yscale("log")
    ax.set_ylim(top=max(ours + raw) * 20)  # room for the legend above the bars
    ax.set_ylabel("p50 latency, ms (log scale)")
    ax.set_xticks(list(x), [CLASSES[c] for c in names], rotation=30, ha="right", fontsize=8)
    ax.set_title(f"{report['residents']:,} residents, {first} client, p50 per query class")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--residents", type=int, default=100_000)
    parser.add_argument("--clients", default="1,2", help="Concurrent client counts, comma separated.")
    parser.add_argument("--queries", type=int, default=2000, help="Queries per class and client count.")
    parser.add_argument("--bulk-clients", type=int, default=2, help="Concurrent _bulk connections while loading.")
    parser.add_argument("--results-dir", type=Path, default=ROOT / "results")
    parser.add_argument("--no-raw-one-thread", action="store_true",
                        help="Load raw tantivy with 2 threads only (saves a long load at 10M).")
    kept = parser.add_mutually_exclusive_group()
    kept.add_argument("--keep", type=Path, metavar="DIR",
                      help="Work in DIR (new or empty) and keep both indexes there, for --reuse.")
    kept.add_argument("--reuse", type=Path, metavar="DIR",
                      help="Query the indexes an earlier --keep run left in DIR (same --residents): no "
                           "load, so no bulk or load-memory figures.")
    args = parser.parse_args()
    clients = [int(n) for n in args.clients.split(",")]
    if not clients or min(clients) < 1 or args.queries < 1 or args.residents < 1 or args.bulk_clients < 1:
        parser.error("--residents, --queries, --bulk-clients and every --clients count must be positive")
    if args.keep is not None and args.keep.exists() and any(args.keep.iterdir()):
        parser.error(f"--keep {args.keep}: the directory is not empty")
    if args.reuse is not None and not all((args.reuse / d).is_dir() for d in ("tantivy", "strongroom")):
        parser.error(f"--reuse {args.reuse}: no kept run there (tantivy/ and strongroom/)")

    rows = residents(args.residents)
    work = workload(rows, args.queries)
    reuse = args.reuse is not None
    work_dir = args.reuse or args.keep
    tmp = work_dir if work_dir is not None else Path(tempfile.mkdtemp(prefix="strongroom-residents-"))
    try:
        raw = raw_run(rows, work, clients, tmp / "tantivy", one_thread=not args.no_raw_one_thread,
                      reuse=reuse)
        ours = strongroom_run(rows, work, clients, tmp / "strongroom", args.bulk_clients, reuse=reuse)
    finally:
        if work_dir is None:
            shutil.rmtree(tmp, ignore_errors=True)

    per_million = 1_000_000 / len(rows)
    report: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join([".venv/bin/python", *sys.argv]),
        "residents": len(rows), "queries": args.queries, "clients": clients, "bulk_clients": args.bulk_clients,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "machine": platform.machine(),
                    "python": platform.python_version(), "tantivy": getattr(tantivy, "__version__", "?"),
                    "summary": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"},
        "reused": str(args.reuse) if reuse else None,
        "settle_seconds": ours["settle_seconds"],
        "load": {"strongroom_docs_per_s": ours["bulk_docs_per_s"], "raw_docs_per_s": raw["bulk_docs_per_s"],
                 "ratio_1_thread": ours["bulk_docs_per_s"] / raw["bulk_docs_per_s"]["1"]
                 if ours["bulk_docs_per_s"] and raw["bulk_docs_per_s"]["1"] else None,
                 "ratio_2_threads": ours["bulk_docs_per_s"] / raw["bulk_docs_per_s"]["2"]
                 if ours["bulk_docs_per_s"] and raw["bulk_docs_per_s"]["2"] else None},
        "strongroom_memory": ours["memory"],
        "floors": ours["floors"],
        "disk": {"strongroom_bytes": ours["index_bytes"], "raw_bytes": raw["index_bytes"],
                 "strongroom_bytes_per_million": ours["index_bytes"] * per_million,
                 "raw_bytes_per_million": raw["index_bytes"] * per_million,
                 "ratio": ours["index_bytes"] / raw["index_bytes"],
                 "note": "linear extrapolation from this run's size"},
        "classes": {cls: {"label": label, "strongroom": ours["classes"][cls], "raw": raw["classes"][cls],
                          "ratios": ratios(ours["classes"][cls], raw["classes"][cls], clients),
                          "example": orjson.loads(es_request(cls, work[cls][0])[2])}
                    for cls, label in CLASSES.items()},
    }
    report["targets"] = targets(report)
    table = markdown(report)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = args.results_dir / f"residents-{stamp}"
    Path(f"{base}.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    Path(f"{base}.md").write_text(table)
    chart(report, Path(f"{base}.png"))
    print(table)
    print(f"Written: {base}.json, .md, .png")


if __name__ == "__main__":
    main()
