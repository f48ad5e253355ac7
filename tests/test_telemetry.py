"""OpenTelemetry metrics, span attributes and events, health counts and log lines
(``telemetry.py``, DESIGN §16).

The SDK is configured once for this process (its providers can be set only once):
an ``InMemoryMetricReader`` and an ``InMemorySpanExporter``. Each test reads the
change it caused in the cumulative metrics. The library without the ``otel``
extra, and with the API but no SDK, runs in subprocesses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import Depends, FastAPI, WebSocket
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.metrics import _internal as metrics_state
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from fastapi_cognito_guard import (
    CognitoAuth,
    CognitoAuthMiddleware,
    CognitoUser,
    CognitoVerifier,
    InvalidTokenError,
    KeysUnavailableError,
    RevocationList,
    require_scope,
    telemetry,
)
from fastapi_cognito_guard.sessions.refresh import SessionEndedError, SingleFlightRefresher
from fastapi_cognito_guard.sessions.session import Session
from fastapi_cognito_guard.testing import LocalIssuer
from tests.helpers import bearer, running, websocket_refusal
from tests.jwks_server import JWKSServer, closed_port_url
from tests.user_pool_api import UserPoolApi

ROOT = Path(__file__).resolve().parent.parent

# -- the SDK, once per process -------------------------------------------------------------


@dataclass
class Sdk:
    reader: InMemoryMetricReader
    spans: InMemorySpanExporter
    tracer: trace.Tracer
    provider: TracerProvider


def install(meters: MeterProvider | None, tracers: TracerProvider | None) -> None:
    """Make ``meters`` and ``tracers`` the process's providers (None: none).

    The API lets an application set its providers once per process; these tests set
    them for this module only, through the module globals the API keeps them in
    (what ``telemetry.clock()`` reads), so the rest of the suite runs without an SDK.
    """
    metrics_state._METER_PROVIDER = meters
    trace._TRACER_PROVIDER = tracers  # type: ignore[attr-defined]
    telemetry._instruments = None  # made again, from these providers


@pytest.fixture(scope="module")
def module_sdk() -> Iterator[Sdk]:
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    spans = InMemorySpanExporter()
    tracers = TracerProvider()
    tracers.add_span_processor(SimpleSpanProcessor(spans))
    install(meters, tracers)
    yield Sdk(reader, spans, tracers.get_tracer("tests"), tracers)
    install(None, None)
    meters.shutdown()
    tracers.shutdown()


@pytest.fixture
def sdk(module_sdk: Sdk) -> Sdk:
    """This module's SDK, its finished spans cleared."""
    module_sdk.spans.clear()
    return module_sdk


Point = dict[str, Any]


def points(sdk: Sdk) -> list[tuple[str, Point, float]]:
    """Every data point now: (metric name, attributes, value or histogram count)."""
    found = []
    data = sdk.reader.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    value = getattr(point, "value", None)
                    if value is None:
                        value = point.count  # a histogram
                    found.append((metric.name, dict(point.attributes or {}), value))
    return found


class Changes:
    """How much each metric moved since construction, by attributes."""

    def __init__(self, sdk: Sdk) -> None:
        self._sdk = sdk
        self._before = points(sdk)

    def of(self, name: str, **attributes: Any) -> float:
        """The change of ``name``'s points whose attributes include ``attributes``
        (keys spelled with ``_`` for ``.``: ``fcg_outcome`` is ``fcg.outcome``)."""
        wanted = {key.replace("_", ".", 1): value for key, value in attributes.items()}

        def total(snapshot: Sequence[tuple[str, Point, float]]) -> float:
            return sum(
                value
                for metric, attrs, value in snapshot
                if metric == name and all(attrs.get(k) == v for k, v in wanted.items())
            )

        return total(points(self._sdk)) - total(self._before)


@pytest.fixture
def verifier(issuer: LocalIssuer) -> CognitoVerifier:
    verifier = CognitoVerifier(issuer.settings())
    verifier.cache_jwks(issuer.jwks())
    return verifier


async def verify_in_span(sdk: Sdk, verifier: CognitoVerifier, token: str) -> ReadableSpan:
    """Verify ``token`` inside a request span (errors swallowed); the finished span."""
    with sdk.tracer.start_as_current_span("GET /items"), contextlib.suppress(InvalidTokenError):
        await verifier.verify(token)
    return sdk.spans.get_finished_spans()[-1]


