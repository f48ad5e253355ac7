"""The example app's home page: who you are, and every route with whether you would pass.

The page reads the app's route map (``fastapi_cognito_guard.route_map``) and asks,
for the signed-in user (or a visitor without a token), whether each route's guards
would admit them. Links honour the app's ``root_path``, so the page works behind a
proxy that serves the app under a prefix. Plain HTML and CSS, nothing external.
"""

from __future__ import annotations

from html import escape

from fastapi import Request
from starlette.routing import NoMatchFound

from fastapi_cognito_guard import CognitoUser
from fastapi_cognito_guard.route_records import RouteRecord, admits, requirement, route_map

__all__ = ["home_page"]

_STYLE = """
:root { --ink:#1d2330; --muted:#5d6677; --line:#e3e7ee; --bg:#f5f7fb; --card:#fff;
  --ok:#13795b; --ok-bg:#e3f6ee; --no:#b42318; --no-bg:#fdecea; --open:#175cd3;
  --open-bg:#e8f0fe; --maybe:#8a5a00; --maybe-bg:#fff4d6; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
  color:var(--ink); background:var(--bg); }
header { display:flex; align-items:center; justify-content:space-between; gap:1rem;
  padding:.9rem 2rem; background:#101828; color:#fff; }
.brand { font-weight:650; letter-spacing:.01em; }
.brand span { color:#98a2b3; font-weight:400; margin-left:.4rem; }
.who { display:flex; align-items:center; gap:.8rem; }
.who form { margin:0; }
button, .button { font:inherit; font-weight:600; border:0; border-radius:8px;
  padding:.45rem 1rem; cursor:pointer; background:#fff; color:#101828; text-decoration:none; }
.button.primary { background:#2e90fa; color:#fff; }
main { max-width:960px; margin:2rem auto; padding:0 1.2rem; }
.card { background:var(--card); border:1px solid var(--line); border-radius:14px;
  padding:1.3rem 1.5rem; margin-bottom:1.4rem; box-shadow:0 1px 2px rgba(16,24,40,.04); }
h1 { font-size:1.35rem; margin:0 0 .3rem; }
h2 { font-size:1.05rem; margin:0 0 .8rem; }
.lead { color:var(--muted); margin:0; }
.facts { display:grid; grid-template-columns:max-content 1fr; gap:.35rem 1.2rem; margin:1rem 0 0; }
.facts dt { color:var(--muted); }
.facts dd { margin:0; }
.chip { display:inline-block; padding:.05rem .55rem; margin:0 .3rem .2rem 0; border-radius:999px;
  background:#eef2f6; font-size:.85rem; }
table { width:100%; border-collapse:collapse; }
th { text-align:left; font-size:.78rem; text-transform:uppercase; letter-spacing:.05em;
  color:var(--muted); font-weight:600; padding:.4rem .6rem; border-bottom:1px solid var(--line); }
td { padding:.55rem .6rem; border-bottom:1px solid var(--line); vertical-align:top; }
tr:last-child td { border-bottom:0; }
.method { display:inline-block; min-width:3.6rem; text-align:center; font:600 .75rem/1.6
  ui-monospace,SFMono-Regular,Menlo,monospace; border-radius:6px; background:#eef2f6; }
.path { font-family:ui-monospace,SFMono-Regular,Menlo,monospace; font-size:.9rem; }
.path a { color:inherit; }
.needs { color:var(--muted); font-size:.9rem; }
.verdict { display:inline-block; white-space:nowrap; font-weight:600; font-size:.85rem;
  padding:.1rem .6rem; border-radius:999px; }
.pass { color:var(--ok); background:var(--ok-bg); }
.fail { color:var(--no); background:var(--no-bg); }
.open { color:var(--open); background:var(--open-bg); }
.maybe { color:var(--maybe); background:var(--maybe-bg); }
footer { color:var(--muted); font-size:.85rem; text-align:center; margin:2rem 0; }
"""


def _url(request: Request, name: str, fallback: str) -> str:
    """The path of a named route under this app's root path (a proxy prefix)."""
    try:
        return request.url_for(name).path
    except NoMatchFound:
        root: str = request.scope.get("root_path", "")
        return root + fallback


