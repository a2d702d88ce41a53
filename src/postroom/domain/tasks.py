"""Tasks: the status monitor of an asynchronous upload or e-mail import.

A task is `running` while any annotation of its upload is still `importing` and `succeeded` once
all have left it (derived at read time, so the pipeline needs no second write); `failed` with a
`detail` when the import itself failed. A succeeded task names its `result_url`: the e-mail of
an import, else the upload. Tasks of uploads or e-mails are visible through their queue; others
only to their creator (and to admins and managers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NotRequired

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from typing_extensions import TypedDict

from postroom.clock import iso
from postroom.db import tables as t
from postroom.domain.access import Actor
from postroom.domain.listing import Listing
from postroom.domain.resources import Resource
from postroom.domain.uploads import visible_by_origin
from postroom.fields import JsonObject, OptionalUrl, Timestamp, Url
from postroom.status import AnnotationStatus, TaskStatus, TaskType
from postroom.urls import Urls

k = t.tasks


class TaskJson(TypedDict):
    id: int
    url: Url
    type: str
    status: str
    expires_at: Timestamp
    detail: str | None
    content: JsonObject
    result_url: OptionalUrl
    code: NotRequired[str]  # "error", only when failed


class TaskUrlJson(TypedDict):
    """An accepted asynchronous request: the task to follow."""

    url: Url


async def task_status(conn: AsyncConnection, row: Any) -> str:
    """A stored final status wins; otherwise running while any annotation of the task's upload
    is still `importing`, succeeded once all have left it."""
    if row.status in (TaskStatus.SUCCEEDED, TaskStatus.FAILED):
        return str(row.status)
    a = t.annotations.c
    if row.upload_id is not None:
        owner = a.upload_id == row.upload_id
    elif row.email_id is not None:
        owner = a.email_id == row.email_id
    else:
        return str(row.status)
    importing = a.status == AnnotationStatus.IMPORTING
    pending = await conn.execute(sa.select(a.id).where(owner, importing).limit(1))
    return TaskStatus.RUNNING if pending.first() is not None else TaskStatus.SUCCEEDED


def task_result_url(urls: Urls, row: Any) -> str | None:
    if row.type == TaskType.EMAIL_IMPORTED and row.email_id is not None:
        return urls.to("emails", row.email_id)
    if row.upload_id is not None:
        return urls.to("uploads", row.upload_id)
    return urls.of("emails", row.email_id)


def render_task(urls: Urls, row: Any, status: str) -> TaskJson:
    content = dict(row.content) if isinstance(row.content, dict) else {}
    if row.upload_id is not None:
        content.setdefault("upload", urls.to("uploads", row.upload_id))
    failed = status == TaskStatus.FAILED
    body: TaskJson = {
        "id": row.id,
        "url": urls.to("tasks", row.id),
        "type": row.type,
        "status": status,
        "expires_at": iso(row.expires_at),
        "detail": row.detail if failed else None,
        "content": content,
        "result_url": task_result_url(urls, row) if status == TaskStatus.SUCCEEDED else None,
    }
    if failed:
        body["code"] = "error"
    return body


class Tasks(Resource[TaskJson]):
    noun = "Task"
    table = k
    listing = Listing(filters=(), ordering={}, default=(k.c.id,))

    def visible(self, who: Actor) -> sa.ColumnElement[bool]:
        return visible_by_origin(who, k)

    async def render(
        self, conn: AsyncConnection, urls: Urls, who: Actor, rows: Sequence[Any]
    ) -> list[TaskJson]:
        return [render_task(urls, row, await task_status(conn, row)) for row in rows]


TASKS = Tasks()
