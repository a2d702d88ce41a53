"""Annotations: list (filters, ordering, sideloads), retrieve, PATCH (metadata, status) and the
content tree.

An annotation is visible when its queue is (annotators and viewers: assigned queues only) and it
belongs to the caller's organization; anything else answers 404. The JSON carries every field the
reference and the `rossum-api` SDK expect (lists never null, `automated` a bool); `pages` stays
empty (Postroom renders no page images) and `page_count` tells how many pages the file has.

The list's filters (`LISTING`) are the reference's: ids and statuses as comma lists, user
references, every `*_at_before` / `*_at_after` pair, booleans, and `search` (full text over
datapoint values, file name, modifier e-mail and messages). The queue export applies the same
filters. Filters the data model has nothing for (labels, relations, email threads, assignees) are
accepted and ignored, like other unknown parameters.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from pydantic import field_validator
from pydantic_core import PydanticCustomError
from sqlalchemy.ext.asyncio import AsyncConnection
from typing_extensions import TypedDict

from postroom.clock import iso, utcnow
from postroom.db import tables as t
from postroom.domain import review
from postroom.domain.access import Actor
from postroom.domain.annotation_sideloads import sideloads
from postroom.domain.listing import IDS_PATTERN, Filter, Listing, Page, PageRequest, fetch_page
from postroom.domain.resources import Body, Resource, body_schema
from postroom.errors import BadRequest
from postroom.fields import JsonObject, OptionalUrl, Timestamp, Url
from postroom.runtime import Runtime
from postroom.status import PATCH_TARGETS, AnnotationStatus
from postroom.urls import Urls

MAX_SEARCH_CHARS = 256

a = t.annotations
_TIMESTAMPS = (
    "arrived_at",
    "assigned_at",
    "confirmed_at",
    "created_at",
    "modified_at",
    "deleted_at",
    "exported_at",
    "export_failed_at",
    "purged_at",
    "rejected_at",
)
_USERS = ("confirmed_by", "deleted_by", "exported_by", "purged_by", "rejected_by", "modified_by")


class AnnotationJson(TypedDict):
    id: int
    url: Url
    status: AnnotationStatus
    document: Url
    queue: Url
    schema: Url
    relations: list[Url]
    pages: list[Url]
    page_count: int | None
    creator: OptionalUrl
    modifier: OptionalUrl
    rir_poll_id: None
    messages: list[JsonObject]
    content: Url
    suggested_edit: None
    time_spent: int
    metadata: JsonObject
    automated: bool
    related_emails: list[Url]
    email: OptionalUrl
    automation_blocker: None
    email_thread: None
    has_email_thread_with_replies: bool
    has_email_thread_with_new_replies: bool
    organization: Url
    prediction: None
    assignees: list[Url]
    labels: list[Url]
    restricted_access: bool
    automatically_rejected: bool
    training_enabled: bool
    einvoice: bool
    arrived_at: Timestamp
    created_at: Timestamp
    modified_at: Timestamp
    assigned_at: Timestamp
    confirmed_at: Timestamp
    exported_at: Timestamp
    export_failed_at: Timestamp
    deleted_at: Timestamp
    purged_at: Timestamp
    rejected_at: Timestamp
    confirmed_by: OptionalUrl
    deleted_by: OptionalUrl
    exported_by: OptionalUrl
    purged_by: OptionalUrl
    rejected_by: OptionalUrl
    modified_by: OptionalUrl


class ContentJson(TypedDict):
    content: list[JsonObject]


class AnnotationChange(Body):
    """`PATCH /annotations/{id}`: `metadata` and/or `status`; read-only and unknown keys are
    ignored (clients send back whole objects), as the reference does."""

    model_config = Body.model_config | {
        "json_schema_extra": body_schema(
            not_null=("status", "metadata"),
            status={"type": "string", "enum": sorted(PATCH_TARGETS)},
            metadata={"type": "object"},
        )
    }

    status: AnnotationStatus | None = None
    metadata: JsonObject | None = None

    @field_validator("status", mode="before")
    @classmethod
    def _settable(cls, value: Any) -> AnnotationStatus:
        if not isinstance(value, str) or value not in PATCH_TARGETS:
            allowed = ", ".join(sorted(PATCH_TARGETS))
            raise PydanticCustomError("status", f"expected one of {allowed}, got {value!r}.")
        return AnnotationStatus(value)

    @field_validator("metadata", mode="before")
    @classmethod
    def _object(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise PydanticCustomError("metadata", "expected a JSON object.")
        return value


# ---------------------------------------------------------------- listing


def _search(raw: str) -> sa.ColumnElement[bool]:
    if len(raw) > MAX_SEARCH_CHARS:
        raise BadRequest(f"search: longer than {MAX_SEARCH_CHARS} characters.")
    term = raw.lower()
    d, u = t.documents.c, t.users.c
    in_file_name = sa.exists().where(
        d.id == a.c.document_id,
        sa.func.lower(d.original_file_name).contains(term, autoescape=True),
    )
    in_modifier = sa.exists().where(
        u.id == a.c.modifier_id, sa.func.lower(u.email).contains(term, autoescape=True)
    )
    in_content = sa.func.lower(sa.cast(a.c.content, sa.Text)).contains(term, autoescape=True)
    in_messages = sa.func.lower(sa.cast(a.c.messages, sa.Text)).contains(term, autoescape=True)
    return sa.or_(in_content, in_file_name, in_modifier, in_messages)


def _workspace(raw: str) -> sa.ColumnElement[bool]:
    q = t.queues.c
    in_workspaces = Filter("queue__workspace", q.workspace_id).clause(raw)
    return a.c.queue_id.in_(sa.select(q.id).where(in_workspaces))


def _of(table: sa.Table, column: str, key: sa.ColumnElement[Any]) -> sa.ScalarSelect[Any]:
    return sa.select(table.c[column]).where(table.c.id == key).scalar_subquery()


LISTING = Listing(
    filters=(
        Filter("id", a.c.id),
        Filter("status", a.c.status, "strs"),
        Filter("queue", a.c.queue_id),
        Filter("document", a.c.document_id),
        Filter("modifier", a.c.modifier_id),
        Filter("modified_by", a.c.modified_by_id),
        Filter("creator", a.c.creator_id),
        Filter("confirmed_by", a.c.confirmed_by_id),
        Filter("deleted_by", a.c.deleted_by_id),
        Filter("exported_by", a.c.exported_by_id),
        Filter("purged_by", a.c.purged_by_id),
        Filter("rejected_by", a.c.rejected_by_id),
        Filter(
            "queue__workspace",
            kind="custom",
            build=_workspace,
            schema={"type": "string", "pattern": IDS_PATTERN},
        ),
        Filter("upload", a.c.upload_id),
        Filter("email", a.c.email_id),
        Filter("automated", a.c.automated, "bool"),
        # Postroom has no restricted annotations: as if a column that is always false.
        Filter("restricted_access", sa.literal(False), "bool"),
        Filter(
            "search",
            kind="custom",
            build=_search,
            schema={"type": "string", "maxLength": MAX_SEARCH_CHARS},
        ),
        *(Filter(f"{name}_before", a.c[name], "before") for name in _TIMESTAMPS),
        *(Filter(f"{name}_after", a.c[name], "after") for name in _TIMESTAMPS),
    ),
    ordering={
        "id": a.c.id,
        "document": a.c.document_id,
        "document__arrived_at": _of(t.documents, "arrived_at", a.c.document_id),
        "document__original_file_name": _of(t.documents, "original_file_name", a.c.document_id),
        "queue": a.c.queue_id,
        "status": a.c.status,
        "modifier": a.c.modifier_id,
        "modifier__username": _of(t.users, "username", a.c.modifier_id),
        "creator": a.c.creator_id,
        "creator__username": _of(t.users, "username", a.c.creator_id),
        **{name: a.c[name] for name in _TIMESTAMPS},
        **{name: a.c[f"{name}_id"] for name in _USERS},
        **{f"{name}__username": _of(t.users, "username", a.c[f"{name}_id"]) for name in _USERS},
    },
    default=(a.c.id,),
    tiebreak=(a.c.id,),  # a stable page order among equal sort keys
)


# ---------------------------------------------------------------- rendering


def render_annotation(urls: Urls, row: Any) -> AnnotationJson:
    """The Rossum annotation object of one `annotations` row."""
    url = urls.to("annotations", row.id)
    return {
        "id": row.id,
        "url": url,
        "status": row.status,
        "document": urls.to("documents", row.document_id),
        "queue": urls.to("queues", row.queue_id),
        "schema": urls.to("schemas", row.schema_id),
        "relations": [],
        "pages": [],
        "page_count": row.page_count,
        "creator": urls.of("users", row.creator_id),
        "modifier": urls.of("users", row.modifier_id),
        "rir_poll_id": None,
        "messages": row.messages or [],
        "content": url + "/content",
        "suggested_edit": None,
        "time_spent": 0,
        "metadata": row.metadata or {},
        "automated": bool(row.automated),
        "related_emails": urls.many("emails", [row.email_id] if row.email_id else []),
        "email": urls.of("emails", row.email_id),
        "automation_blocker": None,
        "email_thread": None,
        "has_email_thread_with_replies": False,
        "has_email_thread_with_new_replies": False,
        "organization": urls.to("organizations", row.organization_id),
        "prediction": None,
        "assignees": [],
        "labels": [],
        "restricted_access": False,
        "automatically_rejected": False,
        "training_enabled": True,
        "einvoice": False,
        "arrived_at": iso(row.arrived_at),
        "created_at": iso(row.created_at),
        "modified_at": iso(row.modified_at),
        "assigned_at": iso(row.assigned_at),
        "confirmed_at": iso(row.confirmed_at),
        "exported_at": iso(row.exported_at),
        "export_failed_at": iso(row.export_failed_at),
        "deleted_at": iso(row.deleted_at),
        "purged_at": iso(row.purged_at),
        "rejected_at": iso(row.rejected_at),
        "confirmed_by": urls.of("users", row.confirmed_by_id),
        "deleted_by": urls.of("users", row.deleted_by_id),
        "exported_by": urls.of("users", row.exported_by_id),
        "purged_by": urls.of("users", row.purged_by_id),
        "rejected_by": urls.of("users", row.rejected_by_id),
        "modified_by": urls.of("users", row.modified_by_id),
    }


def selected_fields(query: Mapping[str, str], body: Mapping[str, Any]) -> dict[str, Any]:
    """`fields=` keeps only the named attributes, `fields!=` drops them (the reference)."""
    keep = query.get("fields", "")
    drop = query.get("fields!", "")
    chosen = dict(body)
    if keep:
        wanted = {f.strip() for f in keep.split(",")}
        chosen = {k: v for k, v in chosen.items() if k in wanted}
    if drop:
        unwanted = {f.strip() for f in drop.split(",")}
        chosen = {k: v for k, v in chosen.items() if k not in unwanted}
    return chosen


# Every column but the content tree, which only the content endpoint and sideload read.
_FIELDS = [column for column in a.c if column.name != "content"]


class Annotations(Resource[AnnotationJson]):
    noun = "Annotation"
    table = a
    queue_column = "queue_id"
    listing = LISTING

    def select(self, who: Actor) -> sa.Select[Any]:
        return sa.select(*_FIELDS).where(self.visible(who))

    async def render(
        self, conn: AsyncConnection, urls: Urls, who: Actor, rows: Sequence[Any]
    ) -> list[AnnotationJson]:
        return [render_annotation(urls, row) for row in rows]


ANNOTATIONS = Annotations()


async def list_annotations(
    rt: Runtime, who: Actor, query: Mapping[str, str], page: PageRequest
) -> tuple[Page[dict[str, Any]], dict[str, list[JsonObject]]]:
    """A page of annotations (`fields`/`fields!` applied) and the sideloads `query` asks for."""
    stmt = LISTING.apply(ANNOTATIONS.select(who), query)
    async with rt.db.reading() as conn:
        rows, total = await fetch_page(conn, stmt, page)
        related = await sideloads(conn, rt.urls, query, rows)
    items = [selected_fields(query, render_annotation(rt.urls, row)) for row in rows]
    return Page(items, total, page), related


async def retrieve_annotation(
    rt: Runtime, who: Actor, annotation_id: int, query: Mapping[str, str]
) -> dict[str, Any]:
    """One annotation, `fields`/`fields!` applied."""
    return selected_fields(query, await ANNOTATIONS.retrieve(rt, who, annotation_id))


async def content(rt: Runtime, who: Actor, annotation_id: int) -> ContentJson:
    """The content tree (empty while the annotation is still importing)."""
    async with rt.db.reading() as conn:
        await ANNOTATIONS.load(conn, who, annotation_id)
        tree = await conn.scalar(sa.select(a.c.content).where(a.c.id == annotation_id))
    return {"content": tree or []}


async def update_annotation(
    rt: Runtime, who: Actor, annotation_id: int, body: AnnotationChange
) -> AnnotationJson:
    """Change `metadata` and/or `status` (the lifecycle's move: 409 when not allowed)."""
    async with rt.db.reading() as conn:
        await ANNOTATIONS.load(conn, who, annotation_id)  # 404 before 403
    who.require_annotator()
    sent = body.model_fields_set
    if body.metadata is not None:
        limit = rt.settings.limits.max_metadata_bytes
        if len(json.dumps(body.metadata, ensure_ascii=False).encode()) > limit:
            raise BadRequest(f"metadata: larger than {limit} bytes of JSON.")
    async with rt.db.transaction() as conn:
        await ANNOTATIONS.load(conn, who, annotation_id)
        if body.status is not None:
            await review.change_status(conn, who, annotation_id, body.status)
        if "metadata" in sent:
            await conn.execute(
                a.update()
                .where(a.c.id == annotation_id)
                .values(metadata=body.metadata, modified_at=utcnow(), modified_by_id=who.user_id)
            )
        row = await ANNOTATIONS.load(conn, who, annotation_id)
    if "status" in sent:
        rt.jobs_available.set()  # a move to `exporting` enqueued an export job
    return render_annotation(rt.urls, row)
