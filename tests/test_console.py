"""The web console's security, over HTTP against a live server (and the session store on its own).

Without a session every console page redirects to the login page and shows nothing; the session
cookie is Secure, HttpOnly and SameSite=Strict; a cookie-authenticated state-changing request needs
the session's CSRF token and the server's own origin; every console answer carries the strict CSP;
static files come only from a fixed list (no listing, no traversal); a console request is the
same audited, policy-bound request as any other (roles, masks, audit record with auth "console").
"""

from __future__ import annotations

import base64
import re
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest

from live import LiveServer, start_server
from strongroom.errors import AuthenticationError
from strongroom.security.console import (ConsoleClaim, ConsoleSessionError, ConsoleSessions, CsrfError)
from strongroom.security.users import Principal

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'")
PAGES = ["/_console/", "/_console", "/_console/search", "/_console/record?id=r1", "/_console/alerts",
         "/_console/audit", "/_console/users", "/_console/roles", "/_console/keys", "/_console/charts"]
STATIC = ["app.js", "api.js", "dom.js", "i18n.js", "login.js", "search.js", "record.js", "alerts.js",
          "audit.js", "admin.js", "charts.js", "console.css"]
ANALYST_PASSWORD = "analyst-console-passphrase-2026"


# -- the session store, on its own -------------------------------------------------------------
@dataclass
class FakeUser:
    name: str
    roles: list[str]
    password_hash: str = "$argon2id$one"
    enabled: bool = True
    metadata: dict = None  # type: ignore[assignment]


class FakeUsers:
    def __init__(self) -> None:
        self.users = {"ann": FakeUser("ann", ["investigator"], metadata={})}

    def get_user(self, name: str) -> FakeUser | None:
        return self.users.get(name)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def store(idle: float = 900, lifetime: float = 8 * 3600) -> tuple[ConsoleSessions, FakeUsers, Clock]:
    users, clock = FakeUsers(), Clock()
    return ConsoleSessions(users, idle_seconds=idle, lifetime_seconds=lifetime, clock=clock), users, clock


ANN = Principal("ann", ("investigator",))


def test_the_store_keeps_only_a_hash_of_the_token() -> None:
    sessions, _users, _clock = store()
    token, session = sessions.create(ANN)
    assert len(base64.urlsafe_b64decode(token + "==")) == 32
    held = repr(sessions._sessions)  # noqa: SLF001 - the point of the test
    assert token not in held and token.encode() not in b"".join(sessions._sessions)  # noqa: SLF001
    principal, found = sessions.authenticate(ConsoleClaim(cookie=token), "GET")
    assert (principal.name, principal.roles, principal.auth) == ("ann", ("investigator",), "console")
    assert found is session


def test_idle_timeout() -> None:
    sessions, _users, clock = store(idle=900, lifetime=3600)
    token, _session = sessions.create(ANN)
    clock.now += 899
    sessions.authenticate(ConsoleClaim(cookie=token), "GET")  # activity restarts the idle clock
    clock.now += 899
    sessions.authenticate(ConsoleClaim(cookie=token), "GET")
    clock.now += 901
    with pytest.raises(ConsoleSessionError):
        sessions.authenticate(ConsoleClaim(cookie=token), "GET")


def test_background_polling_does_not_keep_a_session_alive() -> None:
    sessions, _users, clock = store(idle=900)
    token, _session = sessions.create(ANN)
    clock.now += 600
    sessions.authenticate(ConsoleClaim(cookie=token, background=True), "GET")  # valid, but not extended
    clock.now += 301  # 901 s after the user's last own request
    with pytest.raises(ConsoleSessionError):
        sessions.authenticate(ConsoleClaim(cookie=token, background=True), "GET")


