"""Per-identity limits and budgets: what stops a valid credential from walking out with the data.

A role descriptor may carry a `"limits"` object (`parse_limits`); a user's roles combine like
privileges, a union (`combine`: per field the most generous value, and a role without limits makes
every field unlimited), and an API key is held to the stricter of itself and its owner
(`intersect`). `None` always means unlimited.

`Budgets` enforces them per identity (a user name or an API key id, as the caller chooses):

* `admit` — before a request is served: refuses a blocked identity, applies a token bucket
  (`requests_per_second`, `burst`; 0 requests per second refuses every request) and a cap on
  requests in flight (`max_concurrent`; the returned `Ticket` holds the slot until released).
* `charge_records` — after a request, with keys of the documents it reveals (keyed hashes of
  index and id, made by the caller: this module never sees an index name or a document id).
  Counts DISTINCT documents per rolling hour and rolling day: a document already counted in a
  window is free in that window until its entry expires (one hour, one day after it was first
  counted), then counts again. `charge_probes` counts every probe (a query that can tell
  something about records without revealing them) per rolling hour and day; `charge_reveals`
  counts every masked field shown in clear on request (`reveal`) per rolling hour and day.
  A charge is all or nothing: if the new documents (or probes) would push any window over its
  budget, `TooManyRequestsError` is raised, `retry_after` says when enough entries expire
  (a whole window when the request alone is larger than the budget), and nothing is recorded.
* `block` / `unblock` — an administrator's stop, for a time or until lifted.

Time. Windows follow a budget clock, not the wall clock: `now = elapsed_at_load + (clock() -
clock_at_load)`, with `clock` monotonic (`time.monotonic` by default), and `elapsed` is saved with
the state. So a wall-clock jump (NTP, an administrator, a VM resume) changes nothing, and a restart
neither resets nor advances any window: downtime does not count. That is conservative — a budget
exhausted just before a shutdown is still exhausted just after, and a block of one hour lasts one
hour of server uptime.

Persistence. The state file (JSON, written with `atomic_write`, mode 0600) is::

    {"version": 1,
     "elapsed": 12345.6,                              # budget-clock seconds at the save
     "identities": {"alice": {
         "records_hour": [[12000.1, "9f2c…"], …],     # (budget time first counted, hex key)
         "records_day":  [[ 3000.0, "9f2c…"], …],
         "probes":       [[12001.5, 3], …],           # (budget time, number of probes)
         "reveals":      [[12002.0, 1], …]}},         # (budget time, number of fields revealed)
     "blocks": {"mallory": {"reason": "bulk export", "since": 12000.0, "until": 15600.0}}}

`until` is null for a block without end. It is saved by `save()`, by `close()`, and at most every
`save_interval` seconds from inside `admit` and the charges (no background thread), so a crash
loses at most that interval of charges. Token buckets and tickets in flight are not saved: after
a restart each identity starts with a full bucket (at most `burst` extra requests).

A state file that cannot be read or does not have this shape is logged, moved aside
(`<name>.corrupt-<n>`) and replaced by an empty state: the server keeps running, but every budget,
window and block starts again from nothing. Watch the log for it.

Memory is bounded by the budgets themselves: a record window holds at most its budget of entries,
the probe log at most `probes_per_day` (or `probes_per_hour`) entries, the reveal log (kept a day)
at most `reveals_per_day` (or 24 × `reveals_per_hour`) entries, and an identity whose limits have no
record, probe or reveal budget is not tracked at all. Expired entries are dropped as they are met
and on every save. A window that an identity's limits start to configure later starts from what
is still held for it (possibly nothing).
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

from ..engine.fsutil import atomic_write, make_dirs
from ..engine.index import parse_time_value
from ..errors import IllegalArgumentError, TooManyRequestsError

log = logging.getLogger(__name__)

HOUR = 3600.0
DAY = 86400.0
INDEFINITE_RETRY_AFTER = 3600.0  # Retry-After for an indefinite block or a zero rate.
STATE_VERSION = 1

_INT_FIELDS = ("burst", "max_concurrent", "records_per_hour", "records_per_day", "probes_per_hour",
               "probes_per_day", "reveals_per_hour", "reveals_per_day", "max_size", "max_result_window",
               "max_open_contexts")
_FLOAT_FIELDS = ("requests_per_second", "max_keep_alive")


@dataclass(frozen=True)
class Limits:
    """Limits of one identity. Every field: None = unlimited."""

    requests_per_second: float | None = None
    burst: int | None = None  # Requests that may arrive at once; refills at requests_per_second.
    max_concurrent: int | None = None  # Requests in flight.
    records_per_hour: int | None = None  # Distinct documents revealed per rolling hour.
    records_per_day: int | None = None  # … per rolling day.
    probes_per_hour: int | None = None
    probes_per_day: int | None = None
    reveals_per_hour: int | None = None  # Masked fields shown in clear (`reveal`), each counted, per rolling hour.
    reveals_per_day: int | None = None
    max_size: int | None = None  # Largest `size` of one search page.
    max_result_window: int | None = None  # Largest `from + size`.
    max_open_contexts: int | None = None  # Scroll and point-in-time contexts open at once.
    max_keep_alive: float | None = None  # Seconds; longest keep_alive of a scroll or point in time.

    @property
    def unlimited(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))

    @property
    def effective_burst(self) -> int | None:
        if self.requests_per_second is None:
            return None
        return self.burst if self.burst is not None else _default_burst(self.requests_per_second)

    @property
    def tracks_records(self) -> bool:
        return self.records_per_hour is not None or self.records_per_day is not None

    @property
    def tracks_probes(self) -> bool:
        return self.probes_per_hour is not None or self.probes_per_day is not None

    @property
    def tracks_reveals(self) -> bool:
        return self.reveals_per_hour is not None or self.reveals_per_day is not None

    def to_json(self) -> dict[str, Any]:
        """The role descriptor's `"limits"` object (unlimited fields left out); `parse_limits` reads it back."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if f.name == "max_keep_alive":
                value = _format_seconds(value)
            elif f.name == "requests_per_second" and float(value).is_integer():
                value = int(value)
            out[f.name] = value
        return out


