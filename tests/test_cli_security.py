"""`strongroom users …` and `strongroom roles …`: offline changes to the security store of a stopped
server; refused while a server holds the data directory; bad input changes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner, Result

from live import PASSWORD, LiveServer
from strongroom.cli import main
from strongroom.security.users import SecurityStore

FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # Tests only: argon2 is slow on purpose.
ALICE_PASSWORD = "alice-has-a-long-passphrase"
ANALYST = {"cluster": ["monitor"],
           "indices": [{"names": ["residents"], "privileges": ["read"],
                        "field_security": {"grant": ["*"], "except": ["national_id"]}}]}

Run = Callable[..., Result]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    SecurityStore(directory, hasher=FAST_HASHER).bootstrap(PASSWORD)
    return directory


@pytest.fixture
def run(data: Path) -> Run:
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, data_dir: Path = data) -> Result:
        return runner.invoke(main, [*args, "--data-dir", str(data_dir)], input=input)

    return invoke


def security_files(data: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((data / "security").iterdir())}


def test_users_add_list_passwd_delete(run: Run, data: Path) -> None:
    added = run("users", "add", "alice", "--role", "analyst", "--role", "monitoring", "--password-stdin",
                input=ALICE_PASSWORD + "\n")
    assert added.exit_code == 0, added.output
    assert "User [alice] created with roles [analyst, monitoring]" in added.stdout
    assert "role [analyst] does not exist" in added.stderr  # A typo would grant nothing: say so.
    store = SecurityStore(data, hasher=FAST_HASHER)
    assert store.verify("alice", ALICE_PASSWORD) is not None
    assert store.get_user("alice").roles == ["analyst", "monitoring"]  # type: ignore[union-attr]

    listed = run("users", "list")
    assert listed.exit_code == 0
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["USER", "ROLES", "ENABLED", "NOTE"]
    assert any(line.startswith("admin") and "bootstrap password never changed" in line for line in lines)
    assert any(line.split()[:3] == ["alice", "analyst,monitoring", "yes"] for line in lines)
    assert "$argon2" not in listed.output and ALICE_PASSWORD not in listed.output

    again = run("users", "add", "alice", "--role", "x", "--password-stdin", input=ALICE_PASSWORD + "\n")
    assert again.exit_code == 1 and "already exists" in again.output

    changed = run("users", "passwd", "admin", "--password-stdin", input="a-brand-new-admin-passphrase\n")
    assert changed.exit_code == 0, changed.output
    assert "bootstrap password never changed" not in run("users", "list").stdout
    assert SecurityStore(data, hasher=FAST_HASHER).verify("admin", "a-brand-new-admin-passphrase") is not None

    roles = run("users", "roles", "alice", "--role", "superuser")
    assert roles.exit_code == 0 and SecurityStore(data).get_user("alice").roles == ["superuser"]  # type: ignore
    assert run("users", "disable", "alice").exit_code == 0
    assert SecurityStore(data).get_user("alice").enabled is False  # type: ignore[union-attr]
    assert run("users", "enable", "alice").exit_code == 0
    assert SecurityStore(data).get_user("alice").enabled is True  # type: ignore[union-attr]

    deleted = run("users", "delete", "alice")
    assert deleted.exit_code == 0 and SecurityStore(data).get_user("alice") is None
    missing = run("users", "delete", "alice")
    assert missing.exit_code == 1 and "user [alice] not found" in missing.output


def test_users_refusals_change_nothing(run: Run, data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = security_files(data)
    weak = run("users", "add", "bob", "--role", "analyst", "--password-stdin", input="short\n")
    assert weak.exit_code == 1
    assert "Error adding user [bob]: passwords must be at least [15] characters long" in weak.output
    common = run("users", "add", "bob", "--role", "analyst", "--password-stdin", input="password" * 3 + "\n")
    assert common.exit_code == 1 and "too common" in common.output and "password" * 3 not in common.output

    answers = iter(["first-passphrase-typed", "second-passphrase-typed"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    mismatch = run("users", "add", "bob", "--role", "analyst")
    assert mismatch.exit_code == 1 and "the two passwords differ" in mismatch.output

    last = run("users", "delete", "admin")
    assert last.exit_code == 1 and "no enabled superuser" in last.output
    assert run("users", "disable", "admin").exit_code == 1
    bad_name = run("users", "add", "eve:x", "--role", "analyst", "--password-stdin", input=ALICE_PASSWORD + "\n")
    assert bad_name.exit_code == 1 and "invalid user name" in bad_name.output
    assert run("users", "passwd", "nobody", "--password-stdin", input=ALICE_PASSWORD + "\n").exit_code == 1
    assert security_files(data) == before


def test_users_add_prompts_twice(run: Run, data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return ALICE_PASSWORD

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    assert run("users", "add", "carol", "--role", "superuser").exit_code == 0
    assert len(prompts) == 2 and "[carol]" in prompts[0]
    assert SecurityStore(data, hasher=FAST_HASHER).verify("carol", ALICE_PASSWORD) is not None


def test_roles_put_show_list_delete(run: Run, data: Path, tmp_path: Path) -> None:
    role_file = tmp_path / "analyst.json"
    role_file.write_text(json.dumps(ANALYST))
    put = run("roles", "put", "analyst", "--file", str(role_file))
    assert put.exit_code == 0 and "Role [analyst] created." in put.stdout
    assert "Role [analyst] updated." in run("roles", "put", "analyst", "--file", str(role_file)).stdout

    shown = run("roles", "show", "analyst")
    assert shown.exit_code == 0
    body = json.loads(shown.stdout)["analyst"]
    assert body["cluster"] == ["monitor"]
    assert body["indices"][0]["names"] == ["residents"]
    assert body["indices"][0]["field_security"] == {"grant": ["*"], "except": ["national_id"]}

    listed = run("roles", "list").stdout
    assert "superuser (reserved)" in listed and "residents: read" in listed

    assert run("roles", "delete", "analyst").exit_code == 0
    assert run("roles", "show", "analyst").exit_code == 1
    gone = run("roles", "delete", "analyst")
    assert gone.exit_code == 1 and "role [analyst] not found" in gone.output


@pytest.mark.parametrize(("content", "error"), [
    ("{not json", "Failed to parse JSON"),
    ('{"indices": [{"names": ["residents"], "privileges": ["read_everything"]}]}', "unknown index privilege"),
    ('{"cluster": ["monitor"], "cluster": ["all"]}', "Duplicate field 'cluster'"),
    ('{"indices": [{"names": ["residents"], "privileges": ["read"], "query": {"no_such_query": {}}}]}', "no_such"),
    ('{"run_as": ["admin"]}', "[run_as] is not supported"),
    ('["a list"]', "must be an object"),
])
def test_a_bad_role_file_changes_nothing(run: Run, data: Path, tmp_path: Path, content: str, error: str) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(ANALYST))
    assert run("roles", "put", "analyst", "--file", str(good)).exit_code == 0
    before = security_files(data)
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    result = run("roles", "put", "analyst", "--file", str(bad))
    assert result.exit_code == 1 and "Error reading role [analyst]" in result.output and error in result.output
    assert security_files(data) == before


def test_reserved_role_and_missing_data_dir_are_refused(run: Run, data: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(ANALYST))
    assert "reserved" in run("roles", "put", "superuser", "--file", str(good)).output
    assert "reserved" in run("roles", "delete", "superuser").output
    nowhere = run("users", "list", data_dir=tmp_path / "typo")
    assert nowhere.exit_code == 1 and "no data directory at" in nowhere.output
    assert not (tmp_path / "typo").exists()  # A typo creates nothing.
    (tmp_path / "fresh").mkdir(mode=0o700)
    fresh = run("users", "add", "bob", "--role", "analyst", "--password-stdin", input=ALICE_PASSWORD + "\n",
                data_dir=tmp_path / "fresh")
    assert fresh.exit_code == 1 and "has no users yet" in fresh.output


def test_commands_refuse_while_the_server_runs(server: LiveServer, tmp_path: Path) -> None:
    runner = CliRunner()
    before = security_files(server.data_dir)
    role_file = tmp_path / "analyst.json"
    role_file.write_text(json.dumps(ANALYST))
    for args in (["users", "list"], ["users", "delete", "admin"], ["roles", "put", "analyst", "--file", str(role_file)],
                 ["users", "add", "dave", "--role", "analyst", "--password-stdin"]):
        result = runner.invoke(main, [*args, "--data-dir", str(server.data_dir)], input=ALICE_PASSWORD + "\n")
        assert result.exit_code == 1, args
        assert f"the server is running on {server.data_dir}; use the _security API instead" in result.output
    assert security_files(server.data_dir) == before
