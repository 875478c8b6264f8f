"""The watchers' API for one calling principal: the audit trail, alerts, blocks, and one's own usage.

Who may do what: reading the audit trail and the alerts needs the cluster privilege `read_audit`
(or `manage_security`); blocking and unblocking identities needs `manage_security`. Anyone
authenticated may read their own limits and what is left of their budgets.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any

from ..errors import IllegalArgumentError
from . import policy as actions
from .exfil import Guard, identity_of
from .policy import Policy
from .users import Principal

MAX_SIZE = 1000
VERIFY_WAIT_SECONDS = 2.0  # a request waits at most this long for a verification of the whole chain
VERIFY_REUSE_SECONDS = 30.0  # a verification younger than this is reported again instead of re-run


def _size(size: int | None) -> int:
    if size is None:
        return 100
    if not 0 < size <= MAX_SIZE:
        raise IllegalArgumentError(f"[size] must be between 1 and {MAX_SIZE}")
    return size


class Watch:
    def __init__(self, principal: Principal, policy: Policy, guard: Guard) -> None:
        self.principal = principal
        self.__policy = policy
        self.__guard = guard

    def _need(self, part: Any, what: str) -> Any:
        if part is None:
            raise IllegalArgumentError(f"{what} is not running on this node")
        return part

    def audit(self, *, identity: str | None = None, action: str | None = None, index: str | None = None,
              outcome: str | None = None, doc_id: str | None = None, since_ms: int | None = None,
              until_ms: int | None = None, size: int | None = None) -> list[dict[str, Any]]:
        self.__policy.authorize_cluster(self.principal, actions.AUDIT_READ)
        audit = self._need(self.__guard.audit, "the audit log")
        return audit.search(identity=identity, action=action, index=index, outcome=outcome, doc_id=doc_id,
                            since_ms=since_ms, until_ms=until_ms, size=_size(size))

    def verify_audit(self) -> dict[str, Any]:
        """The audit chain's verification (as `strongroom audit verify`), bounded in time: one run at a
        time, in the background; the answer is the newest finished run, with when it finished, and
        whether a newer one is still running (a large log takes longer than a request should)."""
        self.__policy.authorize_cluster(self.principal, actions.AUDIT_READ)
        audit = self._need(self.__guard.audit, "the audit log")
        return _verifier(audit).status()

    def alerts(self, *, kind: str | None = None, identity: str | None = None, since_ms: int | None = None,
               size: int | None = None) -> list[dict[str, Any]]:
        self.__policy.authorize_cluster(self.principal, actions.ALERTS_READ)
        alerts = self._need(self.__guard.alerts, "alerting")
        return alerts.list(kind=kind, identity=identity, since_ms=since_ms, size=_size(size))

    def blocks(self) -> list[dict[str, Any]]:
        self.__policy.authorize_cluster(self.principal, actions.ALERTS_READ)
        return self._need(self.__guard.budgets, "the budgets").blocks()

    def block(self, identity: str, reason: Any, seconds: Any) -> None:
        self.__policy.authorize_cluster(self.principal, actions.ALERTS_MANAGE)
        if not isinstance(reason, str) or not reason.strip():
            raise IllegalArgumentError("[reason] must be a non-empty string")
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float))
                                    or seconds <= 0):
            raise IllegalArgumentError("[seconds] must be a positive number (or absent: until unblocked)")
        self._need(self.__guard.budgets, "the budgets").block(identity, f"blocked by [{self.principal.name}]: "
                                                                        f"{reason.strip()}", seconds)

    def unblock(self, identity: str) -> bool:
        self.__policy.authorize_cluster(self.principal, actions.ALERTS_MANAGE)
        return self._need(self.__guard.budgets, "the budgets").unblock(identity)

    def usage(self) -> dict[str, Any]:
        """The caller's own limits and budgets (no privilege needed: it is about oneself)."""
        identity = identity_of(self.principal)
        limits_of = getattr(self.__policy, "limits_of", None)
        limits = limits_of(self.principal) if limits_of is not None else None
        out: dict[str, Any] = {"identity": identity, "limits": limits.to_json() if limits is not None else None}
        if limits is not None and self.__guard.budgets is not None:
            out["usage"] = self.__guard.budgets.usage(identity, limits)
        return out


class _Verifier:
    """Runs `audit.verify` over one log in a worker thread and keeps the last report."""

    def __init__(self, audit: Any) -> None:
        self._audit = audit
        self._lock = threading.Lock()
        self._last: dict[str, Any] | None = None
        self._finished = 0.0  # monotonic time of the last run's end
        self._thread: threading.Thread | None = None

    def status(self) -> dict[str, Any]:
        with self._lock:
            fresh = self._last is not None and time.monotonic() - self._finished < VERIFY_REUSE_SECONDS
            if not fresh and self._thread is None:
                self._thread = threading.Thread(target=self._run, name="audit-verify", daemon=True)
                self._thread.start()
            thread = self._thread
        if thread is not None:
            thread.join(VERIFY_WAIT_SECONDS)
        with self._lock:
            out = dict(self._last) if self._last is not None else {"ok": None, "state": "running"}
            out["running"] = self._thread is not None
            return out

    def _run(self) -> None:
        from .audit import verify
        started = time.time()
        try:
            report = verify(self._audit.directory, self._audit.public_key)
            result: dict[str, Any] = {
                "ok": report.ok, "state": "verified" if report.ok else "broken", "records": report.records,
                "last_seq": report.last_seq, "checkpoints": report.checkpoints,
                "last_checkpoint_seq": report.last_checkpoint_seq, "bad_seq": report.bad_seq,
                "reason": report.reason}
        except Exception as exc:  # noqa: BLE001 - reported, not raised: the page shows it
            result = {"ok": False, "state": "error", "reason": type(exc).__name__}
        result["verified_at_ms"] = int(time.time() * 1000)
        result["took_ms"] = int((time.time() - started) * 1000)
        with self._lock:
            self._last = result
            self._finished = time.monotonic()
            self._thread = None


_VERIFIERS: "weakref.WeakKeyDictionary[Any, _Verifier]" = weakref.WeakKeyDictionary()
_VERIFIERS_LOCK = threading.Lock()


def _verifier(audit: Any) -> _Verifier:
    with _VERIFIERS_LOCK:
        found = _VERIFIERS.get(audit)
        if found is None:
            found = _VERIFIERS[audit] = _Verifier(audit)
        return found
