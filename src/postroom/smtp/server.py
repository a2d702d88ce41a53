"""SMTP listener (placeholder until the SMTP issue)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from postroom.services import Services


async def start_smtp(services: Services) -> Callable[[], Awaitable[None]]:
    async def stop() -> None:
        return None

    return stop
