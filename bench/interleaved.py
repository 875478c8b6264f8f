"""Before and after over HTTPS, interleaved: two servers, two commits, one data set, one client.

    .venv/bin/python bench/interleaved.py --base <commit> [--residents 100000] [--queries 1000]

On a shared machine the HTTPS harness (`bench/residents.py`) moves by tens of percent between runs of
the same code, so two runs cannot tell a change of a few percent. Here the machine's moods fall on
both sides alike:

1. `git archive <commit>` into a temporary directory (the "before" code; "after" is this checkout).
2. A `strongroom serve` of this checkout (TLS, authentication, audit, detector, the demo's protected
   index) loads the residents through `_bulk` and refreshes; it is stopped, and its data and config
   directories are copied, so both servers open the same residents, keys and segments.
3. Both servers start, one on each copy (the before server runs the archived `src`), and one client
   with a keep-alive HTTPS connection to each sends every query of a class to both, alternating
   which goes first, over `--rounds` rounds.

4. With `--bulk N`, before the queries: both servers create one more index with the residents'
   mapping and load the first N residents into it, `_bulk` body by body, each body sent to both
   (alternating which goes first); the load rate of each is the documents over the sum of its
   bodies' times, the same way: a before/after of the write path that two whole runs cannot give.

With `--base-python PATH` the before server runs under that interpreter (a venv's `bin/python` with
Strongroom's dependencies installed) instead of this one: `--base HEAD --base-python ...` compares two
interpreters on the same code.

Per class: p50 and p99 (ms) of each server and the change of p50 (after ÷ before − 1). The query
classes are the harness's (`residents.workload`), whose answers are checked. Both commits must read
the same data directory format. Results: bench/results/interleaved-<time>.json and .md (not
committed); the table is printed.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from core import bulk_bodies, percentile, residents  # noqa: E402
from residents import INDEX, Server, answered, es_request, workload  # noqa: E402

ROOT = Path(__file__).resolve().parent
CHECKOUT = ROOT.parent
CLASSES = ("national_id", "phone", "full_name", "address", "name_place_year", "case_notes", "terms_agg", "mget")


def archive(commit: str, into: Path) -> str:
    """The code of `commit` under `into`; returns the commit's full hash."""
    full = subprocess.run(["git", "-C", str(CHECKOUT), "rev-parse", "--verify", f"{commit}^{{commit}}"],
                          capture_output=True, text=True, check=True).stdout.strip()
    tar = subprocess.run(["git", "-C", str(CHECKOUT), "archive", full], capture_output=True, check=True).stdout
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=tar, check=True)
    return full


def python_version(python: str) -> str:
    return subprocess.run([python, "-c", "import platform; print(platform.python_version())"], capture_output=True,
                          text=True, check=True).stdout.strip()


def load(root: Path, rows: Sequence[tuple[str, bytes]]) -> None:
    from strongroom.demo import RESIDENTS_BODY

    server = Server(root)
    try:
        conn = server.connection()
        conn.call("PUT", f"/{INDEX}", orjson.dumps(RESIDENTS_BODY))
        for body in bulk_bodies(rows):
            if conn.call("POST", f"/{INDEX}/_bulk", body, ndjson=True)["errors"]:
                raise RuntimeError("bulk errors")
        conn.call("POST", f"/{INDEX}/_refresh")
        conn.close()
    finally:
        server.stop()


BULK_INDEX = "interleaved-bulk"


def measure_bulk(servers: dict[str, Server], rows: Sequence[tuple[str, bytes]]) -> dict[str, float]:
    """docs/s of each server loading `rows` into a new index, body by body, alternating who goes first."""
    from strongroom.demo import RESIDENTS_BODY

    conns = {side: server.connection() for side, server in servers.items()}
    spent = dict.fromkeys(servers, 0.0)
    try:
        for conn in conns.values():
            conn.call("PUT", f"/{BULK_INDEX}", orjson.dumps(RESIDENTS_BODY))
        for k, body in enumerate(bulk_bodies(rows)):
            for side in (("before", "after") if k % 2 == 0 else ("after", "before")):
                started = time.perf_counter()
                answer = conns[side].call("POST", f"/{BULK_INDEX}/_bulk", body, ndjson=True)
                spent[side] += time.perf_counter() - started
                if answer["errors"]:
                    raise RuntimeError(f"{side}: bulk errors")
    finally:
        for conn in conns.values():
            conn.close()
    return {side: len(rows) / seconds for side, seconds in spent.items()}


