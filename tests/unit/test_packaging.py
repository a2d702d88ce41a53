"""Packaging and deployment files: the image's build context and layer order, compose.yaml, the lock
files against pyproject.toml, and the dashboards and alerts against the metrics that exist."""

from __future__ import annotations

import ast
import json
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from prometheus_client import CollectorRegistry

from postroom import metrics
from postroom.config import HttpSettings
from postroom.pipeline import workers
from postroom.smtp import server as smtp_server

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


# --- the build context (.dockerignore) -------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus `**`) as a regex over a relative path."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out += pattern[i : end + 1]
            i = end + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


def _dockerignore() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        rules.append((negated, _pattern_regex(pattern)))
    return rules


def in_build_context(path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for negated, regex in _dockerignore():
        if any(regex.match(prefix) for prefix in prefixes):
            excluded = not negated
    return not excluded


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def test_the_build_context_leaves_out_the_venv_the_data_dir_git_and_caches() -> None:
    for path in (
        ".venv/bin/python",
        ".venv/lib/python3.11/site-packages/aiohttp/__init__.py",
        "postroom-data/postroom.sqlite3",
        "postroom-data/blobs/ab/ab12",
        ".git/HEAD",
        ".mypy_cache/3.11/x.json",
        ".ruff_cache/x",
        ".pytest_cache/v/x",
        ".import_linter_cache/x",
        "tests/conftest.py",
        "bench/bench_instances.py",
        ".lock-venv/bin/pip-compile",
        "src/postroom/__pycache__/app.cpython-311.pyc",
        "src/postroom.egg-info/PKG-INFO",
        ".env",
    ):
        assert not in_build_context(path), path
    for path in ("pyproject.toml", "requirements.lock", "src/postroom/app.py", "README.md"):
        assert in_build_context(path), path


def test_everything_the_dockerfile_copies_is_in_the_build_context() -> None:
    copies = [args.split() for word, args in _dockerfile() if word == "COPY"]
    assert copies
    for args in copies:
        sources = [a for a in args[:-1] if not a.startswith("--")]
        for source in sources:
            path = ROOT / source
            assert path.exists(), source
            files = [path] if path.is_file() else [p for p in path.rglob("*.py")]
            assert files, source
            for file in files:
                assert in_build_context(file.relative_to(ROOT).as_posix()), file


def test_the_image_installs_the_locked_dependencies_before_it_copies_the_source() -> None:
    steps = _dockerfile()

    def first(word: str, pattern: str) -> int:
        found = [n for n, (w, a) in enumerate(steps) if w == word and re.search(pattern, a)]
        assert found, (word, pattern)
        return found[0]

    copy_lock = first("COPY", r"^requirements\.lock ")
    install_deps = first("RUN", r"pip install .*-r requirements\.lock")
    copy_src = first("COPY", r"^src ")
    install_package = first("RUN", r"pip install --no-deps \.")
    assert copy_lock < install_deps < copy_src < install_package
    # Nothing between the dependency layer and the source copies the source tree.
    assert all(not a.startswith(("src", ".")) for w, a in steps[copy_lock:copy_src] if w == "COPY")


def test_the_image_runs_unprivileged_with_a_healthcheck_and_a_graceful_stop() -> None:
    steps = _dockerfile()
    words = [w for w, _ in steps]
    user = steps[len(words) - 1 - words[::-1].index("USER")][1]
    assert user not in ("root", "0")
    assert ("STOPSIGNAL", "SIGTERM") in steps
    healthcheck = next(a for w, a in steps if w == "HEALTHCHECK")
    assert "postroom-healthcheck" in healthcheck
    assert "POSTROOM_HTTP_PORT" in (ROOT / "docker/healthcheck.py").read_text()
    assert steps[-1] == ("CMD", '["postroom", "serve"]')  # exec form: postroom gets the signal


# --- compose.yaml ---------------------------------------------------------------------------


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration))


def test_compose_runs_two_postroom_instances_on_postgres_with_minio() -> None:
    services = _compose()["services"]
    postroom = {name: s for name, s in services.items() if s.get("build") == "."}
    assert len(postroom) == 2
    assert any(str(s.get("image", "")).startswith("postgres:") for s in services.values())
    assert any(str(s.get("image", "")).startswith("minio/minio") for s in services.values())
    host_ports = set()
    for name, service in postroom.items():
        env = service["environment"]
        assert env["POSTROOM_DATABASE_URL"].startswith("postgresql+asyncpg://"), name
        assert "@postgres:5432/" in env["POSTROOM_DATABASE_URL"], name
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        # Both share one data directory (the blob store, until the S3 backend exists).
        assert "postroom-data:/data" in service["volumes"], name
        host_ports.update(port.split(":")[0] for port in service["ports"])
        assert service["init"] is True
        assert service["stop_signal"] == "SIGTERM"
    assert len(host_ports) == 4  # no two instances publish the same host port


