"""Dump detection: spots clients enumerating the data set a query at a time.

Each search is reported as an `Observation` (who, which query `Shape`, which page, how much came
back); `DumpDetector.observe` returns the `Finding`s it completes. It sees only keyed hashes and
lengths of literals (`shapes.py`), never a searched value, and its findings carry none.

Patterns (thresholds in `DetectorSettings`; all windows rolling):

* prefix_walk: one identity, one query shape, one field and literal length, many distinct
  *enumerable* values: prefix, wildcard, regexp and range literals of any length, and exact (term)
  values of at most `short_literal` characters (codes, years, prefixes typed as terms); full-text
  values (match, phrase, query_string) never, since names are short.
* sweep: one identity, one query shape, many distinct *combinations* of literals, once values
  that are asked only once are set aside (see below).
* deep_paging: one request reaching past `deep_offset`, or one identity reading `deep_records`
  through continuation pages (search_after, scroll, from > 0) of one query shape.
* tenant_spread: several identities of one tenant, each near its hourly record budget.

An investigator and a scraper both send many queries of one shape with changing values; what
differs is the values. An investigator looks people up by full-length exact values (a national ID,
a phone number), each value asked for itself: such values never count toward a walk, and a
combination counts toward a sweep only by its enumerable or recurring part. A value is recurring
when it appears in `sweep_recurrence` or more distinct combinations in the window, as a
birthplace does when a scraper crosses it with every birth year; an ID looked up once (or the same
ID again and again) does not. So 500 exact ID lookups in an hour raise nothing here (the hourly
record budget bounds them), while walking prefixes, short codes, date ranges or the cross product
of categories does. Cost: an identity looking up more than `walk_distinct` different *short*
exact values of one length on one keyword field within the window is reported as a walk; raise
`short_literal` lower to trade that away.

A finding is reported once per `cooldown` for each (identity, pattern), or (tenant, pattern).
Memory is bounded: idle state expires after the longest window, and every table has a cap.
"""

from __future__ import annotations

import math
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from .shapes import Literal, Shape

PREFIX_WALK, SWEEP, DEEP_PAGING, TENANT_SPREAD = "prefix_walk", "sweep", "deep_paging", "tenant_spread"
ALWAYS_ENUMERABLE = frozenset({"prefix", "wildcard", "regexp", "range"})  # Any length.
# When short: exact values (codes, years). Full-text lookups (match, phrase, query_string) are not: names
# are short, and looking up twenty people by name is an investigator's day, not a walk.
SHORT_ENUMERABLE = frozenset({"term", "fuzzy", "other"})
NO_SHAPE = "-"  # Fingerprint for requests without a query (scroll continuations).


@dataclass(frozen=True)
class DetectorSettings:
    walk_distinct: int = 20  # Distinct enumerable values on one field, one shape…
    walk_window: float = 600.0  # …within this many seconds.
    short_literal: int = 6  # Exact values this long or shorter are enumerable (codes, years).
    sweep_combinations: int = 30  # Distinct literal combinations of one shape…
    sweep_window: float = 600.0  # …within this many seconds.
    sweep_recurrence: int = 3  # An exact value counts in a sweep once it is in this many combinations.
    deep_offset: int = 1_000  # from + size of one request.
    deep_records: int = 2_000  # Records read through continuation pages of one shape…
    deep_window: float = 600.0  # …within this many seconds.
    spread_identities: int = 3  # Identities of one tenant…
    spread_fraction: float = 0.8  # …each at this fraction of its hourly record budget…
    spread_window: float = 3_600.0  # …within this many seconds.
    cooldown: float = 600.0  # One finding per (identity or tenant, pattern) per this many seconds.
    max_identities: int = 5_000  # Least recently active identities are forgotten beyond this.
    max_shapes_per_identity: int = 16
    max_fields_per_shape: int = 16
    max_entries: int = 256  # Values, combinations or pages remembered per shape (and field).
    max_literals_per_request: int = 256
    max_tenants: int = 1_000
    max_identities_per_tenant: int = 1_000
    evidence_samples: int = 3  # Hashed literals quoted in a finding.


@dataclass
class Observation:
    identity: str
    tenant: str | None
    index: str
    shape: Shape | None
    offset: int
    size: int
    search_after: bool
    scroll: bool
    returned: int  # Records returned.
    budget_fraction: float | None  # Records used this hour / hourly budget, if there is one.


