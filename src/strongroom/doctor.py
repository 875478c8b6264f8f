"""Deployment self-check: the mistakes behind the big Elasticsearch leaks, found before anyone else does.

Each check is a small function over what it inspects (an address, a certificate file, a
directory, the security store's records, a date) and returns one `Finding`: ok, warn or fail,
what was seen and what to do. `Deployment.report` runs them all; the worst finding is the
report's status. `strongroom doctor` runs them offline; the server runs them at start and every
hour (`DoctorMonitor`), serves the latest report at `GET /_strongroom/doctor`, and raises an
alert on logger `strongroom.alerts` when a check gets worse (a fixed deployment drifting back).

Findings name paths, users, roles and API key ids and names. They never name a password, a
hash, a key's bytes or an API key's secret.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import logging
import os
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from . import RELEASE_DATE
from .security.roles import RESERVED_ROLES, Role
from .security.users import ApiKeyRecord, SecurityStore, UserRecord

log = logging.getLogger("strongroom.doctor")
alerts = logging.getLogger("strongroom.alerts")

OK, WARN, FAIL = "ok", "warn", "fail"
RANK = {OK: 0, WARN: 1, FAIL: 2}
INTERVAL_SECONDS = 3600.0
CERT_WARN_BEFORE = dt.timedelta(days=30)
RELEASE_MAX_AGE = dt.timedelta(days=365)
WIDE_PRIVILEGES = ("read", "all")  # Index privileges that let a role read documents.

# The audit sink, once there is one: a callable that raises when the sink cannot write and otherwise
# returns a short description of it (never a secret), or the path of an audit log file.
AuditProbe = Callable[[], str]


@dataclass(frozen=True)
class Finding:
    check: str
    status: str  # ok | warn | fail
    message: str
    remedy: str | None = None  # None when there is nothing to do

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "status": self.status, "message": self.message, "remedy": self.remedy}


def worst(statuses: Iterable[str]) -> str:
    return max(statuses, key=RANK.__getitem__, default=OK)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- checks ------------------------------------------------------------------------------------
def check_bind_address(host: str, tls_enabled: bool) -> Finding:
    name = "bind_address"
    if is_loopback(host):
        return Finding(name, OK, f"listening on loopback address [{host}] only")
    if not tls_enabled:
        return Finding(name, FAIL, f"plain HTTP on non-loopback address [{host}]: anyone on the network can read "
                       "credentials and records in transit (the server refuses to start like this)",
                       "enable TLS (tls.enabled = true, the default) or bind to 127.0.0.1")
    return Finding(name, WARN, f"listening on non-loopback address [{host}]: the port is reachable from the "
                   "network (TLS and authentication are on)",
                   "bind to 127.0.0.1 behind a reverse proxy, or firewall the port to the hosts that need it")


def check_tls_certificate(chain: Path | None, *, now: dt.datetime) -> Finding:
    """`chain`: the PEM file the server presents (leaf first, CA after); None when TLS is off."""
    name = "tls_certificate"
    if chain is None:
        return Finding(name, OK, "TLS is off (plain HTTP is allowed on a loopback address only)")
    if not chain.exists():
        return Finding(name, WARN, f"no TLS certificate at {chain} yet",
                       "start the server once to generate one, or set tls.certificate and tls.key")
    try:
        certificates = x509.load_pem_x509_certificates(chain.read_bytes())
    except (OSError, ValueError) as exc:
        return Finding(name, FAIL, f"cannot read the TLS certificate {chain} ({type(exc).__name__})",
                       "replace it with a valid PEM certificate chain")
    soonest = min(certificates, key=lambda c: c.not_valid_after_utc)
    subject = soonest.subject.rfc4514_string() or "(no subject)"
    expires = soonest.not_valid_after_utc
    renew = ("delete the generated certs directory under the config directory and restart to renew it (clients "
             "must trust the new CA), or install a renewed certificate at tls.certificate")
    if expires <= now:
        return Finding(name, FAIL, f"the TLS certificate [{subject}] in {chain} expired on {expires:%Y-%m-%d}",
                       renew)
    early = [c for c in certificates if c.not_valid_before_utc > now]
    if early:
        return Finding(name, FAIL, f"the TLS certificate [{early[0].subject.rfc4514_string()}] in {chain} is not "
                       f"valid before {early[0].not_valid_before_utc:%Y-%m-%d}", "check the system clock")
    left = expires - now
    if left < CERT_WARN_BEFORE:
        return Finding(name, WARN, f"the TLS certificate [{subject}] in {chain} expires on {expires:%Y-%m-%d} "
                       f"(in {left.days} days)", renew)
    return Finding(name, OK, f"the TLS certificate chain {chain} is valid until {expires:%Y-%m-%d}")


def _open_to_others(path: Path, mask: int = 0o077) -> bool:
    return bool(path.stat().st_mode & mask)


def _mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))[2:].rjust(4, "0")


def check_data_dir(data_dir: Path) -> Finding:
    name = "data_dir"
    if not data_dir.is_dir():
        return Finding(name, WARN, f"the data directory {data_dir} does not exist yet",
                       "start the server once, or check --data-dir")
    if _open_to_others(data_dir):
        return Finding(name, FAIL, f"the data directory {data_dir} has mode {_mode(data_dir)}: other users of "
                       "this machine can reach the indices and the security store", f"chmod 700 {data_dir}")
    return Finding(name, OK, f"the data directory {data_dir} is private (mode {_mode(data_dir)})")


def check_config_dir(config_dir: Path, data_dir: Path) -> Finding:
    name = "config_dir"
    config, data = config_dir.resolve(), data_dir.resolve()
    if config == data or config.is_relative_to(data):
        return Finding(name, FAIL, f"the config directory {config_dir} is inside the data directory {data_dir}: "
                       "a copy of the data carries the keys and certificates with it",
                       "move the config directory out of the data directory")
    if not config_dir.is_dir():
        return Finding(name, WARN, f"the config directory {config_dir} does not exist yet",
                       "start the server once, or check --config-dir")
    if _open_to_others(config_dir):
        return Finding(name, FAIL, f"the config directory {config_dir} has mode {_mode(config_dir)}: other "
                       "users of this machine can reach the TLS keys", f"chmod 700 {config_dir}")
    return Finding(name, OK, f"the config directory {config_dir} is private (mode {_mode(config_dir)})")


def check_secret_files(secrets: Iterable[Path], *, config_files: Iterable[Path] = ()) -> Finding:
    """`secrets` must be private (0600); `config_files` must not be writable by others. Missing ones are skipped."""
    name = "secret_files"
    exposed = [f"{p} ({_mode(p)})" for p in secrets if p.exists() and _open_to_others(p)]
    exposed += [f"{p} ({_mode(p)}, writable by others)" for p in config_files
                if p.exists() and _open_to_others(p, 0o022)]
    if exposed:
        return Finding(name, FAIL, "readable or writable by other users: " + ", ".join(exposed),
                       "chmod 600 each file and 700 each directory listed (chmod go-w the settings file)")
    return Finding(name, OK, "key, certificate key and security store files are private")


def check_protection_at_rest(data_dir: Path, config_dir: Path, settings: Mapping[str, Any]) -> Finding:
    """Indices whose sources are not sealed (created before sealing) and a master key kept beside the
    data (the generated one in the config directory: a copy of the machine holds both)."""
    name = "protection_at_rest"
    plain = []
    for meta in sorted((data_dir / "indices").glob("*/index.json")) if (data_dir / "indices").is_dir() else []:
        try:
            body = json.loads(meta.read_bytes())
        except (OSError, ValueError):
            continue
        if not body.get("keys"):
            plain.append(str(body.get("name", meta.parent.name)))
    if plain:
        return Finding(name, WARN, f"indices without sealed sources (created before sealing): {', '.join(plain)}",
                       "reindex them into new indices, which are sealed, then delete them")
    generated = config_dir / "master.key"
    if not settings.get("security.master_key_file") and generated.exists():
        return Finding(name, WARN, f"the master key is the generated one in {generated}, on the same machine "
                       "as the data", "keep it on another volume or in a KMS: set security.master_key_file "
                       "(see docs/protection.md)")
    return Finding(name, OK, "sources are sealed and the master key is kept apart from the data")


def check_bootstrap_password(users: Iterable[UserRecord]) -> Finding:
    name = "bootstrap_password"
    unchanged = [u.name for u in users if u.bootstrap and u.enabled]
    if unchanged:
        return Finding(name, WARN, f"the bootstrap password of [{', '.join(unchanged)}] was never changed "
                       "(it was shown in a terminal or passed in the environment at first start)",
                       f"strongroom users passwd {unchanged[0]}  (or POST /_security/user/{unchanged[0]}/_password)")
    return Finding(name, OK, "no enabled user still has the bootstrap password")


def check_wildcard_read_roles(roles: Mapping[str, Role]) -> Finding:
    name = "wildcard_read_roles"
    wide = sorted(role.name for role in roles.values()
                  if role.name not in RESERVED_ROLES
                  and any(any(set(pattern) == {"*"} for pattern in permission.names)
                          and any(p in WIDE_PRIVILEGES for p in permission.privileges)
                          for permission in role.indices))
    if wide:
        return Finding(name, WARN, f"roles [{', '.join(wide)}] grant read on every index (*)",
                       "name the indices each role needs instead of *")
    return Finding(name, OK, "no role other than superuser grants read on every index")


def check_api_key_expiry(keys: Iterable[ApiKeyRecord]) -> Finding:
    name = "api_key_expiry"
    forever = [f"{k.id} ({k.name}, owner {k.owner})" for k in keys if not k.invalidated and k.expiration is None]
    if forever:
        shown = ", ".join(forever[:10]) + (f" and {len(forever) - 10} more" if len(forever) > 10 else "")
        return Finding(name, WARN, f"{len(forever)} API key(s) never expire: {shown}",
                       "create keys with an expiration and invalidate these (DELETE /_security/api_key)")
    return Finding(name, OK, "every valid API key has an expiration")


def check_audit_sink(sink: AuditProbe | Path | None) -> Finding:
    name = "audit_sink"
    if sink is None:
        return Finding(name, WARN, "no audit sink configured: reads of records are not recorded anywhere",
                       "run the checks through the server (GET /_strongroom/doctor) or name the data directory: "
                       "the audit log starts with the server")
    if isinstance(sink, Path):
        if not sink.parent.exists():
            existing = next((p for p in sink.parents if p.exists()), None)
            if existing is not None and existing.is_dir() and os.access(existing, os.W_OK):
                return Finding(name, OK, f"the audit log {sink.parent} will be created at the first start")
        if not sink.parent.is_dir() or not os.access(sink.parent, os.W_OK) or (
                sink.exists() and not os.access(sink, os.W_OK)):
            return Finding(name, FAIL, f"the audit log {sink} cannot be written: requests will be refused",
                           "make the audit log and its directory writable by the server's user")
        if sink.exists() and _open_to_others(sink, 0o022):
            return Finding(name, FAIL, f"the audit log {sink} is writable by other users ({_mode(sink)})",
                           f"chmod go-w {sink}")
        return Finding(name, OK, f"the audit log {sink} is writable")
    try:
        described = sink()
    except Exception as exc:  # noqa: BLE001 - any failure of the sink is the finding
        return Finding(name, FAIL, f"the audit sink cannot write ({type(exc).__name__}): requests will be refused",
                       "see the server log and repair the audit sink")
    return Finding(name, OK, f"the audit sink is writing ({described})")


def check_release_age(release_date: dt.date, *, now: dt.datetime) -> Finding:
    name = "release_age"
    age = now.date() - release_date
    if age > RELEASE_MAX_AGE:
        return Finding(name, WARN, f"this Strongroom release is from {release_date:%Y-%m-%d}, more than a year ago: "
                       "it misses a year of security fixes", "upgrade Strongroom")
    return Finding(name, OK, f"this Strongroom release is from {release_date:%Y-%m-%d}")


# -- the deployment ------------------------------------------------------------------------------
@dataclass
class Deployment:
    """What the checks look at; the same files the server reads."""

    data_dir: Path
    config_dir: Path
    settings: Mapping[str, Any]
    store: SecurityStore | None  # None: the data directory holds no readable security store
    audit: AuditProbe | Path | None = None
    release_date: dt.date = dt.date.fromisoformat(RELEASE_DATE)
    store_problem: str | None = None  # why `store` is None, when it could not be read

    @property
    def tls_chain(self) -> Path | None:
        if not self.settings["tls.enabled"]:
            return None
        if self.settings["tls.certificate"]:
            return Path(self.settings["tls.certificate"])
        return self.config_dir / "certs" / "http.crt"

    def secret_files(self) -> list[Path]:
        files = [self.data_dir / "security", self.config_dir / "certs"]
        files += [self.data_dir / "security" / n for n in ("users.json", "roles.json", "api_keys.json")]
        files += [self.config_dir / "certs" / n for n in ("http.key", "http_ca.key")]
        files.append(self.config_dir / "mask.key")  # the `hash` mask's key (security/masks.py)
        files.append(self.config_dir / "master.key")  # the generated master key (crypto/keys.py)
        # exfiltration defences: audit signing and literal keys, canary key, budgets and canaries
        files += [self.config_dir / n for n in ("audit_signing.key", "audit_literal.key", "canary.key")]
        files += [self.data_dir / "security" / n for n in ("budgets.json", "canaries.json")]
        if self.settings.get("security.master_key_file"):
            files.append(Path(self.settings["security.master_key_file"]))
        if self.settings["tls.key"]:
            files.append(Path(self.settings["tls.key"]))
        return files

    def _store_checks(self) -> list[Callable[[], Finding]]:
        store = self.store
        if store is None:
            if self.store_problem:
                status, message, remedy = FAIL, f"cannot read the security store: {self.store_problem}", \
                    "restore <data-dir>/security from a backup"
            else:
                status, message, remedy = WARN, "no security store yet (the superuser is created at first start)", \
                    "start the server once"
            return [lambda n=n: Finding(n, status, message, remedy)
                    for n in ("bootstrap_password", "wildcard_read_roles", "api_key_expiry")]
        return [lambda: check_bootstrap_password(store.users()), lambda: check_wildcard_read_roles(store.roles()),
                lambda: check_api_key_expiry(store.api_keys())]

    def report(self, now: dt.datetime) -> dict[str, Any]:
        settings = self.settings
        checks: list[tuple[str, Callable[[], Finding]]] = [
            ("bind_address", lambda: check_bind_address(settings["server.host"], settings["tls.enabled"])),
            ("tls_certificate", lambda: check_tls_certificate(self.tls_chain, now=now)),
            ("data_dir", lambda: check_data_dir(self.data_dir)),
            ("config_dir", lambda: check_config_dir(self.config_dir, self.data_dir)),
            ("secret_files", lambda: check_secret_files(self.secret_files(),
                                                        config_files=[self.config_dir / "strongroom.toml"])),
            *zip(("bootstrap_password", "wildcard_read_roles", "api_key_expiry"), self._store_checks()),
            ("protection_at_rest", lambda: check_protection_at_rest(self.data_dir, self.config_dir, settings)),
            ("audit_sink", lambda: check_audit_sink(self.audit)),
            ("release_age", lambda: check_release_age(self.release_date, now=now)),
        ]
        findings = []
        for name, check in checks:
            try:
                findings.append(check())
            except Exception as exc:  # noqa: BLE001 - a check that cannot run is a failed check
                log.warning("doctor check %s could not run: %s", name, type(exc).__name__)
                findings.append(Finding(name, FAIL, f"the check could not run ({type(exc).__name__})",
                                        "see the server log"))
        return {"status": worst(f.status for f in findings), "checked_at": now.isoformat(timespec="seconds"),
                "findings": [f.to_json() for f in findings]}


def worsened(previous: Mapping[str, Any] | None, current: Mapping[str, Any]) -> list[str]:
    """Checks whose status is worse than in `previous` ("name (ok → fail)"). A check absent before counts as ok."""
    if previous is None:
        return []
    before = {f["check"]: f["status"] for f in previous["findings"]}
    return [f"{f['check']} ({before.get(f['check'], OK)} → {f['status']})" for f in current["findings"]
            if RANK[f["status"]] > RANK[before.get(f["check"], OK)]]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class DoctorMonitor:
    """Runs the checks at start and every `interval` seconds; keeps the latest report; alerts when worse."""

    def __init__(self, checks: Callable[[dt.datetime], dict[str, Any]], *, interval: float = INTERVAL_SECONDS,
                 clock: Callable[[], dt.datetime] = _utcnow) -> None:
        self._checks = checks
        self._interval = interval
        self._clock = clock
        self._latest: dict[str, Any] | None = None
        self._task: asyncio.Task[None] | None = None

    def check_now(self) -> dict[str, Any]:
        report = self._checks(self._clock())
        previous, self._latest = self._latest, report
        worse = worsened(previous, report)
        if previous is not None and (worse or RANK[report["status"]] > RANK[previous["status"]]):
            alerts.warning("deployment self-check got worse (%s → %s): %s; see GET /_strongroom/doctor",
                           previous["status"], report["status"], ", ".join(worse))
        elif previous is None and report["status"] != OK:
            log.warning("deployment self-check: %s (%s); see `strongroom doctor` or GET /_strongroom/doctor",
                        report["status"], ", ".join(f"{f['check']} {f['status']}" for f in report["findings"]
                                                    if f["status"] != OK))
        return report

    def report(self) -> dict[str, Any]:
        """The latest report (running the checks once if they have not run yet)."""
        latest = self._latest if self._latest is not None else self.check_now()
        return {**latest, "findings": [dict(f) for f in latest["findings"]]}

    async def start(self) -> None:
        """Runs the checks now, then every interval in the background until `stop`."""
        if self._task is not None:
            return
        await asyncio.to_thread(self.check_now)
        self._task = asyncio.create_task(self._loop(), name="strongroom-doctor")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await asyncio.to_thread(self.check_now)
            except Exception:  # noqa: BLE001 - keep checking; the next run may succeed
                log.exception("the deployment self-check failed")
