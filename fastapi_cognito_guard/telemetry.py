"""What the library tells operators: OpenTelemetry metrics and span attributes, and
the same counts in plain numbers for ``auth.health()``.

Everything goes through ``opentelemetry-api`` (the ``otel`` extra) and only when an
SDK is configured: without the package, or with it but no tracer or meter provider
set, a result-cache hit costs one function call and one increment of the health
counts, a full verification one more call (``clock()`` returning ``0.0``); no attribute,
span lookup or instrument call happens, and nothing is kept per request. The SDK's
own batching keeps exporters off the request path, and every instrument call is
wrapped so that a failing SDK never fails a request.

No new span is opened: attributes go on the span current when the library decides
(FastAPI's instrumentation's request or dependency span). No value recorded here
is a token, a signature, a secret or an email: outcomes are error codes, pools and
clients are configured ids, ``enduser.pseudo.id`` is the ``sub``.

Instrument and attribute names are DESIGN §16's and public.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from importlib import metadata
from types import SimpleNamespace
from typing import Any, Protocol, TypeVar

import httpx

from .errors import CognitoGuardError

__all__ = [
    "COUNTS",
    "Counts",
    "aws_called",
    "aws_operation",
    "aws_outcome",
    "cache_hit",
    "clock",
    "fetch_outcome",
    "jwks_fetched",
    "log_extra",
    "mirror_lag",
    "recording",
    "refreshed",
    "refused",
    "request_refused",
    "signed_out",
    "verified",
    "watch_mirror",
    "watch_revocations",
]

logger = logging.getLogger(__name__)
refused_log = logging.getLogger("fastapi_cognito_guard.refused")
"""One DEBUG line per refused token or request, with its code (never the token)."""

try:
    from opentelemetry import metrics as _metrics
    from opentelemetry import trace as _trace
    from opentelemetry.metrics import _internal as _meters
except ImportError:  # the otel extra is not installed: no provider will ever be set
    _metrics = None  # type: ignore[assignment]
    _trace = None  # type: ignore[assignment]
    _meters = _tracers = SimpleNamespace(_METER_PROVIDER=None, _TRACER_PROVIDER=None)  # type: ignore[assignment]
else:
    # The API keeps the providers an application set in these module globals (set
    # once, never unset). Reading them is the cheapest way to know whether an SDK
    # records anything: the public getters consult os.environ on every call until
    # a provider is set. Should a future API rename them, everything is recorded
    # (correct, only slower).
    _tracers = _trace  # type: ignore[assignment]
    if not (hasattr(_meters, "_METER_PROVIDER") and hasattr(_tracers, "_TRACER_PROVIDER")):
        _meters = _tracers = SimpleNamespace(  # type: ignore[assignment]  # pragma: no cover
            _METER_PROVIDER=True, _TRACER_PROVIDER=True
        )

_perf_counter = time.perf_counter


def clock() -> float:
    """The start of a measured operation: ``time.perf_counter()`` when an SDK records,
    else ``0.0`` (then the hooks only update the health counts)."""
    if _meters._METER_PROVIDER is None and _tracers._TRACER_PROVIDER is None:
        return 0.0
    return _perf_counter()


def recording() -> bool:
    """Whether an OpenTelemetry SDK (a tracer or meter provider) has been set."""
    return _meters._METER_PROVIDER is not None or _tracers._TRACER_PROVIDER is not None


# -- the health counts (always kept; cheap) -------------------------------------------


class Counts:
    """Process-wide counts of what the metrics count, for ``auth.health()``.

    Plain dict increments: under threads (``verify_sync`` in a thread pool) an
    increment may rarely be lost; they are for a glance, metrics for accounting.
    """

    __slots__ = (
        "aws_calls",
        "hits",
        "jwks_fetches",
        "misses",
        "refreshes",
        "refusals",
        "sign_outs",
    )

    def __init__(self) -> None:
        self.hits = 0  # accepted tokens the result cache answered
        self.misses = 0  # accepted tokens that went through every check
        self.refusals: dict[str, int] = {}
        self.jwks_fetches: dict[str, int] = {}
        self.aws_calls: dict[str, dict[str, int]] = {}
        self.refreshes: dict[str, int] = {}
        self.sign_outs: dict[str, int] = {}

    def snapshot(self) -> dict[str, Any]:
        """A copy of every count, by the metric it mirrors."""
        return {
            "verifications": {"ok": self.hits + self.misses, **self.refusals},
            "result_cache_lookups": {"hit": self.hits, "miss": self.misses},
            "jwks_fetches": dict(self.jwks_fetches),
            "aws_calls": {operation: dict(v) for operation, v in self.aws_calls.items()},
            "refreshes": dict(self.refreshes),
            "sign_outs": dict(self.sign_outs),
        }


COUNTS = Counts()
"""The counts of this process."""


def _bump(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


# -- instruments -------------------------------------------------------------------------


class _Instruments:
    """The ``fcg.`` instruments, made on first use through the global meter."""

    def __init__(self) -> None:
        try:
            version = metadata.version("fastapi-cognito-guard")
        except metadata.PackageNotFoundError:  # pragma: no cover - run from a bare checkout
            version = ""
        meter = _metrics.get_meter("fastapi_cognito_guard", version)
        self.verifications = meter.create_counter(
            "fcg.verifications", unit="{verification}", description="Tokens verified, by outcome"
        )
        self.verify_duration = meter.create_histogram(
            "fcg.verify.duration", unit="s", description="Time to verify one token"
        )
        self.lookups = meter.create_counter(
            "fcg.result_cache.lookups",
            unit="{lookup}",
            description="Accepted tokens, by whether the result cache answered (fcg.hit)",
        )
        self.jwks_fetches = meter.create_counter(
            "fcg.jwks.fetches", unit="{fetch}", description="JWKS fetches, by outcome"
        )
        self.jwks_duration = meter.create_histogram(
            "fcg.jwks.fetch.duration", unit="s", description="Time of one JWKS fetch"
        )
        self.aws_calls = meter.create_counter(
            "fcg.aws.calls",
            unit="{call}",
            description="Calls to Cognito, identity pools, STS and OAuth2 endpoints",
        )
        self.aws_duration = meter.create_histogram(
            "fcg.aws.call.duration", unit="s", description="Time of one AWS call"
        )
        self.refreshes = meter.create_counter(
            "fcg.refreshes", unit="{refresh}", description="Session refreshes, by outcome"
        )
        self.sign_outs = meter.create_counter(
            "fcg.sign_outs", unit="{sign_out}", description="Sign-outs, by what they revoked"
        )
        meter.create_observable_gauge(
            "fcg.revocations.size",
            callbacks=[_observe_revocations],
            unit="{entry}",
            description="Entries in the revocation list",
        )
        meter.create_observable_gauge(
            "fcg.revocations.mirror_lag",
            callbacks=[_observe_mirror_lag],
            unit="s",
            description="How far the revocation list may be behind Redis (0 while following)",
        )


_instruments: _Instruments | None = None
_making = threading.Lock()


def _get() -> _Instruments:
    """The instruments, made once (threads recording at once wait for the first)."""
    global _instruments
    if _instruments is None:
        with _making:
            if _instruments is None:
                _instruments = _Instruments()
    return _instruments


def _safely(what: str, record: Callable[..., None], *args: Any) -> None:
    """Run one recording; an SDK that raises is logged once and never fails the request."""
    try:
        record(*args)
    except Exception as exc:  # noqa: BLE001 - third-party SDK code: any failure is its own
        _log_sdk_failure(what, exc)


_sdk_failures_logged: set[str] = set()


def _log_sdk_failure(what: str, exc: Exception) -> None:
    if what not in _sdk_failures_logged:
        _sdk_failures_logged.add(what)
        logger.warning(
            "OpenTelemetry failed recording %s (%s); requests go on without it",
            what,
            type(exc).__name__,
        )


def _span_event(name: str, attributes: Mapping[str, str | bool]) -> None:
    span = _trace.get_current_span()
    if span.is_recording():
        span.add_event(name, attributes)


# -- verifications -----------------------------------------------------------------------


class _Claims(Protocol):
    """What is read from verified claims (``TokenClaims``): configured ids and the sub."""

    @property
    def user_pool_id(self) -> str: ...
    @property
    def token_use(self) -> str: ...
    @property
    def sub(self) -> str: ...


_R = TypeVar("_R")


def cache_hit(claims: _Claims, result: _R) -> _R:
    """A token the result cache accepted (not timed: it costs well under a
    microsecond); returns ``result`` (what the verifier delivers for ``claims``). The
    hottest hook: one call, one increment and, without an SDK, two global reads."""
    COUNTS.hits += 1
    if _meters._METER_PROVIDER is not None or _tracers._TRACER_PROVIDER is not None:
        _safely("a verification", _record_verified, 0.0, claims, True)
    return result


def verified(started: float, claims: _Claims, result: _R) -> _R:
    """A token accepted after every check (``started``: from ``clock()``); returns
    ``result`` (what the verifier delivers for ``claims``)."""
    COUNTS.misses += 1
    if started:
        _safely("a verification", _record_verified, started, claims, False)
    return result


def _record_verified(started: float, claims: _Claims, hit: bool) -> None:
    pool, token_use = claims.user_pool_id, claims.token_use
    attributes = {"fcg.outcome": "ok", "fcg.pool": pool, "fcg.token_use": token_use}
    instruments = _get()
    instruments.verifications.add(1, attributes)
    if started:
        instruments.verify_duration.record(time.perf_counter() - started, attributes)
    instruments.lookups.add(1, {"fcg.hit": hit})
    span = _trace.get_current_span()
    if span.is_recording():
        span.set_attributes(
            {
                **attributes,
                "fcg.client": _client_of(claims),
                "enduser.pseudo.id": claims.sub,
            }
        )


def _client_of(claims: _Claims) -> str:
    client = getattr(claims, "client_id", None)
    return client if isinstance(client, str) else str(getattr(claims, "aud", ""))


def refused(started: float, error: CognitoGuardError, pool: str | None) -> None:
    """A token that was not accepted (``pool``: the configured pool it was routed to;
    ``started`` 0 for one refused from the result cache, not timed)."""
    code = error.code
    _bump(COUNTS.refusals, code)
    if refused_log.isEnabledFor(logging.DEBUG):
        refused_log.debug("token refused: %s", code, extra=log_extra(code, pool))
    if started or recording():
        _safely("a verification", _record_refused, started, code, pool)


def _record_refused(started: float, code: str, pool: str | None) -> None:
    attributes = {"fcg.outcome": code}
    if pool is not None:
        attributes["fcg.pool"] = pool
    instruments = _get()
    instruments.verifications.add(1, attributes)
    if started:
        instruments.verify_duration.record(time.perf_counter() - started, attributes)
    span = _trace.get_current_span()
    if span.is_recording():
        span.set_attributes(attributes)


def request_refused(error: CognitoGuardError) -> None:
    """The web layer refused a request for ``error`` (a bad token, none, a missing
    scope or group, ...): a DEBUG line with its code and status, and the code on the
    current span."""
    code = error.code
    if refused_log.isEnabledFor(logging.DEBUG):
        refused_log.debug(
            "request refused: %s (HTTP %d)", code, error.status_code, extra=log_extra(code)
        )
    if recording():
        _safely("a refusal", _mark_span, code)


def _mark_span(code: str) -> None:
    span = _trace.get_current_span()
    if span.is_recording():
        span.set_attribute("fcg.outcome", code)


# -- keys and AWS calls ------------------------------------------------------------------


def jwks_fetched(started: float, outcome: str) -> None:
    """One JWKS fetch ended (``ok``, ``timeout``, ``unreachable`` or ``bad_answer``)."""
    _bump(COUNTS.jwks_fetches, outcome)
    if started:
        _safely("a JWKS fetch", _record_jwks, started, outcome)


def _record_jwks(started: float, outcome: str) -> None:
    elapsed = time.perf_counter() - started
    instruments = _get()
    attributes = {"fcg.outcome": outcome}
    instruments.jwks_fetches.add(1, attributes)
    instruments.jwks_duration.record(elapsed, attributes)


def fetch_outcome(error: BaseException) -> str:
    """The ``fcg.outcome`` of a JWKS fetch that failed with ``error``."""
    if isinstance(error, asyncio.TimeoutError):
        return "timeout"
    if isinstance(error, httpx.HTTPError):
        return "unreachable"
    return "bad_answer"  # not 200, too large, not JSON, no usable key


_TARGET = "x-amz-target"
_ACTION = re.compile(r"(?:^|&)Action=(\w+)")


def aws_operation(url: str, headers: Mapping[str, str], content: str | bytes) -> str:
    """The name of an AWS call: the JSON 1.1 target's action (``GetUser``), the Query
    API's ``Action`` (``AssumeRoleWithWebIdentity``), else the URL's last two path
    segments (``oauth2/token``). Never a value from the body but the action name."""
    for name, value in headers.items():
        if name.lower() == _TARGET:
            return value.rsplit(".", 1)[-1]
    text = content.decode("ascii", "replace") if isinstance(content, bytes) else content
    match = _ACTION.search(text)
    if match is not None:
        return match[1]
    path = url.split("?", 1)[0].rstrip("/")
    return "/".join(path.rsplit("/", 2)[-2:])


def aws_outcome(status: int) -> str:
    """``ok`` for a 2xx answer, else ``http_<status>``."""
    return "ok" if 200 <= status < 300 else f"http_{status}"


def aws_called(
    started: float,
    url: str,
    headers: Mapping[str, str],
    content: str | bytes,
    outcome: str,
) -> None:
    """One call to Cognito, an identity pool, STS or an OAuth2 endpoint ended with
    ``outcome`` (``aws_outcome`` of its answer, or why there was none)."""
    operation = aws_operation(url, headers, content)
    _bump(COUNTS.aws_calls.setdefault(operation, {}), outcome)
    if started:
        _safely("an AWS call", _record_aws, started, operation, outcome)


def _record_aws(started: float, operation: str, outcome: str) -> None:
    elapsed = time.perf_counter() - started
    instruments = _get()
    attributes = {"fcg.operation": operation, "fcg.outcome": outcome}
    instruments.aws_calls.add(1, attributes)
    instruments.aws_duration.record(elapsed, attributes)
    _span_event("fcg.aws_call", attributes)


# -- sessions and sign-outs --------------------------------------------------------------


def refreshed(outcome: str) -> None:
    """One session refresh ended: ``ok``, ``session_ended`` or the service error's code."""
    _bump(COUNTS.refreshes, outcome)
    if recording():
        _safely("a refresh", _record_refresh, outcome)


