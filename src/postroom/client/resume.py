"""What `postroom upload --resume` knows was uploaded already: a small local state file.

Every file the server accepted is appended as one JSON line (server, queue, sha256, the
annotation and document URLs, the path it had) to `$XDG_CACHE_HOME/postroom/uploaded.jsonl`
(`~/.cache/…` by default, `--state-file` to choose). Runs without `--resume` record too, so an
interrupted run can be resumed. A file is known when the same bytes (sha256) went to the same
queue of the same server, whatever its name or folder now. Lines that cannot be read are ignored;
a state file that cannot be written costs a warning, never the upload.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from postroom.clock import iso, utcnow

Key = tuple[str, int, str]


def default_state_file() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "postroom" / "uploaded.jsonl"


@dataclass
class UploadState:
    path: Path
    server: str
    queue: int
    known: dict[Key, dict[str, Any]] = field(default_factory=dict)
    warning: str | None = None

    @classmethod
    def load(cls, path: Path, server: str, queue: int) -> UploadState:
        state = cls(path, server, queue)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return state
        except OSError as exc:
            state.warning = f"cannot read the state file {path}: {exc.strerror or exc}"
            return state
        for line in lines:
            try:
                entry = json.loads(line)
                key = (str(entry["server"]), int(entry["queue"]), str(entry["sha256"]))
            except (ValueError, KeyError, TypeError):
                continue
            state.known[key] = entry
        return state

    def find(self, sha256: str) -> dict[str, Any] | None:
        return self.known.get((self.server, self.queue, sha256))

    def record(self, sha256: str, file: Path, annotation: str | None, document: str | None) -> None:
        entry = {
            "server": self.server,
            "queue": self.queue,
            "sha256": sha256,
            "annotation": annotation,
            "document": document,
            "path": str(file),
            "at": iso(utcnow()),
        }
        self.known[(self.server, self.queue, sha256)] = entry
        if self.warning is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry) + "\n")
        except OSError as exc:
            self.warning = f"cannot write the state file {self.path}: {exc.strerror or exc}"
