"""Fault matrix: every way the JWKS and identity-pool endpoints break, over real HTTP.

Each row is one misbehaviour of a real server on 127.0.0.1
(``tests.jwks_server.JWKSServer``, extended here with a trickling body, a
``Retry-After: 7`` throttle and a redirect to another server;
``tests.identity_server.IdentityServer``). Each row runs one scenario that
records what happened in a few columns; each cell of the matrix is one test
comparing one column with the expected table below, so a failure names the row
and the column (``test_jwks_fault_matrix[status_429-http]``).

JWKS columns (``JWKS_EXPECTED``), for a verifier whose keys were fetched before
the fault (*warm*), one that never had keys (*cold*) and a FastAPI app guarded by
``CognitoAuth(settings)`` and ``current_user`` that starts during the fault:

- ``warm``: verdicts, once the keys' TTL has passed, on the token already in
  the result cache (before the refresh it triggers, then after it) and on a
  token of the same key never seen before. An outage serves the stale keys; a
  removed key gives ``unknown_kid``, a key replaced under the same kid
  ``bad_signature``, cached results included.
- ``cold``: two verdicts of a verifier without keys (``KeysUnavailableError``
  in an outage: never a 401).
- ``http``: ``(status, Retry-After, code)`` of ``GET /me`` on the app.
- ``recovery``: once the fault clears and the cooldown passes, verdicts of the
  warm and cold verifiers and the app's status (for a key change: tokens of the
  new key).
- ``calls``: JWKS requests the server received in each phase (warm, cold,
  app, recovery) and at the redirect target (never followed, always 0).

Identity columns (``IDENTITY_EXPECTED``), through ``auth.aws_credentials`` with an
ID token as the bearer, two requests during the fault and two after it:

- ``outcome``: ``(status, Retry-After, code)`` during the fault: 503 with
  Retry-After for an unavailable endpoint, the mapped status otherwise.
- ``recovery``: the statuses after the fault clears.
- ``calls``: ``(GetId, GetCredentialsForIdentity)`` calls during the fault, the
  same after it, and calls at the redirect target.

Outside the matrix: a user-supplied HTTP client that is already closed gives the
app's callers 503 ``keys_unavailable`` with Retry-After, never a 500.

Time for the JWKS cache is a fake monotonic clock (TTL and cooldown pass at
once); only fetch timeouts are real (1 s, so a busy machine does not time out a
healthy fetch).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import httpx
import pytest
from fastapi import Depends, FastAPI

import fastapi_cognito_guard.web.identity_pools as identity_pools_module
from fastapi_cognito_guard import (
    AwsCredentials,
    CognitoAuth,
    CognitoSettings,
    CognitoUser,
    CognitoVerifier,
    IdentityPoolClient,
    InvalidTokenError,
    JWKSCache,
    KeysUnavailableError,
    current_user,
)
from fastapi_cognito_guard import verifier as verifier_module
from fastapi_cognito_guard.testing import LocalIssuer
from tests.helpers import FakeClock, bearer, running
from tests.identity_server import IdentityServer
from tests.jwks_server import FAULTS as BASE_FAULTS
from tests.jwks_server import JWKSServer

TIMEOUT = 1.0  # real seconds: every fetch or identity call deadline (room for a busy CI machine)
SLOW_SECONDS = 3.0  # a trickling body lasts this long, far past TIMEOUT
TTL = 300.0
COOLDOWN = 10.0
MAX_STALE = 3600.0
IDENTITY_POOL_ID = "eu-central-1:11111111-2222-3333-4444-555555555555"


# -- servers ----------------------------------------------------------------------


class FaultyJWKSServer(JWKSServer):
    """``JWKSServer`` plus the faults this matrix needs and the base does not have.

    ``"slow_body"`` trickles the valid JWKS a few bytes at a time for
    ``slow_seconds``; ``"status_429"`` says ``Retry-After: 7``; ``"redirect"``
    points at ``redirect_to`` (another server) instead of this one.
    """

    FAULTS = BASE_FAULTS | {"slow_body"}

    def __init__(
        self,
        issuer: LocalIssuer,
        *,
        redirect_to: str | None = None,
        slow_seconds: float = SLOW_SECONDS,
    ) -> None:
        super().__init__(issuer)
        self.redirect_to = redirect_to
        self.slow_seconds = slow_seconds

    def _respond(self, handler: Any, fault: str | None, path: str) -> None:
        if fault == "status_429":
            handler.send(429, b'{"message": "slow down"}', headers={"Retry-After": "7"})
        elif fault == "redirect" and self.redirect_to is not None:
            handler.send(302, b"", "text/plain", headers={"Location": self.redirect_to})
        elif fault == "slow_body":
            handler.send_trickled(
                200, self._jwks_body(), seconds=self.slow_seconds, interval=0.05, step=8
            )
        else:
            super()._respond(handler, fault, path)


# -- helpers ----------------------------------------------------------------------


@contextmanager
def on_clock(clock: FakeClock) -> Iterator[None]:
    """Verifiers (and ``CognitoAuth``s) built inside run their JWKS cache on ``clock``."""
    with mock.patch.object(verifier_module, "JWKSCache", functools.partial(JWKSCache, clock=clock)):
        yield


def guarded_app(auth: CognitoAuth[CognitoUser]) -> FastAPI:
    app = FastAPI(lifespan=auth.lifespan)

    @app.get("/me")
    async def me(user: CognitoUser = Depends(current_user)) -> dict[str, str | None]:
        return {"sub": user.sub, "username": user.username}

    @app.get("/aws")
    async def aws(creds: AwsCredentials = Depends(auth.aws_credentials)) -> dict[str, str]:
        return {"identity_id": creds.identity_id, "access_key_id": creds.access_key_id}

    return app


async def verdict(verifier: CognitoVerifier, token: str) -> str:
    """``"ok"``, the ``InvalidTokenError`` code, or ``"keys_unavailable"``."""
    try:
        await verifier.verify(token)
    except InvalidTokenError as error:
        return error.code
    except KeysUnavailableError as error:
        return error.code
    return "ok"


async def drain(timeout: float = 10.0) -> None:
    """Let every background task (a JWKS refresh) finish."""
    current = asyncio.current_task()
    pending = [task for task in asyncio.all_tasks() if task is not current]
    if pending:
        await asyncio.wait(pending, timeout=timeout)


def answer(response: httpx.Response) -> tuple[int, str | None, str | None]:
    """``(status, Retry-After, code)`` of a response."""
    try:
        body = response.json()
    except json.JSONDecodeError:
        body = {}
    code = body.get("code") if isinstance(body, dict) else None
    return response.status_code, response.headers.get("retry-after"), code


def memoized(scenario: Callable[[str], Any]) -> Callable[[str], dict[str, Any]]:
    """Run a row's scenario once (in its own event loop) for all of its cells."""
    results: dict[str, dict[str, Any]] = {}

    @functools.wraps(scenario)
    def observe(row: str) -> dict[str, Any]:
        if row not in results:
            results[row] = asyncio.run(scenario(row))
        return results[row]

    return observe


