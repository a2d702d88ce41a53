"""The field types that request bodies and JSON answers share, with their JSON-schema meaning.

Bodies validate with them (`Name`: 1 to 255 characters; `Reference`: an object URL or a bare id);
answers are `TypedDict`s typed with them, so the OpenAPI document says that `url` is a URI and
`created_at` a timestamp without anyone writing a schema by hand.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Strict, StringConstraints, WithJsonSchema

Name = Annotated[str, StringConstraints(min_length=1, max_length=255)]
# An object URL (`…/queues/12`), or a bare id (a number, or digits in a string). The document
# describes the bare ids: a URL's collection depends on the field.
REFERENCE_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
        {"type": "string", "pattern": "^\\s*[1-9][0-9]{0,8}/*\\s*$"},
    ]
}
REFERENCES_SCHEMA: dict[str, Any] = {"type": "array", "items": REFERENCE_SCHEMA}
NULL: dict[str, Any] = {"type": "null"}
# A text with something besides spaces in it (and no U+0000, which no body may carry).
NOT_BLANK = r"^[^\x00]*[^\s\x00][^\x00]*$"
# An optional reference may be empty (none).
OPTIONAL_REFERENCE_SCHEMA: dict[str, Any] = {
    "anyOf": [*REFERENCE_SCHEMA["anyOf"], {"type": "string", "maxLength": 0}, {"type": "null"}]
}
# Not strict: a JSON number such as 12.0 is the id 12.
Reference = Annotated[str | Annotated[int, Strict(False)], WithJsonSchema(REFERENCE_SCHEMA)]
JsonObject = dict[str, Any]

Url = Annotated[str, WithJsonSchema({"type": "string", "format": "uri"})]
# A URL, or "" once the object it named is gone (an email's deleted inbox: the SDK needs a string).
UrlOrEmpty = Annotated[
    str, WithJsonSchema({"type": "string", "anyOf": [{"format": "uri"}, {"maxLength": 0}]})
]
OptionalUrl = Annotated[str | None, WithJsonSchema({"type": ["string", "null"], "format": "uri"})]
Timestamp = Annotated[
    str | None, WithJsonSchema({"type": ["string", "null"], "format": "date-time"})
]
