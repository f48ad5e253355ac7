"""The package's version, in one place: hatchling reads it for the wheel's metadata
(``[tool.hatch.version]`` in pyproject.toml) and the package re-exports it as
``fastapi_cognito_guard.__version__``."""

__version__ = "0.2.0"
