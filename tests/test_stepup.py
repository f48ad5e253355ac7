"""Specification of ``StepUp`` (DESIGN §7, RFC 9470): a sign-in's age, level and methods.

Proves that a sign-in older than ``max_age`` (plus the leeway), without ``auth_time``, at
another ``acr`` or without one of the ``amr`` methods is refused with
``insufficient_user_authentication`` carrying the ``max_age`` / ``acr_values`` to ask
for; that claims of the wrong type never pass; and that a bad requirement is refused
when the route is defined.
"""

from __future__ import annotations

from typing import Any

import pytest

from fastapi_cognito_guard.errors import InsufficientUserAuthenticationError
from fastapi_cognito_guard.stepup import StepUp

NOW = 1_800_000_000.0


def refused(step_up: StepUp, claims: dict[str, Any]) -> InsufficientUserAuthenticationError:
    with pytest.raises(InsufficientUserAuthenticationError) as caught:
        step_up.check(claims, leeway=30, now=NOW)
    assert caught.value.code == "insufficient_user_authentication"
    assert caught.value.status_code == 401
    return caught.value


def test_a_recent_enough_sign_in_passes() -> None:
    StepUp.of(max_age=300).check({"auth_time": NOW - 300}, leeway=0, now=NOW)


def test_an_older_sign_in_is_refused_with_the_max_age_to_ask_for() -> None:
    error = refused(StepUp.of(max_age=300), {"auth_time": NOW - 331})

    assert error.max_age == 300
    assert "300 seconds" in error.message


def test_the_leeway_pads_max_age_so_max_age_zero_can_be_met() -> None:
    StepUp.of(max_age=0).check({"auth_time": NOW - 5}, leeway=30, now=NOW)


@pytest.mark.parametrize("auth_time", [None, "1800000000", True, [NOW]])
def test_a_missing_or_malformed_auth_time_is_refused(auth_time: Any) -> None:
    claims = {} if auth_time is None else {"auth_time": auth_time}

    refused(StepUp.of(max_age=300), claims)


def test_a_listed_acr_passes() -> None:
    StepUp.of(acr=("urn:a", "urn:b")).check({"acr": "urn:b"}, leeway=0, now=NOW)


@pytest.mark.parametrize("acr", [None, "urn:c", ["urn:a"], 1])
def test_another_acr_is_refused_with_the_acr_values(acr: Any) -> None:
    error = refused(StepUp.of(acr=("urn:a", "urn:b")), {} if acr is None else {"acr": acr})

    assert error.acr_values == ("urn:a", "urn:b")
    assert "urn:a or urn:b" in error.message


def test_one_listed_amr_method_passes() -> None:
    StepUp.of(amr=("mfa", "hwk")).check({"amr": ["pwd", "mfa"]}, leeway=0, now=NOW)


@pytest.mark.parametrize("amr", [None, ["pwd"], "mfa", [["mfa"]], {"mfa": 1}])
def test_missing_method_or_malformed_amr_is_refused(amr: Any) -> None:
    error = refused(StepUp.of(amr=("mfa",)), {} if amr is None else {"amr": amr})

    assert "mfa" in error.message


def test_every_unmet_part_is_named() -> None:
    error = refused(StepUp.of(max_age=60, acr=("urn:a",), amr=("mfa",)), {"auth_time": NOW - 3600})

    assert "60 seconds" in error.message
    assert "urn:a" in error.message
    assert "mfa" in error.message


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"max_age": -1},
        {"max_age": 1.5},
        {"max_age": True},
        {"acr": ("",)},
        {"amr": ("two words",)},
    ],
)
def test_a_bad_requirement_is_refused_at_definition(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"max_age|acr|amr"):
        StepUp.of(**options)


def test_a_string_instead_of_a_sequence_is_refused() -> None:
    with pytest.raises(TypeError):
        StepUp.of(amr="mfa")
