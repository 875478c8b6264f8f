"""Login backoff (fake clock) and the generated TLS material."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from pathlib import Path

import pytest
from cryptography import x509

from strongroom.crypto.tls import TlsError, ensure_http_certificates, fingerprint_of, operator_certificates
from strongroom.security.throttle import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_backoff_grows_per_user_and_address_and_success_clears_it() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock=clock, free_failures=3, base_delay=0.25, max_delay=8.0)
    delays = []
    for _ in range(10):
        delays.append(throttle.delay("alice", "10.0.0.1"))
        throttle.failure("alice", "10.0.0.1")
    assert delays[:3] == [0, 0, 0]  # Three free failures…
    assert delays[3:7] == [0.25, 0.5, 1.0, 2.0]  # …then each attempt waits twice as long.
    assert throttle.delay("alice", "10.0.0.1") == 8.0  # Capped.
    assert throttle.delay("bob", "10.0.0.1") == 0  # Other users are not slowed.
    clock.now += 3.0
    assert throttle.delay("alice", "10.0.0.1") == 5.0  # Time already waited counts.
    throttle.success("alice", "10.0.0.1")
    assert throttle.delay("alice", "10.0.0.1") == 0


def test_one_user_attacked_from_many_addresses_is_slowed_too() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock=clock, free_failures=3, user_free_failures=10)
    for i in range(11):
        throttle.failure("alice", f"10.0.0.{i}")
    assert throttle.delay("alice", "10.9.9.9") > 0


def test_old_failures_are_forgotten_and_state_is_bounded() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock=clock, forget_after=900.0, max_entries=50)
    for _ in range(6):
        throttle.failure("alice", "a")
    clock.now += 901
    assert throttle.delay("alice", "a") == 0
    for i in range(500):
        throttle.failure(f"user{i}", "a")
    assert len(throttle._state) <= 50


def test_wait_turn_sleeps_the_delay() -> None:
    clock = Clock()
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    throttle = LoginThrottle(clock=clock, sleep=fake_sleep)
    for _ in range(5):
        throttle.failure("u", "a")
    asyncio.run(throttle.wait_turn("u", "a"))
    assert slept == [1.0]  # Two attempts past the free three: 0.25 × 2².


def test_certificates_are_generated_once_and_reused(tmp_path: Path) -> None:
    first = ensure_http_certificates(tmp_path, ["127.0.0.1"])
    assert first.generated and first.ca_cert is not None
    ca = x509.load_pem_x509_certificate(first.ca_cert.read_bytes())
    assert fingerprint_of(ca) == first.fingerprint
    chain = x509.load_pem_x509_certificates(first.cert_chain.read_bytes())
    assert chain[0].issuer == ca.subject and chain[1] == ca
    san = chain[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert chain[0].not_valid_after_utc - dt.datetime.now(dt.timezone.utc) > dt.timedelta(days=300)
    for key in (tmp_path / "certs").glob("*.key"):
        assert key.stat().st_mode & 0o077 == 0
    second = ensure_http_certificates(tmp_path, ["127.0.0.1"])
    assert not second.generated and second.fingerprint == first.fingerprint
    third = ensure_http_certificates(tmp_path, ["127.0.0.1", "search.internal"])  # New name: re-issued, same CA.
    assert third.generated and third.fingerprint == first.fingerprint


def test_half_a_ca_is_refused(tmp_path: Path) -> None:
    ensure_http_certificates(tmp_path, ["127.0.0.1"])
    (tmp_path / "certs" / "http_ca.key").unlink()
    with pytest.raises(TlsError, match="half of the HTTP CA"):
        ensure_http_certificates(tmp_path, ["127.0.0.1"])


def test_operator_key_must_be_private(tmp_path: Path) -> None:
    material = ensure_http_certificates(tmp_path, ["127.0.0.1"])
    assert operator_certificates(material.cert_chain, material.key).fingerprint == material.fingerprint
    os.chmod(material.key, 0o644)
    with pytest.raises(TlsError, match="readable by other users"):
        operator_certificates(material.cert_chain, material.key)