@dataclass(frozen=True)
class Finding:
    """One detected pattern. `summary` and `evidence` hold counts, names and hashes, never values."""
    identity: str
    pattern: str
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    tenant: str | None = None


class _Seen:
    """Distinct keys with the time each was last seen, oldest first, capped."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: OrderedDict[Any, float] = OrderedDict()

    def add(self, key: Any, now: float, cap: int) -> None:
        self.items[key] = now
        self.items.move_to_end(key)
        while len(self.items) > cap:
            self.items.popitem(last=False)

    def expire(self, before: float) -> None:
        while self.items and next(iter(self.items.values())) < before:
            self.items.popitem(last=False)

    def __len__(self) -> int:
        return len(self.items)


class _Combos(_Seen):
    """The distinct literal combinations of one shape, with running counts of how many combinations
    each exact value appears in, so a sweep check costs nothing while no value recurs and no
    combination holds an enumerable literal (an investigator's lookups)."""

    __slots__ = ("counts", "recurring", "always", "keep")

    def __init__(self, keep: int) -> None:
        super().__init__()
        self.counts: Counter[Any] = Counter()
        self.recurring = 0  # values appearing in `keep` or more combinations
        self.always = 0  # combinations holding a prefix, wildcard, regexp or range literal
        self.keep = keep

    def _added(self, combo: frozenset[Any]) -> None:
        enumerable = False
        for item in combo:
            if item[1] in ALWAYS_ENUMERABLE:
                enumerable = True
                continue
            self.counts[item] += 1
            if self.counts[item] == self.keep:
                self.recurring += 1
        self.always += enumerable

    def _removed(self, combo: frozenset[Any]) -> None:
        enumerable = False
        for item in combo:
            if item[1] in ALWAYS_ENUMERABLE:
                enumerable = True
                continue
            if self.counts[item] == self.keep:
                self.recurring -= 1
            self.counts[item] -= 1
            if self.counts[item] <= 0:
                del self.counts[item]
        self.always -= enumerable

    def add(self, key: Any, now: float, cap: int) -> None:
        new = key not in self.items
        self.items[key] = now
        self.items.move_to_end(key)
        if new:
            self._added(key)
        while len(self.items) > cap:
            self._removed(self.items.popitem(last=False)[0])

    def expire(self, before: float) -> None:
        while self.items and next(iter(self.items.values())) < before:
            self._removed(self.items.popitem(last=False)[0])

    @property
    def candidate(self) -> bool:
        """Whether a projection could find anything: some value recurs or some literal is enumerable."""
        return self.recurring > 0 or self.always > 0


def _recent_slot(table: OrderedDict[Any, Any], key: Any, cap: int, make: Callable[[], Any]) -> Any:
    """`key`'s entry in a table kept in least-recently-used order, made by `make()` when missing; the
    oldest entries go beyond `cap`."""
    value = table.get(key)
    if value is None:
        value = table[key] = make()
        while len(table) > cap:
            table.popitem(last=False)
    table.move_to_end(key)
    return value


class _ShapeState:
    __slots__ = ("walks", "combos", "pages", "paged", "last")

    def __init__(self, keep: int = 3) -> None:
        self.walks: OrderedDict[tuple[str, int], _Seen] = OrderedDict()
        self.combos = _Combos(keep)
        self.pages: deque[tuple[float, int]] = deque()
        self.paged = 0
        self.last = 0.0


class _IdentityState:
    __slots__ = ("shapes", "last")

    def __init__(self) -> None:
        self.shapes: OrderedDict[str, _ShapeState] = OrderedDict()
        self.last = 0.0


def _count(value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return 0
    return max(number, 0)


class DumpDetector:
    """Not thread-safe: call `observe` from one task (or under a lock)."""

    def __init__(self, settings: DetectorSettings = DetectorSettings(),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self._identities: OrderedDict[str, _IdentityState] = OrderedDict()
        self._tenants: OrderedDict[str, _Seen] = OrderedDict()
        self._cooldowns: OrderedDict[tuple[str, str, str], float] = OrderedDict()
        self._horizon = max(settings.walk_window, settings.sweep_window, settings.deep_window)

    def observe(self, obs: Observation) -> list[Finding]:
        now = self._clock()
        self._expire(now)
        if type(obs.identity) is not str or type(obs.index) is not str:
            obs = replace(obs, identity=str(obs.identity), index=str(obs.index))
        findings: list[Finding] = []
        shape = obs.shape if isinstance(obs.shape, Shape) else None
        fingerprint = shape.fingerprint if shape is not None else NO_SHAPE
        state = self._shape_state(obs.identity, fingerprint, now)
        literals = shape.literals[: self.settings.max_literals_per_request] if shape is not None else ()
        for check in (self._walk(obs, state, literals, fingerprint, now),
                      self._sweep(obs, state, literals, fingerprint, now),
                      self._deep(obs, state, fingerprint, now),
                      self._spread(obs, now)):
            if check is not None:
                findings.append(check)
        return findings

    # -- patterns ---------------------------------------------------------------------------
    def _enumerable(self, literal: Literal) -> bool:
        return literal.kind in ALWAYS_ENUMERABLE or (
            literal.kind in SHORT_ENUMERABLE and literal.length <= self.settings.short_literal)

    def _walk(self, obs: Observation, state: _ShapeState, literals: Iterable[Literal], fingerprint: str,
              now: float) -> Finding | None:
        s = self.settings
        touched: dict[tuple[str, int], _Seen] = {}
        for literal in literals:
            if not self._enumerable(literal):
                continue
            key = (literal.field, literal.length)
            seen = _recent_slot(state.walks, key, s.max_fields_per_shape, _Seen)
            seen.add(literal.hashed, now, s.max_entries)
            touched[key] = seen
        for (field_name, length), seen in touched.items():
            seen.expire(now - s.walk_window)
            if len(seen) >= s.walk_distinct and self._due(("identity", obs.identity), PREFIX_WALK, now):
                return Finding(obs.identity, PREFIX_WALK,
                               f"identity [{obs.identity}] asked for {len(seen)} distinct values of length "
                               f"{length} on field [{field_name}] with one query shape within "
                               f"{s.walk_window:g}s (index [{obs.index}])",
                               {"field": field_name, "literal_length": length, "distinct_values": len(seen),
                                "threshold": s.walk_distinct, "window_seconds": s.walk_window,
                                "fingerprint": fingerprint, "index": obs.index,
                                "sample": list(seen.items)[-s.evidence_samples:]})
        return None

    def _sweep(self, obs: Observation, state: _ShapeState, literals: Iterable[Literal], fingerprint: str,
               now: float) -> Finding | None:
        s = self.settings
        combo = frozenset((lit.field, lit.kind, lit.hashed) for lit in literals)
        if not combo:
            return None
        state.combos.add(combo, now, s.max_entries)
        state.combos.expire(now - s.sweep_window)
        if len(state.combos) < s.sweep_combinations or not state.combos.candidate or \
                self._cooling(("identity", obs.identity), SWEEP, now):
            return None  # (the projection below is linear in the window: not while the finding cools down)
        # Set aside exact values asked in fewer than `sweep_recurrence` combinations: lookups.
        combos = state.combos.items
        recurring = state.combos.counts
        keep = s.sweep_recurrence
        projected = {frozenset(i for i in c if i[1] in ALWAYS_ENUMERABLE or recurring[i] >= keep)
                     for c in combos}
        projected.discard(frozenset())
        if len(projected) < s.sweep_combinations or not self._due(("identity", obs.identity), SWEEP, now):
            return None
        fields = sorted({item[0] for c in projected for item in c})
        sample = sorted({item[2] for c in projected for item in c})[: s.evidence_samples]
        return Finding(obs.identity, SWEEP,
                       f"identity [{obs.identity}] ran {len(projected)} distinct value combinations over "
                       f"fields [{', '.join(fields)}] with one query shape within {s.sweep_window:g}s "
                       f"(index [{obs.index}])",
                       {"distinct_combinations": len(projected), "threshold": s.sweep_combinations,
                        "window_seconds": s.sweep_window, "fields": fields, "fingerprint": fingerprint,
                        "index": obs.index, "sample": sample})

    def _deep(self, obs: Observation, state: _ShapeState, fingerprint: str, now: float) -> Finding | None:
        s = self.settings
        offset, size, returned = _count(obs.offset), _count(obs.size), _count(obs.returned)
        scope = ("identity", obs.identity)
        if offset + size >= s.deep_offset:
            if not self._due(scope, DEEP_PAGING, now):
                return None
            return Finding(obs.identity, DEEP_PAGING,
                           f"identity [{obs.identity}] asked for records up to position {offset + size} "
                           f"in one request (limit {s.deep_offset}, index [{obs.index}])",
                           {"offset": offset, "size": size, "limit": s.deep_offset,
                            "fingerprint": fingerprint, "index": obs.index})
        if not (obs.search_after or obs.scroll or offset > 0):
            return None
        state.pages.append((now, returned))
        state.paged += returned
        while state.pages and (state.pages[0][0] < now - s.deep_window or len(state.pages) > s.max_entries):
            state.paged -= state.pages.popleft()[1]
        if state.paged < s.deep_records or not self._due(scope, DEEP_PAGING, now):
            return None
        via = "scroll" if obs.scroll else "search_after" if obs.search_after else "from"
        return Finding(obs.identity, DEEP_PAGING,
                       f"identity [{obs.identity}] read {state.paged} records through {len(state.pages)} "
                       f"continuation pages ({via}) of one query shape within {s.deep_window:g}s "
                       f"(index [{obs.index}])",
                       {"records": state.paged, "pages": len(state.pages), "threshold": s.deep_records,
                        "window_seconds": s.deep_window, "via": via, "fingerprint": fingerprint,
                        "index": obs.index})

    def _spread(self, obs: Observation, now: float) -> Finding | None:
        s = self.settings
        fraction = obs.budget_fraction
        if not obs.tenant or not isinstance(fraction, (int, float)) or isinstance(fraction, bool) \
                or not math.isfinite(fraction) or fraction < s.spread_fraction:
            return None
        tenant = str(obs.tenant)
        seen = _recent_slot(self._tenants, tenant, s.max_tenants, _Seen)
        seen.add(obs.identity, now, s.max_identities_per_tenant)
        seen.expire(now - s.spread_window)
        if len(seen) < s.spread_identities or not self._due(("tenant", tenant), TENANT_SPREAD, now):
            return None
        identities = sorted(map(str, seen.items))
        return Finding(obs.identity, TENANT_SPREAD,
                       f"{len(identities)} identities of tenant [{tenant}] each used at least "
                       f"{s.spread_fraction:.0%} of their hourly record budget within {s.spread_window:g}s",
                       {"tenant": tenant, "identities": identities[:20], "count": len(identities),
                        "threshold": s.spread_identities, "fraction_threshold": s.spread_fraction,
                        "window_seconds": s.spread_window},
                       tenant=tenant)

    # -- state ------------------------------------------------------------------------------
    def _cooling(self, scope: tuple[str, str], pattern: str, now: float) -> bool:
        until = self._cooldowns.get((scope[0], scope[1], pattern))
        return until is not None and until > now

    def _due(self, scope: tuple[str, str], pattern: str, now: float) -> bool:
        """True (and starts the cooldown) unless this scope reported this pattern recently."""
        key = (scope[0], scope[1], pattern)
        until = self._cooldowns.get(key)
        if until is not None and until > now:
            return False
        self._cooldowns.pop(key, None)
        self._cooldowns[key] = now + self.settings.cooldown
        return True

    def _shape_state(self, identity: str, fingerprint: str, now: float) -> _ShapeState:
        s = self.settings
        ident = _recent_slot(self._identities, identity, s.max_identities, _IdentityState)
        ident.last = now
        while ident.shapes and next(iter(ident.shapes.values())).last < now - self._horizon:
            ident.shapes.popitem(last=False)
        state = _recent_slot(ident.shapes, fingerprint, s.max_shapes_per_identity,
                             lambda: _ShapeState(s.sweep_recurrence))
        state.last = now
        return state

    def _expire(self, now: float) -> None:
        while self._identities and next(iter(self._identities.values())).last < now - self._horizon:
            self._identities.popitem(last=False)
        while self._tenants:
            oldest = next(iter(self._tenants.values()))
            oldest.expire(now - self.settings.spread_window)
            if oldest:
                break
            self._tenants.popitem(last=False)
        while self._cooldowns and next(iter(self._cooldowns.values())) <= now:
            self._cooldowns.popitem(last=False)

    def tracked(self) -> dict[str, int]:
        """Sizes of the detector's tables (for tests and metrics)."""
        return {"identities": len(self._identities), "tenants": len(self._tenants),
                "cooldowns": len(self._cooldowns),
                "shapes": sum(len(i.shapes) for i in self._identities.values())}
