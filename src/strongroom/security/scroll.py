"""Scroll contexts: a search's remaining matches, held for their owner for a bounded time.

A scroll id is a random token; it opens only for the principal that created it (anyone else gets
the same answer as for an unknown id). Keep-alive is capped, and so is the number of open
contexts, per owner and in all.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import IllegalArgumentError, NotFoundError

MAX_KEEP_ALIVE_SECONDS = 24 * 3600.0  # Elasticsearch's search.max_keep_alive
MAX_OPEN_CONTEXTS = 500  # Elasticsearch's search.max_open_scroll_context (per node)
MAX_OPEN_PER_OWNER = 100


class SearchContextMissingError(NotFoundError):
    es_type = "search_context_missing_exception"

    def __init__(self, scroll_id: str) -> None:
        super().__init__(f"No search context found for id [{scroll_id[:64]}]")


@dataclass
class ScrollContext:
    owner: str
    cursor: Any  # engine.search.Cursor
    request: Any  # query.search_request.SearchRequest
    indices: list[Any]
    keep_alive: float
    expires_at: float
    lock: threading.Lock
    kind: str = "scroll"  # or "pit": `cursor` then holds the shard targets of the point in time
    accesses: dict[str, Any] | None = None  # what the owner could see when it opened (security/access.py)


class ScrollRegistry:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._contexts: dict[str, ScrollContext] = {}
        self._lock = threading.Lock()

    def _expire(self) -> None:
        now = self._clock()
        for scroll_id in [k for k, c in self._contexts.items() if c.expires_at <= now]:
            del self._contexts[scroll_id]

    def open(self, owner: str, cursor: Any, request: Any, indices: list[Any], keep_alive: float,
             kind: str = "scroll", accesses: dict[str, Any] | None = None) -> str:
        check_keep_alive(keep_alive)
        with self._lock:
            self._expire()
            if len(self._contexts) >= MAX_OPEN_CONTEXTS:
                raise IllegalArgumentError(f"Trying to create too many scroll contexts. Must be less than or equal "
                                           f"to: [{MAX_OPEN_CONTEXTS}]. This limit can be set by changing the "
                                           "[search.max_open_scroll_context] setting.")
            if sum(1 for c in self._contexts.values() if c.owner == owner) >= MAX_OPEN_PER_OWNER:
                raise IllegalArgumentError(f"Trying to create too many scroll contexts for one user. Must be less "
                                           f"than or equal to: [{MAX_OPEN_PER_OWNER}]; clear scrolls you no longer "
                                           "need.")
            scroll_id = base64.urlsafe_b64encode(os.urandom(24)).decode()
            self._contexts[scroll_id] = ScrollContext(owner, cursor, request, indices, keep_alive,
                                                      self._clock() + keep_alive, threading.Lock(), kind, accesses)
            return scroll_id

    def held_by(self, owner: str) -> int:
        """Scroll and point-in-time contexts the owner holds now."""
        with self._lock:
            self._expire()
            return sum(1 for c in self._contexts.values() if c.owner == owner)

    def get(self, owner: str, scroll_id: str, keep_alive: float | None, kind: str = "scroll") -> ScrollContext:
        with self._lock:
            self._expire()
            context = self._contexts.get(scroll_id)
            if context is None or context.owner != owner or context.kind != kind:
                raise SearchContextMissingError(scroll_id)
            if keep_alive is not None:
                check_keep_alive(keep_alive)
                context.keep_alive = keep_alive
            context.expires_at = self._clock() + context.keep_alive
            return context

    def clear(self, owner: str, scroll_ids: list[str] | None, kind: str = "scroll") -> tuple[bool, int]:
        """(all found, number freed); `None` clears every context of the owner."""
        with self._lock:
            self._expire()
            if scroll_ids is None:
                doomed = [k for k, c in self._contexts.items() if c.owner == owner and c.kind == kind]
                for key in doomed:
                    del self._contexts[key]
                return True, len(doomed)
            freed = 0
            for scroll_id in scroll_ids:
                context = self._contexts.get(scroll_id)
                if context is not None and context.owner == owner and context.kind == kind:
                    del self._contexts[scroll_id]
                    freed += 1
            return freed == len(scroll_ids), freed


def check_keep_alive(seconds: float) -> None:
    if seconds > MAX_KEEP_ALIVE_SECONDS:
        raise IllegalArgumentError(f"Keep alive for request ({int(seconds)}s) is too large. It must be less than "
                                   f"({int(MAX_KEEP_ALIVE_SECONDS)}s). This limit can be set by changing the "
                                   "[search.max_keep_alive] cluster level setting.")
    if seconds <= 0:
        raise IllegalArgumentError("[scroll] keep alive must be positive")
