"""The field types that request bodies and JSON answers share, with their JSON-schema meaning.

Bodies validate with them (`Name`: 1 to 255 characters; `Reference`: an object URL or a bare id);
answers are `TypedDict`s typed with them, so the OpenAPI document says that `url` is a URI and
`created_at` a timestamp without anyone writing a schema by hand.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import StringConstraints, WithJsonSchema

Name = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Reference = str | int  # an object URL, or a bare id
JsonObject = dict[str, Any]

Url = Annotated[str, WithJsonSchema({"type": "string", "format": "uri"})]
OptionalUrl = Annotated[str | None, WithJsonSchema({"type": ["string", "null"], "format": "uri"})]
Timestamp = Annotated[
    str | None, WithJsonSchema({"type": ["string", "null"], "format": "date-time"})
]
