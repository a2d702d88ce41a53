"""Rate limits: token buckets per client address, per user, for failed logins, and for SMTP clients.

HTTP requests pass two checks (`api.middleware.limits`): the client address before
authentication (so a flood of bad credentials never reaches the password hash), and after it the
authenticated user — whether the request came with a token or a Basic credential. Both use
`limits.requests_per_second` as the refill rate and `limits.burst` as the bucket size (a rate of
0 disables them). Over a limit the request fails with `errors.RateLimited(retry_after)`, which the
error middleware turns into 429 `{"detail", "code": "rate_limited", "url"}` with `Retry-After`.

Password checks — `/auth/login`, Basic credentials not in the cache, `/auth/password/change` —
reserve an attempt (`reserve_login`) BEFORE the password hash runs, so concurrent attempts cannot
all slip past the check; a success gives it back (`LoginAttempt.succeeded`). Two buckets are
drawn from, as OWASP advises combining them: the client address (`limits.login_attempts_per_minute`,
whatever usernames it tries) and the username (`USER_FACTOR` times that, from all addresses
together). One address alone can drain the username's bucket no faster than it refills, so it
cannot lock the user out; only many addresses guessing one password together can.

The SMTP listener asks `smtp_connection_allowed(address)` when a client connects and
`smtp_message_allowed(address)` at each MAIL FROM; on False it answers `421 4.7.0` / `451 4.7.1`.

Buckets live in this process's memory: with N instances behind a load balancer each enforces the
limits on the traffic it sees (document this for operators; a shared limiter is not needed to stop
one client from starving the others).
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from postroom import metrics
from postroom.config import LimitsSettings
from postroom.errors import RateLimited

# Bound on remembered buckets per kind; idle buckets are dropped oldest first beyond it.
MAX_BUCKETS = 50_000
# A username's failed-login bucket is this many times an address's: one address never empties it.
USER_FACTOR = 10


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

    def give_back(self, key: str) -> None:
        """Return one token taken earlier (an attempt that turned out not to count)."""
        bucket = self._refilled(key)
        bucket.tokens = min(self.capacity, bucket.tokens + 1.0)


class LoginAttempt:
    """One reserved password attempt; `succeeded()` returns it to its buckets."""

    def __init__(self, buckets: tuple[tuple[TokenBuckets, str], ...]) -> None:
        self._buckets = buckets

    def succeeded(self) -> None:
        for buckets, key in self._buckets:
            buckets.give_back(key)
        self._buckets = ()


class SlidingWindows:
    """At most `limit` events per key within any `window_s` seconds (exact, unlike a bucket):
    the times of a key's last `limit` events are kept."""

    def __init__(
        self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._events: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str) -> deque[float]:
        events = self._events.get(key)
        if events is None:
            events = self._events[key] = deque(maxlen=max(self.limit, 1))
            if len(self._events) > MAX_BUCKETS:
                self._events.popitem(last=False)
        else:
            self._events.move_to_end(key)
        horizon = self._clock() - self.window_s
        while events and events[0] <= horizon:
            events.popleft()
        return events

    def count(self, key: str) -> int:
        """Events of `key` within the window."""
        return len(self._recent(key)) if key in self._events else 0

    def add(self, key: str) -> int:
        """Record one event of `key`; the count within the window, this one included."""
        events = self._recent(key)
        events.append(self._clock())
        return len(events)

    def allow(self, key: str) -> bool:
        """Record an event if `key` is still under the limit; False (nothing recorded) if not."""
        if self.limit <= 0 or self.count(key) >= self.limit:
            return False
        self.add(key)
        return True


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
        self._logins_by_address = TokenBuckets(per_minute / 60.0, float(per_minute))
        per_user = per_minute * USER_FACTOR
        self._logins_by_user = TokenBuckets(per_user / 60.0, float(per_user))
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

    def reserve_login(self, username: str, address: str) -> LoginAttempt:
        """Count a password attempt before it is checked; 429 when its address or its username
        has no attempt left. Call `succeeded()` on the result when the password was right."""
        keys = (
            (self._logins_by_address, address),
            (self._logins_by_user, username.lower()),
        )
        wait = max(buckets.wait_needed(key) for buckets, key in keys)
        if wait:
            metrics.RATE_LIMITED.labels(scope="login").inc()
            raise RateLimited(wait, "Too many failed logins; retry later.")
        for buckets, key in keys:
            buckets.take(key)
        return LoginAttempt(keys)

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