def test_every_long_running_compose_service_has_a_healthcheck_and_a_volume() -> None:
    compose = _compose()
    for name, service in compose["services"].items():
        if service.get("restart") == "no":  # one-shot setup jobs
            continue
        assert service["healthcheck"]["test"], name
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in compose["volumes"], (name, volume)


def test_compose_gives_postroom_time_to_drain_before_sigkill() -> None:
    notices_s = 10.0  # smtp/server.py: notifier.drain(10.0)
    drain = (
        HttpSettings().shutdown_timeout + smtp_server.STOP_GRACE_S + notices_s
    ) + workers.STOP_GRACE_S
    for name, service in _compose()["services"].items():
        if service.get("build") == ".":
            assert _seconds(service["stop_grace_period"]) > drain, name


# --- lock files -----------------------------------------------------------------------------


def _lock(name: str) -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        assert not line.startswith("-"), f"{name}: options make the lock machine-specific: {line}"
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([^\s;]+)", line)
        assert match, f"{name}: not an exact pin: {line}"
        pins[canonicalize_name(match[1])] = Version(match[2])
    return pins


def _requirements(*groups: str) -> list[Requirement]:
    project = PYPROJECT["project"]
    found = [Requirement(r) for r in project["dependencies"]]
    for group in groups:
        found += [Requirement(r) for r in project["optional-dependencies"][group]]
    return found


def test_the_lock_files_pin_every_dependency_within_its_declared_range() -> None:
    for lock, groups in (("requirements.lock", ()), ("requirements-test.lock", ("test",))):
        pins = _lock(lock)
        for requirement in _requirements(*groups):
            name = canonicalize_name(requirement.name)
            assert name in pins, f"{lock} lacks {name}: run `make lock`"
            assert requirement.specifier.contains(pins[name], prereleases=True), (
                f"{lock}: {name}=={pins[name]} is outside {requirement.specifier}: run `make lock`"
            )


def test_the_image_runs_the_versions_ci_tests() -> None:
    runtime, test = _lock("requirements.lock"), _lock("requirements-test.lock")
    assert {name: test.get(name) for name in runtime} == runtime


def test_libraries_whose_internals_postroom_uses_have_an_upper_bound() -> None:
    bounds = {canonicalize_name(r.name): r.specifier for r in _requirements()}
    # smtp/session.py and smtp/handler.py use aiosmtpd's private members.
    assert not bounds["aiosmtpd"].contains("1.5.0")
    assert bounds["aiosmtpd"].contains("1.4.6")
    assert not bounds["aiohttp"].contains("4.0.0")
    # intake/dns_lookup.py replaces pyspf's DNSLookup; intake/mail_auth.py reads DKIM.headers.
    assert not bounds["pyspf"].contains("2.1.0")
    assert not bounds["dkimpy"].contains("1.2.0")


def _third_party_imports() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "src/postroom").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "postroom"}


def test_every_library_the_code_imports_is_a_declared_dependency() -> None:
    declared = {canonicalize_name(r.name) for r in _requirements()}
    providers = packages_distributions()
    undeclared = {
        module: providers.get(module)
        for module in _third_party_imports()
        if not {canonicalize_name(d) for d in providers.get(module, [])} & declared
    }
    assert undeclared == {}


# --- dashboards, alerts and docs name real metrics ----------------------------------------------


def _series_names(registry: CollectorRegistry) -> set[str]:
    suffixes = {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
    }
    return {
        family.name + suffix for family in registry.collect() for suffix in suffixes[family.type]
    }


SERIES = _series_names(metrics.REGISTRY)
HISTOGRAMS = {f.name for f in metrics.REGISTRY.collect() if f.type == "histogram"}
METRIC_NAME = re.compile(r"\bpostroom_[a-z_]+\b(?![-\w])")  # not postroom_postroom-data


def _grafana_expressions() -> list[str]:
    dashboard = json.loads((ROOT / "docs/grafana/postroom.json").read_text())
    exprs = [
        target["expr"]
        for panel in dashboard["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            exprs.append(query["query"])
    return exprs


def test_the_grafana_dashboard_charts_only_metrics_that_exist() -> None:
    exprs = _grafana_expressions()
    assert len(exprs) > 10
    for expr in exprs:
        used = set(METRIC_NAME.findall(expr))
        # Every query reads Postroom's metrics, except the instance count (Prometheus's `up`).
        assert used or expr.startswith("sum(up"), expr
        assert used <= SERIES, (expr, used - SERIES)


def test_the_alert_rules_use_only_metrics_that_exist() -> None:
    rules = yaml.safe_load((ROOT / "docs/prometheus/postroom-alerts.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert exprs
    for expr in exprs:
        assert set(METRIC_NAME.findall(expr)) <= SERIES, expr


def test_the_deployment_guide_names_only_metrics_that_exist() -> None:
    named = set(METRIC_NAME.findall((ROOT / "docs/DEPLOY.md").read_text()))
    assert named
    assert named <= SERIES | HISTOGRAMS, named - SERIES - HISTOGRAMS
