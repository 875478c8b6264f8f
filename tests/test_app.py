"""The ASGI entry (api.app.App): every HTTP request reaches the dispatcher, whatever its method; other
ASGI events are answered without touching the data."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from strongroom.api.app import build_app
from strongroom.engine.node import Engine
from strongroom.security.gate import Gate
from strongroom.security.users import SecurityStore
from strongroom.server import _node_info

PASSWORD = "app-test-password-1"


@pytest.fixture()
def app(tmp_path: Path) -> Any:
    engine = Engine(tmp_path / "data")
    users = SecurityStore(tmp_path / "data")
    users.bootstrap(PASSWORD)
    yield build_app(Gate(engine, users, cluster_info=_node_info(tmp_path / "data")))
    engine.close()


def call(app: Any, method: str, path: str, auth: bool = True) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://strongroom",
                                     auth=("admin", PASSWORD) if auth else None) as http:
            return await http.request(method, path)
    return asyncio.run(go())


@pytest.mark.parametrize("method", ["TRACE", "PATCH", "OPTIONS", "FOO"])
def test_any_method_is_authenticated_first_then_refused_in_elasticsearch_shape(app: Any, method: str) -> None:
    anonymous = call(app, method, "/", auth=False)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["type"] == "security_exception"
    refused = call(app, method, "/")
    assert refused.status_code == 405
    assert refused.json()["error"]["type"] == "method_not_allowed_exception"
    assert "GET" in refused.headers["allow"]


def test_paths_in_messages_are_escaped_as_starlette_urls_have_them(app: Any) -> None:
    # `%3F` in the request path is a literal `?` once decoded; the message shows it escaped again.
    answer = call(app, "GET", "/_nothing%3Fhere/more")
    assert answer.status_code == 400
    assert "/_nothing%3Fhere/more" in answer.json()["error"]["reason"]


def test_an_exception_escaping_the_dispatcher_is_a_500_in_elasticsearch_shape(app: Any, monkeypatch: Any) -> None:
    def boom(*_args: Any) -> None:
        raise RuntimeError("secret detail 12345")

    monkeypatch.setattr("strongroom.api.app.no_basic_dialog", boom)
    answer = call(app, "GET", "/")
    assert answer.status_code == 500
    assert answer.json()["error"]["type"] == "exception"  # Elasticsearch's type for a 500
    assert "12345" not in answer.text


def test_lifespan_and_websocket_events(app: Any) -> None:
    async def lifespan() -> list[str]:
        inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
        sent: list[str] = []

        async def receive() -> dict[str, Any]:
            return inbox.pop(0)

        async def send(message: dict[str, Any]) -> None:
            sent.append(message["type"])

        await asyncio.wait_for(app({"type": "lifespan"}, receive, send), 5)
        return sent

    assert asyncio.run(lifespan()) == ["lifespan.startup.complete", "lifespan.shutdown.complete"]

    async def websocket() -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "websocket.connect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app({"type": "websocket", "path": "/", "headers": []}, receive, send)
        return sent

    assert asyncio.run(websocket()) == [{"type": "websocket.close", "code": 1000}]


def test_indexed_headers_answer_as_starlettes_do() -> None:
    from starlette.datastructures import Headers

    from strongroom.api.wire import IndexedHeaders

    scope = {"headers": [(b"host", b"a"), (b"x-twice", b"first"), (b"x-twice", b"second"), (b"accept", b"\xe9")]}
    ours, theirs = IndexedHeaders(dict(scope)), Headers(scope=dict(scope))
    for name in ("host", "HOST", "x-twice", "X-Twice", "accept", "absent"):
        assert ours.get(name) == theirs.get(name)
        assert ours.get(name, "d") == theirs.get(name, "d")
        assert (name in ours) == (name in theirs)
        if name in theirs:
            assert ours[name] == theirs[name]
        else:
            with pytest.raises(KeyError):
                ours[name]
    assert ours.getlist("x-twice") == ["first", "second"] and ours.raw == theirs.raw


def test_query_parameters_with_and_without_a_query_string(app: Any) -> None:
    assert call(app, "GET", "/?pretty").text.startswith("{\n")  # parsed when present
    plain = call(app, "GET", "/")
    assert plain.status_code == 200 and not plain.text.startswith("{\n")
    refused = call(app, "GET", "/?nonsense=1")
    assert refused.status_code == 400 and "nonsense" in refused.json()["error"]["reason"]


def _get_root(app: Any, send: Any) -> None:
    import base64

    token = base64.b64encode(f"admin:{PASSWORD}".encode())
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "https",
             "path": "/", "raw_path": b"/", "query_string": b"", "root_path": "", "client": ("127.0.0.1", 40000),
             "server": ("127.0.0.1", 9200), "headers": [(b"host", b"strongroom"), (b"authorization", b"Basic " + token)]}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    asyncio.run(app(scope, receive, send))


def test_the_dump_detector_runs_once_the_response_has_left(app: Any, monkeypatch: Any) -> None:
    from strongroom.security.exfil import Exchange

    events: list[str] = []
    monkeypatch.setattr(Exchange, "detect", lambda self: events.append(f"detect after {self._status}"))

    async def send(message: dict[str, Any]) -> None:
        events.append(message["type"])

    _get_root(app, send)
    assert events == ["http.response.start", "http.response.body", "detect after 200"]


def test_the_dump_detector_runs_even_when_the_response_cannot_be_sent(app: Any, monkeypatch: Any) -> None:
    from strongroom.security.exfil import Exchange

    events: list[str] = []
    monkeypatch.setattr(Exchange, "detect", lambda self: events.append("detect"))

    async def send(message: dict[str, Any]) -> None:
        raise OSError("the client went away")

    with pytest.raises(OSError):
        _get_root(app, send)
    assert events == ["detect"]
