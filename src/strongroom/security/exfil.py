"""Exfiltration defence, per request: admission, what was revealed, the audit record, dump detection.

An `Exchange` is one HTTP request as the security layer sees it. The api layer's dispatcher opens
it (authentication, then admission: blocks, rate and concurrency limits), hands the session the
request's `Ledger`, and closes it with the response it is about to send. Closing writes the audit
record (time, identity, address, action, indices, the query with its literals replaced by keyed
hashes, the ids of the documents revealed, the fields shown in clear on request, purpose,
outcome); when that write fails the response is replaced by a 503, so nothing is served unaudited,
and while the audit log is failing every request is refused up front until a record gets through
again.

The `Ledger` is where documents become visible: the session calls `reveal` before it opens any
source it is about to return (search hits, scroll pages, top_hits, get, mget), which charges the
identity's record budget (all or nothing: over budget, the request fails with 429 and nothing is
revealed), notes the ids for the audit record and checks for canaries (an alert every time).
Queries that name a protected field are probes and charge the probe budget before they run.

After the response, the dump detector sees the request's shape (fingerprint and hashed literals)
and, on a finding, raises an alert and blocks or slows the identity (`dumps.action`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..crypto.keyed import KeyedMac
from ..errors import AuditUnavailableError, StrongroomError, TooManyRequestsError
from .dumps import Observation
from .limits import Limits
from .shapes import describe

log = logging.getLogger("strongroom.exfil")
SEARCH_ROUTES = {"/_search", "/{index}/_search", "/_count", "/{index}/_count", "/{index}/_explain/{id}",
                 "/{index}/_delete_by_query", "/{index}/_update_by_query", "/_msearch", "/{index}/_msearch",
                 "/{index}/_search/template"}
MAX_SHAPED_BODY = 1 << 20  # bodies larger than this are not described (still audited, without the query)
UNLIMITED = Limits()  # admission for identities without limits: blocks still apply


@dataclass
class Guard:
    """The node's exfiltration defences. Any part may be None in tests that do not exercise it; the
    server always builds every part (the audit cannot be turned off)."""

    budgets: Any = None  # limits.Budgets
    audit: Any = None  # audit.AuditLog
    alerts: Any = None  # alerts.Alerts
    detector: Any = None  # dumps.DumpDetector
    canaries: Any = None  # canaries.CanaryStore
    # the server passes the persisted one; never in a repr (a log line)
    literal_key: bytes = field(default_factory=lambda: os.urandom(32), repr=False)
    dump_action: str = "block"  # block | slow | alert
    block_seconds: float = 3600.0
    slow_seconds: float = 2.0
    audit_broken: bool = False
    shipper: Any = None  # alerts.Webhook for audit checkpoints
    _slowed: dict[str, float] = field(default_factory=dict)
    _paged: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    _canary_cache: dict[str, tuple[tuple[str, str | None], ...]] = field(default_factory=dict)
    _paged_lock: threading.Lock = field(default_factory=threading.Lock)
    detector_lock: threading.Lock = field(default_factory=threading.Lock)
    _literal_macs: dict[bytes, KeyedMac] = field(default_factory=dict, repr=False)  # literal_key → its MAC

    def page_after(self, identity: str, size: int, window: float = 600.0) -> int:
        """Records one identity asked for through search_after within `window` seconds, this page included."""
        now = time.monotonic()
        with self._paged_lock:
            pages = [(t, n) for t, n in self._paged.get(identity, []) if t > now - window]
            pages.append((now, size))
            self._paged[identity] = pages[-10_000:]
            return sum(n for _t, n in pages)

    def hasher(self, field_name: str, value: str) -> str:
        """The keyed hash of a query literal (audit records, alerts): equal values of a field hash alike,
        so an auditor holding the key can ask who searched for a value; nobody else learns it."""
        return self._literal_mac(f"{field_name}\0{value}".encode()).hex()[:24]

    def _literal_mac(self, message: bytes) -> bytes:
        """HMAC-SHA256 under `literal_key` (whichever key the guard holds now)."""
        mac = self._literal_macs.get(self.literal_key)
        if mac is None:
            self._literal_macs.clear()
            mac = self._literal_macs[self.literal_key] = KeyedMac(self.literal_key)
        return mac.digest(message)

    def close(self) -> None:
        """At shutdown: the audit's final checkpoint, the budgets' state, the webhooks' queues."""
        for part in (self.audit, self.budgets, self.alerts, self.shipper):
            if part is not None:
                try:
                    part.close()
                except Exception:
                    log.exception("closing %s failed", type(part).__name__)

    def audit_probe(self) -> str:
        """For the deployment self-check: raises while the audit log cannot be written."""
        if self.audit is None:
            raise RuntimeError("no audit log")
        if self.audit_broken:
            raise OSError("the last audit record could not be written")
        return f"audit log in {self.audit.directory}"

    def canary_ids(self, seal_uuid: str) -> tuple[tuple[str, str | None], ...]:
        """(doc id, owner) of an index's canaries, opened once and kept (`forget_canaries` after a plant)."""
        if self.canaries is None:
            return ()
        cached = self._canary_cache.get(seal_uuid)
        if cached is None:
            cached = tuple(self.canaries.ids(seal_uuid))
            self._canary_cache[seal_uuid] = cached
        return cached

    def forget_canaries(self, seal_uuid: str) -> None:
        self._canary_cache.pop(seal_uuid, None)

    def slow(self, identity: str) -> None:
        """The dump detector's `slow` action: the identity's requests wait `slow_seconds` each, for
        `block_seconds`."""
        self._slowed[identity] = time.monotonic() + self.block_seconds

    def slow_delay(self, identity: str) -> float:
        """Seconds a request of `identity` must wait before it is served (0 when it is not slowed)."""
        left = self._slowed.get(identity, 0.0) - time.monotonic()
        return min(self.slow_seconds, left) if left > 0 else 0.0

    def record_key(self, index_uuid: str, doc_id: str) -> bytes:
        return self._literal_mac(f"doc\0{index_uuid}\0{doc_id}".encode())[:16]


