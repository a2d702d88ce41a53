"""Work that runs after the sender has its answer (a notice to send, a mail-log row to write):
started detached from the session, and waited for, bounded, at shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


class Detached:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, grace_s: float) -> None:
        """Wait (at most `grace_s`) for the work in flight."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace_s)
