"""Per-identity limits and budgets (security/limits.py). Every test runs on a fake clock."""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strongroom.errors import IllegalArgumentError, TooManyRequestsError
from strongroom.security.limits import DAY, HOUR, Budgets, Limits, combine, intersect, parse_limits


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.t = start
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def key(name: str | int) -> bytes:
    return hashlib.sha256(f"patients/{name}".encode()).digest()[:16]


def keys(*names: str | int) -> list[bytes]:
    return [key(n) for n in names]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def budgets(tmp_path: Path, clock: FakeClock) -> Budgets:
    return Budgets(tmp_path / "budgets.json", clock=clock, save_interval=float("inf"))


# -- parse_limits ---------------------------------------------------------------------------------


def test_parse_example_descriptor() -> None:
    limits = parse_limits({"requests_per_second": 20, "burst": 40, "records_per_hour": 500,
                           "records_per_day": 2000, "probes_per_hour": 200, "max_size": 50,
                           "max_keep_alive": "5m"})
    assert limits == Limits(requests_per_second=20.0, burst=40, records_per_hour=500, records_per_day=2000,
                            probes_per_hour=200, max_size=50, max_keep_alive=300.0)
    assert not limits.unlimited
    assert parse_limits(limits.to_json()) == limits
    assert limits.to_json()["max_keep_alive"] == "5m"


@pytest.mark.parametrize(("rps", "burst"), [(20, 40), (0.2, 1), (2.5, 5), (0.5, 1), (0, 1)])
def test_burst_defaults_to_twice_the_rate(rps: float, burst: int) -> None:
    assert parse_limits({"requests_per_second": rps}).burst == burst


@pytest.mark.parametrize(("raw", "seconds"), [("30s", 30.0), ("5m", 300.0), ("1h", 3600.0), (90, 90.0),
                                              (1.5, 1.5), ("-1", None)])
def test_max_keep_alive_accepts_time_values_and_seconds(raw: Any, seconds: float | None) -> None:
    assert parse_limits({"max_keep_alive": raw}).max_keep_alive == seconds


def test_absent_or_empty_limits_are_unlimited() -> None:
    assert parse_limits(None).unlimited
    assert parse_limits({}).unlimited
    assert parse_limits({"records_per_hour": None}).unlimited


BAD_LIMITS = [
    ("unknown key", {"records_per_week": 5}, "records_per_week"),
    ("bool as integer", {"records_per_hour": True}, "records_per_hour"),
    ("bool as rate", {"requests_per_second": False}, "requests_per_second"),
    ("bool as keep alive", {"max_keep_alive": True}, "max_keep_alive"),
    ("string as integer", {"max_size": "50"}, "max_size"),
    ("float as integer", {"records_per_day": 20.5}, "records_per_day"),
    ("negative integer", {"probes_per_hour": -1}, "probes_per_hour"),
    ("negative rate", {"requests_per_second": -0.5}, "requests_per_second"),
    ("nan rate", {"requests_per_second": float("nan")}, "requests_per_second"),
    ("infinite rate", {"requests_per_second": float("inf")}, "requests_per_second"),
    ("infinite keep alive", {"max_keep_alive": float("inf")}, "max_keep_alive"),
    ("negative keep alive", {"max_keep_alive": -5}, "max_keep_alive"),
    ("keep alive without unit", {"max_keep_alive": "5"}, "max_keep_alive"),
    ("keep alive bad unit", {"max_keep_alive": "5 minutes"}, "max_keep_alive"),
    ("list as integer", {"max_concurrent": [3]}, "max_concurrent"),
    ("zero burst", {"requests_per_second": 1, "burst": 0}, "burst"),
    ("burst without rate", {"burst": 10}, "burst"),
]


@pytest.mark.parametrize(("raw", "named"), [(r, n) for _, r, n in BAD_LIMITS], ids=[c for c, _, _ in BAD_LIMITS])
def test_bad_limits_are_refused_naming_the_key(raw: dict[str, Any], named: str) -> None:
    with pytest.raises(IllegalArgumentError) as refused:
        parse_limits(raw)
    assert f"[limits.{named}]" in refused.value.reason


def test_integer_message_wording() -> None:
    with pytest.raises(IllegalArgumentError, match=r"^\[limits\.records_per_hour\] must be a non-negative integer$"):
        parse_limits({"records_per_hour": -3})


@pytest.mark.parametrize("raw", [[], "20/s", 5, True])
def test_limits_must_be_an_object(raw: Any) -> None:
    with pytest.raises(IllegalArgumentError, match=r"\[limits\]"):
        parse_limits(raw)


