"""Browser sign-in (DESIGN §13): the OAuth2 code flow against the hosted UI / managed
login, tokens kept in an encrypted HttpOnly cookie, refresh and sign-out.

One small module per concern:

* ``cookies``: cookie names, attributes and chunking of large values;
* ``session``: what a session holds and how it is sealed into a cookie;
* ``transient``: the per-sign-in state (``state``, ``nonce``, PKCE verifier);
* ``oauth``: the calls to Cognito's ``/oauth2/token`` and ``/oauth2/revoke``;
* ``csrf``: the trusted-origin check for cookie-authenticated requests;
* ``refresh``: one refresh in flight per session;
* ``context``: what a request carries about its session (read by the dependencies);
* ``manager``: ``BrowserSessions``, which ties the above to one ``CognitoAuth``;
* ``middleware``: loads the session before the route and writes its cookies after;
* ``routes``: ``/auth/login``, ``/auth/callback`` and ``/auth/logout``.

This package imports nothing from the FastAPI layer (``fastapi_cognito_guard.web``):
the web layer builds on it, and the routes get what they need of an auth (its
sign-out) handed in.
"""