class Ledger:
    """What one request revealed, charged against its identity as it happens (thread-safe)."""

    def __init__(self, guard: Guard, identity: str, limits: Any, request_line: str) -> None:
        self._guard = guard
        self.identity = identity
        self.limits = limits
        self._request_line = request_line
        self._lock = threading.Lock()
        self._seen: set[tuple[str, str]] = set()
        self.revealed: list[tuple[str, str]] = []
        self.fields: list[tuple[str, str, str]] = []  # (index, doc id, field) shown in clear on request
        self.probes = 0
        self.canaries = 0

    def reveal(self, index: Any, doc_ids: Sequence[str]) -> None:
        """Called before the sources of `doc_ids` (documents of `index`) are opened for the response."""
        guard = self._guard
        with self._lock:
            fresh = [d for d in dict.fromkeys(doc_ids) if (index.name, d) not in self._seen]
        if not fresh:
            return
        if guard.budgets is not None and self.limits is not None and self.limits.tracks_records:
            keys = [guard.record_key(index.seal_uuid, d) for d in fresh]
            try:
                guard.budgets.charge_records(self.identity, self.limits, keys)
            except TooManyRequestsError as refused:
                if guard.alerts is not None:
                    guard.alerts.raise_alert("budget_exhausted", self.identity, refused.reason,
                                             {"index": index.name, "request": self._request_line,
                                              "wanted": len(fresh)})
                raise
        if guard.canaries is not None:
            for doc_id in fresh:
                hit = guard.canaries.match(index.seal_uuid, doc_id)
                if hit is not None:
                    self.canaries += 1
                    if guard.alerts is not None:
                        guard.alerts.raise_alert(
                            "canary", self.identity,
                            f"a canary record of index [{index.name}] was about to be returned to [{self.identity}]",
                            {"index": index.name, "doc": doc_id, "request": self._request_line,
                             "canary_owner": hit.owner})
        with self._lock:
            for doc_id in fresh:
                if (index.name, doc_id) not in self._seen:
                    self._seen.add((index.name, doc_id))
                    self.revealed.append((index.name, doc_id))

    def reveal_fields(self, index: Any, doc_id: str, paths: Sequence[str]) -> None:
        """Called before masked fields of one document are shown in clear (`Session.reveal`): charges the
        reveal budget (all or nothing; an alert when refused) and names each field in the audit record."""
        guard = self._guard
        if guard.budgets is not None and self.limits is not None and self.limits.tracks_reveals:
            try:
                guard.budgets.charge_reveals(self.identity, self.limits, len(paths))
            except TooManyRequestsError as refused:
                if guard.alerts is not None:
                    guard.alerts.raise_alert("reveal_budget_exhausted", self.identity, refused.reason,
                                             {"index": index.name, "doc": doc_id, "fields": list(paths),
                                              "request": self._request_line})
                raise
        with self._lock:
            self.fields.extend((index.name, doc_id, path) for path in paths)

    def probe(self) -> None:
        """A query that asks whether a protected value exists."""
        guard = self._guard
        if guard.budgets is not None and self.limits is not None and self.limits.tracks_probes:
            try:
                guard.budgets.charge_probes(self.identity, self.limits, 1)
            except TooManyRequestsError as refused:
                if guard.alerts is not None:
                    guard.alerts.raise_alert("probe_budget_exhausted", self.identity, refused.reason,
                                             {"request": self._request_line})
                raise
        with self._lock:
            self.probes += 1


