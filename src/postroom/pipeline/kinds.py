"""Job kinds: what a claimed job of each `kind` runs, and how it ends when it runs out of attempts.

Workers claim only the kinds listed here, so a process never takes a job it cannot run (an
older process next to a newer one during an upgrade leaves the newer kinds alone).

A handler's `run` records its result and marks the job done (`jobs.mark_done`) in one
transaction, raises `Retry` for a transient fault, or lets another exception escape (retried
like `Retry`, logged). `give_up` runs in the transaction that marks the job failed after the
last attempt, to leave its record in a final state (an annotation `failed_import`, say).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from postroom.domain.jobs import ClaimedJob
from postroom.pipeline.exporting import give_up_export, run_export
from postroom.pipeline.importing import give_up_import, run_import
from postroom.runtime import Runtime
from postroom.status import JobKind


@dataclass(frozen=True)
class JobHandler:
    run: Callable[[Runtime, ClaimedJob], Awaitable[None]]
    give_up: Callable[[AsyncConnection, Runtime, ClaimedJob, str], Awaitable[None]]


JOB_HANDLERS: dict[str, JobHandler] = {
    JobKind.IMPORT: JobHandler(run=run_import, give_up=give_up_import),
    JobKind.EXPORT: JobHandler(run=run_export, give_up=give_up_export),
}
