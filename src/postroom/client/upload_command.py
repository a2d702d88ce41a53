"""`postroom upload`: send files to a queue through the public REST API, like any other client.

Each file is one `POST /api/v1/uploads?queue=<id>` (multipart `content`, plus `metadata`/`values`),
streamed from disk, at most `--parallel` at a time. The queue and the credentials are checked
once before anything is sent; an answer that concerns every file (401, 403, 404, an inactive
queue, no connection) stops the run at once with one line. Files over the size limit are skipped
without being sent. 429 and 5xx answers and broken connections are retried with exponential
backoff, honouring `Retry-After`. With `--wait` the annotations are followed in batches until
they leave `importing`. Progress goes to stderr; the table, or `--json`, to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass, field

import aiohttp

from postroom.client.api_calls import Client, UploadTarget, upload_file
from postroom.client.files import collect_files, sha256_of
from postroom.client.options import Options, add_arguments, options_from_args
from postroom.client.outcomes import (
    ALREADY,
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_USAGE,
    Outcome,
    Stop,
    UsageError,
    size_text,
)
from postroom.client.progress import Progress
from postroom.client.report import print_json, print_table, summary
from postroom.client.resume import UploadState
from postroom.client.waiting import follow_annotations

__all__ = ["add_arguments", "main", "run_upload"]
NOT_SENT = "not_sent"


@dataclass
class Run:
    """One run's shared state: the first stop, and the state file."""

    client: Client
    options: Options
    state: UploadState
    progress: Progress
    gate: asyncio.Semaphore
    stop: Stop | None = None
    target: UploadTarget = field(init=False)

    def __post_init__(self) -> None:
        o = self.options
        self.target = UploadTarget(o.queue, o.metadata, o.values, reject_identical=o.resume)

    async def one(self, outcome: Outcome) -> None:
        async with self.gate:
            if self.stop is not None:
                outcome.result, outcome.detail = NOT_SENT, "the run stopped before this file"
                return
            counted = await self._send(outcome)
        if self.stop is None or outcome.ok:  # a refusal of the whole run is said once, at the end
            self.progress.file_done(outcome, counted=counted)

    async def _send(self, outcome: Outcome) -> bool:
        """Upload one file unless it is too large or known; True when its bytes went in."""
        if outcome.size > self.options.max_bytes:
            outcome.result = "skipped"
            outcome.detail = (
                f"{size_text(outcome.size)} is over the {size_text(self.options.max_bytes)} limit"
            )
            return False
        try:
            return await self._send_file(outcome)
        except OSError as exc:  # the file went away or cannot be read any more
            outcome.result, outcome.ok = "failed", False
            outcome.detail = f"cannot read the file: {exc.strerror or exc}"
            return False

    async def _send_file(self, outcome: Outcome) -> bool:
        outcome.sha256 = await asyncio.to_thread(sha256_of, outcome.path)
        known = self.state.find(outcome.sha256) if self.options.resume else None
        if known is not None:
            outcome.result, outcome.ok = ALREADY, True
            outcome.annotation_url, outcome.document_url = known["annotation"], known["document"]
            outcome.detail = f"uploaded before as {known.get('path', '?')}"
            return False
        try:
            await upload_file(self.client, outcome, self.target, self.progress.add_bytes)
        except Stop as stop:
            self.stop = self.stop or stop
            outcome.result, outcome.detail = "failed", str(stop)
            return False
        if outcome.ok and outcome.annotation_url is not None:
            self.state.record(
                outcome.sha256, outcome.path, outcome.annotation_url, outcome.document_url
            )
        return outcome.ok


async def _authenticate(client: Client, options: Options) -> None:
    if options.token:
        client.headers = {"Authorization": f"Bearer {options.token}"}
    else:
        assert options.user is not None and options.password is not None
        await client.login(options.user, options.password)
    await client.check_queue(options.queue)


async def run_upload(options: Options) -> int:
    files = collect_files(options.paths, options.globs)
    if not files:
        raise UsageError("no files to upload (check the paths and --include/--exclude)")
    outcomes = [Outcome(f, f.stat().st_size) for f in files]
    state = UploadState.load(options.state_file, options.url, options.queue)
    error: str | None = None
    exit_code = EXIT_OK
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300)
    connector = aiohttp.TCPConnector(limit=options.parallel * 2)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        client = Client(session, options.url, options.retries)
        progress: Progress | None = None
        try:
            await _authenticate(client, options)
            total = sum(o.size for o in outcomes)
            progress = Progress(len(outcomes), total, quiet=options.quiet)
            run = Run(client, options, state, progress, asyncio.Semaphore(options.parallel))
            await asyncio.gather(*(run.one(o) for o in outcomes))
            if run.stop is not None:
                raise run.stop
            if options.wait:
                await follow_annotations(client, outcomes, progress, options.wait_timeout)
        except Stop as stop:
            error, exit_code = str(stop), stop.code
        finally:
            if progress is not None:
                progress.close()
    for outcome in outcomes:
        if outcome.result == "pending":
            outcome.result = NOT_SENT
    if error is None:
        exit_code = EXIT_OK if all(o.ok for o in outcomes) else EXIT_SOME_FAILED
    else:
        print(f"postroom upload: {error}", file=sys.stderr)
    if state.warning:
        print(f"postroom upload: warning: {state.warning}", file=sys.stderr)
    if options.json:
        report = summary(
            outcomes, server=options.url, queue=options.queue, exit_code=exit_code, error=error
        )
        print_json(report)
    elif error is None or any(o.result != NOT_SENT for o in outcomes):
        print_table(outcomes)
    return exit_code


def main(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(run_upload(options_from_args(args)))
    except UsageError as error:
        print(f"postroom upload: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("postroom upload: interrupted", file=sys.stderr)
        return 130