@dataclass
class Described:
    """What the audit and the detector know of a request's body (never a literal in plain)."""

    indices: list[str] = field(default_factory=list)
    query: Any = None  # sanitized
    shape: Any = None  # shapes.Shape of the main query
    offset: int = 0
    size: int = 10
    search_after: bool = False
    scroll: bool = False


def describe_request(guard: Guard, pattern: str, path: dict[str, str], params: dict[str, str], body: bytes,
                     parsed: Any = None) -> Described:
    """`parsed`: the body as the handler parsed it, if it did (else it is parsed here)."""
    described = Described(indices=[p for p in path.get("index", "").split(",") if p])
    if pattern.startswith("/_search/scroll"):
        described.scroll = True  # a continuation page: the detector counts its records
        return described
    if pattern not in SEARCH_ROUTES:
        return described
    described.scroll = "scroll" in params
    parts: list[dict[str, Any]] = []  # per search body (several in _msearch): key → raw value
    if body and len(body) <= MAX_SHAPED_BODY:
        lines = body.splitlines() if "_msearch" in pattern or not isinstance(parsed, dict) else [parsed]
        for line in lines:
            try:
                entry = line if isinstance(line, dict) else orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(entry, dict):
                continue
            part = {key: entry[key] for key in ("query", "post_filter", "aggs", "aggregations", "knn") if key in entry}
            if part:
                parts.append(part)
            if isinstance(entry.get("from"), int):
                described.offset = entry["from"]
            if isinstance(entry.get("size"), int):
                described.size = entry["size"]
            if entry.get("search_after") is not None:
                described.search_after = True
            if entry.get("scroll") is not None:
                described.scroll = True
    if "q" in params:
        parts.append({"query": {"query_string": {"query": params["q"]}}})
    for name in ("from", "size"):
        if name in params and params[name].lstrip("-").isdigit():
            setattr(described, "offset" if name == "from" else "size", int(params[name]))
    sanitized = []
    for part in parts:
        clean = {}
        for key, value in part.items():
            shape = describe(value, guard.hasher)
            clean[key] = shape.sanitized
            if key == "query" and described.shape is None:
                described.shape = shape
        sanitized.append(clean)
    if sanitized:
        described.query = sanitized[0] if len(sanitized) == 1 else sanitized
    return described


