"""Strict, fast, offline verification of Amazon Cognito tokens for FastAPI.

The verifier core imports no web framework, so ``CognitoVerifier`` stays light in
a Lambda or a worker; the FastAPI and Starlette names load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .claims import AccessTokenClaims, CognitoUser, IdTokenClaims, TokenClaims
from .errors import (
    AuthorizationError,
    CognitoGuardError,
    CognitoUnavailableError,
    CredentialsDeniedError,
    CredentialsUnavailableError,
    CsrfRejectedError,
    IdentityPoolConfigError,
    InsufficientScopeError,
    InvalidTokenError,
    KeysUnavailableError,
    MissingGroupError,
    MissingTokenError,
    OAuthUnavailableError,
    ServiceUnavailableError,
    SignInError,
)
from .identity import AwsCredentials, IdentityPoolClient
from .jwks import JWKSCache
from .revocation import RevocationList, SignOutResult
from .settings import CognitoSettings
from .verifier import CognitoVerifier

if TYPE_CHECKING:
    from .fastapi import (
        CognitoAuth,
        CognitoHTTPException,
        CurrentUser,
        OptionalUser,
        current_user,
        login_required,
        optional_user,
        require_any,
        require_group,
        require_pool,
        require_scope,
    )
    from .middleware import CognitoAuthBackend, CognitoAuthMiddleware

__version__ = "0.1.0"

_LAZY = {
    "CognitoAuth": ".fastapi",
    "CognitoHTTPException": ".fastapi",
    "CurrentUser": ".fastapi",
    "OptionalUser": ".fastapi",
    "current_user": ".fastapi",
    "login_required": ".fastapi",
    "optional_user": ".fastapi",
    "require_any": ".fastapi",
    "require_group": ".fastapi",
    "require_pool": ".fastapi",
    "require_scope": ".fastapi",
    "CognitoAuthBackend": ".middleware",
    "CognitoAuthMiddleware": ".middleware",
}


def __getattr__(name: str) -> Any:
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
    "CognitoAuth",
    "CognitoAuthBackend",
    "CognitoAuthMiddleware",
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
    "InvalidTokenError",
    "JWKSCache",
    "KeysUnavailableError",
    "MissingGroupError",
    "MissingTokenError",
    "OAuthUnavailableError",
    "OptionalUser",
    "RevocationList",
    "ServiceUnavailableError",
    "SignInError",
    "SignOutResult",
    "TokenClaims",
    "__version__",
    "current_user",
    "login_required",
    "optional_user",
    "require_any",
    "require_group",
    "require_pool",
    "require_scope",
]