def _default_burst(rps: float) -> int:
    return max(1, math.ceil(2 * rps))


def _format_seconds(seconds: float) -> str | float:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and float(seconds / size).is_integer():
            return f"{int(seconds // size)}{unit}"
    if seconds == 0:
        return "0s"
    millis = seconds * 1000
    if float(millis).is_integer():
        return f"{int(millis)}ms"
    return seconds


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_limits(value: Any) -> Limits:
    """Read a role descriptor's `"limits"` object. None (absent) means no limits.

    Refuses unknown keys, wrong types (a bool is not a number), negative and non-finite numbers,
    naming the key. A null value leaves that limit unset. `burst` defaults to
    max(1, ceil(2 * requests_per_second)); `max_keep_alive` is a time value ("30s", "5m") or seconds.
    """
    if value is None:
        return Limits()
    if not isinstance(value, dict):
        raise IllegalArgumentError("[limits] must be an object")
    known = {f.name for f in fields(Limits)}
    parsed: dict[str, Any] = {}
    for key, raw in value.items():
        name = f"limits.{key}"
        if key not in known:
            raise IllegalArgumentError(f"unknown key [{name}]; known keys: [{', '.join(sorted(known))}]")
        if raw is None:
            continue
        if key in _INT_FIELDS:
            if not isinstance(raw, int) or isinstance(raw, bool) or raw < 0:
                raise IllegalArgumentError(f"[{name}] must be a non-negative integer")
            if key == "burst" and raw < 1:
                raise IllegalArgumentError(f"[{name}] must be a positive integer")
            parsed[key] = raw
        elif key == "requests_per_second":
            if not _is_number(raw) or not math.isfinite(raw) or raw < 0:
                raise IllegalArgumentError(f"[{name}] must be a non-negative finite number")
            parsed[key] = float(raw)
        elif key == "max_keep_alive":
            if isinstance(raw, str):
                seconds = parse_time_value(raw, name)  # Its errors name the key too.
                if seconds is not None:  # "-1": unlimited, as in Elasticsearch settings.
                    parsed[key] = float(seconds)
            elif _is_number(raw) and math.isfinite(raw) and raw >= 0:
                parsed[key] = float(raw)
            else:
                raise IllegalArgumentError(f"[{name}] must be a time value (such as \"5m\") "
                                           "or a non-negative number of seconds")
    if "burst" in parsed and "requests_per_second" not in parsed:
        raise IllegalArgumentError("[limits.burst] requires [limits.requests_per_second]")
    if "requests_per_second" in parsed and "burst" not in parsed:
        parsed["burst"] = _default_burst(parsed["requests_per_second"])
    return Limits(**parsed)


