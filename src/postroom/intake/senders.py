"""Inbox sender filters: `inbox.filters.allowed_senders` / `denied_senders` with `*` and `?`;
and which senders are mail systems (bounces, list managers) that no notice may answer.

`*` matches any run of characters, `?` exactly one; everything else is literal (no `[...]`
classes, unlike fnmatch). Matching ignores case, as mail addresses are compared in practice. A
denied sender is refused even when also allowed; an empty allow-list allows everyone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

SENDER_DENIED = "sender_denied"
SENDER_NOT_ALLOWED = "sender_not_allowed"


@lru_cache(maxsize=1024)
def _pattern(wildcard: str) -> re.Pattern[str]:
    parts = (".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in wildcard)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def matches(address: str, wildcards: Iterable[Any]) -> bool:
    return any(
        isinstance(w, str) and w.strip() and _pattern(w.strip()).fullmatch(address)
        for w in wildcards
    )


def filter_reason(filters: Mapping[str, Any] | None, sender: str) -> str | None:
    """Why mail from `sender` is filtered by an inbox (`sender_denied`/`sender_not_allowed`)."""
    filters = filters if isinstance(filters, Mapping) else {}
    denied = filters.get("denied_senders") or []
    allowed = filters.get("allowed_senders") or []
    address = sender.strip()
    if isinstance(denied, list) and matches(address, denied):
        return SENDER_DENIED
    if isinstance(allowed, list) and allowed and not matches(address, allowed):
        return SENDER_NOT_ALLOWED
    return None


# Local parts of mail systems and robots (RFC 3834 §2): never answered with a notice.
_ROBOT_NAMES = frozenset(
    {
        "mailer-daemon",
        "postmaster",
        "double-bounce",
        "listserv",
        "majordomo",
        "noreply",
        "no-reply",
        "donotreply",
        "do-not-reply",
    }
)
_ROBOT_PATTERN = re.compile(r"^(bounces?([-+=.].*)?|owner-.+|.+-(request|bounces?|owner))$")


def is_bounce_address(address: str) -> bool:
    """A null, bounce, MAILER-DAEMON, postmaster or list-robot style address."""
    local = address.strip().strip("<>").rpartition("@")[0].lower()
    if not local:
        return True
    return local in _ROBOT_NAMES or bool(_ROBOT_PATTERN.match(local))