def _record_refresh(outcome: str) -> None:
    attributes = {"fcg.outcome": outcome}
    _get().refreshes.add(1, attributes)
    _span_event("fcg.refresh", attributes)


class _SignOut(Protocol):
    @property
    def user_revoked(self) -> bool: ...
    @property
    def cognito(self) -> str: ...


_S = TypeVar("_S", bound=_SignOut)


def signed_out(result: _S) -> _S:
    """One sign-out (a ``SignOutResult``), returned: ``fcg.revoked`` is ``user`` (every
    token of the user up to now: sign-out everywhere, or a token naming no sign-in) or
    ``session`` (one sign-in); ``fcg.cognito`` what Cognito was told."""
    revoked = "user" if result.user_revoked else "session"
    _bump(COUNTS.sign_outs, revoked)
    if recording():
        _safely("a sign-out", _record_sign_out, revoked, result.cognito)
    return result


def _record_sign_out(revoked: str, cognito: str) -> None:
    attributes = {"fcg.revoked": revoked, "fcg.cognito": cognito}
    _get().sign_outs.add(1, attributes)
    _span_event("fcg.sign_out", attributes)


# -- the revocation list's gauges --------------------------------------------------------


class _Sized(Protocol):
    def __len__(self) -> int: ...


class _Mirror(Protocol):
    last_sync: float | None

    def status(self) -> dict[str, Any]: ...


