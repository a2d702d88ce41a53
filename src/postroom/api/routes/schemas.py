"""`/schemas`: the collection endpoints of `domain.schemas`, checking a content without storing
it (`/schemas/validate`) and a schema from a shipped template (`/schemas/from_template`)."""

from __future__ import annotations

from typing import Any

from postroom.api.resource_routes import resource_routes
from postroom.api.routing import Call, Routes
from postroom.domain import schemas
from postroom.domain.schemas import SCHEMAS, SchemaBody, SchemaFromTemplateBody, SchemaJson
from postroom.errors import AccessForbidden

routes = Routes()
resource_routes(routes, "/schemas", SCHEMAS, SchemaJson, id_pattern=r":[0-9]+")


@routes.post("/schemas/validate", body=SchemaBody, response=dict[str, Any])
async def validate_schema(call: Call) -> dict[str, Any]:
    """Check a content without storing it: 200 {} when valid, 400 naming the bad node otherwise."""
    schemas.validate_content(call.body)
    return {}


@routes.post(
    "/schemas/from_template",
    body=SchemaFromTemplateBody,
    status=201,
    idempotent=True,
    response=SchemaJson,
    errors=(AccessForbidden,),
)
async def create_schema_from_template(call: Call) -> SchemaJson:
    """A new schema with the content of one of the shipped queue templates."""
    return await SCHEMAS.create_from_template(call.rt, call.actor, call.body)
