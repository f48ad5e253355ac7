"""Typed Cognito claims and the user object routes receive.

A payload is parsed, type-checked and built into its final class in one msgspec
decode from its bytes: ``token_use`` picks :class:`AccessTokenClaims` or
:class:`IdTokenClaims` (a tagged union), and every claim the classes name is
checked with the types of DESIGN §4: NumericDates are integers in 0 …
253402300799 (``bool`` is not an integer), no named claim may be ``null``, an ID
token's ``aud`` is a string and an access token's a string or a list of strings,
``acr``, ``scope`` and the identifiers are strings, ``amr``, groups and roles are
lists of strings, whatever the token type. There is no second object to build
and attributes are plain struct fields. Claims the classes do not name are
skipped at C speed (no objects are built for them), and the first type error
stops the decode, so a forged payload with thousands of bad items costs no more
than a good one. Extra claims are decoded only when asked for (``to_dict()``,
``custom``, ``extra``).

Cognito's claim names map to Python names (``cognito:groups`` -> ``groups``,
``scope`` -> ``scopes`` and so on); every other claim is kept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, NoReturn, TypeVar, Union

import msgspec
from msgspec import Meta, Struct, field
from msgspec.structs import force_setattr
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import AuthorizationError, InvalidTokenError

__all__ = [
    "AccessTokenClaims",
    "ClaimsParser",
    "CognitoUser",
    "IdTokenClaims",
    "TokenClaims",
    "bind_user_pool",
    "check_token_use",
    "decode_claims",
    "decode_issuer",
]

_CUSTOM_PREFIX = "custom:"

MAX_NUMERIC_DATE = 253402300799
"""9999-12-31T23:59:59Z: the largest NumericDate accepted (as aws-jwt-verify does)."""

NumericDate = Annotated[int, Meta(ge=0, le=MAX_NUMERIC_DATE)]
Flag = bool | Literal["true", "false"]

# An optional claim is None when absent, but an explicit JSON null must fail the type
# check: msgspec sees the type without None (and does not check the None default),
# type checkers see the attribute as it is read.
if TYPE_CHECKING:
    _Str = str | None
    _Date = int | None
    _Int = int | None
    _Flag = Flag | None
    _Audiences = str | list[str] | None
else:
    _Str = str
    _Date = NumericDate
    _Int = int
    _Flag = Flag
    _Audiences = str | list[str]


class _Claims(Struct, frozen=True, kw_only=True, gc=False, tag_field="token_use"):
    """Claims both Cognito token types carry: typed, immutable, extra claims kept.

    Every claim either class names is declared here or in both subclasses, so its
    type is checked whatever the token type; a name only one type exposes is a
    private field (``_username``) in the other. No instance dict and no garbage-
    collector tracking (nothing in a claim set can form a cycle): both cost more
    than the decode of the rest.
    """

    token_use: ClassVar[Literal["access", "id"]]

    # In the order Cognito writes its claims (both token types), then the rest: msgspec
    # looks each key up from the field after the last one matched, so most claims of a
    # Cognito payload are found at the first comparison (those only one token type
    # has, declared in the subclasses, come after a short scan): 0.1 µs a decode.
    sub: str
    groups: list[str] = field(default_factory=list, name="cognito:groups")
    _email_verified: _Flag = field(default=None, name="email_verified")
    iss: str
    version: _Int = None
    origin_jti: _Str = None
    event_id: _Str = None
    scope: _Str = None
    auth_time: _Date = None
    exp: NumericDate
    iat: _Date = None
    jti: _Str = None
    email: _Str = None
    nbf: _Date = None
    roles: list[str] = field(default_factory=list, name="cognito:roles")
    preferred_role: _Str = field(default=None, name="cognito:preferred_role")
    acr: _Str = None
    amr: list[str] = field(default_factory=list)
    phone_number: _Str = None
    at_hash: _Str = None
    _phone_number_verified: _Flag = field(default=None, name="phone_number_verified")
    # Not claims: set once after the decode (``force_setattr``). They are struct fields
    # so that the struct needs no instance dict; their JSON names start with DEL (0x7f),
    # which no issuer writes, and whatever a payload put there is overwritten.
    user_pool_id: str = field(default="", name="\x7fuser_pool_id")
    """The id of the user pool whose keys verified this token (set by the verifier)."""
    _payload: bytes = field(default=b"", name="\x7fpayload")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sub={self.sub!r}, iss={self.iss!r}, exp={self.exp})"

    def __eq__(self, other: object) -> bool:
        """Equal when of the same class, from the same payload, verified by the same pool."""
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _Claims)
        return (self._payload, self.user_pool_id) == (other._payload, other.user_pool_id)

    def __hash__(self) -> int:
        return hash(self._payload)

    @property
    def scopes(self) -> list[str]:
        """The OAuth scopes of the ``scope`` claim, as a list."""
        scope = self.scope
        return scope.split() if scope is not None else []

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


class AccessTokenClaims(_Claims, frozen=True, gc=False, tag="access"):
    """An access token: proves who called and which app client and scopes they hold."""

    token_use: ClassVar[Literal["access"]] = "access"

    client_id: str
    username: _Str = None
    aud: _Audiences = None
    """The resources the token is bound to (RFC 8707): a string, a list or None."""
    _cognito_username: _Str = field(default=None, name="cognito:username")

    @property
    def is_machine(self) -> bool:
        """A client-credentials (machine-to-machine) token: it names no user."""
        return self.username is None

    @property
    def audiences(self) -> list[str]:
        """``aud`` as a list (empty when the token carries none)."""
        aud = self.aud
        if aud is None:
            return []
        return [aud] if isinstance(aud, str) else list(aud)


class IdTokenClaims(_Claims, frozen=True, gc=False, tag="id"):
    """An ID token: the signed-in user's profile, issued to one app client (``aud``)."""

    token_use: ClassVar[Literal["id"]] = "id"
    is_machine: ClassVar[bool] = False

    aud: str
    """The app client the token was issued to."""
    username: _Str = field(default=None, name="cognito:username")
    _client_id: _Str = field(default=None, name="client_id")
    _username: _Str = field(default=None, name="username")

    @property
    def email_verified(self) -> bool | None:
        return _flag(self._email_verified)

    @property
    def phone_number_verified(self) -> bool | None:
        return _flag(self._phone_number_verified)


