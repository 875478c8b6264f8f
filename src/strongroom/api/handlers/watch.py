"""`/_strongroom/audit` (and `_verify`), `alerts`, `blocks`, `usage`, `canaries`, `exposure`."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from . import Call

AUDIT_PARAMS = ("identity", "action", "index", "outcome", "doc_id", "since", "until", "size")
ALERT_PARAMS = ("kind", "identity", "since", "size")


async def audit(call: Call) -> Response:
    p = call.params
    records = call.session.watch().audit(identity=p.str("identity"), action=p.str("action"), index=p.str("index"),
                                         outcome=p.str("outcome"), doc_id=p.str("doc_id"), since_ms=p.int("since"),
                                         until_ms=p.int("until"), size=p.int("size"))
    return call.json({"records": records, "total": len(records)})


async def verify_audit(call: Call) -> Response:
    # Waits (a bounded time) for a verification running in a thread: off the event loop.
    return call.json(await run_in_threadpool(call.session.watch().verify_audit))


async def alerts(call: Call) -> Response:
    p = call.params
    found = call.session.watch().alerts(kind=p.str("kind"), identity=p.str("identity"), since_ms=p.int("since"),
                                        size=p.int("size"))
    return call.json({"alerts": found, "total": len(found)})


async def blocks(call: Call) -> Response:
    return call.json({"blocks": call.session.watch().blocks()})


async def block(call: Call) -> Response:
    body = call.json_body() or {}
    if not isinstance(body, dict):
        body = {"reason": None}
    call.session.watch().block(call.path["id"], body.get("reason"), body.get("seconds"))
    return call.json({"acknowledged": True})


async def unblock(call: Call) -> Response:
    return call.json({"acknowledged": True, "found": call.session.watch().unblock(call.path["id"])})


async def usage(call: Call) -> Response:
    return call.json(call.session.watch().usage())


async def plant_canaries(call: Call) -> Response:
    body = call.json_body() or {}
    if not isinstance(body, dict):
        body = {"count": None}
    return call.json(await call.session.plant_canaries(call.path["index"], body.get("count", 1), body.get("owner")))


async def exposure(call: Call) -> Response:
    body = call.json_body(required=True)
    rows = body.get("rows") if isinstance(body, dict) else None
    return call.json(await call.session.exposure(call.path["index"], rows))
