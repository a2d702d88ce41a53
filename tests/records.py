"""Setup records for tests that need more queues than bootstrap makes, independent of the Queue API.

Queues are made with `postroom.domain.queues.insert_queue`, the function bootstrap, the CLI and the
API share, inside the running service's own database handle (so SQLite's write lock is honoured).
"""

from __future__ import annotations

from postroom.domain.queues import insert_queue
from tests.conftest import RunningServer


async def add_queue(
    server: RunningServer,
    name: str,
    *,
    workspace_id: int | None = 1,
    schema_id: int = 1,
    inbox_id: int | None = None,
) -> int:
    """A new queue of organization 1 (bootstrap's), returning its id."""
    services = server.service.runtime
    assert services is not None
    async with services.db.transaction() as conn:
        return await insert_queue(
            conn,
            1,
            name=name,
            schema_id=schema_id,
            workspace_id=workspace_id,
            inbox_id=inbox_id,
        )
