"""The `strongroom` command."""

from __future__ import annotations

import contextlib
import getpass
import itertools
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import orjson

from . import __version__
from .client import ClientError, StrongroomClient
from .demo import RESIDENTS_BODY, RESIDENTS_INDEX, generate_residents
from .settings import SettingsError, load_settings

PASSWORD_ENV = "STRONGROOM_PASSWORD"
DEMO_BATCH = 2000


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@click.group()
@click.version_option(__version__, prog_name="strongroom")
def main() -> None:
    """Strongroom: an Elasticsearch-compatible search engine for personal records that cannot leak."""


def _batches(count: int, seed: int) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    residents = generate_residents(count, seed=seed)
    while batch := list(itertools.islice(residents, DEMO_BATCH)):
        yield batch


@main.command()
@click.option("--data-dir", type=click.Path(path_type=Path), required=True, help="Where indices are stored.")
@click.option("--config-dir", type=click.Path(path_type=Path), required=True,
              help="Certificates and configuration; never inside the data directory.")
@click.option("--host", default=None, help="Listen address (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Listen port (default 9200; 0 picks a free one).")
@click.option("--tls-cert", default=None, help="Your own PEM certificate chain (instead of the generated one).")
@click.option("--tls-key", default=None, help="Private key for --tls-cert.")
@click.option("--insecure-http", is_flag=True, help="Serve plain HTTP. Refused unless the address is loopback.")
@click.option("--demo", "demo_count", type=int, default=None,
              help="On start, load this many synthetic residents into index 'residents' if it does not exist.")
def serve(data_dir: Path, config_dir: Path, host: str | None, port: int | None, tls_cert: str | None,
          tls_key: str | None, insecure_http: bool, demo_count: int | None) -> None:
    """Run the server: TLS and authentication from the first start.

    Example:  strongroom serve --data-dir ./data --config-dir ./config
    """
    from .runtime import settle_collector
    from .server import StartupError, open_node, run, serve_forever

    _setup_logging()
    overrides = {"server.host": host, "server.port": port, "tls.certificate": tls_cert, "tls.key": tls_key,
                 "tls.enabled": False if insecure_http else None}
    try:
        settings = load_settings(config_dir, overrides)
        node = open_node(data_dir, config_dir, settings)
    except (SettingsError, StartupError) as exc:
        raise click.ClickException(f"Error starting Strongroom: {exc}") from None
    after_start = None
    if demo_count:
        async def after_start(started: Any) -> None:
            await _load_demo_in_process(started, demo_count)
    settle_collector()  # after the node's start-up objects exist, before the first request
    try:
        serve_forever(run(node, settings, after_start=after_start))
    except StartupError as exc:
        raise click.ClickException(f"Error starting Strongroom: {exc}") from None
    except KeyboardInterrupt:
        pass
    finally:
        node.close()


async def _load_demo_in_process(node: Any, count: int, seed: int = 2022) -> None:
    from .errors import ResourceAlreadyExistsError
    from .security.session import DocWrite

    session = node.gate.system_session("demo")
    try:
        await session.create_index(RESIDENTS_INDEX, RESIDENTS_BODY["settings"], RESIDENTS_BODY["mappings"])
    except ResourceAlreadyExistsError:
        click.echo(f"Index [{RESIDENTS_INDEX}] already exists; demo data not reloaded.", err=True)
        return
    with click.progressbar(length=count, label="Loading demo residents", file=sys.stderr) as bar:
        for batch in _batches(count, seed):
            writes = [DocWrite("index", RESIDENTS_INDEX, doc_id, doc, orjson.dumps(doc)) for doc_id, doc in batch]
            results, _ = await session.write(writes)
            failed = [r for r in results if isinstance(r.outcome, Exception)]
            if failed:
                raise RuntimeError(f"{len(failed)} demo documents were refused: {failed[0].outcome}")
            bar.update(len(batch))
    await session.refresh(RESIDENTS_INDEX)
    click.echo(f"Loaded {count} demo residents into index [{RESIDENTS_INDEX}].", err=True)


@main.command()
@click.option("--count", type=click.IntRange(1, 100_000_000), default=100_000, show_default=True,
              help="Number of synthetic residents.")
@click.option("--seed", type=int, default=2022, show_default=True, help="Seed of the deterministic generator.")
@click.option("--url", default="https://127.0.0.1:9200", show_default=True, help="Strongroom server.")
@click.option("--config-dir", type=click.Path(path_type=Path), default=None,
              help="Trust this server's generated CA (<config-dir>/certs/http_ca.crt).")
@click.option("--ca-certs", type=click.Path(path_type=Path, exists=True), default=None,
              help="CA certificate file to trust (overrides --config-dir).")
