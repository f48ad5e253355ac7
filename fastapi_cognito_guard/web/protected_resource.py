"""RFC 9728 protected-resource metadata: ``auth.protected_resource_router()``.

Agents (MCP clients among them) that meet a 401 look for the API's metadata to learn
which authorization server to sign in at and which scopes it knows. The router serves
it at ``/.well-known/oauth-protected-resource``, followed by the resource's path when
the resource has one (RFC 9728 §3.1):

- ``resource``: the first of the pool's ``audiences`` (the access tokens' ``aud``,
  RFC 8707), else the app's base URL;
- ``authorization_servers``: each user pool's issuer (Cognito serves its OpenID
  configuration under it);
- ``scopes_supported``: the scopes the app's guards name (``require_scope``,
  ``require_any``, ``Security(..., scopes=[...])``), gathered from the app's routes
  when served;
- ``bearer_methods_supported``: ``["header"]``.

Once the router exists, the auth's 401 challenges carry ``resource_metadata="…"``
(RFC 9728 §5.1) with the metadata's URL.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter
from fastapi.dependencies.models import Dependant
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.requests import HTTPConnection, Request
from starlette.routing import NoMatchFound

from ..guard_spec import spec_of
from ..settings import CognitoSettings

__all__ = ["WELL_KNOWN_PATH", "ProtectedResource"]

WELL_KNOWN_PATH = "/.well-known/oauth-protected-resource"
_ROUTE_NAME = "cognito_protected_resource"


class ProtectedResource:
    """The metadata of the resource one auth protects, and where it is served."""

    def __init__(self, settings: Sequence[CognitoSettings]) -> None:
        audiences = settings[0].audiences or ()
        self.resource: str | None = audiences[0] if audiences else None
        """The fixed resource identifier (the first audience, an absolute URI as the
        settings require); None: the app's base URL."""
        self.authorization_servers = list(dict.fromkeys(s.issuers[0] for s in settings))
        self.path = WELL_KNOWN_PATH + _path_of(self.resource)
        """Where the router serves the metadata within the app."""

    def resource_of(self, conn: HTTPConnection) -> str:
        """The resource identifier a request addresses."""
        return self.resource or str(conn.base_url).rstrip("/")

    def metadata_url(self, conn: HTTPConnection) -> str:
        """The metadata's URL for a 401 challenge: on the resource's own host for a fixed
        http(s) resource (RFC 9728 §3.1), else where this app serves it."""
        if self.resource is not None:
            parts = urlsplit(self.resource)
            if parts.scheme in ("http", "https"):
                return f"{parts.scheme}://{parts.netloc}{self.path}"
        try:
            return str(conn.url_for(_ROUTE_NAME))
        except NoMatchFound:  # the router was built but not included in this app
            return str(conn.base_url).rstrip("/") + self.path

    def document(self, request: Request) -> dict[str, Any]:
        """The RFC 9728 §2 metadata for the app serving ``request``."""
        return {
            "resource": self.resource_of(request),
            "authorization_servers": self.authorization_servers,
            "scopes_supported": sorted(set(_route_scopes(request.app.routes))),
            "bearer_methods_supported": ["header"],
        }

    def router(self) -> APIRouter:
        """A router serving the metadata (no authentication: it is public by design)."""
        router = APIRouter(include_in_schema=False)

        async def metadata(request: Request) -> JSONResponse:
            return JSONResponse(
                self.document(request), headers={"Cache-Control": "public, max-age=3600"}
            )

        router.add_api_route(self.path, metadata, methods=["GET"], name=_ROUTE_NAME)
        return router


def _path_of(resource: str | None) -> str:
    """The resource's path for the well-known URI (RFC 9728 §3.1), without a trailing
    slash; empty for none, ``/`` or a resource that is not an http(s) URL."""
    if resource is None:
        return ""
    parts = urlsplit(resource)
    if parts.scheme not in ("http", "https"):
        return ""
    return parts.path.rstrip("/")


def _route_scopes(routes: Sequence[Any]) -> Iterator[str]:
    """Every scope a route's dependencies declare (``Security(..., scopes=[...])``,
    which ``require_scope`` uses, and the scopes of the library's guards that check
    scopes themselves, ``require_any``), across the app's routes."""
    for route in routes:
        if isinstance(route, (APIRoute, APIWebSocketRoute)):
            yield from _dependant_scopes(route.dependant)


def _dependant_scopes(dependant: Dependant) -> Iterator[str]:
    yield from dependant.own_oauth_scopes or ()
    spec = spec_of(dependant.call)  # require_any's scopes are not FastAPI Security scopes
    if spec is not None:
        yield from spec.scopes
    for sub in dependant.dependencies:
        yield from _dependant_scopes(sub)
