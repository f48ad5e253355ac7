"""The error hierarchy: every failure carries a stable machine code, a human message
and the HTTP status it maps to, so each layer can answer without guessing."""

from __future__ import annotations

import math

__all__ = [
    "AuthorizationError",
    "ClientCredentialsError",
    "CognitoGuardError",
    "CognitoUnavailableError",
    "CredentialsDeniedError",
    "CredentialsUnavailableError",
    "CsrfRejectedError",
    "IdentityPoolConfigError",
    "InsufficientScopeError",
    "InsufficientUserAuthenticationError",
    "InvalidTokenError",
    "KeysUnavailableError",
    "MissingGroupError",
    "MissingTokenError",
    "OAuthUnavailableError",
    "ServiceUnavailableError",
    "SessionsUnavailableError",
    "SignInError",
]


class CognitoGuardError(Exception):
    """Base of every error this library raises on purpose."""

    code: str = "error"
    status_code: int = 500

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class InvalidTokenError(CognitoGuardError):
    """The token is not one this API may trust (HTTP 401).

    ``code`` names the failed check: ``malformed``, ``unsupported_alg``,
    ``unknown_kid``, ``bad_signature``, ``wrong_issuer``, ``wrong_token_use``,
    ``wrong_client``, ``wrong_audience``, ``expired``, ``not_yet_valid`` or
    ``revoked``.
    The message never contains the token.
    """

    code = "invalid_token"
    status_code = 401

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code)


class MissingTokenError(CognitoGuardError):
    """The request carried no bearer token (HTTP 401 without an error code)."""

    code = "missing_token"
    status_code = 401


class ServiceUnavailableError(CognitoGuardError):
    """An upstream Cognito service could not answer (HTTP 503 with ``Retry-After``)."""

    code = "unavailable"
    status_code = 503

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = max(1, math.ceil(retry_after))


class KeysUnavailableError(ServiceUnavailableError):
    """No signing keys could be obtained, so the token can be neither accepted nor
    rejected (HTTP 503 with ``Retry-After``)."""

    code = "keys_unavailable"


class CognitoUnavailableError(ServiceUnavailableError):
    """Cognito's user-pool API could not confirm a session (HTTP 503 with ``Retry-After``)."""

    code = "cognito_unavailable"


class AuthorizationError(CognitoGuardError):
    """The token is valid but does not grant what the route needs (HTTP 403)."""

    code = "forbidden"
    status_code = 403


class InsufficientScopeError(AuthorizationError):
    """The token lacks OAuth scopes the route requires."""

    code = "insufficient_scope"

    def __init__(self, message: str, *, scopes: tuple[str, ...]) -> None:
        super().__init__(message)
        self.scopes = scopes


class MissingGroupError(AuthorizationError):
    """The user is not in a Cognito group the route requires."""

    code = "missing_group"

    def __init__(self, message: str, *, groups: tuple[str, ...]) -> None:
        super().__init__(message)
        self.groups = groups


class CredentialsDeniedError(AuthorizationError):
    """The identity pool refused this user credentials, or the role asked for (HTTP 403)."""

    code = "credentials_denied"


class CredentialsUnavailableError(ServiceUnavailableError):
    """The identity pool is throttling, failing or unreachable (HTTP 503 with ``Retry-After``)."""

    code = "credentials_unavailable"


class IdentityPoolConfigError(CognitoGuardError):
    """The identity pool rejected the request as misconfigured (HTTP 500; logged once)."""

    code = "identity_pool_misconfigured"
    status_code = 500


class CsrfRejectedError(AuthorizationError):
    """A cookie-authenticated unsafe request or WebSocket handshake from an untrusted
    origin (HTTP 403; WebSocket close 1008)."""

    code = "csrf_rejected"


class SignInError(CognitoGuardError):
    """Browser sign-in could not complete (HTTP 400, or 401 for tokens that fail
    verification); ``code`` names the step: ``invalid_state``, ``invalid_request``,
    ``access_denied``, ``signin_failed``, ``token_exchange_failed``, ``insecure_transport``
    or a token check (``nonce_mismatch``, ``sub_mismatch``, ``wrong_audience``, ...)."""

    code = "signin_failed"
    status_code = 400

    def __init__(self, code: str, message: str, *, status_code: int = 400) -> None:
        super().__init__(message, code=code)
        self.status_code = status_code


class OAuthUnavailableError(ServiceUnavailableError):
    """Cognito's OAuth2 endpoints could not be reached or answered with a server error
    (HTTP 503 with ``Retry-After``)."""

    code = "oauth_unavailable"


class ClientCredentialsError(CognitoGuardError):
    """The token endpoint refused this service's ``client_credentials`` grant (an unknown
    client, a wrong secret, a scope the app client may not ask for), or answered with
    something that is not a token; ``code`` is Cognito's OAuth error when it sent one
    (``invalid_client``, ``invalid_scope``, ...). HTTP 502: an upstream refused, and
    retrying will not help until the configuration changes."""

    code = "client_credentials_refused"
    status_code = 502


class InsufficientUserAuthenticationError(CognitoGuardError):
    """The token is valid but its sign-in is too old, at another level (``acr``) or
    without a method (``amr``) the route requires: RFC 9470 step-up (HTTP 401 with
    ``error="insufficient_user_authentication"`` and the ``max_age`` / ``acr_values``
    to sign in again with)."""

    code = "insufficient_user_authentication"
    status_code = 401

    def __init__(
        self, message: str, *, max_age: int | None = None, acr_values: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message)
        self.max_age = max_age
        self.acr_values = acr_values


class SessionsUnavailableError(ServiceUnavailableError):
    """The server-side session store (Redis, ``COGNITO_SESSION_STORE=redis``) cannot be
    reached, so the browser's session can be neither read nor ended there (HTTP 503
    with ``Retry-After``; the session cookie is kept, never cleared)."""

    code = "sessions_unavailable"