@click.option("--user", default="admin", show_default=True)
@click.option("--replace", is_flag=True, help="Delete an existing 'residents' index first.")
def demo(count: int, seed: int, url: str, config_dir: Path | None, ca_certs: Path | None, user: str,
         replace: bool) -> None:
    """Load deterministic synthetic Chinese residents into index 'residents' over the API.

    The password is read from $STRONGROOM_PASSWORD, or asked for.

    Example:  STRONGROOM_PASSWORD=... strongroom demo --count 10000 --config-dir ./config
    """
    if ca_certs is None and config_dir is not None:
        ca_certs = config_dir / "certs" / "http_ca.crt"
    password = os.environ.get(PASSWORD_ENV) or getpass.getpass(f"Password for [{user}]: ")
    client = StrongroomClient(url, user, password, ca_certs)
    try:
        if replace:
            client.request("DELETE", f"/{RESIDENTS_INDEX}", ok=(200, 404))
        client.request("PUT", f"/{RESIDENTS_INDEX}", RESIDENTS_BODY)
        with click.progressbar(length=count, label="Loading demo residents", file=sys.stderr) as bar:
            for batch in _batches(count, seed):
                lines = []
                for doc_id, doc in batch:
                    lines.append(orjson.dumps({"index": {"_id": doc_id}}))
                    lines.append(orjson.dumps(doc))
                response = client.request("POST", f"/{RESIDENTS_INDEX}/_bulk", ndjson=b"\n".join(lines) + b"\n")
                if response.get("errors"):
                    first = next(i for i in response["items"] if "error" in next(iter(i.values())))
                    raise click.ClickException(f"Error loading demo data: {next(iter(first.values()))['error']}")
                bar.update(len(batch))
        client.request("POST", f"/{RESIDENTS_INDEX}/_refresh")
    except ClientError as exc:
        raise click.ClickException(f"Error loading demo data into [{RESIDENTS_INDEX}]: {exc}") from None
    except OSError as exc:
        raise click.ClickException(f"Error reaching {url}: {exc}") from None
    finally:
        client.close()
    click.echo(f"Loaded {count} demo residents into index [{RESIDENTS_INDEX}].")


# -- doctor ------------------------------------------------------------------------------------
class _DoctorFailed(click.ClickException):
    exit_code = 2  # 0 ok, 1 warn, 2 fail: a deployment that cannot even be read is a failing one


DOCTOR_EXIT = {"ok": 0, "warn": 1, "fail": 2}


@main.command()
@click.option("--data-dir", type=click.Path(path_type=Path), required=True, help="The server's data directory.")
@click.option("--config-dir", type=click.Path(path_type=Path), required=True,
              help="The server's config directory (strongroom.toml, certificates).")
@click.option("--host", default=None, help="The address given to `serve --host`, if any (default: strongroom.toml).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (the shape of GET /_strongroom/doctor).")
def doctor(data_dir: Path, config_dir: Path, host: str | None, as_json: bool) -> None:
    """Check a deployment for the mistakes behind the big Elasticsearch leaks.

    Runs offline on the files the server reads, changes nothing, and works whether or not the
    server is running. Exit code: 0 all ok, 1 some warning, 2 some failure.

    Example:  strongroom doctor --data-dir ./data --config-dir ./config
    """
    import datetime as dt

    from .doctor import Deployment
    from .security.users import SecurityStore

    try:
        settings = load_settings(config_dir, {"server.host": host})
    except SettingsError as exc:
        raise _DoctorFailed(f"Error reading the settings: {exc}") from None
    store, problem = None, None
    try:
        if (data_dir / "security").exists():
            store = SecurityStore(data_dir)
    except Exception as exc:  # noqa: BLE001 - an unreadable store is a finding, not a crash
        problem = type(exc).__name__
    audit_dir = Path(settings["audit.dir"]) if settings["audit.dir"] else data_dir / "audit"
    report = Deployment(data_dir, config_dir, settings, store, store_problem=problem,
                        audit=audit_dir / "checkpoints.jsonl").report(
        dt.datetime.now(dt.timezone.utc))
    if as_json:
        click.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(_doctor_table(report))
    sys.exit(DOCTOR_EXIT[report["status"]])


def _doctor_table(report: dict[str, Any]) -> str:
    width = max(len(f["check"]) for f in report["findings"])
    lines = [f"{'STATUS':<6}  {'CHECK':<{width}}  FINDING"]
    for finding in report["findings"]:
        lines.append(f"{finding['status'].upper():<6}  {finding['check']:<{width}}  {finding['message']}")
        if finding["remedy"]:
            lines.append(f"{'':<6}  {'':<{width}}  -> {finding['remedy']}")
    lines.append(f"\nOverall: {report['status'].upper()} (checked at {report['checked_at']})")
    return "\n".join(lines)


# -- offline security store: users and roles ---------------------------------------------------
DATA_DIR_OPTION = click.option("--data-dir", type=click.Path(path_type=Path), required=True,
                               help="The data directory of a stopped server.")


@contextlib.contextmanager
def _offline_store(data_dir: Path) -> Iterator[Any]:
    """The security store of a stopped server, with the data directory locked as the server locks it."""
    from .errors import StrongroomError
    from .security.users import SecurityStore
    from .server import DataDirLocked, lock_data_dir

    if not data_dir.is_dir():
        raise click.ClickException(f"no data directory at {data_dir} (check --data-dir)")
    owner = data_dir.stat().st_uid
    if owner != os.geteuid():
        # Files written now would belong to this user, and the server could no longer read them.
        raise click.ClickException(f"{data_dir} belongs to another user (uid {owner}); run this command as that user")
    try:
        fd = lock_data_dir(data_dir)
    except DataDirLocked:
        raise click.ClickException(f"the server is running on {data_dir}; use the _security API instead") from None
    try:
        try:
            store = SecurityStore(data_dir)
        except (OSError, ValueError, KeyError, TypeError, StrongroomError) as exc:
            raise click.ClickException(f"cannot read the security store in {data_dir / 'security'} "
                                       f"({type(exc).__name__}); restore it from a backup") from None
        yield store
    finally:
        os.close(fd)


