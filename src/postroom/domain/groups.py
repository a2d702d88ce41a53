"""User roles (`/groups`): the fixed list of `access.GROUPS`, read-only and the same for everyone."""

from __future__ import annotations

from collections.abc import Mapping

from typing_extensions import TypedDict

from postroom.domain.access import GROUPS
from postroom.domain.listing import Filter, Listing, Page, PageRequest, ordering_keys
from postroom.errors import NotFound
from postroom.fields import Url
from postroom.urls import Urls

# Declared like a table's listing; applied in memory to the fixed list.
LISTING = Listing(filters=(Filter("name", kind="strs"),), ordering={"id": None, "name": None})


class GroupJson(TypedDict):
    id: int
    url: Url
    name: str


def _render(urls: Urls, group_id: int) -> GroupJson:
    return {"id": group_id, "url": urls.to("groups", group_id), "name": GROUPS[group_id - 1][0]}


def list_groups(urls: Urls, query: Mapping[str, str], page: PageRequest) -> Page[GroupJson]:
    ids = list(range(1, len(GROUPS) + 1))
    names = {n for n in query.get("name", "").split(",") if n}
    if names:
        ids = [i for i in ids if GROUPS[i - 1][0] in names]
    for name, descending in reversed(ordering_keys(query.get("ordering"), LISTING.ordering)):
        ids.sort(key=(lambda i: GROUPS[i - 1][0]) if name == "name" else None, reverse=descending)
    chosen = ids[page.offset : page.offset + page.size]
    return Page([_render(urls, i) for i in chosen], len(ids), page)


def retrieve_group(urls: Urls, group_id: int) -> GroupJson:
    if not 1 <= group_id <= len(GROUPS):
        raise NotFound(f"Group {group_id} not found.")
    return _render(urls, group_id)
