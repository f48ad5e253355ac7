"""The example API for fastapi-cognito-guard: ``python -m example_app``."""

from .app import create_app, dev_mode_requested

__all__ = ["create_app", "dev_mode_requested"]