def _read_password(name: str, from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass(f"New password for [{name}]: ")
    if getpass.getpass("Repeat the password: ") != password:
        raise click.ClickException("the two passwords differ; nothing was changed")
    return password


def _check_username(name: str) -> None:
    # Elasticsearch's rule, plus no colon: HTTP Basic authentication splits user and password there.
    if not 1 <= len(name) <= 507 or name != name.strip() or name.startswith("_") or ":" in name or not all(
            " " <= c <= "~" for c in name):
        raise click.ClickException(f"invalid user name [{name[:64]}]: use 1-507 printable ASCII characters, no "
                                   "colon, no leading underscore or surrounding spaces")


def _warn_unknown_roles(store: Any, roles: tuple[str, ...]) -> None:
    for role in roles:
        if store.role(role) is None:
            click.echo(f"Warning: role [{role}] does not exist; it grants nothing until it is created.", err=True)


@main.group()
def users() -> None:
    """Manage users offline, while the server is stopped (use the _security API while it runs).

    Example:  strongroom users add alice --role analyst --data-dir ./data
    """


@users.command("list")
@DATA_DIR_OPTION
def users_list(data_dir: Path) -> None:
    """List users, their roles and state (never their password hashes).

    Example:  strongroom users list --data-dir ./data
    """
    with _offline_store(data_dir) as store:
        records = store.users()
    rows = [(u.name, ",".join(u.roles) or "-", "yes" if u.enabled else "no",
             "bootstrap password never changed" if u.bootstrap else "") for u in records]
    _table(("USER", "ROLES", "ENABLED", "NOTE"), rows)


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def _store_error(action: str, exc: Exception) -> click.ClickException:
    from .errors import StrongroomError

    reason = exc.reason if isinstance(exc, StrongroomError) else str(exc)
    return click.ClickException(f"Error {action}: {reason}")


@users.command("add")
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True, help="A role to grant (repeat for several).")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@DATA_DIR_OPTION
def users_add(name: str, roles: tuple[str, ...], password_stdin: bool, data_dir: Path) -> None:
    """Create a user. The password is asked twice, or read from standard input.

    Example:  strongroom users add alice --role analyst --data-dir ./data
    """
    from .security.passwords import PasswordPolicyError
    from .errors import StrongroomError

    _check_username(name)
    with _offline_store(data_dir) as store:
        if store.get_user(name) is not None:
            raise click.ClickException(f"user [{name}] already exists; use `users passwd` or `users roles`")
        if not store.initialized and "superuser" not in roles:
            raise click.ClickException(f"{data_dir} has no users yet: start the server once (it creates the "
                                       "superuser), or add a user with --role superuser first")
        password = _read_password(name, password_stdin)
        try:
            store.put_user(name, password=password, password_hash=None, roles=list(roles), full_name=None,
                           email=None, metadata={}, enabled=True)
        except (PasswordPolicyError, StrongroomError) as exc:
            raise _store_error(f"adding user [{name}]", exc) from None
        _warn_unknown_roles(store, roles)
    click.echo(f"User [{name}] created with roles [{', '.join(roles)}].")


@users.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@DATA_DIR_OPTION
def users_passwd(name: str, password_stdin: bool, data_dir: Path) -> None:
    """Set a user's password (this also retires a bootstrap password).

    Example:  strongroom users passwd admin --data-dir ./data
    """
    from .security.passwords import PasswordPolicyError

    with _offline_store(data_dir) as store:
        if store.get_user(name) is None:
            raise click.ClickException(f"user [{name}] not found")
        password = _read_password(name, password_stdin)
        try:
            store.change_password(name, password)
        except PasswordPolicyError as exc:
            raise _store_error(f"changing the password of [{name}]", exc) from None
    click.echo(f"Password of [{name}] changed.")


@users.command("roles")
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True, help="The user's roles from now on (repeat).")
@DATA_DIR_OPTION
def users_roles(name: str, roles: tuple[str, ...], data_dir: Path) -> None:
    """Replace a user's roles.

    Example:  strongroom users roles alice --role analyst --role monitoring --data-dir ./data
    """
    from .errors import StrongroomError

    with _offline_store(data_dir) as store:
        record = store.get_user(name)
        if record is None:
            raise click.ClickException(f"user [{name}] not found")
        try:
            store.put_user(name, password=None, password_hash=None, roles=list(roles), full_name=record.full_name,
                           email=record.email, metadata=record.metadata, enabled=record.enabled)
        except StrongroomError as exc:
            raise _store_error(f"changing the roles of [{name}]", exc) from None
        _warn_unknown_roles(store, roles)
    click.echo(f"User [{name}] now has roles [{', '.join(roles)}].")


def _set_enabled(name: str, data_dir: Path, enabled: bool) -> None:
    from .errors import StrongroomError

    verb = "enabling" if enabled else "disabling"
    with _offline_store(data_dir) as store:
        try:
            found = store.set_enabled(name, enabled)
        except StrongroomError as exc:
            raise _store_error(f"{verb} user [{name}]", exc) from None
    if not found:
        raise click.ClickException(f"user [{name}] not found")
    click.echo(f"User [{name}] {'enabled' if enabled else 'disabled'}.")


@users.command("disable")
@click.argument("name")
@DATA_DIR_OPTION
def users_disable(name: str, data_dir: Path) -> None:
    """Disable a user: its password and API keys stop working until it is enabled again.

    Example:  strongroom users disable alice --data-dir ./data
    """
    _set_enabled(name, data_dir, False)