def test_absolute_lifetime_even_when_busy() -> None:
    sessions, _users, clock = store(idle=900, lifetime=3600)
    token, _session = sessions.create(ANN)
    created = clock.now
    while clock.now + 800 - created <= 3600:
        clock.now += 800
        sessions.authenticate(ConsoleClaim(cookie=token), "GET")
    clock.now = created + 3601
    with pytest.raises(ConsoleSessionError):
        sessions.authenticate(ConsoleClaim(cookie=token), "GET")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_state_changing_requests_need_the_csrf_token(method: str) -> None:
    sessions, _users, _clock = store()
    token, session = sessions.create(ANN)
    for presented in (None, "", "wrong", session.csrf[:-1], session.csrf + "x"):
        with pytest.raises(CsrfError):
            sessions.authenticate(ConsoleClaim(cookie=token, csrf=presented), method)
    sessions.authenticate(ConsoleClaim(cookie=token, csrf=session.csrf), method)
    sessions.authenticate(ConsoleClaim(cookie=token), "GET")
    sessions.authenticate(ConsoleClaim(cookie=token), "HEAD")
    other, _ = sessions.create(ANN)  # another session's token is wrong too
    with pytest.raises(CsrfError):
        sessions.authenticate(ConsoleClaim(cookie=other, csrf=session.csrf), method)


@pytest.mark.parametrize("origin, site", [("https://evil.example", None), ("null", None),
                                          ("https://127.0.0.1:9200.evil.example", None),
                                          (None, "cross-site"), (None, "same-site")])
def test_another_origin_is_refused(origin: str | None, site: str | None) -> None:
    sessions, _users, _clock = store()
    token, session = sessions.create(ANN)
    claim = ConsoleClaim(cookie=token, csrf=session.csrf, origin=origin, own_origin="https://127.0.0.1:9200",
                         fetch_site=site)
    with pytest.raises(CsrfError):
        sessions.authenticate(claim, "POST")
    sessions.authenticate(replace(claim, origin="https://127.0.0.1:9200", fetch_site="same-origin"), "POST")


def test_a_disabled_deleted_or_repassworded_user_is_logged_out() -> None:
    for change in ("disable", "delete", "password"):
        sessions, users, _clock = store()
        token, _session = sessions.create(ANN)
        if change == "disable":
            users.users["ann"].enabled = False
        elif change == "delete":
            del users.users["ann"]
        else:
            users.users["ann"].password_hash = "$argon2id$two"
        with pytest.raises(ConsoleSessionError):
            sessions.authenticate(ConsoleClaim(cookie=token), "GET")
        users.users["ann"] = FakeUser("ann", ["investigator"], metadata={})
        with pytest.raises(ConsoleSessionError):  # and stays logged out
            sessions.authenticate(ConsoleClaim(cookie=token), "GET")


def test_roles_are_read_at_every_request() -> None:
    sessions, users, _clock = store()
    token, _session = sessions.create(ANN)
    users.users["ann"].roles = ["viewer"]
    principal, _ = sessions.authenticate(ConsoleClaim(cookie=token), "GET")
    assert principal.roles == ("viewer",)


def test_unknown_and_oversized_tokens_are_401_without_a_basic_dialog() -> None:
    sessions, _users, _clock = store()
    for token in ("nope", "x" * 5000, ""):
        with pytest.raises(ConsoleSessionError) as refused:
            sessions.authenticate(ConsoleClaim(cookie=token), "GET")
        assert isinstance(refused.value, AuthenticationError) and refused.value.status == 401
        assert "WWW-Authenticate" not in refused.value.headers()


def test_one_user_cannot_push_other_users_sessions_out() -> None:
    from strongroom.security.console import MAX_SESSIONS_PER_USER

    sessions, users, _clock = store()
    users.users["bob"] = FakeUser("bob", ["investigator"], metadata={})
    bob, _ = sessions.create(Principal("bob", ("investigator",)))
    tokens = [sessions.create(ANN)[0] for _ in range(MAX_SESSIONS_PER_USER * 3)]
    assert sessions.count() == MAX_SESSIONS_PER_USER + 1
    sessions.authenticate(ConsoleClaim(cookie=bob), "GET")
    sessions.authenticate(ConsoleClaim(cookie=tokens[-1]), "GET")
    with pytest.raises(ConsoleSessionError):  # ann's oldest went first
        sessions.authenticate(ConsoleClaim(cookie=tokens[0]), "GET")


