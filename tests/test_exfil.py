"""Exfiltration is stopped, not just logged: a live server with every defence on (TLS, roles with limits,
budgets, dump detection, canaries, the audit chain, an alert webhook on loopback).

Scrapers holding a valid low-privilege API key — paging match_all, sweeping national-ID prefixes,
walking birthplace x birth year, following search_after, opening scrolls — are each stopped with 429
(or refused outright) before the role's budget is exceeded; an alert reaches the webhook within 10 s;
the audit trail names what each revealed. Canaries raise an alert on every path that returns one and
never count; a legitimate workload raises nothing; the audit chain verifies; no protected value
reaches the audit log, the alerts or the server log.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from live import LiveServer, run_strongroom, start_server
from strongroom.demo import RESIDENTS_BODY, RESIDENTS_INDEX, generate_residents

COUNT = 2000
PASSWORD = "a-long-analyst-passphrase-2026"
LIMITS = {"requests_per_second": 200, "burst": 400, "records_per_hour": 300, "records_per_day": 1000,
          "probes_per_hour": 150, "max_size": 100}


class Hook(http.server.BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers.get("content-length", 0))
        Hook.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def hook() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alerts"
    server.shutdown()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, hook: str) -> Iterator[tuple[LiveServer, list[dict[str, str]]]]:
    root = tmp_path_factory.mktemp("exfil")
    config = root / "config"
    config.mkdir(mode=0o700)
    (config / "strongroom.toml").write_text(f'[audit]\ncheckpoint_every = 50\n[alerts]\nwebhook_url = "{hook}"\n')
    server = start_server(root / "data", config)
    residents = [doc for _id, doc in generate_residents(COUNT, seed=11)]
    with server.client() as es:
        es.indices.create(index=RESIDENTS_INDEX, **RESIDENTS_BODY)
        lines: list[Any] = []
        for number, doc in enumerate(residents):
            lines += [{"index": {"_index": RESIDENTS_INDEX, "_id": f"r{number}"}}, doc]
        assert not es.bulk(operations=lines, refresh=True)["errors"]
        # `limits` is Strongroom's extension of the role descriptor (the client does not know the keyword).
        es.security.put_role(name="analyst", body={"cluster": ["manage_own_api_key"], "limits": LIMITS, "indices": [
            {"names": [RESIDENTS_INDEX], "privileges": ["read"]}]})
        es.security.put_role(name="exporter", body={"cluster": ["manage_own_api_key"], "limits": LIMITS, "indices": [
            {"names": [RESIDENTS_INDEX], "privileges": ["read", "bulk_export"]}]})
        es.security.put_role(name="watcher", cluster=["read_audit"])
        es.security.put_user(username="analyst", password=PASSWORD, roles=["analyst"])
        es.security.put_user(username="exporter", password=PASSWORD, roles=["exporter"])
        es.security.put_user(username="watcher", password=PASSWORD, roles=["watcher"])
    yield server, residents
    server.stop()


def http_client(server: LiveServer, auth: Any) -> httpx.Client:
    headers = {"content-type": "application/json"}
    if isinstance(auth, str):
        headers["authorization"] = f"ApiKey {auth}"
        auth = None
    return httpx.Client(base_url=server.url, verify=str(server.ca), auth=auth, headers=headers, timeout=60)


def new_key(server: LiveServer, user: str) -> tuple[str, str]:
    """A fresh API key of `user`: its own identity, so its own budgets."""
    with http_client(server, (user, PASSWORD)) as http:
        answer = http.post("/_security/api_key", json={"name": f"k{time.monotonic_ns()}"}).json()
    return answer["encoded"], f"{user}/api_key:{answer['id']}"


def admin(server: LiveServer) -> httpx.Client:
    return http_client(server, ("admin", server.password))


def alerts_for(server: LiveServer, identity: str, kind: str | None = None) -> list[dict[str, Any]]:
    with admin(server) as http:
        found = http.get("/_strongroom/alerts", params={"identity": identity, "size": 1000}).json()["alerts"]
    return [a for a in found if kind is None or a["kind"] == kind]


def wait_for_alert(server: LiveServer, identity: str, kind: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        hooked = [a for a in Hook.received if a["identity"] == identity and a["kind"] == kind]
        if hooked and alerts_for(server, identity, kind):
            return hooked[-1]
        time.sleep(0.1)
    raise AssertionError(f"no {kind} alert for {identity} within 10 s")


def revealed_by(server: LiveServer, identity: str) -> set[str]:
    with admin(server) as http:
        records = http.get("/_strongroom/audit", params={"identity": identity, "size": 1000}).json()["records"]
    return {doc_id for r in records for _index, doc_id in r.get("revealed", [])}


def scrape(http: httpx.Client, requests: Iterator[tuple[str, str, Any]]) -> tuple[int, httpx.Response]:
    """Run requests until one is refused; (number served, the refusal)."""
    served = 0
    for method, path, body in requests:
        response = http.request(method, path, json=body)
        if response.status_code != 200:
            return served, response
        served += 1
    raise AssertionError(f"the scraper was never stopped ({served} requests served)")


def test_paging_match_all_stops_at_the_record_budget(live: tuple[LiveServer, list[dict[str, str]]]) -> None:
    server, _residents = live
    key, identity = new_key(server, "analyst")
    with http_client(server, key) as http:
        pages = (("POST", f"/{RESIDENTS_INDEX}/_search", {"query": {"match_all": {}}, "from": n * 50, "size": 50})
                 for n in range(40))
        served, refused = scrape(http, pages)
    assert refused.status_code == 429 and refused.headers["retry-after"]
    assert refused.json()["error"]["type"] == "es_rejected_execution_exception"
    assert served == LIMITS["records_per_hour"] // 50
    assert len(revealed_by(server, identity)) <= LIMITS["records_per_hour"]
    wait_for_alert(server, identity, "budget_exhausted")


def test_sweeping_national_id_prefixes_is_detected(live: tuple[LiveServer, list[dict[str, str]]]) -> None:
    server, residents = live
    key, identity = new_key(server, "analyst")
    regions = sorted({doc["national_id"][:6] for doc in residents})
    assert len(regions) >= 25
    with http_client(server, key) as http:
        probes = (("POST", f"/{RESIDENTS_INDEX}/_search",
                   {"size": 5, "query": {"prefix": {"national_id": region}}}) for region in regions)
        served, refused = scrape(http, probes)
    assert refused.status_code == 429
    assert served < LIMITS["probes_per_hour"]
    alert = wait_for_alert(server, identity, "dump_pattern")
    assert alert["evidence"]["pattern"] == "prefix_walk"
    with http_client(server, key) as http:  # blocked now, whatever it asks
        assert http.get(f"/{RESIDENTS_INDEX}/_count").status_code == 429


def test_walking_birthplace_by_birth_year_is_detected(live: tuple[LiveServer, list[dict[str, str]]]) -> None:
    server, residents = live
    key, identity = new_key(server, "analyst")
    places = sorted({doc["birthplace"] for doc in residents})[:10]
    walk = (("POST", f"/{RESIDENTS_INDEX}/_search",
             {"size": 3, "query": {"bool": {"filter": [{"term": {"birthplace": place}},
                                                         {"range": {"birth_date": {"gte": f"{year}-01-01",
                                                                                   "lte": f"{year}-12-31"}}}]}}})
            for place in places for year in range(1950, 2000))
    with http_client(server, key) as http:
        served, refused = scrape(http, walk)
    assert refused.status_code == 429
    assert len(revealed_by(server, identity)) <= LIMITS["records_per_hour"]
    alert = wait_for_alert(server, identity, "dump_pattern")
    assert alert["evidence"]["pattern"] in ("sweep", "prefix_walk")
    assert served < 60


def test_search_after_walk_stops_at_the_budget(live: tuple[LiveServer, list[dict[str, str]]]) -> None:
    server, _residents = live
    key, identity = new_key(server, "analyst")
    after = None
    served = 0
    with http_client(server, key) as http:
        for _ in range(40):
            body: dict[str, Any] = {"size": 50, "query": {"match_all": {}}, "sort": [{"gender": "asc"},
                                                                                     {"birthplace": "asc"}]}
            if after is not None:
                body["search_after"] = after
            response = http.post(f"/{RESIDENTS_INDEX}/_search", json=body)
            if response.status_code != 200:
                break
            served += 1
            after = response.json()["hits"]["hits"][-1]["sort"]
    assert response.status_code == 429, response.text
    assert len(revealed_by(server, identity)) <= LIMITS["records_per_hour"]
    wait_for_alert(server, identity, "budget_exhausted")


def test_scrolls_need_bulk_export_and_stop_at_the_budget(live: tuple[LiveServer, list[dict[str, str]]]) -> None:
    server, _residents = live
    key, _identity = new_key(server, "analyst")
    with http_client(server, key) as http:
        refused = http.post(f"/{RESIDENTS_INDEX}/_search", params={"scroll": "1m"}, json={"size": 50})
    assert refused.status_code == 403 and "export" in refused.text
    key, identity = new_key(server, "exporter")
    with http_client(server, key) as http:
        page = http.post(f"/{RESIDENTS_INDEX}/_search", params={"scroll": "1m"}, json={"size": 50})
        assert page.status_code == 200
        scroll_id = page.json()["_scroll_id"]
        for _ in range(40):
            page = http.post("/_search/scroll", json={"scroll": "1m", "scroll_id": scroll_id})
            if page.status_code != 200:
                break
    assert page.status_code == 429
    assert len(revealed_by(server, identity)) <= LIMITS["records_per_hour"]
    wait_for_alert(server, identity, "budget_exhausted")


def test_top_hits_reveal_is_counted(live: tuple[LiveServer, list[dict[str, str]]]) -> None:
    server, _residents = live
    key, identity = new_key(server, "analyst")
    with http_client(server, key) as http:
        answer = http.post(f"/{RESIDENTS_INDEX}/_search", json={"size": 0, "aggs": {"top": {"top_hits": {
            "size": 40}}}})
        assert answer.status_code == 200
        shown = {h["_id"] for h in answer.json()["aggregations"]["top"]["hits"]["hits"]}
        assert len(shown) == 40
        usage = http.get("/_strongroom/usage").json()["usage"]["records"]["hour"]
    assert revealed_by(server, identity) == shown and usage["used"] == 40


def test_many_identities_of_one_tenant_just_under_budget(live: tuple[LiveServer, list[dict[str, str]]]) -> None:
    server, _residents = live
    with admin(server) as http:
        for n in range(3):
            assert http.put(f"/_security/user/acme{n}", json={"password": PASSWORD, "roles": ["analyst"],
                                                               "metadata": {"tenant": "acme"}}).status_code == 200
    for n in range(3):  # each reads 250 of its 300 records per hour, at different offsets
        with http_client(server, (f"acme{n}", PASSWORD)) as http:
            for page in range(5):
                body = {"query": {"match_all": {}}, "from": 300 * n + 50 * page, "size": 50}
                assert http.post(f"/{RESIDENTS_INDEX}/_search", json=body).status_code == 200
    deadline = time.monotonic() + 10
    while not any(a["evidence"].get("pattern") == "tenant_spread" for a in Hook.received):
        assert time.monotonic() < deadline, "no tenant_spread alert"
        time.sleep(0.1)


def test_caps_of_the_role(live: tuple[LiveServer, list[dict[str, str]]]) -> None:
    server, _residents = live
    key, _identity = new_key(server, "analyst")
    with http_client(server, key) as http:
        too_big = http.post(f"/{RESIDENTS_INDEX}/_search", json={"size": 101})
        assert too_big.status_code == 403 and "size [101]" in too_big.text
        usage = http.get("/_strongroom/usage").json()
    assert usage["limits"]["records_per_hour"] == 300
    assert usage["usage"]["records"]["hour"]["remaining"] == 300
    # "Does document r1 hold this national ID?" through _explain is a probe like any other.
    with http_client(server, key) as http:
        assert http.post(f"/{RESIDENTS_INDEX}/_explain/r1", json={"query": {"term": {
            "national_id": _residents[1]["national_id"]}}}).json()["matched"] is True
        assert http.get("/_strongroom/usage").json()["usage"]["probes"]["hour"]["used"] == 1


def test_canaries(live: tuple[LiveServer, list[dict[str, str]]], tmp_path: Path) -> None:
    server, residents = live
    with admin(server) as http:
        before = http.get(f"/{RESIDENTS_INDEX}/_count").json()["count"]
        genders = http.post(f"/{RESIDENTS_INDEX}/_search", json={"size": 0, "aggs": {"g": {"terms": {
            "field": "gender"}}}}).json()["aggregations"]["g"]["buckets"]
        planted = http.post(f"/_strongroom/canaries/{RESIDENTS_INDEX}", json={"count": 5}).json()
        assert planted["planted"] == 5
        http.post(f"/_strongroom/canaries/{RESIDENTS_INDEX}", json={"count": 2, "owner": "exporter"})
        # Never counted: _count, totals and aggregations are as before.
        assert http.get(f"/{RESIDENTS_INDEX}/_count").json()["count"] == before
        assert http.post(f"/{RESIDENTS_INDEX}/_search", json={"size": 0, "aggs": {"g": {"terms": {
            "field": "gender"}}}}).json()["aggregations"]["g"]["buckets"] == genders
        everything = http.post(f"/{RESIDENTS_INDEX}/_search", json={"size": 10_000, "track_total_hits": True})
        body = everything.json()
        assert body["hits"]["total"]["value"] == before
        ours = {f"r{n}" for n in range(COUNT)}
        canaries = [h["_id"] for h in body["hits"]["hits"] if h["_id"] not in ours]
        assert len(canaries) == 5  # the general ones are bait; the exporter's are not shown to others
        # Looking up a real person by name, ID or phone never returns one (no false alarm): a canary's name
        # contains nobody's name, and its ID and phone are nobody else's.
        bait = [h["_source"] for h in body["hits"]["hits"] if h["_id"] not in ours]
        assert not [(r["name"], b["name"]) for r in residents for b in bait if r["name"] in b["name"]]
        assert not {b["national_id"] for b in bait} & {r["national_id"] for r in residents}
        assert not {b["phone"] for b in bait} & {r["phone"] for r in residents}
        assert len(alerts_for(server, "admin", "canary")) >= 5
        # Every path that returns one raises an alert, every time.
        for path, method, request in ((f"/{RESIDENTS_INDEX}/_doc/{canaries[0]}", "GET", None),
                                      ("/_mget", "POST", {"docs": [{"_index": RESIDENTS_INDEX, "_id": canaries[1]}]}),
                                      (f"/{RESIDENTS_INDEX}/_search", "POST",
                                       {"size": 5, "query": {"ids": {"values": [canaries[2]]}}}),
                                      (f"/{RESIDENTS_INDEX}/_doc/{canaries[0]}", "GET", None)):
            count = len(alerts_for(server, "admin", "canary"))
            assert http.request(method, path, json=request).status_code == 200
            assert len(alerts_for(server, "admin", "canary")) == count + 1, path
    # Aggregations never see them, top_hits included (so it cannot return one).
    with admin(server) as http:
        top = http.post(f"/{RESIDENTS_INDEX}/_search", json={"size": 0, "query": {"ids": {"values": canaries}},
                                                             "aggs": {"top": {"top_hits": {"size": 10}}}}).json()
        assert top["aggregations"]["top"]["hits"]["hits"] == []
    # The owner sees its own canaries (and so would leak them, named).
    with http_client(server, ("exporter", PASSWORD)) as http:
        seen = http.post(f"/{RESIDENTS_INDEX}/_search", json={"size": 100, "query": {"bool": {"must_not": {
            "ids": {"values": sorted(ours)}}}}}).json()["hits"]["hits"]
    assert len(seen) == 7
    # A copy of what the exporter saw leaks: it names the exporter (its two personal canaries).
    leak = tmp_path / "leak.ndjson"
    leak.write_text("".join(json.dumps(h["_source"], ensure_ascii=False) + "\n"
                            for h in seen + [{"_source": r} for r in residents[:100]]))
    named = run_strongroom(["attribute", str(leak), "--data-dir", str(server.data_dir), "--config-dir",
                            str(server.config_dir)])
    output = named.communicate(timeout=60)[0]
    assert named.returncode == 0, output
    rows = {line.rsplit(None, 3)[0].strip(): line.split()[-3] for line in output.splitlines()[1:] if line.strip()}
    assert rows == {"exporter": "2", "(general canaries)": "5"}, output
    # A legitimate workload raises nothing: lookups of real people by national ID, name and phone.
    key, identity = new_key(server, "analyst")
    with http_client(server, key) as http:
        for doc in residents[:40]:  # 120 probes: within the hourly probe budget
            for query in ({"term": {"national_id": doc["national_id"]}}, {"match_phrase": {"name": doc["name"]}},
                          {"term": {"phone": doc["phone"]}}):
                answer = http.post(f"/{RESIDENTS_INDEX}/_search", json={"size": 3, "query": query})
                assert answer.status_code == 200, answer.text
    assert alerts_for(server, identity) == []


def test_exposure_check(live: tuple[LiveServer, list[dict[str, str]]], tmp_path: Path) -> None:
    """Someone else's leak (GBK CSV, Chinese headers, formatted phones): which of our residents are in it,
    through the blind tokens, without storing the file."""
    server, residents = live
    ours = residents[200:300]
    strangers = [doc for _id, doc in generate_residents(200, seed=4242)]
    ids = {doc["national_id"] for doc in residents}
    strangers = [d for d in strangers if d["national_id"] not in ids]
    leak = tmp_path / "leak.csv"
    lines = ["姓名,身份证号,手机号"]
    lines += [f"{d['name']},{d['national_id']},{d['phone'][:3]}-{d['phone'][3:7]}-{d['phone'][7:]}" for d in ours]
    lines += [f",{d['national_id']},{d['phone']}" for d in strangers]  # no names: namesakes are not the point
    leak.write_bytes(("\n".join(lines) + "\n").encode("gbk"))
    check = run_strongroom(["exposure-check", "--index", RESIDENTS_INDEX, str(leak), "--url", server.url,
                            "--config-dir", str(server.config_dir), "--json"],
                           env={"STRONGROOM_PASSWORD": server.password})
    output = check.communicate(timeout=120)[0]
    assert check.returncode == 0, output
    matches = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    found = {doc["_id"]: doc["fields"] for m in matches for doc in m["documents"]}
    expected = {f"r{n}" for n in range(200, 300)}
    assert expected <= set(found)
    assert all({"national_id", "phone"} <= set(found[i]) for i in expected)
    assert all(set(found[i]) == {"name"} for i in set(found) - expected)  # only namesakes beyond ours
    assert "300 rows read" in output
    with http_client(server, ("analyst", PASSWORD)) as http:  # not for analysts
        assert http.post(f"/_strongroom/exposure/{RESIDENTS_INDEX}",
                         json={"rows": [{"national_id": ours[0]["national_id"]}]}).status_code == 403
    with admin(server) as http:
        one = http.post(f"/_strongroom/exposure/{RESIDENTS_INDEX}",
                        json={"rows": [{"national_id": ours[0]["national_id"]}, {"phone": "10000000000"}]}).json()
        assert one["rows_matched"] == 1 and one["matches"][0]["documents"] == [{"_id": "r200",
                                                                                "fields": ["national_id"]}]
        assert http.post(f"/_strongroom/exposure/{RESIDENTS_INDEX}", json={"rows": []}).status_code == 400


def test_the_audit_trail(live: tuple[LiveServer, list[dict[str, str]]]) -> None:
    server, residents = live
    secret = residents[5]["national_id"]
    with http_client(server, ("analyst", PASSWORD)) as http:
        http.headers["x-strongroom-purpose"] = "case 2026-117"
        hit = http.post(f"/{RESIDENTS_INDEX}/_search", json={"query": {"term": {"national_id": secret}}}).json()
        doc_id = hit["hits"]["hits"][0]["_id"]
    with httpx.Client(base_url=server.url, verify=str(server.ca)) as anonymous:
        assert anonymous.get(f"/{RESIDENTS_INDEX}/_search").status_code == 401
    with http_client(server, ("watcher", PASSWORD)) as http:
        records = http.get("/_strongroom/audit", params={"identity": "analyst", "size": 5}).json()["records"]
        found = next(r for r in records if r.get("revealed"))
        assert found["revealed"] == [[RESIDENTS_INDEX, doc_id]] and found["purpose"] == "case 2026-117"
        assert secret not in json.dumps(found) and "national_id" in json.dumps(found["query"])
        refused = http.get("/_strongroom/audit", params={"outcome": "refused", "size": 50}).json()["records"]
        assert any(r["status"] == 401 and r["identity"] is None for r in refused)
        assert http.get("/_strongroom/audit", params={"doc_id": doc_id}).json()["records"]
        assert http.post("/_strongroom/blocks/analyst", json={"reason": "x"}).status_code == 403
    with http_client(server, ("analyst", PASSWORD)) as http:
        assert http.get("/_strongroom/audit").status_code == 403


def test_blocks_by_hand(live: tuple[LiveServer, list[dict[str, str]]]) -> None:
    server, _residents = live
    key, identity = new_key(server, "analyst")
    with admin(server) as http:
        assert http.put(f"/_strongroom/blocks/{identity.replace('/', '%2F')}",
                        json={"reason": "leaving the company", "seconds": 600}).status_code == 200
        assert any(b["identity"] == identity for b in http.get("/_strongroom/blocks").json()["blocks"])
    with http_client(server, key) as http:
        refused = http.get(f"/{RESIDENTS_INDEX}/_count")
        assert refused.status_code == 429 and "leaving the company" in refused.text
    with admin(server) as http:
        assert http.delete(f"/_strongroom/blocks/{identity.replace('/', '%2F')}").json()["found"] is True
    with http_client(server, key) as http:
        assert http.get(f"/{RESIDENTS_INDEX}/_count").status_code == 200


def test_no_protected_value_in_audit_alerts_or_logs(live: tuple[LiveServer, list[dict[str, str]]]) -> None:
    """Runs last in this module: everything the scenarios above wrote is scanned."""
    server, residents = live
    texts = [server.log_text()]
    for path in (server.data_dir / "audit").rglob("*"):
        if path.is_file():
            texts.append(path.read_text(errors="replace"))
    texts.append((server.data_dir / "alerts.jsonl").read_text())
    blob = "\n".join(texts)
    assert len(blob) > 10_000
    for doc in residents:
        for field in ("national_id", "phone", "name"):
            assert doc[field] not in blob, f"a {field} reached the audit, the alerts or the log"
    # The chain of everything above verifies, while the server runs.
    verify = run_strongroom(["audit", "verify", "--data-dir", str(server.data_dir), "--config-dir",
                             str(server.config_dir)])
    output = verify.communicate(timeout=60)[0]
    assert verify.returncode == 0 and "audit chain intact" in output, output


# -- fail closed, in process -----------------------------------------------------------------------

def test_nothing_is_served_unaudited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit sink fails (ENOSPC): every request gets 503 and nothing of the document; when the sink
    recovers, service resumes and the chain still verifies."""
    import asyncio
    import errno
    import os

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from strongroom.api.app import build_app
    from strongroom.engine.node import Engine
    from strongroom.security import audit as audit_module
    from strongroom.security.exfil import Guard
    from strongroom.security.gate import Gate
    from strongroom.security.users import SecurityStore

    secret = "sentinel-unaudited-value"
    engine = Engine(tmp_path / "data")
    users = SecurityStore(tmp_path / "data")
    users.bootstrap(PASSWORD)
    signing = Ed25519PrivateKey.generate()
    log = audit_module.AuditLog(tmp_path / "audit", signing, checkpoint_every=5)
    app = build_app(Gate(engine, users, guard=Guard(audit=log)))
    real_write = os.write
    broken = {"on": False}

    def write(fd: int, data: Any) -> int:
        if broken["on"] and fd == log._fd:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(audit_module.os, "write", write)

    async def scenario() -> list[int]:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://strongroom",
                                     auth=("admin", PASSWORD)) as http:
            assert (await http.put("/people/_doc/1", params={"refresh": "true"},
                                   json={"note": secret})).status_code == 201
            assert secret in (await http.get("/people/_doc/1")).text
            broken["on"] = True
            statuses = []
            for request in (http.get("/people/_doc/1"), http.post("/people/_search", json={}),
                            http.post("/_mget", json={"docs": [{"_index": "people", "_id": "1"}]}),
                            http.get("/people/_doc/1")):
                response = await request
                assert secret not in response.text
                assert response.json()["error"]["type"] == "audit_unavailable_exception"
                statuses.append(response.status_code)
            broken["on"] = False
            for _ in range(2):  # the first request after recovery may still be refused: its record goes first
                response = await http.get("/people/_doc/1")
                if response.status_code == 200:
                    break
            assert response.status_code == 200 and secret in response.text
            return statuses

    try:
        assert asyncio.run(scenario()) == [503, 503, 503, 503]
    finally:
        log.close()
        engine.close()
    report = audit_module.verify(tmp_path / "audit", signing.public_key())
    assert report.ok, report.reason
    records = [json.loads(line) for path in sorted((tmp_path / "audit").glob("audit-*.jsonl"))
               for line in path.read_text().splitlines()]
    served = [r for r in records if r.get("status") == 200 and r.get("revealed")]
    assert len(served) == 2  # the read before the failure and the one after: every served read is on record


