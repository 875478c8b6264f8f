"""Revealing a masked field with a purpose: `POST /_strongroom/reveal/{index}/{id}` on a real server.

A role that reads residents with phone and national ID masked, and may reveal them (not the notes,
which its field security hides) within a budget of three fields an hour. Proofs: no purpose, no
reveal; the privilege is separate from `read`; the reveal roles' document and field security hold;
a record the caller cannot read answers like a missing one; every field shown is named in its own
audit record with the purpose; the budget stops the fourth field with 429 and an alert; the answer
is never cached; bad input is a 400 that names the problem.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from live import PASSWORD, LiveServer, start_server
from strongroom.security.roles import parse_role
from strongroom.security.users import SecurityStore

INDEX = "residents"
PUDONG, HUANGPU = "浦东新区", "黄浦区"
DOCS = {
    "p1": {"name": "欧阳娜娜", "phone": "13912340987", "national_id": "310115199912319876", "district": PUDONG,
           "notes": "secret notes p1", "age": 31},
    "p2": {"name": "张三", "phone": "13800000002", "national_id": "310115198001010002", "district": PUDONG,
           "notes": "secret notes p2", "age": 44},
    "h1": {"name": "司马相如", "phone": "13655554444", "national_id": "310101197001019999", "district": HUANGPU,
           "notes": "secret notes h1", "age": 52},
}
MASKS = {"phone": "middle", "national_id": "middle"}
ROLES = {
    # reads Pudong only, masked; may reveal phone and national ID (never the notes) there
    "investigator": {"indices": [
        {"names": [INDEX], "privileges": ["read", "reveal"], "query": {"term": {"district": PUDONG}},
         "field_security": {"grant": ["*"], "except": ["notes"]}, "masks": MASKS}],
        "limits": {"reveals_per_hour": 3, "records_per_hour": 100}},
    # reads everyone masked, reveals nothing
    "masked_reader": {"indices": [{"names": [INDEX], "privileges": ["read"], "masks": MASKS}]},
    # reads everyone masked; may reveal only within Huangpu, and only the phone
    "huangpu_revealer": {"cluster": ["manage_own_api_key"], "indices": [
        {"names": [INDEX], "privileges": ["read"], "masks": MASKS},
        {"names": [INDEX], "privileges": ["reveal"], "query": {"term": {"district": HUANGPU}},
         "field_security": {"grant": ["phone"]}}]},
}
USERS = {"inv": "investigator", "inv2": "investigator", "masked": "masked_reader", "huangpu": "huangpu_revealer"}
USER_PASSWORD = "a reveal test passphrase long enough"
PURPOSE = "CASE-2026-0042"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root: Path = tmp_path_factory.mktemp("reveal")
    store = SecurityStore(root / "data")
    store.bootstrap(PASSWORD)
    for name, body in ROLES.items():
        store.put_role(parse_role(name, body))
    for user, role in USERS.items():
        store.put_user(user, password=USER_PASSWORD, password_hash=None, roles=[role], full_name=None, email=None,
                       metadata={}, enabled=True)
    server = start_server(root / "data", root / "config")
    with server.client() as es:
        es.indices.create(index=INDEX, mappings={"properties": {
            "district": {"type": "keyword"}, "phone": {"type": "keyword", "protect": "blind"},
            "national_id": {"type": "keyword", "protect": "blind"}, "notes": {"type": "text"},
            "name": {"type": "text", "fields": {"raw": {"type": "keyword"}}}, "age": {"type": "long"}}})
        for doc_id, doc in DOCS.items():
            es.index(index=INDEX, id=doc_id, document=doc)
        es.indices.refresh(index=INDEX)
    yield server
    server.stop()


def client(live: LiveServer, user: str, password: str = USER_PASSWORD, purpose: str | None = PURPOSE
           ) -> httpx.Client:
    headers = {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
    if purpose is not None:
        headers["X-Strongroom-Purpose"] = purpose
    return httpx.Client(base_url=live.url, verify=ssl.create_default_context(cafile=live.ca), timeout=30,
                        headers=headers)


def reveal(http: httpx.Client, doc_id: str, fields: Any) -> httpx.Response:
    return http.post(f"/_strongroom/reveal/{INDEX}/{doc_id}", json={"fields": fields})


def audit(live: LiveServer, identity: str) -> list[dict[str, Any]]:
    with client(live, "admin", PASSWORD, purpose=None) as http:
        records = http.get("/_strongroom/audit", params={"identity": identity, "size": 1000}).json()["records"]
    return sorted((r for r in records if r["action"] == "/_strongroom/reveal/{index}/{id}"), key=lambda r: r["seq"])


def error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error", "status"} and body["status"] == response.status_code, body
    return body["error"]


def test_the_reader_sees_masks_and_reveals_one_field_with_a_purpose(live: LiveServer) -> None:
    with client(live, "inv") as http:
        masked = http.get(f"/{INDEX}/_doc/p1").json()["_source"]
        assert masked["phone"] == "139****0987" and "notes" not in masked
        response = reveal(http, "p1", ["phone"])
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert body["fields"] == {"phone": ["13912340987"]} and body["_id"] == "p1" and body["found"] is True
        assert "_source" not in body  # only the fields asked for
    (record,) = audit(live, "inv")
    assert record["fields"] == [[INDEX, "p1", "phone"]]
    assert record["revealed"] == [[INDEX, "p1"]]
    assert record["purpose"] == PURPOSE and record["status"] == 200 and record["outcome"] == "ok"
    assert "13912340987" not in str(record)


def test_no_purpose_no_reveal(live: LiveServer) -> None:
    with client(live, "inv", purpose=None) as http:
        response = reveal(http, "p2", ["phone"])
    assert response.status_code == 400
    assert "requires a purpose" in error(response)["reason"] and "13800000002" not in response.text


def test_reading_is_not_revealing(live: LiveServer) -> None:
    with client(live, "masked") as http:
        assert http.get(f"/{INDEX}/_doc/p2").json()["_source"]["phone"] == "138****0002"
        response = reveal(http, "p2", ["phone"])
    assert response.status_code == 403
    assert error(response)["reason"] == ("action [indices:data/read/reveal] is unauthorized for user [masked] "
                                         f"on indices [{INDEX}]")


def test_field_security_of_the_reveal_role_holds(live: LiveServer) -> None:
    with client(live, "inv") as http:
        notes = reveal(http, "p2", ["phone", "notes"])  # one refused field refuses the whole request
        assert notes.status_code == 403 and "[notes]" in error(notes)["reason"]
        assert "13800000002" not in notes.text and "secret" not in notes.text
    with client(live, "huangpu") as http:
        national = reveal(http, "h1", ["national_id"])  # its reveal entry grants the phone only
        assert national.status_code == 403 and "[national_id]" in error(national)["reason"]
        phone = reveal(http, "h1", ["phone"])
        assert phone.status_code == 200 and phone.json()["fields"] == {"phone": ["13655554444"]}
        outside = reveal(http, "p2", ["phone"])  # readable (masked), but outside the reveal query
        assert outside.status_code == 403 and "13800000002" not in outside.text


def test_a_record_the_caller_cannot_read_is_missing(live: LiveServer) -> None:
    with client(live, "inv") as http:
        outside, missing = reveal(http, "h1", ["phone"]), reveal(http, "nope", ["phone"])
    assert outside.status_code == missing.status_code == 404
    assert error(outside)["type"] == error(missing)["type"] == "document_missing_exception"
    assert error(outside)["reason"] == "[h1]: document missing" and "13655554444" not in outside.text


@pytest.mark.parametrize("body", [{"fields": []}, {"fields": "phone"}, {"fields": ["ph*"]}, {"fields": [1]},
                                  {"fields": ["phone"] * 17 + [f"f{i}" for i in range(17)]},
                                  {"fields": ["phone"], "purpose": "x"}, [], {}],
                         ids=["empty", "string", "wildcard", "number", "too many", "unknown key", "array", "no fields"])
def test_bad_requests_are_400(live: LiveServer, body: Any) -> None:
    with client(live, "inv") as http:
        response = http.post(f"/_strongroom/reveal/{INDEX}/p2", json=body)
    assert response.status_code == 400, response.text
    assert error(response)["type"] in ("illegal_argument_exception", "parsing_exception")


def test_unknown_fields_and_multi_fields_are_400(live: LiveServer) -> None:
    with client(live, "huangpu") as http:
        assert reveal(http, "h1", ["phon"]).status_code == 403  # outside its grant: not told whether it exists
    with client(live, "admin", PASSWORD) as http:
        for name in ("phon", "name.raw"):
            response = reveal(http, "h1", [name])
            assert response.status_code == 400 and f"[{name}] is not a field" in error(response)["reason"]
        missing_body = http.post(f"/_strongroom/reveal/{INDEX}/h1")
        assert missing_body.status_code == 400


def test_the_reveal_budget_stops_the_fourth_field_and_alerts(live: LiveServer) -> None:
    with client(live, "inv2") as http:
        assert reveal(http, "p2", ["phone", "national_id"]).status_code == 200
        assert reveal(http, "p1", ["national_id"]).status_code == 200
        refused = reveal(http, "p1", ["phone"])
        assert refused.status_code == 429 and "reveal budget of user [inv2] exhausted" in error(refused)["reason"]
        assert "retry-after" in refused.headers and "13912340987" not in refused.text
        usage = http.get("/_strongroom/usage").json()["usage"]["reveals"]["hour"]
        assert usage == {"used": 3, "limit": 3, "remaining": 0}
        assert http.get(f"/{INDEX}/_doc/p1").status_code == 200  # reading masked records goes on
    with client(live, "admin", PASSWORD, purpose=None) as http:
        alerts = http.get("/_strongroom/alerts", params={"identity": "inv2", "kind": "reveal_budget_exhausted"}
                          ).json()["alerts"]
    assert len(alerts) == 1 and alerts[0]["evidence"]["fields"] == ["phone"] and alerts[0]["evidence"]["doc"] == "p1"
    records = audit(live, "inv2")
    assert [r["status"] for r in records] == [200, 200, 429]
    assert [r.get("fields") for r in records] == [[[INDEX, "p2", "phone"], [INDEX, "p2", "national_id"]],
                                                  [[INDEX, "p1", "national_id"]], None]  # the refusal showed nothing


def test_the_superuser_reveals_with_a_purpose_and_is_audited(live: LiveServer) -> None:
    with client(live, "admin", PASSWORD) as http:
        response = reveal(http, "h1", ["notes", "phone", "national_id"])
    assert response.status_code == 200
    assert response.json()["fields"] == {"notes": ["secret notes h1"], "phone": ["13655554444"],
                                         "national_id": ["310101197001019999"]}
    (record,) = [r for r in audit(live, "admin") if r["status"] == 200]
    assert record["fields"] == [[INDEX, "h1", "notes"], [INDEX, "h1", "phone"], [INDEX, "h1", "national_id"]]


def test_an_api_key_reveals_only_if_its_own_descriptors_allow(live: LiveServer) -> None:
    with client(live, "huangpu", purpose=None) as http:
        keys = {}
        for name, privileges in (("read-only", ["read"]), ("revealing", ["read", "reveal"])):
            created = http.post("/_security/api_key", json={"name": name, "role_descriptors": {"r": {
                "indices": [{"names": [INDEX], "privileges": privileges}]}}})
            assert created.status_code == 200, created.text
            keys[name] = created.json()["encoded"]
    for name, expected in (("read-only", 403), ("revealing", 200)):
        with httpx.Client(base_url=live.url, verify=ssl.create_default_context(cafile=live.ca), timeout=30,
                          headers={"Authorization": f"ApiKey {keys[name]}", "X-Strongroom-Purpose": PURPOSE}) as http:
            assert reveal(http, "h1", ["phone"]).status_code == expected
            # the owner's limits still hold: the key cannot reveal what the owner's reveal role does not grant
            assert reveal(http, "h1", ["national_id"]).status_code == 403