def test_logout_drops_the_session() -> None:
    sessions, _users, _clock = store()
    token, _session = sessions.create(ANN)
    assert sessions.drop(token) and not sessions.drop(token)
    with pytest.raises(ConsoleSessionError):
        sessions.authenticate(ConsoleClaim(cookie=token), "GET")


# -- live --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("console")
    server = start_server(root / "data", root / "config", extra=["--demo", "20"])
    deadline = time.monotonic() + 120
    while "demo residents into index" not in server.log_text():
        assert time.monotonic() < deadline, server.log_text()
        time.sleep(0.1)
    with server.client() as es:
        es.security.put_role(name="masked_reader", body={"indices": [
            {"names": ["residents"], "privileges": ["read"], "masks": {"phone": "middle"}}]})
        es.security.put_user(username="analyst", password=ANALYST_PASSWORD, roles=["masked_reader"])
    yield server
    server.stop()


def client(server: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, verify=ssl.create_default_context(cafile=server.ca), timeout=30,
                        follow_redirects=False)


@dataclass
class Console:
    http: httpx.Client
    cookie: str
    csrf: str

    def headers(self, *, csrf: bool = True, **extra: str) -> dict[str, str]:
        out = {"Cookie": f"sr_console={self.cookie}", "Content-Type": "application/json", **extra}
        if csrf:
            out["X-CSRF-Token"] = self.csrf
        return out


def login(server: LiveServer, user: str = "admin", password: str | None = None) -> Console:
    http = client(server)
    answer = http.post("/_console/login", json={"username": user, "password": password or server.password})
    assert answer.status_code == 200, answer.text
    cookie = answer.cookies["sr_console"]
    http.cookies.clear()  # every request below names its cookie explicitly
    session = http.get("/_console/session", headers={"Cookie": f"sr_console={cookie}"})
    assert session.status_code == 200
    assert session.json()["user"] == user
    return Console(http, cookie, session.json()["csrf_token"])


def assert_console_headers(response: httpx.Response, cache: str = "no-store") -> None:
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == cache
    assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("cookie", [None, "not-a-session", "A" * 43])
@pytest.mark.parametrize("page", PAGES)
def test_pages_without_a_session_redirect_to_login_and_reveal_nothing(live: LiveServer, page: str,
                                                                      cookie: str | None) -> None:
    with client(live) as http:
        answer = http.get(page, headers={"Cookie": f"sr_console={cookie}"} if cookie else {})
    assert answer.status_code == 303 and answer.headers["location"] == "/_console/login"
    assert answer.content == b""
    assert_console_headers(answer)


def test_console_data_calls_without_a_session_are_401_without_a_basic_dialog(live: LiveServer) -> None:
    with client(live) as http:
        for path in ("/_console/session", "/residents/_search"):
            answer = http.get(path, headers={"Cookie": "sr_console=stale"})
            assert answer.status_code == 401
            assert "www-authenticate" not in answer.headers
            assert answer.json()["error"]["type"] == "security_exception"
            assert "residents" not in answer.text.replace("/residents/_search", "")


def test_the_login_page_is_public_and_bundles_everything(live: LiveServer) -> None:
    with client(live) as http:
        page = http.get("/_console/login")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert_console_headers(page)
        html = page.text
        assert "<script type=\"module\" src=\"/_console/static/login.js\"></script>" in html
        assert "<script>" not in html and "style=" not in html and "<style" not in html and "http" not in html
        for name in STATIC:
            answer = http.get(f"/_console/static/{name}")
            assert answer.status_code == 200, name
            assert_console_headers(answer, cache="private, max-age=300")
            media = "text/javascript" if name.endswith(".js") else "text/css"
            assert answer.headers["content-type"].startswith(media)
            body = answer.text
            # Nothing from elsewhere, nothing evaluated, no HTML built from data.
            assert "eval(" not in body and "new Function" not in body and "innerHTML" not in body, name
            assert "https://" not in body, name
            assert "http://" not in body.replace("http://www.w3.org/2000/svg", ""), name


