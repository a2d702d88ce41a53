"""Rate limits: token buckets per client address, per user, for failed logins, and for SMTP clients.

HTTP requests pass two checks (`api.middleware.limits`): the client address before
authentication (so a flood of bad credentials never reaches the password hash), and after it the
authenticated user — whether the request came with a token or a Basic credential. Both use
`limits.requests_per_second` as the refill rate and `limits.burst` as the bucket size (a rate of
0 disables them). Failed logins — on `/auth/login` and failed Basic credentials — drain a much
smaller bucket per username and per address (`limits.login_attempts_per_minute`). Over a limit
the request fails with `errors.RateLimited(retry_after)`, which the error middleware turns into
429 `{"detail", "code": "rate_limited", "url"}` with `Retry-After`.

The SMTP listener asks `smtp_connection_allowed(address)` when a client connects and
`smtp_message_allowed(address)` at each MAIL FROM; on False it answers `421 4.7.0` / `451 4.7.1`.

Buckets live in this process's memory: with N instances behind a load balancer each enforces the
limits on the traffic it sees (document this for operators; a shared limiter is not needed to stop
one client from starving the others).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from postroom import metrics
from postroom.config import LimitsSettings
from postroom.errors import RateLimited

# Bound on remembered buckets per kind; idle buckets are dropped oldest first beyond it.
MAX_BUCKETS = 50_000


@dataclass
class Bucket:
    tokens: float
    stamp: float


class TokenBuckets:
    """Buckets of `capacity` tokens refilled at `rate` per second, one per key."""

    def __init__(self, rate: float, capacity: float, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._buckets: OrderedDict[str, Bucket] = OrderedDict()

    def _refilled(self, key: str) -> Bucket:
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = Bucket(self.capacity, now)
            self._buckets[key] = bucket
            if len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
        else:
            bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
            self._buckets.move_to_end(key)
        return bucket

    def take(self, key: str) -> float:
        """Take one token; 0.0 when granted, else the seconds until one will be available."""
        bucket = self._refilled(key)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def wait_needed(self, key: str) -> float:
        """Seconds until a token is available, without taking one (0.0 if one is there now)."""
        if key not in self._buckets:
            return 0.0
        bucket = self._refilled(key)
        return 0.0 if bucket.tokens >= 1.0 else (1.0 - bucket.tokens) / self.rate

    def drain(self, key: str) -> None:
        """Take one token even if that leaves the bucket below zero (failed attempts)."""
        bucket = self._refilled(key)
        bucket.tokens = max(bucket.tokens - 1.0, -self.capacity)


class RateLimits:
    """Every limiter of one process, built from `[limits]`. Callers name the client by address
    (the HTTP edge resolves trusted proxies first) and the user by id or name."""

    def __init__(self, limits: LimitsSettings) -> None:
        self.limits = limits
        self.enabled = limits.requests_per_second > 0
        rate, burst = limits.requests_per_second, float(limits.burst)
        self._by_address = TokenBuckets(rate, burst)
        self._by_user = TokenBuckets(rate, burst)
        per_minute = limits.login_attempts_per_minute
        self._failed_logins = TokenBuckets(per_minute / 60.0, float(per_minute))
        conns = limits.smtp_connections_per_minute
        self._smtp_connections = TokenBuckets(conns / 60.0, float(conns))
        msgs = limits.smtp_messages_per_minute
        self._smtp_messages = TokenBuckets(msgs / 60.0, float(msgs))

    # -- HTTP -------------------------------------------------------------------------------

    def check_address(self, address: str) -> None:
        if not self.enabled:
            return
        wait = self._by_address.take(address)
        if wait:
            metrics.RATE_LIMITED.labels(scope="address").inc()
            raise RateLimited(wait, "Too many requests from this address; retry later.")

    def check_user(self, user_id: int) -> None:
        if not self.enabled:
            return
        wait = self._by_user.take(str(user_id))
        if wait:
            metrics.RATE_LIMITED.labels(scope="user").inc()
            raise RateLimited(wait, "Too many requests for this user; retry later.")

    def check_login(self, username: str, address: str) -> None:
        """Refuse a login attempt while its username or address has failed too often."""
        wait = max(
            self._failed_logins.wait_needed("user:" + username.lower()),
            self._failed_logins.wait_needed("addr:" + address),
        )
        if wait:
            metrics.RATE_LIMITED.labels(scope="login").inc()
            raise RateLimited(wait, "Too many failed logins; retry later.")

    def record_failed_login(self, username: str, address: str) -> None:
        self._failed_logins.drain("user:" + username.lower())
        self._failed_logins.drain("addr:" + address)

    # -- SMTP -------------------------------------------------------------------------------

    def smtp_connection_allowed(self, address: str) -> bool:
        """False when this client address opened too many connections (answer 421 4.7.0)."""
        allowed = self._smtp_connections.take(address) == 0.0
        if not allowed:
            metrics.RATE_LIMITED.labels(scope="smtp_connection").inc()
        return allowed

    def smtp_message_allowed(self, address: str) -> bool:
        """False when this client address sent too many messages (answer 451 4.7.1)."""
        allowed = self._smtp_messages.take(address) == 0.0
        if not allowed:
            metrics.RATE_LIMITED.labels(scope="smtp_message").inc()
        return allowed
