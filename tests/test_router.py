"""The router's memo: the same answers as matching afresh, and never a looked-up id kept in memory."""

from __future__ import annotations

import pytest

from strongroom.api import router as router_module
from strongroom.api.app import build_router
from strongroom.api.router import MEMO_ENTRIES, Router

METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE")


def paths(router: Router) -> list[str]:
    out = {route.example_path for route in router.routes}
    out |= {"/residents/_search", "/residents,people/_search", "/_all/_search", "/residents/_doc/r0000001",
            "/residents/_doc/a%2Fb", "/_search/scroll/c2Nyb2xs", "/nothing/here/at/all/really", "/_unknown_api"}
    return sorted(out)


def test_memo_answers_as_matching_afresh_for_every_route_and_method() -> None:
    router = build_router()
    for path in paths(router):
        for method in METHODS:
            fresh = router._match(method, path)
            first = router.resolve(method, path)
            second = router.resolve(method, path)  # from the memo where the path may be kept
            assert first == fresh and second == fresh, (method, path)


def test_a_caller_changing_its_answer_does_not_change_the_next() -> None:
    router = build_router()
    router.resolve("POST", "/residents/_search")
    route, params, allowed = router.resolve("POST", "/residents/_search")  # from the memo
    assert route is not None and params == {"index": "residents"} and "POST" in allowed
    params["index"] = "other"
    allowed.clear()
    route_again, params_again, allowed_again = router.resolve("POST", "/residents/_search")
    assert route_again is route and params_again == {"index": "residents"} and "POST" in allowed_again


@pytest.mark.parametrize("path", ["/residents/_doc/110101199003078515", "/_strongroom/blocks/alice",
                                  "/_search/scroll/c2Nyb2xs", "/_snapshot/backups/nightly"])
def test_paths_naming_a_document_scroll_or_snapshot_are_not_kept(path: str) -> None:
    router = build_router()
    for method in METHODS:
        router.resolve(method, path)
    assert not any(key[1] == path for key in router._memo)
    assert all(value not in key[1] for key in router._memo for value in ("110101199003078515", "alice", "nightly"))


def test_unmatched_paths_are_not_kept_and_the_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    router = build_router()
    assert router.resolve("GET", "/a/b/c/d/e/f")[0] is None
    assert router._memo == {}
    monkeypatch.setattr(router_module, "MEMO_ENTRIES", 8)
    for n in range(50):
        router.resolve("POST", f"/index-{n}/_search")
        assert len(router._memo) <= 8
    assert MEMO_ENTRIES >= 100


def test_a_route_added_later_wins_where_it_should() -> None:
    async def general(call):  # type: ignore[no-untyped-def]
        return None

    async def special(call):  # type: ignore[no-untyped-def]
        return None

    router = Router()
    router.add(["POST"], ["/{index}/_search"], general)
    for _ in range(2):  # matched, then answered from the memo
        assert router.resolve("POST", "/_all/_search")[0].handler is general  # type: ignore[union-attr]
    router.add(["POST"], ["/_all/_search"], special)  # a literal segment wins over a parameter
    assert router.resolve("POST", "/_all/_search")[0].handler is special  # type: ignore[union-attr]