@pytest.mark.parametrize("path", ["/_console/static/", "/_console/static", "/_console/static/nope.js",
                                  "/_console/static/../shell.html", "/_console/static/%2e%2e/shell.html",
                                  "/_console/static/..%2fshell.html", "/_console/static/%2e%2e%2f__init__.py",
                                  "/_console/static/....//login.html", "/_console/static/app.js/",
                                  "/_console/static/APP.JS", "/_console/static/app.js%00.css",
                                  "/_console/static/%2fetc%2fpasswd", "/_console/static/..%5c__init__.py",
                                  "/_console/shell.html", "/_console/login.html", "/_console/__init__.py",
                                  "/_console/static/app.js?x=/../../shell.html"])
def test_static_files_come_only_from_the_fixed_list(live: LiveServer, path: str) -> None:
    with client(live) as http:
        answer = http.get(path)
    if path == "/_console/static/app.js?x=/../../shell.html":  # the query is not part of the name
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/javascript")
        return
    assert answer.status_code in (303, 404), (path, answer.status_code)
    assert b"<html" not in answer.content and b"root:" not in answer.content
    assert b"import" not in answer.content
    assert_console_headers(answer)


def test_static_files_refuse_writes(live: LiveServer) -> None:
    with client(live) as http:
        assert http.post("/_console/static/app.js", content=b"x").status_code == 405
        assert http.delete("/_console/static/app.js").status_code == 405


def test_login_sets_a_secure_httponly_samesite_strict_cookie(live: LiveServer) -> None:
    with client(live) as http:
        answer = http.post("/_console/login", json={"username": "admin", "password": live.password})
    assert answer.status_code == 200
    assert_console_headers(answer)
    (cookie,) = answer.headers.get_list("set-cookie")
    parts = [p.strip().lower() for p in cookie.split(";")]
    name, _, token = cookie.split(";")[0].partition("=")
    assert name == "sr_console" and len(token) >= 43
    assert {"secure", "httponly", "samesite=strict", "path=/"} <= set(parts)
    assert not any(p.startswith(("expires", "max-age", "domain")) for p in parts)  # a browser-session cookie
    assert token not in answer.text  # the token only travels in the cookie


def test_failed_logins_read_alike_and_are_audited(live: LiveServer) -> None:
    with client(live) as http:
        wrong = http.post("/_console/login", json={"username": "admin", "password": "wrong-password-1234567"})
        ghost = http.post("/_console/login", json={"username": "ghost-x1",
                                                   "password": "wrong-password-1234567"})
        empty = http.post("/_console/login", json={"username": "", "password": ""})
        form = http.post("/_console/login", data={"username": "admin", "password": live.password})
    assert wrong.status_code == ghost.status_code == 401
    assert wrong.json() == ghost.json()
    assert wrong.json()["error"]["reason"] == "invalid username or password"
    assert "www-authenticate" not in wrong.headers and "set-cookie" not in wrong.headers
    assert empty.status_code == 400 and "set-cookie" not in empty.headers
    assert form.status_code == 406 and "set-cookie" not in form.headers  # JSON only, as the console sends
    with live.client() as es:
        records = es.perform_request("GET", "/_strongroom/audit",
                                     params={"action": "/_console/login", "size": 50},
                                     headers={"accept": "application/json"}).body["records"]
    refused = [r for r in records if r["status"] == 401]
    assert len(refused) >= 2 and all(r["identity"] is None and r["method"] == "POST" for r in refused)
    assert all("password" not in str(r) for r in records)


def test_login_from_another_origin_is_refused(live: LiveServer) -> None:
    with client(live) as http:
        answer = http.post("/_console/login", json={"username": "admin", "password": live.password},
                           headers={"Origin": "https://evil.example"})
    assert answer.status_code == 403 and "set-cookie" not in answer.headers