class Exchange:
    def __init__(self, gate: Any, guard: Guard, method: str, path: str, address: str) -> None:
        self._gate = gate
        self.guard = guard
        self.method = method
        self.path = path
        self.address = address
        self.started = time.time()
        self.session: Any = None
        self.principal: Any = None
        self.ledger: Ledger | None = None
        self._ticket: Any = None
        self.pattern: str | None = None
        self.described = Described()
        self.console: Any = None  # console.ConsoleSession of a cookie-authenticated request
        self._status: int | None = None  # set by a successful close

    async def open(self, authorization: str | None, purpose: str | None, console: Any = None) -> Any:
        """`console`: the request's console.ConsoleClaim (its cookie), used only without an Authorization
        header."""
        if not authorization and console is not None and console.cookie:
            principal, self.console = self._gate.console_authenticate(console, self.method)
        else:
            principal = await self._gate.authenticate(authorization, self.address, self.path)
        self.principal = principal
        return await self._admit(principal, purpose)

    async def login(self, user: str, password: str) -> str:
        """A console login (`POST /_console/login`): the cookie token of the new session. A failure is
        audited like any refused request; the identity is recorded once the password is verified."""
        principal, token, self.console = await self._gate.console_login(user, password, self.address, self.path)
        self.principal = principal
        try:
            await self._admit(principal, None)  # a blocked identity cannot log in either
        except BaseException:
            self.logout(token)
            raise
        return token

    def logout(self, token: str | None) -> bool:
        """Ends the console session of the cookie `token` (opened by `open` on this request)."""
        self.console = None
        return self._gate.console.drop(token)

    async def _admit(self, principal: Any, purpose: str | None) -> Any:
        guard = self.guard
        if guard.audit is not None and guard.audit_broken:
            raise AuditUnavailableError()
        identity = identity_of(principal)
        limits = self._gate.limits_of(principal)
        if guard.budgets is not None:
            # blocks, rate and concurrency: 429 (blocks apply to unlimited identities too)
            self._ticket = guard.budgets.admit(identity, limits if limits is not None else UNLIMITED)
            delay = guard.slow_delay(identity)
            if delay > 0:
                await asyncio.sleep(delay)
        self.ledger = Ledger(guard, identity, limits, f"{self.method} {self.path}")
        self.session = self._gate.session_for(principal, purpose, self.ledger)
        return self.session

    def route(self, pattern: str, path: dict[str, str], params: dict[str, str], body: bytes,
              parsed: Any = None) -> None:
        self.pattern = pattern
        try:
            self.described = describe_request(self.guard, pattern, path, params, body, parsed)
        except Exception:  # A description is for the audit and the detector; never fail the request on it.
            log.exception("describing a request for the audit failed")

    def close(self, status: int, error: StrongroomError | None = None) -> None:
        """Write the audit record, before the response leaves; raises AuditUnavailableError when the record
        could not be written (the caller then sends a 503 instead of the response). Then `detect`."""
        try:
            self._audit(status, error)
        finally:
            if self._ticket is not None:
                self._ticket.release()
                self._ticket = None
        self._status = status

    def detect(self) -> None:
        """Feed the dump detector, once the response has left (its verdict, a block or an alert, concerns the
        identity's next requests, so the client need not wait for it). Only after a successful `close`."""
        if self._status is not None and self._status < 400 and self.ledger is not None:
            try:
                self._detect()
            except Exception:
                log.exception("dump detection failed for a request")

    def _audit(self, status: int, error: StrongroomError | None) -> None:
        guard = self.guard
        if guard.audit is None:
            return
        principal = self.principal
        ledger = self.ledger
        record: dict[str, Any] = {
            "identity": identity_of(principal) if principal is not None else None,
            "auth": principal.auth if principal is not None else None,
            "address": self.address, "method": self.method, "path": self.path,
            "action": self.pattern, "indices": self.described.indices,
            "query": self.described.query,
            "revealed": [[index, doc_id] for index, doc_id in ledger.revealed] if ledger else [],
            "purpose": self.session.purpose if self.session is not None else None,
            "status": status,
            "outcome": "ok" if status < 400 else ("refused" if status in (401, 403, 429) else "error"),
            "took_ms": int((time.time() - self.started) * 1000),
        }
        if error is not None:
            record["error"] = error.es_type
        if ledger is not None and ledger.probes:
            record["probes"] = ledger.probes
        if ledger is not None and ledger.fields:
            record["fields"] = [[index, doc_id, path] for index, doc_id, path in ledger.fields]
        try:
            guard.audit.append(record)
        except AuditUnavailableError:
            guard.audit_broken = True
            log.error("audit record could not be written: refusing requests until it can")
            raise
        except OSError:
            guard.audit_broken = True
            raise AuditUnavailableError() from None
        guard.audit_broken = False

    def _detect(self) -> None:
        guard = self.guard
        ledger = self.ledger
        if guard.detector is None or ledger is None or (self.described.shape is None and not ledger.revealed):
            return
        fraction = None
        limits = ledger.limits
        if guard.budgets is not None and limits is not None and limits.records_per_hour:
            usage = guard.budgets.usage(ledger.identity, limits)
            used = ((usage.get("records") or {}).get("hour") or {}).get("used")
            fraction = used / limits.records_per_hour if isinstance(used, int) else None
        described = self.described
        observation = Observation(identity=ledger.identity, tenant=tenant_of(self.principal),
                                  index=",".join(described.indices), shape=described.shape, offset=described.offset,
                                  size=described.size, search_after=described.search_after,
                                  scroll=described.scroll, returned=len(ledger.revealed), budget_fraction=fraction)
        with guard.detector_lock:
            findings = guard.detector.observe(observation)
        for finding in findings:
            self._act(finding)

    def _act(self, finding: Any) -> None:
        guard = self.guard
        action = guard.dump_action
        if self.ledger is None or self.ledger.limits is None:
            action = "alert"  # an unmetered identity (an administrator) is never locked out: alert only
        evidence = {**finding.evidence, "pattern": finding.pattern, "action": action, "request": f"{self.method} "
                    f"{self.path}"}
        if guard.alerts is not None:
            guard.alerts.raise_alert("dump_pattern", finding.identity, finding.summary, evidence)
        if action == "block" and guard.budgets is not None:
            guard.budgets.block(finding.identity, f"dump pattern [{finding.pattern}]: {finding.summary}",
                                guard.block_seconds)
        elif action == "slow":
            guard.slow(finding.identity)


