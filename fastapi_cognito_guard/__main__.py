"""``python -m fastapi_cognito_guard``: see :mod:`fastapi_cognito_guard.cli`."""

import sys

from .cli import main

sys.exit(main())
