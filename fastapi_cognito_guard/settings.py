"""Configuration of one Cognito user pool, from the ``COGNITO_*`` environment or code."""

from __future__ import annotations

import difflib
import ipaddress
import json
import logging
import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .partitions import REGION_SHAPE, partition_of

__all__ = ["CognitoSettings"]

logger = logging.getLogger(__name__)

_POOL_ID = re.compile(rf"(?P<region>{REGION_SHAPE.pattern})_[0-9A-Za-z]+")
_EMULATOR_POOL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
"""A pool id as emulators make them (cognito-local's ``local_6xX5b2Qh``, LocalStack's
``_custom_id_`` tag): only a label, accepted when ``issuer`` and ``jwks_url`` say where
the tokens come from."""
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


def _split_list(value: Any) -> Any:
    """Accept ``a,b`` as well as a JSON list (or a real list, from code)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost`` and loopback IP literals, the only hosts allowed over http."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _plain_http_elsewhere(url: str) -> bool:
    """Plain http to a host that is not loopback (only ``allow_insecure_http`` permits it)."""
    parts = urlsplit(url)
    return parts.scheme == "http" and not is_loopback_host(parts.hostname)


def env_name(field: str) -> str:
    """The environment variable that sets ``field``."""
    return f"COGNITO_{field.upper()}"


def is_allowed_url(value: str, *, allow_http: bool) -> bool:
    """An https URL, or plain http to a loopback host (any host with ``allow_http``)."""
    parts = urlsplit(value)
    return bool(parts.hostname) and (
        parts.scheme == "https"
        or (parts.scheme == "http" and (allow_http or is_loopback_host(parts.hostname)))
    )


def _require_safe_url(value: str | None, field: str, *, allow_http: bool) -> str | None:
    """``value`` when ``is_allowed_url``; an error naming ``field`` otherwise."""
    if value is None:
        return None
    if is_allowed_url(value, allow_http=allow_http):
        return value
    raise ValueError(
        f"{field} ({env_name(field)}) must be an https URL (plain http only for loopback "
        "hosts, or with COGNITO_ALLOW_INSECURE_HTTP=true)"
    )


_URL_FIELDS = (
    "jwks_url",
    "identity_endpoint",
    "issuer",
    "sts_endpoint",
    "oauth_url",
    "redirect_uri",
    "logout_uri",
    "idp_endpoint",
)
_REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})
_MIN_SESSION_SECRET = 32


class CognitoSettings(BaseSettings):
    """Everything needed to trust one user pool's tokens.

    Read from ``COGNITO_*`` environment variables when built with no arguments;
    invalid values fail here, naming the field, rather than on the first request.
    """

    # Inputs stay out of error messages: they may hold client or session secrets.
    model_config = SettingsConfigDict(
        env_prefix="COGNITO_", extra="ignore", hide_input_in_errors=True
    )

    # Required, yet ``default=...`` (pydantic: no default) lets type checkers accept
    # ``CognitoSettings()``, which reads both from the environment.
    user_pool_id: str = Field(default=...)
    # Declared before the URL fields: their validators read it.
    allow_insecure_http: bool = False
    region: str | None = None
    client_ids: Annotated[list[str], NoDecode] = Field(default=...)
    token_use: Literal["access", "id", "any"] = "access"
    issuer: str | None = None
    additional_regions: Annotated[list[str], NoDecode] = Field(default_factory=list)
    jwks_url: str | None = None
    leeway_seconds: int = Field(default=30, ge=0, le=3600)
    jwks_ttl_seconds: float = Field(default=3600, gt=0)
    jwks_cooldown_seconds: float = Field(default=10, ge=0)
    jwks_timeout_seconds: float = Field(default=3, gt=0)
    jwks_max_stale_seconds: float = Field(default=86400, ge=0)
    result_cache_size: int = Field(default=10000, ge=0)
    identity_pool_id: str | None = None
    identity_endpoint: str | None = None
    identity_flow: Literal["enhanced", "basic"] = "enhanced"
    sts_endpoint: str | None = None
    domain: str | None = None
    oauth_url: str | None = None
    client_secret: Annotated[SecretStr | tuple[SecretStr, SecretStr] | None, NoDecode] = None
    """One secret, or two while Cognito rotates the app client's secret (``client_secrets``
    lists them in the order they are tried)."""
    audiences: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Resource binding (RFC 8707): when set, an access token's ``aud`` must name one of
    these (``wrong_audience``); empty: ``aud`` is not checked on access tokens."""
    login_resource: str | None = None
    session_secret: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    login_scopes: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["openid", "email", "profile"]
    )
    redirect_uri: str | None = None
    logout_uri: str | None = None
    trusted_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    session_max_age_seconds: int = Field(default=2592000, gt=0)
    idp_endpoint: str | None = None
    revocation_check_seconds: float = Field(default=60, ge=0)
    redis_url: str | None = Field(default=None, repr=False)  # may carry a password
    redis_prefix: str = Field(default="fcg:", min_length=1, max_length=64)
    refresh_token_validity_seconds: int = Field(default=2592000, gt=0)
    session_store: Literal["cookie", "redis"] = "cookie"

    if not TYPE_CHECKING:  # type checkers keep pydantic's field-by-field signature

        def __init__(self, **values: Any) -> None:
            _warn_unknown_variables(os.environ, frozenset(map(env_name, type(self).model_fields)))
            _refuse_another_pools_values(values, os.environ)
            try:
                super().__init__(**values)
            except ValidationError as exc:
                raise _naming_variables(exc) from None

    @model_validator(mode="before")
    @classmethod
    def _check_pool_id(cls, data: Any) -> Any:
        """The pool id's shape and partition, checked on the raw input: whether it may be
        an emulator's label depends on ``issuer`` and ``jwks_url`` both being set."""
        if not isinstance(data, dict) or not isinstance(data.get("user_pool_id"), str):
            return data
        value = data["user_pool_id"]
        explicit = bool(data.get("issuer")) and bool(data.get("jwks_url"))
        match = _POOL_ID.fullmatch(value)
        if match is None and not (explicit and _EMULATOR_POOL_ID.fullmatch(value)):
            raise _field_error(
                "user_pool_id",
                "user_pool_id must look like 'eu-central-1_AbC123xyz' (an emulator's pool id "
                "such as 'local_6xX5b2Qh' needs COGNITO_ISSUER and COGNITO_JWKS_URL set)",
            )
        region = data.get("region") or (match["region"] if match else None)
        if (
            isinstance(region, str)
            and REGION_SHAPE.fullmatch(region)
            and partition_of(region) is None
            and not data.get("issuer")
        ):
            field = "region" if data.get("region") else "user_pool_id"
            raise _field_error(
                field,
                f"{field} names a region of no AWS partition this library knows "
                "(aws, aws-us-gov, aws-cn, the European Sovereign Cloud), so it has no "
                "default Cognito host: set COGNITO_ISSUER and COGNITO_JWKS_URL to the "
                "pool's issuer and JWKS URL",
            )
        return data

    @field_validator(
        "client_ids",
        "additional_regions",
        "session_secret",
        "login_scopes",
        "trusted_origins",
        mode="before",
    )
    @classmethod
    def _parse_list(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("client_secret", mode="before")
    @classmethod
    def _parse_client_secret(cls, value: Any) -> Any:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, str) and not value.strip():
            return None  # an empty variable (docker-compose's ``KEY:``) means no secret
        secrets = _split_list(value)
        if not isinstance(secrets, (list, tuple)):
            return secrets
        secrets = [s.get_secret_value() if isinstance(s, SecretStr) else s for s in secrets]
        if not secrets or not all(isinstance(s, str) and s for s in secrets):
            raise ValueError("client_secret needs one or two non-empty secrets")
        if len(secrets) > 2:
            raise ValueError(
                f"client_secret takes one secret, or two while Cognito rotates them; got "
                f"{len(secrets)}"
            )
        return secrets[0] if len(secrets) == 1 else tuple(secrets)

    @field_validator("audiences", mode="before")
    @classmethod
    def _parse_audiences(cls, value: Any) -> Any:
        """``a,b`` or a JSON list, keeping empty entries (``a,,b``) for the check below:
        a list that silently lost an entry would be a different rule. A blank variable
        means no audiences."""
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return []
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",")]
        return value

    @field_validator("audiences")
    @classmethod
    def _check_audiences(cls, value: list[str]) -> list[str]:
        for position, audience in enumerate(value, 1):
            if not is_absolute_uri(audience):
                raise ValueError(
                    f"audiences entry {position} is not an absolute URI without a fragment: "
                    "each audience is an RFC 8707 resource indicator, like "
                    "'https://api.example.com'"
                )
        return value

    @field_validator("login_resource")
    @classmethod
    def _check_login_resource(cls, value: str | None) -> str | None:
        if value is not None and not is_absolute_uri(value):
            raise ValueError(
                "login_resource must be an absolute URI without a fragment, like "
                "'https://api.example.com' (RFC 8707 resource indicator)"
            )
        return value

    @field_validator("client_ids")
    @classmethod
    def _check_client_ids(cls, value: list[str]) -> list[str]:
        if not value or not all(value):
            raise ValueError("client_ids needs at least one non-empty app client id")
        return value

    @field_validator("region")
    @classmethod
    def _check_region(cls, value: str | None) -> str | None:
        if value is not None and not REGION_SHAPE.fullmatch(value):
            raise ValueError("region must look like 'eu-central-1'")
        return value

    @field_validator("additional_regions")
    @classmethod
    def _check_regions(cls, value: list[str]) -> list[str]:
        for region in value:
            if not REGION_SHAPE.fullmatch(region):
                raise ValueError(f"additional_regions has an invalid region {region!r}")
        return value

    @model_validator(mode="after")
    def _fill_region(self) -> CognitoSettings:
        match = _POOL_ID.fullmatch(self.user_pool_id)
        if self.region is None and match is not None:
            self.region = match["region"]
        home = partition_of(self.region) if self.region else None
        if any(partition_of(region) != home for region in self.additional_regions):
            raise _field_error(
                "additional_regions",
                "additional_regions (COGNITO_ADDITIONAL_REGIONS) must be in the pool's own AWS "
                "partition: Cognito replicates a pool only within one",
            )
        return self

    @field_validator("login_scopes")
    @classmethod
    def _check_scopes(cls, value: list[str]) -> list[str]:
        if not value or any(not scope or " " in scope for scope in value):
            raise ValueError("login_scopes (COGNITO_LOGIN_SCOPES) needs non-empty scope names")
        return value

    @field_validator("session_secret")
    @classmethod
    def _check_session_secret(cls, value: list[SecretStr]) -> list[SecretStr]:
        if any(len(secret.get_secret_value()) < _MIN_SESSION_SECRET for secret in value):
            raise ValueError(
                f"session_secret (COGNITO_SESSION_SECRET) needs at least {_MIN_SESSION_SECRET} "
                "characters per key"
            )
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError for a port that does not parse
        except ValueError:
            parts = None
        if (
            parts is None
            or parts.scheme not in _REDIS_SCHEMES
            or not (parts.hostname or parts.scheme == "unix")
        ):
            raise ValueError(
                "redis_url (COGNITO_REDIS_URL) must be a redis://, rediss:// or unix:// URL"
            )
        return value

    @field_validator("domain")
    @classmethod
    def _check_domain(cls, value: str | None) -> str | None:
        if value is not None:
            value = value.removeprefix("https://").rstrip("/")
            if not _HOST_NAME.fullmatch(value):
                raise ValueError("domain must be a bare host name like 'auth.example.com'")
            if "." not in value:
                raise ValueError(
                    "domain is the hosted UI's whole host name, like "
                    "'myapp.auth.eu-central-1.amazoncognito.com' or 'auth.example.com', not "
                    "only its prefix"
                )
        return value

    @field_validator(*_URL_FIELDS)
    @classmethod
    def _check_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        allow_http = bool(info.data.get("allow_insecure_http"))
        return _require_safe_url(value, str(info.field_name), allow_http=allow_http)

    @field_validator("trusted_origins")
    @classmethod
    def _check_origins(cls, value: list[str], info: ValidationInfo) -> list[str]:
        allow_http = bool(info.data.get("allow_insecure_http"))
        origins = []
        for origin in value:
            parts = urlsplit(origin)
            if parts.path.strip("/") or parts.query or parts.fragment:
                raise ValueError(
                    "trusted_origins (COGNITO_TRUSTED_ORIGINS) takes origins like "
                    "'https://app.example.com' (no path)"
                )
            _require_safe_url(origin, "trusted_origins", allow_http=allow_http)
            origins.append(f"{parts.scheme}://{parts.netloc}".lower())
        return origins

    @model_validator(mode="after")
    def _check_session_store(self) -> CognitoSettings:
        if self.session_store == "redis" and self.redis_url is None:
            raise ValueError(
                "session_store (COGNITO_SESSION_STORE) 'redis' needs redis_url (COGNITO_REDIS_URL)"
            )
        return self

    @property
    def insecure_http_fields(self) -> list[str]:
        """The URL settings that use plain http to a non-loopback host, which only
        ``allow_insecure_http`` permits (for emulators; logged at start-up)."""
        found = [
            field
            for field in _URL_FIELDS
            if (url := getattr(self, field)) is not None and _plain_http_elsewhere(url)
        ]
        if any(_plain_http_elsewhere(origin) for origin in self.trusted_origins):
            found.append("trusted_origins")
        return found

    @property
    def client_secrets(self) -> tuple[SecretStr, ...]:
        """The app client's secrets, in the order token-endpoint calls try them."""
        if self.client_secret is None:
            return ()
        if isinstance(self.client_secret, SecretStr):
            return (self.client_secret,)
        return self.client_secret

    def _aws_host(self, service: str, region: str | None = None) -> str | None:
        """``{service}.{region}.{partition suffix}``, or None when the region is unknown or
        in no known partition (an emulator, or explicit endpoints)."""
        region = region or self.region
        partition = partition_of(region) if region else None
        return f"{service}.{region}.{partition.dns_suffix}" if partition else None

    def _service_url(self, service: str) -> str:
        """The default endpoint of an AWS service for this pool: the partition's host, or
        for a pool without one (an emulator's label) the issuer's origin, where
        cognito-local and LocalStack serve every API."""
        host = self._aws_host(service)
        if host is not None:
            return f"https://{host}/"
        assert self.issuer is not None  # a pool id without a known partition needs it
        parts = urlsplit(self.issuer)
        return f"{parts.scheme}://{parts.netloc}/"

    @property
    def issuers(self) -> tuple[str, ...]:
        """Every ``iss`` value this pool's tokens may carry, exactly."""
        if self.issuer is not None:
            return (self.issuer.rstrip("/"),)
        pool = self.user_pool_id
        found = [
            f"https://{self._aws_host('cognito-idp')}/{pool}",
            f"https://{self._aws_host('issuer-cognito-idp')}/{pool}",
        ]
        found += [
            f"https://{self._aws_host('cognito-idp', region)}/{pool}"
            for region in self.additional_regions
        ]
        return tuple(dict.fromkeys(found))

    @property
    def oauth_base_url(self) -> str | None:
        """Base URL of the OAuth2 endpoints (``oauth_url``, else ``https://{domain}``)."""
        if self.oauth_url is not None:
            return self.oauth_url.rstrip("/")
        return f"https://{self.domain}" if self.domain else None

    @property
    def sts_url(self) -> str:
        """The STS endpoint used by the identity pool's basic flow."""
        return self.sts_endpoint or self._service_url("sts")

    @property
    def idp_url(self) -> str:
        """The Cognito user-pool API endpoint (``GetUser``, ``GlobalSignOut``)."""
        return self.idp_endpoint or self._service_url("cognito-idp")

    def jwks_url_for(self, issuer: str) -> str:
        """Where the keys of tokens from ``issuer`` are fetched."""
        return self.jwks_url or f"{issuer}/.well-known/jwks.json"

    @property
    def provider_name(self) -> str:
        """The user pool's name as an identity pool's ``Logins`` key: its issuer without
        the scheme (``cognito-idp.{region}.{partition suffix}/{pool}``)."""
        host = self._aws_host("cognito-idp")
        if host is not None:
            return f"{host}/{self.user_pool_id}"
        assert self.issuer is not None  # a pool id without a known partition needs it
        return self.issuer.rstrip("/").split("://", 1)[1]

    @property
    def identity_url(self) -> str:
        """The Cognito identity endpoint used for identity-pool credentials."""
        return self.identity_endpoint or self._service_url("cognito-identity")


