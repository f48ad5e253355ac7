"""Typed Cognito claims and the user object routes receive.

A payload is parsed and type-checked in one step from its bytes by msgspec
into :class:`ClaimSet`, a struct naming every claim the claim classes use, with
the types of DESIGN §4: NumericDates are integers in 0 … 253402300799 (``bool``
is not an integer), no named claim may be ``null``, ``aud`` is a string or a
list of strings, ``scope`` and the identifiers are strings, groups and roles
are lists of strings, whatever the token type. Claims the struct does not name
are skipped at C speed (no objects are built for them), and the first type
error stops the decode, so a forged payload with thousands of bad items costs
no more than a good one. Extra claims are decoded only when asked for
(``to_dict()``, ``custom``, ``extra``).

Cognito's claim names map to Python names (``cognito:groups`` -> ``groups``,
``scope`` -> ``scopes`` and so on); every other claim is kept.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NoReturn, TypeVar, Union

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType, field
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import AuthorizationError, InvalidTokenError

__all__ = [
    "AccessTokenClaims",
    "ClaimSet",
    "ClaimsParser",
    "CognitoUser",
    "IdTokenClaims",
    "TokenClaims",
    "audience",
    "bind_user_pool",
    "check_token_use",
    "decode_claims",
    "decode_issuer",
    "require_client_id",
]

_CUSTOM_PREFIX = "custom:"

MAX_NUMERIC_DATE = 253402300799
"""9999-12-31T23:59:59Z: the largest NumericDate accepted (as aws-jwt-verify does)."""

NumericDate = Annotated[int, Meta(ge=0, le=MAX_NUMERIC_DATE)]
Flag = bool | Literal["true", "false"]

# Each optional claim defaults to UNSET rather than None, so an explicit JSON null
# fails the type check instead of passing as "absent".
_Str = str | UnsetType
_Date = NumericDate | UnsetType
_Strs = list[str] | UnsetType
_Flag = Flag | UnsetType


class ClaimSet(Struct, frozen=True, gc=False):
    """Every claim the claim classes name, type-checked as DESIGN §4 says.

    The types hold for every token type (an access token's ``aud`` or an ID
    token's ``scope`` are checked too); which claims a token type requires is
    checked by :class:`ClaimsParser` and the verifier.
    """

    sub: str
    iss: str
    exp: NumericDate
    token_use: Any = UNSET  # any other value is wrong_token_use, as it always was
    iat: _Date = UNSET
    nbf: _Date = UNSET
    auth_time: _Date = UNSET
    jti: _Str = UNSET
    origin_jti: _Str = UNSET
    event_id: _Str = UNSET
    groups: _Strs = field(default=UNSET, name="cognito:groups")
    roles: _Strs = field(default=UNSET, name="cognito:roles")
    preferred_role: _Str = field(default=UNSET, name="cognito:preferred_role")
    cognito_username: _Str = field(default=UNSET, name="cognito:username")
    client_id: _Str = UNSET
    username: _Str = UNSET
    scope: _Str = UNSET
    version: int | UnsetType = UNSET
    aud: str | list[str] | UnsetType = UNSET
    email: _Str = UNSET
    email_verified: _Flag = UNSET
    phone_number: _Str = UNSET
    phone_number_verified: _Flag = UNSET
    at_hash: _Str = UNSET


_decoder = msgspec.json.Decoder(ClaimSet)
# float_hook keeps an out-of-range float (1e400) in an extra claim from failing the
# lazy decode after the typed one (which skips unnamed claims) has accepted it.
_extra_decoder = msgspec.json.Decoder(float_hook=float)


def _malformed(reason: str) -> NoReturn:
    raise InvalidTokenError("malformed", f"token claims are invalid: {reason}")


def decode_claims(payload: bytes) -> ClaimSet:
    """Parse and type-check a payload, or raise ``InvalidTokenError("malformed")``.

    The message names the claim at fault, never its value.
    """
    try:
        claims = _decoder.decode(payload)
    except msgspec.ValidationError as exc:
        head, _, where = str(exc).rpartition(" - at `$.")
        if head.startswith("Invalid enum value"):  # msgspec quotes the value here
            head = "Invalid value"
        _malformed(f"{where.rstrip('`') or 'payload'}: {head or exc}")
    except msgspec.DecodeError:
        _malformed("payload is not a JSON object")
    except RecursionError:
        _malformed("payload nests too deeply")
    except UnicodeDecodeError:
        _malformed("payload is not UTF-8")
    # msgspec checks UTF-8 only in the strings it keeps; the claims it skips must be
    # valid too, so that to_dict() can never fail later.
    if not payload.isascii():
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError:
            _malformed("payload is not UTF-8")
    return claims


class _Issuer(Struct, gc=False):
    iss: str


_issuer_decoder = msgspec.json.Decoder(_Issuer)


def decode_issuer(payload: bytes) -> str:
    """Only the ``iss`` claim of a payload (the rest is skipped unchecked), or
    ``malformed``: how the verifier routes a payload that does not spell its
    issuer the usual way, before the signature is checked."""
    try:
        return _issuer_decoder.decode(payload).iss
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        _malformed("iss: missing, not a string, or the payload is not a JSON object")


_T = TypeVar("_T")


def _optional(value: _T | UnsetType) -> _T | None:
    return None if isinstance(value, UnsetType) else value


def _flag(value: Flag | UnsetType) -> bool | None:
    if value is UNSET:
        return None
    return value is True or value == "true"


class _Claims:
    """Claims both Cognito token types carry: typed, immutable, extra claims kept."""

    __slots__ = ("_audience", "_payload", "_pool", "_set")

    _set: ClaimSet
    _payload: bytes
    _pool: str
    _audience: str

    def __init__(
        self, claims: ClaimSet, payload: bytes, audience: str = "", user_pool_id: str = ""
    ) -> None:
        _SET(self, claims)
        _PAYLOAD(self, payload)
        _POOL(self, user_pool_id)
        _AUDIENCE(self, audience)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"token claims are frozen: cannot set {name!r}")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"token claims are frozen: cannot delete {name!r}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sub={self.sub!r}, iss={self.iss!r}, exp={self.exp})"

    def __eq__(self, other: object) -> bool:
        """Equal when of the same class, from the same payload, verified by the same pool."""
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _Claims)
        return (self._payload, self._pool, self._audience) == (
            other._payload,
            other._pool,
            other._audience,
        )

    def __hash__(self) -> int:
        return hash(self._payload)

    @property
    def user_pool_id(self) -> str:
        """The id of the user pool whose keys verified this token (set by the verifier)."""
        return self._pool

    @property
    def sub(self) -> str:
        return self._set.sub

    @property
    def iss(self) -> str:
        return self._set.iss

    @property
    def token_use(self) -> str:
        token_use: str = self._set.token_use  # "access" or "id": checked before building
        return token_use

    @property
    def exp(self) -> int:
        return self._set.exp

    @property
    def iat(self) -> int | None:
        return _optional(self._set.iat)

    @property
    def nbf(self) -> int | None:
        return _optional(self._set.nbf)

    @property
    def auth_time(self) -> int | None:
        return _optional(self._set.auth_time)

    @property
    def jti(self) -> str | None:
        return _optional(self._set.jti)

    @property
    def origin_jti(self) -> str | None:
        return _optional(self._set.origin_jti)

    @property
    def event_id(self) -> str | None:
        return _optional(self._set.event_id)

    @property
    def groups(self) -> list[str]:
        groups = self._set.groups
        return [] if groups is UNSET else list(groups)

    @property
    def roles(self) -> list[str]:
        roles = self._set.roles
        return [] if roles is UNSET else list(roles)

    @property
    def preferred_role(self) -> str | None:
        return _optional(self._set.preferred_role)

    @property
    def scope(self) -> str | None:
        return _optional(self._set.scope)

    @property
    def scopes(self) -> list[str]:
        """The OAuth scopes of the ``scope`` claim, as a list."""
        scope = self._set.scope
        return scope.split() if isinstance(scope, str) else []

    def to_dict(self) -> dict[str, Any]:
        """The claims as Cognito named them (a new dict on every call)."""
        result: dict[str, Any] = _extra_decoder.decode(self._payload)
        return result

    @property
    def extra(self) -> dict[str, Any]:
        """The claims the claim classes do not name, under their own names."""
        return {k: v for k, v in self.to_dict().items() if k not in _NAMED}

    @property
    def custom(self) -> dict[str, Any]:
        """The ``custom:*`` attributes, without their prefix."""
        return {
            k[len(_CUSTOM_PREFIX) :]: v
            for k, v in self.to_dict().items()
            if k.startswith(_CUSTOM_PREFIX)
        }


_NAMED = frozenset(
    ClaimSet.__struct_encode_fields__  # the JSON names, e.g. "cognito:groups"
)
_SET = _Claims.__dict__["_set"].__set__
_PAYLOAD = _Claims.__dict__["_payload"].__set__
_POOL = _Claims.__dict__["_pool"].__set__
_AUDIENCE = _Claims.__dict__["_audience"].__set__


class AccessTokenClaims(_Claims):
    """An access token: proves who called and which app client and scopes they hold."""

    __slots__ = ()

    @property
    def client_id(self) -> str:
        return str(self._set.client_id)

    @property
    def username(self) -> str | None:
        return _optional(self._set.username)

    @property
    def version(self) -> int | None:
        return _optional(self._set.version)

    @property
    def is_machine(self) -> bool:
        """A client-credentials (machine-to-machine) token: it names no user."""
        return self._set.username is UNSET


class IdTokenClaims(_Claims):
    """An ID token: the signed-in user's profile, issued to one app client (``aud``)."""

    __slots__ = ()

    is_machine = False

    @property
    def aud(self) -> str:
        """The app client the token was issued to: ``aud`` itself, or, when ``aud`` is
        a list, the allowed client the verifier found in it (the raw list is in
        ``to_dict()``)."""
        return self._audience

    @property
    def username(self) -> str | None:
        return _optional(self._set.cognito_username)

    @property
    def email(self) -> str | None:
        return _optional(self._set.email)

    @property
    def email_verified(self) -> bool | None:
        return _flag(self._set.email_verified)

    @property
    def phone_number(self) -> str | None:
        return _optional(self._set.phone_number)

    @property
    def phone_number_verified(self) -> bool | None:
        return _flag(self._set.phone_number_verified)

    @property
    def at_hash(self) -> str | None:
        return _optional(self._set.at_hash)


TokenClaims = Union[AccessTokenClaims, IdTokenClaims]  # noqa: UP007 - a runtime alias


def audience(claims: ClaimSet, allowed: frozenset[str] | None = None) -> str | None:
    """The ID token's app client: ``aud`` if allowed, or the first allowed item of a
    list (the first item when ``allowed`` is None); None when none is allowed."""
    aud = claims.aud
    if isinstance(aud, str):
        return aud if allowed is None or aud in allowed else None
    if aud is UNSET:
        _malformed("aud: Object missing required field `aud`")
    for item in aud:
        if allowed is None or item in allowed:
            return item
    return None


class ClaimsParser:
    """Parses payloads into the claim classes of the token types a caller accepts.

    The verifier uses :func:`decode_claims` and its own checks; this parser is the
    same decode plus the token-type rules, for use outside a verifier.
    """

    __slots__ = ("_token_uses",)

    def __init__(self, token_uses: frozenset[str]) -> None:
        self._token_uses = token_uses

    def parse(self, payload: bytes) -> TokenClaims:
        """Parse and type-check a payload, or raise ``InvalidTokenError``."""
        claims = decode_claims(payload)
        check_token_use(claims, self._token_uses)
        if claims.token_use == "access":
            require_client_id(claims)
            return AccessTokenClaims(claims, payload)
        return IdTokenClaims(claims, payload, audience(claims) or "")


def check_token_use(claims: ClaimSet, accepted: frozenset[str]) -> None:
    """Raise ``wrong_token_use`` unless ``token_use`` is one of ``accepted``."""
    token_use = claims.token_use
    if type(token_use) is not str or token_use not in accepted:
        names = " or ".join(sorted(accepted))
        raise InvalidTokenError("wrong_token_use", f"only {names} tokens are accepted")


def require_client_id(claims: ClaimSet) -> str:
    """An access token's ``client_id``, or ``malformed`` when it has none."""
    client_id = claims.client_id
    if client_id is UNSET:
        _malformed("client_id: Object missing required field `client_id`")
    return client_id


def bind_user_pool(claims: TokenClaims, user_pool_id: str) -> None:
    """Record which pool verified ``claims`` (an attribute, not a claim)."""
    _POOL(claims, user_pool_id)


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
            "custom": {
                k[len(_CUSTOM_PREFIX) :]: v for k, v in raw.items() if k.startswith(_CUSTOM_PREFIX)
            },
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
