"""What a client sends about a queue — the bodies of create, PUT/PATCH, from_template and
duplicate — and how a body becomes records.

Bodies are validated field by field (a 400 names the field); unknown and read-only fields
(`id`, `url`, `counts`, `status`, …) are ignored so a client can PUT back an object it GETs.
Durations are normalised (`session_timeout` to HH:MM:SS, `document_lifetime` to the
reference's `[DD] HH:MM:SS[.uuuuuu]`). A `QueueChange` turns a body into column values and
user and hook links, after checking that every referenced object (schema, workspace, inbox,
users, hooks) exists in the caller's organization and that an inbox feeds one queue only.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import AfterValidator, Field, StrictBool, StrictStr, field_validator
from pydantic_core import PydanticCustomError
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom.db import tables as t
from postroom.domain.queue_templates import template_names
from postroom.domain.resources import Body, body_schema
from postroom.durations import DURATION_PATTERN, format_duration, parse_duration, parse_hms
from postroom.errors import BadRequest
from postroom.fields import (
    NOT_BLANK,
    NULL,
    OPTIONAL_REFERENCE_SCHEMA,
    REFERENCE_SCHEMA,
    REFERENCES_SCHEMA,
)
from postroom.urls import Urls

q = t.queues

_LOCALE_RE = re.compile(r"^(auto|[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*)$")
_MIME_PATTERN_RE = re.compile(r"^(\*|[a-z0-9][a-z0-9!#$&^_.+-]*)/(\*|[a-z0-9][a-z0-9!#$&^_.+-]*)$")

# Body fields stored as they are, in the column of the same name.
PLAIN_FIELDS = (
    "name",
    "connector",
    "session_timeout",
    "rir_url",
    "rir_params",
    "dedicated_engine",
    "generic_engine",
    "engine",
    "default_score_threshold",
    "automation_enabled",
    "automation_level",
    "locale",
    "metadata",
    "use_confirmed_state",
    "document_lifetime",
    "settings",
    "workflows",
    "training_enabled",
)
# The plain fields a body may send as null; the others it may leave out but never null.
NULLABLE = (
    "connector",
    "rir_url",
    "rir_params",
    "dedicated_engine",
    "generic_engine",
    "engine",
    "document_lifetime",
)
NON_NULLABLE = (
    "schema_",
    "users",
    "hooks",
    "webhooks",
    *(name for name in PLAIN_FIELDS if name not in NULLABLE),
)


def _custom(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise _custom("blank", "This field may not be blank.")
    return value


QueueName = Annotated[StrictStr, Field(min_length=1, max_length=255), AfterValidator(_not_blank)]
# A URL (or bare id) of another object: parsed by `Urls.id_from`, whose 400 names the field.
RawReference = Any
UrlText = Annotated[StrictStr, Field(max_length=1000)]


_HMS = r"[0-9]{1,4}:[0-5][0-9]:[0-5][0-9]"
_ZERO_DURATION = r"\s*(?:0+ (?:days?, )?)?(?:0+:)?(?:0+:)?0+(?:[.,]0*)?\s*$"
_QUEUE_SCHEMA = body_schema(
    not_null=[name.rstrip("_") for name in NON_NULLABLE],
    workspace={"anyOf": [REFERENCE_SCHEMA, NULL]},
    schema=REFERENCE_SCHEMA,
    inbox={"anyOf": [REFERENCE_SCHEMA, NULL]},
    users=REFERENCES_SCHEMA,
    hooks=REFERENCES_SCHEMA,
    webhooks=REFERENCES_SCHEMA,
    name={"type": "string", "minLength": 1, "maxLength": 255, "pattern": NOT_BLANK},
    session_timeout={"type": "string", "pattern": rf"^(?!\s*0+:00:00\s*$)\s*{_HMS}\s*$"},
    document_lifetime={
        "anyOf": [
            {"type": "string", "pattern": f"(?!{_ZERO_DURATION})" + DURATION_PATTERN},
            NULL,
        ]
    },
    locale={"type": "string", "maxLength": 32, "pattern": _LOCALE_RE.pattern},
    settings={
        "type": "object",
        "properties": {
            "accepted_mime_types": {
                "type": "array",
                "items": {"type": "string", "pattern": _MIME_PATTERN_RE.pattern},
            }
        },
    },
)


class QueueBody(Body):
    """The writable queue fields of POST, PUT and PATCH (which of them were sent: `model_fields_set`)."""

    model_config = Body.model_config | {
        "strict": False,
        "populate_by_name": True,
        "json_schema_extra": _QUEUE_SCHEMA,
    }

    name: QueueName | None = None
    workspace: RawReference = None
    connector: UrlText | None = None
    hooks: RawReference = None
    webhooks: RawReference = None
    schema_: RawReference = Field(None, alias="schema")
    inbox: RawReference = None
    users: RawReference = None
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


class FromTemplateBody(Body):
    """`POST /queues/from_template`: the reference's fields plus Postroom's inbox options
    (`name` and `template_name` are required; checked after the caller's role)."""

    model_config = Body.model_config | {
        "json_schema_extra": body_schema(
            top={"required": ["name", "template_name"]},
            name={"type": "string", "minLength": 1, "maxLength": 255, "pattern": NOT_BLANK},
            template_name={"type": "string", "enum": template_names()},
            workspace=OPTIONAL_REFERENCE_SCHEMA,
        )
    }

    name: QueueName = ""
    template_name: StrictStr = ""
    workspace: RawReference = None
    include_documents: StrictBool = False
    engine: UrlText | None = None
    # Postroom: a queue from a template is ready for mail unless the caller opts out.
    create_inbox: StrictBool = True
    email_prefix: Annotated[StrictStr, Field(pattern=r"^[a-z0-9-]{1,57}$")] | None = None


class DuplicateBody(Body):
    """`POST /queues/{id}/duplicate`: a new name and what to copy (everything by default)."""

    name: QueueName | None = None
    copy_extensions_settings: StrictBool = True
    copy_email_settings: StrictBool = True
    copy_delete_recommendations: StrictBool = True
    copy_automation_settings: StrictBool = True
    copy_permissions: StrictBool = True
    copy_rules_and_actions: StrictBool = True


async def require_in_org(
    conn: AsyncConnection,
    table: sa.Table,
    ids: list[int],
    org_id: int,
    field: str,
    *where: sa.ColumnElement[bool],
) -> None:
    """400 naming `field` and the ids that are not rows of `table` in the organization."""
    if not ids:
        return
    stmt = sa.select(table.c.id).where(
        table.c.id.in_(ids), table.c.organization_id == org_id, *where
    )
    found = set((await conn.execute(stmt)).scalars())
    missing = sorted(set(ids) - found)
    if missing:
        raise BadRequest(f"{field}: {', '.join(map(str, missing))} not found.")


async def check_inbox_free(
    conn: AsyncConnection, inbox_id: int | None, org_id: int, queue_id: int | None
) -> None:
    """An inbox feeds one queue: mail to its address must have exactly one destination."""
    if inbox_id is None:
        return
    await require_in_org(conn, t.inboxes, [inbox_id], org_id, "inbox")
    taken = await conn.scalar(
        sa.select(q.c.id).where(q.c.inbox_id == inbox_id, q.c.id != (queue_id or 0)).limit(1)
    )
    if taken is not None:
        raise BadRequest(f"inbox: inbox {inbox_id} already belongs to queue {taken}.")


def check_engines(generic: str | None, dedicated: str | None) -> None:
    if generic is not None and dedicated is not None:
        raise BadRequest(
            "generic_engine, dedicated_engine: only one engine may be set; set the other to null."
        )


class QueueChange:
    """A validated body as column values and link lists (None: links not sent, left alone)."""

    def __init__(self, body: QueueBody, urls: Urls) -> None:
        given = body.model_fields_set
        self.values: dict[str, Any] = {f: getattr(body, f) for f in PLAIN_FIELDS if f in given}
        if "schema_" in given:
            self.values["schema_id"] = urls.id_from(body.schema_, "schemas", "schema")
        if "workspace" in given:
            self.values["workspace_id"] = urls.optional_id_from(
                body.workspace, "workspaces", "workspace"
            )
        if "inbox" in given:
            self.values["inbox_id"] = urls.optional_id_from(body.inbox, "inboxes", "inbox")
        self.user_ids = (
            sorted(set(urls.ids_from(body.users, "users", "users"))) if "users" in given else None
        )
        # The deprecated `webhooks` overrides `hooks` when both are sent (reference).
        self.hook_field = "webhooks" if "webhooks" in given else "hooks"
        hooks = body.webhooks if "webhooks" in given else body.hooks
        self.hook_ids = (
            sorted(set(urls.ids_from(hooks, "hooks", self.hook_field)))
            if "webhooks" in given or "hooks" in given
            else None
        )

    async def check(self, conn: AsyncConnection, org_id: int, queue_id: int | None) -> None:
        v = self.values
        if "schema_id" in v:
            await require_in_org(conn, t.schemas, [v["schema_id"]], org_id, "schema")
        if v.get("workspace_id") is not None:
            await require_in_org(conn, t.workspaces, [v["workspace_id"]], org_id, "workspace")
        if "inbox_id" in v:
            await check_inbox_free(conn, v["inbox_id"], org_id, queue_id)
        users = self.user_ids or []
        await require_in_org(conn, t.users, users, org_id, "users", t.users.c.deleted.is_(False))
        await require_in_org(conn, t.hooks, self.hook_ids or [], org_id, self.hook_field)

    async def save_links(self, conn: AsyncConnection, queue_id: int) -> None:
        for table, column, ids in (
            (t.queue_users, "user_id", self.user_ids),
            (t.queue_hooks, "hook_id", self.hook_ids),
        ):
            if ids is None:
                continue
            await conn.execute(table.delete().where(table.c.queue_id == queue_id))
            if ids:
                await conn.execute(table.insert(), [{"queue_id": queue_id, column: i} for i in ids])


async def default_workspace(conn: AsyncConnection, org_id: int) -> int | None:
    """The organization's first workspace: where a queue goes when the body names none."""
    w = t.workspaces
    stmt = sa.select(w.c.id).where(w.c.organization_id == org_id).order_by(w.c.id).limit(1)
    found = await conn.scalar(stmt)
    return None if found is None else int(found)
