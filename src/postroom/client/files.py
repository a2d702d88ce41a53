"""Which files `postroom upload` sends: files named, and files found under folders named.

Folders are walked recursively in a stable (sorted) order; hidden files and folders are skipped.
`--include` / `--exclude` globs filter what is found under folders (files named on the command
line are always sent). A glob with a `/` matches the path relative to the folder named (`**`
is not special: `*` already crosses `/`); one without matches the file name. A file is taken when
it matches some include (or there is none) and no exclude.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from postroom.client.outcomes import UsageError

CHUNK = 1 << 20


@dataclass(frozen=True)
class Globs:
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def take(self, relative: str) -> bool:
        """Whether a file found under a folder (its path relative to that folder, with `/`)."""
        name = relative.rsplit("/", 1)[-1]

        def hit(pattern: str) -> bool:
            return fnmatch.fnmatchcase(relative if "/" in pattern else name, pattern)

        if self.include and not any(hit(p) for p in self.include):
            return False
        return not any(hit(p) for p in self.exclude)


def collect_files(paths: Sequence[str], globs: Globs = Globs()) -> list[Path]:
    """The files named, and the files under the folders named that the globs take, each once."""
    found: list[Path] = []
    seen: set[Path] = set()

    def add(path: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            found.append(path)

    for raw in paths:
        path = Path(raw)
        if path.is_file():
            add(path)
        elif path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(f for f in files if not f.startswith(".")):
                    full = Path(root) / name
                    if globs.take(full.relative_to(path).as_posix()):
                        add(full)
        else:
            raise UsageError(f"no such file or folder: {raw}")
    return found


def sha256_of(path: Path) -> str:
    """The file's sha256 in hex (read in 1 MiB chunks; run it in a thread)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
