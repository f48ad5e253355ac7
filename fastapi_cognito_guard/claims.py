"""Typed Cognito claims and the user object routes receive.

Payloads are parsed and type-checked in one step from their bytes by
pydantic-core, which is faster than ``json.loads`` followed by validation.
Cognito's claim names map to Python names (``cognito:groups`` -> ``groups``,
``scope`` -> ``scopes`` and so on); every other claim is kept.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, TypeVar, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError

from .errors import AuthorizationError, InvalidTokenError

__all__ = [
    "AccessTokenClaims",
    "ClaimsParser",
    "CognitoUser",
    "IdTokenClaims",
    "TokenClaims",
    "bind_user_pool",
]

_CUSTOM_PREFIX = "custom:"


def _bool_string(value: Any) -> Any:
    """Some issuers send ``"true"``/``"false"`` for the ``*_verified`` claims."""
    if value == "true":
        return True
    if value == "false":
        return False
    return value


VerifiedFlag = Annotated[bool, BeforeValidator(_bool_string)]


class _Claims(BaseModel):
    """Claims both Cognito token types carry."""

    # Fields fill only from Cognito's claim names: no populate_by_name, so a claim
    # literally called "groups" stays an extra claim and grants nothing.
    model_config = ConfigDict(extra="allow", frozen=True, strict=True)

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

    user_pool_id: ClassVar[str] = ""
    """The id of the user pool whose keys verified this token (set by the verifier)."""

    @property
    def custom(self) -> dict[str, Any]:
        """The ``custom:*`` attributes, without their prefix."""
        extra = self.__pydantic_extra__ or {}
        return {
            k[len(_CUSTOM_PREFIX) :]: v for k, v in extra.items() if k.startswith(_CUSTOM_PREFIX)
        }

    def to_dict(self) -> dict[str, Any]:
        """The claims as Cognito named them."""
        return self.model_dump(by_alias=True, exclude_unset=True)


class AccessTokenClaims(_Claims):
    """An access token: proves who called and which app client and scopes they hold."""

    token_use: Literal["access"]
    client_id: str
    username: str | None = None
    scope: str | None = None
    version: int | None = None

    @property
    def scopes(self) -> list[str]:
        """The OAuth scopes of the ``scope`` claim, as a list."""
        return self.scope.split() if self.scope else []

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


class ClaimsParser:
    """Parses payloads into the claim models a verifier accepts.

    When only one token type is accepted its model is validated directly,
    which is cheaper than the discriminated union needed for both.
    """

    __slots__ = ("_adapter", "_token_uses")

    def __init__(self, token_uses: frozenset[str]) -> None:
        self._token_uses = token_uses
        target: Any
        if token_uses == {"access"}:
            target = AccessTokenClaims
        elif token_uses == {"id"}:
            target = IdTokenClaims
        else:
            target = Annotated[TokenClaims, Field(discriminator="token_use")]
        self._adapter: TypeAdapter[TokenClaims] = TypeAdapter(target)

    def parse(self, payload: bytes) -> TokenClaims:
        """Parse and type-check a payload in one step, or raise ``InvalidTokenError``."""
        try:
            return self._adapter.validate_json(payload)
        except ValidationError as exc:
            raise _claims_error(exc, self._token_uses) from None


_TOKEN_USE_ERRORS = frozenset({"union_tag_invalid", "union_tag_not_found", "literal_error"})


def _claims_error(exc: ValidationError, token_uses: frozenset[str]) -> InvalidTokenError:
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    for error in errors:
        loc = error["loc"]
        if error["type"] in _TOKEN_USE_ERRORS or (loc and loc[-1] == "token_use"):
            accepted = " or ".join(sorted(token_uses))
            return InvalidTokenError("wrong_token_use", f"only {accepted} tokens are accepted")
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"] if part not in ("access", "id"))
    return InvalidTokenError(
        "malformed", f"token claims are invalid: {where or 'payload'}: {first['msg']}"
    )


def bind_user_pool(claims: TokenClaims, user_pool_id: str) -> None:
    """Record which pool verified ``claims`` (an instance attribute, not a claim)."""
    claims.__dict__["user_pool_id"] = user_pool_id


UserT = TypeVar("UserT", bound="CognitoUser")


class CognitoUser(BaseModel):
    """The verified caller, as route dependencies return it.

    Subclass it to lift more claims into typed fields, e.g.
    ``tier: str = Field(alias="custom:tier")``, and pass ``user_model=`` to
    ``CognitoAuth``. It is frozen, with ``groups`` and ``scopes`` as tuples,
    because requests carrying the same token share one user object: treat
    ``custom`` and ``claims`` as read-only too.
    """

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    sub: str
    username: str | None = None
    groups: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
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
        values = {
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
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            fields = sorted({str(error["loc"][0]) for error in exc.errors() if error["loc"]})
            raise AuthorizationError(
                f"the token lacks claims the user model needs: {', '.join(fields)}",
                code="missing_claims",
            ) from None