# -- JWKS -------------------------------------------------------------------------

OUTAGE = {
    "warm": ("ok", "ok", "ok"),
    "cold": ("keys_unavailable", "keys_unavailable"),
    "http": (503, str(int(COOLDOWN)), "keys_unavailable"),
    "recovery": ("ok", "ok", 200),
    "calls": (2, 1, 1, 3, 0),
}

JWKS_EXPECTED: dict[str, dict[str, Any]] = {
    "refused": {**OUTAGE, "calls": (1, 0, 0, 3, 0)},  # a closed port counts nothing
    "status_500": OUTAGE,
    "status_429": OUTAGE,  # Retry-After is our cooldown, not the upstream's 7 s
    "hang": OUTAGE,
    "slow_body": OUTAGE,  # each read is quick; the whole-fetch deadline is not
    "huge": OUTAGE,  # 10 MB with Content-Length
    "huge_chunked": OUTAGE,  # 10 MB chunked
    "truncated_json": OUTAGE,
    "redirect": OUTAGE,  # to another server: never followed
    "wrong_content_type": {  # the body decides: a valid JWKS as text/html is used
        "warm": ("ok", "ok", "ok"),
        "cold": ("ok", "ok"),
        "http": (200, None, None),
        "recovery": ("ok", "ok", 200),
        "calls": (2, 1, 1, 0, 0),
    },
    "keys_removed": {  # the cached result is evicted at the refresh, then a kid miss refetches
        "warm": ("ok", "unknown_kid", "unknown_kid"),
        "cold": ("unknown_kid", "unknown_kid"),
        "http": (401, None, "unknown_kid"),
        "recovery": ("ok", "ok", 200),
        "calls": (3, 2, 2, 0, 0),
    },
    "keys_replaced": {  # same kid, other key: old-key tokens fail their signature
        "warm": ("ok", "bad_signature", "bad_signature"),
        "cold": ("bad_signature", "bad_signature"),
        "http": (401, None, "bad_signature"),
        "recovery": ("ok", "ok", 200),
        "calls": (2, 1, 1, 0, 0),
    },
}
JWKS_COLUMNS = ("warm", "cold", "http", "recovery", "calls")


