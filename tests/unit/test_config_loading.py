"""Configuration loading: the TOML file, environment overrides, ranges, secrets from files, and
errors naming key and value (no server, no process)."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from postroom.config import ConfigError, load_settings

REPO = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "postroom.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "postroom.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_file_or_environment() -> None:
    """With nothing configured the documented defaults apply (HTTP 8000, SMTP 2525, SQLite)."""
    settings = load_settings(None, {})
    assert (settings.http.host, settings.http.port) == ("127.0.0.1", 8000)
    assert (settings.smtp.host, settings.smtp.port, settings.smtp.domain) == (
        "127.0.0.1",
        2525,
        "localhost",
    )
    assert settings.limits.max_upload_bytes == 41943040
    assert settings.bootstrap.admin_username == "admin"
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.database_url.endswith("postroom-data/postroom.sqlite3")
    assert settings.base_url == "http://127.0.0.1:8000"


def test_toml_file_then_environment_override(tmp_path: Path) -> None:
    """Values come from the TOML file, and POSTROOM_<SECTION>_<KEY> overrides them."""
    path = _write(
        tmp_path,
        '[http]\nport = 9000\npublic_base_url = "https://intake.example.com/"\n'
        '[smtp]\ndomain = "mail.example.com"\nenabled = false\n',
    )
    settings = load_settings(path, {"POSTROOM_HTTP_PORT": "9100", "POSTROOM_LOG_LEVEL": "debug"})
    assert settings.http.port == 9100
    assert settings.smtp.domain == "mail.example.com" and settings.smtp.enabled is False
    assert settings.log.level == "DEBUG"
    assert settings.base_url == "https://intake.example.com"


def test_spec_admin_password_variable_is_honoured() -> None:
    """POSTROOM_ADMIN_PASSWORD (the spec's name) sets the bootstrap password; the issue's name wins."""
    assert (
        load_settings(None, {"POSTROOM_ADMIN_PASSWORD": "s3cret-pw"}).bootstrap.admin_password
        == "s3cret-pw"
    )
    both = {"POSTROOM_ADMIN_PASSWORD": "old-name", "POSTROOM_BOOTSTRAP_ADMIN_PASSWORD": "new-name"}
    assert load_settings(None, both).bootstrap.admin_password == "new-name"


def test_config_file_chosen_by_environment(tmp_path: Path) -> None:
    """POSTROOM_CONFIG names the file when no path is given."""
    path = _write(tmp_path, "[smtp]\nport = 2626\n")
    assert load_settings(None, {"POSTROOM_CONFIG": str(path)}).smtp.port == 2626


BAD_ENVIRONMENT = [
    ({"POSTROOM_HTTP_PORT": "abc"}, "POSTROOM_HTTP_PORT", "'abc'"),
    ({"POSTROOM_HTTP_PORT": "-1"}, "POSTROOM_HTTP_PORT", "'-1'"),
    ({"POSTROOM_SMTP_ENABLED": "maybe"}, "POSTROOM_SMTP_ENABLED", "'maybe'"),
    ({"POSTROOM_LOG_LEVEL": "LOUD"}, "POSTROOM_LOG_LEVEL", "'LOUD'"),
    ({"POSTROOM_LIMITS_MAX_UPLOAD_BYTES": "1.5"}, "POSTROOM_LIMITS_MAX_UPLOAD_BYTES", "'1.5'"),
    ({"POSTROOM_DATABASE_URL": "mysql://db/x"}, "database.url", "'mysql://db/x'"),
    ({"POSTROOM_HTTP_PUBLIC_BASE_URL": "intake.example"}, "http.public_base_url", "intake"),
]


@pytest.mark.parametrize(("environ", "key", "value"), BAD_ENVIRONMENT)
def test_bad_environment_value_names_key_and_value(
    environ: dict[str, str], key: str, value: str
) -> None:
    """A bad override raises ConfigError whose message names the variable and the bad value."""
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ)
    assert key in str(caught.value) and value in str(caught.value)


BAD_FILES = [
    ("[http]\nprot = 1\n", "http.prot"),
    ("[htp]\nport = 1\n", "[htp]"),
    ('[http]\nport = "eighty"\n', "http.port"),
    ("[http]\nport = 80.5\n", "http.port"),
    ("[smtp]\nenabled = 1.5\n", "smtp.enabled"),
    ("http = 5\n", "http"),
    ("[http\n", "not valid TOML"),
]


@pytest.mark.parametrize(("text", "named"), BAD_FILES)
def test_bad_file_names_the_key(tmp_path: Path, text: str, named: str) -> None:
    """Unknown keys or sections, wrong types and broken TOML raise ConfigError naming the key."""
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, text), {})
    assert named in str(caught.value)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    """A configuration file that does not exist is an error naming the path."""
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", {})


def test_every_key_is_in_the_file_with_a_comment() -> None:
    """Every setting appears in the shipped file, preceded by its help comment."""
    lines = (REPO / "config" / "postroom.toml").read_text(encoding="utf-8").splitlines()
    document = tomllib.loads("\n".join(lines))
    defaults = load_settings(None, {})
    for section in dataclasses.fields(defaults):
        start = lines.index(f"[{section.name}]")
        for key in dataclasses.fields(getattr(defaults, section.name)):
            assert key.name in document[section.name], f"{section.name}.{key.name}"
            index = next(
                i for i in range(start, len(lines)) if lines[i].startswith(f"{key.name} = ")
            )
            comment = lines[index - 1]
            assert comment.startswith("# ") and len(comment) > 4, f"{section.name}.{key.name}"


def test_out_of_range_values_name_the_limit() -> None:
    """A port above 65535 is refused, naming the variable and the limit."""
    with pytest.raises(ConfigError, match=r"POSTROOM_HTTP_PORT: '70000' \(must be <= 65535\)"):
        load_settings(None, {"POSTROOM_HTTP_PORT": "70000"})


def test_out_of_range_file_value_names_the_key(tmp_path: Path) -> None:
    """A token lifetime above 162 h in the file is refused naming `auth.token_lifetime_s`."""
    path = _write(tmp_path, "[auth]\ntoken_lifetime_s = 999999999\n")
    with pytest.raises(
        ConfigError, match=r"auth.token_lifetime_s: 999999999 \(must be <= 583200\)"
    ):
        load_settings(path, {})


def test_unknown_variable_is_an_error_with_the_closest_name() -> None:
    """A mistyped POSTROOM_* variable is refused, suggesting the variable it probably meant."""
    with pytest.raises(ConfigError) as caught:
        load_settings(None, {"POSTROOM_HTTP_PROT": "9000"})
    assert str(caught.value) == (
        "unknown environment variable POSTROOM_HTTP_PROT (did you mean POSTROOM_HTTP_PORT?)"
    )
    # The client's own variables and the config path are not settings, and are not refused.
    client = {"POSTROOM_URL": "http://x", "POSTROOM_TOKEN": "t", "POSTROOM_PASSWORD": "p"}
    assert load_settings(None, client).http.port == 8000


def test_secrets_come_from_files(tmp_path: Path) -> None:
    """`<VAR>_FILE` names a file holding a secret (trailing newline dropped); not for others."""
    secret = tmp_path / "token"
    secret.write_text("s3cr3t-token\n", encoding="utf-8")
    settings = load_settings(None, {"POSTROOM_METRICS_TOKEN_FILE": str(secret)})
    assert settings.metrics.token == "s3cr3t-token"
    with pytest.raises(ConfigError, match="POSTROOM_METRICS_TOKEN_FILE"):
        load_settings(None, {"POSTROOM_METRICS_TOKEN_FILE": str(tmp_path / "missing")})
    with pytest.raises(ConfigError, match="unknown environment variable POSTROOM_HTTP_PORT_FILE"):
        load_settings(None, {"POSTROOM_HTTP_PORT_FILE": str(secret)})
