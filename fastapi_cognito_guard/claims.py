"""Typed Cognito claims and the user object routes receive.

Payloads are parsed and type-checked in one step from their bytes by
pydantic-core, which is faster than ``json.loads`` followed by validation.
Cognito's claim names map to Python names (``cognito:groups`` -> ``groups``,
``scope`` -> ``scopes`` and so on); every other claim is kept.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, TypeVar, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
)

from .errors import InvalidTokenError

__all__ = [
    "AccessTokenClaims",
    "CognitoUser",
    "IdTokenClaims",
    "TokenClaims",
    "parse_claims",
]

_CUSTOM_PREFIX = "custom:"


def _split_scope(value: Any) -> Any:
    return value.split() if isinstance(value, str) else value


def _bool_string(value: Any) -> Any:
    """Some issuers send ``"true"``/``"false"`` for the ``*_verified`` claims."""
    if value == "true":
        return True
    if value == "false":
        return False
    return value


Scopes = Annotated[
    list[str],
    BeforeValidator(_split_scope),
    PlainSerializer(lambda scopes: " ".join(scopes), return_type=str),
]
VerifiedFlag = Annotated[bool, BeforeValidator(_bool_string)]


class _Claims(BaseModel):
    """Claims both Cognito token types carry."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True, populate_by_name=True)

    sub: str
    iss: str
    token_use: str
    exp: int
    iat: int | None = None
    nbf: int | None = None
    auth_time: int | None = None
    jti: str | None = None
    origin_jti: str | None = None
    event_id: str | None = None
    groups: list[str] = Field(default_factory=list, alias="cognito:groups")
    roles: list[str] = Field(default_factory=list, alias="cognito:roles")
    preferred_role: str | None = Field(None, alias="cognito:preferred_role")

    _user_pool_id: str = PrivateAttr(default="")

    @property
    def custom(self) -> dict[str, Any]:
        """The ``custom:*`` attributes, without their prefix."""
        extra = self.__pydantic_extra__ or {}
        return {k[len(_CUSTOM_PREFIX) :]: v for k, v in extra.items() if k.startswith(_CUSTOM_PREFIX)}

    @property
    def user_pool_id(self) -> str:
        """The id of the user pool whose keys verified this token."""
        return self._user_pool_id

    def to_dict(self) -> dict[str, Any]:
        """The claims as Cognito named them."""
        return self.model_dump(by_alias=True, exclude_unset=True)


class AccessTokenClaims(_Claims):
    """An access token: proves who called and which app client and scopes they hold."""

    token_use: Literal["access"]
    client_id: str
    username: str | None = None
    scopes: Scopes = Field(default_factory=list, alias="scope")
    version: int | None = None

    @property
    def is_machine(self) -> bool:
        """A client-credentials (machine-to-machine) token: it names no user."""
        return self.username is None


class IdTokenClaims(_Claims):
    """An ID token: the signed-in user's profile, issued to one app client (``aud``)."""

    token_use: Literal["id"]
    aud: str
    username: str | None = Field(None, alias="cognito:username")
    email: str | None = None
    email_verified: VerifiedFlag | None = None
    phone_number: str | None = None
    phone_number_verified: VerifiedFlag | None = None
    at_hash: str | None = None

    is_machine: ClassVar[bool] = False


TokenClaims = Union[AccessTokenClaims, IdTokenClaims]  # noqa: UP007 - a runtime alias

_claims_adapter: TypeAdapter[TokenClaims] = TypeAdapter(
    Annotated[TokenClaims, Field(discriminator="token_use")]
)
_TOKEN_USE_ERRORS = frozenset({"union_tag_invalid", "union_tag_not_found"})


def parse_claims(payload: bytes) -> TokenClaims:
    """Parse and type-check a payload in one step, or raise ``InvalidTokenError``."""
    try:
        return _claims_adapter.validate_json(payload)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        first = errors[0]
        if first["type"] in _TOKEN_USE_ERRORS:
            raise InvalidTokenError("wrong_token_use", "token_use is not 'access' or 'id'") from None
        where = ".".join(str(part) for part in first["loc"][1:]) or "payload"
        raise InvalidTokenError(
            "malformed", f"token claims are invalid: {where}: {first['msg']}"
        ) from None


UserT = TypeVar("UserT", bound="CognitoUser")


class CognitoUser(BaseModel):
    """The verified caller, as route dependencies return it.

    Subclass it to lift more claims into typed fields, e.g.
    ``tier: str = Field(alias="custom:tier")``, and pass ``user_model=`` to
    ``CognitoAuth``.
    """

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    sub: str
    username: str | None = None
    groups: list[str] = Field(default_factory=list)
    scopes: list[str] = Field(default_factory=list)
    token_use: Literal["access", "id"]
    client_id: str
    user_pool_id: str
    email: str | None = None
    custom: dict[str, Any] = Field(default_factory=dict)
    claims: dict[str, Any] = Field(default_factory=dict, repr=False)
    is_machine: bool = False

    @classmethod
    def from_claims(cls: type[UserT], claims: TokenClaims) -> UserT:
        """Build the user from verified claims (subclass fields may alias any claim)."""
        raw = claims.to_dict()
        if isinstance(claims, AccessTokenClaims):
            client_id, scopes, email = claims.client_id, claims.scopes, None
        else:
            client_id, scopes, email = claims.aud, [], claims.email
        return cls.model_validate(
            {
                **raw,
                "sub": claims.sub,
                "username": claims.username,
                "groups": claims.groups,
                "scopes": scopes,
                "token_use": claims.token_use,
                "client_id": client_id,
                "user_pool_id": claims.user_pool_id,
                "email": email,
                "custom": claims.custom,
                "claims": raw,
                "is_machine": claims.is_machine,
            }
        )
