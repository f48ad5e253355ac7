"""Which paths a ``CognitoAuthMiddleware`` leaves open: ``PathExclusions``.

Shared by the middleware (which enforces them) and the route map (which reports the
entry that opens each route), so both read ``exclude_paths`` the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from starlette.types import Scope

__all__ = ["HEALTH_PATH", "PathExclusions", "docs_paths", "route_path"]

HEALTH_PATH = "/health"


class PathExclusions:
    """The paths a ``CognitoAuthMiddleware`` leaves open, matched exactly.

    An entry matches one path; an entry ending in ``/*`` matches every path that
    starts with the part before the ``*`` (``/static/*``: ``/static/app.js``, not
    ``/static``). Anything else that could open more than meant is a ``ValueError``.
    """

    def __init__(self, entries: Iterable[str]) -> None:
        if isinstance(entries, (str, bytes)):
            raise ValueError(
                "exclude_paths takes a list of paths, not one string "
                '(exclude_paths=["/health"], not exclude_paths="/health")'
            )
        exact: set[str] = set()
        prefixes: list[str] = []
        for entry in entries:
            if not isinstance(entry, str) or not entry.startswith("/"):
                raise ValueError(
                    f"exclude_paths entries are paths starting with '/', got {entry!r}"
                )
            wildcard = entry.endswith("/*")
            if "*" in (entry[:-1] if wildcard else entry):
                raise ValueError(
                    f"exclude_paths entry {entry!r}: '*' is only allowed as a final '/*'"
                )
            if wildcard:
                prefixes.append(entry[:-1])
            else:
                exact.add(entry)
        self.exact = frozenset(exact)
        self.prefixes = tuple(prefixes)

    def __contains__(self, path: str) -> bool:
        return path in self.exact or path.startswith(self.prefixes)

    def entry_for(self, path: str) -> str | None:
        """The entry that opens ``path`` (``/static/*`` for a prefix entry), if any."""
        if path in self.exact:
            return path
        return next((f"{prefix}*" for prefix in self.prefixes if path.startswith(prefix)), None)


def route_path(scope: Scope) -> str:
    """The path within the app: without the ``root_path`` (a proxy prefix or the
    ``Mount`` the app sits under)."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        rest = path[len(root_path) :]
        if not rest:
            return "/"
        if rest.startswith("/"):
            return rest
    return path


def docs_paths(app: Any) -> tuple[str | None, ...]:
    """FastAPI's own documentation paths, as the app configured them."""
    if not isinstance(app, FastAPI):
        return ()
    redirect = app.swagger_ui_oauth2_redirect_url if app.docs_url else None
    return (app.docs_url, redirect, app.redoc_url, app.openapi_url)
