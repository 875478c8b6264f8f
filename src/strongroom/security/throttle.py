"""Failed logins are slowed per user and per (user, address).

After a few free failures, each further attempt for the same key waits an exponentially growing
delay (capped), and attempts for one key are served one at a time, so an attacker gains nothing
from parallel requests. A success clears the (user, address) key. State is bounded in size.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _State:
    failures: int
    last: float


class LoginThrottle:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic, free_failures: int = 3,
                 user_free_failures: int = 10, base_delay: float = 0.25, max_delay: float = 8.0,
                 forget_after: float = 900.0, max_entries: int = 100_000,
                 sleep: Callable[[float], "asyncio.Future[None] | object"] | None = None) -> None:
        self._clock = clock
        self._free = {"ua": free_failures, "u": user_free_failures}
        self._base = base_delay
        self._max = max_delay
        self._forget = forget_after
        self._max_entries = max_entries
        self._state: OrderedDict[tuple[str, ...], _State] = OrderedDict()
        self._locks: dict[tuple[str, ...], asyncio.Lock] = {}
        self._sleep = sleep or asyncio.sleep

    def _keys(self, user: str, address: str) -> list[tuple[str, ...]]:
        return [("ua", user, address), ("u", user)]

    def delay(self, user: str, address: str) -> float:
        """Seconds the next attempt for (user, address) must wait."""
        now = self._clock()
        wait = 0.0
        for key in self._keys(user, address):
            state = self._state.get(key)
            if state is None or now - state.last > self._forget:
                continue
            excess = state.failures - self._free[key[0]]
            if excess >= 0:
                wait = max(wait, state.last + min(self._max, self._base * 2**excess) - now)
        return max(0.0, wait)

    def lock(self, user: str, address: str) -> asyncio.Lock:
        key = ("ua", user, address)
        lock = self._locks.get(key)
        if lock is None:
            if len(self._locks) > self._max_entries:
                self._locks = {k: v for k, v in self._locks.items() if v.locked()}
            lock = self._locks[key] = asyncio.Lock()
        return lock

    async def wait_turn(self, user: str, address: str) -> None:
        wait = self.delay(user, address)
        if wait > 0:
            await self._sleep(wait)  # type: ignore[misc]

    def failure(self, user: str, address: str) -> None:
        now = self._clock()
        for key in self._keys(user, address):
            state = self._state.get(key)
            if state is None or now - state.last > self._forget:
                state = _State(0, now)
            state.failures += 1
            state.last = now
            self._state[key] = state
            self._state.move_to_end(key)
        while len(self._state) > self._max_entries:
            self._state.popitem(last=False)

    def success(self, user: str, address: str) -> None:
        self._state.pop(("ua", user, address), None)