def test_the_slow_action_delays_only_the_slowed_identity_for_its_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from strongroom.security.exfil import Guard
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    guard = Guard(dump_action="slow", block_seconds=60.0, slow_seconds=2.0)
    assert guard.slow_delay("mallory") == 0.0
    guard.slow("mallory")
    assert guard.slow_delay("mallory") == 2.0 and guard.slow_delay("alice") == 0.0
    now[0] += 59.5
    assert guard.slow_delay("mallory") == 0.5  # never past the end of the slowing
    now[0] += 1
    assert guard.slow_delay("mallory") == 0.0


def test_literal_hashes_are_hmac_sha256_under_the_literal_key() -> None:
    """The audit's hashes of query literals and the records' keys keep their format (an auditor holding
    the key recomputes them), whichever key the guard holds now."""
    import hashlib
    import hmac

    from strongroom.security.exfil import Guard

    first, second = b"k" * 32, b"q" * 32
    guard = Guard(literal_key=first)
    for _ in range(2):  # the keyed state is made once, then copied
        assert guard.hasher("national_id", "110101") == \
            hmac.new(first, b"national_id\x00110101", hashlib.sha256).hexdigest()[:24]
        assert guard.record_key("uuid", "r1") == hmac.new(first, b"doc\x00uuid\x00r1", hashlib.sha256).digest()[:16]
    assert first not in repr(guard).encode() and repr(first) not in repr(guard)  # no key in a log line
    guard.literal_key = second
    assert guard.hasher("national_id", "110101") == \
        hmac.new(second, b"national_id\x00110101", hashlib.sha256).hexdigest()[:24]
    assert guard.record_key("uuid", "r1") == hmac.new(second, b"doc\x00uuid\x00r1", hashlib.sha256).digest()[:16]
