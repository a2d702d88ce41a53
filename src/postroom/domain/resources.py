"""The shape every listable resource shares: its table, who sees which rows, its JSON, its edits.

A resource module declares one `Resource` subclass (workspaces, schemas, inboxes, hooks, users,
…): the table, the `Listing` (filters, orderings), `visible` (the rows an actor may see: their
organization, and for queue-bound objects the queues they are assigned to) and `render` (rows →
the reference's JSON, a page at a time). Listing and retrieving then come for free. An editable
resource adds `insert`, `change` (PATCH; `replace`, PUT, is a change by default) and `remove`;
`create`, `update` and `delete` wrap them in the order every writer follows: 404 for what the
actor cannot see (403 first where the whole collection is closed to them: `check_reader`), then
403 for what they may not do (`check_writer`, or `check_editor` for a change that depends on
the object and the body), then the rules of the body, all in one transaction that re-reads the
row it changes. Slow work on a body (hashing a password, walking a large tree) goes in `prepare`,
which runs before that transaction opens; `lost_race` may answer a uniqueness race lost to
another request otherwise than with its 409. A resource also declares the errors its reads and
writes can answer besides these (`read_errors`, `create_errors`, …), for the API's declarations.

Request bodies are pydantic models whose fields all have defaults, so one model serves POST, PUT
and PATCH; `sent_fields` tells which fields the client actually sent, and `require_fields` checks
the ones POST and PUT cannot do without.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, ClassVar, Generic, TypeVar

import pydantic
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom.domain.access import Actor, visible_queues_clause
from postroom.domain.listing import Listing, Page, PageRequest, fetch_page
from postroom.errors import BadRequest, ConcurrentChange, Conflict, NotFound, PostroomError
from postroom.runtime import Runtime
from postroom.urls import Urls

J = TypeVar("J")
B = TypeVar("B", bound=pydantic.BaseModel)
Errors = tuple[type[PostroomError], ...]


class Body(pydantic.BaseModel):
    """A request body: strict types, unknown and read-only keys ignored (clients PUT back whole
    objects they GET)."""

    model_config = pydantic.ConfigDict(extra="ignore", strict=True)


def body_schema(
    not_null: Sequence[str] = (),
    top: Mapping[str, Any] | None = None,
    **properties: Mapping[str, Any],
) -> Callable[[dict[str, Any]], None]:
    """A `json_schema_extra` saying what validators check beyond the types: the fields of
    `not_null` default to None as "not sent" but refuse an explicit null (the document shows
    them without null), `properties` replace the schemas of those fields (by the name a
    client sends) with what their validator takes, and `top` adds keys to the object's schema
    (`required`, `additionalProperties`, ...)."""

    def edit(schema: dict[str, Any]) -> None:
        schema.update(top or {})
        for name, replacement in properties.items():
            prop = schema.setdefault("properties", {}).setdefault(name, {})
            kept = {k: prop[k] for k in ("title", "description") if k in prop}
            prop.clear()
            prop.update(kept, **replacement)
        for name in not_null:
            prop = schema.get("properties", {}).get(name)
            if not prop or "anyOf" not in prop:
                continue
            rest = [s for s in prop["anyOf"] if s.get("type") != "null"]
            if len(rest) == 1:
                del prop["anyOf"]
                prop.update(rest[0])
            else:
                prop["anyOf"] = rest

    return edit


def sent_fields(body: pydantic.BaseModel) -> dict[str, Any]:
    """The fields the client sent, by field name."""
    return {name: getattr(body, name) for name in body.model_fields_set}


def require_fields(body: pydantic.BaseModel, required: Sequence[str]) -> None:
    """400 naming (as the client spells them: aliases) the `required` fields not sent."""
    fields = type(body).model_fields
    missing = [fields[name].alias or name for name in required if name not in body.model_fields_set]
    if missing:
        raise BadRequest("; ".join(f"{name}: This field is required." for name in missing))


async def insert_returning_id(conn: AsyncConnection, table: sa.Table, **values: Any) -> int:
    result = await conn.execute(table.insert().values(**values).returning(table.c.id))
    return int(result.scalar_one())


def check_organization(urls: Urls, who: Actor, sent: dict[str, Any]) -> None:
    """An `organization` in a body must be the caller's own (it is then dropped: not a column)."""
    if "organization" in sent:
        org_id = urls.id_from(sent.pop("organization"), "organizations", "organization")
        if org_id != who.organization_id:
            raise BadRequest(f"organization: organization {org_id} is not yours.")


