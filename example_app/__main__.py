"""Run the example API: ``python -m example_app [--host H] [--port N]``.

In dev mode (no ``COGNITO_USER_POOL_ID``) anyone who reaches the app can mint
tokens for it, so dev mode binds only to loopback: another ``--host`` is
refused with a message and exit status 2.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

import uvicorn

from fastapi_cognito_guard.settings import is_loopback_host
from fastapi_cognito_guard.testing import LocalIssuer

from .app import DEV_CLIENT_ID, DEV_POOL_ID, create_app, dev_mode_requested


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the arguments and serve the app under uvicorn until stopped."""
    parser = argparse.ArgumentParser(prog="python -m example_app", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    dev_mode = dev_mode_requested()
    if dev_mode and not is_loopback_host(args.host):
        parser.error(
            f"dev mode (COGNITO_USER_POOL_ID unset or empty) lets anyone mint tokens, so it "
            f"binds only to loopback; refusing --host {args.host}. Use 127.0.0.1, ::1 or "
            "localhost, or set the COGNITO_* settings of a real user pool."
        )
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not dev_mode:
        uvicorn.run(create_app(), host=args.host, port=args.port, log_level="info")
        return
    host_for_urls = f"[{args.host}]" if ":" in args.host else args.host
    issuer = LocalIssuer(user_pool_id=DEV_POOL_ID, client_id=DEV_CLIENT_ID)
    # The issuer's hosted UI (sign-in page, token endpoint) serves on its own
    # loopback port while the app runs, so "Sign in" works without AWS.
    with issuer.serve():
        app = create_app(dev_issuer=issuer, base_url=f"http://{host_for_urls}:{args.port}")
        uvicorn.run(app, host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
