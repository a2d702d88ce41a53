"""What a hook listens to and what it calls: the reference's events and actions, and the shapes
of a hook's `config` (a webhook's URL, a function's runtime and code)."""

from __future__ import annotations

from postroom.domain.listing import comma_list
from postroom.errors import BadRequest
from postroom.fields import JsonObject

# Every `event.action` of the reference (and of the official SDK), by event.
EVENT_ACTIONS: dict[str, tuple[str, ...]] = {
    "annotation_status": ("changed",),
    "annotation_content": (
        "initialize",
        "started",
        "user_update",
        "updated",
        "confirm",
        "export",
    ),
    "upload": ("created",),
    "email": ("received",),
    "invocation": ("scheduled", "manual", "interface"),
}
HOOK_TYPES = ("webhook", "function")
FUNCTION_RUNTIMES = ("nodejs22.x", "python3.12")
EVENT_PATTERN = "|".join(
    [*(f"{e}\\.{a}" for e, actions in EVENT_ACTIONS.items() for a in actions), *EVENT_ACTIONS]
)


# What `check_config` takes: a webhook's http(s) URL, a function's runtime and code; or neither
# `type` nor `config` sent (a change of other fields).
CONFIG_SHAPES = [
    {
        "required": ["config"],
        "properties": {
            "type": {"const": "webhook"},
            "config": {
                "type": "object",
                "required": ["url"],
                "properties": {"url": {"type": "string", "pattern": "^https?://"}},
            },
        },
    },
    {
        "required": ["type", "config"],
        "properties": {
            "type": {"const": "function"},
            "config": {
                "type": "object",
                "required": ["runtime", "code"],
                "properties": {
                    "runtime": {"enum": list(FUNCTION_RUNTIMES)},
                    "code": {"type": "string"},
                },
            },
        },
    },
    {"properties": {"type": False, "config": False}},
]


def normalize_events(events: list[str]) -> list[str]:
    """Each event checked, whole events expanded to their actions, duplicates dropped."""
    found: list[str] = []
    for event in events:
        name, _, action = event.partition(".")
        actions = EVENT_ACTIONS.get(name)
        if actions is None or (action and action not in actions):
            raise BadRequest(f"events: unknown event {event!r}.")
        found += [f"{name}.{a}" for a in ((action,) if action else actions)]
    return list(dict.fromkeys(found))


def check_config(kind: str, config: JsonObject) -> None:
    """A webhook needs an http(s) URL to call; a function a known runtime and its code."""
    if kind == "webhook":
        url = config.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise BadRequest("config.url: a webhook needs an http(s) URL to call.")
    else:
        if config.get("runtime") not in FUNCTION_RUNTIMES:
            raise BadRequest(f"config.runtime: must be one of {', '.join(FUNCTION_RUNTIMES)}.")
        if not isinstance(config.get("code"), str):
            raise BadRequest("config.code: a function needs its source code as a string.")


EVENTS_SCHEMA = {"type": "string", "pattern": comma_list(f"(?:{EVENT_PATTERN})")}
