"""The schemas of the OpenAPI document: each declared type once under its name (`SchemaBook`),
the one error schema and the pagination envelope."""

from __future__ import annotations

from typing import Any

import pydantic
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

REF = "#/components/schemas/{model}"

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["detail", "code"],
    "properties": {
        "detail": {"type": "string", "description": "What was wrong: the field or the limit."},
        "code": {"type": "string", "description": "Stable error code (bad_request, ...)."},
        "url": {"type": "string", "description": "Documentation of the limit (429 only)."},
    },
}
PAGINATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["total", "total_pages", "next", "previous"],
    "properties": {
        "total": {"type": "integer", "minimum": 0},
        "total_pages": {"type": "integer", "minimum": 0},
        "next": {"type": ["string", "null"]},
        "previous": {"type": ["string", "null"]},
    },
}


class _WithoutDefaults(GenerateJsonSchema):
    """Body fields default to "not sent" sentinels (an empty name, say) that are not valid values
    themselves: the document leaves defaults out rather than show invalid ones."""

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])


class SchemaBook:
    """components/schemas: each declared type once, under its name."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
        self._names: dict[Any, str] = {}
        self.requests: set[str] = set()  # the schemas request bodies use (with their $defs)

    def ref(self, shape: Any, *, request: bool = False) -> dict[str, str]:
        name = self._names.get(shape)
        if name is None:
            name = getattr(shape, "__name__", "Object").removesuffix("Json")
            while name in self.schemas:
                name += "_"
            self._names[shape] = name
            schema = pydantic.TypeAdapter(shape).json_schema(
                ref_template=REF, schema_generator=_WithoutDefaults
            )
            defs = schema.pop("$defs", {})
            for def_name, definition in defs.items():
                self.schemas.setdefault(def_name, definition)
            self.schemas[name] = schema
            if request:
                self.requests.update([name, *defs])
        return {"$ref": REF.format(model=name)}

    def partial(self, shape: Any) -> dict[str, str]:
        """The shape with every property optional: what an answer trimmed by `fields` is."""
        full = REF.format(model="")
        name = self.ref(shape)["$ref"].removeprefix(full) + "Fields"
        if name not in self.schemas:
            whole = self.schemas[name.removesuffix("Fields")]
            self.schemas[name] = {k: v for k, v in whole.items() if k != "required"}
        return {"$ref": REF.format(model=name)}
