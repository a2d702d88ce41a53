"""Users' secrets: password hashing (argon2), API tokens, and the cache of verified Basic credentials.

Tokens are random 40-hex keys like Rossum's; only their sha256 is stored. Basic auth sends the
password with every request and argon2 costs tens of milliseconds by design, so a verified
credential is remembered for `auth.basic_cache_s` under an HMAC of username+password keyed by a
per-process secret (the plain password is never kept). An entry is only honoured while the
user's stored password hash is unchanged, so a password change revokes it at once.

Verification runs off the event loop and at most `_VERIFY_SLOTS` at a time (each argon2 check
takes 64 MiB and a core for tens of milliseconds), one per client address at a time before
that; concurrent requests carrying the same not-yet-cached Basic credential share one
verification instead of each paying for it. A username that does not exist is checked against a
dummy hash, so the answer takes as long as for a real user (no timing oracle for usernames).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from postroom import metrics

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


_VERIFY_SLOTS = 2
# Verifications one client address may have running or queued for the shared slots at once.
_PER_SOURCE = 1


class _Fairness:
    """The shared verification slots of one event loop, and a gate per client address before them."""

    def __init__(self) -> None:
        self.pool = asyncio.Semaphore(_VERIFY_SLOTS)
        self.sources: dict[str, tuple[asyncio.Semaphore, list[int]]] = {}


_fairness: dict[asyncio.AbstractEventLoop, _Fairness] = {}


@functools.cache
def _dummy_hash() -> str:
    """A hash with the same parameters as real ones, checked for usernames that do not exist."""
    return hash_password(secrets.token_urlsafe(16))


def _check(password_hash: str, password: str) -> bool:
    if not password_hash:  # unknown user, or one without a password: the same work, then no
        metrics.PASSWORD_CHECKS.labels(subject="unknown").inc()
        verify_password(_dummy_hash(), password)
        return False
    metrics.PASSWORD_CHECKS.labels(subject="user").inc()
    return verify_password(password_hash, password)


async def verify_password_async(password_hash: str, password: str, source: str = "") -> bool:
    """`verify_password` in a worker thread; an empty `password_hash` (no such user) is checked
    against a dummy hash, so it takes as long and says False.

    Fair between clients: each `source` (client address) gets `_PER_SOURCE` verification at a
    time before it may queue for the `_VERIFY_SLOTS` shared ones, so a burst of guesses from
    one address waits behind itself, not in front of everyone else's logins."""
    loop = asyncio.get_running_loop()
    fairness = _fairness.get(loop)
    if fairness is None:
        fairness = _fairness[loop] = _Fairness()
    gate, users = fairness.sources.setdefault(source, (asyncio.Semaphore(_PER_SOURCE), [0]))
    users[0] += 1
    try:
        async with gate, fairness.pool:
            return await asyncio.to_thread(_check, password_hash, password)
    finally:
        users[0] -= 1
        if not users[0]:
            fairness.sources.pop(source, None)


def generate_password() -> str:
    return secrets.token_urlsafe(15)


def new_token() -> str:
    return secrets.token_hex(20)


def token_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


class Attempt(Protocol):
    """A reserved password attempt (`ratelimit.LoginAttempt`)."""

    def succeeded(self) -> None: ...


@dataclass(frozen=True)
class _Entry:
    user_id: int
    password_hash: str
    expires: float


class BasicCredentialCache:
    def __init__(self, ttl_s: float, max_entries: int = 10_000) -> None:
        self._ttl = ttl_s
        self._max = max_entries
        self._secret = secrets.token_bytes(32)
        self._entries: dict[bytes, _Entry] = {}
        self._inflight: dict[bytes, asyncio.Future[bool]] = {}

    def _key(self, username: str, password: str) -> bytes:
        material = f"{username}\x00{password}".encode("utf-8", "surrogateescape")
        return hmac.digest(self._secret, material, "sha256")

    def lookup(self, username: str, password: str) -> _Entry | None:
        if self._ttl <= 0:
            return None
        key = self._key(username, password)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires < time.monotonic():
            self._entries.pop(key, None)
            return None
        return entry

    def recalls(self, username: str, password: str, user_id: int, password_hash: str) -> bool:
        """True when this credential was verified for this user and password hash lately."""
        entry = self.lookup(username, password)
        return (
            entry is not None and entry.user_id == user_id and entry.password_hash == password_hash
        )

    async def verify(
        self,
        username: str,
        password: str,
        user_id: int,
        password_hash: str,
        source: str = "",
        reserve: Callable[[], Attempt] | None = None,
    ) -> bool:
        """True when the credential matches `password_hash`: from the cache, from a verification
        already running for the same credential, or from a new one (remembered on success).
        Only a new one calls `reserve` first (it may raise to refuse the attempt), and reports
        a success to what it returned."""
        if self.recalls(username, password, user_id, password_hash):
            return True
        key = self._key(username, password) + password_hash.encode()
        running = self._inflight.get(key)
        if running is not None:
            return await asyncio.shield(running)
        attempt = reserve() if reserve is not None else None
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            ok = await verify_password_async(password_hash, password, source)
            future.set_result(ok)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here: waiters re-raise it themselves
            raise
        finally:
            del self._inflight[key]
        if ok:
            self.remember(username, password, user_id, password_hash)
            if attempt is not None:
                attempt.succeeded()
        return ok

    def remember(self, username: str, password: str, user_id: int, password_hash: str) -> None:
        if self._ttl <= 0:
            return
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[self._key(username, password)] = _Entry(
            user_id, password_hash, time.monotonic() + self._ttl
        )
