"""Assertion helpers that fail without a traceback: cheap when a test is marked xfail, since pytest
formats a full traceback for every expected failure."""

from __future__ import annotations

from typing import Any

import pytest


def attempt(call: Any, *args: Any, **kwargs: Any) -> Any:
    """The result of the call, or the exception it raised (as a value)."""
    try:
        return call(*args, **kwargs)
    except Exception as exc:
        return exc


def check(condition: bool, message: str) -> None:
    if not condition:
        pytest.fail(message, pytrace=False)


def check_raises(error: Any, call: Any, *args: Any, **kwargs: Any) -> None:
    got = attempt(call, *args, **kwargs)
    if not isinstance(got, error):
        check(False, f"expected {error}, got {got!r}")
