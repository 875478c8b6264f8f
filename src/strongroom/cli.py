"""The `strongroom` command."""

from __future__ import annotations

import asyncio
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
    from .server import StartupError, open_node, run

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
    try:
        asyncio.run(run(node, settings, after_start=after_start))
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


if __name__ == "__main__":
    main()
