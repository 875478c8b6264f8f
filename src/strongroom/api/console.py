"""The web console under `/_console/`: login, logout, the page shell and its static files.

Reached from the dispatcher (app.py) through the same `Exchange` as every request, so each
console request is authenticated, admitted and audited like any other. The console's pages hold
no data: their JavaScript calls the REST API with the session cookie (security/console.py), so
roles, masks, budgets, canaries and the audit apply unchanged.

Public, and revealing nothing: the login page, `POST /_console/login` and the static files (JS and
CSS, from a fixed list read from the package at start). Every other console page needs a live
session and otherwise redirects to the login page. Every console response carries a strict
Content-Security-Policy (no inline script or style, nothing from another origin).
"""

from __future__ import annotations

import re
from importlib import resources

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..errors import AuthenticationError, MethodNotAllowedError, NotFoundError, RequestError
from ..security.console import (COOKIE, CONSOLE_HEADER, CSRF_HEADER, ConsoleClaim, ConsoleSessionError,
                                check_request_origin)
from ..security.exfil import Exchange
from .wire import json_response, parse_json_body, read_body

PREFIX = "/_console"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# Pages of the shell (one HTML document; the JavaScript draws the page named by the path).
PAGES = frozenset({"", "search", "record", "alerts", "audit", "users", "roles", "keys", "charts"})
STATIC_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\.(js|css)$")
STATIC_TYPES = {"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8"}
STATIC_CACHE = "private, max-age=300"  # the modules of one page load are fetched once, not per navigation
MAX_LOGIN_BODY = 8192
LOGIN_FAILED = "invalid username or password"  # one message for every failure


def load_assets() -> tuple[dict[str, bytes], dict[str, tuple[bytes, str]]]:
    """(pages by name, static files by name → (bytes, media type)), read once from the package."""
    root = resources.files("strongroom.console")
    pages = {name: (root / f"{name}.html").read_bytes() for name in ("shell", "login")}
    static: dict[str, tuple[bytes, str]] = {}
    for entry in (root / "static").iterdir():
        match = STATIC_NAME.fullmatch(entry.name)
        if match and entry.is_file():
            static[entry.name] = (entry.read_bytes(), STATIC_TYPES[match.group(1)])
    return pages, static


def is_console_path(raw_path: str) -> bool:
    return raw_path == PREFIX or raw_path.startswith(PREFIX + "/")


def claim_of(request: Request) -> ConsoleClaim | None:
    """The console credential a request presents (None without the cookie)."""
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        return None
    return ConsoleClaim(cookie=cookie, csrf=request.headers.get(CSRF_HEADER),
                        origin=request.headers.get("origin"), own_origin=own_origin(request),
                        fetch_site=request.headers.get("sec-fetch-site"),
                        background=request.headers.get(CONSOLE_HEADER) == "background")


def own_origin(request: Request) -> str | None:
    host = request.headers.get("host")
    return f"{request.scope.get('scheme', 'http')}://{host}" if host else None  # request.url.scheme, unbuilt


def no_basic_dialog(request: Request, response: Response) -> None:
    """The console's own calls (header `X-Strongroom-Console`) get their 401 without `WWW-Authenticate`:
    a browser that offered its Basic dialog would then send the password by itself on every request to
    this origin, cross-site ones included, which no CSRF token protects."""
    if response.status_code == 401 and request.headers.get(CONSOLE_HEADER) \
            and "www-authenticate" in response.headers:
        del response.headers["www-authenticate"]


def with_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        if name != "Cache-Control" or "cache-control" not in response.headers:  # static files set their own
            response.headers[name] = value
    return response


