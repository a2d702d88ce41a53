"""The in-memory guards' logic: connection caps, fitting caps to the fd limit, login attempt
reservations, log throttling and credential redaction."""

from __future__ import annotations

import logging

import pytest

from postroom import logs
from postroom.config import load_settings
from postroom.connections import FD_RESERVE, ConnectionGate, fit_caps
from postroom.errors import RateLimited
from postroom.ratelimit import USER_FACTOR, RateLimits


def test_gate_counts_per_client_and_in_total() -> None:
    gate = ConnectionGate("test", max_total=3, max_per_client=2)
    assert [gate.admit("a"), gate.admit("a"), gate.admit("a")] == [None, None, "client"]
    assert gate.admit("b") is None
    assert gate.admit("c") == "total"
    gate.release("a")
    assert gate.admit("c") is None
    gate.release("nobody")  # never admitted: ignored
    assert gate.open == 3 and gate.held_by("a") == 1


def test_caps_are_sized_from_and_fitted_to_the_fd_limit(caplog: pytest.LogCaptureFixture) -> None:
    auto = fit_caps(4096, 0, 0, smtp_enabled=True)
    assert auto.http_total + auto.smtp_total == 4096 - FD_RESERVE
    assert auto.http_total == 3 * auto.smtp_total
    assert fit_caps(4096, 0, 0, smtp_enabled=False).http_total == 4096 - FD_RESERVE
    assert fit_caps(4096, 100, 50, smtp_enabled=True) == fit_caps(4096, 100, 50, smtp_enabled=True)
    with caplog.at_level(logging.WARNING):
        fitted = fit_caps(1024, 10_000, 10_000, smtp_enabled=True)
    assert fitted.http_total + fitted.smtp_total <= 1024 - FD_RESERVE
    assert "do not fit the open file limit" in caplog.text


def _limits(per_minute: int) -> RateLimits:
    env = {"POSTROOM_LIMITS_LOGIN_ATTEMPTS_PER_MINUTE": str(per_minute)}
    return RateLimits(load_settings(None, env).limits)


def test_reservations_are_taken_before_and_given_back_on_success() -> None:
    limits = _limits(2)
    limits.reserve_login("ann", "192.0.2.1")
    limits.reserve_login("ann", "192.0.2.1").succeeded()
    limits.reserve_login("ann", "192.0.2.1")
    with pytest.raises(RateLimited):
        limits.reserve_login("bob", "192.0.2.1")  # the address is spent, whatever the name
    limits.reserve_login("ann", "192.0.2.2")  # ann from elsewhere still may


def test_only_many_addresses_exhaust_a_username() -> None:
    limits = _limits(2)
    for n in range(USER_FACTOR):
        for _ in range(2):
            limits.reserve_login("ann", f"198.51.100.{n}")
    with pytest.raises(RateLimited):
        limits.reserve_login("ann", "203.0.113.1")


def test_throttle_passes_a_burst_per_kind_then_counts_the_rest() -> None:
    now = [0.0]
    throttle = logs.Throttle(burst=2, window_s=10.0, clock=lambda: now[0])

    def record(msg: str) -> logging.LogRecord:
        return logging.LogRecord("aiohttp.server", logging.ERROR, "x", 1, msg, ("p",), None)

    assert [throttle.filter(record("Error from %s")) for _ in range(4)] == [
        True,
        True,
        False,
        False,
    ]
    assert throttle.filter(record("Another %s")) is True
    now[0] = 11.0
    later = record("Error from %s")
    assert throttle.filter(later) is True
    assert "2 similar lines suppressed" in later.getMessage()


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("b'Authorization: Basic c2VjcmV0\\x01XYZ'", "c2VjcmV0"),
        ("b'Authorization c2VjcmV0LW5vLWNvbG9u'", "c2VjcmV0LW5vLWNvbG9u"),
        ('{"authorization": "Token 0123456789abcdef"}', "0123456789abcdef"),
        ("sent Bearer 0123456789abcdef0123 twice", "0123456789abcdef0123"),
    ],
)
def test_redact_blanks_credentials(text: str, secret: str) -> None:
    assert secret not in logs.redact(text)
    assert logs.REDACTED in logs.redact(text)
