"""Pipeline workers (placeholder until the HTTP upload issue): claim jobs, run STEPS, set status."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from postroom.services import Services


async def start_workers(services: Services) -> Callable[[], Awaitable[None]]:
    async def stop() -> None:
        return None

    return stop