class Console:
    def __init__(self) -> None:
        self.pages, self.static = load_assets()

    async def serve(self, request: Request, exchange: Exchange, raw_path: str) -> Response:
        """Answers one `/_console…` request; StrongroomError for the dispatcher to turn into an answer."""
        rest = raw_path[len(PREFIX) + 1:]  # exact names only: "static/app.js/" is not "static/app.js"
        method = request.method
        if rest in PAGES or rest in ("login", "logout", "session"):
            exchange.route(f"{PREFIX}/{rest}", {}, {}, b"")  # the audit's action (bodies are never recorded)
        if rest.startswith("static/"):
            exchange.route(PREFIX + "/static/{file}", {}, {}, b"")
            self._allow(method, ("GET", "HEAD"), request)
            found = self.static.get(rest[len("static/"):])
            if found is None:  # only names from the fixed list: no listing, no path, no traversal
                raise NotFoundError("no such console file")
            body, media = found
            response = self._bytes(request, body, media)
            response.headers["Cache-Control"] = STATIC_CACHE
            return response
        if rest == "login":
            if method == "POST":
                return await self._login(request, exchange)
            self._allow(method, ("GET", "HEAD", "POST"), request)
            return self._bytes(request, self.pages["login"], "text/html; charset=utf-8")
        if rest == "logout":
            self._allow(method, ("POST",), request)
            claim = self._claim(request)
            await exchange.open(None, None, console=claim)  # 401 without a session; CSRF checked
            exchange.logout(claim.cookie)
            response = json_response(request, {"acknowledged": True})
            expire_cookie(response)
            return response
        if rest == "session":
            self._allow(method, ("GET",), request)
            await exchange.open(None, None, console=self._claim(request))
            session = exchange.console
            if session is None:  # an Authorization header was sent instead: no console session
                raise AuthenticationError("no console session")
            principal = exchange.principal
            return json_response(request, {"user": principal.name, "roles": list(principal.roles),
                                           "csrf_token": session.csrf, "csrf_header": CSRF_HEADER,
                                           "idle_timeout_seconds": int(session.idle_seconds)})
        if rest in PAGES:
            self._allow(method, ("GET", "HEAD"), request)
            try:
                await exchange.open(None, None, console=claim_of(request))
            except AuthenticationError:
                return RedirectResponse(PREFIX + "/login", status_code=303)
            if exchange.console is None:
                return RedirectResponse(PREFIX + "/login", status_code=303)
            return self._bytes(request, self.pages["shell"], "text/html; charset=utf-8")
        raise NotFoundError("no such console page")

    async def _login(self, request: Request, exchange: Exchange) -> Response:
        check_request_origin(ConsoleClaim(cookie=None, origin=request.headers.get("origin"),
                                          own_origin=own_origin(request),
                                          fetch_site=request.headers.get("sec-fetch-site")))
        body = parse_json_body(await read_body(request, MAX_LOGIN_BODY), required=True)
        user, password = body.get("username"), body.get("password")
        if not isinstance(user, str) or not isinstance(password, str) or not user or not password:
            raise RequestError("[username] and [password] must be non-empty strings")
        exchange.logout(request.cookies.get(COOKIE))  # a new login ends the session the browser held
        try:
            token = await exchange.login(user, password)
        except AuthenticationError:
            raise LoginFailed() from None
        response = json_response(request, {"acknowledged": True, "user": exchange.principal.name})
        response.set_cookie(COOKIE, token, path="/", secure=True, httponly=True, samesite="strict")
        return response

    @staticmethod
    def _claim(request: Request) -> ConsoleClaim:
        claim = claim_of(request)
        if claim is None:
            raise ConsoleSessionError()  # a 401 without WWW-Authenticate: no Basic dialog in the browser
        return claim

    @staticmethod
    def _allow(method: str, allowed: tuple[str, ...], request: Request) -> None:
        if method not in allowed:
            raise MethodNotAllowedError(method, request.url.path, list(allowed))

    @staticmethod
    def _bytes(request: Request, body: bytes, media: str) -> Response:
        if request.method == "HEAD":
            return Response(b"", headers={"content-length": str(len(body))}, media_type=media)
        return Response(body, media_type=media)


class LoginFailed(AuthenticationError):
    """Unknown user, wrong password, disabled user: one answer, and no Basic dialog."""

    def __init__(self) -> None:
        super().__init__(LOGIN_FAILED)

    def headers(self) -> dict[str, str]:
        return {}


def expire_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="strict")