def _verdict(record: RouteRecord, user: CognitoUser | None) -> tuple[str, str]:
    """The CSS class and words for whether ``user`` would pass ``record``."""
    if record.status == "open":
        return "open", "Open to all"
    answer = admits(record, user)
    if answer is None:
        return "maybe", "Decided by its own code" if record.status == "unknown" else "It depends"
    if answer:
        return "pass", "✓ You would pass"
    return "fail", "Sign in first" if user is None else "✗ Refused"


def _row(record: RouteRecord, user: CognitoUser | None, root: str) -> str:
    methods = (
        "WS" if record.kind == "websocket" else " ".join(m for m in record.methods if m != "HEAD")
    )
    path = escape(record.path)
    if "GET" in record.methods and "{" not in record.path:
        path = f"<a href='{escape(root + record.path)}'>{path}</a>"
    css, words = _verdict(record, user)
    needs = requirement(record) if record.status != "open" else "-"
    return (
        f"<tr data-path='{escape(record.path)}'>"
        f"<td><span class=method>{escape(methods)}</span></td>"
        f"<td class=path>{path}</td><td class=needs>{escape(needs)}</td>"
        f"<td><span class='verdict {css}'>{escape(words)}</span></td></tr>"
    )


def _chips(values: tuple[str, ...]) -> str:
    if not values:
        return "<span class=needs>none</span>"
    return "".join(f"<span class=chip>{escape(value)}</span>" for value in values)


def home_page(request: Request, user: CognitoUser | None, *, sign_in: bool) -> str:
    """The HTML of ``GET /``; ``sign_in``: whether browser sign-in is configured."""
    root = request.scope.get("root_path", "")
    if user is not None:
        name = escape(user.username or user.sub)
        logout = _url(request, "cognito_logout_post", "/auth/logout")
        who = (
            f"<span>Signed in as <strong id=user>{name}</strong></span>"
            f"<form method=post action='{escape(logout)}'><button type=submit>Sign out</button>"
            "</form>"
            f"<form method=post action='{escape(logout)}?everywhere=true'>"
            "<button type=submit>Log out on every device</button></form>"
        )
        intro = (
            f"<h1>Hello, {name}</h1><p class=lead>This is what your token lets you reach.</p>"
            f"<dl class=facts><dt>Groups</dt><dd>{_chips(user.groups)}</dd>"
            f"<dt>Scopes</dt><dd>{_chips(user.scopes)}</dd>"
            f"<dt>User pool</dt><dd>{escape(user.user_pool_id)}</dd>"
            f"<dt>Token</dt><dd>{escape(user.token_use)} token of client "
            f"{escape(user.client_id)}</dd></dl>"
        )
    elif sign_in:
        login = _url(request, "cognito_login", "/auth/login")
        who = f"<a class='button primary' href='{escape(login)}?next={escape(root)}/'>Sign in</a>"
        intro = (
            "<h1>You are signed out.</h1><p class=lead>Sign in to see which routes "
            "your groups and scopes open.</p>"
        )
    else:
        who = ""
        intro = (
            "<h1>Browser sign-in is off.</h1><p class=lead>Set COGNITO_DOMAIN and "
            "COGNITO_SESSION_SECRET to sign in here; bearer tokens work meanwhile.</p>"
        )
    records = [r for r in _route_map(request) if not r.path.startswith("/dev/")]
    rows = "".join(_row(record, user, root) for record in records)
    return (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>fastapi-cognito-guard example</title><style>{_STYLE}</style>"
        "<header><div class=brand>fastapi-cognito-guard<span>example app</span></div>"
        f"<div class=who>{who}</div></header><main>"
        f"<section class=card>{intro}</section>"
        "<section class=card><h2>Every route, and whether you would pass</h2>"
        "<table><thead><tr><th>Method</th><th>Route</th><th>Needs</th><th>You</th></tr>"
        f"</thead><tbody>{rows}</tbody></table></section></main>"
        "<footer>From <code>route_map(app)</code>: what protects each route, read from "
        "the app itself.</footer></html>"
    )


def _route_map(request: Request) -> list[RouteRecord]:
    """The app's route map, built once (routes do not change after start-up)."""
    cached: list[RouteRecord] | None = getattr(request.app.state, "route_map", None)
    if cached is None:
        cached = route_map(request.app)
        request.app.state.route_map = cached
    return cached
