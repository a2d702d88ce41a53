"""Settings: the one reader of `config/postroom.toml` and of `POSTROOM_*` environment variables.

Every setting is declared once below, with its type, its default and a help line. The TOML file
shipped in `config/` is rendered from these declarations (`postroom config`), and every key can be
overridden by `POSTROOM_<SECTION>_<KEY>`. A bad value raises `ConfigError` naming the key and value.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "POSTROOM_"
# Older names still honoured (the product spec names the admin password this way).
ENV_ALIASES = {"POSTROOM_ADMIN_PASSWORD": "POSTROOM_BOOTSTRAP_ADMIN_PASSWORD"}


class ConfigError(Exception):
    """A setting is missing, unknown or has a value of the wrong type or range."""


def setting(
    default: Any, help: str, *, minimum: float | None = None, choices: tuple[str, ...] = ()
) -> Any:
    return field(default=default, metadata={"help": help, "minimum": minimum, "choices": choices})


@dataclass(frozen=True)
class HttpSettings:
    host: str = setting("127.0.0.1", "Address the REST API listens on (0.0.0.0 in containers).")
    port: int = setting(8000, "TCP port of the REST API (0 picks a free port).", minimum=0)
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
    port: int = setting(2525, "TCP port of the SMTP listener (0 picks a free port).", minimum=0)
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
    relay_port: int = setting(25, "Port of the outbound relay.", minimum=1)
    relay_username: str = setting("", "Username for the outbound relay (optional).")
    relay_password: str = setting("", "Password for the outbound relay (optional).")
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
    token_lifetime_s: int = setting(583200, "Lifetime of login tokens (max 162 h).", minimum=60)
    basic_cache_s: int = setting(
        300, "Seconds a verified Basic credential is remembered (0 disables).", minimum=0
    )


@dataclass(frozen=True)
class BootstrapSettings:
    admin_username: str = setting("admin", "Username of the admin created on first start.")
    admin_password: str = setting(
        "", "Password of that admin; empty generates one and prints it once."
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
class LogSettings:
    level: str = setting("INFO", "Log level.", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    format: str = setting("text", "Log line format.", choices=("text", "json"))


@dataclass(frozen=True)
class MetricsSettings:
    enabled: bool = setting(True, "Serve Prometheus metrics at GET /metrics.")
    token: str = setting(
        "", "Bearer token the scraper must send to /metrics; empty means no authentication."
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


def _sections() -> dict[str, type]:
    hints = typing.get_type_hints(Settings)
    return {f.name: hints[f.name] for f in dataclasses.fields(Settings)}


def _parse_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    lowered = str(raw).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def _parse_int(raw: Any) -> int:
    if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
        raise ValueError(raw)
    return int(raw) if isinstance(raw, int | float) else int(str(raw).strip())


def _parse_float(raw: Any) -> float:
    if isinstance(raw, bool):
        raise ValueError(raw)
    return float(raw)


def _parse_str(raw: Any) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ValueError(raw)
    return str(raw)


_PARSERS: dict[Any, Any] = {
    bool: _parse_bool,
    int: _parse_int,
    float: _parse_float,
    str: _parse_str,
}


def _coerce(name: str, kind: Any, raw: Any, meta: Mapping[str, Any]) -> Any:
    try:
        value = _PARSERS[kind](raw)
    except (TypeError, ValueError):
        type_name = getattr(kind, "__name__", str(kind))
        raise ConfigError(f"invalid value for {name}: {raw!r} (expected {type_name})") from None
    minimum = meta.get("minimum")
    if minimum is not None and value < minimum:
        raise ConfigError(f"invalid value for {name}: {raw!r} (must be >= {minimum:g})")
    choices = meta.get("choices") or ()
    if choices:
        value = value.upper() if choices[0].isupper() else value.lower()
        if value not in choices:
            raise ConfigError(
                f"invalid value for {name}: {raw!r} (expected one of {', '.join(choices)})"
            )
    return value


def _read_document(path: str | os.PathLike[str] | None) -> dict[str, Any]:
    if not path:
        return {}
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from None


def _env_name(section_name: str, key: str, env: Mapping[str, str]) -> str:
    name = f"{ENV_PREFIX}{section_name.upper()}_{key.upper()}"
    alias = next((old for old, new in ENV_ALIASES.items() if new == name), None)
    return alias if name not in env and alias is not None and alias in env else name


def _load_section(section_name: str, section_cls: type, table: Any, env: Mapping[str, str]) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"invalid value for {section_name}: {table!r} (expected a table)")
    hints = typing.get_type_hints(section_cls)
    fields = dataclasses.fields(section_cls)
    unknown = set(table) - {f.name for f in fields}
    if unknown:
        raise ConfigError(f"unknown configuration key: {section_name}.{sorted(unknown)[0]}")
    values: dict[str, Any] = {}
    for f in fields:
        env_name = _env_name(section_name, f.name, env)
        if env_name in env:
            values[f.name] = _coerce(env_name, hints[f.name], env[env_name], f.metadata)
        elif f.name in table:
            values[f.name] = _coerce(
                f"{section_name}.{f.name}", hints[f.name], table[f.name], f.metadata
            )
    return section_cls(**values)


def load_settings(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read the TOML file (if any), then `POSTROOM_<SECTION>_<KEY>` overrides, and validate."""
    env = os.environ if environ is None else environ
    document = _read_document(path or env.get("POSTROOM_CONFIG") or None)
    sections = _sections()
    unknown = set(document) - set(sections)
    if unknown:
        raise ConfigError(f"unknown configuration section: [{sorted(unknown)[0]}]")
    built = {
        name: _load_section(name, cls, document.get(name, {}), env)
        for name, cls in sections.items()
    }
    settings = Settings(**built)
    _check_consistency(settings)
    return settings


def _check_consistency(settings: Settings) -> None:
    url = settings.database_url
    if not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise ConfigError(
            f"invalid value for database.url: {url!r} "
            "(expected sqlite+aiosqlite:///path or postgresql+asyncpg://...)"
        )
    if bool(settings.smtp.tls_cert) != bool(settings.smtp.tls_key):
        raise ConfigError("smtp.tls_cert and smtp.tls_key must be set together")
    if settings.smtp.require_tls and not settings.smtp.tls_cert:
        raise ConfigError("invalid value for smtp.require_tls: True (needs smtp.tls_cert)")
    base = settings.http.public_base_url
    if base and not base.startswith(("http://", "https://")):
        raise ConfigError(
            f"invalid value for http.public_base_url: {base!r} (expected http(s)://...)"
        )


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_default_toml() -> str:
    """The commented default configuration file (the shipped `config/postroom.toml`)."""
    lines = [
        "# Postroom configuration. Every setting is listed with its default.",
        "# Each key can be overridden by the environment: POSTROOM_<SECTION>_<KEY>,",
        "# e.g. POSTROOM_HTTP_PORT=9000. Choose this file with --config or POSTROOM_CONFIG.",
    ]
    for section_name, section_cls in _sections().items():
        lines += ["", f"[{section_name}]"]
        for f in dataclasses.fields(section_cls):
            lines.append(f"# {f.metadata['help']}")
            lines.append(f"{f.name} = {_toml_value(f.default)}")
    return "\n".join(lines) + "\n"


__all__ = ["ConfigError", "Settings", "load_settings", "render_default_toml"]