def identity_of(principal: Any) -> str:
    """Budgets, blocks and alerts are per identity: a user, or one API key of a user."""
    if principal.api_key_id is not None:
        return f"{principal.name}/api_key:{principal.api_key_id}"
    return principal.name


def tenant_of(principal: Any) -> str | None:
    return getattr(principal, "tenant", None)


def build_guard(data_dir: Path, config_dir: Path, settings: dict[str, Any]) -> Guard:
    """The server's defences, every part on: keys in the config directory, state in the data directory."""
    from .alerts import Alerts, Webhook
    from .audit import AuditLog, load_or_create_audit_key
    from .canaries import CanaryStore, load_or_create_canary_key
    from .dumps import DumpDetector
    from .limits import Budgets
    from .masks import load_key_file

    audit_dir = Path(settings["audit.dir"]) if settings["audit.dir"] else data_dir / "audit"
    ship_url = settings["audit.ship_url"]
    ca = settings["alerts.webhook_ca"] or None
    shipper = Webhook(ship_url, ca, "audit checkpoint") if ship_url else None
    audit = AuditLog(audit_dir, load_or_create_audit_key(config_dir),
                     checkpoint_every=settings["audit.checkpoint_every"],
                     ship_path=Path(settings["audit.ship_path"]) if settings["audit.ship_path"] else None,
                     ship=shipper.send if shipper is not None else None, background_checkpoints=True)
    alerts = Alerts(data_dir / "alerts.jsonl", audit=audit, webhook_url=settings["alerts.webhook_url"] or None,
                    webhook_ca=ca)
    guard = Guard(budgets=Budgets(data_dir / "security" / "budgets.json"), audit=audit, alerts=alerts,
                  detector=DumpDetector(),
                  canaries=CanaryStore(data_dir / "security" / "canaries.json", load_or_create_canary_key(config_dir)),
                  literal_key=load_key_file(config_dir / "audit_literal.key"),
                  dump_action=settings["exfil.dump_action"], block_seconds=float(settings["exfil.block_seconds"]))
    guard.shipper = shipper
    return guard