class Resource(Generic[J]):
    """A collection the API lists and retrieves (see the module docstring)."""

    noun: ClassVar[str]  # "Workspace", for "Workspace 3 not found."
    table: ClassVar[sa.Table]
    listing: ClassVar[Listing]
    read_errors: ClassVar[Errors] = ()  # what `check_reader` raises
    # The column naming a row's queue: annotators and viewers then see only their queues' rows.
    queue_column: ClassVar[str | None] = None

    def check_reader(self, who: Actor) -> None:
        """Raise when the actor may read none of the collection (by default everyone may)."""

    def visible(self, who: Actor) -> sa.ColumnElement[bool]:
        """The rows the actor may see: those of their organization, and of a queue they may see
        when the rows belong to queues (`queue_column`)."""
        same_organization = self.table.c.organization_id == who.organization_id
        if self.queue_column is None:
            return same_organization
        return sa.and_(
            same_organization, visible_queues_clause(who, self.table.c[self.queue_column])
        )

    def select(self, who: Actor) -> sa.Select[Any]:
        return sa.select(self.table).where(self.visible(who))

    async def render(
        self, conn: AsyncConnection, urls: Urls, who: Actor, rows: Sequence[Any]
    ) -> list[J]:
        raise NotImplementedError

    async def list(
        self, rt: Runtime, who: Actor, query: Mapping[str, str], page: PageRequest
    ) -> Page[J]:
        self.check_reader(who)
        stmt = self.listing.apply(self.select(who), query)
        async with rt.db.reading() as conn:
            rows, total = await fetch_page(conn, stmt, page)
            items = await self.render(conn, rt.urls, who, rows)
        return Page(items, total, page)

    async def load(self, conn: AsyncConnection, who: Actor, object_id: int) -> Any:
        """The row, or 404 when it does not exist or the actor may not see it."""
        self.check_reader(who)
        stmt = self.select(who).where(self.table.c.id == object_id)
        row = (await conn.execute(stmt)).first()
        if row is None:
            raise NotFound(f"{self.noun} {object_id} not found.")
        return row

    async def one(self, conn: AsyncConnection, urls: Urls, who: Actor, object_id: int) -> J:
        return (await self.render(conn, urls, who, [await self.load(conn, who, object_id)]))[0]

    async def retrieve(self, rt: Runtime, who: Actor, object_id: int) -> J:
        async with rt.db.reading() as conn:
            return await self.one(conn, rt.urls, who, object_id)


class EditableResource(Resource[J], Generic[J, B]):
    """A resource the API creates, changes and deletes (managers and admins by default)."""

    body: ClassVar[type[pydantic.BaseModel]]
    required: ClassVar[tuple[str, ...]] = ("name",)
    replace_required: ClassVar[tuple[str, ...] | None] = None  # PUT's, when not POST's
    # What the writes can refuse besides 403, 404 and a body's 400 (a uniqueness race: 409).
    create_errors: ClassVar[Errors] = (Conflict,)
    update_errors: ClassVar[Errors] = (Conflict,)
    delete_errors: ClassVar[Errors] = ()

    def check_writer(self, who: Actor) -> None:
        who.require_manager()

    def check_editor(self, who: Actor, object_id: int, body: B) -> None:
        """Whether the actor may change this object with this body; by default `check_writer`."""
        self.check_writer(who)

    async def prepare(self, rt: Runtime, who: Actor, body: B, object_id: int | None) -> None:
        """Checks and slow work on a body before the write transaction opens (`object_id` is
        None on create); by default nothing."""

    def lost_race(self, body: B) -> PostroomError | None:
        """What a create or update that lost a uniqueness race answers instead of the 409
        `ConcurrentChange` (None: the 409 itself)."""
        return None

    @asynccontextmanager
    async def _writing(self, rt: Runtime, body: B) -> AsyncIterator[AsyncConnection]:
        try:
            async with rt.db.transaction() as conn:
                yield conn
        except ConcurrentChange:
            error = self.lost_race(body)
            if error is None:
                raise
            raise error from None

    async def insert(self, conn: AsyncConnection, rt: Runtime, who: Actor, body: B) -> int:
        raise NotImplementedError

    async def change(
        self, conn: AsyncConnection, rt: Runtime, who: Actor, row: Any, body: B
    ) -> None:
        raise NotImplementedError

    async def replace(
        self, conn: AsyncConnection, rt: Runtime, who: Actor, row: Any, body: B
    ) -> None:
        """PUT: by default the same as a change of the fields sent."""
        await self.change(conn, rt, who, row, body)

    async def remove(self, conn: AsyncConnection, rt: Runtime, who: Actor, row: Any) -> None:
        await conn.execute(self.table.delete().where(self.table.c.id == row.id))

    async def create(self, rt: Runtime, who: Actor, body: B) -> J:
        self.check_writer(who)
        require_fields(body, self.required)
        await self.prepare(rt, who, body, None)
        async with self._writing(rt, body) as conn:
            object_id = await self.insert(conn, rt, who, body)
            return await self.one(conn, rt.urls, who, object_id)

    async def update(self, rt: Runtime, who: Actor, object_id: int, body: B, *, partial: bool) -> J:
        async with rt.db.reading() as conn:
            await self.load(conn, who, object_id)  # 404 before 403
        self.check_editor(who, object_id, body)
        if not partial:
            require_fields(
                body, self.required if self.replace_required is None else self.replace_required
            )
        await self.prepare(rt, who, body, object_id)
        write = self.change if partial else self.replace
        async with self._writing(rt, body) as conn:
            row = await self.load(conn, who, object_id)
            await write(conn, rt, who, row, body)
            return await self.one(conn, rt.urls, who, object_id)

    async def delete(self, rt: Runtime, who: Actor, object_id: int) -> None:
        async with rt.db.reading() as conn:
            await self.load(conn, who, object_id)
        self.check_writer(who)
        async with rt.db.transaction() as conn:
            await self.remove(conn, rt, who, await self.load(conn, who, object_id))
