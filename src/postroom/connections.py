"""Open-connection caps per client address and in total, and the file descriptors they need.

Both listeners count their open connections in a `ConnectionGate`: `admit(address)` when a
connection is accepted (None, or the scope that refused it: "client" or "total") and
`release(address)` when it closes. The edges answer a refusal in their own protocol (HTTP 503,
SMTP `421 4.7.0`) and close; one address holding many idle sockets then cannot starve the others.

Every open connection is a file descriptor. At start `raise_fd_limit` lifts the process's soft
`RLIMIT_NOFILE` to its hard limit, and `fit_caps` checks the configured totals against it: a
total of 0 is sized from the limit, a total that does not fit is lowered (with a warning), and
`FD_RESERVE` descriptors stay for the database pool, blob files, logs and listening sockets.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from postroom import metrics

log = logging.getLogger("postroom.connections")

# Descriptors kept out of the connection caps: database pool, blob and spool files, logs, the
# listening sockets, the outbound relay, pipeline work.
FD_RESERVE = 256
# The smallest cap a listener gets however low the descriptor limit is.
MIN_TOTAL = 16
# Used when the hard limit is unlimited (and setting it fails, as on macOS).
_FALLBACK_LIMIT = 10240


class ConnectionGate:
    """Counts one listener's open connections, per client address and in total."""

    def __init__(self, protocol: str, max_total: int, max_per_client: int) -> None:
        self.protocol = protocol
        self.max_total = max_total
        self.max_per_client = max_per_client
        self.open = 0
        self._by_client: dict[str, int] = {}

    def admit(self, address: str) -> str | None:
        """Count a new connection from `address`; or the scope whose cap refuses it."""
        held = self._by_client.get(address, 0)
        scope = None
        if self.open >= self.max_total:
            scope = "total"
        elif held >= self.max_per_client:
            scope = "client"
        if scope is not None:
            metrics.CONNECTIONS_REFUSED.labels(protocol=self.protocol, scope=scope).inc()
            return scope
        self._by_client[address] = held + 1
        self.open += 1
        metrics.CONNECTIONS_OPEN.labels(protocol=self.protocol).inc()
        return None

    def release(self, address: str) -> None:
        """Forget one connection `admit` counted."""
        held = self._by_client.get(address, 0)
        if held <= 0:
            return
        if held == 1:
            del self._by_client[address]
        else:
            self._by_client[address] = held - 1
        self.open -= 1
        metrics.CONNECTIONS_OPEN.labels(protocol=self.protocol).dec()

    def held_by(self, address: str) -> int:
        return self._by_client.get(address, 0)


def raise_fd_limit() -> int:
    """Lift the soft limit of open files to the hard limit; the soft limit now in force."""
    try:
        import resource
    except ImportError:  # not a POSIX system: nothing to raise
        return _FALLBACK_LIMIT
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    targets = [hard] if hard != resource.RLIM_INFINITY else []
    targets.append(_FALLBACK_LIMIT)
    for target in targets:
        if soft != resource.RLIM_INFINITY and target <= soft:
            break
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            continue
        log.info("raised the open file limit from %s to %s", soft, target)
        return target
    return soft if soft != resource.RLIM_INFINITY else _FALLBACK_LIMIT


@dataclass(frozen=True)
class Caps:
    http_total: int
    smtp_total: int


def fit_caps(fd_limit: int, http_total: int, smtp_total: int, *, smtp_enabled: bool) -> Caps:
    """The connection totals to use under `fd_limit` (0 = sized from the limit); logs a
    warning when a configured total had to be lowered."""
    budget = max(fd_limit - FD_RESERVE, 2 * MIN_TOTAL)
    smtp_share = budget // 4 if smtp_enabled else 0
    http = http_total or budget - smtp_share
    smtp = (smtp_total or smtp_share) if smtp_enabled else 0
    if http + smtp > budget:
        scale = budget / (http + smtp)
        fitted_http = max(MIN_TOTAL, int(http * scale))
        fitted_smtp = max(MIN_TOTAL, int(smtp * scale)) if smtp_enabled else 0
        log.warning(
            "http.max_connections=%s and smtp.max_connections=%s do not fit the open file "
            "limit of %s (%s kept for files and the database): using %s and %s; raise the "
            "limit (ulimit -n / LimitNOFILE) to allow more",
            http,
            smtp,
            fd_limit,
            FD_RESERVE,
            fitted_http,
            fitted_smtp,
        )
        http, smtp = fitted_http, fitted_smtp
    return Caps(http_total=http, smtp_total=smtp)
