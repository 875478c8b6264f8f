"""Node settings: one registry, secure defaults, help for each (docs/configuration.md lists them all).

Sources, later ones winning: defaults → `<config-dir>/strongroom.toml` → command-line flags.
No setting turns authentication off; TLS can be off only on a loopback address.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class SettingsError(ValueError):
    pass


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "1", "yes"):
        return True
    if str(value).lower() in ("false", "0", "no"):
        return False
    raise ValueError("expected true or false")


def _positive_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a positive integer")
    number = int(value)
    if number <= 0:
        raise ValueError("expected a positive integer")
    return number


def _workers(value: Any) -> str | int:
    if value == "auto":
        return value
    if isinstance(value, bool) or not str(value).isdigit() or int(value) > 64:
        raise ValueError('expected "auto" or a number of processes from 0 to 64')
    return int(value)


def _port(value: Any) -> int:
    number = int(value)
    if not 0 <= number <= 65535:
        raise ValueError("expected a port number 0-65535 (0 picks a free port)")
    return number


def _choice(value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"expected one of {list(choices)}")
    return value


def _paths(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        items = [p.strip() for p in value.split(",") if p.strip()]
    elif isinstance(value, list) and all(isinstance(p, str) for p in value):
        items = [p.strip() for p in value if p.strip()]
    else:
        raise ValueError("expected a list of directory paths")
    for item in items:
        if not Path(item).is_absolute():
            raise ValueError(f"[{item}] is not an absolute path")
    return tuple(items)


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    parse: Callable[[Any], Any] = str


SETTINGS: tuple[Setting, ...] = (
    Setting("server.host", "127.0.0.1", "Listen address. A non-loopback address requires TLS."),
    Setting("server.port", 9200, "Listen port (0 picks a free port and prints it).", _port),
    Setting("tls.enabled", True, "Serve HTTPS; a CA and server certificate are generated on first start. "
            "Can be false only on a loopback address (for local benchmarks).", _bool),
    Setting("tls.certificate", "", "PEM certificate chain supplied by the operator (instead of the generated one)."),
    Setting("tls.key", "", "PEM private key for tls.certificate; must not be readable by other users."),
    Setting("http.max_content_length", 100 * 1024 * 1024, "Largest request body in bytes, after decompression; "
            "larger ones get 413.", _positive_int),
    Setting("engine.writer_heap_bytes", 64 * 1024 * 1024, "Indexing memory per shard writer, in bytes.",
            _positive_int),
    Setting("engine.writer_threads", 1, "Indexing threads per shard writer.", _positive_int),
    Setting("ingest.workers", "auto", "Worker processes that derive blind tokens and seal sources of large write "
            "batches (200 documents or more) in parallel with the request. auto: one less than the CPUs, at most "
            "4; 0: every batch is derived in the request alone. They hold data keys in memory, never the master "
            "key.", _workers),
    Setting("security.master_key_file", "", "File holding the master key that wraps every index's data keys "
            "(mode 0600, outside the data directory; another volume in production). Empty: the environment "
            "variable STRONGROOM_MASTER_KEY (base64 of 32 bytes), else <config-dir>/master.key, generated on "
            "first start."),
    Setting("path.repo", (), "Directories under which snapshot repositories (type fs) may be registered, as an "
            "array of absolute paths. Empty: no repository can be registered. A repository may not overlap the data "
            "or config directory.", _paths),
    Setting("audit.dir", "", "Directory of the tamper-evident audit log. Empty: <data-dir>/audit. The audit cannot "
            "be turned off."),
    Setting("audit.checkpoint_every", 1000, "At most this many records after the last signed (Ed25519) checkpoint "
            "of the audit chain: the background thread signs at half of it, a request at all of it; one is also "
            "written at shutdown.", _positive_int),
    Setting("audit.ship_path", "", "A file (ideally on another volume or host mount) to which every audit "
            "checkpoint is also appended, so a copy of the chain's proofs lives outside the data directory."),
    Setting("audit.ship_url", "", "A URL to which every audit checkpoint is POSTed as JSON."),
    Setting("alerts.webhook_url", "", "A URL to which every alert is POSTed as JSON (canary touched, budget "
            "exhausted, dump pattern)."),
    Setting("alerts.webhook_ca", "", "CA certificate file for alerts.webhook_url and audit.ship_url (default: "
            "the system's)."),
    Setting("exfil.dump_action", "block", "What a detected dump pattern does to the identity besides raising an "
            "alert: block (429 until it expires or is lifted), slow (each request delayed), or alert (nothing "
            "more).", lambda v: _choice(v, ("block", "slow", "alert"))),
    Setting("exfil.block_seconds", 3600, "How long a dump pattern blocks (or slows) an identity.", _positive_int),
    Setting("security.login_free_failures", 3, "Failed logins per user and address before each further attempt "
            "is delayed (exponentially, up to security.login_max_delay_seconds).", _positive_int),
    Setting("security.login_max_delay_seconds", 8, "Longest delay imposed on a login attempt after failures.",
            _positive_int),
    Setting("console.idle_timeout_seconds", 900, "A web console session ends after this many seconds without a "
            "request (and always 8 hours after login).", _positive_int),
)
BY_NAME = {s.name: s for s in SETTINGS}
CONFIG_FILE = "strongroom.toml"


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def load_settings(config_dir: Path, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    values = {s.name: s.default for s in SETTINGS}
    raw: dict[str, Any] = {}
    path = config_dir / CONFIG_FILE
    if path.exists():
        try:
            raw.update(_flatten(tomllib.loads(path.read_text())))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(f"{path}: {exc}") from None
    raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
    for name, value in raw.items():
        setting = BY_NAME.get(name)
        if setting is None:
            raise SettingsError(f"unknown setting [{name}] (see docs/configuration.md)")
        try:
            values[name] = setting.parse(value)
        except (ValueError, TypeError) as exc:
            raise SettingsError(f"invalid value for setting [{name}]: {exc}") from None
    return values
