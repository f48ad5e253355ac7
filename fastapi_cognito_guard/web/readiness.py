"""Readiness and health (DESIGN §16): whether the app can verify, and each part's state.

``ready()`` is for ``/ready`` routes and Kubernetes readiness probes: true when every
user pool's signing keys are usable. ``health()`` details each part for operators.
Redis is reported but never a readiness condition: verification works without it.
"""

from __future__ import annotations

from typing import Any

from .. import telemetry
from ..verifier import CognitoVerifier
from .identity_pools import IdentityPools
from .shared_state import SharedState
from .sign_out import SignOut

__all__ = ["Readiness"]


class Readiness:
    """Answers ``ready()`` and ``health()`` for one auth's parts."""

    def __init__(
        self,
        verifier: CognitoVerifier,
        shared: SharedState,
        identity_pools: IdentityPools,
        signing_out: SignOut[Any],
    ) -> None:
        self._verifier = verifier
        self._shared = shared
        self._identity_pools = identity_pools
        self._signing_out = signing_out

    def ready(self) -> bool:
        """True when every user pool's signing keys are usable. A pool without keys gets
        a background fetch, so a probe that found it unready finds it ready once the
        keys arrive."""
        usable = self._verifier.keys_usable()
        if not all(usable.values()):
            self._verifier.prefetch_missing()
        return all(usable.values())

    def health(self) -> dict[str, Any]:
        """Each part's state: keys per pool, Redis, identity pools, the revocation
        list's size and the session checks that could not ask Cognito; and ``counts``,
        what the ``fcg.`` metrics count, in this process (for those without
        OpenTelemetry). Never contains a token or a secret."""
        keys = {
            pool_id: {"usable": usable} for pool_id, usable in self._verifier.keys_usable().items()
        }
        redis = self._shared.status()
        ok = all(pool["usable"] for pool in keys.values())
        return {
            "status": "ok" if ok and redis.get("connected", True) else "degraded",
            "keys": keys,
            "redis": redis,
            "identity_pools": self._identity_pools.status(),
            "revocations": len(self._shared.revocations),
            "session_checks": self._signing_out.status(),
            "counts": telemetry.COUNTS.snapshot(),
        }
