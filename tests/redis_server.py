"""A real ``redis-server`` for the tests: a free 127.0.0.1 port, no persistence.

``RedisServer.start(port=None)`` runs Debian's ``redis-server`` with ``--save ""
--appendonly no`` (nothing on disk, so a restart comes back empty, as a Redis
without persistence does) and waits until it answers ``PING``; ``stop()`` ends
that process by its pid. ``start(port=server.port)`` brings one back on the same
port. The ``redis_server`` fixture yields a running one per test; tests skip when
no ``redis-server`` is installed unless ``FCG_REQUIRE_REDIS`` is set (CI).

PYTEST_DONT_REWRITE (no asserts here).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.example_server import free_port

__all__ = ["RedisServer", "redis_server"]

START_TIMEOUT_SECONDS = 10.0


def _binary() -> str:
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
    )
    if found is None:
        if os.environ.get("FCG_REQUIRE_REDIS"):
            raise RuntimeError("redis-server is required (FCG_REQUIRE_REDIS is set)")
        pytest.skip("redis-server is not installed")
    return found


@dataclass
class RedisServer:
    """One running ``redis-server`` process."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @classmethod
    def start(cls, log_dir: Path, port: int | None = None) -> RedisServer:
        port = port or free_port()
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"redis_{port}.log"
        command = [
            _binary(),
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(log_dir),
            "--logfile", str(log_path),
        ]  # fmt: skip
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        server = cls(process, port, log_path)
        server._wait_until_answering()
        return server

    def _wait_until_answering(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not answer PING")

    def stop(self) -> None:
        """Kill this server (by its pid) and reap it."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh, empty ``redis-server`` for one test."""
    server = RedisServer.start(tmp_path / "redis")
    try:
        yield server
    finally:
        server.stop()