@users.command("enable")
@click.argument("name")
@DATA_DIR_OPTION
def users_enable(name: str, data_dir: Path) -> None:
    """Enable a disabled user.

    Example:  strongroom users enable alice --data-dir ./data
    """
    _set_enabled(name, data_dir, True)


@users.command("delete")
@click.argument("name")
@DATA_DIR_OPTION
def users_delete(name: str, data_dir: Path) -> None:
    """Delete a user and invalidate its API keys.

    Example:  strongroom users delete alice --data-dir ./data
    """
    from .errors import StrongroomError

    with _offline_store(data_dir) as store:
        try:
            found = store.delete_user(name)
        except StrongroomError as exc:
            raise _store_error(f"deleting user [{name}]", exc) from None
    if not found:
        raise click.ClickException(f"user [{name}] not found")
    click.echo(f"User [{name}] deleted; its API keys are invalidated.")


@main.group()
def roles() -> None:
    """Manage roles offline, while the server is stopped (use the _security API while it runs).

    Example:  strongroom roles put analyst --file analyst.json --data-dir ./data
    """


@roles.command("list")
@DATA_DIR_OPTION
def roles_list(data_dir: Path) -> None:
    """List roles with their cluster privileges and index grants.

    Example:  strongroom roles list --data-dir ./data
    """
    with _offline_store(data_dir) as store:
        found = store.roles()
    rows = []
    for name in sorted(found):
        role = found[name]
        grants = "; ".join(f"{','.join(p.names)}: {','.join(p.privileges)}" for p in role.indices)
        rows.append((name + (" (reserved)" if role.metadata.get("_reserved") else ""),
                     ",".join(role.cluster) or "-", grants or "-"))
    _table(("ROLE", "CLUSTER", "INDICES"), rows)


@roles.command("show")
@click.argument("name")
@DATA_DIR_OPTION
def roles_show(name: str, data_dir: Path) -> None:
    """Print one role as JSON, in the shape of GET /_security/role/NAME.

    Example:  strongroom roles show analyst --data-dir ./data
    """
    with _offline_store(data_dir) as store:
        role = store.role(name)
    if role is None:
        raise click.ClickException(f"role [{name}] not found")
    click.echo(orjson.dumps({name: role.to_json()}, option=orjson.OPT_INDENT_2).decode())


@roles.command("put")
@click.argument("name")
@click.option("--file", "file", type=click.Path(path_type=Path, exists=True, dir_okay=False), required=True,
              help="The role as JSON, the body of PUT /_security/role/NAME.")
@DATA_DIR_OPTION
def roles_put(name: str, file: Path, data_dir: Path) -> None:
    """Create or replace a role from a JSON file; an invalid role changes nothing.

    Example:  strongroom roles put analyst --file analyst.json --data-dir ./data
    """
    from .errors import StrongroomError
    from .jsonio import loads_strict
    from .security.roles import RESERVED_ROLES, parse_role

    if name in RESERVED_ROLES:
        raise click.ClickException(f"role [{name}] is reserved and cannot be changed")
    try:
        role = parse_role(name, loads_strict(file.read_bytes()))
    except (StrongroomError, OSError) as exc:
        raise _store_error(f"reading role [{name}] from {file}", exc) from None
    with _offline_store(data_dir) as store:
        created = store.put_role(role)
    click.echo(f"Role [{name}] {'created' if created else 'updated'}.")


@roles.command("delete")
@click.argument("name")
@DATA_DIR_OPTION
def roles_delete(name: str, data_dir: Path) -> None:
    """Delete a role. Users keep its name in their roles, and it grants nothing.

    Example:  strongroom roles delete analyst --data-dir ./data
    """
    from .security.roles import RESERVED_ROLES

    if name in RESERVED_ROLES:
        raise click.ClickException(f"role [{name}] is reserved and cannot be deleted")
    with _offline_store(data_dir) as store:
        found = store.delete_role(name)
    if not found:
        raise click.ClickException(f"role [{name}] not found")
    click.echo(f"Role [{name}] deleted.")


@main.group()
def inspect() -> None:
    """Look at a stopped server's data the way someone who copied it would."""


