"""The deployment self-check: each check on a bad and a good deployment, the monitor's alert when
a deployment drifts back to exposure, `GET /_strongroom/doctor`, and `strongroom doctor`."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import ssl
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from live import PASSWORD, start_server
from strongroom import RELEASE_DATE
from strongroom.cli import main
from strongroom.doctor import (FAIL, OK, WARN, Deployment, DoctorMonitor, check_api_key_expiry, check_audit_sink,
                               check_bind_address, check_bootstrap_password, check_config_dir, check_data_dir,
                               check_release_age, check_secret_files, check_tls_certificate,
                               check_wildcard_read_roles, worsened)
from strongroom.security.roles import parse_role
from strongroom.security.users import SecurityStore
from strongroom.settings import load_settings

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # Tests only: argon2 is slow on purpose.


def self_signed(path: Path, not_before: dt.datetime, not_after: dt.datetime) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "doctor-test")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
            .sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True)
    path.chmod(0o700)
    return path


@pytest.fixture
def store(tmp_path: Path) -> SecurityStore:
    users = SecurityStore(private_dir(tmp_path / "data"), hasher=FAST_HASHER)
    users.bootstrap(PASSWORD)
    return users


# -- one test per check --------------------------------------------------------------------------
@pytest.mark.parametrize(("host", "tls", "status"), [
    ("127.0.0.1", True, OK), ("::1", False, OK), ("localhost", False, OK),
    ("0.0.0.0", True, WARN), ("10.20.30.40", True, WARN), ("::", True, WARN),
    ("0.0.0.0", False, FAIL), ("10.20.30.40", False, FAIL), ("db.example.org", False, FAIL),
])
def test_bind_address(host: str, tls: bool, status: str) -> None:
    finding = check_bind_address(host, tls)
    assert (finding.check, finding.status) == ("bind_address", status)
    assert (finding.remedy is None) == (status == OK)


@pytest.mark.parametrize(("days_left", "status"), [(-3, FAIL), (10, WARN), (29, WARN), (31, OK), (365, OK)])
def test_tls_certificate_expiry(tmp_path: Path, days_left: int, status: str) -> None:
    chain = self_signed(tmp_path / "http.crt", NOW - dt.timedelta(days=400), NOW + dt.timedelta(days=days_left))
    finding = check_tls_certificate(chain, now=NOW)
    assert finding.status == status, finding
    if status == FAIL:
        assert "expired on" in finding.message and "CN=doctor-test" in finding.message


def test_tls_certificate_soonest_in_the_chain_counts(tmp_path: Path) -> None:
    leaf = self_signed(tmp_path / "leaf.crt", NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=300))
    ca = self_signed(tmp_path / "ca.crt", NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=5))
    chain = tmp_path / "chain.crt"
    chain.write_bytes(leaf.read_bytes() + ca.read_bytes())
    assert check_tls_certificate(chain, now=NOW).status == WARN


def test_tls_certificate_missing_unreadable_or_off(tmp_path: Path) -> None:
    assert check_tls_certificate(None, now=NOW).status == OK  # TLS off: only allowed on loopback (bind check).
    assert check_tls_certificate(tmp_path / "absent.crt", now=NOW).status == WARN
    (tmp_path / "junk.crt").write_text("not a certificate")
    assert check_tls_certificate(tmp_path / "junk.crt", now=NOW).status == FAIL


def test_data_dir_permissions(tmp_path: Path) -> None:
    data = private_dir(tmp_path / "data")
    assert check_data_dir(data).status == OK
    for mode in (0o750, 0o705, 0o770, 0o777):
        data.chmod(mode)
        finding = check_data_dir(data)
        assert finding.status == FAIL and f"chmod 700 {data}" == finding.remedy
    assert check_data_dir(tmp_path / "absent").status == WARN


def test_config_dir_permissions_and_place(tmp_path: Path) -> None:
    data, config = private_dir(tmp_path / "data"), private_dir(tmp_path / "config")
    assert check_config_dir(config, data).status == OK
    config.chmod(0o755)
    assert check_config_dir(config, data).status == FAIL
    inside = private_dir(data / "config")
    finding = check_config_dir(inside, data)
    assert finding.status == FAIL and "inside the data directory" in finding.message
    assert check_config_dir(data, data).status == FAIL


def test_secret_files_permissions_name_the_file_never_its_bytes(tmp_path: Path) -> None:
    key = tmp_path / "http.key"
    key.write_bytes(b"-----BEGIN PRIVATE KEY-----\nSECRETBYTES\n")
    key.chmod(0o600)
    toml = tmp_path / "strongroom.toml"
    toml.write_text("")
    toml.chmod(0o644)  # Readable is fine for the settings file; writable by others is not.
    assert check_secret_files([key, tmp_path / "absent.key"], config_files=[toml]).status == OK
    key.chmod(0o640)
    finding = check_secret_files([key], config_files=[toml])
    assert finding.status == FAIL and str(key) in finding.message and "SECRETBYTES" not in finding.message
    key.chmod(0o600)
    toml.chmod(0o666)
    assert check_secret_files([key], config_files=[toml]).status == FAIL


def test_bootstrap_password_never_changed(store: SecurityStore) -> None:
    finding = check_bootstrap_password(store.users())
    assert finding.status == WARN and "[admin]" in finding.message and "passwd admin" in (finding.remedy or "")
    assert PASSWORD not in json.dumps(finding.to_json())
    store.change_password("admin", "a-new-and-long-passphrase-77")
    assert check_bootstrap_password(store.users()).status == OK


def test_roles_reading_every_index(store: SecurityStore) -> None:
    assert check_wildcard_read_roles(store.roles()).status == OK  # The reserved superuser does not count.
    store.put_role(parse_role("named", {"indices": [{"names": ["residents", "cases-*"], "privileges": ["all"]}]}))
    store.put_role(parse_role("writer", {"indices": [{"names": ["*"], "privileges": ["write"]}]}))
    assert check_wildcard_read_roles(store.roles()).status == OK
    store.put_role(parse_role("reader", {"indices": [{"names": ["residents"], "privileges": ["read"]},
                                                     {"names": ["*"], "privileges": ["read"]}]}))
    store.put_role(parse_role("everything", {"indices": [{"names": ["*"], "privileges": ["all"]}]}))
    finding = check_wildcard_read_roles(store.roles())
    assert finding.status == WARN and "[everything, reader]" in finding.message


def test_api_keys_without_expiration(store: SecurityStore) -> None:
    assert check_api_key_expiry(store.api_keys()).status == OK
    store.create_api_key("admin", "expiring", 1_900_000_000_000, {}, {})
    assert check_api_key_expiry(store.api_keys()).status == OK
    record, secret = store.create_api_key("admin", "forever", None, {}, {})
    finding = check_api_key_expiry(store.api_keys())
    assert finding.status == WARN and record.id in finding.message and "forever" in finding.message
    assert secret not in finding.message and record.digest not in finding.message
    store.invalidate_api_keys([record.id])
    assert check_api_key_expiry(store.api_keys()).status == OK


def test_audit_sink(tmp_path: Path) -> None:
    finding = check_audit_sink(None)
    assert finding.status == WARN and "no audit sink configured" in finding.message

    def broken() -> str:
        raise OSError("disk full")

    assert check_audit_sink(broken).status == FAIL
    assert check_audit_sink(lambda: "file audit.log").status == OK
    assert check_audit_sink(tmp_path / "audit.log").status == OK
    assert check_audit_sink(tmp_path / "not-yet" / "audit.log").status == OK  # created at the first start
    (tmp_path / "a-file").write_text("")
    assert check_audit_sink(tmp_path / "a-file" / "audit" / "audit.log").status == FAIL


def test_release_age() -> None:
    released = dt.date.fromisoformat(RELEASE_DATE)
    assert check_release_age(released, now=NOW).status == OK
    finding = check_release_age(released, now=NOW + dt.timedelta(days=400))
    assert finding.status == WARN and RELEASE_DATE in finding.message


# -- the report and the monitor ------------------------------------------------------------------
def deployment(tmp_path: Path, store: SecurityStore, **settings: object) -> Deployment:
    config = private_dir(tmp_path / "config")
    return Deployment(tmp_path / "data", config, {**load_settings(config), **settings}, store)


def test_report_shape_and_worst_status(tmp_path: Path, store: SecurityStore) -> None:
    target = deployment(tmp_path, store, **{"tls.enabled": False})
    report = target.report(NOW)
    assert set(report) == {"status", "checked_at", "findings"}
    assert report["checked_at"] == "2026-12-01T12:00:00+00:00"
    by_check = {f["check"]: f for f in report["findings"]}
    assert set(by_check) == {"bind_address", "tls_certificate", "data_dir", "config_dir", "secret_files",
                             "bootstrap_password", "wildcard_read_roles", "api_key_expiry", "protection_at_rest", "audit_sink",
                             "release_age"}
    assert all(set(f) == {"check", "status", "message", "remedy"} for f in report["findings"])
    assert report["status"] == WARN  # bootstrap password and no audit sink
    assert by_check["bootstrap_password"]["status"] == by_check["audit_sink"]["status"] == WARN
    assert "$argon2" not in json.dumps(report) and PASSWORD not in json.dumps(report)
    (tmp_path / "data").chmod(0o755)
    assert target.report(NOW)["status"] == FAIL


def test_a_check_that_crashes_is_a_failed_finding(tmp_path: Path, store: SecurityStore) -> None:
    class Broken:
        def users(self) -> list[object]:
            raise RuntimeError("boom")

        def roles(self) -> dict[str, object]:
            return store.roles()

        def api_keys(self) -> list[object]:
            return []

    report = deployment(tmp_path, Broken()).report(NOW)  # type: ignore[arg-type]
    finding = next(f for f in report["findings"] if f["check"] == "bootstrap_password")
    assert finding["status"] == FAIL and "RuntimeError" in finding["message"] and report["status"] == FAIL


def test_worsened_names_the_checks_that_got_worse() -> None:
    def report(**statuses: str) -> dict[str, object]:
        return {"findings": [{"check": c, "status": s} for c, s in statuses.items()]}

    assert worsened(None, report(a=FAIL)) == []
    assert worsened(report(a=OK, b=WARN, c=FAIL), report(a=WARN, b=WARN, c=OK)) == ["a (ok → warn)"]
    assert worsened(report(a=OK), report(a=OK, new=FAIL)) == ["new (ok → fail)"]


def test_monitor_alerts_when_a_fixed_deployment_drifts_back(tmp_path: Path, store: SecurityStore,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    target = deployment(tmp_path, store, **{"tls.enabled": False})
    runs: list[dict[str, object]] = []

    def checks(now: dt.datetime) -> dict[str, object]:
        runs.append(report := target.report(now))
        return report

    async def scenario() -> None:
        monitor = DoctorMonitor(checks, interval=0.05)
        await monitor.start()
        assert len(runs) == 1 and monitor.report()["status"] == WARN  # The first run is at start.
        await asyncio.sleep(0.12)  # Unchanged runs: no alert.
        assert len(runs) >= 2 and not alerts()
        (tmp_path / "data").chmod(0o755)
        await until(lambda: alerts())
        latest = monitor.report()
        assert latest["status"] == FAIL
        assert next(f for f in latest["findings"] if f["check"] == "data_dir")["status"] == FAIL
        (tmp_path / "data").chmod(0o700)  # Fixed: better is no alert.
        count = len(alerts())
        await until(lambda: monitor.report()["status"] == WARN)
        await asyncio.sleep(0.12)
        assert len(alerts()) == count == 1
        await monitor.stop()
        stopped_at = len(runs)
        await asyncio.sleep(0.12)
        assert len(runs) == stopped_at  # The task is gone.

    def alerts() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "strongroom.alerts"]

    async def until(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
        deadline = asyncio.get_running_loop().time() + timeout
        while not condition():
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)

    with caplog.at_level(logging.INFO):
        asyncio.run(scenario())
    alert = alerts()[0]
    assert alert.levelno == logging.WARNING
    assert "data_dir (ok → fail)" in alert.getMessage() and "warn → fail" in alert.getMessage()


# -- the endpoint and the command ----------------------------------------------------------------
def test_doctor_endpoint_needs_monitor(tmp_path: Path) -> None:
    data = tmp_path / "data"
    SecurityStore(data, hasher=FAST_HASHER).bootstrap(PASSWORD)
    runner = CliRunner()
    result = runner.invoke(main, ["users", "add", "clerk", "--role", "residents_reader", "--password-stdin",
                                  "--data-dir", str(data)], input="clerk-passphrase-for-tests\n")
    assert result.exit_code == 0, result.output
    live = start_server(data, tmp_path / "config")
    try:
        context = ssl.create_default_context(cafile=live.ca)
        with httpx.Client(base_url=live.url, verify=context, timeout=30) as http:
            response = http.get("/_strongroom/doctor", auth=("admin", PASSWORD))
            assert response.status_code == 200, response.text
            report = response.json()
            assert report["status"] == WARN
            by_check = {f["check"]: f["status"] for f in report["findings"]}
            assert by_check["bind_address"] == by_check["tls_certificate"] == by_check["data_dir"] == OK
            assert by_check["bootstrap_password"] == WARN
            assert by_check["audit_sink"] == OK  # the server's audit log is writing
            assert "$argon2" not in response.text and PASSWORD not in response.text
            refused = http.get("/_strongroom/doctor", auth=("clerk", "clerk-passphrase-for-tests"))
            assert refused.status_code == 403 and refused.json()["error"]["type"] == "security_exception"
            assert http.get("/_strongroom/doctor").status_code == 401
        assert "deployment self-check: warn" in live.log_text()  # The start-up run is logged.
    finally:
        live.stop()


def test_doctor_command_exit_codes_and_json(tmp_path: Path, store: SecurityStore) -> None:
    data = tmp_path / "data"
    config = private_dir(tmp_path / "config")
    runner = CliRunner()
    table = runner.invoke(main, ["doctor", "--data-dir", str(data), "--config-dir", str(config)])
    assert table.exit_code == 1, table.output  # warn: no certificate yet, bootstrap password
    assert "bootstrap_password" in table.output and "Overall: WARN" in table.output
    before = sorted((p, p.stat().st_mode) for p in tmp_path.rglob("*"))
    data.chmod(0o755)
    as_json = runner.invoke(main, ["doctor", "--data-dir", str(data), "--config-dir", str(config), "--json"])
    assert as_json.exit_code == 2
    report = json.loads(as_json.stdout)
    assert report["status"] == FAIL and {"check": "data_dir", "status": FAIL} == {
        k: v for k, v in next(f for f in report["findings"] if f["check"] == "data_dir").items()
        if k in ("check", "status")}
    data.chmod(0o700)
    assert sorted((p, p.stat().st_mode) for p in tmp_path.rglob("*")) == before  # It changed nothing.
    exposed = runner.invoke(main, ["doctor", "--data-dir", str(data), "--config-dir", str(config), "--host",
                                   "0.0.0.0", "--json"])
    assert next(f for f in json.loads(exposed.stdout)["findings"] if f["check"] == "bind_address")["status"] == WARN
    (config / "strongroom.toml").write_text("[tls]\nenabled = false\n[server]\nhost = '10.1.2.3'\n")
    (config / "strongroom.toml").chmod(0o600)
    plain = runner.invoke(main, ["doctor", "--data-dir", str(data), "--config-dir", str(config), "--json"])
    assert plain.exit_code == 2
    assert next(f for f in json.loads(plain.stdout)["findings"] if f["check"] == "bind_address")["status"] == FAIL


def test_protection_at_rest_warns_of_plain_indices_and_a_master_key_beside_the_data(tmp_path: Path) -> None:
    from strongroom.doctor import check_protection_at_rest

    data, config = tmp_path / "data", tmp_path / "config"
    (data / "indices" / "u1").mkdir(parents=True)
    (data / "indices" / "u1" / "index.json").write_text('{"name": "old", "keys": null}')
    config.mkdir()
    finding = check_protection_at_rest(data, config, {"security.master_key_file": ""})
    assert finding.status == "warn" and "old" in finding.message
    (data / "indices" / "u1" / "index.json").write_text('{"name": "old", "keys": "d3JhcHBlZA=="}')
    (config / "master.key").write_text("x")
    finding = check_protection_at_rest(data, config, {"security.master_key_file": ""})
    assert finding.status == "warn" and "master.key" in finding.message
    assert check_protection_at_rest(data, config, {"security.master_key_file": "/keys/m.key"}).status == "ok"