def measure(servers: dict[str, Server], work: dict[str, list[dict[str, Any]]], rounds: int
            ) -> dict[str, dict[str, list[float]]]:
    conns = {side: server.connection() for side, server in servers.items()}
    times: dict[str, dict[str, list[float]]] = {side: {cls: [] for cls in CLASSES} for side in servers}
    try:
        for cls in CLASSES:  # warm-up: credential caches, searchers, memos
            for p in work[cls][:20]:
                for conn in conns.values():
                    conn.call(*es_request(cls, p))
        for k in range(rounds):
            for cls in CLASSES:
                for i, p in enumerate(work[cls]):
                    order = ("before", "after") if (i + k) % 2 == 0 else ("after", "before")
                    for side in order:
                        started = time.perf_counter()
                        answer = conns[side].call(*es_request(cls, p))
                        times[side][cls].append((time.perf_counter() - started) * 1000)
                        if not answered(cls, answer):
                            raise RuntimeError(f"{side} {cls}: no answer for {p}")
    finally:
        for conn in conns.values():
            conn.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="The commit to compare this checkout against.")
    parser.add_argument("--residents", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1000, help="Queries per class and round.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bulk", type=int, default=0, help="Also compare loading this many residents (0: no).")
    parser.add_argument("--base-python", help="The interpreter of the before server (default: this one).")
    parser.add_argument("--results-dir", type=Path, default=ROOT / "results")
    args = parser.parse_args()
    if args.residents < 20 or args.queries < 1 or args.rounds < 1 or args.bulk < 0:
        parser.error("--residents must be at least 20, --queries and --rounds positive, --bulk not negative")
    rows = residents(args.residents)
    work = workload(rows, args.queries)
    tmp = Path(tempfile.mkdtemp(prefix="strongroom-interleaved-"))
    try:
        base = archive(args.base, tmp / "before-code")
        load(tmp / "after", rows)
        shutil.copytree(tmp / "after", tmp / "before")
        servers = {"before": Server(tmp / "before", source=tmp / "before-code", python=args.base_python),
                   "after": Server(tmp / "after")}
        try:
            bulk = measure_bulk(servers, residents(args.bulk)) if args.bulk else None
            times = measure(servers, work, args.rounds)
        finally:
            for server in servers.values():
                server.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    head = subprocess.run(["git", "-C", str(CHECKOUT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    figures = {side: {cls: {"p50_ms": percentile(t, 50), "p99_ms": percentile(t, 99)} for cls, t in by_class.items()}
               for side, by_class in times.items()}
    lines = ["| query class | before p50 ms | after p50 ms | change | before p99 ms | after p99 ms |",
             "|---|---|---|---|---|---|"]
    for cls in CLASSES:
        before, after = figures["before"][cls], figures["after"][cls]
        change = (after["p50_ms"] / before["p50_ms"] - 1) * 100
        lines.append(f"| {cls} | {before['p50_ms']:.3f} | {after['p50_ms']:.3f} | {change:+.1f} % | "
                     f"{before['p99_ms']:.2f} | {after['p99_ms']:.2f} |")
    if bulk is not None:
        lines.append(f"| bulk load, docs/s ({args.bulk:,} residents, higher is better) | {bulk['before']:,.0f} | "
                     f"{bulk['after']:,.0f} | {(bulk['after'] / bulk['before'] - 1) * 100:+.1f} % | | |")
    lines.append("")
    lines.append(f"{args.residents:,} residents, {args.queries:,} queries per class × {args.rounds} rounds, each sent to "
                 f"both servers in alternating order. Before: `{base[:12]}`; after: this checkout (HEAD "
                 f"`{head[:12]}`, uncommitted changes included). Command: `{' '.join(['.venv/bin/python', *sys.argv])}`.")
    before_python = args.base_python or sys.executable
    lines[-1] += f" Interpreters: before `{before_python}` ({python_version(before_python)}), after " \
                 f"`{sys.executable}` ({platform.python_version()})."
    table = "\n".join(lines)
    report = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "before": base, "after_head": head,
              "before_python": before_python, "after_python": sys.executable,
              "residents": args.residents, "queries": args.queries, "rounds": args.rounds,
              "machine": f"{platform.machine()}, Python {platform.python_version()}", "figures": figures,
              "bulk_docs_per_s": bulk, "bulk_residents": args.bulk}
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"interleaved-{time.strftime('%Y%m%d-%H%M%S')}"
    Path(f"{out}.json").write_text(json.dumps(report, indent=2))
    Path(f"{out}.md").write_text(table + "\n")
    print(table)
    print(f"Written: {out}.json, .md")


if __name__ == "__main__":
    main()
