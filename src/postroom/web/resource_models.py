"""Request bodies of the setup resources (workspaces, schemas, inboxes, users, hooks, organizations).

Each body is a pydantic model whose fields all have an (unvalidated) default, so one model
serves POST, PUT and PATCH: `parse_body` validates what was sent, checks the fields POST and PUT
require, and returns only the fields the client actually sent. Read-only and unknown keys (`id`,
`url`, `queues` of a workspace, ...) are ignored, as Rossum does: clients PUT back whole objects.
An explicit `null` where the reference allows none is a 400 naming the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal, TypeVar

import pydantic
from pydantic import ConfigDict, StringConstraints

from postroom.errors import BadRequest
from postroom.web.bodies import validate

Name = Annotated[str, StringConstraints(min_length=1, max_length=255)]
JsonObject = dict[str, Any]
Reference = str | int  # an object URL, or a bare id


class Body(pydantic.BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


B = TypeVar("B", bound=Body)


def parse_body(
    model: type[B], data: dict[str, Any], *, required: Sequence[str] = (), partial: bool = False
) -> tuple[B, dict[str, Any]]:
    """The validated body and the dict of fields the client sent (POST/PUT check `required`)."""
    body = validate(model, data)
    if not partial:
        missing = [name for name in required if name not in body.model_fields_set]
        if missing:
            raise BadRequest("; ".join(f"{name}: This field is required." for name in missing))
    sent = {name: getattr(body, name) for name in body.model_fields_set}
    return body, sent


class WorkspaceBody(Body):
    name: Name = ""
    organization: Reference = ""
    metadata: JsonObject = {}


class SchemaBody(Body):
    name: Name = ""
    content: list[Any] = []
    metadata: JsonObject = {}


class SchemaFromTemplateBody(Body):
    name: Name = ""
    template_name: Annotated[str, StringConstraints(min_length=1, max_length=255)] = ""
    metadata: JsonObject = {}


class InboxFilters(pydantic.BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    allowed_senders: list[Annotated[str, StringConstraints(max_length=254)]] = []
    denied_senders: list[Annotated[str, StringConstraints(max_length=254)]] = []
    document_rejection_conditions: JsonObject = {}


class InboxBody(Body):
    name: Name = ""
    email_prefix: str = ""
    email: Annotated[str, StringConstraints(max_length=254)] = ""
    queues: list[Reference] = []
    bounce_email_to: Annotated[str, StringConstraints(max_length=254)] | None = None
    bounce_unprocessable_attachments: bool = False
    bounce_postponed_annotations: bool = False
    bounce_deleted_annotations: bool = False
    bounce_email_with_no_attachments: bool = True
    filters: InboxFilters = InboxFilters()
    dmarc_check_action: Literal["accept", "drop"] = "accept"
    metadata: JsonObject = {}


class UserBody(Body):
    username: Annotated[str, StringConstraints(min_length=1, max_length=150)] = ""
    password: Annotated[str, StringConstraints(max_length=256)] = ""
    email: Annotated[str, StringConstraints(max_length=254)] = ""
    first_name: Annotated[str, StringConstraints(max_length=150)] = ""
    last_name: Annotated[str, StringConstraints(max_length=150)] = ""
    phone_number: Annotated[str, StringConstraints(max_length=40)] | None = None
    groups: list[Reference] = []
    queues: list[Reference] = []
    organization: Reference = ""
    is_active: bool = True
    ui_settings: JsonObject = {}
    metadata: JsonObject = {}


# What a user may change on their own record without being an admin.
SELF_EDITABLE_USER_FIELDS = frozenset(
    {"first_name", "last_name", "phone_number", "ui_settings", "metadata"}
)


class PasswordChangeBody(Body):
    old_password: str = ""
    new_password1: str = ""
    new_password2: str = ""


class HookBody(Body):
    name: Name = ""
    type: str = "webhook"
    queues: list[Reference] = []
    run_after: list[Reference] = []
    events: list[str] = []
    config: JsonObject = {}
    active: bool = True
    settings: JsonObject = {}
    sideload: list[str] = []
    metadata: JsonObject = {}
    description: Annotated[str, StringConstraints(max_length=10_000)] | None = None
    test: JsonObject = {}
    token_owner: Reference | None = None
    token_lifetime_s: Annotated[int, pydantic.Field(ge=0, le=7200)] | None = None


class OrganizationBody(Body):
    name: Name = ""
    ui_settings: JsonObject = {}
    metadata: JsonObject = {}