# -- verifications ---------------------------------------------------------------------------


async def test_valid_token_counts_ok_with_pool_and_token_use_and_marks_the_span(
    sdk: Sdk, verifier: CognitoVerifier, issuer: LocalIssuer
) -> None:
    changes = Changes(sdk)
    span = await verify_in_span(sdk, verifier, issuer.access_token("alice", sub="sub-alice"))
    ok = {"fcg_outcome": "ok", "fcg_pool": issuer.user_pool_id, "fcg_token_use": "access"}
    assert changes.of("fcg.verifications", **ok) == 1
    assert changes.of("fcg.verify.duration", **ok) == 1
    assert changes.of("fcg.result_cache.lookups", fcg_hit=False) == 1
    attributes = dict(span.attributes or {})
    assert attributes["fcg.outcome"] == "ok"
    assert attributes["fcg.pool"] == issuer.user_pool_id
    assert attributes["fcg.client"] == issuer.client_id
    assert attributes["fcg.token_use"] == "access"
    assert attributes["enduser.pseudo.id"] == "sub-alice"


async def test_no_new_span_is_opened_per_verification(
    sdk: Sdk, verifier: CognitoVerifier, issuer: LocalIssuer
) -> None:
    await verify_in_span(sdk, verifier, issuer.access_token())
    assert [span.name for span in sdk.spans.get_finished_spans()] == ["GET /items"]


async def test_repeated_token_counts_a_result_cache_hit(
    sdk: Sdk, verifier: CognitoVerifier, issuer: LocalIssuer
) -> None:
    token = issuer.access_token()
    await verifier.verify(token)
    changes = Changes(sdk)
    await verifier.verify(token)
    assert changes.of("fcg.result_cache.lookups", fcg_hit=True) == 1
    assert changes.of("fcg.result_cache.lookups", fcg_hit=False) == 0
    assert changes.of("fcg.verifications", fcg_outcome="ok") == 1
    assert changes.of("fcg.verify.duration") == 0  # a hit is counted, not timed


async def test_token_expired_in_the_result_cache_is_counted_as_expired(
    sdk: Sdk, issuer: LocalIssuer
) -> None:
    verifier = CognitoVerifier(issuer.settings(leeway_seconds=0))
    verifier.cache_jwks(issuer.jwks())
    token = issuer.access_token(expires_in=1)
    await verifier.verify(token)
    await asyncio.sleep(1.1)  # the cached result expires (no timing assertion)
    changes = Changes(sdk)
    with pytest.raises(InvalidTokenError, match="expired"):
        await verifier.verify(token)
    assert changes.of("fcg.verifications", fcg_outcome="expired") == 1


async def test_id_token_marks_its_audience_as_the_client(sdk: Sdk, issuer: LocalIssuer) -> None:
    verifier = CognitoVerifier(issuer.settings(token_use="any"))
    verifier.cache_jwks(issuer.jwks())
    span = await verify_in_span(sdk, verifier, issuer.id_token(email="alice@example.com"))
    attributes = dict(span.attributes or {})
    assert attributes["fcg.token_use"] == "id"
    assert attributes["fcg.client"] == issuer.client_id


async def test_expired_token_counts_expired_for_its_pool(
    sdk: Sdk, verifier: CognitoVerifier, issuer: LocalIssuer
) -> None:
    changes = Changes(sdk)
    span = await verify_in_span(sdk, verifier, issuer.access_token(expires_in=-3600))
    expired = {"fcg_outcome": "expired", "fcg_pool": issuer.user_pool_id}
    assert changes.of("fcg.verifications", **expired) == 1
    assert changes.of("fcg.verify.duration", **expired) == 1
    assert dict(span.attributes or {})["fcg.outcome"] == "expired"


async def test_bad_signature_counts_bad_signature(
    sdk: Sdk, verifier: CognitoVerifier, issuer: LocalIssuer
) -> None:
    token = issuer.access_token()
    head, payload, signature = token.split(".")
    flipped = "B" if signature[10] == "A" else "A"
    forged = f"{head}.{payload}.{signature[:10]}{flipped}{signature[11:]}"
    changes = Changes(sdk)
    await verify_in_span(sdk, verifier, forged)
    assert changes.of("fcg.verifications", fcg_outcome="bad_signature") == 1


