"""Pipeline workers against a real database: lease reclaim, retries with a cap, release on stop.

The service under test runs with `pipeline.workers=0`; each test starts its own `WorkerPool` on
the service's resources, some with a job handler of its own for the `import` kind (a handler is
the plug-in point of the pipeline, not a stand-in for Postroom code).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from postroom.clock import utcnow
from postroom.db import tables as t
from postroom.domain.jobs import LeaseLost, WorkerIdentity, claim_jobs, mark_done
from postroom.pipeline import Retry
from postroom.pipeline.importing import give_up_import, run_import
from postroom.pipeline.kinds import JobHandler
from postroom.pipeline.workers import WorkerPool
from postroom.runtime import Runtime
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, Api, RunningServer
from tests.pipeline_support import job_rows, make_pdf, settled, submit


@pytest.fixture
async def idle(server_factory: Any) -> RunningServer:
    """A service whose own workers are off (at most 3 attempts per job)."""
    return await server_factory(  # type: ignore[no-any-return]
        POSTROOM_PIPELINE_WORKERS="0", POSTROOM_PIPELINE_MAX_ATTEMPTS="3"
    )


@pytest.fixture
async def client(idle: RunningServer, http: Any) -> Api:
    return await Api(http, idle.base, {}).login(ADMIN_USER, ADMIN_PASSWORD)


@pytest.fixture
async def pools(idle: RunningServer) -> AsyncIterator[Callable[..., Any]]:
    """Start worker pools on the idle service; all are stopped at the end."""
    started: list[WorkerPool] = []

    async def start(**kwargs: Any) -> WorkerPool:
        assert idle.service.runtime is not None
        pool = WorkerPool(idle.service.runtime, **{"size": 2, **kwargs})
        await pool.start()
        started.append(pool)
        return pool

    yield start
    for pool in started:
        await pool.stop()


def _svc(server: RunningServer) -> Runtime:
    assert server.service.runtime is not None
    return server.service.runtime


async def _claim_as(svc: Runtime, worker: str, *, lease_s: float = 600.0) -> Any:
    [job] = await claim_jobs(svc.db, worker=worker, kinds=("import",), limit=1, lease_s=lease_s)
    return job


async def test_expired_lease_is_reclaimed_and_the_stale_worker_cannot_finish(
    idle: RunningServer, client: Api, pools: Any
) -> None:
    """A job claimed by a vanished process is taken over once its lease expires; the old
    claimant's late result is refused (LeaseLost)."""
    svc = _svc(idle)
    [annotation_id] = await submit(client, [("a.pdf", make_pdf(2))])
    stale = await _claim_as(svc, "elsewhere:4242:dead")
    async with svc.db.transaction() as conn:  # the lease runs out
        await conn.execute(t.jobs.update().values(lease_until=utcnow() - timedelta(seconds=1)))
    pool = await pools()
    body = await settled(client, annotation_id)
    assert (body["status"], body["page_count"]) == ("to_review", 2)
    [job] = await job_rows(svc, annotation_id)
    assert (job.status, job.attempts, job.claimed_by) == ("done", 2, pool.worker)
    with pytest.raises(LeaseLost):
        async with svc.db.transaction() as conn:
            await mark_done(conn, stale)


async def test_live_lease_of_another_process_is_left_alone(
    idle: RunningServer, client: Api, pools: Any
) -> None:
    """A job whose lease is still valid stays with its claimant while other jobs run."""
    svc = _svc(idle)
    [held] = await submit(client, [("held.pdf", make_pdf())])
    await _claim_as(svc, "elsewhere:4242:alive")
    await pools()
    [other] = await submit(client, [("other.pdf", make_pdf())])
    assert (await settled(client, other))["status"] == "to_review"
    [job] = await job_rows(svc, held)
    assert (job.status, job.claimed_by) == ("running", "elsewhere:4242:alive")


async def test_jobs_of_a_dead_process_on_this_host_are_released_at_start(
    idle: RunningServer, client: Api, pools: Any
) -> None:
    """Jobs claimed by a process of this host that no longer runs are taken at once on start,
    without waiting for their (long) lease."""
    svc = _svc(idle)
    [annotation_id] = await submit(client, [("a.pdf", make_pdf())])
    dead = await asyncio.create_subprocess_exec("true")
    await dead.wait()
    me = WorkerIdentity.new()
    await _claim_as(svc, f"{me.host}:{dead.pid}:0", lease_s=3600)
    await pools()
    assert (await settled(client, annotation_id))["status"] == "to_review"


