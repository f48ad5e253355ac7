"""STS ``AssumeRoleWithWebIdentity`` for the identity pool's basic flow.

The call is unsigned (the web identity token authorizes it): a form-encoded
Query API POST whose answer is XML. The answer (at most 64 KiB) is parsed with
the standard library's ``xml.etree``, whose expat parser is told to stop at any
document type or entity declaration, so no entity is ever expanded: the
protection ``defusedxml`` would add, without a dependency.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timezone
from urllib.parse import urlencode
from xml.parsers import expat

import httpx

from . import awshttp, telemetry
from .credentials import AwsCredentials
from .errors import CredentialsDeniedError, CredentialsUnavailableError, IdentityPoolConfigError

__all__ = ["StsWebIdentity", "session_name_for"]

logger = logging.getLogger(__name__)

API_VERSION = "2011-06-15"
_DENIED = frozenset(
    {"AccessDenied", "InvalidIdentityToken", "ExpiredTokenException", "IDPRejectedClaim"}
)
_UNAVAILABLE = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "IDPCommunicationError",
        "ServiceUnavailable",
        "InternalFailure",
    }
)
_NOT_SESSION_NAME = re.compile(r"[^\w+=,.@-]", re.ASCII)


def session_name_for(identity_id: str) -> str:
    """The ``RoleSessionName`` for an identity: its id in STS's alphabet (``:`` -> ``_``),
    so CloudTrail names the identity that used the role."""
    return _NOT_SESSION_NAME.sub("_", identity_id)[:64]


class StsWebIdentity:
    """Exchanges a Cognito OpenID token for role credentials at one STS endpoint."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self._timeout = timeout
        self._misconfigured_logged = False

    async def assume_role(
        self, client: httpx.AsyncClient, role_arn: str, web_identity_token: str, identity_id: str
    ) -> AwsCredentials:
        """Credentials for ``role_arn``; raises ``CredentialsDeniedError`` (403),
        ``CredentialsUnavailableError`` (503) or ``IdentityPoolConfigError`` (500)."""
        form = urlencode(
            {
                "Action": "AssumeRoleWithWebIdentity",
                "Version": API_VERSION,
                "RoleArn": role_arn,
                "RoleSessionName": session_name_for(identity_id),
                "WebIdentityToken": web_identity_token,
            }
        )
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        try:
            answer = await awshttp.post(
                client, self.url, content=form, headers=headers, timeout=self._timeout
            )
        except awshttp.CallFailed as exc:
            logger.warning(
                "STS AssumeRoleWithWebIdentity failed: %s",
                exc,
                extra=telemetry.log_extra("credentials_unavailable"),
            )
            raise CredentialsUnavailableError("STS could not be reached") from None
        texts = _parse(answer.content)
        if answer.status == 200 and texts is not None:
            credentials = _credentials(texts, identity_id, role_arn)
            if credentials is not None:
                self._misconfigured_logged = False
                return credentials
        raise self._error(answer, texts, role_arn)

    def _error(
        self, answer: awshttp.Answer, texts: dict[str, str] | None, role_arn: str
    ) -> CredentialsDeniedError | CredentialsUnavailableError | IdentityPoolConfigError:
        code = (texts or {}).get("Code", "")
        if code in _DENIED:
            logger.info(
                "STS refused role %s for a web identity: %s",
                role_arn,
                code,
                extra=telemetry.log_extra("credentials_denied"),
            )
            return CredentialsDeniedError("STS refused credentials for this role")
        if code in _UNAVAILABLE or answer.status in (200, 429) or answer.status >= 500:
            logger.warning(
                "STS unavailable: HTTP %s %s",
                answer.status,
                code,
                extra=telemetry.log_extra("credentials_unavailable"),
            )
            return CredentialsUnavailableError("STS is unavailable", retry_after=answer.retry_after)
        if not self._misconfigured_logged:
            self._misconfigured_logged = True
            logger.error(
                "STS at %s rejected AssumeRoleWithWebIdentity for %s (HTTP %s %s): check "
                "COGNITO_STS_ENDPOINT and the role's trust policy",
                self.url,
                role_arn,
                answer.status,
                code or "unknown error",
                extra=telemetry.log_extra("identity_pool_misconfigured"),
            )
        return IdentityPoolConfigError("STS rejected the request as misconfigured")


class _Declaration(Exception):
    """The document declared a document type or an entity."""


def _refuse(*_: object) -> None:
    raise _Declaration


def _parse(content: bytes) -> dict[str, str] | None:
    """The text of each element of the answer by local name (the first of each name
    wins), or None for anything that is not plain, well-formed XML.

    Any document type or entity declaration stops the parser (STS never sends one),
    so no entity, internal or external, is ever expanded: what ``defusedxml``
    would add, for the one document shape read here.
    """
    texts: dict[str, str] = {}
    open_elements: list[tuple[str, list[str]]] = []

    def start(name: str, attributes: object) -> None:
        open_elements.append((name.rsplit("}", 1)[-1], []))

    def text(data: str) -> None:
        if open_elements:
            open_elements[-1][1].append(data)

    def end(name: str) -> None:
        local, parts = open_elements.pop()
        texts.setdefault(local, "".join(parts).strip())

    parser = expat.ParserCreate(namespace_separator="}")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.StartElementHandler = start
    parser.CharacterDataHandler = text
    parser.EndElementHandler = end
    try:
        parser.Parse(content, True)
    except (expat.ExpatError, _Declaration):
        return None
    return texts


def _credentials(texts: dict[str, str], identity_id: str, role_arn: str) -> AwsCredentials | None:
    values = [texts.get(name) for name in ("AccessKeyId", "SecretAccessKey", "SessionToken")]
    expiration = texts.get("Expiration")
    if not all(values) or not expiration:
        return None
    try:
        expires = datetime.fromisoformat(expiration.replace("Z", "+00:00"))
    except ValueError:
        return None
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=timezone.utc)
    access_key_id, secret_key, session_token = (str(value) for value in values)
    return AwsCredentials(
        access_key_id=access_key_id,
        secret_key=secret_key,
        session_token=session_token,
        expiration=expires.astimezone(timezone.utc),
        identity_id=identity_id,
        role_arn=role_arn,
    )
