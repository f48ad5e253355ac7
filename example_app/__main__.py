"""Run the example API: ``python -m example_app [--host H] [--port N]``."""

from __future__ import annotations

import argparse
import logging

import uvicorn

from fastapi_cognito_guard.testing import LocalIssuer

from .app import DEV_CLIENT_ID, DEV_POOL_ID, create_app, dev_mode_requested


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m example_app", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    host_for_urls = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host  # noqa: S104
    base_url = f"http://{host_for_urls}:{args.port}"
    if not dev_mode_requested():
        uvicorn.run(create_app(), host=args.host, port=args.port, log_level="info")
        return
    issuer = LocalIssuer(user_pool_id=DEV_POOL_ID, client_id=DEV_CLIENT_ID)
    # The issuer's hosted UI (sign-in page, token endpoint) serves on its own
    # loopback port while the app runs, so "Sign in" works without AWS.
    with issuer.serve():
        app = create_app(dev_issuer=issuer, base_url=base_url)
        uvicorn.run(app, host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