def combine(limits: Sequence[Limits | None]) -> Limits:
    """The limits of a user with several roles: a union, like privileges.

    Per field the most generous value; a role with no limits (None), or a None field, makes that
    field unlimited. No roles at all: no limits (such a user has no privileges either).
    """
    if not limits or any(item is None for item in limits):
        return Limits()
    present = [item for item in limits if item is not None]
    merged: dict[str, Any] = {}
    for f in fields(Limits):
        values = [getattr(item, f.name) for item in present]
        merged[f.name] = None if any(v is None for v in values) else max(values)
    if merged["requests_per_second"] is None:
        merged["burst"] = None
    else:
        merged["burst"] = max(item.effective_burst or 0 for item in present)
    return Limits(**merged)


def intersect(a: Limits, b: Limits) -> Limits:
    """The limits of an API key (a) and its owner (b), or any two layers that must both allow:
    per field the stricter value; None only if both are None."""
    merged: dict[str, Any] = {}
    for f in fields(Limits):
        x, y = getattr(a, f.name), getattr(b, f.name)
        merged[f.name] = y if x is None else x if y is None else min(x, y)
    bursts = [lim.effective_burst for lim in (a, b) if lim.effective_burst is not None]
    merged["burst"] = min(bursts) if bursts else None
    return Limits(**merged)


# --------------------------------------------------------------------------------------------------
# Budgets


class Ticket:
    """Admission of one request. `release()` (idempotent) frees its concurrency slot."""

    def __init__(self, budgets: Budgets | None, identity: str) -> None:
        self._budgets = budgets  # None: no slot was taken.
        self.identity = identity

    def release(self) -> None:
        budgets, self._budgets = self._budgets, None
        if budgets is not None:
            budgets._release(self.identity)

    def __enter__(self) -> Ticket:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


@dataclass
class _Bucket:
    tokens: float
    last: float
    full_at: float  # When it will have refilled: from then on it is the same as no bucket.


@dataclass
class _Block:
    reason: str
    since: float
    until: float | None


class _Usage:
    """What is held for one identity: distinct-record windows and the probe log."""

    __slots__ = ("records_hour", "records_day", "probes", "reveals")

    def __init__(self) -> None:
        # key -> budget time first counted in the window; insertion order is time order.
        self.records_hour: OrderedDict[bytes, float] = OrderedDict()
        self.records_day: OrderedDict[bytes, float] = OrderedDict()
        self.probes: deque[list[float]] = deque()  # [time, count], time ascending.
        self.reveals: deque[list[float]] = deque()  # [time, count] of fields revealed, time ascending.

    def expire(self, now: float, probe_horizon: float = DAY) -> None:
        for window, length in ((self.records_hour, HOUR), (self.records_day, DAY)):
            while window:
                key, first = next(iter(window.items()))
                if first > now - length:
                    break
                del window[key]
        while self.probes and self.probes[0][0] <= now - probe_horizon:
            self.probes.popleft()
        while self.reveals and self.reveals[0][0] <= now - DAY:
            self.reveals.popleft()

    def empty(self) -> bool:
        return not (self.records_hour or self.records_day or self.probes or self.reveals)