@inspect.command("leakage")
@click.option("--index", "index_name", required=True, help="The index to inspect.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@DATA_DIR_OPTION
def inspect_leakage(index_name: str, as_json: bool, data_dir: Path) -> None:
    """Per blind field: documents, distinct tokens and the largest count sharing one token.

    Needs no key: it reads only the tokens in the index files, as a thief could. Few distinct tokens,
    or one token shared by many documents, means frequencies can reveal values.

    Example:  strongroom inspect leakage --index residents --data-dir ./data
    """
    from .engine.node import Engine
    from .errors import StrongroomError
    from .leakage import leakage_report, risk
    from .server import DataDirLocked, lock_data_dir

    if not data_dir.is_dir():
        raise click.ClickException(f"no data directory at {data_dir} (check --data-dir)")
    try:
        fd = lock_data_dir(data_dir)
    except DataDirLocked:
        raise click.ClickException(f"the server is running on {data_dir}; stop it first") from None
    try:
        engine = Engine(data_dir)
        try:
            rows = leakage_report(engine.index(index_name))
        except StrongroomError as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            engine.close()
    finally:
        os.close(fd)
    if as_json:
        click.echo(orjson.dumps([{**row, "risk": risk(row)} for row in rows], option=orjson.OPT_INDENT_2).decode())
        return
    if not rows:
        click.echo(f"index [{index_name}] has no blind fields")
        return
    click.echo(f"{'field':<20} {'type':<8} {'documents':>10} {'distinct':>10} {'largest':>10}  risk")
    for row in rows:
        distinct = "-" if row["distinct_tokens"] is None else str(row["distinct_tokens"])
        largest = "-" if row["largest_count"] is None else str(row["largest_count"])
        click.echo(f"{row['field']:<20} {row['type']:<8} {row['documents']:>10} {distinct:>10} {largest:>10}  "
                   f"{risk(row)}")


@main.group()
def keys() -> None:
    """Data key rotation and master key rewrapping (docs/protection.md)."""


@keys.command("rotate")
@click.option("--index", "index_name", required=True, help="The index whose data key gets a new version.")
@click.option("--reseal-only", is_flag=True, help="No new version: finish re-sealing with the current one.")
@click.option("--status", "status_only", is_flag=True, help="Only report the re-seal progress.")
@click.option("--wait", is_flag=True, help="Wait for the background re-seal, printing progress.")
@click.option("--url", default="https://127.0.0.1:9200", show_default=True, help="Strongroom server.")
@click.option("--config-dir", type=click.Path(path_type=Path), default=None,
              help="Config directory of a local server (for its CA certificate).")
@click.option("--ca-certs", type=click.Path(path_type=Path, exists=True), default=None, help="CA certificate file.")
@click.option("--user", default="admin", show_default=True, help="A user with manage_security.")
def keys_rotate(index_name: str, reseal_only: bool, status_only: bool, wait: bool, url: str,
                config_dir: Path | None, ca_certs: Path | None, user: str) -> None:
    """New data key version for new writes; a background job re-seals existing documents.

    Token (HMAC) keys do not change: rotating them means reindexing into a new index.
    The password is read from $STRONGROOM_PASSWORD, or asked for.

    Example:  strongroom keys rotate --index residents --wait --config-dir ./config
    """
    import time

    if ca_certs is None and config_dir is not None:
        ca_certs = config_dir / "certs" / "http_ca.crt"
    password = os.environ.get(PASSWORD_ENV) or getpass.getpass(f"Password for [{user}]: ")
    client = StrongroomClient(url, user, password, ca_certs)
    path = f"/_strongroom/keys/{index_name}/_rotate"
    try:
        if status_only:
            answer = client.request("GET", path)
        else:
            answer = client.request("POST", path + ("?reseal_only=true" if reseal_only else ""), {})
            click.echo(f"Index [{index_name}]: data key version {answer['key_version']}. Token keys: "
                       f"{answer.get('token_keys', 'unchanged')}.")
        while True:
            progress = answer if status_only else client.request("GET", path)
            click.echo(f"  re-sealed {progress['documents_resealed']} of {progress['documents_total']}, "
                       f"{progress['documents_remaining']} remaining, running: {progress['running']}")
            if status_only or not wait or not progress["running"]:
                break
            time.sleep(1.0)
    except ClientError as exc:
        raise click.ClickException(f"Error rotating keys of index [{index_name}]: {exc}") from None
    finally:
        client.close()


@keys.command("rewrap")
@click.option("--data-dir", type=click.Path(path_type=Path), required=True, help="The data directory (server stopped).")
@click.option("--config-dir", type=click.Path(path_type=Path), required=True,
              help="The config directory (for the current key and settings).")
@click.option("--new-key-file", type=click.Path(path_type=Path, exists=True, dir_okay=False), required=True,
              help="The new master key file (mode 0600, outside the data directory).")
def keys_rewrap(data_dir: Path, config_dir: Path, new_key_file: Path) -> None:
    """Rewrap every index's data keys under a new master key (offline; documents are not touched).

    The current key is found the way `serve` finds it (security.master_key_file,
    $STRONGROOM_MASTER_KEY, or <config-dir>/master.key). Start the server with the new key afterwards.

    Example:  strongroom keys rewrap --data-dir ./data --config-dir ./config --new-key-file /keys/new.key
    """
    from .crypto.keys import KeyProblem, load_master_key
    from .security.rotation import RewrapError, rewrap_all

    try:
        settings = load_settings(config_dir)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    key_file = settings["security.master_key_file"]
    env_value = os.environ.get("STRONGROOM_MASTER_KEY") or None
    old_file = Path(key_file) if key_file else (None if env_value else config_dir / "master.key")
    try:
        old, _warning = load_master_key(key_file=old_file, env_value=env_value, config_dir=config_dir,
                                        data_dir=data_dir, generate=False)
        new, _warning = load_master_key(key_file=new_key_file, env_value=None, config_dir=config_dir,
                                        data_dir=data_dir, generate=False)
    except KeyProblem as problem:
        raise click.ClickException(f"Error loading a master key: {problem.reason}") from None
    try:
        report = rewrap_all(data_dir, old, new)
    except RewrapError as exc:
        raise click.ClickException(f"Error rewrapping data keys: {exc}") from None
    click.echo(f"Rewrapped: {', '.join(report.rewrapped) or '-'}")
    click.echo(f"Already under the new key: {', '.join(report.already) or '-'}")
    click.echo(f"Without data keys (plain, from before sealing): {', '.join(report.plain) or '-'}")
    click.echo("Start the server with the new key (replace the old key where the server reads it: "
               "security.master_key_file, $STRONGROOM_MASTER_KEY or <config-dir>/master.key).")


# -- audit -------------------------------------------------------------------------------------
class _AuditFilesMissing(click.ClickException):
    exit_code = 2  # 0 intact, 1 broken, 2 nothing to check


@main.group()
def audit() -> None:
    """Check the tamper-evident audit log (hash chain and signed checkpoints)."""


@audit.command("verify")
@click.option("--data-dir", type=click.Path(path_type=Path), required=True,
              help="The server's data directory.")
@click.option("--config-dir", type=click.Path(path_type=Path), required=True,
              help="The server's config directory (for audit_signing.pub).")
@click.option("--audit-dir", type=click.Path(path_type=Path), default=None,
              help="The audit directory (default: <data-dir>/audit).")
@click.option("--checkpoints", "checkpoints", type=click.Path(path_type=Path), default=None,
              help="A shipped copy of the checkpoint file, kept elsewhere (default: the audit directory's).")
def audit_verify(data_dir: Path, config_dir: Path, audit_dir: Path | None, checkpoints: Path | None) -> None:
    """Verify the audit log: every record chained, every checkpoint signed and matched.

    Read only, so it may run while the server runs. Exit code: 0 intact, 1 broken (the first bad
    record is named), 2 files missing or unreadable.

    Example:  strongroom audit verify --data-dir ./data --config-dir ./config \\
                --checkpoints /backup/checkpoints.jsonl
    """
    from .security.audit import PUBLIC_KEY_FILE, load_audit_public_key, verify

    directory = audit_dir if audit_dir is not None else data_dir / "audit"
    try:
        public_key = load_audit_public_key(config_dir)
    except FileNotFoundError:
        raise _AuditFilesMissing(f"no audit public key at {config_dir / PUBLIC_KEY_FILE} "
                                 "(check --config-dir)") from None
    except (OSError, ValueError) as exc:
        raise _AuditFilesMissing(f"Error reading the audit public key: {exc}") from None
    if not directory.is_dir():
        raise _AuditFilesMissing(f"no audit log at {directory} (check --data-dir or --audit-dir)")
    if checkpoints is not None and not checkpoints.is_file():
        raise _AuditFilesMissing(f"no checkpoint file at {checkpoints} (check --checkpoints)")
    try:
        report = verify(directory, public_key, checkpoints=checkpoints)
    except OSError as exc:
        raise _AuditFilesMissing(f"Error reading the audit log in {directory}: "
                                 f"{exc.strerror or exc}") from None
    if not report.ok:
        where = f" at record {report.bad_seq}" if report.bad_seq is not None else ""
        click.echo(f"audit chain broken{where}: {report.reason}")
        sys.exit(1)
    click.echo(f"audit chain intact: {report.records} records, {report.checkpoints} checkpoints, "
               f"last record {report.last_seq}")
    signed = report.last_checkpoint_seq if report.last_checkpoint_seq is not None else -1
    unsigned = report.last_seq - signed
    if unsigned > 0:
        click.echo(f"note: the last {unsigned} records are not yet covered by a signed checkpoint; "
                   "removing them would not be detected", err=True)


# -- leaks: attribution and exposure ------------------------------------------------------------------
@main.command()
@click.argument("leak_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--data-dir", type=click.Path(path_type=Path), required=True, help="The server's data directory.")
@click.option("--config-dir", type=click.Path(path_type=Path), required=True,
              help="The server's config directory (canary.key).")
def attribute(leak_file: Path, data_dir: Path, config_dir: Path) -> None:
    """Name the account a leaked copy came from, by the canaries planted for it.

    Reads the file (CSV in UTF-8 or GB18030, NDJSON, JSON) as a stream, compares every cell with the
    keyed hashes of the canaries' values (column names do not matter) and prints, per owner, how
    many of its canaries the file holds. Read only; may run while the server runs.

    Example:  strongroom attribute leaked.csv --data-dir ./data --config-dir ./config
    """
    from .security.canaries import CanaryStore, CanaryStoreError, read_leak_file

    key_path = config_dir / "canary.key"
    store_path = data_dir / "security" / "canaries.json"
    if not key_path.is_file() or not store_path.is_file():
        raise click.ClickException(f"no canaries here: {store_path} or {key_path} is missing (were any planted?)")
    try:
        store = CanaryStore(store_path, key_path.read_bytes())
        found = store.attribute(read_leak_file(leak_file))
    except (CanaryStoreError, OSError, ValueError) as exc:
        raise click.ClickException(f"Error: {exc}") from None
    if not found:
        click.echo("no canary of this node is in the file")
        return
    _table(("OWNER", "CANARIES", "FIELDS", "ROWS"),
           [(a.owner or "(general canaries)", str(a.matches), ",".join(sorted(a.fields)), str(a.rows))
            for a in found])


# The personal kinds a column header suggests (the loader's hints) → the fields the exposure check looks up.
_KIND_FIELDS = {"national_id": "national_id", "mobile": "phone", "name": "name", "address": "address"}


def _leak_row(row: dict[str, str], mapping: dict[str, str]) -> dict[str, str]:
    """One leaked row as our fields: named columns first (--field, then known headers), then values
    recognised by the PII detectors (national IDs, mainland mobiles) whatever their column."""
    from .loader.propose import header_hints
    from .pii import is_mainland_mobile, is_valid_national_id

    out: dict[str, str] = {}
    for column, raw in row.items():
        value = str(raw).strip()
        if not value:
            continue
        field = mapping.get(column) or next((_KIND_FIELDS[k] for k in header_hints(column) if k in _KIND_FIELDS),
                                            None)
        digits = "".join(c for c in value if c not in " -.()")
        if field is None:
            if is_valid_national_id(digits.upper()):
                field = "national_id"
            elif is_mainland_mobile(digits.removeprefix("+86").removeprefix("0086")):
                field = "phone"
        if field == "national_id":
            value = digits.upper()
        elif field == "phone":
            value = digits.removeprefix("+86").removeprefix("0086")
        if field is not None and field not in out:
            out[field] = value
    return out


def _count_lines(path: Path) -> int:
    count = 0
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            count += chunk.count(b"\n")
    return count


@main.command("exposure-check")
@click.argument("leak_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--index", "index_name", required=True, help="Our index to check the leak against.")
@click.option("--field", "fields", multiple=True, metavar="COLUMN=FIELD",
              help="Read this column of the file as this field of the index (repeat).")
@click.option("--url", default="https://127.0.0.1:9200", show_default=True, help="Strongroom server.")
@click.option("--config-dir", type=click.Path(path_type=Path), default=None,
              help="Trust this server's generated CA (<config-dir>/certs/http_ca.crt).")
@click.option("--ca-certs", type=click.Path(path_type=Path, exists=True), default=None,
              help="CA certificate file to trust (overrides --config-dir).")
@click.option("--user", default="admin", show_default=True)
@click.option("--batch", type=click.IntRange(1, 1000), default=500, show_default=True, help="Rows per request.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per matched row instead of a table.")
def exposure_check(leak_file: Path, index_name: str, fields: tuple[str, ...], url: str, config_dir: Path | None,
                   ca_certs: Path | None, user: str, batch: int, as_json: bool) -> None:
    """Which of our records appear in someone else's leak, matched through the blind tokens.

    Streams the file (CSV in UTF-8 or GB18030, NDJSON, JSON) to `POST /_strongroom/exposure/{index}`
    in batches: national IDs, phones, names and addresses are looked up exactly as a search would,
    nothing is decrypted and nothing of the file is stored. Prints our document ids with the fields
    that matched, and counts. The password is read from $STRONGROOM_PASSWORD, or asked for.

    Example:  strongroom exposure-check --index residents leaked.csv --config-dir ./config
    """
    from .security.canaries import read_leak_file

    mapping = {}
    for item in fields:
        column, sep, field = item.partition("=")
        if not sep or not column or not field:
            raise click.BadParameter(f"expected COLUMN=FIELD, got [{item}]", param_hint="--field")
        mapping[column] = field
    if ca_certs is None and config_dir is not None:
        ca_certs = config_dir / "certs" / "http_ca.crt"
    password = os.environ.get(PASSWORD_ENV) or getpass.getpass(f"Password for [{user}]: ")
    client = StrongroomClient(url, user, password, ca_certs)
    total_rows = rows_matched = 0
    documents: set[str] = set()
    lines = _count_lines(leak_file)  # for the progress bar only (a fast pass over the bytes)

    def send(offset: int, rows: list[dict[str, str]]) -> None:
        nonlocal rows_matched
        answer = client.request("POST", f"/_strongroom/exposure/{index_name}", {"rows": rows})
        for match in answer["matches"]:
            rows_matched += 1
            row = offset + match["row"]
            for doc in match["documents"]:
                documents.add(doc["_id"])
            if as_json:
                click.echo(orjson.dumps({"row": row, "documents": match["documents"]}).decode())
            else:
                for doc in match["documents"]:
                    click.echo(f"row {row}: {doc['_id']}  [{', '.join(doc['fields'])}]")

    try:
        with click.progressbar(length=max(lines, 1), label="Checking rows", file=sys.stderr) as bar:
            pending: list[dict[str, str]] = []
            offset = 0
            for row in read_leak_file(leak_file):
                total_rows += 1
                pending.append(_leak_row(row, mapping))
                if len(pending) >= batch:
                    send(offset, pending)
                    offset += len(pending)
                    bar.update(len(pending))
                    pending = []
            if pending:
                send(offset, pending)
                bar.update(len(pending))
    except ClientError as exc:
        raise click.ClickException(f"Error checking [{index_name}]: {exc}") from None
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"Error: {exc}") from None
    finally:
        client.close()
    click.echo(f"{total_rows} rows read, {rows_matched} matched {len(documents)} of our documents", err=as_json)