_revocation_lists: weakref.WeakSet[Any] = weakref.WeakSet()
_mirrors: weakref.WeakSet[Any] = weakref.WeakSet()


def watch_revocations(revocations: _Sized) -> None:
    """Count ``revocations`` in ``fcg.revocations.size`` while it lives (the sum of
    the process's lists; one per ``CognitoAuth``)."""
    _revocation_lists.add(revocations)
    if _metrics is not None:
        _get()  # the gauges exist from now on (through the API's proxy until an SDK is set)


def watch_mirror(mirror: _Mirror) -> None:
    """Report ``mirror``'s lag in ``fcg.revocations.mirror_lag`` while it lives."""
    _mirrors.add(mirror)
    if _metrics is not None:
        _get()


def _observe_revocations(options: Any) -> Iterator[Any]:
    yield _metrics.Observation(sum(len(entries) for entries in list(_revocation_lists)))


def mirror_lag(mirror: _Mirror, now: float | None = None) -> float:
    """0 while Redis is reachable (changes arrive as they happen), else the seconds
    since the last full merge with Redis (without one yet, since Redis was last
    found unreachable)."""
    status = mirror.status()
    if status.get("connected"):
        return 0.0
    last = mirror.last_sync if mirror.last_sync is not None else status.get("since")
    if not isinstance(last, (int, float)):
        return 0.0
    return max(0.0, (time.time() if now is None else now) - last)


def _observe_mirror_lag(options: Any) -> Iterable[Any]:
    mirrors = list(_mirrors)
    if not mirrors:
        return []
    return [_metrics.Observation(max(mirror_lag(mirror) for mirror in mirrors))]


# -- logs ----------------------------------------------------------------------------------


def log_extra(code: str, pool: str | None = None) -> dict[str, str]:
    """The structured ``extra`` of a library log line: ``fcg_code`` and ``fcg_pool``."""
    return {"fcg_code": code, "fcg_pool": pool or "-"}
