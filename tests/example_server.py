"""Run ``python -m example_app`` for real: a uvicorn subprocess on 127.0.0.1.

``ExampleServer.start(log_dir, env={...})`` picks a free port, starts the app the
way a user does (``python -m example_app --port N``) with every ``COGNITO_*``
variable removed from its environment (then ``env`` added), and waits until
``GET /health`` answers. ``stderr`` is the start-up log so far; ``stop()``
terminates the process (SIGTERM, then SIGKILL after a grace period).

PYTEST_DONT_REWRITE (no asserts here).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

__all__ = ["ExampleServer", "free_port"]

REPO_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_SECONDS = 90.0  # polls /health; generous: a loaded 2-core machine starts slowly


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any ``COGNITO_*`` variable, plus ``extra``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("COGNITO_")}
    env.update(extra or {})
    return env


@dataclass
class ExampleServer:
    """A running ``python -m example_app`` and where its output goes."""

    process: subprocess.Popen[bytes]
    port: int
    stdout_path: Path
    stderr_path: Path
    _closed: bool = field(default=False, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stderr(self) -> str:
        """Everything the server logged to stderr so far (uvicorn's and the app's log)."""
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    @classmethod
    def start(cls, log_dir: Path, env: Mapping[str, str] | None = None) -> ExampleServer:
        """Start the example app and return once ``/health`` answers 200."""
        port = free_port()
        log_dir.mkdir(parents=True, exist_ok=True)
        stdout_path = log_dir / f"example_app_{port}.out"
        stderr_path = log_dir / f"example_app_{port}.err"
        with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "example_app", "--port", str(port)],
                cwd=REPO_ROOT,
                env=clean_environment(env),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
            )
        server = cls(process, port, stdout_path, stderr_path)
        try:
            server._wait_until_healthy()
        except BaseException:
            server.stop()
            raise
        return server

    def _wait_until_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"example_app exited with {self.process.returncode}:\n{self.stderr}"
                )
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"example_app did not answer /health:\n{self.stderr}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Terminate the server (SIGTERM: uvicorn shuts down cleanly) and reap it."""
        if self._closed:
            return
        self._closed = True
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
