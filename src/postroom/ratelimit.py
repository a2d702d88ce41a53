"""Rate limits per user/credential and per client address (token buckets), and for failed logins.

Placeholder until the Operations issue: the interface is in place, nothing is limited yet.
"""

from __future__ import annotations

from aiohttp import web

from postroom.config import LimitsSettings


class RateLimits:
    def __init__(self, limits: LimitsSettings) -> None:
        self.limits = limits

    async def check_login(self, request: web.Request, username: str) -> None:
        return None

    def record_failed_login(self, request: web.Request, username: str) -> None:
        return None