async def test_malformed_token_counts_without_a_pool(sdk: Sdk, verifier: CognitoVerifier) -> None:
    changes = Changes(sdk)
    await verify_in_span(sdk, verifier, "not-a-token")
    assert changes.of("fcg.verifications", fcg_outcome="malformed") == 1
    pools = [
        attrs.get("fcg.pool")
        for name, attrs, _ in points(sdk)
        if name == "fcg.verifications" and attrs["fcg.outcome"] == "malformed"
    ]
    assert pools == [None]


async def test_unknown_kid_costs_exactly_one_counted_jwks_fetch(sdk: Sdk) -> None:
    with JWKSServer(LocalIssuer()) as server:
        verifier = CognitoVerifier(server.settings())
        await verifier.hydrate()
        stranger = server.issuer.sign(
            {"iss": server.issuer.issuer}, header={"kid": "nobody", "alg": "RS256"}
        )
        changes = Changes(sdk)
        for _ in range(3):
            with pytest.raises(InvalidTokenError, match="kid"):
                await verifier.verify(stranger)
        await verifier.aclose()
    assert changes.of("fcg.jwks.fetches", fcg_outcome="ok") == 1
    assert changes.of("fcg.jwks.fetch.duration", fcg_outcome="ok") == 1
    assert changes.of("fcg.verifications", fcg_outcome="unknown_kid") == 3


async def test_failed_jwks_fetch_counts_its_outcome_and_logs_code_and_pool(
    sdk: Sdk, caplog: pytest.LogCaptureFixture
) -> None:
    issuer = LocalIssuer()
    closed = closed_port_url(f"/{issuer.user_pool_id}/.well-known/jwks.json")
    verifier = CognitoVerifier(issuer.settings(jwks_url=closed))
    changes = Changes(sdk)
    with (
        caplog.at_level(logging.WARNING, "fastapi_cognito_guard"),
        pytest.raises(KeysUnavailableError),
    ):
        await verifier.verify(issuer.access_token())
    await verifier.aclose()
    assert changes.of("fcg.jwks.fetches", fcg_outcome="unreachable") == 1
    assert changes.of("fcg.verifications", fcg_outcome="keys_unavailable") == 1
    (line,) = [r for r in caplog.records if r.name == "fastapi_cognito_guard.jwks"]
    assert (line.fcg_code, line.fcg_pool) == ("keys_unavailable", issuer.user_pool_id)  # type: ignore[attr-defined]


# -- the web layer -------------------------------------------------------------------------


def guarded_app(auth: CognitoAuth[CognitoUser]) -> FastAPI:
    app = FastAPI(lifespan=auth.lifespan)

    @app.get("/me")
    async def me(user: CognitoUser = Depends(auth.current_user)) -> dict[str, str]:
        return {"sub": user.sub}

    @app.get("/orders", dependencies=[Depends(require_scope("orders/read"))])
    async def orders() -> list[str]:
        return []

    return app


async def request_in_span(
    sdk: Sdk, auth: CognitoAuth[CognitoUser], path: str, token: str | None
) -> tuple[int, dict[str, Any]]:
    """One request inside a request span: its status and the ``fcg.`` attributes of
    its spans (the request's, or FastAPI's own dependency spans), as they ended."""
    headers = bearer(token) if token is not None else {}
    async with running(guarded_app(auth)) as client:
        sdk.spans.clear()
        with sdk.tracer.start_as_current_span("request"):
            answer = await client.get(path, headers=headers)
    attributes: dict[str, Any] = {}
    for span in sdk.spans.get_finished_spans():
        attributes.update(span.attributes or {})
    return answer.status_code, attributes


@pytest.fixture
def guard(auth: CognitoAuth[CognitoUser]) -> CognitoAuth[CognitoUser]:
    """The shared ``auth`` fixture: keys from the issuer through an in-process transport."""
    return auth


async def test_request_without_a_token_marks_the_span_and_logs_its_code(
    sdk: Sdk, guard: CognitoAuth[CognitoUser], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, "fastapi_cognito_guard.refused"):
        status, attributes = await request_in_span(sdk, guard, "/me", None)
    assert status == 401
    assert attributes["fcg.outcome"] == "missing_token"
    assert "request refused: missing_token (HTTP 401)" in caplog.messages