# -- combine and intersect ------------------------------------------------------------------------

A = Limits(requests_per_second=5.0, burst=10, records_per_hour=100, records_per_day=None, max_size=50,
           max_keep_alive=60.0)
B = Limits(requests_per_second=20.0, burst=40, records_per_hour=500, records_per_day=1000, max_size=10,
           max_keep_alive=300.0)

COMBINE = [
    ("two roles: the more generous value per field", [A, B],
     Limits(requests_per_second=20.0, burst=40, records_per_hour=500, records_per_day=None, max_size=50,
            max_keep_alive=300.0)),
    ("a role without limits makes everything unlimited", [A, None], Limits()),
    ("one role", [B], B),
    ("no roles", [], Limits()),
    ("unset field in one role is unlimited", [Limits(max_size=5), Limits(max_size=7, max_concurrent=2)],
     Limits(max_size=7)),
    ("zero is a limit, not unlimited", [Limits(records_per_hour=0), Limits(records_per_hour=0)],
     Limits(records_per_hour=0)),
]


@pytest.mark.parametrize(("roles", "expected"), [(r, e) for _, r, e in COMBINE], ids=[c for c, _, _ in COMBINE])
def test_combine(roles: list[Limits | None], expected: Limits) -> None:
    assert combine(roles) == expected


INTERSECT = [
    ("per field the stricter value", A, B,
     Limits(requests_per_second=5.0, burst=10, records_per_hour=100, records_per_day=1000, max_size=10,
            max_keep_alive=60.0)),
    ("key without limits gets its owner's", Limits(), B, B),
    ("owner without limits: the key's own", A, Limits(), A),
    ("both unlimited", Limits(), Limits(), Limits()),
    ("zero wins", Limits(probes_per_day=0), Limits(probes_per_day=9), Limits(probes_per_day=0)),
]


@pytest.mark.parametrize(("key_limits", "owner", "expected"), [(a, b, e) for _, a, b, e in INTERSECT],
                         ids=[c for c, _, _, _ in INTERSECT])
def test_intersect(key_limits: Limits, owner: Limits, expected: Limits) -> None:
    assert intersect(key_limits, owner) == expected
    assert intersect(owner, key_limits) == expected


# -- admission: token bucket, concurrency, blocks -------------------------------------------------


def test_token_bucket_with_burst(budgets: Budgets, clock: FakeClock) -> None:
    limits = Limits(requests_per_second=2.0, burst=4)
    for _ in range(4):
        budgets.admit("alice", limits)
    with pytest.raises(TooManyRequestsError) as refused:
        budgets.admit("alice", limits)
    assert refused.value.retry_after == 1  # 0.5 s, rounded up to whole seconds.
    assert refused.value.status == 429 and refused.value.headers() == {"Retry-After": "1"}
    budgets.admit("bob", limits)  # Buckets are per identity.
    clock.advance(0.5)
    budgets.admit("alice", limits)  # The refusal took no token: one has refilled.
    with pytest.raises(TooManyRequestsError):
        budgets.admit("alice", limits)
    clock.advance(3600)  # Refills up to the burst, no further.
    for _ in range(4):
        budgets.admit("alice", limits)
    with pytest.raises(TooManyRequestsError):
        budgets.admit("alice", limits)


def test_zero_rate_refuses_every_request(budgets: Budgets) -> None:
    with pytest.raises(TooManyRequestsError):
        budgets.admit("alice", parse_limits({"requests_per_second": 0}))


def test_concurrency_cap_and_release(budgets: Budgets) -> None:
    limits = Limits(max_concurrent=2)
    first = budgets.admit("alice", limits)
    budgets.admit("alice", limits)
    with pytest.raises(TooManyRequestsError, match="concurrent"):
        budgets.admit("alice", limits)
    assert budgets.usage("alice", limits)["concurrent"] == {"used": 2, "limit": 2, "remaining": 0}
    first.release()
    first.release()  # Idempotent: frees one slot, not two.
    budgets.admit("alice", limits)
    with pytest.raises(TooManyRequestsError):
        budgets.admit("alice", limits)


def test_ticket_as_context_manager_releases_on_error(budgets: Budgets) -> None:
    limits = Limits(max_concurrent=1)
    with pytest.raises(RuntimeError):
        with budgets.admit("alice", limits):
            with pytest.raises(TooManyRequestsError):
                budgets.admit("alice", limits)
            raise RuntimeError("handler failed")
    with budgets.admit("alice", limits):
        pass


