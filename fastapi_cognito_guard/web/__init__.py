"""The FastAPI layer, one job per module.

* ``tokens``: the token of a connection (header, session, WebSocket subprotocol, query);
* ``authenticator``: from a connection to a verified user, once per request per auth;
* ``dependencies``: ``current_user``, ``optional_user``, ``login_required`` and the guards;
* ``responses``: HTTP errors, RFC 6750 challenges and WebSocket closes;
* ``openapi``: security schemes, Swagger UI's OAuth2 settings, the 401/403 docs;
* ``shared_state``, ``sign_out``, ``identity_pools``, ``readiness``: the capabilities
  ``CognitoAuth`` holds as parts;
* ``auth``: ``CognitoAuth``, the composition root that builds and wires the parts;
* ``step_up``: ``require_auth``, the RFC 9470 step-up guard;
* ``protected_resource``: RFC 9728 metadata and the ``resource_metadata`` it adds to
  challenges;
* ``module_guards``: the module-level dependencies, served by the app's registered auth.

Modules import downwards only (checked by import-linter, see pyproject.toml).
"""

from __future__ import annotations

from .auth import CognitoAuth
from .identity_pools import GuestIdentities
from .module_guards import (
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
from .responses import CognitoHTTPException, CognitoWebSocketException
from .tokens import BEARER_SUBPROTOCOL, bearer_token, connection_token

__all__ = [
    "BEARER_SUBPROTOCOL",
    "CognitoAuth",
    "CognitoHTTPException",
    "CognitoWebSocketException",
    "CurrentUser",
    "GuestIdentities",
    "OptionalUser",
    "bearer_token",
    "connection_token",
    "current_user",
    "login_required",
    "optional_user",
    "require_any",
    "require_auth",
    "require_group",
    "require_pool",
    "require_scope",
]
