"""Configuration at the command line: `postroom serve` with bad settings, `config defaults` and
`config show`."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from postroom.config import load_settings, render_default_toml

REPO = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, text: str) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "postroom.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _serve(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {key: value for key, value in os.environ.items() if not key.startswith("POSTROOM_")}
    environ.update(POSTROOM_STORAGE_DATA_DIR=str(tmp_path / "data"), **env)
    return subprocess.run(
        [sys.executable, "-m", "postroom", *args, "serve"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"POSTROOM_HTTP_PORT": "abc"}, "POSTROOM_HTTP_PORT: 'abc'"),
        ({"POSTROOM_DATABASE_URL": "mysql://db/x"}, "database.url: 'mysql://db/x'"),
        ({"POSTROOM_PIPELINE_WORKERS": "-3"}, "POSTROOM_PIPELINE_WORKERS: '-3'"),
        (
            {"POSTROOM_HTTP_PROT": "9000"},
            "unknown environment variable POSTROOM_HTTP_PROT (did you mean POSTROOM_HTTP_PORT?)",
        ),
        (
            {"POSTROOM_SMTP_RELAY_PASSWORD_FILE": "/nonexistent/x"},
            "POSTROOM_SMTP_RELAY_PASSWORD_FILE",
        ),
    ],
)
def test_serve_with_bad_value_exits_with_one_line(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    """`postroom serve` with a bad value exits non-zero with one stderr line and no traceback."""
    result = _serve(tmp_path, **env)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "data").exists()  # nothing started, nothing created


def test_out_of_range_port_names_the_variable_and_exits_2(tmp_path: Path) -> None:
    """`POSTROOM_HTTP_PORT=70000 postroom serve`: one line naming the variable and the range,
    exit 2 (a configuration mistake), no traceback."""
    result = _serve(tmp_path, POSTROOM_HTTP_PORT="70000")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "postroom: configuration error: invalid value for POSTROOM_HTTP_PORT: '70000' "
        "(must be <= 65535)"
    )
    assert result.stdout == ""


def test_serve_with_bad_config_file_path(tmp_path: Path) -> None:
    """`--config` naming a missing file stops start-up with one line naming the file."""
    result = _serve(tmp_path, "--config", str(tmp_path / "missing.toml"))
    assert result.returncode != 0
    assert str(tmp_path / "missing.toml") in result.stderr
    assert "Traceback" not in result.stderr


def test_shipped_file_is_the_rendered_defaults() -> None:
    """config/postroom.toml is exactly `postroom config`, and loading it gives the defaults."""
    shipped = (REPO / "config" / "postroom.toml").read_text(encoding="utf-8")
    printed = subprocess.run(
        [sys.executable, "-m", "postroom", "config"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert printed == shipped == render_default_toml()
    assert load_settings(REPO / "config" / "postroom.toml", {}) == load_settings(None, {})


def test_config_show_masks_secrets_and_names_sources(tmp_path: Path) -> None:
    """`postroom config show` prints effective values with their source; secrets never."""
    config = _write(tmp_path, "[http]\nport = 9100\n")
    environ = {key: value for key, value in os.environ.items() if not key.startswith("POSTROOM_")}
    environ.update(
        POSTROOM_DATABASE_URL="postgresql+asyncpg://app:hunter2pw@db/postroom",
        POSTROOM_METRICS_TOKEN="scrape-me-secret",
        POSTROOM_LOG_LEVEL="debug",
        POSTROOM_BOOTSTRAP_ADMIN_PASSWORD_FILE=str(_write(tmp_path / "x", "from-a-file-pw\n")),
    )
    result = subprocess.run(
        [sys.executable, "-m", "postroom", "--config", str(config), "config", "show"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    shown = result.stdout
    assert "hunter2pw" not in shown and "scrape-me-secret" not in shown
    assert 'url = "postgresql+asyncpg://app:***@db/postroom"  # env POSTROOM_DATABASE_URL' in shown
    assert 'token = "***"  # env POSTROOM_METRICS_TOKEN' in shown
    assert f"port = 9100  # file {config}" in shown
    assert 'level = "DEBUG"  # env POSTROOM_LOG_LEVEL' in shown
    assert "port = 2525  # default" in shown
    assert "from-a-file-pw" not in shown
    assert 'admin_password = "***"  # env POSTROOM_BOOTSTRAP_ADMIN_PASSWORD_FILE' in shown
    assert tomllib.loads(shown)["http"]["port"] == 9100