def test_concurrency_refusal_takes_no_token(budgets: Budgets) -> None:
    limits = Limits(requests_per_second=1.0, burst=2, max_concurrent=1)
    ticket = budgets.admit("alice", limits)
    with pytest.raises(TooManyRequestsError, match="concurrent"):
        budgets.admit("alice", limits)
    ticket.release()
    budgets.admit("alice", limits)  # The second token is still there.


def test_block_for_a_time_and_indefinitely(budgets: Budgets, clock: FakeClock) -> None:
    budgets.block("alice", "bulk export under review", 60)
    with pytest.raises(TooManyRequestsError, match=r"user \[alice\] is blocked: bulk export under review") as refused:
        budgets.admit("alice", Limits())
    assert refused.value.retry_after == 60
    budgets.admit("bob", Limits())
    clock.advance(61)
    budgets.admit("alice", Limits())
    assert budgets.blocks() == []

    budgets.block("bob", "credential leaked", None)
    with pytest.raises(TooManyRequestsError) as refused:
        budgets.admit("bob", Limits())
    assert refused.value.retry_after == 3600
    assert budgets.blocks() == [{"identity": "bob", "reason": "credential leaked", "expires_in_seconds": None}]
    assert budgets.unblock("bob") is True
    assert budgets.unblock("bob") is False
    budgets.admit("bob", Limits())


def test_block_duration_must_be_positive(budgets: Budgets) -> None:
    with pytest.raises(IllegalArgumentError):
        budgets.block("alice", "x", 0)


# -- record budgets -------------------------------------------------------------------------------


def test_distinct_documents_are_counted_once_per_window(budgets: Budgets, clock: FakeClock) -> None:
    limits = Limits(records_per_hour=3)
    budgets.charge_records("alice", limits, keys("a", "b", "b"))
    budgets.charge_records("alice", limits, keys("a", "b"))  # Re-reading is free.
    assert budgets.usage("alice", limits)["records"]["hour"] == {"used": 2, "limit": 3, "remaining": 1}
    budgets.charge_records("alice", limits, keys("a", "c"))
    clock.advance(1800)
    budgets.charge_records("alice", limits, keys("a", "b", "c"))  # Full, but all already counted.
    with pytest.raises(TooManyRequestsError, match=r"record budget of user \[alice\] exhausted: 3 records per hour"):
        budgets.charge_records("alice", limits, keys("d"))
    clock.advance(1801)  # An hour after the first reads: their entries expire.
    budgets.charge_records("alice", limits, keys("a"))  # Counted again.
    assert budgets.usage("alice", limits)["records"]["hour"]["used"] == 1


def test_refusal_is_all_or_nothing_with_retry_after(budgets: Budgets, clock: FakeClock) -> None:
    limits = Limits(records_per_hour=5)
    budgets.charge_records("alice", limits, keys(1, 2, 3))
    clock.advance(100)
    budgets.charge_records("alice", limits, keys(4, 5))
    clock.advance(100)  # Budget time 200 s after the first charge.
    for new, retry in ((1, 3400), (3, 3400), (4, 3500), (6, 3600)):  # 6 > budget: a whole window.
        with pytest.raises(TooManyRequestsError) as refused:
            budgets.charge_records("alice", limits, keys(*(f"new{i}" for i in range(new))))
        assert refused.value.retry_after == retry
    # A request mixing counted and new documents is refused whole: nothing of it was recorded.
    with pytest.raises(TooManyRequestsError):
        budgets.charge_records("alice", limits, keys(1, "new0"))
    assert budgets.usage("alice", limits)["records"]["hour"]["used"] == 5
    clock.advance(3400)  # The first three expire; the refused documents were never counted.
    budgets.charge_records("alice", limits, keys("new0", "new1", "new2"))
    assert budgets.usage("alice", limits)["records"]["hour"]["used"] == 5


