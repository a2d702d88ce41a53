"""Running `postroom serve` as a real subprocess (for start-up, signals and kill -9 tests)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import ADMIN_PASSWORD, PG_URL


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServeProcess:
    """`python -m postroom serve` with its own ports and data dir; output captured to a file."""

    def __init__(self, data_dir: Path, **env: str) -> None:
        self.data_dir = data_dir
        self.http_port = free_port()
        self.smtp_port = free_port()
        self.log_path = data_dir.parent / f"serve-{self.http_port}.log"
        self.env = {
            **os.environ,
            "POSTROOM_STORAGE_DATA_DIR": str(data_dir),
            "POSTROOM_HTTP_PORT": str(self.http_port),
            "POSTROOM_SMTP_PORT": str(self.smtp_port),
            "POSTROOM_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "POSTROOM_PIPELINE_POLL_INTERVAL": "0.1",
            "POSTROOM_PIPELINE_LEASE_S": "3",
            **({"POSTROOM_DATABASE_URL": PG_URL} if PG_URL else {}),
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout: float = 30.0) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "postroom", "serve"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited early:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.base + "/api/v1/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"serve did not become healthy:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text("utf-8", "replace") if self.log_path.exists() else ""

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 15.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
