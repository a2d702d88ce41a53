"""The package itself: every module imports on its own and none shadows a standard-library name."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import postroom

MODULES = sorted(m.name for m in pkgutil.walk_packages(postroom.__path__, "postroom."))


def test_the_package_is_a_regular_package_with_a_version() -> None:
    assert postroom.__file__ is not None and postroom.__file__.endswith("__init__.py")
    assert postroom.__version__


def test_no_module_is_named_like_a_standard_library_module() -> None:
    clashing = [
        name
        for name in MODULES
        if name.rsplit(".", 1)[-1] in sys.stdlib_module_names and ".migrations." not in name
    ]
    assert clashing == []


def test_every_module_imports_on_its_own() -> None:
    for name in MODULES:
        if ".migrations." in name or name.endswith("__main__"):  # run by Alembic; runs the CLI
            continue
        importlib.import_module(name)
