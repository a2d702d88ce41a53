"""The end of a `postroom upload` run on stdout: a table for people, or `--json` for programs.

The JSON summary is one object:
  {"server", "queue", "exit_code", "error" (null, or the line that stopped the run),
   "totals": {"files", "bytes", "ok", "failed"}, "counts": {result: n},
   "files": [{"path", "size", "sha256", "result", "ok", "detail",
              "document", "annotation", "task"}],
   "failures": [{"path", "result", "detail"}]}
`result` is `uploaded`, `already_uploaded` (--resume), `skipped`, `failed`, `not_sent` (the run
stopped first) or, with --wait, the annotation's status (`to_review`, `failed_import`, …).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any, TextIO

from postroom.client.outcomes import Outcome
from postroom.client.progress import counts_text


def print_table(outcomes: Sequence[Outcome], stream: TextIO = sys.stdout) -> None:
    rows = [("FILE", "SIZE", "RESULT", "ANNOTATION", "DETAIL")]
    rows += [
        (str(o.path), str(o.size), o.result, o.annotation_id, o.detail.replace("\n", " ")[:100])
        for o in outcomes
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        cells = [row[i].ljust(widths[i]) for i in range(4)] + [row[4]]
        stream.write("  ".join(cells).rstrip() + "\n")
    counts = Counter(o.result for o in outcomes)
    stream.write(f"{len(outcomes)} files: {counts_text(counts)}\n")


def summary(
    outcomes: Sequence[Outcome], *, server: str, queue: int, exit_code: int, error: str | None
) -> dict[str, Any]:
    files = [
        {
            "path": str(o.path),
            "size": o.size,
            "sha256": o.sha256 or None,
            "result": o.result,
            "ok": o.ok,
            "detail": o.detail or None,
            "document": o.document_url,
            "annotation": o.annotation_url,
            "task": o.task_url,
        }
        for o in outcomes
    ]
    return {
        "server": server,
        "queue": f"{server}/api/v1/queues/{queue}",
        "exit_code": exit_code,
        "error": error,
        "totals": {
            "files": len(outcomes),
            "bytes": sum(o.size for o in outcomes),
            "ok": sum(o.ok for o in outcomes),
            "failed": sum(not o.ok for o in outcomes),
        },
        "counts": dict(sorted(Counter(o.result for o in outcomes).items())),
        "files": files,
        "failures": [
            {"path": str(o.path), "result": o.result, "detail": o.detail or None}
            for o in outcomes
            if not o.ok
        ],
    }


def print_json(report: dict[str, Any], stream: TextIO = sys.stdout) -> None:
    stream.write(json.dumps(report, indent=2) + "\n")
