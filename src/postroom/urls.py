"""Absolute object URLs (`<base>/api/v1/<collection>/<id>`, no trailing slash) and their parsing."""

from __future__ import annotations

from typing import Any

from postroom.errors import BadRequest

API_PREFIX = "/api/v1"
# Ids are INTEGER columns: a larger number names no object (and PostgreSQL would reject it).
MAX_ID = 2**31 - 1


def digits(text: str) -> bool:
    """Whether `text` is an id as written in a URL: ASCII digits only (`str.isdigit` would take
    `²` and `٣` too, which `int` then refuses or reads as 3)."""
    return text.isascii() and text.isdigit()


class Urls:
    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/")
        self.api = self.base + API_PREFIX

    def of(self, collection: str, object_id: int | None) -> str | None:
        if object_id is None:
            return None
        return f"{self.api}/{collection}/{object_id}"

    def to(self, collection: str, object_id: int) -> str:
        return f"{self.api}/{collection}/{object_id}"

    def many(self, collection: str, ids: list[int]) -> list[str]:
        return [f"{self.api}/{collection}/{i}" for i in ids]

    def id_from(self, value: Any, collection: str, field: str) -> int:
        """The id of a reference given as URL (or bare id); 400 naming `field` otherwise."""
        found = self._parse_id(value, collection)
        if found is not None and found > MAX_ID:
            raise BadRequest(f"{field}: there is no {collection}/{found}.")
        if found is not None:
            return found
        raise BadRequest(
            f"{field}: expected a URL of {collection} (…/{collection}/<id>), got {value!r}."
        )

    @staticmethod
    def _parse_id(value: Any, collection: str) -> int | None:
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # JSON 12.0 is the number 12
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        if isinstance(value, str):
            text = value.strip().rstrip("/")
            tail = text.rsplit("/", 2)
            if digits(text):
                return int(text)
            if len(tail) == 3 and tail[1] == collection and digits(tail[2]):
                return int(tail[2])
        return None

    def optional_id_from(self, value: Any, collection: str, field: str) -> int | None:
        return None if value is None or value == "" else self.id_from(value, collection, field)

    def ids_from(self, values: Any, collection: str, field: str) -> list[int]:
        if not isinstance(values, list):
            raise BadRequest(f"{field}: expected a list of {collection} URLs.")
        return [self.id_from(v, collection, field) for v in values]
