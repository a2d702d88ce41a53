"""Every setting, declared once: its section, type, default, help line and allowed range.

`setting(default, help, minimum=, maximum=, choices=, secret=)` carries what the loader
(`config.loading`) checks and what `postroom config show` prints: a `secret` is masked there and
may come from a file named by `POSTROOM_<SECTION>_<KEY>_FILE`.
"""

from __future__ import annotations

import dataclasses
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