async def test_transient_errors_are_retried_then_succeed(
    idle: RunningServer, client: Api, pools: Any
) -> None:
    """A handler that asks to retry twice succeeds on the third attempt; the job is done."""
    svc = _svc(idle)

    async def flaky(services: Runtime, job: Any) -> None:
        if job.attempts < 3:
            raise Retry(reason="storage busy")
        await run_import(services, job)

    await pools(handlers={"import": JobHandler(run=flaky, give_up=give_up_import)})
    [annotation_id] = await submit(client, [("a.pdf", make_pdf())])
    assert (await settled(client, annotation_id))["status"] == "to_review"
    [job] = await job_rows(svc, annotation_id)
    assert (job.status, job.attempts, job.last_error) == ("done", 3, None)


async def test_retries_stop_at_the_cap_with_failed_import(
    idle: RunningServer, client: Api, pools: Any
) -> None:
    """A fault that never clears fails the annotation after max_attempts, saying why."""
    svc = _svc(idle)

    async def always_busy(services: Runtime, job: Any) -> None:
        raise Retry(reason="storage busy")

    await pools(handlers={"import": JobHandler(run=always_busy, give_up=give_up_import)})
    [annotation_id] = await submit(client, [("a.pdf", make_pdf())])
    body = await settled(client, annotation_id)
    assert body["status"] == "failed_import"
    assert body["messages"][0]["content"] == "Import failed after 3 attempts: storage busy"
    [job] = await job_rows(svc, annotation_id)
    assert (job.status, job.attempts) == ("failed", 3)


async def test_unexpected_errors_are_retried_and_reported_without_internals(
    idle: RunningServer, client: Api, pools: Any
) -> None:
    """A handler bug is retried like a transient fault, then failed_import names only its kind."""

    async def broken(services: Runtime, job: Any) -> None:
        raise KeyError("secret-internal-detail")

    await pools(handlers={"import": JobHandler(run=broken, give_up=give_up_import)})
    [annotation_id] = await submit(client, [("a.pdf", make_pdf())])
    body = await settled(client, annotation_id)
    assert body["status"] == "failed_import"
    assert "KeyError" in body["messages"][0]["content"]
    assert "secret-internal-detail" not in body["messages"][0]["content"]


async def test_stop_releases_unfinished_jobs_for_the_next_worker(
    idle: RunningServer, client: Api, pools: Any
) -> None:
    """A job still running when its pool stops goes back to queued (attempt not counted) and
    another pool then imports it."""
    svc = _svc(idle)
    started = asyncio.Event()

    async def stuck(services: Runtime, job: Any) -> None:
        started.set()
        await asyncio.Event().wait()

    first = await pools(
        handlers={"import": JobHandler(run=stuck, give_up=give_up_import)}, stop_grace_s=0.1
    )
    [annotation_id] = await submit(client, [("a.pdf", make_pdf())])
    await asyncio.wait_for(started.wait(), 30)
    await first.stop()
    [job] = await job_rows(svc, annotation_id)
    assert (job.status, job.attempts, job.claimed_by) == ("queued", 0, None)
    await pools()
    assert (await settled(client, annotation_id))["status"] == "to_review"


async def test_a_job_that_keeps_killing_its_worker_is_failed(
    idle: RunningServer, client: Api, pools: Any
) -> None:
    """A job already claimed max_attempts times without finishing is failed, not run again."""
    svc = _svc(idle)
    [annotation_id] = await submit(client, [("a.pdf", make_pdf())])
    async with svc.db.transaction() as conn:
        await conn.execute(t.jobs.update().values(attempts=3))
    await pools()
    body = await settled(client, annotation_id)
    assert body["status"] == "failed_import"
    assert "did not finish" in body["messages"][0]["content"]
    async with svc.db.reading() as conn:
        status = (await conn.execute(sa.select(t.jobs.c.status))).scalar_one()
    assert status == "failed"


async def test_annotation_deleted_while_queued_is_left_alone(
    idle: RunningServer, client: Api, pools: Any
) -> None:
    """An annotation deleted before its import ran stays deleted; its job is simply done."""
    svc = _svc(idle)
    [annotation_id] = await submit(client, [("a.pdf", make_pdf())])
    await client.patch(f"/annotations/{annotation_id}", json={"status": "deleted"}, expect=200)
    await pools()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while (job := (await job_rows(svc, annotation_id))[0]).status != "done":
        assert loop.time() < deadline, "job never finished"
        await asyncio.sleep(0.05)
    _s, body = await client.get(f"/annotations/{annotation_id}", expect=200)
    assert body["status"] == "deleted" and body["page_count"] is None
    assert job.attempts == 1