def test_hour_and_day_windows_are_independent(budgets: Budgets, clock: FakeClock) -> None:
    limits = Limits(records_per_hour=10, records_per_day=15)
    budgets.charge_records("alice", limits, keys(*range(10)))
    with pytest.raises(TooManyRequestsError, match="10 records per hour"):
        budgets.charge_records("alice", limits, keys(10))
    clock.advance(HOUR + 1)
    budgets.charge_records("alice", limits, keys(0))  # A new hour counts it, the day does not.
    usage = budgets.usage("alice", limits)["records"]
    assert (usage["hour"]["used"], usage["day"]["used"]) == (1, 10)
    budgets.charge_records("alice", limits, keys(*range(10, 15)))
    with pytest.raises(TooManyRequestsError, match="15 records per day") as refused:
        budgets.charge_records("alice", limits, keys(15))
    assert refused.value.retry_after == DAY - (HOUR + 1)
    assert budgets.usage("alice", limits)["records"]["hour"]["used"] == 6  # Refusal by the day took nothing.
    clock.advance(DAY - HOUR)
    budgets.charge_records("alice", limits, keys(15))


def test_identities_without_record_budgets_are_not_tracked(budgets: Budgets, tmp_path: Path) -> None:
    budgets.charge_records("alice", Limits(requests_per_second=5.0), keys(*range(1000)))
    budgets.charge_probes("alice", Limits(records_per_hour=5), 1000)
    budgets.save()
    state = json.loads((tmp_path / "budgets.json").read_text())
    assert state["identities"] == {}