@pytest.mark.parametrize("websocket", [False, True], ids=["http", "websocket"])
def test_middleware_refusal_logs_its_code(
    guard: CognitoAuth[CognitoUser], websocket: bool, caplog: pytest.LogCaptureFixture
) -> None:
    app = FastAPI()
    app.add_middleware(CognitoAuthMiddleware, auth=guard)

    @app.get("/private")
    async def private() -> dict[str, str]:
        return {}

    @app.websocket("/live")
    async def live(socket: WebSocket) -> None:
        await socket.accept()

    with caplog.at_level(logging.DEBUG, "fastapi_cognito_guard.refused"), TestClient(app) as client:
        if websocket:
            websocket_refusal(client, "/live", [])
        else:
            assert client.get("/private").status_code == 401
    assert caplog.messages == ["request refused: missing_token (HTTP 401)"]


async def test_request_lacking_a_scope_marks_the_span_with_its_code(
    sdk: Sdk, guard: CognitoAuth[CognitoUser], issuer: LocalIssuer
) -> None:
    token = issuer.access_token(scopes=["orders/write"])
    status, attributes = await request_in_span(sdk, guard, "/orders", token)
    assert status == 403
    assert attributes["fcg.outcome"] == "insufficient_scope"
    assert attributes["fcg.pool"] == issuer.user_pool_id  # set when the token verified


async def test_accepted_request_marks_the_span_at_the_dependency(
    sdk: Sdk, guard: CognitoAuth[CognitoUser], issuer: LocalIssuer
) -> None:
    status, attributes = await request_in_span(sdk, guard, "/me", issuer.access_token(sub="s-1"))
    assert status == 200
    assert attributes["fcg.outcome"] == "ok"
    assert attributes["enduser.pseudo.id"] == "s-1"


async def test_health_reports_the_counts(
    guard: CognitoAuth[CognitoUser], issuer: LocalIssuer
) -> None:
    await guard.verifier.verify(issuer.access_token())
    counts = guard.health()["counts"]
    assert counts["verifications"]["ok"] >= 1
    assert set(counts) == {
        "verifications",
        "result_cache_lookups",
        "jwks_fetches",
        "aws_calls",
        "refreshes",
        "sign_outs",
    }


# -- Cognito calls, sign-outs, refreshes -----------------------------------------------------


async def test_failing_cognito_call_is_counted_timed_and_an_event_of_the_span(
    sdk: Sdk, issuer: LocalIssuer, closed_jwks_url: str
) -> None:
    closed = closed_jwks_url.rsplit("/.well-known", 1)[0] + "/"
    auth: CognitoAuth[CognitoUser] = CognitoAuth(issuer.settings(idp_endpoint=closed))
    auth.verifier.cache_jwks(issuer.jwks())
    changes = Changes(sdk)
    with sdk.tracer.start_as_current_span("POST /sign-out"):
        result = await auth.sign_out(issuer.access_token(), everywhere=True)
    await auth.aclose()
    assert result.cognito == "failed"
    call = {"fcg_operation": "GlobalSignOut", "fcg_outcome": "unreachable"}
    assert changes.of("fcg.aws.calls", **call) == 1
    assert changes.of("fcg.aws.call.duration", **call) == 1
    assert changes.of("fcg.sign_outs", fcg_revoked="user", fcg_cognito="failed") == 1
    events = {event.name: dict(event.attributes or {}) for event in span_events(sdk)}
    assert events["fcg.aws_call"] == {
        "fcg.operation": "GlobalSignOut",
        "fcg.outcome": "unreachable",
    }
    assert events["fcg.sign_out"] == {"fcg.revoked": "user", "fcg.cognito": "failed"}


@pytest.mark.parametrize(("fault", "outcome"), [(None, "ok"), ("status_500", "http_500")])
async def test_cognito_answers_are_counted_by_operation_and_outcome(
    sdk: Sdk, issuer: LocalIssuer, fault: str | None, outcome: str
) -> None:
    with UserPoolApi(issuer) as api:
        api.fault = fault
        auth: CognitoAuth[CognitoUser] = CognitoAuth(issuer.settings(idp_endpoint=api.url))
        auth.verifier.cache_jwks(issuer.jwks())
        changes = Changes(sdk)
        await auth.sign_out(issuer.access_token(), everywhere=True)
        await auth.aclose()
    assert changes.of("fcg.aws.calls", fcg_operation="GlobalSignOut", fcg_outcome=outcome) == 1


