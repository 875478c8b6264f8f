from __future__ import annotations

from collections.abc import Iterator
import pytest

from live import LiveServer, start_server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One live TLS server shared by the API tests of a run."""
    root = tmp_path_factory.mktemp("live")
    live = start_server(root / "data", root / "config")
    yield live
    live.stop()


@pytest.fixture(scope="session")
def es(server: LiveServer):  # type: ignore[no-untyped-def]
    client = server.client()
    yield client
    client.close()


@pytest.fixture
def index_name(request: pytest.FixtureRequest) -> str:
    """A fresh index name per test, derived from the test's name."""
    name = request.node.name.lower()
    return "t-" + "".join(c if c.isalnum() else "-" for c in name)[:80].strip("-")
