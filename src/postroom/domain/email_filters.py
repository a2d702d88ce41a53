"""The filters of `GET /emails` that are more than a column compared with a value."""

from __future__ import annotations

import sqlalchemy as sa

from postroom.db import tables as t
from postroom.domain.listing import Filter, any_case
from postroom.errors import BadRequest

E = t.emails.c
_YES, _NO = ("true", "1", "yes"), ("false", "0", "no")

YES_OR_NO_SCHEMA = {
    "type": "string",
    "pattern": f"^\\s*(?:{any_case('true', 'yes', 'false', 'no')}|1|0)\\s*$|^$",
}


def _wanted(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value not in _YES + _NO:
        raise BadRequest(f"{name}: expected true or false, got {raw!r}.")
    return value in _YES


def kept_documents() -> sa.Exists:
    """The e-mail has a document kept for import (not one kept only for its attachment status)."""
    d = t.documents.c
    return sa.exists().where(d.email_id == E.id, d.attachment_status.is_(None))


def has_documents(raw: str) -> sa.ColumnElement[bool]:
    return kept_documents() if _wanted("has_documents", raw) else ~kept_documents()


def has_message_id_conflict(raw: str) -> sa.ColumnElement[bool]:
    conflict = E.message_id_conflict_id
    return conflict.is_not(None) if _wanted("has_message_id_conflict", raw) else conflict.is_(None)


def with_documents(raw: str) -> sa.ColumnElement[bool]:
    d = t.documents.c
    return sa.exists().where(d.email_id == E.id, Filter("documents", d.id).clause(raw))


def address_in(raw: str) -> sa.ColumnElement[bool]:
    # JSON lists of {"email", "name"}; both dialects render a string value in double quotes.
    needle = f'"{raw.strip().lower()}"'
    return sa.func.lower(sa.cast(E.to, sa.Text)).contains(needle, autoescape=True)


def from_email(raw: str) -> sa.ColumnElement[bool]:
    return sa.func.lower(E.from_email) == raw.strip().lower()
