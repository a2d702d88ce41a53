"""Pipeline: jobs claimed from the database, run through named steps, ending in to_review or failed_import.

A job handler signals how a run ended by what it raises:

- nothing: the handler recorded its result (and marked the job done) in one transaction;
- `Retry(delay)`: a transient fault (storage busy, database hiccup); the job runs again later,
  with backoff, until `pipeline.max_attempts`, then fails for good;
- `ImportFailed(message)`: the document cannot be imported (wrong type, unreadable file); the
  annotation ends `failed_import` carrying `message`. Retrying would not help.
"""

from __future__ import annotations


class Retry(Exception):
    """Run the job again later; `delay` seconds (None: the configured exponential backoff)."""

    def __init__(self, delay: float | None = None, reason: str = "transient error") -> None:
        super().__init__(reason)
        self.delay = delay
        self.reason = reason
        self.step: str | None = None  # set by the runner: which step asked


class ImportFailed(Exception):
    """The document cannot be imported; `message` tells the user why (annotation `messages`)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.step: str | None = None  # set by the runner: which step refused