def is_absolute_uri(value: str) -> bool:
    """An absolute URI (RFC 3986 §4.3: a scheme, no fragment) without whitespace, as RFC
    8707 requires of a ``resource``; a URL needs its host."""
    scheme, colon, rest = value.partition(":")
    if not colon or not rest or not _URI_SCHEME.fullmatch(scheme) or "#" in value:
        return False
    if any(char.isspace() for char in value):
        return False
    if scheme.lower() in {"http", "https"}:
        return bool(urlsplit(value).hostname)
    return True


def _field_error(field: str, message: str) -> ValidationError:
    """A construction error located at ``field`` (for checks that run before the fields)."""
    return ValidationError.from_exception_data(
        "CognitoSettings",
        [
            {
                "type": PydanticCustomError("value_error", message),
                "loc": (field,),
                "input": None,
            }
        ],
        hide_input=True,
    )


def _warn_unknown_variables(environ: Mapping[str, str], known: frozenset[str]) -> None:
    """Log one warning per ``COGNITO_*`` variable that no setting reads (a typo, most often).

    Names are compared in upper case, as pydantic-settings reads them; values are never
    logged (they may be secrets).
    """
    for name in sorted(environ):
        if not name.upper().startswith("COGNITO_") or name.upper() in known:
            continue
        close = difflib.get_close_matches(name.upper(), known, n=1, cutoff=0.8)
        hint = f" (did you mean {close[0]}?)" if close else ""
        logger.warning("environment variable %s is not a setting and is ignored%s", name, hint)


