"""The attack surface: every route needs credentials, TLS carries everything, unsafe binds refuse."""

from __future__ import annotations

import base64
import socket
import ssl
import time
from pathlib import Path

import httpx
import pytest

from live import LiveServer, run_strongroom, start_server
from strongroom.api.app import build_router
from strongroom.api.router import Route

ROUTES = build_router().routes


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture(scope="module")
def http(server: LiveServer):  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=server.url, verify=ssl.create_default_context(cafile=server.ca), timeout=30) as client:
        yield client


def assert_401(response: httpx.Response, method: str) -> None:
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
    if method != "HEAD":
        assert response.json()["error"]["type"] == "security_exception"


def test_inventory_is_not_empty() -> None:
    # The route table is the one the app serves: a new route lands in this list by construction.
    assert len(ROUTES) >= 40
    assert {"GET /", "POST /_bulk", "PUT /{index}", "GET /{index}/_doc/{id}"} <= {str(r) for r in ROUTES}


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_every_route_rejects_anonymous(route: Route, http: httpx.Client) -> None:
    response = http.request(route.method, route.example_path, content=b"{}",
                            headers={"Content-Type": "application/json"})
    assert_401(response, route.method)


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_every_route_rejects_a_wrong_password(route: Route, http: httpx.Client) -> None:
    # A different unknown user per route keeps login backoff out of this test's timing.
    user = "intruder-" + str(abs(hash(str(route))))
    response = http.request(route.method, route.example_path, content=b"{}",
                            headers={"Content-Type": "application/json", **basic(user, "not-the-password")})
    assert_401(response, route.method)


@pytest.mark.parametrize("header", ["Basic", "Basic !!!notbase64", "Basic " + base64.b64encode(b"nocolon").decode(),
                                    "Bearer abc", "ApiKey abc", "Basic " + "A" * 5000])
def test_malformed_credentials_are_401(header: str, http: httpx.Client) -> None:
    assert_401(http.get("/", headers={"Authorization": header}), "GET")


def test_unknown_routes_and_methods_reveal_nothing_before_authentication(http: httpx.Client,
                                                                         server: LiveServer) -> None:
    assert_401(http.get("/_no_such_endpoint"), "GET")
    assert_401(http.request("PATCH", "/some-index"), "PATCH")
    auth = basic("admin", server.password)
    unknown = http.get("/_no_such_endpoint", headers=auth)
    assert unknown.status_code == 400
    wrong_method = http.request("PATCH", "/some-index", headers=auth)
    assert wrong_method.status_code == 405
    assert "allowed: [DELETE, GET, HEAD, PUT]" in wrong_method.json()["error"]["reason"]


def test_wrong_password_for_a_real_user_reads_like_an_unknown_user(http: httpx.Client) -> None:
    real = http.get("/", headers=basic("admin", "wrong-password-123456"))
    ghost = http.get("/", headers=basic("nobody-at-all", "wrong-password-123456"))
    assert real.status_code == ghost.status_code == 401
    assert real.json()["error"]["reason"].replace("admin", "X") == ghost.json()["error"]["reason"].replace(
        "nobody-at-all", "X")


def test_plain_http_to_the_tls_port_gets_no_data(server: LiveServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic "
                     + base64.b64encode(f"admin:{server.password}".encode()) + b"\r\n\r\n")
        received = b""
        try:
            while chunk := sock.recv(4096):
                received += chunk
        except (ConnectionResetError, TimeoutError, socket.timeout):
            pass
    assert b"HTTP/" not in received and b"{" not in received and b"tagline" not in received


def test_server_tls_context_refuses_old_protocols(tmp_path: Path) -> None:
    from strongroom.crypto.tls import ensure_http_certificates
    from strongroom.server import uvicorn_config
    from strongroom.settings import load_settings

    material = ensure_http_certificates(tmp_path, ["127.0.0.1"])
    config = uvicorn_config(lambda *a: None, load_settings(tmp_path), material)
    assert config.ssl is not None and config.ssl.minimum_version == ssl.TLSVersion.TLSv1_2


