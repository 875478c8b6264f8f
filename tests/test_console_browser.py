"""The web console in a real headless Chromium (Debian's `chromium`, driven by Playwright).

One scenario, in order, against a live server with a few demo residents: log in as admin; search
by a Chinese name, a national ID and a phone number; a resident whose fields hold HTML renders as
text; create a role with a phone mask and a user with it (through the admin pages); that user sees
masked phones and the budgets, types a purpose, reveals a phone in the results table (with that
purpose) and one on the record page (with a purpose of its own), and touches a canary; the alert
shows on the alerts page, where the identity is blocked and unblocked; the purpose, and the reveal
naming its field, show on the audit page, with the chain verified; charts and the language switch;
logging out kills the session cookie.

Screenshots of the main pages go to build/screenshots/ (not committed). Without /usr/bin/chromium
the test is skipped, unless STRONGROOM_REQUIRE_BROWSER=1 (CI), where it fails.
"""

from __future__ import annotations

import os
import re
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from live import LiveServer, start_server

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).parent.parent / "build" / "screenshots"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
DEMO = 12  # with the canary, every resident fits in one page of results
PASSWORD = "investigator-console-passphrase-2026"
PURPOSE = "CASE-2026-117"
REVEAL_PURPOSE = "TICKET-88-PHONE"
XSS_NAME = "<img src=x onerror=window.__xss=1>"
XSS_ADDRESS = "<script>window.__xss=2</script>"


def _browser_or_skip() -> Any:
    required = os.environ.get("STRONGROOM_REQUIRE_BROWSER") == "1"
    problem = None
    if not CHROMIUM.exists():
        problem = f"{CHROMIUM} is missing (apt-get install chromium)"
    else:
        try:
            from playwright.sync_api import sync_playwright
            return sync_playwright
        except ImportError:
            problem = "the playwright package is missing (pip install -e '.[test]')"
    if required:
        pytest.fail(f"browser tests are required (STRONGROOM_REQUIRE_BROWSER=1) but {problem}")
    pytest.skip(f"browser tests skipped: {problem}")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    _browser_or_skip()
    root = tmp_path_factory.mktemp("console-browser")
    server = start_server(root / "data", root / "config", extra=["--demo", str(DEMO)])
    deadline = time.monotonic() + 120
    while "demo residents into index" not in server.log_text():
        assert time.monotonic() < deadline, server.log_text()
        time.sleep(0.1)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def residents(live: LiveServer) -> list[dict[str, Any]]:
    with live.client() as es:
        hits = es.search(index="residents", query={"match_all": {}}, size=DEMO)["hits"]["hits"]
        last = hits[-1]["_source"]  # (the scenario looks up the first one)
        # A resident whose name and address are markup: they must render as text, never run.
        es.index(index="residents", id="xss-1", document={**last, "name": XSS_NAME, "address": XSS_ADDRESS},
                 refresh=True)
    return [hit["_source"] for hit in hits]


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def log_in(page: Any, url: str, user: str, password: str) -> None:
    page.goto(f"{url}/_console/search")
    page.wait_for_url(re.compile(r"/_console/login$"))  # no session: sent to the login page
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("#login-button")
    page.wait_for_url(re.compile(r"/_console/search$"))
    page.wait_for_selector("#who")
    assert page.text_content("#who") == user


def log_out(page: Any) -> None:
    page.click("#logout")
    page.wait_for_url(re.compile(r"/_console/login$"))


def search(page: Any, text: str, *, year_from: str = "", year_to: str = "") -> list[dict[str, str]]:
    page.fill("#q", text)
    page.fill("#f-year-from", year_from)
    page.fill("#f-year-to", year_to)
    page.evaluate("document.getElementById('results').replaceChildren()")
    page.click("#search-button")
    page.wait_for_selector("#results-table, #results .hint:not(.loading), #results .error")
    error = page.query_selector("#results .error")
    assert error is None, error.text_content()
    rows = []
    for row in page.query_selector_all("#results-table tbody tr"):
        cells = {}
        for cell in row.query_selector_all("td[class^=col-]"):
            value = cell.query_selector(".cell-value")  # a masked value, beside its Reveal button
            cells[cell.get_attribute("class").split()[0][4:]] = (value or cell).text_content()
        rows.append(cells)
    return rows


def cookie_works(live: LiveServer, cookie: str) -> int:
    verify = ssl.create_default_context(cafile=live.ca)
    with httpx.Client(base_url=live.url, verify=verify, timeout=30) as http:
        return http.get("/_console/session", headers={"Cookie": f"sr_console={cookie}"}).status_code


