"""RCPT probing guard: a client that tries unknown recipients is slowed down, then dropped.

Each unknown recipient (550 5.1.1) counts against the connection and against the client
address for `smtp.unknown_recipients_window_s`. Its reply is held back (tarpit) for
`smtp.unknown_recipient_delay_s`, doubling with each unknown recipient of that address up to
`smtp.unknown_recipient_max_delay_s`. Once the connection or the address has reached
`smtp.max_unknown_recipients`, every further RCPT of it — known or not, so that probing learns
nothing more — is answered `421 4.7.0` and the connection is closed, until the address's
unknown recipients have left the window. Other client addresses are not affected.

Counts live in this process's memory, like the other SMTP limits.
"""

from __future__ import annotations

from postroom.config import SmtpSettings
from postroom.ratelimit import SlidingWindows


class ProbeGuard:
    def __init__(self, settings: SmtpSettings) -> None:
        self.limit = settings.max_unknown_recipients
        self.base_delay_s = settings.unknown_recipient_delay_s
        self.max_delay_s = settings.unknown_recipient_max_delay_s
        self._by_address = SlidingWindows(self.limit, settings.unknown_recipients_window_s)

    def blocked(self, address: str, on_connection: int) -> bool:
        """True when this client is past its unknown recipients (answer 421 and close)."""
        return on_connection >= self.limit or self._by_address.count(address) >= self.limit

    def unknown_recipient(self, address: str) -> float:
        """Count one unknown recipient of `address`; the seconds its reply is held back."""
        count = self._by_address.add(address)
        if self.base_delay_s <= 0:
            return 0.0
        return float(min(self.base_delay_s * 2.0 ** min(count - 1, 30), self.max_delay_s))