def span_events(sdk: Sdk) -> list[Any]:
    return [event for span in sdk.spans.get_finished_spans() for event in span.events]


async def test_local_sign_out_counts_a_revoked_session(sdk: Sdk, issuer: LocalIssuer) -> None:
    auth: CognitoAuth[CognitoUser] = CognitoAuth(issuer.settings())
    auth.verifier.cache_jwks(issuer.jwks())
    changes = Changes(sdk)
    await auth.sign_out(issuer.access_token())
    await auth.aclose()
    assert changes.of("fcg.sign_outs", fcg_revoked="session", fcg_cognito="not_asked") == 1


def session(refresh_token: str = "refresh-1") -> Session:  # noqa: S107 - a test value
    now = int(time.time())
    return Session("sid", "sub-1", "id", "access", refresh_token, now + 60, now)


async def test_refresh_is_counted_once_and_an_event_of_the_span(sdk: Sdk) -> None:
    calls = 0

    async def refresh(old: Session) -> Session:
        nonlocal calls
        calls += 1
        return old.refreshed(
            id_token="id2", access_token="access2", refresh_token="r2", expires_at=0
        )

    refresher = SingleFlightRefresher(refresh)
    changes = Changes(sdk)
    with sdk.tracer.start_as_current_span("GET /page"):
        await refresher.refresh(session())
        await refresher.refresh(session())  # the remembered result: no second refresh
    assert calls == 1
    assert changes.of("fcg.refreshes", fcg_outcome="ok") == 1
    assert [event.name for event in span_events(sdk)] == ["fcg.refresh"]


async def test_ended_session_counts_a_failed_refresh(sdk: Sdk) -> None:
    async def refresh(old: Session) -> Session:
        raise SessionEndedError

    changes = Changes(sdk)
    with pytest.raises(SessionEndedError):
        await SingleFlightRefresher(refresh).refresh(session("refresh-2"))
    assert changes.of("fcg.refreshes", fcg_outcome="session_ended") == 1


# -- the revocation list's gauges ----------------------------------------------------------


def test_revocation_list_size_is_a_gauge(sdk: Sdk) -> None:
    before = gauge(sdk, "fcg.revocations.size")
    revocations = RevocationList(3600)
    revocations.revoke_session("sign-in-1")
    revocations.revoke_user("sub-1")
    assert gauge(sdk, "fcg.revocations.size") == before + 2


def gauge(sdk: Sdk, name: str) -> float:
    return sum(value for metric, _, value in points(sdk) if metric == name)


@dataclass(eq=False)  # hashable: telemetry keeps mirrors in a WeakSet
class FakeMirror:
    connected: bool
    last_sync: float | None
    since: float = 0.0

    def status(self) -> dict[str, Any]:
        return {"connected": self.connected, "since": self.since}


def test_mirror_lag_gauge_reports_a_mirror_that_lost_redis(sdk: Sdk) -> None:
    mirror = FakeMirror(False, time.time() - 10_000)
    telemetry.watch_mirror(mirror)
    assert gauge_max(sdk, "fcg.revocations.mirror_lag") >= 10_000


def gauge_max(sdk: Sdk, name: str) -> float:
    return max(value for metric, _, value in points(sdk) if metric == name)


def test_mirror_lag_is_zero_while_redis_is_followed_else_time_since_the_last_merge() -> None:
    assert telemetry.mirror_lag(FakeMirror(True, 100.0), now=160.0) == 0.0
    assert telemetry.mirror_lag(FakeMirror(False, 100.0), now=160.0) == 60.0


def test_mirror_lag_before_any_merge_counts_from_when_redis_was_lost() -> None:
    mirror = FakeMirror(False, None, since=130.0)
    assert telemetry.mirror_lag(mirror, now=160.0) == 30.0


# -- nothing secret leaves -----------------------------------------------------------------


