"""uvicorn on a free 127.0.0.1 port in a thread, with its log lines captured.

PYTEST_DONT_REWRITE (no asserts here).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

__all__ = ["LogLines", "uvicorn_server"]

_LOGGERS = ("uvicorn.error", "uvicorn.access")
"""Where uvicorn logs (the WebSocket "[accepted]" lines go to ``uvicorn.error``)."""


class LogLines(logging.Handler):
    """Keeps every formatted record of the loggers it is attached to."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@contextmanager
def uvicorn_server(app: Any, **config: Any) -> Iterator[tuple[str, LogLines]]:
    """Serve ``app`` with uvicorn (access log on, ``config`` overrides) on a free
    127.0.0.1 port; yield its base URL and the lines uvicorn logged."""
    captured = LogLines()
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    for logger in loggers:
        logger.addHandler(captured)
    settings: dict[str, Any] = {"log_level": "info", "log_config": None, **config}
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, **settings))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn stopped during start-up")
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start in 10 s")
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}", captured
    finally:
        server.should_exit = True
        thread.join(10)
        for logger in loggers:
            logger.removeHandler(captured)
