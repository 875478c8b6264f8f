"""The ASGI application: one dispatcher in front of every route.

Order for every request, whatever the path: authenticate (401 before anything else is revealed,
even whether a route exists) → match the route (400 unknown, 405 wrong method) → check URL
parameters → read the bounded body → run the handler with the session the gate returned.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..errors import AuditUnavailableError, MethodNotAllowedError, NoHandlerError, StrongroomError
from ..security.exfil import Exchange
from ..security.gate import Gate
from ..security.console import ConsoleClaim, check_request_origin
from .console import Console, claim_of, is_console_path, no_basic_dialog, own_origin, with_headers
from .handlers import Call, bulk, cluster, documents, indices, search, security, snapshots, watch
from .router import Router
from .wire import ApiRequest, Params, error_response, internal_error, read_body, url_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApiLimits:
    max_body_bytes: int = 100 * 1024 * 1024  # Elasticsearch's http.max_content_length


def build_router() -> Router:
    r = Router()
    get_head = ["GET", "HEAD"]
    r.add(get_head, ["/"], cluster.root)
    r.add(["GET"], ["/_cluster/health", "/_cluster/health/{index}"], cluster.health, params=cluster.HEALTH_PARAMS)
    r.add(["GET"], ["/_cat/indices", "/_cat/indices/{index}"], cluster.cat_indices, params=cluster.CAT_PARAMS)
    r.add(["GET"], ["/_cat/count", "/_cat/count/{index}"], cluster.cat_count, params=cluster.CAT_PARAMS)
    r.add(["GET"], ["/_strongroom/doctor"], cluster.doctor)
    r.add(["GET", "POST"], ["/_strongroom/keys/{index}/_rotate"], indices.rotate_keys, params=("reseal_only",))
    w = watch
    r.add(["GET"], ["/_strongroom/audit"], w.audit, params=w.AUDIT_PARAMS)
    r.add(["GET"], ["/_strongroom/audit/_verify"], w.verify_audit)
    r.add(["GET"], ["/_strongroom/alerts"], w.alerts, params=w.ALERT_PARAMS)
    r.add(["GET"], ["/_strongroom/blocks"], w.blocks)
    r.add(["PUT", "POST"], ["/_strongroom/blocks/{id}"], w.block, body=True)
    r.add(["DELETE"], ["/_strongroom/blocks/{id}"], w.unblock)
    r.add(["GET"], ["/_strongroom/usage"], w.usage)
    r.add(["POST"], ["/_strongroom/reveal/{index}/{id}"], documents.reveal, body=True, params=("routing",))
    r.add(["POST"], ["/_strongroom/canaries/{index}"], w.plant_canaries, body=True)
    r.add(["POST"], ["/_strongroom/exposure/{index}"], w.exposure, body=True)

    s = snapshots
    r.add(["PUT", "POST"], ["/_snapshot/{repository}"], s.put_repository, params=s.REPOSITORY_PARAMS, body=True)
    r.add(["GET"], ["/_snapshot", "/_snapshot/{repository}"], s.get_repository, params=s.REPOSITORY_PARAMS)
    r.add(["DELETE"], ["/_snapshot/{repository}"], s.delete_repository, params=s.REPOSITORY_PARAMS)
    r.add(["POST"], ["/_snapshot/{repository}/_verify"], s.verify_repository, params=s.COMMON)
    r.add(["POST"], ["/_snapshot/{repository}/_cleanup"], s.cleanup_repository, params=s.COMMON)
    r.add(["PUT", "POST"], ["/_snapshot/{repository}/{snapshot}"], s.create, params=s.CREATE_PARAMS, body=True)
    r.add(["GET"], ["/_snapshot/{repository}/{snapshot}"], s.get, params=s.GET_PARAMS)
    r.add(["DELETE"], ["/_snapshot/{repository}/{snapshot}"], s.delete, params=s.DELETE_PARAMS)
    r.add(["GET"], ["/_snapshot/_status", "/_snapshot/{repository}/_status", "/_snapshot/{repository}/{snapshot}/_status"],
          s.status, params=(*s.COMMON, "ignore_unavailable"))
    r.add(["POST"], ["/_snapshot/{repository}/{snapshot}/_restore"], s.restore, params=s.CREATE_PARAMS, body=True)

    r.add(["PUT"], ["/{index}"], indices.create, params=indices.INDEX_PARAMS, body=True)
    r.add(["DELETE"], ["/{index}"], indices.delete, params=indices.INDEX_PARAMS)
    r.add(["HEAD"], ["/{index}"], indices.exists, params=indices.INDEX_PARAMS)
    r.add(["GET"], ["/{index}"], indices.get, params=indices.INDEX_PARAMS)
    r.add(["GET"], ["/_mapping", "/{index}/_mapping"], indices.get_mapping, params=indices.INDEX_PARAMS)
    r.add(["PUT", "POST"], ["/{index}/_mapping"], indices.put_mapping, params=indices.INDEX_PARAMS, body=True)
    r.add(["GET"], ["/_settings", "/{index}/_settings"], indices.get_settings, params=indices.INDEX_PARAMS)
    r.add(["PUT"], ["/_settings", "/{index}/_settings"], indices.put_settings, params=indices.INDEX_PARAMS, body=True)
    r.add(["GET", "POST"], ["/_refresh", "/{index}/_refresh"], indices.refresh, params=indices.INDEX_PARAMS)
    r.add(["GET", "POST"], ["/_count", "/{index}/_count"], indices.count,
          params=(*indices.INDEX_PARAMS, "q", "df", "default_operator", "analyzer", "lenient", "analyze_wildcard",
                  "preference", "routing"), body=True)
    r.add(["GET"], ["/_stats", "/{index}/_stats"], indices.stats, params=indices.INDEX_PARAMS)

    r.add(["PUT", "POST"], ["/{index}/_doc/{id}"], documents.index_doc,
          params=(*documents.WRITE_PARAMS, "op_type", "pipeline"), body=True)
    r.add(["POST"], ["/{index}/_doc"], documents.index_doc,
          params=(*documents.WRITE_PARAMS, "op_type", "pipeline"), body=True)
    r.add(["PUT", "POST"], ["/{index}/_create/{id}"], documents.create_doc,
          params=(*documents.WRITE_PARAMS, "pipeline"), body=True)
    r.add(get_head, ["/{index}/_doc/{id}"], documents.get_doc, params=documents.GET_PARAMS)
    r.add(get_head, ["/{index}/_source/{id}"], documents.get_source, params=documents.GET_PARAMS)
    r.add(["DELETE"], ["/{index}/_doc/{id}"], documents.delete_doc, params=documents.WRITE_PARAMS)
    r.add(["POST"], ["/{index}/_update/{id}"], documents.update_doc,
          params=(*documents.WRITE_PARAMS, "retry_on_conflict", "_source", "_source_includes", "_source_excludes",
                  "lang"), body=True)
    r.add(["GET", "POST"], ["/_mget", "/{index}/_mget"], documents.mget,
          params=("routing", "realtime", "refresh", "_source", "_source_includes", "_source_excludes",
                  "preference", "stored_fields"), body=True)
    r.add(["POST", "PUT"], ["/_bulk", "/{index}/_bulk"], bulk.bulk, params=bulk.BULK_PARAMS, body=True)
    r.add(["GET", "POST"], ["/_search", "/{index}/_search"], search.search, params=search.SEARCH_ROUTE_PARAMS,
          body=True)
    r.add(["GET", "POST"], ["/_analyze", "/{index}/_analyze"], search.analyze, params=search.ANALYZE_PARAMS,
          body=True)
    r.add(["GET", "POST"], ["/_search/scroll", "/_search/scroll/{scroll_id}"], search.scroll,
          params=search.SCROLL_PARAMS, body=True)
    r.add(["DELETE"], ["/_search/scroll", "/_search/scroll/{scroll_id}"], search.clear_scroll,
          params=search.SCROLL_PARAMS, body=True)
    r.add(["POST"], ["/{index}/_pit"], search.open_pit, params=search.PIT_PARAMS)
    r.add(["DELETE"], ["/_pit"], search.close_pit, body=True)
    r.add(["GET", "POST"], ["/_msearch", "/{index}/_msearch"], search.msearch, params=search.MSEARCH_PARAMS,
          body=True)
    r.add(["GET", "POST"], ["/{index}/_explain/{id}"], search.explain, params=search.EXPLAIN_PARAMS, body=True)
    r.add(["POST"], ["/{index}/_delete_by_query"], search.delete_by_query, params=search.BY_QUERY_PARAMS, body=True)
    r.add(["POST"], ["/{index}/_update_by_query"], search.update_by_query, params=search.BY_QUERY_PARAMS, body=True)

    # _security: path parameters are `{id}` (the router's examples), whatever Elasticsearch names them.
    put_post = ["PUT", "POST"]
    r.add(["GET"], ["/_security/_authenticate"], security.authenticate)
    r.add(put_post, ["/_security/user/{id}"], security.put_user, params=security.WRITE_PARAMS, body=True)
    r.add(["GET"], ["/_security/user", "/_security/user/{id}"], security.get_user, params=security.GET_USER_PARAMS)
    r.add(["DELETE"], ["/_security/user/{id}"], security.delete_user, params=security.WRITE_PARAMS)
    r.add(put_post, ["/_security/user/_password", "/_security/user/{id}/_password"], security.change_password,
          params=security.WRITE_PARAMS, body=True)
    r.add(put_post, ["/_security/user/{id}/_enable"], security.enable_user, params=security.WRITE_PARAMS)
    r.add(put_post, ["/_security/user/{id}/_disable"], security.disable_user, params=security.WRITE_PARAMS)
    r.add(put_post, ["/_security/role/{id}"], security.put_role, params=security.WRITE_PARAMS, body=True)
    r.add(["GET"], ["/_security/role", "/_security/role/{id}"], security.get_role)
    r.add(["DELETE"], ["/_security/role/{id}"], security.delete_role, params=security.WRITE_PARAMS)
    r.add(put_post, ["/_security/api_key"], security.create_api_key, params=security.WRITE_PARAMS, body=True)
    r.add(["GET"], ["/_security/api_key"], security.get_api_key, params=security.GET_API_KEY_PARAMS)
    r.add(["DELETE"], ["/_security/api_key"], security.invalidate_api_key, body=True)
    return r


class App:
    """The ASGI application: each HTTP request goes straight to the dispatcher, which does the routing
    (Router) and answers every error itself; no framework router or middleware sits in between.
    Lifespan events are acknowledged; a WebSocket is closed (there is none to serve)."""

    def __init__(self, dispatch: Any, router: Router) -> None:
        self._dispatch = dispatch
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            request = ApiRequest(scope, receive, send)
            try:
                response = await self._dispatch(request)
            except Exception as exc:  # noqa: BLE001 - the dispatcher answers errors; this is its last resort
                response = internal_error(request, exc, "(dispatch)")
            try:
                await response(scope, receive, send)
            finally:  # what the dispatcher left for after the response (the dump detector), even if sending failed
                if request.after is not None:
                    request.after()
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        else:
            await send({"type": "websocket.close", "code": 1000})


def build_app(gate: Gate, limits: ApiLimits | None = None) -> App:
    limits = limits or ApiLimits()
    router = build_router()
    console = Console()  # the web console under /_console/ (console.py), through the same exchange

    async def dispatch(request: ApiRequest) -> Response:
        client = request.client.host if request.client else "unknown"
        path = url_path(request)
        exchange = gate.exchange(request.method, path, client)
        response, failure = await serve(request, exchange, path)
        if is_console_path(path) or claim_of(request) is not None:
            with_headers(response)  # CSP, nosniff, no-store: console pages and every answer to the console
        no_basic_dialog(request, response)
        try:
            # The audit record is written before the response leaves; if it cannot be, a 503 leaves instead.
            exchange.close(response.status_code, failure)
            request.after = exchange.detect
        except AuditUnavailableError as error:
            return error_response(request, error)
        except Exception as exc:  # noqa: BLE001 - closing must not turn into an unaudited answer
            return internal_error(request, exc, "(audit)")
        return response

    async def serve(request: Request, exchange: Exchange, path: str) -> tuple[Response, StrongroomError | None]:
        route = None
        try:
            raw_path = request.scope.get("raw_path", path.encode()).decode("latin-1").split("?", 1)[0]
            if is_console_path(raw_path):
                return await console.serve(request, exchange, raw_path), None
            if request.method not in ("GET", "HEAD"):
                # A browser's cross-site request (a form posted by another site) never reaches a handler,
                # whatever credential the browser would attach (a cached Basic password): clients
                # such as the official ones send neither header.
                origin, fetch_site = request.headers.get("origin"), request.headers.get("sec-fetch-site")
                if origin is not None or fetch_site is not None:
                    check_request_origin(ConsoleClaim(cookie=None, origin=origin, own_origin=own_origin(request),
                                                      fetch_site=fetch_site))
            session = await exchange.open(request.headers.get("authorization"),
                                          request.headers.get("x-strongroom-purpose"), console=claim_of(request))
            route, path_params, allowed = router.resolve(request.method, raw_path)
            if route is None:
                if allowed:
                    raise MethodNotAllowedError(request.method, path, allowed)
                raise NoHandlerError(request.method, path)
            params = Params(request, route.params)
            body = await read_body(request, limits.max_body_bytes) if route.body else b""
            call = Call(request, session, path_params, params, body)
            try:
                return await route.handler(call), None
            finally:  # what the audit and the detector learn of the request, from the body already parsed
                exchange.route(route.pattern, path_params, dict(request.query_params), body, call.parsed)
        except StrongroomError as error:
            return error_response(request, error), error
        except Exception as exc:  # noqa: BLE001 - the last line of defence: log, answer 500, keep serving.
            return internal_error(request, exc, route.pattern if route else "(unmatched route)"), None
        except BaseException as exc:
            # pyo3 turns a Rust panic into PanicException, which derives from BaseException.
            if type(exc).__name__ == "PanicException":
                return internal_error(request, exc, route.pattern if route else "(unmatched route)"), None
            raise

    return App(dispatch, router)
