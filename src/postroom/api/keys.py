"""Typed application and request state keys of the aiohttp application."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from postroom.domain.access import Actor
    from postroom.intake.service import Intake
    from postroom.runtime import Runtime

RUNTIME: web.AppKey[Runtime] = web.AppKey("runtime")
INTAKE: web.AppKey[Intake] = web.AppKey("intake")
ACTOR: web.RequestKey[Actor] = web.RequestKey("actor")
# The error `code` of a 4xx/5xx answer, for its access-log line.
ERROR_CODE: web.ResponseKey[str] = web.ResponseKey("error_code")
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id")


def runtime(request: web.Request) -> Runtime:
    return request.app[RUNTIME]


def actor(request: web.Request) -> Actor:
    return request[ACTOR]


def intake(request: web.Request) -> Intake:
    return request.app[INTAKE]
