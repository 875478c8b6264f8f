"""Composition root: builds engine → security gate → ASGI app, and serves it with TLS on uvicorn.

Start-up refuses, with a message and a non-zero exit, anything unsafe: plain HTTP on a
non-loopback address, a data directory used by another process, unreadable TLS material, a
corrupted write-ahead log. Once serving, the deployment self-check (doctor.py) runs at start and
hourly, and its latest report answers `GET /_strongroom/doctor`.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import secrets
import ssl
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import uvicorn

from .api.app import ApiLimits, build_app
from .crypto.keys import KeyProblem, blob_versions, load_master_key
from .crypto.tls import TlsError, TlsMaterial, ensure_http_certificates, local_hosts, operator_certificates
from .doctor import Deployment, DoctorMonitor, is_loopback
from .engine.fsutil import atomic_write, make_dirs
from .engine.node import Engine, EngineStartError
from .errors import InternalError
from .security.console import ConsoleSessions
from .security.exfil import Guard, build_guard
from .security.gate import Gate
from .security.ingest import IngestPool, default_workers
from .security.vault import Vault
from .security.masks import load_or_create_key
from .security.throttle import LoginThrottle
from .security.passwords import PasswordPolicyError
from .security.users import BOOTSTRAP_USER, SecurityStore

log = logging.getLogger("strongroom")

BOOTSTRAP_ENV = "STRONGROOM_BOOTSTRAP_PASSWORD"
MASTER_KEY_ENV = "STRONGROOM_MASTER_KEY"


class StartupError(Exception):
    """The server refuses to start; the message says why and what to do."""


class DataDirLocked(StartupError):
    """Another process holds the data directory's lock (a running server, or an offline CLI command)."""


def check_bind(host: str, tls_enabled: bool) -> None:
    if not tls_enabled and not is_loopback(host):
        raise StartupError(f"refusing to serve plain HTTP on non-loopback address [{host}]: anyone on the network "
                           "could read the traffic. Enable TLS (the default) or bind to 127.0.0.1.")


@dataclass
class Node:
    engine: Engine
    gate: Gate
    tls: TlsMaterial | None
    bootstrap_password: str | None  # set only on the start that generated it
    lock_fd: int
    doctor: DoctorMonitor | None = None
    guard: Guard | None = None
    ingest: IngestPool | None = None

    def close(self) -> None:
        try:
            if self.guard is not None:
                self.guard.close()  # the audit's closing checkpoint, the budgets' state
            self.engine.close()
        finally:
            if self.ingest is not None:
                self.ingest.close()
            os.close(self.lock_fd)


