"""The serving process's collector settings (strongroom.runtime) and where they are applied."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from strongroom import runtime


@pytest.fixture
def restore_collector():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_settle_collector_freezes_what_exists_and_widens_the_young_generation(restore_collector) -> None:
    class Cycle:
        pass

    _young, middle, old = gc.get_threshold()
    runtime.settle_collector()
    assert gc.get_threshold() == (runtime.YOUNG_THRESHOLD, middle, old)
    assert gc.get_freeze_count() > 0
    # A cycle made after start is still garbage the collector finds.
    after = Cycle()
    after.me = after
    del after
    assert gc.collect() >= 1


def test_serve_settles_the_collector_after_opening_the_node_and_before_serving(monkeypatch, tmp_path: Path) -> None:
    from strongroom import cli, server

    order: list[str] = []

    class FakeNode:
        def close(self) -> None:
            order.append("close")

    def fake_open(*_args: Any, **_kwargs: Any) -> FakeNode:
        order.append("open")
        return FakeNode()

    async def fake_run(*_args: Any, **_kwargs: Any) -> None:
        order.append("run")

    monkeypatch.setattr(server, "open_node", fake_open)
    monkeypatch.setattr(server, "run", fake_run)
    monkeypatch.setattr(server, "serve_forever", lambda coroutine: (order.append("serve"), coroutine.close()))
    monkeypatch.setattr(runtime, "settle_collector", lambda: order.append("settle"))
    result = CliRunner().invoke(cli.main, ["serve", "--data-dir", str(tmp_path / "d"), "--config-dir",
                                           str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    assert order == ["open", "settle", "serve", "close"]
