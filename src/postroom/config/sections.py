"""Every setting, declared once: its section, type, default, help line and allowed range.

`setting(default, help, minimum=, maximum=, choices=, secret=)` carries what the loader
(`config.loading`) checks and what `postroom config show` prints: a `secret` is masked there and
may come from a file named by `POSTROOM_<SECTION>_<KEY>_FILE`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def setting(
    default: Any,
    help: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    choices: tuple[str, ...] = (),
    secret: bool = False,
) -> Any:
    metadata = {
        "help": help,
        "minimum": minimum,
        "maximum": maximum,
        "choices": choices,
        "secret": secret,
    }
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class HttpSettings:
    host: str = setting("127.0.0.1", "Address the REST API listens on (0.0.0.0 in containers).")
    port: int = setting(
        8000, "TCP port of the REST API (0 picks a free port).", minimum=0, maximum=65535
    )
    public_base_url: str = setting(
        "", "Base of every URL in API responses; empty means http://<host>:<port>."
    )
    shutdown_timeout: float = setting(
        10.0, "Seconds in-flight requests get to finish on SIGTERM.", minimum=0
    )
    forwarded_allow_ips: str = setting(
        "",
        "Comma list of proxy addresses/networks whose X-Forwarded-For names the client "
        "(used by rate limits and logs); empty trusts none.",
    )
    max_connections_per_client: int = setting(
        128,
        "Open API connections one client address may hold (the TCP peer: behind a proxy, the "
        "proxy); beyond it a new connection gets 503 and is closed. Above the 100 parallel "
        "connections of common HTTP client pools (httpx, aiohttp, the rossum SDK).",
        minimum=1,
    )
    max_connections: int = setting(
        0,
        "Open API connections in total; beyond it 503 and close. 0 sizes it to the process's "
        "file descriptor limit (raised to the hard limit at start): three quarters of "
        "(limit - 256) when SMTP runs, all of it otherwise. A larger value is lowered to fit.",
        minimum=0,
    )
    header_timeout_s: float = setting(
        20.0,
        "Seconds a client has to send a request's headers, from its first byte (or from the "
        "connection's opening); then the connection is closed.",
        minimum=0.01,
    )
    keepalive_timeout_s: float = setting(
        75.0,
        "Seconds an idle keep-alive connection stays open waiting for the next request.",
        minimum=0.01,
    )
    body_timeout_s: float = setting(
        60.0,
        "Seconds a whole non-upload request body (JSON, forms) may take to arrive; then 408 "
        "and the connection is closed. Uploads follow limits.upload_min_bytes_per_s instead.",
        minimum=0.01,
    )


def dns_server_addresses(value: str) -> list[tuple[str, int]]:
    """`smtp.dns_servers` as (IP address, port) pairs: `ip`, `ip:port` or `[ipv6]:port`,
    comma separated (ValueError naming the bad entry)."""
    servers = []
    for entry in (e.strip() for e in value.split(",")):
        if not entry:
            continue
        if entry.startswith("["):
            host, _, rest = entry[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else rest
        elif entry.count(":") == 1:
            host, _, port = entry.partition(":")
        else:  # a bare IPv4 or IPv6 address
            host, port = entry, ""
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address[:port]") from None
        if port and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"{entry!r} has a bad port")
        servers.append((host, int(port) if port else 53))
    return servers


@dataclass(frozen=True)
class SmtpSettings:
    enabled: bool = setting(True, "Run the SMTP inbox listener.")
    host: str = setting("127.0.0.1", "Address the SMTP listener binds.")
    port: int = setting(
        2525, "TCP port of the SMTP listener (0 picks a free port).", minimum=0, maximum=65535
    )
    domain: str = setting("localhost", "Mail domain of inbox addresses (<prefix>-<hex>@<domain>).")
    max_message_bytes: int = setting(
        52428800, "Largest raw message accepted (advertised as SIZE).", minimum=1024
    )
    timeout: float = setting(60.0, "Seconds an idle SMTP client may stay silent.", minimum=1)
    transaction_timeout: float = setting(
        600.0, "Seconds one whole DATA transfer may take (slow-client guard).", minimum=1
    )
    max_commands: int = setting(
        1000, "Commands one SMTP connection may send before it is closed.", minimum=10
    )
    max_connections_per_client: int = setting(
        32,
        "Open SMTP connections one client address may hold; beyond it a new connection gets "
        "421 4.7.0 and is closed. Above the 20 parallel deliveries per destination of common "
        "MTAs (Postfix).",
        minimum=1,
    )
    max_connections: int = setting(
        0,
        "Open SMTP connections in total; beyond it 421 4.7.0 and close. 0 sizes it to the "
        "file descriptor limit: a quarter of (limit - 256). A larger value is lowered to fit.",
        minimum=0,
    )
    tls_cert: str = setting("", "PEM certificate for STARTTLS; empty disables STARTTLS.")
    tls_key: str = setting("", "PEM private key for STARTTLS.")
    require_tls: bool = setting(False, "Refuse MAIL before STARTTLS (needs tls_cert).")
    relay_host: str = setting("", "Outbound SMTP relay for notifications; empty sends none.")
    relay_port: int = setting(25, "Port of the outbound relay.", minimum=1, maximum=65535)
    relay_username: str = setting("", "Username for the outbound relay (optional).")
    relay_password: str = setting("", "Password for the outbound relay (optional).", secret=True)
    relay_starttls: bool = setting(False, "Use STARTTLS towards the outbound relay.")
    notification_from: str = setting(
        "", "Sender of notifications; empty means postroom-noreply@<domain>."
    )
    notices_per_sender_per_hour: int = setting(
        5,
        "Notices (no-attachment replies) answering the mail of one sender per hour from this "
        "process; more are recorded as `not_sent: rate limited`. Notices to a message's author are only "
        "sent when the author passed mail authentication (DMARC, or aligned SPF/DKIM).",
        minimum=0,
    )
    dns_servers: str = setting(
        "",
        "Comma list of DNS servers (IP address or address:port, [v6]:port; e.g. "
        "127.0.0.1:5353) used for the SPF, DKIM and DMARC checks of incoming mail; empty uses "
        "the system resolver.",
    )
    dns_timeout_s: float = setting(
        5.0,
        "Seconds one DNS lookup of a mail authentication check may take; a lookup that fails "
        "or runs out of time makes the verdict `temperror`.",
        minimum=0.05,
        maximum=60,
    )
    authentication_timeout_s: float = setting(
        20.0,
        "Seconds all SPF, DKIM and DMARC checks of one message may take together; beyond it "
        "the verdict is `temperror` (an inbox with dmarc_check_action `drop` answers 451 4.7.0, "
        "`accept` imports the message and records the temperror).",
        minimum=0.1,
        maximum=300,
    )
    max_unknown_recipients: int = setting(
        10,
        "Unknown recipients (RCPT TO answered 550 5.1.1) one connection, and one client "
        "address within unknown_recipients_window_s, may try; past it the client gets "
        "421 4.7.0 and is disconnected (RCPT probing guard).",
        minimum=1,
    )
    unknown_recipients_window_s: float = setting(
        3600.0,
        "Seconds an unknown recipient counts against its client address (see "
        "max_unknown_recipients).",
        minimum=1,
    )
    unknown_recipient_delay_s: float = setting(
        0.5,
        "Tarpit: seconds the reply to a client's first unknown recipient is delayed; the delay "
        "doubles with each further unknown recipient of that address (0 disables).",
        minimum=0,
        maximum=60,
    )
    unknown_recipient_max_delay_s: float = setting(
        8.0,
        "Longest tarpit delay of one unknown-recipient reply (seconds).",
        minimum=0,
        maximum=60,
    )


@dataclass(frozen=True)
class StorageSettings:
    data_dir: str = setting("./postroom-data", "Directory of the SQLite file, blobs and spool.")


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = setting(
        "",
        "SQLAlchemy URL; empty means sqlite+aiosqlite:///<data_dir>/postroom.sqlite3. "
        "PostgreSQL: postgresql+asyncpg://user:password@host/db",
        secret=True,
    )
    pool_size: int = setting(10, "Connections kept open to PostgreSQL.", minimum=1)
    sqlite_synchronous: str = setting(
        "FULL",
        "SQLite synchronous pragma; FULL survives power loss (NORMAL only a process crash).",
        choices=("FULL", "NORMAL"),
    )


@dataclass(frozen=True)
class LimitsSettings:
    max_upload_bytes: int = setting(
        41943040, "Largest HTTP upload request body (bytes).", minimum=1
    )
    max_metadata_bytes: int = setting(
        4096, "Largest `metadata` JSON of an upload (bytes).", minimum=2
    )
    upload_idle_timeout_s: float = setting(
        60.0,
        "Seconds an upload body may stall (no bytes arriving) before it is dropped with 408.",
        minimum=0.01,
    )
    upload_min_bytes_per_s: float = setting(
        1024.0,
        "Slowest average rate an upload body may arrive at, counted after a grace of "
        "upload_idle_timeout_s; a slower one is dropped with 408 (0 disables).",
        minimum=0,
    )
    requests_per_second: float = setting(
        50.0, "Sustained API requests per second per user and per client address.", minimum=0
    )
    burst: int = setting(100, "Requests allowed in a burst above the sustained rate.", minimum=1)
    login_attempts_per_minute: int = setting(
        10, "Failed logins per minute per username and per address.", minimum=1
    )
    smtp_connections_per_minute: int = setting(
        300, "SMTP connections per minute per client address (over it: 421 4.7.0).", minimum=1
    )
    smtp_messages_per_minute: int = setting(
        1200, "SMTP messages per minute per client address (over it: 451 4.7.1).", minimum=1
    )


@dataclass(frozen=True)
class AuthSettings:
    token_lifetime_s: int = setting(
        583200, "Lifetime of login tokens (max 162 h).", minimum=60, maximum=583200
    )
    basic_cache_s: int = setting(
        300, "Seconds a verified Basic credential is remembered (0 disables).", minimum=0
    )
    console_session_s: int = setting(
        28800,
        "Lifetime of an operator console login (capped by token_lifetime_s).",
        minimum=60,
        maximum=583200,
    )


@dataclass(frozen=True)
class BootstrapSettings:
    admin_username: str = setting("admin", "Username of the admin created on first start.")
    admin_password: str = setting(
        "", "Password of that admin; empty generates one and prints it once.", secret=True
    )
    organization_name: str = setting("Postroom", "Name of the organization created on first start.")
    queue_name: str = setting("Invoices", "Name of the queue created on first start.")


@dataclass(frozen=True)
class PipelineSettings:
    workers: int = setting(
        4, "Concurrent pipeline workers in this process (0 disables).", minimum=0
    )
    max_attempts: int = setting(5, "Attempts of a job step before it fails for good.", minimum=1)
    retry_base_s: float = setting(1.0, "First retry delay; doubles per attempt.", minimum=0)
    lease_s: float = setting(
        120.0,
        "Seconds a claimed job stays leased before another process may reclaim it.",
        minimum=1,
    )
    poll_interval: float = setting(
        1.0,
        "Seconds between job polls when idle (new local jobs wake workers at once).",
        minimum=0.01,
    )
    sweep_interval: float = setting(
        60.0,
        "Seconds between background duties (session timeouts, deletion, retention).",
        minimum=0.05,
    )


@dataclass(frozen=True)
class ExportSettings:
    neutralise_formulas: bool = setting(
        True,
        "CSV/XLSX exports: prefix with ' every cell that starts with =, +, -, @, a tab or a "
        "carriage return (spreadsheet formula injection; numbers of number datapoints are kept).",
    )


@dataclass(frozen=True)
class LogSettings:
    level: str = setting("INFO", "Log level.", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    format: str = setting("text", "Log line format.", choices=("text", "json"))
    mail_addresses: str = setting(
        "hash",
        "Mail addresses in the one line per SMTP session: hash (a short sha256, enough to "
        "match sessions of one sender), debug (left out; a DEBUG line has them) or plain.",
        choices=("hash", "debug", "plain"),
    )


@dataclass(frozen=True)
class MetricsSettings:
    enabled: bool = setting(True, "Serve Prometheus metrics at GET /metrics.")
    token: str = setting(
        "",
        "Bearer token the scraper must send to /metrics; empty means no authentication.",
        secret=True,
    )


@dataclass(frozen=True)
class Settings:
    http: HttpSettings = field(default_factory=HttpSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    limits: LimitsSettings = field(default_factory=LimitsSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    bootstrap: BootstrapSettings = field(default_factory=BootstrapSettings)
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    export: ExportSettings = field(default_factory=ExportSettings)
    log: LogSettings = field(default_factory=LogSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)

    @property
    def data_dir(self) -> Path:
        return Path(self.storage.data_dir).resolve()

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite+aiosqlite:///{self.data_dir / 'postroom.sqlite3'}"

    @property
    def base_url(self) -> str:
        """Public base without a trailing slash, e.g. http://127.0.0.1:8000."""
        if self.http.public_base_url:
            return self.http.public_base_url.rstrip("/")
        host = "127.0.0.1" if self.http.host in ("0.0.0.0", "::", "") else self.http.host
        return f"http://{host}:{self.http.port}"

    def replace(self, section: str, **changes: Any) -> Settings:
        """A copy with some keys of one section changed (used for ports chosen at bind time)."""
        return dataclasses.replace(
            self, **{section: dataclasses.replace(getattr(self, section), **changes)}
        )
