"""DNS for the mail authentication checks: one resolver built from `[smtp] dns_servers`.

`smtp.dns_servers` names the servers (`host` or `host:port`, `[v6]:port`, comma separated);
empty uses the system resolver (/etc/resolv.conf). Every lookup is bounded by
`smtp.dns_timeout_s`. The lookups are blocking: they run in the worker threads of the checks
(`intake.mail_auth`), never on the event loop.

A lookup that finds nothing (NXDOMAIN, no record of that type) returns an empty list; one that
fails (timeout, SERVFAIL, no server answering) raises `DnsTemporaryError`, which the checks turn
into a `temperror` verdict.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from typing import Any

import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
import spf

from postroom.config.sections import dns_server_addresses

# Positive and negative answers kept per resolver.
CACHE_ENTRIES = 4096


class DnsTemporaryError(Exception):
    """A DNS lookup failed in a way that may pass later (timeout, SERVFAIL, unreachable)."""


def build_resolver(servers: str, timeout_s: float) -> dns.resolver.Resolver:
    """The resolver of the checks: the servers named (or the system's), bounded by timeout_s."""
    entries = dns_server_addresses(servers)
    if entries:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(h, port) for h, port in entries]
    else:
        resolver = dns.resolver.Resolver()
    resolver.timeout = timeout_s
    resolver.lifetime = timeout_s
    resolver.cache = dns.resolver.LRUCache(CACHE_ENTRIES)
    return resolver


def txt_strings(resolver: dns.resolver.Resolver, name: str) -> list[bytes]:
    """Each TXT record of `name`, its strings joined; [] when there is none."""
    return [b"".join(r.strings) for r in _answer(resolver, name, "TXT")]


def _answer(resolver: dns.resolver.Resolver, name: str, qtype: str) -> Iterator[Any]:
    try:
        answer = resolver.resolve(name, qtype, search=False, raise_on_no_answer=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return iter(())
    except (dns.exception.Timeout, dns.resolver.NoNameservers, dns.resolver.LifetimeTimeout) as e:
        raise DnsTemporaryError(f"{qtype} {name}: {type(e).__name__}") from e
    except dns.exception.DNSException as e:  # a malformed name or answer: nothing usable
        if isinstance(e, dns.name.NameTooLong | dns.name.LabelTooLong | dns.name.EmptyLabel):
            return iter(())
        raise DnsTemporaryError(f"{qtype} {name}: {type(e).__name__}") from e
    return iter(answer.rrset or ())


def dkim_txt(resolver: dns.resolver.Resolver) -> Any:
    """dkimpy's `dnsfunc`: the key record of a selector (None when there is none)."""

    def lookup(name: bytes | str, timeout: float = 5) -> bytes | None:
        text = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        records = txt_strings(resolver, text)
        return records[0] if records else None

    return lookup


# pyspf looks names up through its module function `spf.DNSLookup`; it is pointed once at
# `_spf_lookup`, which uses the resolver of the check running in this thread's context.
_SPF_RESOLVER: contextvars.ContextVar[dns.resolver.Resolver | None] = contextvars.ContextVar(
    "postroom_spf_resolver", default=None
)
_SPF_TYPES = ("A", "AAAA", "MX", "PTR", "TXT")


def _spf_lookup(name: str, qtype: str, strict: Any = True, timeout: float = 20) -> list[Any]:
    resolver = _SPF_RESOLVER.get()
    if resolver is None:
        resolver = dns.resolver.get_default_resolver()
    if qtype not in _SPF_TYPES:  # the obsolete SPF record type is not looked up
        return []
    found: list[Any] = []
    try:
        for rdata in _answer(resolver, name, qtype):
            if qtype in ("A", "AAAA"):
                found.append(((name, qtype), rdata.address))
            elif qtype == "MX":
                found.append(((name, qtype), (rdata.preference, rdata.exchange)))
            elif qtype == "PTR":
                found.append(((name, qtype), rdata.target.to_text(True)))
            else:
                found.append(((name, qtype), list(rdata.strings)))
    except DnsTemporaryError as e:
        raise spf.TempError(f"DNS {e}") from e
    return found


spf.DNSLookup = _spf_lookup


def spf_check(
    resolver: dns.resolver.Resolver, ip: str, mail_from: str, helo: str, timeout_s: float
) -> str:
    """The SPF result (`pass`, `fail`, `softfail`, `neutral`, `none`, `temperror`, `permerror`)
    for a client address and envelope sender (postmaster@helo for the null sender)."""
    token = _SPF_RESOLVER.set(resolver)
    try:
        result, _code, _text = spf.query(
            i=ip, s=mail_from, h=helo or "unknown", timeout=timeout_s, querytime=timeout_s
        ).check()
    except spf.TempError:
        return "temperror"
    except spf.SPFError:  # a malformed address or name
        return "permerror"
    finally:
        _SPF_RESOLVER.reset(token)
    result = str(result).lower()
    if result in ("pass", "fail", "softfail", "neutral", "none", "temperror", "permerror"):
        return result
    return "permerror" if result == "ambiguous" else "none"
