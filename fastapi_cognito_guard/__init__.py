"""Strict, fast, offline verification of Amazon Cognito tokens for FastAPI.

The verifier core imports no web framework, so ``CognitoVerifier`` stays light in
a Lambda or a worker; the FastAPI and Starlette names load on first use (importing
them would add another half or more to the core's import time).

Type checkers see every name as a plain import (the ``TYPE_CHECKING`` block) and never
the module ``__getattr__``, so a misspelled import from this package is an error there.
To export a lazily loaded name, add it to that block, to ``_LAZY`` and to ``__all__``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from ._version import __version__
from .claims import AccessTokenClaims, CognitoUser, IdTokenClaims, TokenClaims
from .client_credentials import CognitoClientCredentials
from .errors import (
    AuthorizationError,
    ClientCredentialsError,
    CognitoGuardError,
    CognitoUnavailableError,
    CredentialsDeniedError,
    CredentialsUnavailableError,
    CsrfRejectedError,
    IdentityPoolConfigError,
    InsufficientScopeError,
    InsufficientUserAuthenticationError,
    InvalidTokenError,
    KeysUnavailableError,
    MissingGroupError,
    MissingTokenError,
    OAuthUnavailableError,
    ServiceUnavailableError,
    SessionsUnavailableError,
    SignInError,
)
from .identity import AwsCredentials, IdentityPoolClient
from .jwks import JWKSCache
from .revocation import RevocationList, SignOutResult
from .settings import CognitoSettings
from .verifier import CognitoVerifier

if TYPE_CHECKING:
    from .middleware import CognitoAuthBackend, CognitoAuthMiddleware
    from .route_records import RouteRecord, route_map
    from .web import (
        CognitoAuth,
        CognitoHTTPException,
        CurrentUser,
        OptionalUser,
        current_user,
        login_required,
        optional_user,
        require_any,
        require_auth,
        require_group,
        require_pool,
        require_scope,
    )

_LAZY = {
    "CognitoAuth": ".web",
    "CognitoHTTPException": ".web",
    "CurrentUser": ".web",
    "OptionalUser": ".web",
    "current_user": ".web",
    "login_required": ".web",
    "optional_user": ".web",
    "require_any": ".web",
    "require_auth": ".web",
    "require_group": ".web",
    "require_pool": ".web",
    "require_scope": ".web",
    "CognitoAuthBackend": ".middleware",
    "CognitoAuthMiddleware": ".middleware",
    "RouteRecord": ".route_records",
    "route_map": ".route_records",
}


if not TYPE_CHECKING:
    # Hidden from type checkers: a module ``__getattr__`` would make every unknown name
    # ``Any`` to them, so a misspelled import would pass ``mypy --strict``.

    def __getattr__(name: str) -> object:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(import_module(module, __name__), name)
        globals()[name] = value
        return value


__all__ = [
    "AccessTokenClaims",
    "AuthorizationError",
    "AwsCredentials",
    "ClientCredentialsError",
    "CognitoAuth",
    "CognitoAuthBackend",
    "CognitoAuthMiddleware",
    "CognitoClientCredentials",
    "CognitoGuardError",
    "CognitoHTTPException",
    "CognitoSettings",
    "CognitoUnavailableError",
    "CognitoUser",
    "CognitoVerifier",
    "CredentialsDeniedError",
    "CredentialsUnavailableError",
    "CsrfRejectedError",
    "CurrentUser",
    "IdTokenClaims",
    "IdentityPoolClient",
    "IdentityPoolConfigError",
    "InsufficientScopeError",
    "InsufficientUserAuthenticationError",
    "InvalidTokenError",
    "JWKSCache",
    "KeysUnavailableError",
    "MissingGroupError",
    "MissingTokenError",
    "OAuthUnavailableError",
    "OptionalUser",
    "RevocationList",
    "RouteRecord",
    "ServiceUnavailableError",
    "SessionsUnavailableError",
    "SignInError",
    "SignOutResult",
    "TokenClaims",
    "__version__",
    "current_user",
    "login_required",
    "optional_user",
    "require_any",
    "require_auth",
    "require_group",
    "require_pool",
    "require_scope",
    "route_map",
]