def test_the_cookie_authenticates_api_calls_and_the_audit_says_console(live: LiveServer) -> None:
    console = login(live)
    answer = console.http.post("/residents/_search", json={"query": {"match_all": {}}, "size": 1},
                               headers=console.headers(**{"X-Strongroom-Purpose": "CASE-console-1"}))
    assert answer.status_code == 200 and answer.json()["hits"]["hits"]
    assert_console_headers(answer)  # API answers to the console are not cached either
    with live.client() as es:
        records = es.perform_request("GET", "/_strongroom/audit",
                                     params={"action": "/{index}/_search", "size": 20},
                                     headers={"accept": "application/json"}).body["records"]
    mine = [r for r in records if r.get("purpose") == "CASE-console-1"]
    assert mine and mine[0]["auth"] == "console" and mine[0]["identity"] == "admin" and mine[0]["revealed"]


def test_api_answers_without_the_cookie_are_unchanged(live: LiveServer) -> None:
    with client(live) as http:
        answer = http.get("/", auth=("admin", live.password))
    assert answer.status_code == 200 and "content-security-policy" not in answer.headers


@pytest.mark.parametrize("method, path, body", [
    ("POST", "/residents/_search", {"query": {"match_all": {}}}),
    ("PUT", "/_strongroom/blocks/someone", {"reason": "x"}),
    ("DELETE", "/_strongroom/blocks/someone", None),
    ("PUT", "/_security/user/mallory", {"password": "mallory-password-123456", "roles": ["superuser"]}),
    ("POST", "/_console/logout", None),
])
def test_csrf_token_missing_or_wrong_is_403(live: LiveServer, method: str, path: str,
                                            body: dict | None) -> None:
    console = login(live)
    for headers in (console.headers(csrf=False), {**console.headers(csrf=False), "X-CSRF-Token": "forged"},
                    console.headers(Origin="https://evil.example"),
                    console.headers(**{"Sec-Fetch-Site": "cross-site"})):
        answer = console.http.request(method, path, json=body, headers=headers)
        assert answer.status_code == 403, (headers, answer.text)
        assert answer.json()["error"]["type"] == "security_exception"
        assert_console_headers(answer)
    with live.client() as es:
        assert "mallory" not in es.security.get_user().body
        assert es.perform_request("GET", "/_strongroom/blocks", headers={"accept": "application/json"}
                                  ).body["blocks"] == []
    assert console.http.get("/_console/session", headers=console.headers(csrf=False)).status_code == 200


def test_with_the_token_state_changing_calls_work(live: LiveServer) -> None:
    console = login(live)
    own = live.url  # the server's own origin is accepted
    answer = console.http.put("/_strongroom/blocks/someone-else", json={"reason": "test"},
                              headers=console.headers(Origin=own, **{"Sec-Fetch-Site": "same-origin"}))
    assert answer.status_code == 200, answer.text
    assert console.http.delete("/_strongroom/blocks/someone-else", headers=console.headers()).json()["found"]


def test_an_authorization_header_wins_over_the_cookie(live: LiveServer) -> None:
    console = login(live)
    answer = console.http.get("/_security/_authenticate", headers={
        **console.headers(), "Authorization": "Basic " + base64.b64encode(
            f"analyst:{ANALYST_PASSWORD}".encode()).decode()})
    assert answer.json()["username"] == "analyst"
    # and the session page needs the cookie itself
    with client(live) as http:
        assert http.get("/_console/session", auth=("admin", live.password)).status_code == 401


