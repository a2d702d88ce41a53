"""`postroom upload --wait`: follow the annotations of this run until they leave `importing`.

An upload's task is `running` exactly while one of its annotations is `importing`, and each file
is its own upload, so rather than one task (or annotation) request per file, every poll is one
list call per 100 annotations (`GET /annotations?id=…&page_size=100`) asking only for those
still importing; polls back off from half a second to five. A live count by status is shown.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from postroom.client.api_calls import Client
from postroom.client.outcomes import IMPORTED, Outcome
from postroom.client.progress import Progress

FIRST_DELAY = 0.5
MAX_DELAY = 5.0
IMPORTING = "importing"


def _settle(outcome: Outcome, annotation: dict[str, Any]) -> bool:
    """Record the annotation's status; True once it has left `importing`."""
    state = str(annotation.get("status", "?"))
    if state == IMPORTING:
        return False
    outcome.result, outcome.ok = state, state in IMPORTED
    messages = annotation.get("messages") or []
    if messages and not outcome.ok and isinstance(messages[0], dict):
        outcome.detail = str(messages[0].get("content", ""))
    return True


def _counts(followed: Sequence[Outcome], pending: dict[str, Outcome]) -> Counter[str]:
    return Counter(IMPORTING if o.annotation_id in pending else o.result for o in followed)


async def follow_annotations(
    client: Client, outcomes: Sequence[Outcome], progress: Progress, wait_for: float
) -> None:
    """Poll until every annotation uploaded in this run has left `importing`, or `wait_for` seconds pass."""
    followed = [o for o in outcomes if o.waiting]
    pending = {o.annotation_id: o for o in followed}
    if not pending:
        return
    progress.wait_started(len(pending))
    deadline = time.monotonic() + wait_for
    delay = FIRST_DELAY
    while True:
        answered, found = await client.annotation_states(pending)
        for annotation_id in answered:
            outcome = pending[annotation_id]
            annotation = found.get(annotation_id)
            if annotation is None:
                outcome.result, outcome.ok = "missing", False
                outcome.detail = "the annotation is gone (deleted meanwhile?)"
                del pending[annotation_id]
            elif _settle(outcome, annotation):
                del pending[annotation_id]
        progress.wait_counts(_counts(followed, pending), len(followed) - len(pending))
        if not pending:
            return
        if time.monotonic() + delay > deadline:
            for outcome in pending.values():
                outcome.result, outcome.ok = IMPORTING, False
                outcome.detail = "still importing when --wait-timeout ran out"
            return
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, MAX_DELAY)
