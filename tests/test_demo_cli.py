"""`strongroom serve --demo N` and `strongroom demo` load the synthetic residents."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from live import LiveServer, run_strongroom, start_server
from strongroom.demo import generate_residents
from strongroom.pii import is_valid_national_id


def wait_for_log(server: LiveServer, text: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while text not in server.log_text():
        assert time.monotonic() < deadline, server.log_text()
        assert server.process.poll() is None, server.log_text()
        time.sleep(0.1)


def test_serve_with_demo_loads_residents_once(tmp_path: Path) -> None:
    server = start_server(tmp_path / "d", tmp_path / "c", extra=["--demo", "500"])
    try:
        wait_for_log(server, "Loaded 500 demo residents")
        with server.client() as es:
            assert es.count(index="residents")["count"] == 500
            first_id, first = next(generate_residents(1))
            assert es.get(index="residents", id=first_id)["_source"] == first
            assert es.indices.get_mapping(index="residents")["residents"]["mappings"]["dynamic"] == "strict"
            assert es.count(index="residents", query={"term": {"national_id": first["national_id"]}})["count"] == 1
            assert is_valid_national_id(first["national_id"])
    finally:
        server.stop()
    again = start_server(tmp_path / "d", tmp_path / "c", extra=["--demo", "500"])
    try:
        wait_for_log(again, "already exists; demo data not reloaded")
    finally:
        again.stop()


def load_with_cli(server: LiveServer, count: int) -> float:
    started = time.monotonic()
    process = run_strongroom(["demo", "--count", str(count), "--url", server.url, "--config-dir",
                              str(server.config_dir)], env={"STRONGROOM_PASSWORD": server.password})
    output, _ = process.communicate(timeout=1800)
    assert process.returncode == 0, output
    assert f"Loaded {count} demo residents" in output
    return time.monotonic() - started


def test_demo_command_loads_over_the_api(tmp_path: Path) -> None:
    server = start_server(tmp_path / "d", tmp_path / "c")
    try:
        load_with_cli(server, 300)
        with server.client() as es:
            assert es.count(index="residents")["count"] == 300
        process = run_strongroom(["demo", "--count", "10", "--url", server.url, "--config-dir",
                                  str(server.config_dir)], env={"STRONGROOM_PASSWORD": "wrong-password-123456"})
        output, _ = process.communicate(timeout=120)
        assert process.returncode != 0 and "HTTP 401" in output
    finally:
        server.stop()


@pytest.mark.slow
def test_demo_command_loads_the_default_hundred_thousand(tmp_path: Path) -> None:
    server = start_server(tmp_path / "d", tmp_path / "c")
    try:
        seconds = load_with_cli(server, 100_000)
        with server.client() as es:
            assert es.count(index="residents")["count"] == 100_000
        print(f"\n100,000 demo residents generated and loaded over HTTPS in {seconds:.1f} s")
    finally:
        server.stop()