def test_logout_needs_csrf_ends_the_session_and_expires_the_cookie(live: LiveServer) -> None:
    console = login(live)
    assert console.http.post("/_console/logout", headers=console.headers(csrf=False)).status_code == 403
    answer = console.http.post("/_console/logout", headers=console.headers())
    assert answer.status_code == 200
    (cookie,) = answer.headers.get_list("set-cookie")
    assert cookie.startswith('sr_console=""') or cookie.startswith("sr_console=;")
    assert "max-age=0" in cookie.lower() and "secure" in cookie.lower() and "httponly" in cookie.lower()
    after = console.http.get("/_console/session", headers=console.headers())
    assert after.status_code == 401
    assert console.http.get("/_console/search", headers=console.headers()).status_code == 303
    assert console.http.post("/residents/_search", json={}, headers=console.headers()).status_code == 401


def test_the_session_page_gives_the_csrf_token_to_the_page_only(live: LiveServer) -> None:
    console = login(live)
    answer = console.http.get("/_console/session", headers=console.headers(csrf=False))
    body = answer.json()
    assert (body["user"], body["roles"], body["csrf_header"]) == ("admin", ["superuser"], "X-CSRF-Token")
    assert body["idle_timeout_seconds"] == 900 and body["csrf_token"] == console.csrf
    assert_console_headers(answer)
    page = console.http.get("/_console/search", headers=console.headers(csrf=False))
    assert page.status_code == 200 and console.csrf not in page.text  # no secret in the HTML
    assert "<script type=\"module\" src=\"/_console/static/app.js\"></script>" in page.text


def test_console_users_get_their_role_and_masks(live: LiveServer) -> None:
    console = login(live, "analyst", ANALYST_PASSWORD)
    answer = console.http.post("/residents/_search", json={"query": {"match_all": {}}, "size": 5},
                               headers=console.headers())
    phones = [hit["_source"]["phone"] for hit in answer.json()["hits"]["hits"]]
    assert phones and all(p[3:7] == "****" for p in phones)
    assert console.http.get("/_security/user", headers=console.headers()).status_code == 403
    assert console.http.get("/_strongroom/audit", headers=console.headers()).status_code == 403


def test_audit_verification_status(live: LiveServer) -> None:
    console = login(live)
    answer = console.http.get("/_strongroom/audit/_verify", headers=console.headers())
    report = answer.json()
    assert answer.status_code == 200 and report["ok"] is True and report["state"] == "verified", report
    assert report["records"] > 0 and isinstance(report["verified_at_ms"], int)
    analyst = login(live, "analyst", ANALYST_PASSWORD)
    assert analyst.http.get("/_strongroom/audit/_verify", headers=analyst.headers()).status_code == 403
    with client(live) as http:
        assert http.get("/_strongroom/audit/_verify").status_code == 401


def test_unknown_console_paths_and_methods(live: LiveServer) -> None:
    console = login(live)
    assert console.http.get("/_console/nope", headers=console.headers()).status_code == 404
    assert console.http.delete("/_console/search", headers=console.headers()).status_code == 405
    assert console.http.get("/_console/logout", headers=console.headers()).status_code == 405


def test_a_new_login_ends_the_session_the_browser_held(live: LiveServer) -> None:
    first = login(live)
    with client(live) as http:
        answer = http.post("/_console/login", json={"username": "admin", "password": live.password},
                           headers={"Cookie": f"sr_console={first.cookie}"})
        assert answer.status_code == 200
    assert first.http.get("/_console/session", headers=first.headers()).status_code == 401


def test_every_ui_text_exists_in_chinese_and_english() -> None:
    static = Path(__file__).parent.parent / "src" / "strongroom" / "console" / "static"
    source = (static / "i18n.js").read_text()
    en_block = source[source.index("  en: {"):source.index("  zh: {")]
    zh_block = source[source.index("  zh: {"):source.index("export function lang")]
    en = set(re.findall(r'"([a-z_]+(?:\.[a-z_]+)+)":', en_block))
    zh = set(re.findall(r'"([a-z_]+(?:\.[a-z_]+)+)":', zh_block))
    assert en and en == zh, (sorted(en - zh), sorted(zh - en))
    used = set()
    for path in static.glob("*.js"):
        used |= set(re.findall(r'\bt\("([a-z_]+(?:\.[a-z_]+)+)"', path.read_text()))
    for path in static.parent.glob("*.html"):
        used |= set(re.findall(r'data-i18n="([a-z_.]+)"', path.read_text()))
    assert used and used <= en, sorted(used - en)


