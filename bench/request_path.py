"""Request-path benchmark: what Strongroom's own Python costs per request, without TLS or sockets.

    .venv/bin/python bench/request_path.py --residents 20000 --queries 2000

The issue-9 harness (`bench/residents.py`) times requests over HTTPS, where TLS, the event loop's
socket handling and the client's own work sit beside Strongroom's code. This one builds the real
server (`server.open_node` with its defaults: authentication, the audit log with its fsync'ed
records, dump detection, budgets, sealing and blind tokens of the demo's residents index) and the
real ASGI app (`api.app.build_app`), loads the residents through `_bulk`, and then calls the ASGI
app directly, one request at a time, in this process: authentication (Basic, cached after the first
argon2id check), routing, policy, the query plan, the engine, unsealing, the response JSON and the
audit record are inside; the network is not. Latency per request class: median and p99 of each
request's time, and the mean over the run. The classes take turns in five rounds (after a 5 s pause
for the load's merges), so background work falls on each alike.

Baseline in the same run: raw tantivy doing the same work on the same residents
(`residents.Raw`: term query + fetching and parsing `_source`; phrase query; term-set on `_id`), so
each figure is also reported as a ratio and as added microseconds.

Results: bench/results/request-path-<time>.json and .md (not committed); the table is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from core import PASSWORD, bulk_bodies, percentile, residents  # noqa: E402
from residents import INDEX, Raw, es_request, workload  # noqa: E402
from residents import answered as residents_answered  # noqa: E402

ROOT = Path(__file__).resolve().parent
ROUNDS = 5
SETTLE_SECONDS = 5.0
CLASSES = {"root": "GET / (auth, audit, no search)", "national_id": "exact national ID (term)",
           "phone": "exact phone (term)", "full_name": "full name (match_phrase)", "mget": "_mget of 10 ids"}


class App:
    """The real node and ASGI app in this process, called without a socket."""

    def __init__(self, root: Path) -> None:
        from strongroom.api.app import build_app
        from strongroom.server import open_node
        from strongroom.settings import load_settings

        os.environ["STRONGROOM_BOOTSTRAP_PASSWORD"] = PASSWORD
        settings = load_settings(root / "config", {})
        self.node = open_node(root / "data", root / "config", settings)
        self.app = build_app(self.node.gate)
        self.auth = b"Basic " + base64.b64encode(f"admin:{PASSWORD}".encode())

    async def call(self, method: str, path: str, body: bytes = b"", ndjson: bool = False) -> Any:
        target, _, query = path.partition("?")
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
                 "scheme": "https", "path": target, "raw_path": target.encode(), "query_string": query.encode(),
                 "root_path": "", "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 9200),
                 "headers": [(b"host", b"127.0.0.1:9200"), (b"authorization", self.auth),
                             (b"content-type", b"application/x-ndjson" if ndjson else b"application/json"),
                             (b"content-length", str(len(body)).encode())]}
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop()
            await asyncio.Event().wait()  # the client never disconnects mid-request
            raise AssertionError("unreachable")

        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await self.app({**scope}, receive, send)
        status = sent[0]["status"]
        payload = b"".join(m.get("body", b"") for m in sent[1:])
        if status != 200:
            raise RuntimeError(f"{method} {path}: {status} {payload[:300]!r}")
        return orjson.loads(payload)

    def close(self) -> None:
        self.node.close()


def request(cls: str, p: dict[str, Any]) -> tuple[str, str, bytes]:
    return ("GET", "/", b"") if cls == "root" else es_request(cls, p)


def answered(cls: str, answer: Any) -> bool:
    return "version" in answer if cls == "root" else residents_answered(cls, answer) > 0


async def measure_ours(app: App, work: dict[str, list[dict[str, Any]]], rounds: int = ROUNDS
                       ) -> dict[str, dict[str, float]]:
    """The classes take turns, in `rounds` rounds over a share of their requests each, so that background
    work (a merge after the load, the audit's fsync) falls on every class alike."""
    items = {cls: work["national_id"] if cls == "root" else work[cls] for cls in CLASSES}
    for cls in CLASSES:
        for p in items[cls][:50]:  # warm-up: the credential cache, the searcher, the memos
            await app.call(*request(cls, p))
    times: dict[str, list[float]] = {cls: [] for cls in CLASSES}
    wall = dict.fromkeys(CLASSES, 0.0)
    for k in range(rounds):
        for cls in CLASSES:
            started = time.perf_counter()
            for p in items[cls][k::rounds]:
                method, path, body = request(cls, p)
                t0 = time.perf_counter()
                answer = await app.call(method, path, body)
                times[cls].append((time.perf_counter() - t0) * 1e6)
                if not answered(cls, answer):
                    raise RuntimeError(f"{cls}: no hit for {p}")
            wall[cls] += time.perf_counter() - started
    return {cls: {"p50_us": percentile(t, 50), "p99_us": percentile(t, 99), "mean_us": sum(t) / len(t),
                  "req_per_s": len(t) / wall[cls]} for cls, t in times.items()}


def measure_raw(raw: Raw, work: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    out = {}
    for cls in CLASSES:
        if cls == "root":
            continue
        items = work[cls]
        for p in items[:50]:
            raw.query(cls, p)
        times = []
        for p in items:
            t0 = time.perf_counter()
            if not raw.query(cls, p):
                raise RuntimeError(f"raw {cls}: no hit for {p}")
            times.append((time.perf_counter() - t0) * 1e6)
        out[cls] = {"p50_us": percentile(times, 50), "p99_us": percentile(times, 99),
                    "mean_us": sum(times) / len(times)}
    return out


async def load(app: App, rows: Sequence[tuple[str, bytes]]) -> None:
    from strongroom.demo import RESIDENTS_BODY

    await app.call("PUT", f"/{INDEX}", orjson.dumps(RESIDENTS_BODY))
    for body in bulk_bodies(rows):
        result = await app.call("POST", f"/{INDEX}/_bulk", body, ndjson=True)
        if result["errors"]:
            raise RuntimeError("bulk errors")
    await app.call("POST", f"/{INDEX}/_refresh")


def markdown(report: dict[str, Any]) -> str:
    lines = [f"Request path in process, {report['residents']:,} residents, {report['queries']} requests per class "
             f"({report['machine']}); raw tantivy in the same run.", "",
             "| request | raw p50 µs | p50 µs | p99 µs | mean µs | p50 ratio | added p50 µs |",
             "|---|---|---|---|---|---|---|"]
    for cls, label in CLASSES.items():
        ours, raw = report["strongroom"][cls], report["raw"].get(cls)
        ratio = f"{ours['p50_us'] / raw['p50_us']:.1f}×" if raw else ""
        added = f"{ours['p50_us'] - raw['p50_us']:.0f}" if raw else ""
        lines.append(f"| {label} | {raw['p50_us']:.0f} | " if raw else f"| {label} |  | ")
        lines[-1] += f"{ours['p50_us']:.0f} | {ours['p99_us']:.0f} | {ours['mean_us']:.0f} | {ratio} | {added} |"
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--residents", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=2000, help="Requests per class.")
    parser.add_argument("--results-dir", type=Path, default=ROOT / "results")
    args = parser.parse_args()
    if args.residents < 20 or args.queries < 1:
        parser.error("--residents must be at least 20 and --queries positive")
    rows = residents(args.residents)
    work = workload(rows, args.queries)
    tmp = Path(tempfile.mkdtemp(prefix="strongroom-request-path-"))
    try:
        (tmp / "tantivy").mkdir()
        raw = Raw(tmp / "tantivy")
        raw.load(rows, 1)
        raw_figures = measure_raw(raw, work)
        app = App(tmp / "strongroom")
        try:
            asyncio.run(load(app, rows))
            time.sleep(SETTLE_SECONDS)  # let the merges the load started finish
            ours = asyncio.run(measure_ours(app, work))
        finally:
            app.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "command": " ".join([".venv/bin/python", *sys.argv]), "residents": len(rows), "queries": args.queries,
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
              "strongroom": ours, "raw": raw_figures}
    table = markdown(report)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    base = args.results_dir / f"request-path-{time.strftime('%Y%m%d-%H%M%S')}"
    Path(f"{base}.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    Path(f"{base}.md").write_text(table)
    print(table)
    print(f"Written: {base}.json, .md")


if __name__ == "__main__":
    main()
