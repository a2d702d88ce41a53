"""Users' secrets: password hashing (argon2), API tokens, and the cache of verified Basic credentials.

Tokens are random 40-hex keys like Rossum's; only their sha256 is stored. Basic auth sends the
password with every request and argon2 costs tens of milliseconds by design, so a verified
credential is remembered for `auth.basic_cache_s` under an HMAC of username+password keyed by a
per-process secret (the plain password is never kept). An entry is only honoured while the
user's stored password hash is unchanged, so a password change revokes it at once.

Verification runs off the event loop and at most `_VERIFY_SLOTS` at a time (each argon2 check
takes 64 MiB and a core for tens of milliseconds); concurrent requests carrying the same
not-yet-cached Basic credential share one verification instead of each paying for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

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
_verify_semaphores: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}


async def verify_password_async(password_hash: str, password: str) -> bool:
    """`verify_password` in a worker thread, bounded to a few at once per event loop."""
    loop = asyncio.get_running_loop()
    semaphore = _verify_semaphores.setdefault(loop, asyncio.Semaphore(_VERIFY_SLOTS))
    async with semaphore:
        return await asyncio.to_thread(verify_password, password_hash, password)


def generate_password() -> str:
    return secrets.token_urlsafe(15)


def new_token() -> str:
    return secrets.token_hex(20)


def token_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


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

    async def verify(self, username: str, password: str, user_id: int, password_hash: str) -> bool:
        """True when the credential matches `password_hash`: from the cache, from a verification
        already running for the same credential, or from a new one (remembered on success)."""
        entry = self.lookup(username, password)
        if entry is not None and entry.user_id == user_id and entry.password_hash == password_hash:
            return True
        key = self._key(username, password) + password_hash.encode()
        running = self._inflight.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            ok = await verify_password_async(password_hash, password)
            future.set_result(ok)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here: waiters re-raise it themselves
            raise
        finally:
            del self._inflight[key]
        if ok:
            self.remember(username, password, user_id, password_hash)
        return ok

    def remember(self, username: str, password: str, user_id: int, password_hash: str) -> None:
        if self._ttl <= 0:
            return
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[self._key(username, password)] = _Entry(
            user_id, password_hash, time.monotonic() + self._ttl
        )
