"""Starting real `strongroom serve` processes for tests (TLS, bootstrap password, a free port)."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

PASSWORD = "correct-horse-battery-staple-2022"
_LISTENING = re.compile(r"listening on (https?://\S+)")


@dataclass
class LiveServer:
    url: str
    data_dir: Path
    config_dir: Path
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)
    password: str = PASSWORD

    @property
    def ca(self) -> Path:
        return self.config_dir / "certs" / "http_ca.crt"

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def client(self, **kwargs):  # type: ignore[no-untyped-def]
        from elasticsearch import Elasticsearch
        return Elasticsearch(self.url, ca_certs=str(self.ca), basic_auth=("admin", self.password),
                             request_timeout=60, **kwargs)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_text(self) -> str:
        return "".join(self.output)


def run_strongroom(args: list[str], *, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "strongroom", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=full_env)


def start_server(data_dir: Path, config_dir: Path, *, extra: list[str] | None = None,
                 env: dict[str, str] | None = None, password: str = PASSWORD, timeout: float = 60.0) -> LiveServer:
    args = ["serve", "--data-dir", str(data_dir), "--config-dir", str(config_dir), "--port", "0", *(extra or [])]
    process = run_strongroom(args, env={"STRONGROOM_BOOTSTRAP_PASSWORD": password, **(env or {})})
    lines: queue.Queue[str | None] = queue.Queue()
    output: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            process.kill()
            raise RuntimeError("server did not start in time:\n" + "".join(output)) from None
        if line is None:
            process.wait()
            raise RuntimeError(f"server exited with {process.returncode}:\n" + "".join(output))
        match = _LISTENING.search(line)
        if match:
            return LiveServer(match.group(1), data_dir, config_dir, process, output, password)
