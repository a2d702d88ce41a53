"""Mail authentication: SPF, DKIM and DMARC verdicts for an incoming message, and what an
inbox's `dmarc_check_action` makes of them.

- SPF (pyspf): the connecting address against the envelope sender's domain (the HELO name for
  the null sender). A message posted to `POST /emails/import` has no connecting address:
  `spf=none`.
- DKIM (dkimpy): every `DKIM-Signature` (at most MAX_SIGNATURES), each with its `d=` domain.
- DMARC: the `_dmarc` TXT record of the `From:` domain, else of its organizational domain
  (public suffix list). It passes when SPF passes for a domain aligned with the `From:` domain,
  or a DKIM signature does (relaxed alignment: same organizational domain; strict with
  `aspf=s` / `adkim=s`). Without a record the result is `none`. A message without exactly one
  `From:` domain fails. When nothing passes and a lookup failed (timeout, SERVFAIL) the result is
  `temperror`.

The verdict is written on the email as an `Authentication-Results` text (RFC 8601). The checks
are blocking library calls: they run in a small pool of worker threads, bounded as a whole by
`smtp.authentication_timeout_s` (then every result is `temperror`).

`dmarc_check_action` of each recipient inbox: `accept` records the verdict and imports; `drop`
leaves the inbox out when DMARC fails (whatever the domain's `p=`: the inbox owner asked for it).
When every inbox drops the message it is refused (`MailRefused`: 550 5.7.1); when DMARC is a
`temperror` and an inbox would drop on a fail, the whole message is deferred (`MailDeferred`:
451 4.7.0) so the sender retries and nothing is lost.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import functools
import logging
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32

import dkim
import dns.resolver
from dkim.util import parse_tag_value
from publicsuffixlist import PublicSuffixList

from postroom.config import SmtpSettings
from postroom.intake import dns_lookup
from postroom.intake.dns_lookup import DnsTemporaryError
from postroom.intake.recipients import Target

log = logging.getLogger("postroom.smtp")

MAX_SIGNATURES = 5  # DKIM signatures verified per message (each costs a DNS lookup)
WORKERS = 8  # threads running checks at once; more wait (within the overall timeout)
DROP = "drop"

# dkimpy reports every failed signature at ERROR level; the verdict says it instead.
_QUIET = logging.getLogger("postroom.smtp.dkimpy")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9-]{1,63}$")


class MailRefused(Exception):
    """DMARC failed and every recipient inbox drops such mail (answer 550 5.7.1)."""


class MailDeferred(Exception):
    """DMARC could not be evaluated now and an inbox drops failing mail (answer 451 4.7.0)."""


@dataclass(frozen=True)
class DkimResult:
    result: str  # pass, fail, permerror, temperror
    domain: str
    selector: str


@dataclass(frozen=True)
class Verdict:
    spf: str
    spf_domain: str
    dkim: tuple[DkimResult, ...]
    dmarc: str  # pass, fail, none, temperror
    from_domain: str
    policy: str  # the record's p= ("" without a record)
    # SPF or DKIM passed for a domain aligned with From (relaxed when there is no record).
    aligned: bool = False
    header: str = field(default="", compare=False)

    @property
    def authenticated(self) -> bool:
        """The author's domain vouches for the message: DMARC pass, or an aligned SPF or DKIM
        pass for a domain that publishes no DMARC record."""
        return self.dmarc == "pass" or (self.dmarc == "none" and self.aligned)


@functools.cache
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList()


def organizational(domain: str) -> str:
    """The registrable domain of `domain` (itself when it is a public suffix or unknown)."""
    return str(_suffixes().privatesuffix(domain) or domain)


def clean_domain(value: str) -> str:
    """A domain lowered, IDNA-encoded and checked; "" when it is not a usable host name."""
    value = value.strip().rstrip(".").lower()
    try:
        value = value.encode("idna").decode("ascii")
    except UnicodeError:
        return ""
    return value if _DOMAIN.match(value) else ""


def _domain_of(address: str) -> str:
    return clean_domain(address.rpartition("@")[2]) if "@" in address else ""


def from_domain(message: bytes) -> str:
    """The one domain of the `From:` header; "" when there is none or more than one."""
    headers = BytesHeaderParser(policy=compat32).parsebytes(message)
    values = headers.get_all("From") or []
    if len(values) != 1:
        return ""
    domains = {_domain_of(address) for _name, address in email.utils.getaddresses([str(values[0])])}
    return domains.pop() if len(domains) == 1 else ""


def _aligned(domain: str, author: str, strict: bool) -> bool:
    if not domain or not author:
        return False
    return domain == author if strict else organizational(domain) == organizational(author)


def _dmarc_record(resolver: dns.resolver.Resolver, domain: str) -> dict[str, str] | None:
    """The DMARC tags of `domain` (or of its organizational domain); None without one."""
    names = [domain] + ([organizational(domain)] if organizational(domain) != domain else [])
    for name in names:
        records = [
            r
            for r in dns_lookup.txt_strings(resolver, f"_dmarc.{name}")
            if r.lower().startswith(b"v=dmarc1")
        ]
        if len(records) > 1:
            return None  # several records: no policy applies
        if records:
            tags = {}
            for part in records[0].decode("ascii", "replace").split(";"):
                key, _, value = part.partition("=")
                tags[key.strip().lower()] = value.strip().lower()
            if name != domain and tags.get("sp"):
                tags["p"] = tags["sp"]
            if tags.get("p") not in ("none", "quarantine", "reject"):
                tags["p"] = "none"
            return tags
    return None


def _dkim_results(resolver: dns.resolver.Resolver, message: bytes) -> list[DkimResult]:
    try:
        signer = dkim.DKIM(message, logger=_QUIET)
    except Exception:  # a message dkimpy cannot even split into headers
        return [DkimResult("permerror", "", "")]
    values = [v for k, v in signer.headers if k.lower() == b"dkim-signature"][:MAX_SIGNATURES]
    results = []
    dnsfunc = dns_lookup.dkim_txt(resolver)
    for index, value in enumerate(values):
        try:
            tags = parse_tag_value(value)
        except Exception:
            results.append(DkimResult("permerror", "", ""))
            continue
        domain = clean_domain(tags.get(b"d", b"").decode("ascii", "replace"))
        selector = tags.get(b"s", b"").decode("ascii", "replace")
        selector = selector if clean_domain(selector) else ""
        try:
            result = "pass" if signer.verify(idx=index, dnsfunc=dnsfunc) else "fail"
        except DnsTemporaryError:
            result = "temperror"
        except dkim.ValidationError:  # the body or the headers changed since signing
            result = "fail"
        except Exception:  # dkim.DKIMException and whatever a malformed signature raises
            result = "permerror"
        results.append(DkimResult(result, domain, selector))
    return results


def check(
    resolver: dns.resolver.Resolver,
    message: bytes,
    *,
    ip: str | None,
    mail_from: str,
    helo: str,
    timeout_s: float,
    authserv_id: str,
) -> Verdict:
    """Every check of one message (blocking: run it in a worker thread)."""
    envelope_domain = _domain_of(mail_from) if mail_from else clean_domain(helo)
    spf_result = dns_lookup.spf_check(resolver, ip, mail_from, helo, timeout_s) if ip else "none"
    signatures = _dkim_results(resolver, message)
    author = from_domain(message)
    temporary = spf_result == "temperror" or any(s.result == "temperror" for s in signatures)
    record = None
    if author:
        try:
            record = _dmarc_record(resolver, author)
        except DnsTemporaryError:
            temporary = True
    tags = record or {}
    aligned = (
        spf_result == "pass" and _aligned(envelope_domain, author, tags.get("aspf") == "s")
    ) or any(
        s.result == "pass" and _aligned(s.domain, author, tags.get("adkim") == "s")
        for s in signatures
    )
    if not author:
        dmarc = "fail"
    elif record is not None and aligned:
        dmarc = "pass"
    elif temporary:
        dmarc = "temperror"
    else:
        dmarc = "fail" if record is not None else "none"
    verdict = Verdict(
        spf_result, envelope_domain, tuple(signatures), dmarc, author, tags.get("p", ""), aligned
    )
    return _with_header(verdict, authserv_id)


def _with_header(verdict: Verdict, authserv_id: str) -> Verdict:
    """The verdict with its `Authentication-Results` text."""
    parts = [authserv_id or "localhost"]
    spf_part = f"spf={verdict.spf}"
    if verdict.spf_domain:
        spf_part += f" smtp.mailfrom={verdict.spf_domain}"
    parts.append(spf_part)
    if not verdict.dkim:
        parts.append("dkim=none")
    for signature in verdict.dkim:
        text = f"dkim={signature.result}"
        if signature.domain:
            text += f" header.d={signature.domain}"
        if signature.selector:
            text += f" header.s={signature.selector}"
        parts.append(text)
    dmarc = f"dmarc={verdict.dmarc}"
    if verdict.policy:
        dmarc += f" (p={verdict.policy})"
    dmarc += f" header.from={verdict.from_domain}" if verdict.from_domain else " (no From domain)"
    parts.append(dmarc)
    return dataclasses.replace(verdict, header=";\n ".join(parts))


def unavailable(authserv_id: str, why: str) -> Verdict:
    """The verdict when the checks could not run to their end (all `temperror`)."""
    verdict = Verdict("temperror", "", (), "temperror", "", "")
    header = f"{authserv_id or 'localhost'}; spf=temperror; dkim=temperror; dmarc=temperror ({why})"
    return dataclasses.replace(verdict, header=header)


def admitted(verdict: Verdict, targets: list[Target]) -> list[Target]:
    """The recipient inboxes that take the message after their `dmarc_check_action`."""
    dropping = [t for t in targets if t.dmarc_check_action == DROP]
    if not dropping:
        return targets
    if verdict.dmarc == "temperror":
        raise MailDeferred(verdict.header)
    if verdict.dmarc != "fail":
        return targets
    kept = [t for t in targets if t.dmarc_check_action != DROP]
    if not kept:
        raise MailRefused(verdict.header)
    return kept


class Authenticator:
    """Runs the checks of this process off the event loop, bounded in time."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.resolver = dns_lookup.build_resolver(settings.dns_servers, settings.dns_timeout_s)
        self.authserv_id = settings.domain
        self.dns_timeout_s = settings.dns_timeout_s
        self.timeout_s = settings.authentication_timeout_s
        self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="mail-auth")

    async def verify(
        self, read: Callable[[], bytes], *, ip: str | None, mail_from: str, helo: str
    ) -> Verdict:
        """The verdict of the message `read` returns (called in the worker thread)."""

        def run() -> Verdict:
            return check(
                self.resolver,
                read(),
                ip=ip,
                mail_from=mail_from,
                helo=helo,
                timeout_s=self.dns_timeout_s,
                authserv_id=self.authserv_id,
            )

        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.run_in_executor(self._pool, run), self.timeout_s)
        except TimeoutError:
            log.warning("mail authentication checks took over %ss: temperror", self.timeout_s)
            return unavailable(self.authserv_id, "checks timed out")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