def test_generated_certificates_are_private(server: LiveServer) -> None:
    certs = server.config_dir / "certs"
    assert (certs / "http_ca.key").stat().st_mode & 0o077 == 0
    assert (certs / "http.key").stat().st_mode & 0o077 == 0
    assert server.data_dir.stat().st_mode & 0o077 == 0
    users = server.data_dir / "security" / "users.json"
    assert users.stat().st_mode & 0o077 == 0
    assert server.password.encode() not in users.read_bytes()
    assert b"$argon2id$" in users.read_bytes()


@pytest.mark.parametrize("host", ["0.0.0.0", "10.20.30.40", "::"])
def test_plain_http_on_a_non_loopback_address_refuses_to_start(host: str, tmp_path: Path) -> None:
    process = run_strongroom(["serve", "--data-dir", str(tmp_path / "d"), "--config-dir", str(tmp_path / "c"),
                              "--host", host, "--port", "0", "--insecure-http"])
    output, _ = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "refusing to serve plain HTTP on non-loopback address" in output
    assert not (tmp_path / "d").exists()  # Refused before touching anything.


def test_plain_http_on_loopback_still_requires_credentials(tmp_path: Path) -> None:
    live = start_server(tmp_path / "d", tmp_path / "c", extra=["--insecure-http"])
    try:
        assert live.url.startswith("http://127.0.0.1:")
        assert httpx.get(live.url + "/").status_code == 401
        assert httpx.get(live.url + "/", auth=("admin", live.password)).status_code == 200
    finally:
        live.stop()


def test_first_start_prints_a_generated_password_once(tmp_path: Path) -> None:
    process = run_strongroom(["serve", "--data-dir", str(tmp_path / "d"), "--config-dir", str(tmp_path / "c"),
                              "--port", "0"], env={"STRONGROOM_BOOTSTRAP_PASSWORD": ""})
    password = None
    assert process.stdout is not None
    lines = []
    deadline = time.monotonic() + 60
    for line in process.stdout:
        lines.append(line)
        if "Password:" in line:
            password = line.split("Password:")[1].strip()
        if "keep it now" in line or time.monotonic() > deadline:
            break
    url = next(line.split("listening on ")[1].strip() for line in lines if "listening on" in line)
    try:
        assert password is not None and len(password) >= 20
        ca = ssl.create_default_context(cafile=tmp_path / "c" / "certs" / "http_ca.crt")
        assert httpx.get(url + "/", auth=("admin", password), verify=ca).status_code == 200
    finally:
        process.terminate()
        rest, _ = process.communicate(timeout=60)
    second = start_server(tmp_path / "d", tmp_path / "c", password=password)
    try:
        assert "Password:" not in second.log_text()
        assert password not in second.log_text()
    finally:
        second.stop()


def test_weak_bootstrap_password_is_refused(tmp_path: Path) -> None:
    process = run_strongroom(["serve", "--data-dir", str(tmp_path / "d"), "--config-dir", str(tmp_path / "c"),
                              "--port", "0"], env={"STRONGROOM_BOOTSTRAP_PASSWORD": "changeme"})
    output, _ = process.communicate(timeout=60)
    assert process.returncode != 0 and "at least [15] characters" in output


def test_failed_logins_are_slowed_per_user_and_address(http: httpx.Client) -> None:
    user = "slow-" + str(time.monotonic_ns())
    timings = []
    for _ in range(6):
        started = time.monotonic()
        assert http.get("/", headers=basic(user, "wrong-password-again")).status_code == 401
        timings.append(time.monotonic() - started)
    # Three free failures, then 0.25 s, 0.5 s, 1 s of imposed delay on top of hashing.
    assert timings[5] >= 0.9 and timings[5] > timings[0] + 0.5, timings


def test_operator_certificates_are_used_and_nothing_is_generated(tmp_path: Path) -> None:
    from strongroom.crypto.tls import ensure_http_certificates

    own = ensure_http_certificates(tmp_path / "pki", ["127.0.0.1"])
    live = start_server(tmp_path / "d", tmp_path / "c", extra=["--tls-cert", str(own.cert_chain),
                                                             "--tls-key", str(own.key)])
    try:
        assert not (tmp_path / "c" / "certs").exists()
        context = ssl.create_default_context(cafile=str(own.ca_cert))
        assert httpx.get(live.url + "/", auth=("admin", live.password), verify=context).status_code == 200
        assert own.fingerprint in live.log_text()
    finally:
        live.stop()
