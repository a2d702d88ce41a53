"""Reading the settings: the TOML file, then `POSTROOM_<SECTION>_<KEY>` overrides, validated.

The one reader of `config/postroom.toml` and of `POSTROOM_*` environment variables. A secret may
also come from a file: `POSTROOM_<SECTION>_<KEY>_FILE=/run/secrets/x` (its content, without the
trailing newline), the way container orchestrators hand out secrets. Every problem is one
`ConfigError` naming the key and the bad value: a value of the wrong type or out of range, an
unknown key or section in the file, and an unknown `POSTROOM_*` variable (with the closest known
name: a mistyped variable would otherwise be silently ignored). `Sources` remembers where each
effective value came from, for `postroom config show`.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from postroom.config.sections import Settings, dns_server_addresses

ENV_PREFIX = "POSTROOM_"
FILE_SUFFIX = "_FILE"
# Older names still honoured (the product spec names the admin password this way).
ENV_ALIASES = {"POSTROOM_ADMIN_PASSWORD": "POSTROOM_BOOTSTRAP_ADMIN_PASSWORD"}
# Variables that are not settings of the server: the config file's path, and those the
# `postroom upload` client reads.
OTHER_VARIABLES = frozenset(
    {"POSTROOM_CONFIG", "POSTROOM_URL", "POSTROOM_USER", "POSTROOM_TOKEN", "POSTROOM_PASSWORD"}
)

Sources = dict[str, str]  # "section.key" → "default" | "file <path>" | "env NAME" | "env NAME_FILE"


class ConfigError(Exception):
    """A setting is missing, unknown or has a value of the wrong type or range."""


def sections() -> dict[str, type]:
    hints = typing.get_type_hints(Settings)
    return {f.name: hints[f.name] for f in dataclasses.fields(Settings)}


def env_name(section_name: str, key: str) -> str:
    return f"{ENV_PREFIX}{section_name.upper()}_{key.upper()}"


def known_variables() -> set[str]:
    names = set(OTHER_VARIABLES) | set(ENV_ALIASES)
    for section_name, section_cls in sections().items():
        for f in dataclasses.fields(section_cls):
            names.add(env_name(section_name, f.name))
            if f.metadata.get("secret"):
                names.add(env_name(section_name, f.name) + FILE_SUFFIX)
    return names


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


def _shown(raw: Any, meta: Mapping[str, Any]) -> str:
    return "'***'" if meta.get("secret") else repr(raw)


def coerce(name: str, kind: Any, raw: Any, meta: Mapping[str, Any]) -> Any:
    """`raw` as a value of `kind` within the declared range; ConfigError naming `name` if not."""
    try:
        value = _PARSERS[kind](raw)
    except (TypeError, ValueError):
        type_name = getattr(kind, "__name__", str(kind))
        shown = _shown(raw, meta)
        raise ConfigError(f"invalid value for {name}: {shown} (expected {type_name})") from None
    if value != value or value in (float("inf"), float("-inf")):  # NaN, infinities
        raise ConfigError(f"invalid value for {name}: {raw!r} (expected a finite number)")
    minimum, maximum = meta.get("minimum"), meta.get("maximum")
    if minimum is not None and value < minimum:
        raise ConfigError(f"invalid value for {name}: {_shown(raw, meta)} (must be >= {minimum:g})")
    if maximum is not None and value > maximum:
        raise ConfigError(f"invalid value for {name}: {_shown(raw, meta)} (must be <= {maximum:g})")
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


def _check_variables(env: Mapping[str, str]) -> None:
    known = known_variables()
    for name in sorted(env):
        if name.startswith(ENV_PREFIX) and name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"unknown environment variable {name}{hint}")


def _from_env(section_name: str, key: str, env: Mapping[str, str]) -> tuple[str, str] | None:
    """(raw value, where it came from) of a key's environment override, if any."""
    name = env_name(section_name, key)
    alias = next((old for old, new in ENV_ALIASES.items() if new == name), None)
    for candidate in (name, alias):
        if candidate is not None and candidate in env:
            return env[candidate], f"env {candidate}"
    file_var = name + FILE_SUFFIX
    if file_var in env:
        try:
            content = Path(env[file_var]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {file_var}={env[file_var]!r}: {exc}") from None
        return content.rstrip("\r\n"), f"env {file_var}"
    return None


def _load_section(
    section_name: str,
    section_cls: type,
    table: Any,
    env: Mapping[str, str],
    origin: str,
    sources: Sources,
) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"invalid value for {section_name}: {table!r} (expected a table)")
    hints = typing.get_type_hints(section_cls)
    fields = dataclasses.fields(section_cls)
    unknown = set(table) - {f.name for f in fields}
    if unknown:
        raise ConfigError(f"unknown configuration key: {section_name}.{sorted(unknown)[0]}")
    values: dict[str, Any] = {}
    for f in fields:
        key = f"{section_name}.{f.name}"
        sources[key] = "default"
        override = _from_env(section_name, f.name, env)
        if override is not None:
            raw, source = override
            if source.endswith(FILE_SUFFIX) and not f.metadata.get("secret"):
                raise ConfigError(f"{source.split()[1]}: {key} is not a secret setting")
            values[f.name] = coerce(source.split()[1], hints[f.name], raw, f.metadata)
            sources[key] = source
        elif f.name in table:
            values[f.name] = coerce(key, hints[f.name], table[f.name], f.metadata)
            sources[key] = origin
    return section_cls(**values)