async def test_no_exported_value_holds_a_token_signature_secret_or_email(
    sdk: Sdk, issuer: LocalIssuer, closed_jwks_url: str
) -> None:
    email = "carol@example.com"
    secret = "client-secret-never-exported"
    closed = closed_jwks_url.rsplit("/.well-known", 1)[0] + "/"
    auth: CognitoAuth[CognitoUser] = CognitoAuth(
        issuer.settings(idp_endpoint=closed, client_secret=secret)
    )
    auth.verifier.cache_jwks(issuer.jwks())
    access = issuer.access_token("carol", email=email)
    tokens = [access, issuer.id_token("carol", email=email), issuer.access_token(expires_in=-60)]
    with sdk.tracer.start_as_current_span("requests"):
        for token in tokens:
            with contextlib.suppress(InvalidTokenError):
                await auth.verifier.verify(token)
        await auth.sign_out(access, everywhere=True)
    await auth.aclose()
    forbidden = [email, secret, *tokens]
    forbidden += [part for token in tokens for part in token.split(".")]
    exported = [str(v) for _, attrs, _ in points(sdk) for v in [*attrs, *attrs.values()]]
    for span in sdk.spans.get_finished_spans():
        exported += [str(v) for v in (span.attributes or {}).values()]
        for event in span.events:
            exported += [event.name, *(str(v) for v in (event.attributes or {}).values())]
    assert exported
    leaks = [value for value in exported for bad in forbidden if bad in value]
    assert leaks == []


# -- exporters and SDKs that fail --------------------------------------------------------------


class RaisingExporter(SpanExporter):
    def __init__(self) -> None:
        self.calls = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls += 1
        raise ConnectionError("collector down")


async def test_a_raising_exporter_never_fails_a_request(
    sdk: Sdk, verifier: CognitoVerifier, issuer: LocalIssuer
) -> None:
    exporter = RaisingExporter()
    processor = BatchSpanProcessor(exporter, schedule_delay_millis=1)
    sdk.provider.add_span_processor(processor)
    try:
        for _ in range(5):
            with sdk.tracer.start_as_current_span("GET /items"):
                claims = await verifier.verify(issuer.access_token())
            assert claims.sub
        processor.force_flush()
    finally:
        processor.shutdown()
    assert exporter.calls >= 1