def lock_data_dir(data_dir: Path) -> int:
    """Takes `<data-dir>/node.lock` without waiting; the caller closes the returned descriptor to release it.

    The server holds it while it runs, and offline commands that change the data directory
    (`strongroom users …`, `strongroom roles …`) take it too, so the two never meet.
    """
    fd = os.open(data_dir / "node.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DataDirLocked(f"the data directory {data_dir} is in use by another Strongroom process") from None
    return fd


def _node_info(data_dir: Path) -> dict[str, str]:
    path = data_dir / "node.json"
    if path.exists():
        return json.loads(path.read_bytes())
    info = {"cluster_name": "strongroom", "cluster_uuid": secrets.token_urlsafe(16),
            "node_name": f"strongroom-{secrets.token_hex(3)}"}
    atomic_write(path, json.dumps(info).encode())
    return info


def open_node(data_dir: Path, config_dir: Path, settings: dict[str, Any], *, environ: dict[str, str] | None = None
              ) -> Node:
    environ = dict(os.environ if environ is None else environ)
    host = settings["server.host"]
    check_bind(host, settings["tls.enabled"])
    if settings["tls.certificate"] or settings["tls.key"]:
        if not (settings["tls.certificate"] and settings["tls.key"]):
            raise StartupError("tls.certificate and tls.key must be given together")
    data_dir = data_dir.resolve()
    config_dir = config_dir.resolve()
    if data_dir == config_dir or config_dir.is_relative_to(data_dir):
        raise StartupError("the config directory must not be inside the data directory: keys and certificates "
                           "must not travel with a copy of the data")
    make_dirs(data_dir)
    make_dirs(config_dir)
    os.chmod(data_dir, 0o700)
    os.chmod(config_dir, 0o700)
    tls = None
    if settings["tls.enabled"]:
        try:
            if settings["tls.certificate"]:
                tls = operator_certificates(Path(settings["tls.certificate"]), Path(settings["tls.key"]))
            else:
                tls = ensure_http_certificates(config_dir, local_hosts(host))
        except TlsError as exc:
            raise StartupError(str(exc)) from None
    try:
        key_file = settings["security.master_key_file"]
        master, warning = load_master_key(key_file=Path(key_file) if key_file else None,
                                          env_value=environ.get(MASTER_KEY_ENV) or None, config_dir=config_dir,
                                          data_dir=data_dir, generate=not key_file)
    except KeyProblem as problem:
        raise StartupError(f"sealed: {problem.reason}") from None
    if warning:
        log.warning("%s", warning)
    lock_fd = lock_data_dir(data_dir)
    try:
        users = SecurityStore(data_dir)
        generated = None
        if not users.initialized:
            try:
                generated = users.bootstrap(environ.get(BOOTSTRAP_ENV) or None)
            except PasswordPolicyError as exc:
                raise StartupError(f"{BOOTSTRAP_ENV}: {exc}") from None
        elif environ.get(BOOTSTRAP_ENV):
            log.info("%s is ignored: the superuser already exists", BOOTSTRAP_ENV)
        try:
            engine = Engine(data_dir, writer_heap_bytes=settings["engine.writer_heap_bytes"],
                            writer_threads=settings["engine.writer_threads"])
        except EngineStartError as exc:
            raise StartupError(str(exc)) from None
        throttle = LoginThrottle(free_failures=settings["security.login_free_failures"],
                                 max_delay=float(settings["security.login_max_delay_seconds"]))
        deployment = Deployment(data_dir, config_dir, settings, users)
        doctor = DoctorMonitor(deployment.report)
        try:
            mask_key = load_or_create_key(config_dir)  # the `hash` mask's key (config dir, 0600)
        except (OSError, ValueError) as exc:
            raise StartupError(f"cannot use the mask key: {exc}") from None
        workers = settings["ingest.workers"]
        workers = default_workers() if workers == "auto" else workers
        ingest = IngestPool(workers) if workers > 0 else None
        vault = Vault(master, ingest=ingest)
        for name in engine.names():  # every index's keys must open with this master key, or nothing starts
            try:
                vault.keys(engine.index(name))  # opened once, kept for the requests to come
            except InternalError as problem:
                engine.close()
                raise StartupError(f"sealed: {problem}") from None
        try:
            guard = build_guard(data_dir, config_dir, settings)
        except (OSError, ValueError) as exc:
            engine.close()
            raise StartupError(f"cannot start the audit log and exfiltration defences: {exc}") from None
        deployment.audit = guard.audit_probe
        gate = Gate(engine, users, throttle=throttle, cluster_info=_node_info(data_dir), doctor=doctor.report,
                    mask_key=mask_key, vault=vault, snapshot_roots=[Path(p) for p in settings["path.repo"]],
                    protected_dirs=[config_dir], guard=guard,
                    console=ConsoleSessions(users, idle_seconds=float(settings["console.idle_timeout_seconds"])))
    except BaseException:
        os.close(lock_fd)
        raise
    return Node(engine, gate, tls, generated, lock_fd, doctor, guard, ingest)


def banner(node: Node, url: str, out: TextIO) -> None:
    lines = ["", f"Strongroom is listening on {url}"]
    if node.tls is not None:
        if node.tls.ca_cert is not None:
            lines.append(f"  CA certificate:      {node.tls.ca_cert}")
        lines.append(f"  SHA-256 fingerprint: {node.tls.fingerprint}")
    if node.bootstrap_password is not None:
        lines += [f"  Superuser:           {BOOTSTRAP_USER}",
                  f"  Password:            {node.bootstrap_password}",
                  "  The password is shown only this once and stored only as an argon2id hash: keep it now."]
    lines.append("")
    out.write("\n".join(lines) + "\n")
    out.flush()


def uvicorn_config(app: Any, settings: dict[str, Any], tls: TlsMaterial | None) -> uvicorn.Config:
    kwargs: dict[str, Any] = {}
    if tls is not None:
        kwargs.update(ssl_certfile=str(tls.cert_chain), ssl_keyfile=str(tls.key),
                      ssl_ciphers="ECDHE+AESGCM:ECDHE+CHACHA20")
    config = uvicorn.Config(app, host=settings["server.host"], port=settings["server.port"], log_level="warning",
                            access_log=False, lifespan="off", server_header=False, proxy_headers=False,
                            timeout_keep_alive=60, timeout_graceful_shutdown=5, **kwargs)
    config.load()
    if config.ssl is not None:
        config.ssl.minimum_version = ssl.TLSVersion.TLSv1_2
    return config


async def _resume_reseals(node: Node) -> None:
    """A key rotation whose re-seal a stop interrupted carries on in the background: every index whose
    keys have more than one version is scanned, and older documents are sealed again."""
    session = node.gate.system_session("keys")
    for name in node.engine.names():
        blob = node.engine.index(name).keys
        if blob is None or blob_versions(blob) < 2:
            continue
        try:
            await session.rotate_index_keys(name, mode="resume")
        except Exception:
            log.exception("index [%s]: the interrupted re-seal could not resume; POST "
                          "/_strongroom/keys/%s/_rotate?reseal_only=true retries it", name, name)


def serve_forever(main: Coroutine[Any, Any, None]) -> None:
    """Runs the server's coroutine on uvloop (libuv's event loop and its TLS transport, a declared
    dependency through uvicorn[standard]: the HTTPS answer of `GET /` 0.07 ms sooner on this machine,
    docs/performance.md), or on asyncio's own loop where uvloop is not installed."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


async def run(node: Node, settings: dict[str, Any], *, out: TextIO = sys.stdout,
              after_start: Callable[[Node], Any] | None = None) -> None:
    app = build_app(node.gate, ApiLimits(max_body_bytes=settings["http.max_content_length"]))
    server = uvicorn.Server(uvicorn_config(app, settings, node.tls))
    if node.doctor is not None:
        await node.doctor.start()  # The first check runs now; then hourly until the server stops.
    try:
        serving = asyncio.create_task(server.serve())
        while not server.started:
            if serving.done():
                await serving
                raise StartupError("the HTTP server did not start (is the port in use?)")
            await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        scheme = "https" if node.tls is not None else "http"
        host = settings["server.host"]
        shown = f"[{host}]" if ":" in host else host
        banner(node, f"{scheme}://{shown}:{port}", out)
        await _resume_reseals(node)
        if after_start is not None:
            try:
                await after_start(node)
            except Exception:
                log.exception("start-up task failed; the server keeps running")
        await serving
    finally:
        if node.doctor is not None:
            await node.doctor.stop()
