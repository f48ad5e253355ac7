"""The sign-in state: ``next`` stays on the app, each sign-in has its own sealed
cookie bound to its ``state``, and a state is used once."""

from __future__ import annotations

import pytest

from fastapi_cognito_guard.sealing import Sealer
from fastapi_cognito_guard.sessions.transient import (
    MAX_IN_FLIGHT,
    SignInStates,
    pkce_challenge,
    safe_next,
)

SECRET = "x" * 32


@pytest.fixture
def states() -> SignInStates:
    return SignInStates(Sealer([SECRET], "signin-state"))


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "https://evil.example/",
        "//evil.example",
        "///evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "/\t/evil.example",
        "/\n/evil.example",
        " /x",
        "evil.example",
        "/" + "a" * 5000,
    ],
)
def test_next_that_is_not_a_path_on_this_app_becomes_root(value: str | None) -> None:
    assert safe_next(value) == "/"


@pytest.mark.parametrize("value", ["/", "/orders", "/orders?id=1&x=%2F%2F", "/a/b#frag"])
def test_next_path_on_this_app_is_kept(value: str) -> None:
    assert safe_next(value) == value


def test_pkce_challenge_is_rfc7636_s256() -> None:
    # RFC 7636 appendix B
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_a_state_is_consumed_once(states: SignInStates) -> None:
    signin, value = states.start("/next", "http://127.0.0.1/auth/callback")
    cookies = {states.cookie_name(signin.state, secure=False): value}
    consumed = states.consume(signin.state, cookies, secure=False)
    assert consumed == signin
    assert states.consume(signin.state, cookies, secure=False) is None


def test_a_cookie_moved_to_another_state_does_not_open(states: SignInStates) -> None:
    first, first_value = states.start("/", "http://127.0.0.1/cb")
    second, _ = states.start("/", "http://127.0.0.1/cb")
    cookies = {states.cookie_name(second.state, secure=False): first_value}
    assert states.consume(second.state, cookies, secure=False) is None
    assert first.state != second.state


def test_states_sealed_with_another_secret_do_not_open(states: SignInStates) -> None:
    other = SignInStates(Sealer(["y" * 32], "signin-state"))
    signin, value = other.start("/", "http://127.0.0.1/cb")
    cookies = {states.cookie_name(signin.state, secure=False): value}
    assert states.consume(signin.state, cookies, secure=False) is None


def test_starting_one_more_sign_in_drops_the_oldest(states: SignInStates) -> None:
    cookies = {}
    for made_at in range(MAX_IN_FLIGHT):
        signin, value = states.start("/", "http://127.0.0.1/cb")
        cookies[states.cookie_name(signin.state, secure=False)] = f"{1000 + made_at}.{value}"
    oldest = min(cookies, key=lambda name: cookies[name])
    assert states.to_drop(cookies, secure=False) == [oldest]
