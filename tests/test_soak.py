"""Short soak: a real uvicorn server, key rotation, a JWKS outage and a revoked key,
with every request's right answer known in advance (``benchmarks/soak.py``).

Asserts only counts, never timings: no false accept, no false reject of a valid
token whose key is published, no 5xx (a 503 for a never-published key while the
JWKS is down is counted apart), every request answered, and a JWKS fetch count
that shows the outage was really hit and the endpoint was never hammered.
"""

from __future__ import annotations

import pytest

from benchmarks.soak import MIX, PHASES, SoakReport, run_soak

REQUESTS = 2_000
CONCURRENCY = 16
TTL = 0.5
COOLDOWN = 0.25
TIMEOUT = 1.0  # generous: a fetch must not time out on a busy machine outside the outage
OUTAGE_TICKS = 4


@pytest.fixture(scope="module")
def report() -> SoakReport:
    return run_soak(
        REQUESTS,
        CONCURRENCY,
        ttl=TTL,
        cooldown=COOLDOWN,
        timeout=TIMEOUT,
        outage_ticks=OUTAGE_TICKS,
    )


def test_every_request_is_answered(report: SoakReport) -> None:
    assert report.served == REQUESTS
    assert report.transport_errors == 0
    assert sum(report.by_kind.values()) == REQUESTS
    assert sum(report.statuses.values()) == REQUESTS
    assert set(report.by_kind) == {*MIX, "revoked"}  # every kind of token was sent
    assert list(report.phase_seconds) == [name for name, _ in PHASES]


def test_no_false_accept(report: SoakReport) -> None:
    assert report.false_accepts == 0
    # Every 200 went to a valid token, naming that token's user.
    assert report.statuses[200] == report.by_kind["valid"]


def test_no_false_reject_of_a_valid_token(report: SoakReport) -> None:
    assert report.false_rejects == 0


def test_no_5xx_and_no_other_surprise(report: SoakReport) -> None:
    assert report.server_errors == 0
    assert report.unexpected == 0
    # 503 only for tokens of a never-published key, while the keys could not be fetched.
    assert report.statuses[503] == report.outage_unavailable
    assert report.outage_unavailable <= report.by_kind["unpublished"]
    assert set(report.statuses) <= {200, 401, 503}


def test_the_outage_was_hit_and_the_endpoint_never_hammered(report: SoakReport) -> None:
    # Good fetches: start-up, the rotation's kid miss, the outage's end, the drop.
    assert report.jwks_fetches >= 3
    assert report.jwks_failed_fetches >= 2  # refreshes kept failing during the outage
    # Single flight and the cooldown: at most one routine refresh per TTL and one
    # kid-miss refetch or retry per cooldown, whatever the request rate.
    bound = 2 + report.duration / TTL + 2 * report.duration / COOLDOWN
    assert report.jwks_fetches + report.jwks_failed_fetches <= bound
    failures = [line for line in report.server_log if "failed" in line]
    assert len(failures) == 1  # logged once for the whole incident
    assert any("recovered" in line for line in report.server_log)