# -- load ---------------------------------------------------------------------------------------------
@main.command()
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--index", "index_name", required=True, help="The index to load into (created if new).")
@click.option("--plan", is_flag=True, help="Print the proposed mapping (table and JSON) and stop.")
@click.option("--yes", is_flag=True, help="Accept the proposed mapping without asking.")
@click.option("--mapping", "mapping_file", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              default=None, help="Use this index body / mapping (JSON) instead of the proposal; checked the same way.")
@click.option("--allow-plain", "allow_plain", multiple=True, metavar="COLUMN",
              help="Store this column unprotected even though it looks personal (repeat; your decision, logged).")
@click.option("--id-column", default=None, help="Take document ids from this column (default: a hash of the row).")
@click.option("--format", "file_format", default=None,
              help="csv, tsv, xlsx, ndjson, json, parquet, mbox or eml (default: from the extension).")
@click.option("--encoding", default=None, help="Text encoding (default: detected; GB18030 covers GBK).")
@click.option("--delimiter", default=None, help="CSV delimiter (default: detected).")
@click.option("--sheet", default=None, help="The xlsx sheet (default: the first).")
@click.option("--batch-bytes", type=click.IntRange(4096, 90 << 20), default=4 << 20, show_default=True,
              help="Bytes per _bulk request.")