def replaced_under_same_kid(issuer: LocalIssuer) -> tuple[dict[str, Any], Callable[[], str]]:
    """A JWKS where the issuer's key is swapped for another under the same kid, and a
    minter of tokens signed by that other key (same kid, same claims)."""
    stranger = LocalIssuer(issuer.user_pool_id, issuer.client_id)
    kid = issuer.kid
    jwks = {"keys": [dict(stranger.jwks()["keys"][0], kid=kid)]}

    def mint() -> str:
        now = int(time.time())
        claims = {
            "sub": "new-key-user",
            "iss": issuer.issuer,
            "token_use": "access",
            "client_id": issuer.client_id,
            "username": "erin",
            "scope": "aws.cognito.signin.user.admin",
            "iat": now,
            "exp": now + 3600,
        }
        return stranger.sign(claims, header={"kid": kid, "alg": "RS256"})

    return jwks, mint


@memoized
async def observe_jwks(row: str) -> dict[str, Any]:
    issuer = LocalIssuer()
    clock = FakeClock()
    with (
        FaultyJWKSServer(issuer) as target,
        FaultyJWKSServer(issuer, redirect_to=target.url) as server,
    ):
        settings = server.settings(
            jwks_ttl_seconds=TTL,
            jwks_cooldown_seconds=COOLDOWN,
            jwks_timeout_seconds=TIMEOUT,
            jwks_max_stale_seconds=MAX_STALE,
            result_cache_size=100,
        )
        with on_clock(clock):
            warm, cold = CognitoVerifier(settings), CognitoVerifier(settings)
            auth: CognitoAuth[CognitoUser] = CognitoAuth(settings)
        cached, unseen, later = (issuer.access_token(name) for name in ("alice", "bob", "dave"))
        counts = [server.requests]
        assert await verdict(warm, cached) == "ok"  # the warm verifier has keys and a result

        # The fault; for a key change, ``later`` becomes a token of the new key.
        if row == "refused":
            server.close()
        elif row == "keys_removed":
            issuer.rotate_keys()
            later = issuer.access_token("dave")
        elif row == "keys_replaced":
            server.document, mint = replaced_under_same_kid(issuer)
            later = mint()
        else:
            server.fault = row
        clock.advance(TTL + 1)

        before_refresh = await verdict(warm, cached)  # a result-cache hit starts the refresh
        await drain()
        observed: dict[str, Any] = {
            "warm": (before_refresh, await verdict(warm, cached), await verdict(warm, unseen))
        }
        for _ in range(20):  # the same cooldown: no new fetch, whatever the verdicts
            await verdict(warm, unseen)
        counts.append(server.requests)

        observed["cold"] = (await verdict(cold, cached), await verdict(cold, cached))
        counts.append(server.requests)

        async with running(guarded_app(auth)) as client:
            first = answer(await client.get("/me", headers=bearer(cached)))
            second = answer(await client.get("/me", headers=bearer(cached)))
            assert first == second
            observed["http"] = first
            counts.append(server.requests)

            if row == "refused":
                server.start()
            server.fault = None
            clock.advance(COOLDOWN + 0.1)
            warm_after = await verdict(warm, later)
            await drain()
            observed["recovery"] = (
                warm_after,
                await verdict(cold, later),
                (await client.get("/me", headers=bearer(later))).status_code,
            )
            counts.append(server.requests)

        await warm.aclose()
        await cold.aclose()
        phases = tuple(b - a for a, b in itertools.pairwise(counts))
        observed["calls"] = (*phases, target.requests)
        assert server.errors == []
    return observed


@pytest.mark.parametrize(
    ("row", "column"),
    [
        pytest.param(row, column, id=f"{row}-{column}")
        for row in JWKS_EXPECTED
        for column in JWKS_COLUMNS
    ],
)
def test_jwks_fault_matrix(row: str, column: str) -> None:
    assert observe_jwks(row)[column] == JWKS_EXPECTED[row][column]