def test_slow_drip_trips_the_daily_budget_every_day(budgets: Budgets, clock: FakeClock) -> None:
    """One new record every 10 minutes, far under the request rate, for 30 days: 144 a day."""
    limits = parse_limits({"requests_per_second": 1, "records_per_hour": 500, "records_per_day": 100})
    step, accepted, refused_days = 600.0, [], set()
    start = clock.t
    for n in range(30 * 144):
        with budgets.admit("alice", limits):  # Never refused: the rate is far under the limit.
            try:
                budgets.charge_records("alice", limits, [key(n)])
                accepted.append(clock.t)
            except TooManyRequestsError as refused:
                assert "100 records per day" in refused.reason
                refused_days.add(int((clock.t - start) // DAY))
        clock.advance(step)
    assert refused_days == set(range(30))
    # In every rolling day, never more than the budget.
    lo = 0
    for hi, t in enumerate(accepted):
        while accepted[lo] <= t - DAY:
            lo += 1
        assert hi - lo + 1 <= 100
    assert len(accepted) >= 30 * 100 - 100  # And the budget is usable, not starved.


# -- probe budgets --------------------------------------------------------------------------------


def test_probes_count_each_time(budgets: Budgets, clock: FakeClock) -> None:
    limits = Limits(probes_per_hour=5, probes_per_day=8)
    budgets.charge_probes("alice", limits, 3)
    clock.advance(10)
    budgets.charge_probes("alice", limits)
    with pytest.raises(TooManyRequestsError, match=r"probe budget of user \[alice\] exhausted: 5 probes per hour") as refused:
        budgets.charge_probes("alice", limits, 2)  # All or nothing: one would still fit.
    assert refused.value.retry_after == HOUR - 10  # When the first three expire.
    budgets.charge_probes("alice", limits)
    clock.advance(HOUR)
    budgets.charge_probes("alice", limits, 3)
    with pytest.raises(TooManyRequestsError, match="8 probes per day"):
        budgets.charge_probes("alice", limits)
    usage = budgets.usage("alice", limits)["probes"]
    assert usage == {"hour": {"used": 3, "limit": 5, "remaining": 2}, "day": {"used": 8, "limit": 8, "remaining": 0}}


# -- time -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("jump", [DAY, -DAY])
def test_wall_clock_jumps_change_nothing(tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
                                         jump: float) -> None:
    limits = Limits(records_per_hour=2, records_per_day=2, probes_per_hour=1)
    real_time = time.time
    for budgets in (Budgets(tmp_path / "fake.json", clock=clock),  # Injected monotonic clock …
                    Budgets(tmp_path / "real.json")):  # … and the default one.
        budgets.charge_records("alice", limits, keys(1, 2))
        budgets.charge_probes("alice", limits)
        budgets.block("bob", "review", 600)
        before = budgets.usage("alice", limits)
        monkeypatch.setattr(time, "time", lambda: real_time() + jump)
        with pytest.raises(TooManyRequestsError):
            budgets.charge_records("alice", limits, keys(3))
        with pytest.raises(TooManyRequestsError):
            budgets.charge_probes("alice", limits)
        with pytest.raises(TooManyRequestsError, match="blocked"):
            budgets.admit("bob", limits)
        assert budgets.usage("alice", limits) == before
        budgets.save()
        monkeypatch.undo()


def test_restart_continues_windows_and_blocks(tmp_path: Path) -> None:
    path = tmp_path / "state" / "budgets.json"
    limits = Limits(records_per_hour=3, records_per_day=5, probes_per_hour=2)
    before = FakeClock(50_000.0)
    first = Budgets(path, clock=before)
    first.charge_records("alice", limits, keys(1, 2))
    first.charge_probes("alice", limits, 2)
    first.block("mallory", "bulk export", 5000)
    first.block("eve", "leaked key", None)
    before.advance(1800)
    first.close()
    assert path.stat().st_mode & 0o777 == 0o600

    after = FakeClock(7.0)  # A reboot: the monotonic clock starts again; downtime does not count.
    second = Budgets(path, clock=after)
    usage = second.usage("alice", limits)
    assert usage["records"]["hour"]["used"] == 2 and usage["probes"]["hour"]["used"] == 2
    assert usage["records"]["day"]["used"] == 2
    second.charge_records("alice", limits, keys(2, 3))  # 2 is still counted; 3 fills the hour.
    with pytest.raises(TooManyRequestsError, match="per hour") as refused:
        second.charge_records("alice", limits, keys(4))
    assert refused.value.retry_after == 1800  # The window went on where it stopped.
    with pytest.raises(TooManyRequestsError):
        second.charge_probes("alice", limits)
    blocks = {b["identity"]: b for b in second.blocks()}
    assert blocks["mallory"]["expires_in_seconds"] == pytest.approx(5000 - 1800)
    assert blocks["eve"]["expires_in_seconds"] is None
    with pytest.raises(TooManyRequestsError, match="blocked"):
        second.admit("eve", Limits())
    after.advance(1800)
    second.charge_records("alice", limits, keys(4))  # 1 and 2 expired an hour after they were counted.
    assert second.usage("alice", limits)["records"] == {
        "hour": {"used": 2, "limit": 3, "remaining": 1}, "day": {"used": 4, "limit": 5, "remaining": 1}}
    second.close()

    third = Budgets(path, clock=FakeClock(0.0))
    assert third.usage("alice", limits)["records"]["day"]["used"] == 4
    with pytest.raises(TooManyRequestsError, match="blocked"):
        third.admit("eve", Limits())


def test_timed_block_survives_restart_for_its_remaining_time(tmp_path: Path) -> None:
    path = tmp_path / "budgets.json"
    clock = FakeClock()
    first = Budgets(path, clock=clock)
    first.block("mallory", "bulk export", 1000)
    clock.advance(400)
    first.close()
    later = FakeClock(3.0)
    second = Budgets(path, clock=later)
    with pytest.raises(TooManyRequestsError) as refused:
        second.admit("mallory", Limits())
    assert refused.value.retry_after == 600
    later.advance(600)
    second.admit("mallory", Limits())


def test_charges_save_at_most_every_save_interval(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "budgets.json"
    budgets = Budgets(path, clock=clock, save_interval=5.0)
    limits = Limits(records_per_hour=10)
    budgets.charge_records("alice", limits, keys(1))
    assert not path.exists()
    clock.advance(5)
    budgets.charge_records("alice", limits, keys(2))  # Saved on the way, no thread, no close().
    reopened = Budgets(path, clock=FakeClock())
    assert reopened.usage("alice", limits)["records"]["hour"]["used"] == 2


@pytest.mark.parametrize("content", [b"{not json", b"", b"[]", b'{"version": 1, "elapsed": "x"}',
                                     b'{"version": 1, "elapsed": 5, "identities": {"a": {"records_hour": '
                                     b'[[1, "zz"]], "records_day": [], "probes": []}}, "blocks": {}}',
                                     b'{"version": 99, "elapsed": 5, "identities": {}, "blocks": {}}'],
                         ids=["truncated", "empty", "wrong shape", "bad elapsed", "bad hex", "future version"])
def test_corrupt_state_is_moved_aside_and_the_server_starts(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                           content: bytes) -> None:
    path = tmp_path / "budgets.json"
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="strongroom.security.limits"):
        budgets = Budgets(path, clock=FakeClock())
    assert any("corrupt" in record.getMessage() for record in caplog.records)
    assert (tmp_path / "budgets.json.corrupt-1").read_bytes() == content
    assert budgets.usage("a", Limits(records_per_hour=1))["records"]["hour"]["used"] == 0
    assert budgets.blocks() == []
    budgets.charge_records("a", Limits(records_per_hour=1), keys(1))
    budgets.save()
    assert json.loads(path.read_text())["version"] == 1


# -- threads --------------------------------------------------------------------------------------


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Switch threads as often as possible, so that a missing lock shows."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


@pytest.mark.usefixtures("busy_switching")
def test_many_threads_never_exceed_the_budget(budgets: Budgets) -> None:
    limits = Limits(records_per_hour=500, records_per_day=700, max_concurrent=64)
    accepted: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def worker(w: int) -> None:
        start.wait()
        for i in range(100):
            try:
                with budgets.admit("alice", limits):
                    budgets.charge_records("alice", limits, [key(f"{w}-{i}"), key(f"shared-{i % 7}")])
            except TooManyRequestsError:
                continue
            with lock:
                accepted.append(w)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    used = budgets.usage("alice", limits)
    assert used["records"]["hour"]["used"] <= 500
    assert used["records"]["hour"]["used"] >= 499  # The budget was used up, not lost to races.
    assert used["concurrent"]["used"] == 0
    assert len(accepted) == used["records"]["hour"]["used"] - 7  # Each own key once, the 7 shared once.


@pytest.mark.usefixtures("busy_switching")
def test_concurrency_cap_holds_across_threads(budgets: Budgets) -> None:
    limits = Limits(max_concurrent=4)
    tickets, refusals = [], []
    lock = threading.Lock()
    start = threading.Barrier(32)

    def worker() -> None:
        start.wait()
        try:
            ticket = budgets.admit("alice", limits)
        except TooManyRequestsError as refused:
            with lock:
                refusals.append(refused)
            return
        with lock:
            tickets.append(ticket)

    threads = [threading.Thread(target=worker) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(tickets), len(refusals)) == (4, 28)


def test_reveals_count_each_field_and_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "budgets.json"
    limits = Limits(reveals_per_hour=3, reveals_per_day=4, probes_per_hour=1)
    clock = FakeClock(100.0)
    first = Budgets(path, clock=clock)
    first.charge_reveals("alice", limits, 2)
    first.charge_probes("alice", limits)  # a separate budget: reveals and probes do not share
    with pytest.raises(TooManyRequestsError, match=r"reveal budget of user \[alice\] exhausted: 3 revealed "
                                                   r"fields per hour") as refused:
        first.charge_reveals("alice", limits, 2)  # all or nothing: 2 + 2 > 3
    assert refused.value.retry_after == 3600
    first.charge_reveals("alice", limits, 1)
    assert first.usage("alice", limits)["reveals"] == {
        "hour": {"used": 3, "limit": 3, "remaining": 0}, "day": {"used": 3, "limit": 4, "remaining": 1}}
    clock.advance(1800)
    first.close()

    second = Budgets(path, clock=FakeClock(5.0))  # downtime does not count
    with pytest.raises(TooManyRequestsError, match="per hour") as refused:
        second.charge_reveals("alice", limits, 1)
    assert refused.value.retry_after == 1800
    second._clock.advance(1800)  # type: ignore[attr-defined]
    second.charge_reveals("alice", limits, 1)  # the hour has passed; the day has one left
    with pytest.raises(TooManyRequestsError, match="4 revealed fields per day"):
        second.charge_reveals("alice", limits, 1)
    with pytest.raises(ValueError):
        second.charge_reveals("alice", limits, -1)
    assert Limits(records_per_hour=1).tracks_reveals is False
    second.charge_reveals("bob", Limits(records_per_hour=1), 1000)  # no reveal budget: not tracked
    assert second.usage("bob", Limits(records_per_hour=1))["reveals"]["hour"]["used"] == 0


def test_a_state_saved_before_reveals_existed_loads(tmp_path: Path) -> None:
    path = tmp_path / "budgets.json"
    path.write_bytes(b'{"version": 1, "elapsed": 50, "identities": {"alice": {"records_hour": [], '
                     b'"records_day": [], "probes": [[10, 2]]}}, "blocks": {}}')
    budgets = Budgets(path, clock=FakeClock())
    usage = budgets.usage("alice", Limits(probes_per_hour=5, reveals_per_hour=5))
    assert usage["probes"]["hour"]["used"] == 2 and usage["reveals"]["hour"]["used"] == 0
    assert not list(tmp_path.glob("*.corrupt-*"))


def test_reveal_limits_parse() -> None:
    assert parse_limits({"reveals_per_hour": 20, "reveals_per_day": 100}) == Limits(reveals_per_hour=20,
                                                                                     reveals_per_day=100)
    with pytest.raises(IllegalArgumentError, match=r"\[limits.reveals_per_hour\] must be a non-negative integer"):
        parse_limits({"reveals_per_hour": -1})
