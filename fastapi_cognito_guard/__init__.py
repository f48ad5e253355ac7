"""Strict, fast, offline verification of Amazon Cognito tokens for FastAPI."""

from .claims import AccessTokenClaims, CognitoUser, IdTokenClaims, TokenClaims
from .errors import (
    AuthorizationError,
    CognitoGuardError,
    InsufficientScopeError,
    InvalidTokenError,
    KeysUnavailableError,
    MissingGroupError,
    MissingTokenError,
)
from .jwks import JWKSCache
from .settings import CognitoSettings
from .verifier import CognitoVerifier

__version__ = "0.1.0"

__all__ = [
    "AccessTokenClaims",
    "AuthorizationError",
    "CognitoGuardError",
    "CognitoSettings",
    "CognitoUser",
    "CognitoVerifier",
    "IdTokenClaims",
    "InsufficientScopeError",
    "InvalidTokenError",
    "JWKSCache",
    "KeysUnavailableError",
    "MissingGroupError",
    "MissingTokenError",
    "TokenClaims",
    "__version__",
]
