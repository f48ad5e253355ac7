"""OpenAPI and Swagger UI: how guarded routes are documented.

Without an OAuth2 URL the scheme is HTTP bearer; with one (``domain`` or
``oauth_url``) it is OAuth2's authorization code flow with PKCE, so Swagger UI's
Authorize button signs in through the hosted UI. A route's guard is its own security
scheme, whose model is looked up when the schema is built: the module-level
dependencies describe the auth of the app generating its schema.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.openapi.models import OAuth2 as OAuth2Model
from fastapi.openapi.models import OAuthFlowAuthorizationCode, OAuthFlows
from fastapi.openapi.models import SecurityBase as SecurityBaseModel
from fastapi.security.base import SecurityBase
from starlette.requests import HTTPConnection

from ..settings import CognitoSettings
from .tokens import connection_token

__all__ = [
    "BearerScheme",
    "Describe",
    "DescribedScheme",
    "bearer_scheme",
    "describing_app_auth",
    "openapi_scheme",
    "swagger_ui_init_oauth",
    "wrap_openapi",
]

Describe = Callable[[], tuple[str, SecurityBaseModel]]
"""Names a security scheme and gives its OpenAPI model."""

_ERROR_SCHEMA = "CognitoError"
_GUARD_RESPONSES = {
    "401": "Missing or invalid token",
    "403": "The token lacks a required group or scope",
}
_describing: ContextVar[Describe | None] = ContextVar("_describing", default=None)


class DescribedScheme(SecurityBase):
    """A security scheme whose OpenAPI model is looked up when the schema is built."""

    def __init__(self, describe: Describe) -> None:
        self._describe = describe

    @property
    def describe(self) -> Describe:
        """How this scheme names itself in OpenAPI."""
        return self._describe

    # FastAPI types ``model`` and ``scheme_name`` as plain attributes today; the ignores
    # also hold (unused-ignore) should its stubs ever declare them as properties.
    @property
    def model(self) -> SecurityBaseModel:  # type: ignore[override, unused-ignore]
        return self._describe()[1]

    @property
    def scheme_name(self) -> str:  # type: ignore[override, unused-ignore]
        return self._describe()[0]


class BearerScheme(DescribedScheme):
    """Reads the bearer token; its OpenAPI model says how Swagger UI obtains one."""

    async def __call__(self, conn: HTTPConnection) -> str | None:
        return connection_token(conn.scope)


def bearer_scheme() -> tuple[str, SecurityBaseModel]:
    """Plain HTTP bearer with JWTs: the scheme without an OAuth2 URL."""
    return "CognitoBearer", HTTPBearerModel(bearerFormat="JWT")


def openapi_scheme(settings: CognitoSettings | None) -> tuple[str, SecurityBaseModel]:
    """The scheme for the pool whose OAuth2 URL Swagger UI signs in with (None: bearer)."""
    base = None if settings is None else settings.oauth_base_url
    if settings is None or base is None:
        return bearer_scheme()
    flow = OAuthFlowAuthorizationCode(
        authorizationUrl=f"{base}/oauth2/authorize",
        tokenUrl=f"{base}/oauth2/token",
        scopes={scope: scope for scope in settings.login_scopes},
    )
    return "CognitoOAuth2", OAuth2Model(flows=OAuthFlows(authorizationCode=flow))


def swagger_ui_init_oauth(settings: CognitoSettings | None) -> dict[str, Any] | None:
    """Swagger UI's OAuth settings (code flow with PKCE) for the pool with an OAuth2 URL."""
    if settings is None:
        return None
    return {
        "clientId": settings.client_ids[0],
        "usePkceWithAuthorizationCodeGrant": True,
        "scopes": " ".join(settings.login_scopes),
    }


def describing_app_auth() -> Describe | None:
    """The scheme of the auth whose app is generating its OpenAPI schema right now."""
    return _describing.get()


def wrap_openapi(app: FastAPI, generate: Callable[[], dict[str, Any]], describe: Describe) -> Any:
    """The app's OpenAPI generation, describing this auth: every scope a route requires
    joins the OAuth2 flow, and guarded routes list their 401/403 answers."""
    if getattr(generate, "_cognito_guard", False):
        return generate

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        token = _describing.set(describe)
        try:
            schema = generate()
        finally:
            _describing.reset(token)
        _document_guarded_operations(schema)
        return schema

    openapi._cognito_guard = True  # type: ignore[attr-defined]
    return openapi


def _document_guarded_operations(schema: dict[str, Any]) -> None:
    """Complete what FastAPI generates for guarded operations: each scope a security
    requirement names joins its OAuth2 flow (so Swagger UI can request it), and the
    401/403 answers are listed with the ``{detail, code}`` body."""
    schemes = schema.get("components", {}).get("securitySchemes", {})
    guarded = False
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            requirements = operation.get("security", ()) if isinstance(operation, dict) else ()
            ours = [r for r in requirements if any(name in schemes for name in r)]
            for requirement in ours:
                for name, scopes in requirement.items():
                    flow = schemes.get(name, {}).get("flows", {}).get("authorizationCode")
                    if flow is not None:
                        for scope in scopes:
                            flow.setdefault("scopes", {}).setdefault(scope, scope)
            if ours:
                guarded = True
                responses = operation.setdefault("responses", {})
                for status, description in _GUARD_RESPONSES.items():
                    responses.setdefault(status, _error_response_doc(description))
    if guarded:
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault(_ERROR_SCHEMA, _error_body())


def _error_body() -> dict[str, Any]:
    """The JSON schema of the ``{detail, code}`` error body."""
    return {
        "title": _ERROR_SCHEMA,
        "type": "object",
        "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
        "required": ["detail", "code"],
    }


def _error_response_doc(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{_ERROR_SCHEMA}"}}
        },
    }