TokenClaims = Union[AccessTokenClaims, IdTokenClaims]  # noqa: UP007 - a runtime alias

_NAMED = frozenset(
    (
        "token_use",
        *AccessTokenClaims.__struct_encode_fields__,
        *IdTokenClaims.__struct_encode_fields__,
    )
) - {"\x7fuser_pool_id", "\x7fpayload"}
_decoder = msgspec.json.Decoder(TokenClaims)
# float_hook keeps an out-of-range float (1e400) in an extra claim from failing the
# lazy decode after the typed one (which skips unnamed claims) has accepted it.
_extra_decoder = msgspec.json.Decoder(float_hook=float)


def _flag(value: Flag | None) -> bool | None:
    if value is None:
        return None
    return value is True or value == "true"


def _malformed(reason: str) -> NoReturn:
    raise InvalidTokenError("malformed", f"token claims are invalid: {reason}")


def _wrong_token_use(accepted: frozenset[str]) -> NoReturn:
    names = " or ".join(sorted(accepted))
    raise InvalidTokenError("wrong_token_use", f"only {names} tokens are accepted")


_ANY_TOKEN_USE = frozenset({"access", "id"})


def decode_claims(payload: bytes, user_pool_id: str = "") -> TokenClaims:
    """Parse, type-check and build a payload's claims, or raise ``InvalidTokenError``:
    ``wrong_token_use`` when ``token_use`` is missing or neither ``access`` nor ``id``,
    ``malformed`` for any other fault (the message names the claim, never its value).
    """
    try:
        claims = _decoder.decode(payload)
    except msgspec.ValidationError as exc:
        text = str(exc)
        head, at, where = text.rpartition(" - at `$.")
        if not at:  # a missing claim: msgspec names it in the text
            if "`token_use`" in text:
                _wrong_token_use(_ANY_TOKEN_USE)
            _malformed(text)
        where = where.rstrip("`")
        if where == "token_use":
            _wrong_token_use(_ANY_TOKEN_USE)
        if head.startswith("Invalid enum value"):  # msgspec quotes the value here
            head = "Invalid value"
        _malformed(f"{where}: {head}")
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
    force_setattr(claims, "_payload", payload)
    force_setattr(claims, "user_pool_id", user_pool_id)
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


class ClaimsParser:
    """Parses payloads into the claim classes of the token types a caller accepts.

    The verifier uses :func:`decode_claims` and its own checks; this parser is the
    same decode plus the token-type rule, for use outside a verifier.
    """

    __slots__ = ("_token_uses",)

    def __init__(self, token_uses: frozenset[str]) -> None:
        self._token_uses = token_uses

    def parse(self, payload: bytes) -> TokenClaims:
        """Parse and type-check a payload, or raise ``InvalidTokenError``."""
        claims = decode_claims(payload)
        check_token_use(claims, self._token_uses)
        return claims


def check_token_use(claims: TokenClaims, accepted: frozenset[str]) -> None:
    """Raise ``wrong_token_use`` unless the claims' ``token_use`` is one of ``accepted``."""
    if claims.token_use not in accepted:
        _wrong_token_use(accepted)


def bind_user_pool(claims: TokenClaims, user_pool_id: str) -> None:
    """Record which pool verified ``claims`` (an attribute, not a claim)."""
    force_setattr(claims, "user_pool_id", user_pool_id)


UserT = TypeVar("UserT", bound="CognitoUser")


class CognitoUser(BaseModel):
    """The verified caller, as route dependencies return it.

    Subclass it to lift more claims into typed fields, e.g.
    ``tier: str = Field(alias="custom:tier")``, and pass ``user_model=`` to
    ``CognitoAuth``. It is frozen, with ``groups`` and ``scopes`` as tuples,
    because requests carrying the same token share one user object: treat
    ``custom`` and ``claims`` as read-only too.

    ``auth_time``, ``acr`` and ``amr`` say when and how the user signed in (step-up);
    ``audiences`` is an access token's ``aud`` as a tuple (the resources it is bound
    to, RFC 8707), empty for ID tokens, whose ``aud`` is the app client (``client_id``).
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
    auth_time: int | None = None
    acr: str | None = None
    amr: tuple[str, ...] = ()
    audiences: tuple[str, ...] = ()

    @classmethod
    def from_claims(cls: type[UserT], claims: TokenClaims) -> UserT:
        """Build the user from verified claims (subclass fields may alias any claim)."""
        raw = claims.to_dict()
        if isinstance(claims, AccessTokenClaims):
            client_id, scopes, email = claims.client_id, claims.scopes, None
            audiences = claims.audiences
        else:
            client_id, scopes, email, audiences = claims.aud, [], claims.email, []
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
            "auth_time": claims.auth_time,
            "acr": claims.acr,
            "amr": claims.amr,
            "audiences": audiences,
        }
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            fields = sorted({str(error["loc"][0]) for error in exc.errors() if error["loc"]})
            raise AuthorizationError(
                f"the token lacks claims the user model needs: {', '.join(fields)}",
                code="missing_claims",
            ) from None
