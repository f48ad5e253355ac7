"""Pytest fixtures for a local moto Cognito (user pools and identity pools).

One in-process ``ThreadedMotoServer`` on ``127.0.0.1`` (random port) serves the
whole session; boto3 clients get dummy credentials passed explicitly, so no
environment variable is read or changed.

moto 5.2.x facts (observed, not guessed):

- ``iss`` is the real AWS form ``https://cognito-idp.{region}.amazonaws.com/{pool_id}``,
  not the moto URL. Keys therefore have to come from ``CognitoPool.jwks_url``
  (``{moto_url}/{pool_id}/.well-known/jwks.json``), never from ``{iss}/...``.
  ``/{pool_id}/.well-known/openid-configuration`` is served too.
- Header ``{"typ": "JWT", "kid": "dummy", "alg": "RS256"}``. Every pool signs
  with the same static RSA-2048 key (shipped with moto), and the JWKS is the same
  one-key set (``use: sig``, ``alg: RS256``) for any path, even an unknown pool.
  Two pools differ only by ``iss``: a cross-pool token is caught by issuer only.
- Access token: ``iss sub client_id token_use=access iat auth_time exp jti
  username origin_jti scope`` (``scope`` is always ``aws.cognito.signin.user.admin``);
  ``cognito:groups`` only when the user is in a group. No ``aud``.
- ID token: ``iss sub aud token_use=id iat auth_time exp jti cognito:username
  origin_jti``; ``custom:*`` attributes always; ``cognito:groups`` when in a
  group; ``email``/``email_verified`` only if listed in the client's
  ``ReadAttributes`` (this module lists them). ``email_verified`` is the string
  ``"true"`` (real Cognito sends a boolean). Lifetime is exactly 3600 s.
- Pool ids are ``{region}_{32 hex}`` (real ones: 9 alphanumerics after ``_``);
  client ids are 26 lowercase alphanumerics. Undeclared ``custom:`` attributes
  are accepted by ``admin_create_user``.
- Identity (``X-Amz-Target: AWSCognitoIdentityService.*``, POST to the base URL,
  no signature): answers ``200`` with ``Content-Type: text/html; charset=utf-8``
  (not ``application/x-amz-json-1.1``). ``GetId`` -> ``{"IdentityId":
  "us-east-1:<uuid>"}`` (always the us-east-1 prefix: unsigned calls are routed to
  us-east-1). ``GetCredentialsForIdentity`` -> ``{"Credentials": {"AccessKeyId":
  "TESTACCESSKEY12345", "Expiration": <float epoch seconds>, "SecretKey":
  "ABCSECRETKEY", "SessionToken": "ABC12345"}, "IdentityId": ...}``.
- ``Logins`` are never checked (a garbage token or no ``Logins`` still gets an
  id), any ``IdentityId`` gets credentials, so ``NotAuthorizedException`` cannot
  be produced. An unknown identity pool or action -> ``500`` HTML page.
- ``Expiration`` is now + 90 s, computed from a naive UTC datetime with
  ``.timestamp()``: correct only when the process TZ is UTC (TZ=Asia/Tokyo gives a
  value 9 h in the past). 90 s is also below a "refresh 5 minutes early" margin.
- ``GetUser`` / ``GlobalSignOut`` sent unsigned (as the library sends them: the
  access token is the authorization) to the moto URL are routed to moto's
  us-east-1 backend: ``GlobalSignOut`` finds only tokens of us-east-1 pools
  (``GetUser`` searches every region). ``GlobalSignOut`` removes the user's
  access tokens, after which ``GetUser`` answers ``NotAuthorizedException``.
- ``create_group`` keeps ``RoleArn`` and ``Precedence`` (``admin_list_groups_for_user``
  returns them), but tokens never carry ``cognito:roles`` / ``cognito:preferred_role``;
  ``CognitoPool.role_claims`` derives them from the groups as Cognito does, for
  tests that sign tokens with a ``LocalIssuer``.
- Identity: ``GetOpenIdToken`` answers ``{"IdentityId", "Token"}`` (a random
  string, not a JWT); ``AllowUnauthenticatedIdentities`` is stored but never
  enforced (``GetId`` without ``Logins`` always works).
- STS (unsigned, form-encoded, on the same server): ``AssumeRoleWithWebIdentity``
  never checks the web identity token or that the role exists, answers STS's XML
  (``Expiration`` now + 1 h, ISO 8601 with microseconds) and remembers the access
  key, so ``get_caller_identity`` with the returned credentials shows
  ``arn:aws:sts::{account}:assumed-role/{role}/{session}``.
- State lives in moto's global in-process backends: ``mock_aws`` resets them on
  start/stop, which would wipe pools created here.

PYTEST_DONT_REWRITE (no asserts here): a test module may import helpers from
this module and also list it in ``pytest_plugins`` without a rewrite warning.
"""

