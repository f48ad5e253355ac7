"""The session cookie: sealed (nothing readable), chunked when large, tamper-proof,
rotating keys, and an absolute lifetime. A bad cookie signs the browser out and
is cleared on that response, never a 500."""

from __future__ import annotations

import time

import pytest

from fastapi_cognito_guard.sessions.cookies import CHUNK_CHARS, ChunkedCookie, set_cookie
from fastapi_cognito_guard.sessions.session import Session
from fastapi_cognito_guard.testing import LocalIssuer, LocalUser
from tests.sessions_support import (
    JWT,
    OTHER_SECRET,
    SECRET,
    browser,
    make_app,
    open_session,
    seal_session,
    session_cookies,
    set_cookies,
    sign_in,
)


@pytest.fixture
def issuer(cognito_issuer_session: LocalIssuer) -> LocalIssuer:
    return cognito_issuer_session


def signed_in_session(issuer: LocalIssuer, **changes: int) -> Session:
    values = {
        "sid": "sid-1",
        "sub": "sub-alice",
        "id_token": issuer.id_token("alice", sub="sub-alice"),
        "access_token": issuer.access_token("alice", sub="sub-alice"),
        "refresh_token": None,
        "expires_at": int(time.time()) + 3600,
        "started_at": int(time.time()),
    }
    values.update(changes)
    return Session(**values)  # type: ignore[arg-type]


# -- the cookie store ------------------------------------------------------------------


def test_small_values_take_one_cookie_and_large_ones_are_chunked() -> None:
    cookie = ChunkedCookie("s")
    assert cookie.write("v" * CHUNK_CHARS, secure=False, max_age=60) == [
        set_cookie("s", "v" * CHUNK_CHARS, secure=False, max_age=60)
    ]
    headers = cookie.write("v" * (CHUNK_CHARS * 2 + 1), secure=False, max_age=60)
    assert [h.split(b"=")[0] for h in headers] == [b"s.0", b"s.1", b"s.2"]
    assert all(len(h) < 4096 for h in headers)


def test_chunks_are_joined_in_order_when_read() -> None:
    cookie = ChunkedCookie("s")
    assert cookie.read({"s.1": "b", "s.0": "a", "s.2": "c"}, secure=False) == "abc"
    assert cookie.read({"__Host-s": "x"}, secure=True) == "x"
    assert cookie.read({"__Host-s": "x"}, secure=False) is None


def test_parts_no_longer_used_are_cleared() -> None:
    headers = ChunkedCookie("s").write("small", secure=False, max_age=60, present=["s.0", "s.1"])
    assert b"s.0=; Max-Age=0" in headers[1]
    assert b"s.1=; Max-Age=0" in headers[2]


def test_cookie_attributes_are_httponly_lax_and_path_root() -> None:
    assert set_cookie("s", "v", secure=False, max_age=5) == (
        b"s=v; Max-Age=5; Path=/; HttpOnly; SameSite=Lax"
    )
    assert set_cookie("__Host-s", "v", secure=True, max_age=5).endswith(b"; Secure")


# -- over HTTP ---------------------------------------------------------------------------


async def test_session_cookie_holds_no_readable_token(issuer: LocalIssuer) -> None:
    async with browser(make_app(issuer)) as client:
        await sign_in(client, issuer)
        values = "".join(session_cookies(client).values())
    assert values
    assert not JWT.search(values)
    assert "alice" not in values


async def test_tokens_too_large_for_one_cookie_are_chunked_and_still_sign_in(
    issuer: LocalIssuer,
) -> None:
    issuer.login_as = LocalUser("alice", groups=[f"group-{n:04d}" for n in range(300)])
    async with browser(make_app(issuer)) as client:
        callback = await sign_in(client, issuer, username=issuer.login_as)  # type: ignore[arg-type]
        names = sorted(session_cookies(client))
        assert callback.status_code == 302
        assert len(names) >= 2
        assert names[0] == "fcg_session.0"
        assert (await client.get("/me")).json() == {"username": "alice"}


