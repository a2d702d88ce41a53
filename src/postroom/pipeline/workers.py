"""Pipeline workers: claim due jobs from the database and run them, at most `pipeline.workers`
at a time, in this process.

One dispatcher claims jobs in a batch as large as the free worker slots (one commit for several
jobs) and starts a task per job. It sleeps until `runtime.jobs_available` is set (intake sets it
after committing new jobs) or `pipeline.poll_interval` passes (jobs of other processes, retries
coming due, leases expiring). Each run has a time budget below the lease, so a job is never
still running here after another process may have reclaimed it.

Stop: no new claims; running jobs get a few seconds to finish, the rest are cancelled and
released (queued again, the attempt not counted). A crash leaves jobs `running`: their leases
expire and any process reclaims them; a restart on the same host releases them at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping

from postroom import metrics
from postroom.db.commits import group_commit
from postroom.domain.jobs import (
    ClaimedJob,
    LeaseLost,
    WorkerIdentity,
    claim_jobs,
    mark_failed,
    reclaim_dead_local,
    release_jobs,
    schedule_retry,
)
from postroom.pipeline import Retry
from postroom.pipeline.kinds import JOB_HANDLERS, JobHandler
from postroom.runtime import Runtime

log = logging.getLogger("postroom.pipeline")

STOP_GRACE_S = 5.0  # how long running jobs may take to finish on stop
MAX_RETRY_DELAY_S = 3600.0
# A run must end well before its lease does (another process may reclaim it then).
RUN_BUDGET_OF_LEASE = 0.8


class WorkerPool:
    def __init__(
        self,
        rt: Runtime,
        handlers: Mapping[str, JobHandler] = JOB_HANDLERS,
        *,
        size: int | None = None,
        stop_grace_s: float = STOP_GRACE_S,
    ) -> None:
        self.rt = rt
        self.settings = rt.settings.pipeline
        self.size = self.settings.workers if size is None else size
        self.stop_grace_s = stop_grace_s
        self._claim_batch = max(1, self.size // 2)
        self.handlers = handlers
        self.identity = WorkerIdentity.new()
        self.worker = str(self.identity)
        self._running: dict[asyncio.Task[None], ClaimedJob] = {}
        self._slot_freed = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.identity.register()
        try:
            released = await reclaim_dead_local(self.rt.db, self.identity)
        except Exception:  # the database may still be starting: leases cover it later
            log.exception("could not release jobs of dead processes on this host")
        else:
            if released:
                log.info("released %d job(s) of a dead process on this host", released)
        self._dispatcher = asyncio.create_task(self._dispatch(), name="pipeline-dispatcher")

    async def _dispatch(self) -> None:
        while True:
            free = self.size - len(self._running)
            # Busy: wait until half the slots are free, so one claim fetches several jobs.
            if free <= 0 or (self._running and free < self._claim_batch):
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            try:
                jobs = await claim_jobs(
                    self.rt.db,
                    worker=self.worker,
                    kinds=tuple(self.handlers),
                    limit=free,
                    lease_s=self.settings.lease_s,
                )
            except Exception:
                log.exception("claiming pipeline jobs failed; trying again")
                jobs = []
            for job in jobs:
                task = asyncio.create_task(self._run(job), name=f"pipeline-job-{job.id}")
                self._running[task] = job
            if len(jobs) < free:
                await self._wait_for_work()

    async def _wait_for_work(self) -> None:
        event = self.rt.jobs_available
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), self.settings.poll_interval)
        event.clear()

    async def _run(self, job: ClaimedJob) -> None:
        handler = self.handlers[job.kind]
        try:
            await self._attempt(job, handler)
        finally:
            self._running.pop(asyncio.current_task(), None)  # type: ignore[arg-type]
            self._slot_freed.set()

    async def _attempt(self, job: ClaimedJob, handler: JobHandler) -> None:
        if job.attempts > self.settings.max_attempts:
            # It was claimed that often without finishing: it kills its process. Stop here.
            await self._give_up(job, handler, "the job did not finish (its worker stopped).")
            return
        try:
            async with asyncio.timeout(self.settings.lease_s * RUN_BUDGET_OF_LEASE):
                await handler.run(self.rt, job)
        except Retry as retry:
            await self._retry(job, handler, retry.reason, retry.delay, retry.step or job.kind)
        except LeaseLost:
            log.warning("job %s was reclaimed by another worker; its result is dropped", job.id)
        except TimeoutError:
            await self._retry(job, handler, "it took longer than its time budget", None, job.kind)
        except Exception as exc:
            log.exception("pipeline job %s (%s) raised", job.id, job.kind)
            reason = f"an internal error occurred ({type(exc).__name__})"
            await self._retry(job, handler, reason, None, job.kind)
        else:
            metrics.JOBS_FINISHED.labels(kind=job.kind, outcome="done").inc()

    async def _retry(
        self, job: ClaimedJob, handler: JobHandler, reason: str, delay: float | None, step: str
    ) -> None:
        if job.attempts >= self.settings.max_attempts:
            metrics.JOB_FAILURES.labels(kind=job.kind, step=step).inc()
            await self._give_up(job, handler, reason)
            return
        if delay is None:
            delay = self.settings.retry_base_s * 2 ** (job.attempts - 1)
        metrics.JOB_RETRIES.labels(kind=job.kind, step=step).inc()
        log.warning(
            "job %s (%s) attempt %d failed in %s: %s; retrying in %.1fs",
            job.id,
            job.kind,
            job.attempts,
            step,
            reason,
            delay,
        )
        try:
            await schedule_retry(self.rt.db, job, delay=min(delay, MAX_RETRY_DELAY_S), error=reason)
        except Exception:  # the lease expires and the job is claimed again anyway
            log.exception("could not schedule a retry of job %s", job.id)

    async def _give_up(self, job: ClaimedJob, handler: JobHandler, reason: str) -> None:
        try:
            async with self.rt.db.transaction() as conn:
                await mark_failed(conn, job, reason)
                await handler.give_up(conn, self.rt, job, reason)
        except LeaseLost:
            log.warning("job %s was reclaimed by another worker before it failed", job.id)
            return
        except Exception:
            log.exception("could not record the failure of job %s", job.id)
            return
        metrics.JOBS_FINISHED.labels(kind=job.kind, outcome="failed").inc()
        log.warning(
            "job %s (%s) failed after %d attempts: %s", job.id, job.kind, job.attempts, reason
        )

    async def stop(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
            self._dispatcher = None
        if self._running:
            await asyncio.wait(list(self._running), timeout=self.stop_grace_s)
        unfinished = dict(self._running)
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
        if unfinished:
            ids = [job.id for job in unfinished.values()]
            try:
                released = await release_jobs(self.rt.db, self.worker, ids)
            except Exception:  # their leases expire instead
                log.exception("could not release unfinished jobs %s", ids)
            else:
                log.info("released %d unfinished job(s) on stop", released)
        await group_commit(self.rt.db).drain()
        self.identity.unregister()


async def start_workers(rt: Runtime) -> Callable[[], Awaitable[None]]:
    """Start this process's pipeline workers; returns the function that stops them."""
    if rt.settings.pipeline.workers == 0:

        async def nothing_to_stop() -> None:
            return None

        return nothing_to_stop
    pool = WorkerPool(rt)
    await pool.start()
    return pool.stop