import base64
import json
import logging
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

__all__ = [
    "DEFAULT_PASSWORD",
    "REGION",
    "CognitoPool",
    "boto_client",
    "create_identity_pool",
    "create_pool",
    "decode_unverified",
    "make_moto_pool",
    "moto_cognito_identity",
    "moto_cognito_idp",
    "moto_pool",
    "moto_server",
]

REGION = "eu-central-1"
DEFAULT_PASSWORD = "Passw0rd!Passw0rd"
CUSTOM_ATTRIBUTES: tuple[str, ...] = ("tier",)
_DUMMY_CREDENTIALS = {
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
    "aws_session_token": "testing",
}


def boto_client(service: str, moto_url: str, region: str = REGION) -> Any:
    """Return a boto3 client for ``service`` talking to the moto server at ``moto_url``.

    Credentials are dummies passed explicitly, so no environment is needed.
    """
    session = boto3.session.Session(region_name=region, **_DUMMY_CREDENTIALS)
    return session.client(service, endpoint_url=moto_url)


def decode_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return ``(header, payload)`` of a JWT without checking anything."""

    def part(segment: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(
            base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        )
        return data

    header, payload, _ = token.split(".")
    return part(header), part(payload)


@dataclass
class CognitoPool:
    """A moto user pool with one app client, plus helpers to make users and tokens."""

    pool_id: str
    client_id: str
    region: str
    moto_url: str
    idp: Any = field(repr=False, compare=False)
    #: The ``iss`` moto puts into this pool's tokens (the real AWS form).
    issuer: str = field(init=False)
    #: Where moto serves this pool's JWKS (on the moto server, not under ``issuer``).
    jwks_url: str = field(init=False)

    def __post_init__(self) -> None:
        self.issuer = f"https://cognito-idp.{self.region}.amazonaws.com/{self.pool_id}"
        self.jwks_url = f"{self.moto_url}/{self.pool_id}/.well-known/jwks.json"

    @property
    def login_provider(self) -> str:
        """The identity-pool ``Logins`` key / ``ProviderName`` for this pool."""
        return f"cognito-idp.{self.region}.amazonaws.com/{self.pool_id}"

    def create_user(
        self,
        username: str,
        password: str = DEFAULT_PASSWORD,
        email: str | None = None,
        groups: Sequence[str] = (),
        custom_attributes: Mapping[str, str] | None = None,
    ) -> str:
        """Create a confirmed user with a permanent password; return its ``sub``.

        ``groups`` are created when missing. ``custom_attributes`` keys may be
        given with or without the ``custom:`` prefix (``{"tier": "gold"}``).
        """
        attributes: list[dict[str, str]] = []
        if email is not None:
            attributes += [
                {"Name": "email", "Value": email},
                {"Name": "email_verified", "Value": "true"},
            ]
        for name, value in (custom_attributes or {}).items():
            full = name if name.startswith("custom:") else f"custom:{name}"
            attributes.append({"Name": full, "Value": value})
        user = self.idp.admin_create_user(
            UserPoolId=self.pool_id,
            Username=username,
            UserAttributes=attributes,
            MessageAction="SUPPRESS",
        )["User"]
        self.idp.admin_set_user_password(
            UserPoolId=self.pool_id, Username=username, Password=password, Permanent=True
        )
        for group in groups:
            self.ensure_group(group)
            self.idp.admin_add_user_to_group(
                UserPoolId=self.pool_id, Username=username, GroupName=group
            )
        sub: str = next(a["Value"] for a in user["Attributes"] if a["Name"] == "sub")
        return sub

    def ensure_group(
        self, group: str, role_arn: str | None = None, precedence: int | None = None
    ) -> None:
        """Create ``group`` (with an IAM role and precedence) unless it already exists."""
        extra: dict[str, Any] = {}
        if role_arn is not None:
            extra["RoleArn"] = role_arn
        if precedence is not None:
            extra["Precedence"] = precedence
        try:
            self.idp.create_group(UserPoolId=self.pool_id, GroupName=group, **extra)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "GroupExistsException":
                raise

    def role_claims(self, username: str) -> dict[str, Any]:
        """The role claims Cognito puts in ``username``'s tokens (moto omits them):
        ``cognito:roles`` for every group with a role and ``cognito:preferred_role``,
        the role of the group with the lowest precedence."""
        groups = self.idp.admin_list_groups_for_user(UserPoolId=self.pool_id, Username=username)
        with_roles = [group for group in groups["Groups"] if group.get("RoleArn")]
        if not with_roles:
            return {}
        with_roles.sort(key=lambda group: group.get("Precedence", 2**31))
        return {
            "cognito:groups": [group["GroupName"] for group in groups["Groups"]],
            "cognito:roles": [group["RoleArn"] for group in with_roles],
            "cognito:preferred_role": with_roles[0]["RoleArn"],
        }

    def tokens(self, username: str, password: str = DEFAULT_PASSWORD) -> dict[str, str]:
        """Sign ``username`` in (``ADMIN_USER_PASSWORD_AUTH``).

        Returns ``AccessToken``, ``IdToken`` and ``RefreshToken``.
        """
        result = self.idp.admin_initiate_auth(
            UserPoolId=self.pool_id,
            ClientId=self.client_id,
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )["AuthenticationResult"]
        return {key: result[key] for key in ("AccessToken", "IdToken", "RefreshToken")}


def create_pool(
    idp: Any,
    moto_url: str,
    name: str | None = None,
    custom_attributes: Sequence[str] = CUSTOM_ATTRIBUTES,
) -> CognitoPool:
    """Create a user pool (with ``custom:<attr>`` string attributes) and an app client."""
    schema = [
        {"Name": attr, "AttributeDataType": "String", "Mutable": True} for attr in custom_attributes
    ]
    pool_id: str = idp.create_user_pool(
        PoolName=name or f"pool-{uuid.uuid4().hex[:8]}", Schema=schema
    )["UserPool"]["Id"]
    client_id: str = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="app",
        ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        ReadAttributes=["email", "email_verified", *(f"custom:{a}" for a in custom_attributes)],
    )["UserPoolClient"]["ClientId"]
    region = pool_id.split("_", 1)[0]
    return CognitoPool(
        pool_id=pool_id, client_id=client_id, region=region, moto_url=moto_url, idp=idp
    )


def create_identity_pool(
    user_pool: CognitoPool,
    allow_unauthenticated: bool = False,
    client: Any | None = None,
) -> str:
    """Create an identity pool trusting ``user_pool``'s app client; return its id.

    ``client`` is a ``cognito-identity`` boto3 client; one is made for
    ``user_pool.moto_url`` when omitted.
    """
    identity = client or boto_client("cognito-identity", user_pool.moto_url, user_pool.region)
    identity_pool_id: str = identity.create_identity_pool(
        IdentityPoolName=f"ip{uuid.uuid4().hex[:8]}",
        AllowUnauthenticatedIdentities=allow_unauthenticated,
        CognitoIdentityProviders=[
            {"ProviderName": user_pool.login_provider, "ClientId": user_pool.client_id}
        ],
    )["IdentityPoolId"]
    return identity_pool_id


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """Run moto on ``127.0.0.1`` (random port) for the session; yield its base URL."""
    werkzeug_logger = logging.getLogger("werkzeug")
    old_level = werkzeug_logger.level
    werkzeug_logger.setLevel(logging.WARNING)  # drop the per-request access log
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        werkzeug_logger.setLevel(old_level)


@pytest.fixture(scope="session")
def moto_cognito_idp(moto_server: str) -> Any:
    """A boto3 ``cognito-idp`` client for the moto server (region eu-central-1)."""
    return boto_client("cognito-idp", moto_server)


@pytest.fixture(scope="session")
def moto_cognito_identity(moto_server: str) -> Any:
    """A boto3 ``cognito-identity`` client for the moto server (region eu-central-1)."""
    return boto_client("cognito-identity", moto_server)


@pytest.fixture
def make_moto_pool(moto_server: str, moto_cognito_idp: Any) -> Callable[..., CognitoPool]:
    """Factory: ``make_moto_pool(name=None, custom_attributes=("tier",))`` -> new pool."""

    def make(
        name: str | None = None, custom_attributes: Sequence[str] = CUSTOM_ATTRIBUTES
    ) -> CognitoPool:
        return create_pool(moto_cognito_idp, moto_server, name, custom_attributes)

    return make


@pytest.fixture
def moto_pool(make_moto_pool: Callable[..., CognitoPool]) -> CognitoPool:
    """A fresh user pool (with ``custom:tier``) and app client for each test."""
    return make_moto_pool()