_POOL_SPECIFIC = ("issuer", "jwks_url", "domain", "oauth_url", "client_ids", "client_secret")
"""Settings that belong to one user pool: read from the environment into settings for
another pool, they would point it at the first pool's keys, sign-in or app client."""


def _refuse_another_pools_values(values: Mapping[str, Any], environ: Mapping[str, str]) -> None:
    """Settings built in code for a pool other than ``COGNITO_USER_POOL_ID`` must not take
    that pool's values from the environment: each one found is a construction error
    naming its variable (a second pool silently fetching the first pool's JWKS is the
    failure this prevents)."""
    upper = {name.upper(): value for name, value in environ.items()}
    env_pool = upper.get("COGNITO_USER_POOL_ID")
    pool = values.get("user_pool_id")
    if pool is None or env_pool is None or pool == env_pool:
        return
    leaked = [field for field in _POOL_SPECIFIC if field not in values and env_name(field) in upper]
    if leaked:
        raise ValidationError.from_exception_data(
            "CognitoSettings",
            [
                {
                    "type": PydanticCustomError(
                        "value_error",
                        f"{field} ({env_name(field)}) is set in the environment for the pool "
                        "COGNITO_USER_POOL_ID names, not for the user_pool_id given in code: "
                        f"pass {field} in code too (or unset {env_name(field)})",
                    ),
                    "loc": (field,),
                    "input": None,
                }
                for field in leaked
            ],
            hide_input=True,
        )


def _naming_variables(exc: ValidationError) -> ValidationError:
    """The same errors, each message naming the field and its environment variable.

    ``user_pool_id (COGNITO_USER_POOL_ID): Field required``: whoever reads it may have
    set the variable, not the field. Locations stay the field names; inputs stay hidden.
    """
    details: list[InitErrorDetails] = []
    for error in exc.errors(include_url=False):
        message = error["msg"].removeprefix("Value error, ")
        field = str(error["loc"][0]) if error["loc"] else ""
        if field in CognitoSettings.model_fields and env_name(field) not in message:
            named = f"{field} ({env_name(field)})"
            if message.startswith(f"{field} "):
                message = named + message[len(field) :]
            else:
                message = f"{named}: {message}"
        details.append(
            {
                "type": PydanticCustomError(error["type"], message),
                "loc": error["loc"],
                "input": error["input"],
            }
        )
    return ValidationError.from_exception_data(exc.title, details, hide_input=True)
