"""The named queue templates of `POST /queues/from_template`: a schema plus queue defaults each.

Each template is one JSON file `templates/queue_template_*.json` shipped with the package:
`template_name` (what clients send), `aliases` (other names Rossum's documentation uses for the
same thing), `queue` (column defaults such as locale and settings) and `schema` (name, content).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

PREFIX = "queue_template_"


def load_template(name: str) -> dict[str, Any]:
    """A JSON file `templates/<name>.json` shipped with the package (e.g. `default_schema`)."""
    text = resources.files("postroom.templates").joinpath(f"{name}.json").read_text("utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class QueueTemplate:
    name: str
    aliases: tuple[str, ...]
    queue: dict[str, Any]
    schema_name: str
    schema_content: list[Any]


@cache
def queue_templates() -> dict[str, QueueTemplate]:
    """Every shipped template by lower-cased name and alias (names match case-insensitively)."""
    found: dict[str, QueueTemplate] = {}
    for entry in resources.files("postroom.templates").iterdir():
        if not (entry.name.startswith(PREFIX) and entry.name.endswith(".json")):
            continue
        data = json.loads(entry.read_text("utf-8"))
        template = QueueTemplate(
            name=data["template_name"],
            aliases=tuple(data.get("aliases", ())),
            queue=data.get("queue", {}),
            schema_name=data["schema"]["name"],
            schema_content=data["schema"]["content"],
        )
        for name in (template.name, *template.aliases):
            found[name.lower()] = template
    return found


def template_names() -> list[str]:
    return sorted({t.name for t in queue_templates().values()})


def find_template(name: str) -> QueueTemplate | None:
    return queue_templates().get(name.strip().lower())
