"""Schemas (`/schemas`): the fields a queue's documents are annotated with.

Admins and managers read and write every schema of their organization; annotators and viewers
read the schemas of the queues they are assigned to (annotating needs them), and those of the
annotations in those queues, and no other (404).
`content` is checked by `domain.schema_validation` on every write (and alone by
`validate_content`). A schema may also be made from the content of a shipped queue template
(`create_from_template`). A schema still used by a queue or by annotations cannot be deleted
(409): annotations keep pointing at their schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from typing_extensions import TypedDict

from postroom.clock import iso, utcnow
from postroom.db import tables as t
from postroom.domain.access import Actor, visible_queues_clause
from postroom.domain.listing import Filter, Listing, linked
from postroom.domain.queue_templates import find_template, template_names
from postroom.domain.relations import visible_queue_ids_by
from postroom.domain.resources import (
    Body,
    EditableResource,
    body_schema,
    insert_returning_id,
    require_fields,
    sent_fields,
)
from postroom.domain.schema_validation import validate_schema_content
from postroom.errors import BadRequest, Conflict
from postroom.fields import NOT_BLANK, JsonObject, Name, OptionalUrl, Timestamp, Url
from postroom.runtime import Runtime
from postroom.urls import Urls

s = t.schemas


class SchemaJson(TypedDict):
    id: int
    name: str
    url: Url
    queues: list[Url]
    content: list[Any]
    metadata: JsonObject
    modified_by: OptionalUrl
    modified_at: Timestamp


class SchemaBody(Body):
    name: Name = ""
    content: list[Any] = []
    metadata: JsonObject = {}


class SchemaFromTemplateBody(Body):
    model_config = Body.model_config | {
        "json_schema_extra": body_schema(
            top={"required": ["name", "template_name"]},
            name={"type": "string", "minLength": 1, "maxLength": 255, "pattern": NOT_BLANK},
            template_name={"type": "string", "enum": template_names()},
        )
    }

    name: Name = ""
    template_name: Name = ""
    metadata: JsonObject = {}


async def insert_schema(conn: AsyncConnection, who: Actor, **fields: Any) -> int:
    """A new schema of the actor's organization (`name`, `content` checked before, `metadata`),
    modified by them now."""
    return await insert_returning_id(
        conn, s, organization_id=who.organization_id, **fields, **_modified(who)
    )


def _modified(who: Actor) -> dict[str, Any]:
    return {"modified_by_id": who.user_id, "modified_at": utcnow()}


class Schemas(EditableResource[SchemaJson, SchemaBody]):
    noun = "Schema"
    table = s
    body = SchemaBody
    replace_required = ("name", "content")
    create_errors = ()
    update_errors = ()
    delete_errors = (Conflict,)
    listing = Listing(
        filters=(
            Filter("id", s.c.id),
            Filter("name", s.c.name, "str"),
            linked("queue", s.c.id, t.queues.c.schema_id, t.queues.c.id),
        ),
        ordering={"id": s.c.id, "name": s.c.name, "modified_at": s.c.modified_at},
        default=(s.c.id,),
    )

    def visible(self, who: Actor) -> sa.ColumnElement[bool]:
        mine = super().visible(who)
        if who.sees_all_queues:
            return mine
        q, a = t.queues.c, t.annotations.c
        of_queues = sa.select(q.schema_id).where(visible_queues_clause(who, q.id))
        of_annotations = sa.exists().where(
            a.schema_id == s.c.id, visible_queues_clause(who, a.queue_id)
        )
        return sa.and_(mine, sa.or_(s.c.id.in_(of_queues), of_annotations))

    async def render(
        self, conn: AsyncConnection, urls: Urls, who: Actor, rows: Sequence[Any]
    ) -> list[SchemaJson]:
        queues = await visible_queue_ids_by(conn, who, t.queues.c.schema_id, [r.id for r in rows])
        return [
            {
                "id": row.id,
                "name": row.name,
                "url": urls.to("schemas", row.id),
                "queues": urls.many("queues", queues[row.id]),
                "content": row.content or [],
                "metadata": row.metadata or {},
                "modified_by": urls.of("users", row.modified_by_id),
                "modified_at": iso(row.modified_at),
            }
            for row in rows
        ]

    async def prepare(
        self, rt: Runtime, who: Actor, body: SchemaBody, object_id: int | None
    ) -> None:
        if object_id is None or "content" in body.model_fields_set:
            validate_schema_content(body.content)

    async def insert(self, conn: AsyncConnection, rt: Runtime, who: Actor, body: SchemaBody) -> int:
        return await insert_schema(
            conn, who, name=body.name, content=body.content, metadata=body.metadata
        )

    async def change(
        self, conn: AsyncConnection, rt: Runtime, who: Actor, row: Any, body: SchemaBody
    ) -> None:
        await conn.execute(
            s.update().where(s.c.id == row.id).values(**sent_fields(body), **_modified(who))
        )

    async def remove(self, conn: AsyncConnection, rt: Runtime, who: Actor, row: Any) -> None:
        for table, what in ((t.queues, "queues"), (t.annotations, "annotations")):
            used = await conn.execute(
                sa.select(sa.func.count()).select_from(table).where(table.c.schema_id == row.id)
            )
            count = used.scalar_one()
            if count:
                raise Conflict(f"Schema {row.id} is used by {count} {what}; it cannot be deleted.")
        await super().remove(conn, rt, who, row)

    async def create_from_template(
        self, rt: Runtime, who: Actor, body: SchemaFromTemplateBody
    ) -> SchemaJson:
        """A new schema with the content of one of the shipped queue templates."""
        self.check_writer(who)
        require_fields(body, ("name", "template_name"))
        template = find_template(body.template_name)
        if template is None:
            raise BadRequest(
                f"template_name: unknown template {body.template_name!r} "
                f"(available: {', '.join(template_names())})."
            )
        async with rt.db.transaction() as conn:
            schema_id = await insert_schema(
                conn, who, name=body.name, content=template.schema_content, metadata=body.metadata
            )
            return await self.one(conn, rt.urls, who, schema_id)


SCHEMAS = Schemas()


def validate_content(body: SchemaBody) -> None:
    """Check a content without storing it: a 400 naming the bad node unless it is valid."""
    require_fields(body, ("content",))
    validate_schema_content(body.content)
