"""A local DNS server (dnslib, UDP on 127.0.0.1, a free port) so no test needs the internet.

Every test service resolves through one shared server (`shared_dns()`, set as `smtp.dns_servers`
by `tests.conftest.make_settings`). Names without records answer NXDOMAIN at once. Tests add
the records they need under names of their own (`unique_domain()`), and can make a domain fail
(SERVFAIL). The default zone lets the suite's usual sender pass SPF: `example.com` authorizes
127.0.0.0/8, so `supplier@example.com` mailing from the loopback is an authenticated author.

`signed()` DKIM-signs a message with dkimpy under a key whose public half this server serves.
"""

from __future__ import annotations

import base64
import socket
import threading
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from dnslib import QTYPE, RCODE, RR, TXT
from dnslib.server import BaseResolver, DNSLogger, DNSServer

DEFAULT_ZONE = {("example.com", "TXT"): ["v=spf1 ip4:127.0.0.0/8 -all"]}


class LocalDns(BaseResolver):  # type: ignore[misc]
    def __init__(self) -> None:
        self.records: dict[tuple[str, str], list[str]] = dict(DEFAULT_ZONE)
        self.failing: set[str] = set()
        self._lock = threading.Lock()
        self._server: Any = None
        self.port = 0

    def start(self) -> LocalDns:
        quiet = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", logf=_drop)
        self._server = DNSServer(self, address="127.0.0.1", port=0, logger=quiet)
        self.port = self._server.server.server_address[1]
        self._server.start_thread()
        return self

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def txt(self, name: str, value: str) -> None:
        with self._lock:
            self.records.setdefault((name.lower(), "TXT"), []).append(value)

    def fail(self, domain: str) -> None:
        """Answer SERVFAIL for `domain` and every name under it."""
        with self._lock:
            self.failing.add(domain.lower())

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        with self._lock:
            if any(name == d or name.endswith("." + d) for d in self.failing):
                reply.header.rcode = RCODE.SERVFAIL
                return reply
            values = list(self.records.get((name, qtype), []))
            known = any(key[0] == name for key in self.records)
        for value in values:
            raw = value.encode()
            chunks = [raw[i : i + 255] for i in range(0, len(raw), 255)]
            reply.add_answer(RR(name, QTYPE.TXT, rdata=TXT(chunks), ttl=1))
        if not values and not known:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


def _drop(_line: str) -> None:
    return None


_SHARED: LocalDns | None = None
_SHARED_LOCK = threading.Lock()


def shared_dns() -> LocalDns:
    """The process-wide test DNS server (started on first use, a daemon thread)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = LocalDns().start()
        return _SHARED


def unique_domain(label: str = "sender") -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}.test"


def black_hole() -> tuple[socket.socket, str]:
    """A UDP socket that never answers: a DNS server that times out. Close it after the test."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock, f"127.0.0.1:{sock.getsockname()[1]}"


@dataclass(frozen=True)
class DkimKey:
    domain: str
    selector: str
    private_pem: bytes


def publish_dkim_key(dns: LocalDns, domain: str, selector: str = "s1") -> DkimKey:
    """A fresh RSA key whose public half `dns` serves at <selector>._domainkey.<domain>."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    dns.txt(
        f"{selector}._domainkey.{domain}",
        f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}",
    )
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return DkimKey(domain, selector, private)


def signed(msg: EmailMessage, key: DkimKey) -> bytes:
    """The message's bytes with a DKIM-Signature of `key` prepended."""
    raw = msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    signature = dkim.sign(
        raw,
        key.selector.encode(),
        key.domain.encode(),
        key.private_pem,
        include_headers=[b"from", b"to", b"subject", b"message-id", b"date"],
    )
    return bytes(signature) + raw
