"""The shared resources one Postroom process runs with, built once by `postroom.service`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from postroom.accounts import BasicCredentialCache
from postroom.config import Settings
from postroom.db.engine import Database
from postroom.intake.blobs import LocalBlobStore
from postroom.ratelimit import RateLimits
from postroom.web.urls import Urls


@dataclass
class Services:
    settings: Settings
    db: Database
    blobs: LocalBlobStore
    urls: Urls
    basic_cache: BasicCredentialCache
    rate_limits: RateLimits
    # Set when this process commits new pipeline jobs, so idle workers wake at once.
    jobs_available: asyncio.Event = field(default_factory=asyncio.Event)
    # Filled in by the SMTP component once it has bound its socket.
    smtp_port: int | None = None
    # The SMTP component's mail intake (smtp.intake.MailIntake), shared with POST /emails/import.
    mail_intake: Any = None
