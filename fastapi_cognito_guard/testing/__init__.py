"""Test helpers: a local Cognito (``LocalIssuer``) and the pytest fixtures that serve it.

``LocalIssuer`` signs real RS256 tokens shaped like Cognito's, publishes its
JWKS through an ``httpx.MockTransport`` or a real HTTP server on 127.0.0.1,
and while serving is a local hosted UI with Cognito's OAuth2 endpoints, so
applications can test guarded routes and browser sign-in without AWS
(``sign_in(client, issuer, "alice", groups=[...])`` signs a test client in through
it in one call). Never
use it to protect anything: it exists for tests and local development.

This module is also a pytest plugin (entry point ``pytest11``) with two fixtures:

- ``cognito_issuer``: a fresh issuer serving on 127.0.0.1 for one test;
- ``cognito_issuer_session``: one issuer for the whole run (an RSA key is
  generated once), ``reset()`` before each test that asks for it, so
  counters, faults and ``login_as`` start from defaults.
"""

from __future__ import annotations

from collections.abc import Iterator

from .http import Fault
from .issuer import ENDPOINTS, LocalIssuer
from .routes import assert_route_map
from .signin import sign_in
from .users import LocalUser

__all__ = [
    "ENDPOINTS",
    "Fault",
    "LocalIssuer",
    "LocalUser",
    "assert_route_map",
    "cognito_issuer",
    "cognito_issuer_session",
    "sign_in",
]

try:
    import pytest
except ModuleNotFoundError:  # pytest is a test-time dependency only
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture
    def cognito_issuer() -> Iterator[LocalIssuer]:
        """A fresh ``LocalIssuer`` serving on 127.0.0.1 for the test's duration."""
        issuer = LocalIssuer()
        with issuer.serve():
            yield issuer

    @pytest.fixture(scope="session")
    def _cognito_issuer_served() -> Iterator[LocalIssuer]:
        issuer = LocalIssuer()
        with issuer.serve():
            yield issuer

    @pytest.fixture
    def cognito_issuer_session(_cognito_issuer_served: LocalIssuer) -> LocalIssuer:
        """One ``LocalIssuer`` serving for the whole run, reset for this test."""
        _cognito_issuer_served.reset()
        return _cognito_issuer_served
