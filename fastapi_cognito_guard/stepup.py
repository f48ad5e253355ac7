"""Step-up authentication (RFC 9470): how recent, at what level and by which methods a
caller's sign-in must be for a route.

Cognito's tokens carry ``auth_time`` (when the user authenticated), ``acr`` (the level)
and ``amr`` (the methods, e.g. ``["pwd", "mfa"]``); managed login takes ``max_age`` and
``acr_values`` to authenticate again. A ``StepUp`` names what a route needs and checks a
verified user against it; a caller that falls short gets
``InsufficientUserAuthenticationError`` carrying the ``max_age`` / ``acr_values`` a new
sign-in should ask for. No FastAPI here: the web layer turns the error into the 401
challenge and the browser redirect.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import InsufficientUserAuthenticationError

__all__ = ["StepUp"]


@dataclass(frozen=True)
class StepUp:
    """What a route needs of the caller's sign-in: at most ``max_age`` seconds old, one of
    the ``acr`` levels, one of the ``amr`` methods (each unchecked when empty)."""

    max_age: int | None = None
    acr: tuple[str, ...] = ()
    amr: tuple[str, ...] = ()

    @classmethod
    def of(
        cls, max_age: int | None = None, acr: Sequence[str] = (), amr: Sequence[str] = ()
    ) -> StepUp:
        """Checked at definition time: a bad requirement is a start-up error, not a 500."""
        if isinstance(acr, str) or isinstance(amr, str):
            raise TypeError("acr and amr take a sequence of values, e.g. acr=('urn:...',)")
        if max_age is not None and (
            isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0
        ):
            raise ValueError("max_age must be a whole number of seconds, 0 or more")
        for name, values in (("acr", acr), ("amr", amr)):
            if any(not isinstance(v, str) or not v or " " in v for v in values):
                raise ValueError(f"{name} values must be non-empty strings without spaces")
        if max_age is None and not acr and not amr:
            raise ValueError("require_auth needs max_age, acr or amr")
        return cls(max_age, tuple(acr), tuple(amr))

    def check(self, claims: Mapping[str, Any], *, leeway: int, now: float | None = None) -> None:
        """Raise ``InsufficientUserAuthenticationError`` unless the verified ``claims``
        meet this requirement. ``leeway`` (the clock skew allowed on ``exp``) also pads
        ``max_age``, so a sign-in made for ``max_age=0`` passes on its way back."""
        problems: list[str] = []
        if self.max_age is not None:
            auth_time = _time_of(claims.get("auth_time"))
            current = time.time() if now is None else now
            if auth_time is None:
                problems.append("a sign-in time (auth_time)")
            elif current - auth_time > self.max_age + leeway:
                problems.append(f"a sign-in within the last {self.max_age} seconds")
        if self.acr and claims.get("acr") not in self.acr:
            problems.append(f"authentication level (acr) {' or '.join(self.acr)}")
        if self.amr:
            methods = claims.get("amr")
            if not isinstance(methods, list) or not set(self.amr).intersection(
                method for method in methods if isinstance(method, str)
            ):
                problems.append(f"authentication method (amr) {' or '.join(self.amr)}")
        if problems:
            raise InsufficientUserAuthenticationError(
                "this route needs " + "; ".join(problems),
                max_age=self.max_age,
                acr_values=self.acr,
            )


def _time_of(value: object) -> float | None:
    """A NumericDate claim's value; None when absent or not a number."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None