def load_settings_and_sources(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> tuple[Settings, Sources]:
    """The settings, and where each value came from."""
    env = os.environ if environ is None else environ
    _check_variables(env)
    chosen = path or env.get("POSTROOM_CONFIG") or None
    document = _read_document(chosen)
    known = sections()
    unknown = set(document) - set(known)
    if unknown:
        raise ConfigError(f"unknown configuration section: [{sorted(unknown)[0]}]")
    sources: Sources = {}
    origin = f"file {chosen}"
    built = {
        name: _load_section(name, cls, document.get(name, {}), env, origin, sources)
        for name, cls in known.items()
    }
    settings = Settings(**built)
    _check_consistency(settings)
    return settings, sources


def load_settings(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read the TOML file (if any), then `POSTROOM_<SECTION>_<KEY>` overrides, and validate."""
    return load_settings_and_sources(path, environ)[0]


def _check_consistency(settings: Settings) -> None:
    url = settings.database_url
    if not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise ConfigError(
            f"invalid value for database.url: {_masked_url(url)!r} "
            "(expected sqlite+aiosqlite:///path or postgresql+asyncpg://...)"
        )
    if bool(settings.smtp.tls_cert) != bool(settings.smtp.tls_key):
        raise ConfigError("smtp.tls_cert and smtp.tls_key must be set together")
    if settings.smtp.require_tls and not settings.smtp.tls_cert:
        raise ConfigError("invalid value for smtp.require_tls: True (needs smtp.tls_cert)")
    try:
        dns_server_addresses(settings.smtp.dns_servers)
    except ValueError as exc:
        raise ConfigError(f"invalid value for smtp.dns_servers: {exc}") from None
    base = settings.http.public_base_url
    if base and not base.startswith(("http://", "https://")):
        raise ConfigError(
            f"invalid value for http.public_base_url: {base!r} (expected http(s)://...)"
        )


def _masked_url(url: str) -> str:
    """A URL with its password replaced by `***`."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}"


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
        "# e.g. POSTROOM_HTTP_PORT=9000; a secret also by POSTROOM_<SECTION>_<KEY>_FILE=<path>.",
        "# Choose this file with --config or POSTROOM_CONFIG.",
    ]
    for section_name, section_cls in sections().items():
        lines += ["", f"[{section_name}]"]
        for f in dataclasses.fields(section_cls):
            lines.append(f"# {f.metadata['help']}")
            lines.append(f"{f.name} = {_toml_value(f.default)}")
    return "\n".join(lines) + "\n"


def render_effective(settings: Settings, sources: Sources) -> str:
    """The effective configuration as TOML, secrets masked, each value's source in a comment."""
    lines = ["# Effective Postroom configuration (secrets masked)."]
    for section_name, section_cls in sections().items():
        lines += ["", f"[{section_name}]"]
        section = getattr(settings, section_name)
        for f in dataclasses.fields(section_cls):
            value = getattr(section, f.name)
            if f.metadata.get("secret") and isinstance(value, str) and value:
                value = _masked_url(value) if "://" in value else "***"
            source = sources.get(f"{section_name}.{f.name}", "default")
            lines.append(f"{f.name} = {_toml_value(value)}  # {source}")
    return "\n".join(lines) + "\n"
