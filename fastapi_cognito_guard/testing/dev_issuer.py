"""``python -m fastapi_cognito_guard dev-issuer``: a local Cognito for development.

Runs a :class:`~.issuer.LocalIssuer` with its hosted UI and ``GET /dev/token``
(``?username=&groups=&scopes=&token_use=access|id&expires_in=``, see
:data:`~.devmode.DEV_TOKEN_PARAMETERS`) until interrupted, and prints the
``COGNITO_*`` lines that point an app at it, a session secret made for this run
included (so the app's browser sign-in works at once). It binds loopback
unless told otherwise (``--host 0.0.0.0`` in a docker-compose service, with
``--public-url http://issuer:8001``, the name the app reaches it by); a URL
whose host is not loopback needs ``COGNITO_ALLOW_INSECURE_HTTP=true`` in the
app, so that line is printed too. Anyone who reaches the port can mint
tokens this issuer signs: nothing here is secure. It answers only requests whose
``Host`` is a loopback name or the host of ``--public-url`` (others get 421), so a
DNS-rebinding page cannot mint tokens through a browser on this machine.
"""

from __future__ import annotations

import secrets
import signal
import threading
from typing import TextIO
from urllib.parse import urlsplit

from ..settings import is_loopback_host
from .issuer import LocalIssuer

__all__ = ["env_lines", "run"]


def env_lines(issuer: LocalIssuer) -> list[str]:
    """``NAME=value`` lines that point an app at ``issuer`` while it serves, with a
    fresh ``COGNITO_SESSION_SECRET`` for the app's browser sessions."""
    base_url = issuer.url
    if base_url is None:
        raise RuntimeError("the issuer is not serving; call env_lines inside serve()")
    lines = [
        f"COGNITO_USER_POOL_ID={issuer.user_pool_id}",
        f"COGNITO_CLIENT_IDS={issuer.client_id}",
        f"COGNITO_JWKS_URL={issuer.jwks_url}",
        f"COGNITO_OAUTH_URL={base_url}",
        f"COGNITO_SESSION_SECRET={secrets.token_urlsafe(32)}",
    ]
    if issuer.client_secret is not None:
        client_secrets = issuer.clients()[issuer.client_id]
        lines.append(f"COGNITO_CLIENT_SECRET={','.join(client_secrets)}")
    if not is_loopback_host(urlsplit(base_url).hostname):
        lines.append("COGNITO_ALLOW_INSECURE_HTTP=true")
    return lines


def run(
    issuer: LocalIssuer,
    out: TextIO,
    *,
    host: str,
    port: int,
    public_url: str | None = None,
) -> int:
    """Serve until SIGINT or SIGTERM; prints the settings first. Returns the exit status."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with issuer.serve(host, port, mint_endpoint=True, public_url=public_url):
        print("# A local Cognito for development (nothing here is secure). App settings:", file=out)
        for line in env_lines(issuer):
            print(line, file=out)
        print(
            f"# Sign in: {issuer.url}/oauth2/authorize (through the app's /auth/login)\n"
            f"# Mint: curl -s '{issuer.url}/dev/token?username=alice&groups=premium"
            "&scopes=orders/read&expires_in=3600'",
            file=out,
            flush=True,
        )
        stop.wait()
    return 0
