"""One inbox per queue: an inbox may not take a queue another inbox feeds (that inbox's published
address would silently start answering 550); the 409 names the inbox that has it."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from postroom.db import tables as t
from tests.conftest import Api, RunningServer
from tests.records import add_queue
from tests.smtp_support import inbox_address, message, rows, send


async def test_second_inbox_for_a_queue_is_409_naming_the_first(
    admin: Api, server: RunningServer
) -> None:
    """POST and PATCH of an inbox naming a queue that has an inbox: 409 naming that inbox; the
    queue keeps its inbox and the first address keeps taking mail."""
    queue_url = f"{server.api_url}/queues/1"
    first_address = await inbox_address(server, 1)
    status, err = await admin.post("/inboxes", json={"name": "Second", "queues": [queue_url]})
    assert status == 409, err
    assert err["code"] == "conflict_status"
    assert f"{server.api_url}/inboxes/1" in err["detail"]
    _, listed = await admin.get("/inboxes")
    assert listed["pagination"]["total"] == 1  # nothing half-created

    _, spare = await admin.post("/inboxes", json={"name": "Spare"}, expect=201)
    status, err = await admin.patch(f"/inboxes/{spare['id']}", json={"queues": [queue_url]})
    assert status == 409 and f"{server.api_url}/inboxes/1" in err["detail"]
    status, err = await admin.put(
        f"/inboxes/{spare['id']}", json={"name": "Spare", "queues": [queue_url]}
    )
    assert status == 409 and f"{server.api_url}/inboxes/1" in err["detail"]

    _, queue = await admin.get("/queues/1", expect=200)
    assert queue["inbox"] == f"{server.api_url}/inboxes/1"
    _, inbox = await admin.get("/inboxes/1", expect=200)
    assert inbox["queues"] == [queue_url]
    await send(server, message(to=first_address))
    assert len(await rows(server, t.emails, t.emails.c.inbox_id == 1)) == 1


async def test_free_queue_and_own_queue_are_still_accepted(
    admin: Api, server: RunningServer
) -> None:
    """A queue without an inbox may be taken; sending an inbox its own queue again is a no-op."""
    free = await add_queue(server, "Free")
    queue_url = f"{server.api_url}/queues/{free}"
    _, inbox = await admin.post("/inboxes", json={"name": "Mine", "queues": [queue_url]})
    assert inbox["queues"] == [queue_url]
    _, again = await admin.patch(f"/inboxes/{inbox['id']}", json={"queues": [queue_url]})
    assert again["queues"] == [queue_url]


async def test_inboxes_racing_for_one_queue_leave_it_with_one(
    admin: Api, server: RunningServer
) -> None:
    """Concurrent inboxes naming the same free queue: one 201, the others 409; the queue has
    the inbox that won."""
    free = await add_queue(server, "Contested")
    queue_url = f"{server.api_url}/queues/{free}"
    answers = await asyncio.gather(
        *(admin.post("/inboxes", json={"name": f"R{i}", "queues": [queue_url]}) for i in range(6))
    )
    statuses = sorted(status for status, _ in answers)
    assert statuses.count(201) == 1 and set(statuses) <= {201, 409}, answers
    (winner,) = [body for status, body in answers if status == 201]
    queue = (await rows(server, t.queues, t.queues.c.id == free))[0]
    assert queue.inbox_id == winner["id"]
    created = await rows(server, t.inboxes, sa.true())
    assert len(created) == 2  # bootstrap's and the winner: the losers left nothing
