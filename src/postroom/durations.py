"""Durations in the formats of the Rossum API: Django's '[DD] [[HH:]MM:]ss[.uuuuuu]' and 'HH:MM:SS'.

Shared by queue validation (`document_lifetime`, `session_timeout`, `delete_after`) and the
background duties that act on them.
"""

from __future__ import annotations

import re
from datetime import timedelta

# Django's DurationField text form, which Rossum accepts: '[DD] [[HH:]MM:]ss[.uuuuuu]'.
_DURATION_RE = re.compile(
    r"^(?:(?P<days>[0-9]+) (?:days?, )?)?"
    r"(?:(?P<hours>[0-9]+):(?=[0-9]+:[0-9]+))?"
    r"(?:(?P<minutes>[0-9]+):)?"
    r"(?P<seconds>[0-9]+)"
    r"(?:[.,](?P<micro>[0-9]{1,6}))?$"
)
_HMS_RE = re.compile(r"^(?P<hours>[0-9]{1,4}):(?P<minutes>[0-5][0-9]):(?P<seconds>[0-5][0-9])$")
_MAX_DURATION = timedelta(days=36500)
# A JSON-schema pattern for what `parse_duration` takes (a part of it: days up to 9999).
DURATION_PATTERN = (
    r"^\s*(?:[0-9]{1,4} (?:days?, )?)?(?:[0-9]{1,2}:)?(?:[0-9]{1,2}:)?[0-9]{1,2}"
    r"(?:[.,][0-9]{1,6})?\s*$"
)


def parse_duration(text: str) -> timedelta | None:
    """'[DD] [[HH:]MM:]ss[.uuuuuu]' → timedelta; None when the text is not in that format."""
    match = _DURATION_RE.match(text.strip())
    if match is None:
        return None
    parts = match.groupdict()
    micro = (parts["micro"] or "0").ljust(6, "0")
    try:
        value = timedelta(
            days=int(parts["days"] or 0),
            hours=int(parts["hours"] or 0),
            minutes=int(parts["minutes"] or 0),
            seconds=int(parts["seconds"]),
            microseconds=int(micro),
        )
    except (OverflowError, ValueError):  # ValueError: more digits than int() reads
        return None
    return value if value <= _MAX_DURATION else None


def format_duration(value: timedelta) -> str:
    """Django's duration_string: 'HH:MM:SS', with 'D ' before and '.uuuuuu' after when needed."""
    minutes, seconds = divmod(value.seconds, 60)
    hours, minutes = divmod(minutes, 60)
    text = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    if value.days:
        text = f"{value.days} {text}"
    if value.microseconds:
        text += f".{value.microseconds:06d}"
    return text


def parse_hms(text: str) -> timedelta | None:
    match = _HMS_RE.match(text.strip())
    if match is None:
        return None
    return timedelta(**{k: int(v) for k, v in match.groupdict().items()})
