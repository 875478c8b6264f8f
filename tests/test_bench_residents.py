"""The residents benchmark (issue 9) runs end to end and reports every class with its ratios (no timing
assertions: the figures live in bench/results and docs/performance.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parent.parent
CLASSES = {"national_id", "phone", "full_name", "address", "name_place_year", "case_notes", "terms_agg", "mget"}


@pytest.mark.slow
@pytest.mark.timeout(480)
def test_residents_benchmark_runs_and_reports_every_class(tmp_path: Path) -> None:
    results = tmp_path / "results"
    kept = tmp_path / "kept"
    done, report_path, report = report_of(tmp_path, results, "--queries", "100", "--clients", "1,2",
                                          "--keep", str(kept))
    assert set(report["classes"]) == CLASSES
    for name, entry in report["classes"].items():
        for side in ("strongroom", "raw"):
            for clients in ("1", "2"):
                figures = entry[side][clients]
                assert all(figures[key] > 0 for key in ("p50_ms", "p95_ms", "p99_ms", "req_per_s")), (name, side)
        assert set(entry["ratios"]) == {"p50_ms", "p95_ms", "p99_ms", "req_per_s_1", "req_per_s_2"}
        assert all(value > 0 for value in entry["ratios"].values()), name
    assert report["load"]["strongroom_docs_per_s"] > 0 and report["load"]["ratio_2_threads"] > 0
    assert report["strongroom_memory"]["load_vmhwm_bytes"] > 0
    assert report["disk"]["strongroom_bytes_per_million"] > 0
    assert report["machine"]["cpus"] and "bench/residents.py --residents 3000" in report["command"]
    for floor in ("starlette", "strongroom_root"):
        assert all(report["floors"][floor][n]["p50_ms"] > 0 for n in ("1", "2")), floor
    assert {t["target"][:2] for t in report["targets"]} == {"1.", "2.", "3.", "4.", "7."}
    assert all(isinstance(t["met"], bool) and t["measured"] for t in report["targets"])

    assert report_path.with_suffix(".png").stat().st_size > 0
    assert report_path.with_suffix(".md").read_text() in done.stdout
    assert "| exact national ID (term) |" in done.stdout and "| _mget of 10 ids |" in done.stdout
    assert "| HTTPS floor: trivial Starlette `GET /` (own process) |" in done.stdout
    assert report["reused"] is None and report["settle_seconds"] >= 5

    # --keep left both indexes; --reuse queries them again without loading
    assert (kept / "tantivy" / "raw-1").is_dir() and (kept / "strongroom" / "data").is_dir()  # raw: its last load
    again = tmp_path / "again"
    done, _, reused = report_of(tmp_path, again, "--queries", "40", "--clients", "1", "--reuse", str(kept))
    assert reused["reused"] == str(kept) and reused["settle_seconds"] >= 5
    assert reused["load"]["strongroom_docs_per_s"] is None
    assert reused["load"]["raw_docs_per_s"] == {"1": None, "2": None}
    assert reused["strongroom_memory"]["load_vmhwm_bytes"] is None
    assert set(reused["classes"]) == CLASSES
    assert all(entry["strongroom"]["1"]["p50_ms"] > 0 and entry["raw"]["1"]["p50_ms"] > 0
               for entry in reused["classes"].values())
    assert {t["target"][:2] for t in reused["targets"]} == {"1.", "2.", "3."}  # no load, one client count
    assert "not measured (queries only" in done.stdout


def test_keep_refuses_a_directory_in_use_and_reuse_one_without_a_run(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "something").write_text("")
    done = run_bench(tmp_path, "--keep", str(tmp_path / "full"))
    assert done.returncode == 2 and "not empty" in done.stderr
    done = run_bench(tmp_path, "--reuse", str(tmp_path / "nothing"))
    assert done.returncode == 2 and "no kept run there" in done.stderr
    assert not (tmp_path / "cache").exists()  # refused before the data set was even generated


def report_of(tmp_path: Path, results: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Path, Any]:
    """Runs the benchmark into `results`: its process, its JSON report's path, the report."""
    done = run_bench(tmp_path, "--results-dir", str(results), *args)
    assert done.returncode == 0, done.stdout + done.stderr
    (report_path,) = results.glob("residents-*.json")
    return done, report_path, json.loads(report_path.read_text())


def run_bench(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "bench" / "residents.py"), "--residents", "3000", *args],
                          capture_output=True, text=True, timeout=230, cwd=ROOT,
                          env={**os.environ, "STRONGROOM_BENCH_CACHE": str(tmp_path / "cache")})
