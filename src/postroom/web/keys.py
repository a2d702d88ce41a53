"""Typed application and request state keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from postroom.permissions import Actor
    from postroom.services import Services

SERVICES: web.AppKey[Services] = web.AppKey("services")
ACTOR: web.RequestKey[Actor] = web.RequestKey("actor")


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


def actor(request: web.Request) -> Actor:
    return request[ACTOR]