def test_console_logins_share_the_login_backoff(live: LiveServer) -> None:
    user = f"slow-console-{time.monotonic_ns()}"
    timings = []
    with client(live) as http:
        for _ in range(5):
            started = time.monotonic()
            answer = http.post("/_console/login", json={"username": user,
                                                        "password": "wrong-password-again-1"})
            assert answer.status_code == 401
            timings.append(time.monotonic() - started)
        # and Basic authentication of the same user from the same address waits too
        started = time.monotonic()
        assert http.get("/", auth=(user, "wrong-password-again-1")).status_code == 401
        timings.append(time.monotonic() - started)
    # Three free failures, then 0.25 s, 0.5 s, 1 s of imposed delay on top of hashing.
    assert timings[4] >= 0.4 and timings[5] >= 0.9, timings


def test_a_blocked_identity_cannot_log_in(live: LiveServer) -> None:
    with live.client() as es:
        es.perform_request("PUT", "/_strongroom/blocks/analyst", body={"reason": "test", "seconds": 60},
                           headers={"content-type": "application/json", "accept": "application/json"})
        try:
            with client(live) as http:
                answer = http.post("/_console/login",
                                   json={"username": "analyst", "password": ANALYST_PASSWORD})
            assert answer.status_code == 429 and "set-cookie" not in answer.headers
        finally:
            es.perform_request("DELETE", "/_strongroom/blocks/analyst",
                               headers={"accept": "application/json"})
    login(live, "analyst", ANALYST_PASSWORD)


def test_the_consoles_own_calls_never_invite_a_basic_password_dialog(live: LiveServer) -> None:
    # A browser that showed its Basic dialog would afterwards send that password by itself, cross-site too.
    with client(live) as http:
        for path in ("/_console/session", "/residents/_search", "/_strongroom/usage"):
            answer = http.get(path, headers={"X-Strongroom-Console": "1"})
            assert answer.status_code == 401 and "www-authenticate" not in answer.headers, path
        assert http.post("/_console/logout").status_code == 401
        assert "www-authenticate" not in http.post("/_console/logout").headers
        # Other clients are answered as before.
        assert http.get("/residents/_search").headers["www-authenticate"].startswith("Basic")


def test_every_console_file_is_package_data() -> None:
    # An installed package must serve the console: every file of it matches the package-data globs.
    import fnmatch
    import tomllib

    root = Path(__file__).parent.parent
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "strongroom.console"]
    package = root / "src" / "strongroom" / "console"
    files = [p.relative_to(package).as_posix() for p in package.rglob("*")
             if p.is_file() and p.suffix != ".pyc" and p.name != "__init__.py"]
    assert files and all(any(fnmatch.fnmatch(f, g) for g in globs) for f in files), files


@pytest.mark.parametrize("headers", [{"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                                     {"Origin": "https://evil.example"}])
def test_cross_site_requests_are_refused_whatever_credential_the_browser_attaches(live: LiveServer,
                                                                                 headers: dict) -> None:
    # A browser that cached the administrator's Basic password sends it with a form another site posts:
    # refused before any handler runs (the user stays enabled); reads are not refused (CORS keeps their
    # answers from the other site), and clients that send neither header are unaffected.
    basic = {"Authorization": "Basic " + base64.b64encode(f"admin:{live.password}".encode()).decode()}
    with client(live) as http:
        refused = http.post("/_security/user/analyst/_disable", headers={**basic, **headers})
        assert refused.status_code == 403 and refused.json()["error"]["type"] == "security_exception"
        assert http.get("/_security/_authenticate", headers={**basic, **headers}).status_code == 200
    with live.client() as es:
        assert es.security.get_user(username="analyst").body["analyst"]["enabled"] is True
