"""Writes the mail log (`domain.mail_log`) in the background: the SMTP edge hands over one entry
per transaction once its reply is known, and never waits for the write nor fails because of it.
"""

from __future__ import annotations

import logging
from typing import Any

from postroom.domain.mail_log import MailLogEntry, record
from postroom.intake.accept import KeptFile
from postroom.intake.detached import Detached
from postroom.runtime import Runtime

log = logging.getLogger("postroom.smtp")


def file_summary(kept: list[KeptFile], skipped: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Each file of a message: kept (with why it has no annotation, if so) or dropped (why)."""
    files: list[dict[str, Any]] = []
    for one in kept:
        for stored in [one.file, *(one.members or [])]:
            files.append(
                {
                    "name": stored.original_file_name,
                    "kept": True,
                    "status": stored.attachment_status,
                }
            )
    files += [{"name": name, "kept": False, "status": why} for name, why in skipped]
    return files


class MailJournal:
    """Entries written detached from the SMTP session; `drain` waits for them at shutdown."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._writes = Detached()

    def write(self, entry: MailLogEntry) -> None:
        self._writes.start(self._write(entry))

    async def drain(self, grace_s: float) -> None:
        await self._writes.drain(grace_s)

    async def _write(self, entry: MailLogEntry) -> None:
        try:
            await record(self._rt.db, entry)
        except Exception:  # bookkeeping only: the mail itself is already answered
            log.exception("could not write the mail log entry of %r", entry.mail_from)
