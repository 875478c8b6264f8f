"""Alerts: a canary touched, a budget exhausted, a dump pattern seen.

Every alert goes, at once, to the audit log (as an `alert` record in the chain), to the list behind
`GET /_strongroom/alerts` (the latest ones in memory, all of them in `<data-dir>/alerts.jsonl`), to
the server log, and to an optional webhook (POSTed as JSON from a background thread, retried with
backoff, never blocking a request). An alert names the identity, the pattern and its evidence;
evidence holds counts, fingerprints and keyed hashes, never a protected value.
"""

from __future__ import annotations

import logging
import os
import queue
import secrets
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("strongroom.alerts")
KEEP_IN_MEMORY = 2000


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


class Alerts:
    def __init__(self, path: Path | None, *, audit: Any = None, webhook_url: str | None = None,
                 webhook_ca: str | None = None, clock: Callable[[], float] = time.time) -> None:
        self._path = path
        self._audit = audit  # audit.AuditLog, or None in tests that do not audit
        self._clock = clock
        self._lock = threading.Lock()
        self._recent: deque[dict[str, Any]] = deque(maxlen=KEEP_IN_MEMORY)
        if path is not None and path.exists():
            for line in path.read_bytes().splitlines()[-KEEP_IN_MEMORY:]:
                try:
                    self._recent.append(orjson.loads(line))
                except orjson.JSONDecodeError:
                    log.warning("skipping an unreadable line of %s", path)
        self._webhook = Webhook(webhook_url, webhook_ca, "alert") if webhook_url else None

    def raise_alert(self, kind: str, identity: str, summary: str, evidence: dict[str, Any]) -> dict[str, Any]:
        ms = int(self._clock() * 1000)
        alert = {"id": secrets.token_urlsafe(12), "time": _iso(ms), "time_ms": ms, "kind": kind,
                 "identity": identity, "summary": summary, "evidence": evidence}
        with self._lock:
            self._recent.append(alert)
            if self._path is not None:
                try:
                    fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                    try:
                        os.write(fd, orjson.dumps(alert) + b"\n")
                    finally:
                        os.close(fd)
                except OSError:
                    log.exception("an alert could not be written to %s", self._path)
        log.warning("ALERT %s identity=[%s]: %s", kind, identity, summary)
        if self._audit is not None:
            try:
                self._audit.append({"action": "alert", "identity": identity, "alert": alert})
            except Exception:  # The alert is still listed and logged; the audit failure is logged itself.
                log.exception("an alert could not be written to the audit log")
        if self._webhook is not None:
            self._webhook.send(alert)
        return alert

    def list(self, *, kind: str | None = None, identity: str | None = None, since_ms: int | None = None,
             size: int = 100) -> list[dict[str, Any]]:
        with self._lock:
            recent = list(self._recent)
        out = [a for a in reversed(recent) if (kind is None or a["kind"] == kind)
               and (identity is None or a["identity"] == identity)
               and (since_ms is None or a["time_ms"] >= since_ms)]
        return out[:size]

    def close(self) -> None:
        if self._webhook is not None:
            self._webhook.close()


class Webhook:
    """POSTs JSON objects to a URL from a background thread, in order, retried with backoff; a full
    queue drops (and logs) rather than blocking a request."""

    def __init__(self, url: str, ca: str | None, what: str) -> None:
        self._url = url
        self._ca = ca
        self._what = what
        self._outbox: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=10_000)
        self._thread = threading.Thread(target=self._loop, name=f"{what}-webhook", daemon=True)
        self._thread.start()

    def send(self, item: dict[str, Any]) -> None:
        try:
            self._outbox.put_nowait(item)
        except queue.Full:
            log.error("the %s webhook is not keeping up; an item was dropped", self._what)

    def _loop(self) -> None:
        # The standard library only: webhooks must work in a server installed without test tools.
        context = ssl.create_default_context(cafile=self._ca) if self._url.startswith("https") else None
        while True:
            item = self._outbox.get()
            if item is None:
                return
            body = orjson.dumps(item)
            for attempt in range(5):
                request = urllib.request.Request(self._url, data=body, method="POST",
                                                 headers={"Content-Type": "application/json"})
                try:
                    with urllib.request.urlopen(request, timeout=10, context=context) as response:
                        if response.status < 300:
                            break
                        log.warning("%s webhook answered %d (attempt %d)", self._what, response.status, attempt + 1)
                except (urllib.error.URLError, OSError) as exc:
                    log.warning("%s webhook failed (attempt %d): %s", self._what, attempt + 1,
                                exc.__class__.__name__)
                time.sleep(min(30.0, 0.5 * 2 ** attempt))

    def close(self) -> None:
        self._outbox.put(None)
        self._thread.join(timeout=5)