def test_console_in_a_real_browser(live: LiveServer, residents: list[dict[str, Any]]) -> None:
    sync_playwright = _browser_or_skip()
    person = residents[0]
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            context = browser.new_context(ignore_https_errors=True, locale="en-US",
                                          viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.set_default_timeout(15_000)
            page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
            page.on("console",
                    lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)

            # -- log in as admin; the login page first
            page.goto(f"{live.url}/_console/login")
            page.wait_for_selector("#login-form")
            shot(page, "01-login")
            log_in(page, live.url, "admin", live.password)

            # -- search by Chinese name, national ID, phone
            by_name = search(page, person["name"])
            assert any(r["national_id"] == person["national_id"] for r in by_name), by_name
            assert page.text_content("#understood") == "Searching by name"
            shot(page, "02-search-admin")
            by_id = search(page, person["national_id"])
            assert [r["name"] for r in by_id] == [person["name"]]
            assert page.text_content("#understood") == "Searching by national ID"
            spaced = f"{person['phone'][:3]} {person['phone'][3:7]} {person['phone'][7:]}"
            by_phone = search(page, spaced)
            assert person["phone"] in [r["phone"] for r in by_phone]
            assert page.text_content("#understood") == "Searching by phone number"
            assert page.text_content("#budget") == "unlimited"

            # -- markup in a record is text, never HTML
            page.goto(f"{live.url}/_console/record?index=residents&id=xss-1")
            page.wait_for_selector("#record-table")
            assert page.text_content("td.field-name") == XSS_NAME
            assert page.text_content("td.field-address") == XSS_ADDRESS
            assert page.query_selector("main img") is None and page.query_selector("main script") is None
            xss_rows = search_page_rows(page, live, XSS_NAME)
            assert XSS_NAME in [r.get("name") for r in xss_rows]
            assert page.evaluate("window.__xss") is None

            # -- a role with a phone mask and a budget (admin pages), then a user with it
            page.click("#nav-roles")
            page.wait_for_selector("#roles-table")
            page.fill("#r-name", "masked_investigator")
            page.click("#r-add-mask")
            page.fill("#r-masks .mask-field", "phone")
            page.select_option("#r-masks .mask-kind", "middle")
            page.fill("#r-limit-records_per_hour", "100")
            page.check("#r-priv-reveal")
            page.fill("#r-limit-reveals_per_hour", "5")
            role_json = page.input_value("#r-json")
            assert '"phone": "middle"' in role_json and '"records_per_hour": 100' in role_json
            assert '"reveal"' in role_json and '"reveals_per_hour": 5' in role_json
            page.click("#role-save")
            page.wait_for_selector("#roles-table .role-name:text-is('masked_investigator')")
            shot(page, "03-roles")
            page.click("#nav-users")
            page.wait_for_selector("#users-table")
            page.fill("#u-name", "investigator1")
            page.fill("#u-password", PASSWORD)
            page.fill("#u-roles", "masked_investigator")
            page.click("#user-save")
            page.wait_for_selector("#users-table .user-name:text-is('investigator1')")
            shot(page, "04-users")
            page.click("#nav-keys")
            page.wait_for_selector("#keys-list")
            page.fill("#k-name", "console-test-key")
            page.fill("#k-expiration", "1d")
            page.click("#key-create")
            page.wait_for_selector("#key-secret")
            page.wait_for_selector("#keys-table")
            page.click("#keys-table button.danger")
            page.wait_for_selector("#keys-table td:text-is('invalidated')")
            shot(page, "05-keys")

            # a canary that only investigator1 can ever see (planted through the API)
            with live.client() as es:
                es.perform_request("POST", "/_strongroom/canaries/residents", body={"count": 1,
                                   "owner": "investigator1"}, headers={"content-type": "application/json",
                                                                       "accept": "application/json"})
            log_out(page)

            # -- investigator1: masked phones, the budget, a purpose; then touches the canary
            log_in(page, live.url, "investigator1", PASSWORD)
            page.fill("#purpose", PURPOSE)
            page.press("#purpose", "Tab")
            rows = search(page, person["name"])
            assert rows and all(re.fullmatch(r"\d{3}\*{4}\d{4}", r["phone"]) for r in rows), rows
            assert person["phone"] not in page.content()
            page.wait_for_function("document.getElementById('budget').dataset.remaining !== ''")
            assert re.fullmatch(r"\d+ of 100", page.text_content("#budget")), page.text_content("#budget")
            shot(page, "06-search-masked")
            # -- reveal a phone in the results table, with the header's purpose
            first_phone = "#results-table tbody tr:first-child td.col-phone"
            masked_in_table = page.text_content(f"{first_phone} .cell-value")
            page.click(f"{first_phone} button.reveal[data-field=phone]")
            page.wait_for_selector(f"{first_phone} form.reveal-form")
            assert page.input_value(f"{first_phone} .reveal-purpose") == PURPOSE
            page.click(f"{first_phone} .reveal-confirm")
            page.wait_for_selector(f"{first_phone} .cell-value.revealed")
            clear_in_table = page.text_content(f"{first_phone} .cell-value")
            assert re.fullmatch(r"\d{11}", clear_in_table) and clear_in_table[-4:] == masked_in_table[-4:]
            page.wait_for_function("document.getElementById('reveal-budget').dataset.remaining === '4'")
            shot(page, "06b-search-revealed")
            page.click("#results-table a.open-record")
            page.wait_for_selector("#record-table")
            masked = page.text_content("td.field-phone")
            assert re.fullmatch(r"\d{3}\*{4}\d{4}", masked), masked
            page.wait_for_function("document.getElementById('reveal-budget').dataset.remaining === '4'")
            shot(page, "07-record-masked")
            # -- reveal the phone with a purpose: shown in its row, charged, audited (below)
            page.click("button.reveal[data-field=phone]")
            page.wait_for_selector("form.reveal-form[data-field=phone]")
            assert page.input_value(".reveal-purpose") == PURPOSE  # the header's purpose, editable
            page.fill(".reveal-purpose", REVEAL_PURPOSE)
            page.click(".reveal-confirm")
            page.wait_for_selector("td.field-phone.revealed")
            clear = page.text_content("td.field-phone")
            assert re.fullmatch(r"\d{11}", clear) and clear[:3] == masked[:3] and clear[-4:] == masked[-4:], clear
            page.wait_for_function("document.getElementById('reveal-budget').dataset.remaining === '3'")
            assert page.text_content("#reveal-budget") == "Reveals left: 3 of 5"
            shot(page, "07b-record-revealed")
            page.goto(f"{live.url}/_console/search")
            every = search(page, "", year_from="1900", year_to="2026")  # everyone, the canary among them
            assert len(every) == DEMO + 2, len(every)  # + the markup resident + the canary
            cookie = next(c["value"] for c in context.cookies() if c["name"] == "sr_console")
            assert cookie_works(live, cookie) == 200
            log_out(page)
            assert cookie_works(live, cookie) == 401  # logging out killed the session, not just the cookie

            # -- admin: the alert, block and unblock
            log_in(page, live.url, "admin", live.password)
            page.click("#nav-alerts")
            canary_row = "#alerts-table tr.alert-canary"
            page.wait_for_selector(canary_row)
            assert page.text_content(f"{canary_row} .alert-identity") == "investigator1"
            page.click(f"{canary_row} summary")
            assert "canary_owner" in page.text_content(f"{canary_row} pre")
            shot(page, "08-alerts")
            page.click(f"{canary_row} button.block")
            page.wait_for_selector("#blocks-table .block-identity:text-is('investigator1')")
            with httpx.Client(base_url=live.url, verify=ssl.create_default_context(cafile=live.ca)) as http:
                assert http.get("/_strongroom/usage", auth=("investigator1", PASSWORD)).status_code == 429
                page.click("#blocks-table button.unblock")
                page.wait_for_selector("#blocks .hint")
                assert http.get("/_strongroom/usage", auth=("investigator1", PASSWORD)).status_code == 200

            # -- the audit page: the purpose, and the verified chain
            page.click("#nav-audit")
            page.wait_for_selector("#chain-status")
            page.wait_for_selector("#audit-table")  # the first, unfiltered list
            page.fill("#a-purpose", PURPOSE)
            page.click("#audit-search")
            page.wait_for_function("""purpose => {
                const cells = [...document.querySelectorAll('#audit-table .audit-purpose')];
                return cells.length > 0 && cells.every(c => c.textContent === purpose);
            }""", arg=PURPOSE)
            identities = {c.text_content() for c in page.query_selector_all("#audit-table .audit-identity")}
            assert identities == {"investigator1"}
            page.fill("#a-purpose", REVEAL_PURPOSE)  # the reveal: its own record, naming the field
            page.click("#audit-search")
            page.wait_for_function("""() => {
                const cells = [...document.querySelectorAll('#audit-table .audit-fields')];
                return cells.length === 1 && cells[0].textContent.startsWith('phone (');
            }""")
            assert page.text_content("#audit-table .audit-path").startswith("/_strongroom/reveal/residents/")
            page.wait_for_selector("#chain-status.chain-ok")
            shot(page, "09-audit")

            # -- charts, drawn as SVG
            page.click("#nav-charts")
            page.wait_for_selector("#chart-reveals svg.chart polyline")
            page.wait_for_selector("#chart-alerts svg.chart rect.bar")
            page.wait_for_selector("#chart-indices svg.chart rect.bar")
            shot(page, "10-charts")

            # -- Chinese UI, remembered
            page.click("#lang-switch")
            page.wait_for_selector("#nav-search:text-is('查询')")
            page.goto(f"{live.url}/_console/alerts")
            page.wait_for_selector("#nav-alerts:text-is('告警')")
            shot(page, "11-alerts-zh")
            log_out(page)
            assert page.text_content("#login-button") == "登录"
        finally:
            browser.close()
    blocked = [e for e in errors if "Content Security Policy" in e or "pageerror" in e]
    assert not blocked, blocked


def search_page_rows(page: Any, live: LiveServer, text: str) -> list[dict[str, str]]:
    page.goto(f"{live.url}/_console/search")
    page.wait_for_selector("#search-form")
    return search(page, text)
