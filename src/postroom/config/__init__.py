"""Settings: declared in `config.sections`, read from the TOML file and the environment by
`config.loading`. Everything else imports them from here."""

from postroom.config.loading import (
    ConfigError,
    Sources,
    load_settings,
    load_settings_and_sources,
    render_default_toml,
    render_effective,
)
from postroom.config.sections import (
    AuthSettings,
    BootstrapSettings,
    DatabaseSettings,
    HttpSettings,
    LimitsSettings,
    LogSettings,
    MetricsSettings,
    PipelineSettings,
    Settings,
    SmtpSettings,
    StorageSettings,
)

__all__ = [
    "AuthSettings",
    "BootstrapSettings",
    "ConfigError",
    "DatabaseSettings",
    "HttpSettings",
    "LimitsSettings",
    "LogSettings",
    "MetricsSettings",
    "PipelineSettings",
    "Settings",
    "SmtpSettings",
    "Sources",
    "StorageSettings",
    "load_settings",
    "load_settings_and_sources",
    "render_default_toml",
    "render_effective",
]
