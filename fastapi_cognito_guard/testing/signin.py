"""Sign a test client in through the local hosted UI in one call: :func:`sign_in`.

A test client (Starlette's ``TestClient``, any ``httpx.Client`` over the app) cannot
follow the app's ``/auth/login`` redirect to the hosted UI: that page is served by
``LocalIssuer.serve()`` on a real loopback port. :func:`sign_in` walks the whole
authorization-code flow the way a browser does: the app's login route (which sets the
sign-in state cookie on the client), the issuer's sign-in form over real HTTP, then the
app's callback with the code, so the client ends up holding the app's session cookie.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import urlsplit

import httpx

if TYPE_CHECKING:
    from .issuer import LocalIssuer

__all__ = ["Answer", "TestHttpClient", "sign_in"]

_REDIRECTS = (302, 303, 307)


class Answer(Protocol):
    """What ``sign_in`` reads of a response (httpx's or httpx2's)."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def text(self) -> str: ...


AnswerT = TypeVar("AnswerT", bound=Answer, covariant=True)


class TestHttpClient(Protocol[AnswerT]):
    """A client of the app under test: Starlette's ``TestClient`` (httpx or httpx2
    based) or an ``httpx.Client`` over the app; it keeps cookies between calls."""

    def get(self, url: str, *, params: Any = ..., follow_redirects: Any = ...) -> AnswerT: ...


def sign_in(
    client: TestHttpClient[AnswerT],
    issuer: LocalIssuer,
    username: str = "alice",
    *,
    groups: Iterable[str] = (),
    email: str | None = None,
    next: str = "/",
    login_path: str = "/auth/login",
) -> AnswerT:
    """Sign ``client`` in to its app as ``username`` (in ``groups``) through ``issuer``'s
    local hosted UI, and return the app's answer to the callback (a redirect to
    ``next``). The app must serve ``auth.login_router()`` (at ``login_path``) with
    settings from ``issuer.settings(session_secret=...)``, and the issuer must be
    serving. Raises ``AssertionError`` naming the step that did not answer as a
    sign-in should (the response's status and body)."""
    if issuer.url is None:
        raise RuntimeError("the issuer is not serving; call sign_in inside issuer.serve()")
    login = client.get(login_path, params={"next": next}, follow_redirects=False)
    authorize = _location(login, f"GET {login_path}")
    if not authorize.startswith(issuer.url + "/"):
        raise AssertionError(
            f"GET {login_path} redirected to {authorize!r}, not to the issuer at {issuer.url}: "
            "build the app's settings with issuer.settings(...) while it serves"
        )
    form = {"username": username, "groups": " ".join(groups), "email": email or ""}
    query = urlsplit(authorize).query
    with httpx.Client() as hosted_ui:
        signed_in = hosted_ui.post(f"{issuer.url}/login?{query}", data=form)
    callback = urlsplit(_location(signed_in, "the hosted UI's sign-in form"))
    path = callback.path + (f"?{callback.query}" if callback.query else "")
    answer = client.get(path, follow_redirects=False)
    _location(answer, f"GET {callback.path}")
    return answer


def _location(response: Answer, step: str) -> str:
    """Where a redirect points; ``AssertionError`` naming ``step`` for anything else."""
    location: str | None = response.headers.get("location")
    if response.status_code not in _REDIRECTS or not location:
        raise AssertionError(
            f"sign-in: {step} answered {response.status_code}, not a redirect: "
            f"{response.text[:300]}"
        )
    return location