@click.option("--resume", is_flag=True, help="Continue an interrupted load from its last acknowledged row.")
@click.option("--restart", is_flag=True, help="Forget an interrupted load and start from the first row.")
@click.option("--reject-file", type=click.Path(path_type=Path), default=None,
              help="Where bad rows are listed (row number and reason; default FILE.rejects.ndjson).")
@click.option("--url", default=None, help="Strongroom server (default $STRONGROOM_URL, the profile, or "
              "https://127.0.0.1:9200).")
@click.option("--profile", default=None, help="A connection profile from ~/.config/strongroom/profiles.toml.")
@click.option("--config-dir", type=click.Path(path_type=Path), default=None,
              help="Trust this server's generated CA (<config-dir>/certs/http_ca.crt).")
@click.option("--ca-certs", type=click.Path(path_type=Path, exists=True), default=None,
              help="CA certificate file to trust (overrides --config-dir).")
@click.option("--user", default=None, help="User (default $STRONGROOM_USER, the profile, or admin); the password "
              "comes from $STRONGROOM_PASSWORD or a prompt.")
@click.option("--api-key", default=None, help="An API key (encoded form) instead of a user; default "
              "$STRONGROOM_API_KEY.")
def load(file: Path, index_name: str, plan: bool, yes: bool, mapping_file: Path | None, allow_plain: tuple[str, ...],
         id_column: str | None, file_format: str | None, encoding: str | None, delimiter: str | None,
         sheet: str | None, batch_bytes: int, resume: bool, restart: bool, reject_file: Path | None,
         url: str | None, profile: str | None, config_dir: Path | None, ca_certs: Path | None, user: str | None,
         api_key: str | None) -> None:
    """Load a file (CSV/TSV, xlsx, NDJSON/JSON, Parquet, mbox/eml) into an index, protecting personal data.

    A new index gets a proposed mapping in which every column that looks personal (national IDs,
    phones, names, addresses, cards, e-mails, birth dates, notes) is protected; nothing personal is
    stored unprotected unless named with --allow-plain. Bad rows go to a reject file; the rest load.
    Interrupted? Run again with --resume: no row is lost or loaded twice.

    Example:  strongroom load people.csv --index people --plan --config-dir ./config
    """
    from .loader.load import Loader, LoadError, LoadOptions, read_profile

    try:
        settings = read_profile(profile) if profile else {}
    except LoadError as exc:
        raise click.ClickException(str(exc)) from None
    url = url or os.environ.get("STRONGROOM_URL") or settings.get("url") or "https://127.0.0.1:9200"
    if ca_certs is None and config_dir is not None:
        ca_certs = config_dir / "certs" / "http_ca.crt"
    if ca_certs is None and (os.environ.get("STRONGROOM_CA_CERTS") or settings.get("ca_certs")):
        ca_certs = Path(os.environ.get("STRONGROOM_CA_CERTS") or settings["ca_certs"])
    api_key = api_key or os.environ.get("STRONGROOM_API_KEY") or (
        os.environ.get(settings["api_key_env"]) if settings.get("api_key_env") else None)
    user = user or os.environ.get("STRONGROOM_USER") or settings.get("user") or "admin"
    password = ""
    if not api_key:
        password = os.environ.get(PASSWORD_ENV) or getpass.getpass(f"Password for [{user}]: ")
    if resume and restart:
        raise click.UsageError("--resume and --restart exclude each other")
    client = StrongroomClient(url, user, password, ca_certs, api_key=api_key)
    options = LoadOptions(index=index_name, format=file_format, encoding=encoding, delimiter=delimiter, sheet=sheet,
                          plan=plan, yes=yes, mapping_file=mapping_file, allow_plain=allow_plain, id_column=id_column,
                          batch_bytes=batch_bytes, resume=resume, restart=restart, reject_path=reject_file)
    interactive = sys.stdin.isatty()
    loader = Loader(client, file, options,
                    confirm=(lambda question: click.confirm(question, default=False)) if interactive else None)
    try:
        summary = loader.run()
    except LoadError as exc:
        raise click.ClickException(str(exc)) from None
    except ClientError as exc:
        raise click.ClickException(f"Error loading into [{index_name}]: {exc}") from None
    except OSError as exc:
        raise click.ClickException(f"Error: {exc}") from None
    finally:
        client.close()
    if plan:
        planned = summary.planned
        if hasattr(planned, "table"):
            click.echo(planned.table())
            click.echo(orjson.dumps(planned.body, option=orjson.OPT_INDENT_2).decode())
        else:
            click.echo(orjson.dumps(planned, option=orjson.OPT_INDENT_2).decode())
        return
    for column in allow_plain:
        click.echo(f"note: column [{column}] was stored unprotected at your request (--allow-plain)", err=True)
    parts = [f"loaded {summary.loaded} rows into [{index_name}]"]
    if summary.skipped:
        parts.append(f"{summary.skipped} skipped (acknowledged before the interruption)")
    parts.append(f"{summary.rejected} rejected" + (f" (see {summary.reject_path})" if summary.rejected else ""))
    click.echo(", ".join(parts))

if __name__ == "__main__":
    main()
