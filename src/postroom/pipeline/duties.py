"""Background duties (placeholder until the Review/export issue): session timeouts, queue deletion, retention."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from postroom.services import Services


async def start_duties(services: Services) -> Callable[[], Awaitable[None]]:
    async def stop() -> None:
        return None

    return stop
