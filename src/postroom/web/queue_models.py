"""Queue bodies in and queue JSON out: validation models, duration formats, and rendering.

Bodies are validated field by field (a 400 names the field); unknown and read-only fields
(`id`, `url`, `counts`, `status`, …) are ignored so a client can PUT back an object it GETs.
References (schema, workspace, inbox, users, hooks) are parsed, and checked to exist in the
caller's organization, by `web.queue_changes`.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    field_validator,
)
from pydantic_core import PydanticCustomError
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom.clock import iso
from postroom.db import tables as t
from postroom.durations import format_duration, parse_duration, parse_hms
from postroom.web.urls import Urls

# Every key of `queue.counts`, always present (0 when no annotation has that status).
COUNT_STATUSES = (
    "importing",
    "split",
    "failed_import",
    "to_review",
    "reviewing",
    "confirmed",
    "exporting",
    "postponed",
    "failed_export",
    "exported",
    "deleted",
    "purged",
    "rejected",
)

_LOCALE_RE = re.compile(r"^(auto|[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*)$")
_MIME_PATTERN_RE = re.compile(r"^(\*|[a-z0-9][a-z0-9!#$&^_.+-]*)/(\*|[a-z0-9][a-z0-9!#$&^_.+-]*)$")


def _custom(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


NON_NULLABLE = (
    "name",
    "schema_",
    "users",
    "hooks",
    "webhooks",
    "session_timeout",
    "default_score_threshold",
    "automation_enabled",
    "automation_level",
    "locale",
    "metadata",
    "use_confirmed_state",
    "settings",
    "workflows",
    "training_enabled",
)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise _custom("blank", "This field may not be blank.")
    return value


Name = Annotated[StrictStr, Field(min_length=1, max_length=255), AfterValidator(_not_blank)]
# A URL (or bare id) of another object: parsed by `Urls.id_from`, whose 400 names the field.
Reference = Any
UrlText = Annotated[StrictStr, Field(max_length=1000)]


class QueueBody(BaseModel):
    """The writable queue fields of POST, PUT and PATCH (which of them were sent: `model_fields_set`)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    name: Name | None = None
    workspace: Reference = None
    connector: UrlText | None = None
    hooks: Reference = None
    webhooks: Reference = None
    schema_: Reference = Field(None, alias="schema")
    inbox: Reference = None
    users: Reference = None
    session_timeout: StrictStr | None = None
    rir_url: UrlText | None = None
    rir_params: Annotated[StrictStr, Field(max_length=4000)] | None = None
    dedicated_engine: UrlText | None = None
    generic_engine: UrlText | None = None
    engine: UrlText | None = None
    default_score_threshold: Annotated[float, Field(ge=0, le=1, strict=True)] | None = None
    automation_enabled: StrictBool | None = None
    automation_level: Literal["always", "confident", "never"] | None = None
    locale: Annotated[StrictStr, Field(max_length=32)] | None = None
    metadata: dict[str, Any] | None = None
    use_confirmed_state: StrictBool | None = None
    document_lifetime: StrictStr | None = None
    settings: dict[str, Any] | None = None
    workflows: list[dict[str, Any]] | None = None
    training_enabled: StrictBool | None = None

    @field_validator(*NON_NULLABLE, mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise _custom("null", "This field may not be null.")
        return value

    @field_validator("connector", "rir_url", "dedicated_engine", "generic_engine", "engine")
    @classmethod
    def _empty_url_is_null(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("session_timeout")
    @classmethod
    def _session_timeout(cls, value: str) -> str:
        parsed = parse_hms(value)
        if parsed is None or parsed <= timedelta(0):
            raise _custom("format", "Expected a positive duration as HH:MM:SS, e.g. '01:00:00'.")
        hours, rest = divmod(int(parsed.total_seconds()), 3600)
        return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"

    @field_validator("document_lifetime")
    @classmethod
    def _document_lifetime(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parsed = parse_duration(value)
        if parsed is None or parsed <= timedelta(0):
            raise _custom(
                "format",
                "Expected a positive duration as '[DD] [HH:[MM:]]ss[.uuuuuu]', e.g. '90 00:00:00'.",
            )
        return format_duration(parsed)

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        if not _LOCALE_RE.match(value):
            raise _custom("format", "Expected a locale such as 'en_GB', 'en_US', 'cs' or 'auto'.")
        return value

    @field_validator("settings")
    @classmethod
    def _settings(cls, value: dict[str, Any]) -> dict[str, Any]:
        accepted = value.get("accepted_mime_types")
        if accepted is None:
            return value
        if not isinstance(accepted, list) or not all(isinstance(m, str) for m in accepted):
            raise _custom("format", "accepted_mime_types: expected a list of MIME types.")
        for mime in accepted:
            if not _MIME_PATTERN_RE.match(mime.strip().lower()):
                raise _custom(
                    "format",
                    f"accepted_mime_types: {mime!r} is not a MIME type such as "
                    "'application/pdf' or a wildcard such as 'image/*'.",
                )
        return value


class FromTemplateBody(BaseModel):
    """`POST /queues/from_template`: the reference's fields plus Postroom's inbox options."""

    model_config = ConfigDict(extra="ignore")

    name: Name
    template_name: StrictStr
    workspace: Reference = None
    include_documents: StrictBool = False
    engine: UrlText | None = None
    # Postroom: a queue from a template is ready for mail unless the caller opts out.
    create_inbox: StrictBool = True
    email_prefix: Annotated[StrictStr, Field(pattern=r"^[a-z0-9-]{1,57}$")] | None = None


class DuplicateBody(BaseModel):
    """`POST /queues/{id}/duplicate`: a new name and what to copy (everything by default)."""

    model_config = ConfigDict(extra="ignore")

    name: Name | None = None
    copy_extensions_settings: StrictBool = True
    copy_email_settings: StrictBool = True
    copy_delete_recommendations: StrictBool = True
    copy_automation_settings: StrictBool = True
    copy_permissions: StrictBool = True
    copy_rules_and_actions: StrictBool = True


async def load_counts(conn: AsyncConnection, queue_ids: list[int]) -> dict[int, dict[str, int]]:
    """`counts` of every queue in one grouped query (never one query per queue)."""
    a = t.annotations
    counts = {qid: dict.fromkeys(COUNT_STATUSES, 0) for qid in queue_ids}
    if not queue_ids:
        return counts
    rows = await conn.execute(
        sa.select(a.c.queue_id, a.c.status, sa.func.count())
        .where(a.c.queue_id.in_(queue_ids))
        .group_by(a.c.queue_id, a.c.status)
    )
    for queue_id, status, number in rows:
        if status in counts[queue_id]:
            counts[queue_id][status] = int(number)
    return counts


async def load_links(
    conn: AsyncConnection, table: sa.Table, column: str, queue_ids: list[int]
) -> dict[int, list[int]]:
    """The ids linked to each queue through an association table (queue_users, queue_hooks)."""
    links: dict[int, list[int]] = {qid: [] for qid in queue_ids}
    if not queue_ids:
        return links
    other = table.c[column]
    rows = await conn.execute(
        sa.select(table.c.queue_id, other).where(table.c.queue_id.in_(queue_ids)).order_by(other)
    )
    for queue_id, linked_id in rows:
        links[queue_id].append(linked_id)
    return links


def render_queue(
    urls: Urls, row: Any, counts: dict[str, int], user_ids: list[int], hook_ids: list[int]
) -> dict[str, Any]:
    hooks = urls.many("hooks", hook_ids)
    rir_params = row.rir_params
    return {
        "id": row.id,
        "name": row.name,
        "url": urls.to("queues", row.id),
        "workspace": urls.of("workspaces", row.workspace_id),
        "connector": row.connector,
        "webhooks": hooks,
        "hooks": list(hooks),
        "schema": urls.to("schemas", row.schema_id),
        "inbox": urls.of("inboxes", row.inbox_id),
        "users": urls.many("users", user_ids),
        "session_timeout": row.session_timeout,
        "rir_url": row.rir_url,
        # The SDK types rir_params as a string; anything else stored long ago is shown as null.
        "rir_params": rir_params if isinstance(rir_params, str) else None,
        "dedicated_engine": row.dedicated_engine,
        "generic_engine": row.generic_engine,
        "engine": row.engine,
        "counts": counts,
        "default_score_threshold": float(row.default_score_threshold),
        "automation_enabled": row.automation_enabled,
        "automation_level": row.automation_level,
        "locale": row.locale,
        "metadata": row.metadata or {},
        "use_confirmed_state": row.use_confirmed_state,
        "document_lifetime": row.document_lifetime,
        "delete_after": iso(row.delete_after),
        "status": row.status,
        "modified_by": urls.of("users", row.modified_by_id),
        "modified_at": iso(row.modified_at),
        "settings": row.settings or {},
        "workflows": row.workflows or [],
        "training_enabled": row.training_enabled,
    }


async def render_queues(conn: AsyncConnection, urls: Urls, rows: list[Any]) -> list[dict[str, Any]]:
    """Queue JSON for many rows with three queries in all (counts, users, hooks)."""
    ids = [row.id for row in rows]
    counts = await load_counts(conn, ids)
    users = await load_links(conn, t.queue_users, "user_id", ids)
    hooks = await load_links(conn, t.queue_hooks, "hook_id", ids)
    return [render_queue(urls, row, counts[row.id], users[row.id], hooks[row.id]) for row in rows]