class Budgets:
    """Rate, concurrency, record and probe budgets per identity, and blocks. Thread-safe."""

    def __init__(self, state_path: Path, *, clock: Callable[[], float] = time.monotonic,
                 save_interval: float = 5.0) -> None:
        self._path = Path(state_path)
        self._clock = clock
        self._save_interval = save_interval
        self._lock = threading.Lock()
        self._save_lock = threading.Lock()
        self._usage: dict[str, _Usage] = {}
        self._blocks: dict[str, _Block] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._in_flight: dict[str, int] = {}
        elapsed = self._load()
        self._clock_at_load = clock()
        self._elapsed_at_load = elapsed
        self._last_now = elapsed
        self._last_save = self._clock_at_load

    # -- time ---------------------------------------------------------------------------------

    def _now(self) -> float:
        """Budget-clock time; never goes backwards. Call with the lock held."""
        now = self._elapsed_at_load + (self._clock() - self._clock_at_load)
        if now < self._last_now:
            now = self._last_now
        self._last_now = now
        return now

    # -- admission ----------------------------------------------------------------------------

    def admit(self, identity: str, limits: Limits) -> Ticket:
        """Admit one request, or raise `TooManyRequestsError` having recorded nothing."""
        with self._lock:
            now = self._now()
            self._check_block(identity, now)
            rps, burst = limits.requests_per_second, limits.effective_burst
            bucket: _Bucket | None = None
            if rps is not None and burst is not None:
                if rps <= 0:
                    raise TooManyRequestsError(
                        f"request rate of user [{identity}] is limited to 0 requests per second",
                        INDEFINITE_RETRY_AFTER)
                old = self._buckets.get(identity)
                tokens = float(burst) if old is None else min(float(burst), old.tokens + (now - old.last) * rps)
                if tokens < 1.0:
                    raise TooManyRequestsError(
                        f"request rate of user [{identity}] exceeded: {rps:g} requests per second "
                        f"(burst {burst})", (1.0 - tokens) / rps)
                bucket = _Bucket(tokens - 1.0, now, now + (burst - tokens + 1.0) / rps)
            cap = limits.max_concurrent
            if cap is not None and self._in_flight.get(identity, 0) >= cap:
                raise TooManyRequestsError(
                    f"too many concurrent requests of user [{identity}]: at most {cap}", 1.0)
            if bucket is not None:
                self._buckets[identity] = bucket
            if cap is not None:
                self._in_flight[identity] = self._in_flight.get(identity, 0) + 1
        self._autosave()
        return Ticket(self if cap is not None else None, identity)

    def _release(self, identity: str) -> None:
        with self._lock:
            left = self._in_flight.get(identity, 0) - 1
            if left > 0:
                self._in_flight[identity] = left
            else:
                self._in_flight.pop(identity, None)

    def _check_block(self, identity: str, now: float) -> None:
        block = self._blocks.get(identity)
        if block is None:
            return
        if block.until is not None and block.until <= now:
            del self._blocks[identity]
            return
        retry = INDEFINITE_RETRY_AFTER if block.until is None else block.until - now
        raise TooManyRequestsError(f"user [{identity}] is blocked: {block.reason}", retry)

    # -- charges ------------------------------------------------------------------------------

    def charge_records(self, identity: str, limits: Limits, keys: Collection[bytes]) -> None:
        """Count the distinct documents `keys` against the record budgets, all or nothing."""
        if not limits.tracks_records:
            return
        wanted = list(dict.fromkeys(bytes(k) for k in keys))
        if not wanted:
            return
        with self._lock:
            now = self._now()
            usage = self._usage.get(identity) or _Usage()
            usage.expire(now, self._probe_horizon(limits))
            plan: list[tuple[OrderedDict[bytes, float], list[bytes]]] = []
            refusals: list[tuple[str, float]] = []
            for window, length, limit, per in ((usage.records_hour, HOUR, limits.records_per_hour, "hour"),
                                               (usage.records_day, DAY, limits.records_per_day, "day")):
                if limit is None:
                    continue
                new = [k for k in wanted if k not in window]
                over = len(window) + len(new) - limit
                if over > 0:
                    refusals.append((f"{limit} records per {per}",
                                     _records_retry(window, over, length, now)))
                plan.append((window, new))
            if refusals:
                what = " and ".join(text for text, _ in refusals)
                raise TooManyRequestsError(f"record budget of user [{identity}] exhausted: {what}",
                                           max(retry for _, retry in refusals))
            for window, new in plan:
                for key in new:
                    window[key] = now
            self._keep(identity, usage)
        self._autosave()

    def charge_probes(self, identity: str, limits: Limits, count: int = 1) -> None:
        """Count `count` probes against the probe budgets, all or nothing."""
        if not limits.tracks_probes:
            return
        self._charge_count(identity, limits, count, "probes", limits.probes_per_hour, limits.probes_per_day)

    def charge_reveals(self, identity: str, limits: Limits, count: int = 1) -> None:
        """Count `count` revealed fields against the reveal budgets, all or nothing."""
        if not limits.tracks_reveals:
            return
        self._charge_count(identity, limits, count, "reveals", limits.reveals_per_hour, limits.reveals_per_day)

    def _charge_count(self, identity: str, limits: Limits, count: int, kind: str, per_hour: int | None,
                      per_day: int | None) -> None:
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"{kind} count must be a non-negative integer")
        if count == 0:
            return
        what = "probes" if kind == "probes" else "revealed fields"
        with self._lock:
            now = self._now()
            usage = self._usage.get(identity) or _Usage()
            usage.expire(now, self._probe_horizon(limits))
            log_: deque[list[float]] = getattr(usage, kind)
            refusals: list[tuple[str, float]] = []
            for length, limit, per in ((HOUR, per_hour, "hour"), (DAY, per_day, "day")):
                if limit is None:
                    continue
                over = _count_since(log_, now - length) + count - limit
                if over > 0:
                    refusals.append((f"{limit} {what} per {per}", _probes_retry(log_, over, length, now)))
            if refusals:
                text = " and ".join(text for text, _ in refusals)
                raise TooManyRequestsError(f"{kind[:-1]} budget of user [{identity}] exhausted: {text}",
                                           max(retry for _, retry in refusals))
            if log_ and log_[-1][0] == now:
                log_[-1][1] += count
            else:
                log_.append([now, count])
            self._keep(identity, usage)
        self._autosave()

    @staticmethod
    def _probe_horizon(limits: Limits) -> float:
        return DAY if limits.probes_per_day is not None or limits.probes_per_hour is None else HOUR

    def _keep(self, identity: str, usage: _Usage) -> None:
        if usage.empty():
            self._usage.pop(identity, None)
        else:
            self._usage[identity] = usage

    # -- reporting ----------------------------------------------------------------------------

    def usage(self, identity: str, limits: Limits) -> dict[str, Any]:
        """Used, limit and remaining per budget (limit and remaining None when unlimited)."""
        with self._lock:
            now = self._now()
            usage = self._usage.get(identity)
            if usage is not None:
                usage.expire(now, DAY)  # Reporting never shortens what is held.
            held = usage or _Usage()
            block = self._blocks.get(identity)
            if block is not None and block.until is not None and block.until <= now:
                del self._blocks[identity]
                block = None
            bucket = self._buckets.get(identity)
            rps, burst = limits.requests_per_second, limits.effective_burst
            available: float | None = None
            if rps is not None and burst is not None:
                available = float(burst) if bucket is None else min(float(burst), bucket.tokens + (now - bucket.last) * rps)
            return {
                "records": {
                    "hour": _line(len(held.records_hour), limits.records_per_hour),
                    "day": _line(len(held.records_day), limits.records_per_day),
                },
                "probes": {
                    "hour": _line(_count_since(held.probes, now - HOUR), limits.probes_per_hour),
                    "day": _line(_count_since(held.probes, now - DAY), limits.probes_per_day),
                },
                "reveals": {
                    "hour": _line(_count_since(held.reveals, now - HOUR), limits.reveals_per_hour),
                    "day": _line(_count_since(held.reveals, now - DAY), limits.reveals_per_day),
                },
                "concurrent": _line(self._in_flight.get(identity, 0), limits.max_concurrent),
                "requests": {"per_second": rps, "burst": burst,
                             "available": None if available is None else math.floor(available)},
                "blocked": None if block is None else _block_json(identity, block, now),
            }

    # -- blocks -------------------------------------------------------------------------------

    def block(self, identity: str, reason: str, seconds: float | None) -> None:
        """Refuse every request of `identity` for `seconds` (None: until `unblock`). Saved at once."""
        if seconds is not None and (not _is_number(seconds) or not math.isfinite(seconds) or seconds <= 0):
            raise IllegalArgumentError("block duration must be a positive number of seconds")
        with self._lock:
            now = self._now()
            self._blocks[identity] = _Block(reason, now, None if seconds is None else now + seconds)
        self.save()

    def unblock(self, identity: str) -> bool:
        """Lift a block; False if there was none (or it had expired). Saved at once."""
        with self._lock:
            now = self._now()
            block = self._blocks.pop(identity, None)
            found = block is not None and (block.until is None or block.until > now)
        if block is not None:
            self.save()
        return found

    def blocks(self) -> list[dict[str, Any]]:
        with self._lock:
            now = self._now()
            self._drop_expired_blocks(now)
            return [_block_json(identity, block, now) for identity, block in sorted(self._blocks.items())]

    def _drop_expired_blocks(self, now: float) -> None:
        for identity in [i for i, b in self._blocks.items() if b.until is not None and b.until <= now]:
            del self._blocks[identity]

    # -- persistence --------------------------------------------------------------------------

    def save(self) -> None:
        """Write the state file atomically (and drop what has expired)."""
        with self._save_lock:
            with self._lock:
                now = self._now()
                self._prune(now)
                self._last_save = self._clock()
                state = {
                    "version": STATE_VERSION,
                    "elapsed": now,
                    "identities": {
                        identity: {
                            "records_hour": [[t, k.hex()] for k, t in usage.records_hour.items()],
                            "records_day": [[t, k.hex()] for k, t in usage.records_day.items()],
                            "probes": [[t, int(c)] for t, c in usage.probes],
                            "reveals": [[t, int(c)] for t, c in usage.reveals],
                        }
                        for identity, usage in self._usage.items()
                    },
                    "blocks": {identity: {"reason": b.reason, "since": b.since, "until": b.until}
                               for identity, b in self._blocks.items()},
                }
            data = orjson.dumps(state)
            if not self._path.parent.exists():
                make_dirs(self._path.parent)
            atomic_write(self._path, data)

    def close(self) -> None:
        self.save()

    def _autosave(self) -> None:
        with self._lock:
            due = self._clock() - self._last_save >= self._save_interval
            if due:
                self._last_save = self._clock()  # One thread saves; the others go on.
        if due:
            try:
                self.save()
            except OSError:  # Budgets still hold in memory; only a restart would lose the interval.
                log.exception("could not save the budget state; retrying at the next charge")
                with self._lock:
                    self._last_save = self._clock() - self._save_interval

    def _prune(self, now: float) -> None:
        for identity in list(self._usage):
            usage = self._usage[identity]
            usage.expire(now, DAY)
            if usage.empty():
                del self._usage[identity]
        self._drop_expired_blocks(now)
        for identity in [i for i, b in self._buckets.items() if b.full_at <= now]:
            del self._buckets[identity]

    def _load(self) -> float:
        try:
            raw = self._path.read_bytes()
        except FileNotFoundError:
            return 0.0
        except OSError:
            log.warning("the budget state file cannot be read; budgets, windows and blocks start empty",
                        exc_info=True)
            self._move_aside()
            return 0.0
        try:
            return self._parse_state(orjson.loads(raw))
        except (ValueError, TypeError, KeyError, AttributeError, IndexError):
            log.warning("the budget state file is corrupt; it was moved aside and budgets, windows and "
                        "blocks start empty", exc_info=True)
            self._usage.clear()
            self._blocks.clear()
            self._move_aside()
            return 0.0

    def _parse_state(self, state: Any) -> float:
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise ValueError("unknown budget state version")
        elapsed = _time(state["elapsed"])
        for identity, held in state["identities"].items():
            if not isinstance(identity, str) or not isinstance(held, dict):
                raise ValueError("bad identity entry")
            usage = _Usage()
            for name in ("records_hour", "records_day"):
                window: OrderedDict[bytes, float] = getattr(usage, name)
                for t, key in sorted(held[name], key=lambda pair: _time(pair[0])):
                    if not isinstance(key, str):
                        raise ValueError("bad record key")
                    window.setdefault(bytes.fromhex(key), min(_time(t), elapsed))
            for name in ("probes", "reveals"):  # (no "reveals" in a state saved before they existed)
                for t, count in sorted(held.get(name, []) if name == "reveals" else held[name],
                                       key=lambda pair: _time(pair[0])):
                    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                        raise ValueError(f"bad {name} count")
                    getattr(usage, name).append([min(_time(t), elapsed), count])
            if not usage.empty():
                self._usage[identity] = usage
        for identity, block in state["blocks"].items():
            reason, since, until = block["reason"], _time(block["since"]), block["until"]
            if not isinstance(identity, str) or not isinstance(reason, str):
                raise ValueError("bad block")
            self._blocks[identity] = _Block(reason, min(since, elapsed), None if until is None else _time(until))
        return elapsed

    def _move_aside(self) -> None:
        for n in itertools.count(1):
            target = self._path.with_name(f"{self._path.name}.corrupt-{n}")
            if not target.exists():
                break
        try:
            self._path.rename(target)
        except OSError:
            log.exception("could not move the corrupt budget state file aside")


def _time(value: Any) -> float:
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        raise ValueError("bad time")
    return float(value)


def _records_retry(window: OrderedDict[bytes, float], over: int, length: float, now: float) -> float:
    """Seconds until `over` entries of the window have expired (a whole window if it never will)."""
    if over > len(window):
        return length
    first = next(itertools.islice(window.values(), over - 1, None))
    return max(0.0, first + length - now)


def _count_since(log: deque[list[float]], start: float) -> int:
    """What a [time, count] log (probes, reveals) holds after `start`."""
    return int(sum(count for t, count in log if t > start))


def _probes_retry(probes: deque[list[float]], over: int, length: float, now: float) -> float:
    freed = 0
    for t, count in probes:
        if t <= now - length:
            continue
        freed += int(count)
        if freed >= over:
            return max(0.0, t + length - now)
    return length


def _line(used: int, limit: int | None) -> dict[str, int | None]:
    return {"used": used, "limit": limit, "remaining": None if limit is None else max(0, limit - used)}


def _block_json(identity: str, block: _Block, now: float) -> dict[str, Any]:
    return {"identity": identity, "reason": block.reason,
            "expires_in_seconds": None if block.until is None else max(0.0, block.until - now)}