async def test_tampered_cookie_signs_out_and_is_cleared(issuer: LocalIssuer) -> None:
    async with browser(make_app(issuer)) as client:
        await sign_in(client, issuer)
        value = client.cookies["fcg_session"]
        flipped = value[:40] + ("A" if value[40] != "A" else "B") + value[41:]
        client.cookies.set("fcg_session", flipped, domain="127.0.0.1")
        response = await client.get("/me")
        assert response.status_code == 401
        assert any(c.startswith("fcg_session=;") for c in set_cookies(response))


@pytest.mark.parametrize("value", ["", "x", "%%%", "a" * 5000, "AQ" + "A" * 100])
async def test_garbage_cookies_sign_out_without_a_500(issuer: LocalIssuer, value: str) -> None:
    async with browser(make_app(issuer)) as client:
        client.cookies.set("fcg_session", value, domain="127.0.0.1")
        response = await client.get("/optional")
    assert response.status_code == 200
    assert response.json() == {"username": None}


async def test_cookie_sealed_with_another_secret_signs_out(issuer: LocalIssuer) -> None:
    async with browser(make_app(issuer)) as client:
        client.cookies.set(
            "fcg_session", seal_session(signed_in_session(issuer), OTHER_SECRET), domain="127.0.0.1"
        )
        response = await client.get("/me")
    assert response.status_code == 401
    assert any(c.startswith("fcg_session=;") for c in set_cookies(response))


async def test_rotated_secret_reads_old_cookies_and_seals_new_ones_with_the_new_key(
    issuer: LocalIssuer,
) -> None:
    old_cookie = seal_session(signed_in_session(issuer), SECRET)
    rotated = make_app(issuer, session_secret=[OTHER_SECRET, SECRET])
    async with browser(rotated) as client:
        client.cookies.set("fcg_session", old_cookie, domain="127.0.0.1")
        assert (await client.get("/me")).json() == {"username": "alice"}
        await sign_in(client, issuer)
        new_cookie = client.cookies["fcg_session"]
    assert open_session(new_cookie, OTHER_SECRET) is not None
    assert open_session(new_cookie, SECRET) is None


async def test_session_past_its_absolute_lifetime_signs_out(issuer: LocalIssuer) -> None:
    long_ago = int(time.time()) - 7200
    async with browser(make_app(issuer, session_max_age_seconds=3600)) as client:
        client.cookies.set(
            "fcg_session", seal_session(signed_in_session(issuer, started_at=long_ago))
        )
        response = await client.get("/me")
    assert response.status_code == 401
    assert any(c.startswith("fcg_session=;") for c in set_cookies(response))


async def test_session_cookie_max_age_is_what_remains_of_the_lifetime(issuer: LocalIssuer) -> None:
    async with browser(make_app(issuer, session_max_age_seconds=3600)) as client:
        callback = await sign_in(client, issuer)
    cookie = next(c for c in set_cookies(callback) if c.startswith("fcg_session="))
    max_age = int(cookie.split("Max-Age=")[1].split(";")[0])
    assert 3590 <= max_age <= 3600


async def test_expired_access_token_without_refresh_token_signs_out(issuer: LocalIssuer) -> None:
    expired = signed_in_session(issuer, expires_at=int(time.time()) - 10)
    async with browser(make_app(issuer)) as client:
        client.cookies.set("fcg_session", seal_session(expired), domain="127.0.0.1")
        response = await client.get("/me")
    assert response.status_code == 401
    assert any(c.startswith("fcg_session=;") for c in set_cookies(response))


async def test_bearer_header_wins_over_the_session_cookie(issuer: LocalIssuer) -> None:
    async with browser(make_app(issuer)) as client:
        await sign_in(client, issuer)
        token = issuer.access_token("bob")
        response = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert response.json() == {"username": "bob"}
        garbage = await client.get("/me", headers={"Authorization": "Bearer nope"})
        assert garbage.status_code == 401
