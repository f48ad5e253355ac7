"""A real ``redis-server`` for the tests: a free 127.0.0.1 port, no persistence.

``RedisServer.start(port=None)`` runs Debian's ``redis-server`` with ``--save ""
--appendonly no`` (nothing on disk, so a restart comes back empty, as a Redis
without persistence does) and waits until it answers ``PING``; ``stop()`` ends
that process by its pid. ``start(port=server.port)`` brings one back on the same
port. The ``redis_server`` fixture yields a running one per test; tests skip when
no ``redis-server`` is installed unless ``FCG_REQUIRE_REDIS`` is set (CI).

``RedisProxy`` stands between the app and a running server on another loopback
port: ``cut()`` drops every connection and refuses new ones (Redis keeps its
data, as in a network partition), ``mend()`` listens again on the same port.

PYTEST_DONT_REWRITE (no asserts here).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.example_server import free_port

__all__ = ["RedisProxy", "RedisServer", "redis_server"]

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


class RedisProxy:
    """A loopback TCP proxy to ``target_port`` that can be cut and mended."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def mend(self) -> None:
        """Listen (again) on ``port`` and relay every connection to the target."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Drop every relayed connection and stop listening (connections refused)."""
        with self._lock:
            doomed, self._sockets = self._sockets, []
            if self._listener is not None:
                doomed.append(self._listener)
                self._listener = None
        for sock in doomed:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    client.close()
                    upstream.close()
                    return
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()

    def __enter__(self) -> RedisProxy:
        self.mend()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cut()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    for sock in (source, sink):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
