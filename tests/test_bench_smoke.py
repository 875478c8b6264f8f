"""The benchmark runs end to end and computes its ratios (no timing assertions: those live in bench/)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.slow
def test_core_benchmark_runs_and_reports_ratios(tmp_path: Path) -> None:
    before = set((ROOT / "bench" / "results").glob("core-*.json")) if (ROOT / "bench" / "results").exists() else set()
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "core.py"), "--docs", "5000", "--lookups", "200"],
                          capture_output=True, text=True, timeout=900,
                          env={**os.environ, "STRONGROOM_BENCH_CACHE": str(tmp_path)})
    assert done.returncode == 0, done.stdout + done.stderr
    (report_path,) = set((ROOT / "bench" / "results").glob("core-*.json")) - before
    report = json.loads(report_path.read_text())
    assert set(report["ratios"]) == {"bulk_docs_per_s", "get_p50_ms", "get_p99_ms"}
    assert all(value > 0 for value in report["ratios"].values())
    assert "| bulk load, docs/s |" in done.stdout


@pytest.mark.parametrize("script, size, rows", [
    ("engine_count.py", "--docs", ("| match_all | 2,000 |", "| term birthplace |")),
    ("engine_marker.py", "--docs", ("| raw |", "| marker |", "| filled |")),
    ("audit_search.py", "--records", ("| newest 200 |", "| newest 200 of one identity |")),
    ("engine_terms.py", "--docs", ("| combined (year filter, 1 value) |", "| months, 64 values |",
                                   "| alone, 64 values |"))])
def test_microbenchmarks_run_and_report_ratios(tmp_path: Path, script: str, size: str, rows: tuple[str, ...]) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script), size, "2000", "--repeat", "3"],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "STRONGROOM_BENCH_CACHE": str(tmp_path)})
    assert done.returncode == 0, done.stdout + done.stderr
    for row in rows:
        assert row in done.stdout, done.stdout
    assert "×" in done.stdout


def test_request_path_benchmark_runs_and_reports_ratios(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "request_path.py"), "--residents", "300",
                           "--queries", "25", "--results-dir", str(tmp_path / "results")],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "STRONGROOM_BENCH_CACHE": str(tmp_path)})
    assert done.returncode == 0, done.stdout + done.stderr
    (report_path,) = (tmp_path / "results").glob("request-path-*.json")
    report = json.loads(report_path.read_text())
    assert set(report["strongroom"]) == {"root", "national_id", "phone", "full_name", "mget"}
    assert set(report["raw"]) == {"national_id", "phone", "full_name", "mget"}
    assert all(figures["p50_us"] > 0 for figures in report["strongroom"].values())
    assert "| exact national ID (term) |" in done.stdout and "×" in done.stdout


@pytest.mark.slow
def test_interleaved_benchmark_compares_two_commits_on_one_data_set(tmp_path: Path) -> None:
    probe = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if probe.returncode != 0:  # a copy made with `git archive`, or git refusing the checkout's owner
        pytest.skip(f"compares commits: needs a git checkout git can read ({probe.stderr.strip()[:200]})")
    # The before server runs under --base-python: a wrapper that marks a `serve`, then runs this interpreter.
    wrapper = tmp_path / "before-python"
    wrapper.write_text(f'#!/bin/sh\ncase "$*" in *" serve "*) touch "{tmp_path / "before-python-ran"}";; esac\n'
                       f'exec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "interleaved.py"), "--base", "HEAD", "--residents", "300",
                           "--queries", "10", "--rounds", "1", "--bulk", "4500", "--base-python", str(wrapper),
                           "--results-dir", str(tmp_path / "results")],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "STRONGROOM_BENCH_CACHE": str(tmp_path)})
    assert done.returncode == 0, done.stdout + done.stderr
    (report_path,) = (tmp_path / "results").glob("interleaved-*.json")
    report = json.loads(report_path.read_text())
    for side in ("before", "after"):
        assert set(report["figures"][side]) == {"national_id", "phone", "full_name", "address", "name_place_year",
                                                "case_notes", "terms_agg", "mget"}
        assert all(f["p50_ms"] > 0 for f in report["figures"][side].values())
    assert "| national_id |" in done.stdout and " % |" in done.stdout
    assert report["bulk_residents"] == 4500 and all(report["bulk_docs_per_s"][side] > 0 for side in ("before", "after"))
    assert "| bulk load, docs/s (4,500 residents" in done.stdout
    assert (tmp_path / "before-python-ran").exists()
    assert report["before_python"] == str(wrapper) and report["after_python"] == sys.executable
    assert f"Interpreters: before `{wrapper}`" in done.stdout


def test_residents_are_read_from_the_cache_file_as_they_were_written(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import orjson

    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import core

    monkeypatch.setattr(core, "CACHE", tmp_path)
    rows = core.residents(300)  # generated and cached, then mapped
    lines = (tmp_path / "residents-300.ndjson").read_bytes().splitlines()
    expected = [(orjson.loads(line)["_id"], orjson.dumps(orjson.loads(line)["doc"])) for line in lines]
    assert len(rows) == 300 and list(rows) == expected == [rows[i] for i in range(300)]
    assert list(rows[5::7]) == expected[5::7] and list(rows[10:20][::3]) == expected[10:20][::3]
    assert rows[-1] == expected[-1]
    monkeypatch.setattr(core, "BATCH", 50)
    bodies = list(core.bulk_bodies(rows))
    assert len(bodies) == 6 and b"".join(bodies).count(b'{"index":{"_id":"') == 300
    assert [list(core.bulk_bodies(rows, k, 4)) for k in range(4)] == [bodies[k::4] for k in range(4)]

    # A line the shortcut cannot take (an escaped id, spaces) goes through the parser.
    odd = tmp_path / "odd.ndjson"
    odd.write_bytes(b'{"_id":"a\\"b","doc":{"x":1}}\n{ "_id": "c", "doc": {"y": [1, 2]} }\n')
    assert list(core.Residents.open(odd)) == [('a"b', b'{"x":1}'), ("c", b'{"y":[1,2]}')]
