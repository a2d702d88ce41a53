"""Pure parts of the sender guards: bounce-style addresses, the exact per-hour window, domain
alignment, and which inboxes a DMARC verdict admits."""

from __future__ import annotations

import pytest

from postroom.config.sections import dns_server_addresses
from postroom.intake.mail_auth import (
    MailDeferred,
    MailRefused,
    Verdict,
    admitted,
    clean_domain,
    from_domain,
    organizational,
)
from postroom.intake.recipients import Target
from postroom.intake.senders import is_bounce_address
from postroom.ratelimit import SlidingWindows


@pytest.mark.parametrize(
    "address, bounce",
    [
        ("MAILER-DAEMON@example.com", True),
        ("postmaster@example.com", True),
        ("bounces+abc=x@lists.example.com", True),
        ("bounce-123@mail.example.com", True),
        ("announce-request@lists.example.com", True),
        ("owner-list@example.com", True),
        ("no-reply@example.com", True),
        ("", True),
        ("billing@example.com", False),
        ("bouncer.jones@example.com", False),
    ],
)
def test_bounce_addresses(address: str, bounce: bool) -> None:
    assert is_bounce_address(address) is bounce


def test_sliding_window_allows_exactly_the_limit_per_window() -> None:
    now = [0.0]
    window = SlidingWindows(3, 3600.0, clock=lambda: now[0])
    assert [window.allow("a") for _ in range(4)] == [True, True, True, False]
    assert window.allow("b")
    now[0] = 3599.0
    assert not window.allow("a")
    now[0] = 3600.5
    assert window.allow("a")


def test_organizational_domains_and_cleaning() -> None:
    assert organizational("mail.example.co.uk") == "example.co.uk"
    assert organizational("a.b.sender.test") == "sender.test"
    assert clean_domain("Example.COM.") == "example.com"
    assert clean_domain("bad domain") == ""


def test_from_domain_needs_exactly_one() -> None:
    assert from_domain(b"From: A <a@Example.com>\r\n\r\nbody") == "example.com"
    assert from_domain(b"From: a@x.test, b@y.test\r\n\r\n") == ""
    assert from_domain(b"From: a@x.test\r\nFrom: a@x.test\r\n\r\n") == ""
    assert from_domain(b"Subject: none\r\n\r\n") == ""


def _target(inbox_id: int, action: str) -> Target:
    return Target(f"i{inbox_id}@localhost", inbox_id, f"i{inbox_id}@localhost", 1, 1, action)


def _verdict(dmarc: str) -> Verdict:
    return Verdict("none", "", (), dmarc, "x.test", "reject")


def test_dmarc_actions() -> None:
    accept, drop = _target(1, "accept"), _target(2, "drop")
    assert admitted(_verdict("pass"), [drop]) == [drop]
    assert admitted(_verdict("none"), [drop]) == [drop]
    assert admitted(_verdict("fail"), [accept, drop]) == [accept]
    with pytest.raises(MailRefused):
        admitted(_verdict("fail"), [drop])
    with pytest.raises(MailDeferred):
        admitted(_verdict("temperror"), [accept, drop])
    assert admitted(_verdict("temperror"), [accept]) == [accept]


def test_dns_server_addresses() -> None:
    assert dns_server_addresses("") == []
    assert dns_server_addresses("127.0.0.1:5353, [::1]:53,10.1.2.3") == [
        ("127.0.0.1", 5353),
        ("::1", 53),
        ("10.1.2.3", 53),
    ]
    for bad in ("resolver.example", "127.0.0.1:0", "127.0.0.1:x"):
        with pytest.raises(ValueError):
            dns_server_addresses(bad)
