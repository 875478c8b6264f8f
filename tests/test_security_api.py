"""The `_security` API (users, roles, API keys, `_authenticate`) through the official client, plus
unit tests of `SecurityAdmin` where a live server adds nothing."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher, Type
from elasticsearch import (ApiError, AuthenticationException, AuthorizationException, BadRequestError,
                           Elasticsearch, NotFoundError)

from live import LiveServer, start_server
from strongroom.errors import (ActionRequestValidationError, AuthorizationError, IllegalArgumentError,
                               RequestError)
from strongroom.security.admin import KeyQuery, SecurityAdmin, SecurityRefusedError, pattern_covers
from strongroom.security.policy import RolePolicy
from strongroom.security.users import Principal, SecurityStore

RITA_PASSWORD = "lamp-orbit-violet-canyon-42"
READER_ROLE = {"cluster": ["manage_own_api_key"], "indices": [{"names": ["resid*"], "privileges": ["read"]}]}
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # unit tests only


# -- a live server of our own: the tests create users and roles ---------------------------------------
@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("security")
    server = start_server(root / "data", root / "config")
    yield server
    server.stop()


def client_for(live: LiveServer, **auth: Any) -> Elasticsearch:
    return Elasticsearch(live.url, ca_certs=str(live.ca), request_timeout=30, **auth)


@pytest.fixture(scope="module")
def admin(live: LiveServer) -> Iterator[Elasticsearch]:
    client = live.client()
    yield client
    client.close()


@pytest.fixture(scope="module")
def rita(admin: Elasticsearch, live: LiveServer) -> Iterator[Elasticsearch]:
    """A user without manage_security: reads `resid*`, manages her own API keys."""
    admin.security.put_role(name="reader", **READER_ROLE)
    admin.security.put_user(username="rita", password=RITA_PASSWORD, roles=["reader"],
                            full_name="Rita Reader")
    client = client_for(live, basic_auth=("rita", RITA_PASSWORD))
    yield client
    client.close()


def status_and_type(error: ApiError) -> tuple[int, str]:
    return error.meta.status, error.body["error"]["type"]


# -- _authenticate ------------------------------------------------------------------------------------
def test_authenticate_describes_the_caller(admin: Elasticsearch) -> None:
    realm = {"name": "native", "type": "native"}
    assert admin.security.authenticate().body == {
        "username": "admin", "roles": ["superuser"], "full_name": None, "email": None, "metadata": {},
        "enabled": True, "authentication_realm": realm, "lookup_realm": realm, "authentication_type": "realm"}


# -- users ----------------------------------------------------------------------------------------------
def test_user_round_trip(admin: Elasticsearch) -> None:
    created = admin.security.put_user(username="ursula", password="quiet-river-stone-harbor-77",
                                      roles=["reader"], full_name="Ursula U", email="u@example.org",
                                      metadata={"team": "a"})
    assert created.body == {"created": True}
    expected = {"username": "ursula", "roles": ["reader"], "full_name": "Ursula U", "email": "u@example.org",
                "metadata": {"team": "a"}, "enabled": True}
    assert admin.security.get_user(username="ursula").body == {"ursula": expected}
    # An update without a password keeps the password; fields not sent keep their values.
    assert admin.security.put_user(username="ursula", roles=["reader", "other"]).body == {"created": False}
    expected["roles"] = ["reader", "other"]
    assert admin.security.get_user(username="ursula").body == {"ursula": expected}
    both = admin.security.get_user(username=["ursula", "admin", "nobody"]).body
    assert set(both) == {"ursula", "admin"}
    assert {"admin", "ursula"} <= set(admin.security.get_user().body)
    assert admin.security.delete_user(username="ursula").body == {"found": True}
    with pytest.raises(NotFoundError) as gone:
        admin.security.delete_user(username="ursula")
    assert gone.value.body == {"found": False}
    with pytest.raises(NotFoundError) as missing:
        admin.security.get_user(username="ursula")
    assert missing.value.body == {}


@pytest.mark.parametrize("password", ["short-pass", "passwordpassword123", "aaaaaaaaaaaaaaaaaaaa",
                                      "abcdefghijklmnopq"])
def test_weak_passwords_are_refused(admin: Elasticsearch, password: str) -> None:
    with pytest.raises(BadRequestError) as refused:
        admin.security.put_user(username="weakling", password=password, roles=[])
    assert status_and_type(refused.value) == (400, "action_request_validation_exception")
    assert password not in json.dumps(refused.value.body)
    with pytest.raises(NotFoundError):
        admin.security.get_user(username="weakling")


@pytest.mark.parametrize("body", [{"roles": []}, {"password": "quiet-river-stone-harbor-77"},
                                  {"password": "quiet-river-stone-harbor-77", "roles": [], "surprise": 1},
                                  {"password": "quiet-river-stone-harbor-77", "roles": "reader"}])
def test_bad_user_bodies_are_400(admin: Elasticsearch, body: dict[str, Any]) -> None:
    with pytest.raises(BadRequestError):
        admin.security.put_user(username="badbody", body=body)


def test_bad_usernames_are_400(admin: Elasticsearch) -> None:
    for name in ["_hidden", " padded", "a:b", "tab\there"]:
        with pytest.raises(BadRequestError):
            admin.security.put_user(username=name, password="quiet-river-stone-harbor-77", roles=[])


def test_password_hash_must_be_argon2id(admin: Elasticsearch, live: LiveServer) -> None:
    bcrypt = "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
    argon2i = PasswordHasher(type=Type.I, memory_cost=19456, time_cost=2, parallelism=1).hash("x")
    weak = PasswordHasher(memory_cost=8, time_cost=1, parallelism=1).hash("x")
    huge = "$argon2id$v=19$m=4194304,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$" + "A" * 43
    for bad in [bcrypt, argon2i, weak, huge, "plain-text-not-a-hash"]:
        with pytest.raises(BadRequestError) as refused:
            admin.security.put_user(username="hashed", password_hash=bad, roles=[])
        assert status_and_type(refused.value) == (400, "illegal_argument_exception")
        assert bad not in json.dumps(refused.value.body)
    password = "amber-falcon-tundra-mosaic-9"
    good = PasswordHasher(memory_cost=19456, time_cost=2, parallelism=1).hash(password)
    assert admin.security.put_user(username="hashed", password_hash=good, roles=[])["created"] is True
    with client_for(live, basic_auth=("hashed", password)) as hashed:
        assert hashed.security.authenticate()["username"] == "hashed"
    assert "$argon2" not in json.dumps(admin.security.get_user(username="hashed").body)
    admin.security.delete_user(username="hashed")


def test_enable_and_disable(admin: Elasticsearch, rita: Elasticsearch) -> None:
    assert admin.security.disable_user(username="rita").body == {}
    with pytest.raises(AuthenticationException):
        rita.security.authenticate()
    assert admin.security.get_user(username="rita")["rita"]["enabled"] is False
    assert admin.security.enable_user(username="rita").body == {}
    assert rita.security.authenticate()["username"] == "rita"
    with pytest.raises(BadRequestError):
        admin.security.disable_user(username="admin")  # Not one's own account.
    with pytest.raises(NotFoundError):
        admin.security.enable_user(username="nobody-here")


def test_the_last_superuser_cannot_be_deleted(admin: Elasticsearch) -> None:
    with pytest.raises(BadRequestError) as refused:
        admin.security.delete_user(username="admin")
    assert "no enabled superuser" in refused.value.body["error"]["reason"]
    assert admin.security.authenticate()["username"] == "admin"


def test_change_own_password(admin: Elasticsearch, live: LiveServer) -> None:
    old, new = "quiet-river-stone-harbor-77", "copper-meadow-lantern-drift-5"
    admin.security.put_user(username="carol", password=old, roles=[])
    with client_for(live, basic_auth=("carol", old)) as carol:
        with pytest.raises(BadRequestError):
            carol.security.change_password(password="too-short")
        with pytest.raises(AuthorizationException):  # Someone else's password needs manage_security.
            carol.security.change_password(username="admin", password=new)
        assert carol.security.change_password(password=new).body == {}
        with pytest.raises(AuthenticationException):
            carol.security.authenticate()  # The old password stopped working at once.
    with client_for(live, basic_auth=("carol", new)) as carol:
        assert carol.security.authenticate()["username"] == "carol"
        assert carol.security.change_password(username="carol", password=old).body == {}
    assert admin.security.change_password(username="carol", password=new).body == {}  # An administrator may.
    with client_for(live, basic_auth=("carol", new)) as carol:
        assert carol.security.authenticate()["username"] == "carol"
    admin.security.delete_user(username="carol")


# -- roles ----------------------------------------------------------------------------------------------
def test_role_round_trip(admin: Elasticsearch) -> None:
    body = {"cluster": ["monitor"], "indices": [{"names": ["residents"], "privileges": ["read"],
                                                 "field_security": {"grant": ["*"], "except": ["case_notes"]},
                                                 "query": {"term": {"district": "浦东新区"}}}],
            "metadata": {"version": 1}}
    assert admin.security.put_role(name="analyst", **body).body == {"role": {"created": True}}
    assert admin.security.put_role(name="analyst", **body).body == {"role": {"created": False}}
    assert admin.security.get_role(name="analyst").body == {"analyst": {
        "cluster": ["monitor"],
        "indices": [{"names": ["residents"], "privileges": ["read"],
                     "field_security": {"grant": ["*"], "except": ["case_notes"]},
                     "query": {"term": {"district": "浦东新区"}}, "allow_restricted_indices": False}],
        "applications": [], "run_as": [], "metadata": {"version": 1},
        "transient_metadata": {"enabled": True}}}
    everything = admin.security.get_role().body
    assert {"analyst", "superuser"} <= set(everything)
    assert everything["superuser"]["metadata"] == {"_reserved": True}
    assert set(admin.security.get_role(name=["analyst", "nope"]).body) == {"analyst"}
    assert admin.security.delete_role(name="analyst").body == {"found": True}
    with pytest.raises(NotFoundError) as gone:
        admin.security.delete_role(name="analyst")
    assert gone.value.body == {"found": False}
    with pytest.raises(NotFoundError) as missing:
        admin.security.get_role(name="analyst")
    assert missing.value.body == {}


def test_superuser_role_is_reserved(admin: Elasticsearch) -> None:
    with pytest.raises(BadRequestError) as put:
        admin.security.put_role(name="superuser", cluster=["monitor"])
    assert status_and_type(put.value) == (400, "illegal_argument_exception")
    with pytest.raises(BadRequestError):
        admin.security.delete_role(name="superuser")
    assert admin.security.get_role(name="superuser")["superuser"]["cluster"] == ["all"]


@pytest.mark.parametrize("bad", [{"cluster": ["rule_the_world"]},
                                 {"indices": [{"names": ["x"], "privileges": ["steal"]}]},
                                 {"indices": [{"privileges": ["read"]}]},
                                 {"indices": [{"names": ["x"], "privileges": ["read"],
                                               "query": {"nope": {}}}]},
                                 {"run_as": ["admin"]},
                                 {"unexpected": True}])
def test_bad_role_body_is_400_and_changes_nothing(admin: Elasticsearch, bad: dict[str, Any]) -> None:
    admin.security.put_role(name="stable", cluster=["monitor"])
    before = admin.security.get_role(name="stable").body
    with pytest.raises(BadRequestError):
        admin.security.put_role(name="stable", body=bad)
    assert admin.security.get_role(name="stable").body == before


# -- authorization ----------------------------------------------------------------------------------------
def test_security_admin_needs_manage_security(rita: Elasticsearch) -> None:
    calls = [lambda: rita.security.get_user(), lambda: rita.security.get_user(username="admin"),
             lambda: rita.security.put_user(username="mallory", password="quiet-river-stone-harbor-77",
                                            roles=["superuser"]),
             lambda: rita.security.put_user(username="rita", roles=["superuser"]),
             lambda: rita.security.delete_user(username="admin"),
             lambda: rita.security.disable_user(username="admin"),
             lambda: rita.security.get_role(), lambda: rita.security.put_role(name="reader", cluster=["all"]),
             lambda: rita.security.delete_role(name="reader"),
             lambda: rita.security.get_api_key(),  # everyone's keys: manage_api_key
             lambda: rita.security.invalidate_api_key(username="admin")]
    for call in calls:
        with pytest.raises(AuthorizationException) as refused:
            call()
        assert status_and_type(refused.value) == (403, "security_exception")
    assert rita.security.authenticate()["roles"] == ["reader"]


# -- API keys ----------------------------------------------------------------------------------------------
def test_api_key_round_trip(admin: Elasticsearch, live: LiveServer) -> None:
    before = int(time.time() * 1000)
    created = admin.security.create_api_key(name="ingest", expiration="1d", metadata={"app": "loader"}).body
    assert set(created) == {"id", "name", "expiration", "api_key", "encoded"}
    assert created["name"] == "ingest"
    assert before + 86_400_000 <= created["expiration"] <= int(time.time() * 1000) + 86_400_000
    assert base64.b64decode(created["encoded"]).decode() == f"{created['id']}:{created['api_key']}"
    with client_for(live, api_key=created["encoded"]) as keyed:
        me = keyed.security.authenticate().body
    realm = {"name": "_es_api_key", "type": "_es_api_key"}
    assert me == {"username": "admin", "roles": [], "full_name": None, "email": None, "metadata": {},
                  "enabled": True, "authentication_realm": realm, "lookup_realm": realm,
                  "authentication_type": "api_key", "api_key": {"id": created["id"], "name": "ingest"}}
    got = admin.security.get_api_key(id=created["id"]).body
    creation = got["api_keys"][0]["creation"]
    assert before <= creation <= int(time.time() * 1000)
    assert got["api_keys"] == [{"id": created["id"], "name": "ingest", "creation": creation,
                                "expiration": created["expiration"], "invalidated": False,
                                "username": "admin", "realm": "native", "metadata": {"app": "loader"},
                                "role_descriptors": {}}]
    assert admin.security.get_api_key(name="ing*")["api_keys"][0]["id"] == created["id"]
    assert created["api_key"] not in json.dumps(admin.security.get_api_key().body)
    result = admin.security.invalidate_api_key(ids=[created["id"]]).body
    assert result == {"invalidated_api_keys": [created["id"]], "previously_invalidated_api_keys": [],
                      "error_count": 0}
    again = admin.security.invalidate_api_key(id=created["id"]).body
    assert again == {"invalidated_api_keys": [], "previously_invalidated_api_keys": [created["id"]],
                     "error_count": 0}
    assert admin.security.get_api_key(id=created["id"], active_only=True)["api_keys"] == []
    assert admin.security.get_api_key(id=created["id"])["api_keys"][0]["invalidated"] is True


def test_get_api_key_never_shows_secrets(admin: Elasticsearch, live: LiveServer) -> None:
    created = admin.security.create_api_key(name="secretive").body
    stored = json.loads((live.data_dir / "security" / "api_keys.json").read_text())["api_keys"][created["id"]]
    shown = json.dumps([admin.security.get_api_key(id=created["id"]).body, admin.security.get_api_key().body,
                        admin.security.get_api_key(owner=True, with_limited_by=True).body])
    for secret in (created["api_key"], created["encoded"], stored["digest"], stored["salt"]):
        assert secret not in shown
    assert "digest" not in shown and "salt" not in shown
    assert created["api_key"] not in (live.data_dir / "security" / "api_keys.json").read_text()


def test_a_key_may_narrow_its_owner(rita: Elasticsearch, live: LiveServer) -> None:
    descriptors = {"r": {"indices": [{"names": ["residents", "resid2*"], "privileges": ["read"]}]}}
    created = rita.security.create_api_key(name="narrow", role_descriptors=descriptors).body
    mine = rita.security.get_api_key(owner=True, name="narrow")["api_keys"]
    assert [k["id"] for k in mine] == [created["id"]]
    assert mine[0]["role_descriptors"]["r"]["indices"][0]["names"] == ["residents", "resid2*"]
    with client_for(live, api_key=created["encoded"]) as keyed:
        assert keyed.security.authenticate()["api_key"]["name"] == "narrow"
    with pytest.raises(AuthorizationException):  # Without owner=true it asks for everyone's keys.
        rita.security.get_api_key(id=created["id"])
    invalidated = rita.security.invalidate_api_key(owner=True, name="narrow")
    assert invalidated["invalidated_api_keys"] == [created["id"]]


@pytest.mark.parametrize("descriptors", [
    {"wide": {"indices": [{"names": ["*"], "privileges": ["read"]}]}},
    {"wide": {"indices": [{"names": ["res*"], "privileges": ["read"]}]}},
    {"wide": {"indices": [{"names": ["residents"], "privileges": ["write"]}]}},
    {"wide": {"indices": [{"names": ["residents"], "privileges": ["all"]}]}},
    {"wide": {"cluster": ["manage_security"]}},
    {"ok": {"indices": [{"names": ["residents"], "privileges": ["read"]}]},
     "wide": {"indices": [{"names": ["patients"], "privileges": ["read"]}]}},
], ids=["star", "shorter-prefix", "write", "all", "cluster", "second-descriptor"])
def test_a_key_wider_than_its_owner_is_refused_and_not_stored(rita: Elasticsearch, admin: Elasticsearch,
                                                              descriptors: dict[str, Any]) -> None:
    with pytest.raises(AuthorizationException) as refused:
        rita.security.create_api_key(name="too-wide", role_descriptors=descriptors)
    assert status_and_type(refused.value) == (403, "security_exception")
    assert "[wide]" in refused.value.body["error"]["reason"]
    assert admin.security.get_api_key(name="too-wide")["api_keys"] == []


def test_an_api_key_cannot_create_keys_or_change_passwords(admin: Elasticsearch, live: LiveServer) -> None:
    created = admin.security.create_api_key(name="no-children").body
    with client_for(live, api_key=created["encoded"]) as keyed:
        with pytest.raises(AuthorizationException):
            keyed.security.create_api_key(name="child")
        with pytest.raises(AuthorizationException):
            keyed.security.change_password(password="copper-meadow-lantern-drift-5")
    assert admin.security.get_api_key(name="child")["api_keys"] == []
    admin.security.invalidate_api_key(ids=[created["id"]])


def test_bad_api_key_requests_are_400(admin: Elasticsearch) -> None:
    for body in [{}, {"name": "_x"}, {"name": " x"}, {"name": "x", "expiration": "soon"},
                 {"name": "x", "expiration": "0s"},
                 {"name": "x", "role_descriptors": {"r": {"cluster": ["bogus"]}}},
                 {"name": "x", "metadata": {"_reserved": 1}}, {"name": "x", "surprise": True}]:
        with pytest.raises(BadRequestError):
            admin.security.create_api_key(body=body)
    with pytest.raises(BadRequestError):
        admin.security.invalidate_api_key(body={})  # Names nothing.
    with pytest.raises(BadRequestError):
        admin.security.invalidate_api_key(id="a", ids=["b"])
    with pytest.raises(BadRequestError):
        admin.security.get_api_key(owner=True, username="admin")


def test_an_invalidated_key_is_refused_on_the_next_request(admin: Elasticsearch, live: LiveServer) -> None:
    created = admin.security.create_api_key(name="revoked").body
    outcomes: list[tuple[float, bool]] = []
    stop = threading.Event()

    def hammer() -> None:
        with client_for(live, api_key=created["encoded"]) as keyed:
            while not stop.is_set():
                try:
                    keyed.security.authenticate()
                    outcomes.append((time.monotonic(), True))
                except AuthenticationException:
                    outcomes.append((time.monotonic(), False))

    worker = threading.Thread(target=hammer, daemon=True)
    worker.start()
    deadline = time.monotonic() + 10
    while not any(ok for _, ok in outcomes) and time.monotonic() < deadline:
        time.sleep(0.01)
    admin.security.invalidate_api_key(ids=[created["id"]])
    invalidated = time.monotonic()
    with client_for(live, api_key=created["encoded"]) as keyed, pytest.raises(AuthenticationException):
        keyed.security.authenticate()  # The very next request.
    time.sleep(1.0)
    stop.set()
    worker.join(timeout=10)
    assert any(ok for _, ok in outcomes)
    failures = [at for at, ok in outcomes if not ok]
    assert failures and failures[0] - invalidated < 1.0
    # No success began after the invalidation was acknowledged (one in flight may end just after it).
    late = [at for at, ok in outcomes if ok and at > invalidated]
    assert len(late) <= 1


# -- SecurityAdmin unit tests (no server) -----------------------------------------------------------------
@pytest.mark.parametrize(("owner", "wanted", "covered"), [
    ("resid*", "residents", True), ("resid*", "resid2*", True), ("resid*", "*", False),
    ("resid*", "res*", False),
    ("*", "anything*", True), ("*?", "?*", True), ("a?c", "abc", True), ("a?c", "a*c", False),
    ("*a*", "a*a", True), ("residents", "res?dents", False), ("resid*", "resid[12]", False),
    ("[*", "[a-z]*", False), ("a*b", "a*", False), ("a*", "a", True)])
def test_pattern_covers(owner: str, wanted: str, covered: bool) -> None:
    assert pattern_covers(owner, wanted) is covered


class Harness:
    def __init__(self, root: Path) -> None:
        self.store = SecurityStore(root, hasher=FAST)
        self.store.bootstrap("correct-horse-battery-staple-2022")
        self.policy = RolePolicy(self.store.role)
        self.changes = 0
        self.now = 1_700_000_000.0

    def changed(self) -> None:
        self.changes += 1

    def admin(self, principal: Principal) -> SecurityAdmin:
        return SecurityAdmin(principal, self.store, self.policy, on_change=self.changed,
                             clock=lambda: self.now)


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


ADMIN = Principal("admin", ("superuser",))


def run(awaitable: Any) -> Any:
    return asyncio.run(awaitable)


def test_every_change_calls_on_change(harness: Harness) -> None:
    admin = harness.admin(ADMIN)
    steps = [admin.put_role("reader", READER_ROLE), admin.put_user("rita", {"password": RITA_PASSWORD,
                                                                           "roles": ["reader"]}),
             admin.set_enabled("rita", False), admin.set_enabled("rita", True),
             admin.change_password("rita", {"password": "copper-meadow-lantern-drift-5"}),
             admin.create_api_key({"name": "k"}), admin.invalidate_api_keys(KeyQuery(owner=True)),
             admin.delete_user("rita"), admin.delete_role("reader")]
    for count, step in enumerate(steps, 1):
        run(step)
        assert harness.changes == count
    run(admin.get_users(None))
    run(admin.get_roles(None))
    run(admin.get_api_keys(KeyQuery()))
    assert harness.changes == len(steps)  # Reads change nothing.


def test_refusals_store_nothing(harness: Harness) -> None:
    admin = harness.admin(ADMIN)
    run(admin.put_role("reader", READER_ROLE))
    run(admin.put_user("rita", {"password": RITA_PASSWORD, "roles": ["reader"]}))
    generation, changes = harness.store.generation, harness.changes
    rita = harness.admin(Principal("rita", ("reader",)))
    with pytest.raises(SecurityRefusedError):
        run(rita.create_api_key({"name": "k", "role_descriptors": {"w": {"cluster": ["monitor"]}}}))
    with pytest.raises(RequestError):
        run(admin.put_role("reader", {"indices": "nope"}))
    with pytest.raises(IllegalArgumentError):
        run(admin.put_role("superuser", {}))
    with pytest.raises(ActionRequestValidationError):
        run(admin.put_user("weak", {"password": "password", "roles": []}))
    assert (harness.store.generation, harness.changes) == (generation, changes)
    assert harness.store.api_keys() == [] and harness.store.role("reader").cluster == ("manage_own_api_key",)


def test_key_scope_own_and_any(harness: Harness) -> None:
    admin = harness.admin(ADMIN)
    run(admin.put_role("reader", READER_ROLE))
    rita = harness.admin(Principal("rita", ("reader",)))
    nobody = harness.admin(Principal("nobody", ("no-such-role",)))
    mine = run(rita.create_api_key({"name": "mine"}))
    theirs = run(admin.create_api_key({"name": "theirs"}))
    assert [k["id"] for k in run(rita.get_api_keys(KeyQuery(owner=True)))] == [mine["id"]]
    assert run(rita.get_api_keys(KeyQuery(owner=True, ids=(theirs["id"],)))) == []
    assert [k["id"] for k in run(rita.get_api_keys(KeyQuery(username="rita")))] == [mine["id"]]
    with pytest.raises(AuthorizationError):
        run(rita.get_api_keys(KeyQuery(ids=(theirs["id"],))))
    with pytest.raises(AuthorizationError):
        run(nobody.create_api_key({"name": "x"}))
    result = run(rita.invalidate_api_keys(KeyQuery(owner=True, ids=(theirs["id"],))))
    assert result["invalidated_api_keys"] == []
    assert {k["id"] for k in run(admin.get_api_keys(KeyQuery()))} == {mine["id"], theirs["id"]}


def test_expiration_and_active_only(harness: Harness) -> None:
    admin = harness.admin(ADMIN)
    created = run(admin.create_api_key({"name": "short", "expiration": "30m"}))
    assert created["expiration"] == int(harness.now * 1000) + 30 * 60 * 1000
    assert len(run(admin.get_api_keys(KeyQuery(active_only=True)))) == 1
    harness.now += 31 * 60
    assert run(admin.get_api_keys(KeyQuery(active_only=True))) == []
    assert "expiration" not in run(admin.create_api_key({"name": "forever", "expiration": "-1"}))


def test_own_password_change_needs_no_privilege_but_a_hash_does(harness: Harness) -> None:
    admin = harness.admin(ADMIN)
    run(admin.put_user("rita", {"password": RITA_PASSWORD, "roles": []}))
    rita = harness.admin(Principal("rita", ()))
    run(rita.change_password(None, {"password": "copper-meadow-lantern-drift-5"}))
    assert harness.store.verify("rita", "copper-meadow-lantern-drift-5") is not None
    good = PasswordHasher(memory_cost=19456, time_cost=2, parallelism=1).hash("amber-falcon-tundra-mosaic-9")
    with pytest.raises(AuthorizationError):
        run(rita.change_password(None, {"password_hash": good}))
    run(admin.change_password("rita", {"password_hash": good}))
    assert harness.store.get_user("rita").password_hash == good
