"""The shared resources one Postroom process runs with, built once by the composition root.

Every application service receives the `Runtime`: the settings, the database, the blob store,
the URL builder, the in-memory guards (rate limits, the cache of verified Basic credentials) and
the signal that wakes the pipeline workers. Nothing here knows about HTTP or SMTP.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from postroom.blobs.local import LocalBlobStore
from postroom.config import Settings
from postroom.credentials import BasicCredentialCache
from postroom.db.engine import Database
from postroom.ratelimit import RateLimits
from postroom.urls import Urls


@dataclass
class Runtime:
    settings: Settings
    db: Database
    blobs: LocalBlobStore
    urls: Urls
    basic_cache: BasicCredentialCache
    rate_limits: RateLimits
    # Set when this process commits new pipeline jobs, so idle workers wake at once.
    jobs_available: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def build(cls, settings: Settings, db: Database) -> Runtime:
        """The runtime of a process whose database is migrated and open."""
        return cls(
            settings=settings,
            db=db,
            blobs=LocalBlobStore(settings.data_dir),
            urls=Urls(settings.base_url),
            basic_cache=BasicCredentialCache(settings.auth.basic_cache_s),
            rate_limits=RateLimits(settings.limits),
        )