# -- identity pool ----------------------------------------------------------------

UNAVAILABLE = {
    "outcome": (503, "1", "credentials_unavailable"),
    "recovery": (200, 200),
    "calls": ((2, 0), (1, 1), 0),
}

IDENTITY_EXPECTED: dict[str, dict[str, Any]] = {
    "refused": {**UNAVAILABLE, "calls": ((0, 0), (1, 1), 0)},
    "status_500": UNAVAILABLE,
    "status_429": {**UNAVAILABLE, "outcome": (503, "7", "credentials_unavailable")},
    "hang": UNAVAILABLE,  # nothing for SLOW_SECONDS: the read timeout fires
    "slow_body": UNAVAILABLE,  # a byte every 50 ms for SLOW_SECONDS: each read is quick
    "huge": UNAVAILABLE,  # a valid answer padded to 10 MB: only a size cap rejects it
    "truncated_json": UNAVAILABLE,
    "wrong_content_type": {  # the body decides; the second request is served from cache
        "outcome": (200, None, None),
        "recovery": (200, 200),
        "calls": ((1, 1), (0, 0), 0),
    },
    "redirect": {  # not followed; a 3xx is not Cognito's answer: misconfigured endpoint
        "outcome": (500, None, "identity_pool_misconfigured"),
        "recovery": (200, 200),
        "calls": ((2, 0), (1, 1), 0),
    },
    "not_authorized": {
        "outcome": (403, None, "credentials_denied"),
        "recovery": (200, 200),
        "calls": ((2, 0), (1, 1), 0),
    },
}
IDENTITY_COLUMNS = ("outcome", "recovery", "calls")


@functools.cache
def identity_issuer() -> LocalIssuer:
    return LocalIssuer()


@memoized
async def observe_identity(row: str) -> dict[str, Any]:
    issuer = identity_issuer()
    with (
        JWKSServer(issuer) as jwks,
        IdentityServer() as target,
        IdentityServer(redirect_to=target.url, slow_seconds=SLOW_SECONDS) as idp,
    ):
        settings: CognitoSettings = jwks.settings(
            token_use="id", identity_pool_id=IDENTITY_POOL_ID, identity_endpoint=idp.url
        )
        with mock.patch.object(
            identity_pools_module,
            "IdentityPoolClient",
            functools.partial(IdentityPoolClient, timeout=TIMEOUT),
        ):
            auth: CognitoAuth[CognitoUser] = CognitoAuth(settings)
            app = guarded_app(auth)
            token = issuer.id_token(f"user-{row}")
            async with running(app) as client:
                if row == "refused":
                    idp.close()
                else:
                    idp.fault = row
                first = await client.get("/aws", headers=bearer(token))
                second = await client.get("/aws", headers=bearer(token))
                during = idp.counts()
                if row == "refused":
                    idp.start()
                idp.fault = None
                after = [(await client.get("/aws", headers=bearer(token))) for _ in range(2)]
                total = idp.counts()
        for response in (first, second, *after):
            assert "SECRET" not in response.text
            assert "SESSION" not in response.text
        assert answer(first) == answer(second)
        assert idp.errors == []
    return {
        "outcome": answer(first),
        "recovery": tuple(response.status_code for response in after),
        "calls": (during, (total[0] - during[0], total[1] - during[1]), target.requests),
    }


@pytest.mark.parametrize(
    ("row", "column"),
    [
        pytest.param(row, column, id=f"{row}-{column}")
        for row in IDENTITY_EXPECTED
        for column in IDENTITY_COLUMNS
    ],
)
def test_identity_fault_matrix(row: str, column: str) -> None:
    assert observe_identity(row)[column] == IDENTITY_EXPECTED[row][column]


# -- the user's own HTTP client --------------------------------------------------------


async def test_a_closed_user_http_client_gives_503_with_retry_after_not_500() -> None:
    issuer = LocalIssuer()
    with JWKSServer(issuer) as server:
        client = httpx.AsyncClient()
        await client.aclose()
        auth: CognitoAuth[CognitoUser] = CognitoAuth(server.settings(), http_client=client)
        async with running(guarded_app(auth)) as app_client:
            response = await app_client.get("/me", headers=bearer(issuer.access_token()))

        status, retry_after, code = answer(response)
        assert (status, code) == (503, "keys_unavailable")
        assert retry_after is not None
        assert server.requests == 0
