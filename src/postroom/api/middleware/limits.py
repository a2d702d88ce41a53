"""Rate limits at the HTTP edge (`ratelimit.RateLimits` holds the buckets).

`address_rate_limit` runs before authentication: the client address's bucket (failed passwords
are limited where they are checked, `domain.auth`, before the hash runs). After authentication, `user_rate_limit` charges the user the request acts as. The client address is
the peer, or the client a trusted proxy (`http.forwarded_allow_ips`) names in X-Forwarded-For.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable

from aiohttp import web

from postroom.api.keys import ACTOR, runtime

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Paths that never count against a limit: load balancers poll health, often from one address.
EXEMPT_PATHS = frozenset({"/api/v1/health"})
_PROXIES: web.AppKey[tuple[Network, ...]] = web.AppKey("trusted_proxies")


def trust_proxies(app: web.Application, spec: str) -> None:
    """Remember the proxies (a comma list of addresses/networks) whose X-Forwarded-For counts."""
    app[_PROXIES] = tuple(
        ipaddress.ip_network(p.strip(), strict=False) for p in spec.split(",") if p.strip()
    )


def _in_networks(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(request: web.Request) -> str:
    """The peer address, or the client a trusted proxy names in X-Forwarded-For."""
    remote = request.remote or "unknown"
    proxies = request.app.get(_PROXIES, ())
    if not proxies or not _in_networks(remote, proxies):
        return remote
    # The rightmost entry not added by one of our proxies is the client (the left ones can be
    # forged by the client itself).
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",")]
    for hop in reversed([h for h in hops if h]):
        if not _in_networks(hop, proxies):
            return hop
    return remote


@web.middleware
async def address_rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Before authentication: the per-address bucket."""
    if request.path not in EXEMPT_PATHS:
        runtime(request).rate_limits.check_address(client_address(request))
    return await handler(request)


@web.middleware
async def user_rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    """After authentication: the bucket of the user the request acts as."""
    actor = request.get(ACTOR)
    if actor is not None and request.path not in EXEMPT_PATHS:
        runtime(request).rate_limits.check_user(actor.user_id)
    return await handler(request)