async def test_an_sdk_that_raises_is_logged_once_and_the_request_goes_on(
    sdk: Sdk,
    verifier: CognitoVerifier,
    issuer: LocalIssuer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    instruments = telemetry._get()

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("broken SDK")

    monkeypatch.setattr(instruments.verifications, "add", broken)
    monkeypatch.setattr(telemetry, "_sdk_failures_logged", set())
    with caplog.at_level(logging.WARNING, "fastapi_cognito_guard"):
        for _ in range(3):
            assert (await verifier.verify(issuer.access_token())).sub
    failures = [r for r in caplog.records if "OpenTelemetry failed" in r.getMessage()]
    assert len(failures) == 1


# -- health counts, operation names, logs -------------------------------------------------------


async def test_health_counts_follow_the_metrics(
    verifier: CognitoVerifier, issuer: LocalIssuer
) -> None:
    before = telemetry.COUNTS.snapshot()
    token = issuer.access_token()
    await verifier.verify(token)
    await verifier.verify(token)
    with pytest.raises(InvalidTokenError):
        await verifier.verify(issuer.access_token(expires_in=-60))
    after = telemetry.COUNTS.snapshot()
    assert after["verifications"]["ok"] - before["verifications"]["ok"] == 2
    assert after["verifications"]["expired"] - before["verifications"].get("expired", 0) == 1
    assert after["result_cache_lookups"]["hit"] - before["result_cache_lookups"]["hit"] == 1


@pytest.mark.parametrize(
    ("url", "headers", "content", "operation"),
    [
        (
            "https://cognito-idp.eu-west-1.amazonaws.com/",
            {"X-Amz-Target": "AWSCognitoIdentityProviderService.GetUser"},
            '{"AccessToken": "eyJ..."}',
            "GetUser",
        ),
        (
            "https://sts.eu-west-1.amazonaws.com/",
            {},
            "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&WebIdentityToken=eyJ",
            "AssumeRoleWithWebIdentity",
        ),
        ("https://auth.example.com/oauth2/token", {}, "grant_type=refresh_token", "oauth2/token"),
    ],
)
def test_aws_operation_names_the_action_never_a_body_value(
    url: str, headers: dict[str, str], content: str, operation: str
) -> None:
    assert telemetry.aws_operation(url, headers, content) == operation


async def test_refused_token_logs_a_debug_line_with_code_and_pool_never_the_token(
    verifier: CognitoVerifier, issuer: LocalIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    token = issuer.access_token(expires_in=-60)
    with caplog.at_level(logging.DEBUG, "fastapi_cognito_guard"), pytest.raises(InvalidTokenError):
        await verifier.verify(token)
    (record,) = [r for r in caplog.records if r.name == "fastapi_cognito_guard.refused"]
    assert record.levelno == logging.DEBUG
    assert record.fcg_code == "expired"  # type: ignore[attr-defined]
    assert record.fcg_pool == issuer.user_pool_id  # type: ignore[attr-defined]
    assert token not in caplog.text
    assert token.split(".")[2] not in caplog.text


def test_every_library_logger_is_a_child_of_the_package_logger() -> None:
    sources = (ROOT / "fastapi_cognito_guard").rglob("*.py")
    bare = [
        path.name
        for path in sources
        if 'getLogger("fastapi_cognito_guard")' in path.read_text(encoding="utf-8")
    ]
    assert bare == []


def run_python(script: str, argument: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a fresh interpreter with this checkout first on the path."""
    done = subprocess.run(
        [sys.executable, "-c", script, argument],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def readme_logging_config() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Logs, metrics and traces", 1)[1]
    return section.split("```json\n", 1)[1].split("```", 1)[0]


_LOGGED_RUN = textwrap.dedent(
    """
    import json, logging.config, sys
    from fastapi_cognito_guard import CognitoVerifier, InvalidTokenError
    from fastapi_cognito_guard.testing import LocalIssuer

    logging.config.dictConfig(json.loads(sys.argv[1]))
    issuer = LocalIssuer()
    verifier = CognitoVerifier(issuer.settings())
    verifier.cache_jwks(issuer.jwks())
    token = issuer.access_token(expires_in=-60)
    print(token)
    try:
        verifier.verify_sync(token)
    except InvalidTokenError:
        pass
    """
)


def test_readme_logging_config_shows_level_logger_and_code_of_a_refusal() -> None:
    done = run_python(_LOGGED_RUN, readme_logging_config())
    token = done.stdout.strip()
    assert "DEBUG fastapi_cognito_guard.refused: token refused: expired" in done.stderr
    assert token not in done.stderr
    assert token.rsplit(".", 1)[1] not in done.stderr


# -- without an SDK, without the extra ---------------------------------------------------------

_QUIET_RUN = textwrap.dedent(
    """
    import json, sys, tracemalloc

    class HideOpenTelemetry:
        def find_spec(self, name, path=None, target=None):
            if name == "opentelemetry" or name.startswith("opentelemetry."):
                raise ModuleNotFoundError(f"No module named {name!r}")
            return None

    if sys.argv[1] == "hide":
        sys.meta_path.insert(0, HideOpenTelemetry())

    from fastapi_cognito_guard import CognitoVerifier, InvalidTokenError, telemetry
    from fastapi_cognito_guard.testing import LocalIssuer

    issuer = LocalIssuer()
    verifier = CognitoVerifier(issuer.settings())
    verifier.cache_jwks(issuer.jwks())
    tokens = [issuer.access_token(), issuer.access_token(expires_in=-60)]

    def run(rounds):
        for _ in range(rounds):
            for token in tokens:
                try:
                    verifier.verify_sync(token)
                except InvalidTokenError:
                    pass

    tracemalloc.start(1)
    run(300)  # counts past the small-int cache, caches warm
    before = tracemalloc.take_snapshot()
    run(2000)
    after = tracemalloc.take_snapshot()
    only = [tracemalloc.Filter(True, telemetry.__file__)]
    grown = [
        str(stat)
        for stat in after.filter_traces(only).compare_to(before.filter_traces(only), "lineno")
        if stat.count_diff > 0
    ]
    print(json.dumps({
        "recording": telemetry.recording(),
        "otel_loaded": any(name.startswith("opentelemetry") for name in sys.modules),
        "ok": telemetry.COUNTS.snapshot()["verifications"]["ok"],
        "grown": grown,
    }))
    """
)


@pytest.mark.parametrize(
    ("mode", "otel_loaded"), [("hide", False), ("api", True)], ids=["no-extra", "api-no-sdk"]
)
def test_without_an_sdk_verification_works_and_telemetry_allocates_nothing_per_request(
    mode: str, otel_loaded: bool
) -> None:
    done = run_python(_QUIET_RUN, mode)
    result = json.loads(done.stdout)
    assert result["recording"] is False
    assert result["otel_loaded"] is otel_loaded
    assert result["ok"] == 2300
    assert result["grown"] == []
