"""What protects each route of an app: ``route_map(app)`` (DESIGN §17).

Walks the app statically — its routes, included routers, mounted apps and their
middleware — and returns one :class:`RouteRecord` per route. A route is ``guarded``
when a library dependency that requires a user (each says so in its
:class:`~.guard_spec.GuardSpec`) or a ``CognitoAuthMiddleware`` covers it, ``open``
when nothing the library or its user wrote stands in the way, and ``unknown`` when
code the library cannot see decides (a user's own dependency, a plain Starlette
route, a mounted ASGI app): never a guess either way.

Where the auth of a module-level dependency comes from is found as at run time:
the app handling the request, when it registered a ``CognitoAuth`` (``init_app``, or
for the app itself its ``lifespan``, counted before it ran: a mounted app's lifespan
never runs), else the ``COGNITO_*`` environment.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from dataclasses import fields as dataclass_fields
from typing import Any

from fastapi import routing as fastapi_routing
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIWebSocketRoute
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Host, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from .claims import CognitoUser
from .exclusions import HEALTH_PATH, PathExclusions, docs_paths
from .guard_spec import GuardSpec, is_auth, is_middleware, spec_of
from .settings import CognitoSettings

__all__ = [
    "RouteRecord",
    "admits",
    "dumps",
    "format_table",
    "registered_auth",
    "requirement",
    "route_map",
    "route_map_json",
]

OPEN, GUARDED, UNKNOWN = "open", "guarded", "unknown"


@dataclass(frozen=True)
class RouteRecord:
    """What protects one route. ``path`` is the full path, mount prefixes included;
    ``auth_source``: ``registered`` (on the app mounted at ``auth_app``),
    ``instance`` (a ``CognitoAuth``'s own dependency), ``middleware``,
    ``environment`` (module-level dependencies with no registration) or None;
    ``custom``: the user's own dependencies the route runs; ``mount``: where the app
    handling it is mounted (``/``: the app itself); ``auths``: the ``CognitoAuth``
    objects a token must pass (not part of the map's file)."""

    methods: tuple[str, ...]
    path: str
    kind: str
    status: str
    groups: tuple[str, ...] = ()
    groups_all: bool = False
    scopes: tuple[str, ...] = ()
    scopes_all: bool = True
    group_or_scope: bool = False
    pools: tuple[str, ...] = ()
    clients: tuple[str, ...] = ()
    token_use: tuple[str, ...] = ()
    auth_source: str | None = None
    auth_app: str | None = None
    sessions: bool = False
    step_up: str | None = None
    active_session: bool = False
    login_required: bool = False
    credentials: bool = False
    excluded_by: str | None = None
    custom: tuple[str, ...] = ()
    mount: str = "/"
    name: str | None = field(default=None, compare=False)
    auths: tuple[Any, ...] = field(default=(), compare=False, repr=False)

    @property
    def key(self) -> str:
        """``METHODS path`` (``WS path`` for a WebSocket): how messages name the route."""
        verb = "WS" if self.kind == "websocket" else ",".join(self.methods) or "*"
        return f"{verb} {self.path}"

    def as_json(self) -> dict[str, Any]:
        """The record as JSON-ready data (the route's name and auths left out)."""
        data = {f.name: getattr(self, f.name) for f in dataclass_fields(self) if f.compare}
        return {
            key: list(value) if isinstance(value, tuple) else value for key, value in data.items()
        }


def route_map(app: Any) -> list[RouteRecord]:
    """One record per route of ``app`` (a FastAPI or Starlette app, or one wrapped in
    ``CognitoAuthMiddleware``), in the order the app matches them."""
    return list(_walk(app, "", _Context(auth=None, auth_app=None, middleware=(), mount="/")))


def route_map_json(app: Any) -> list[dict[str, Any]]:
    """``route_map(app)`` as JSON-ready data, sorted by path then methods."""
    records = sorted(route_map(app), key=lambda r: (r.path, r.kind, r.methods))
    return [record.as_json() for record in records]


def registered_auth(app: Any, *, by_lifespan: bool = True) -> Any:
    """The ``CognitoAuth`` registered on ``app`` (``init_app`` ran, or — with
    ``by_lifespan`` — its lifespan is ``auth.lifespan``, even before it ran), else None."""
    auth = getattr(getattr(app, "state", None), "cognito_auth", None)
    if is_auth(auth) or not by_lifespan:
        return auth if is_auth(auth) else None
    lifespan = getattr(getattr(app, "router", None), "lifespan_context", None)
    return _lifespan_owner(lifespan, _LIFESPAN_DEPTH)


_LIFESPAN_DEPTH = 6
"""How deep lifespans nest: FastAPI merges an included router's lifespan with the
app's, one closure per ``include_router``."""


def _lifespan_owner(lifespan: Any, depth: int) -> Any:
    """The ``CognitoAuth`` whose ``lifespan`` this is, or that a merged lifespan
    (FastAPI's ``include_router``) runs; None when there is none."""
    owner = getattr(lifespan, "__self__", None)
    if is_auth(owner):
        return owner
    if depth == 0 or not callable(lifespan):
        return None
    inner = [getattr(lifespan, "__wrapped__", None)]
    inner += [cell.cell_contents for cell in getattr(lifespan, "__closure__", None) or ()]
    for candidate in inner:
        if candidate is not None and candidate is not lifespan:
            found = _lifespan_owner(candidate, depth - 1)
            if found is not None:
                return found
    return None


@dataclass(frozen=True)
class _Guarding:
    """A ``CognitoAuthMiddleware`` over part of the tree: its auth, its exclusions and
    the prefix its paths are matched under."""

    auth: Any
    exclude: Any
    prefix: str
    docs: tuple[str | None, ...]

    def excluded_by(self, full_path: str) -> str | None:
        """The ``exclude_paths`` entry that opens ``full_path``, if any."""
        path = full_path[len(self.prefix) :] or "/" if full_path.startswith(self.prefix) else None
        if path is None:
            return None
        if self.exclude is None:
            return path if path == HEALTH_PATH or path in self.docs else None
        if path in self.exclude.exact:
            return path
        return next((f"{p}*" for p in self.exclude.prefixes if path.startswith(p)), None)


@dataclass(frozen=True)
class _Context:
    auth: Any
    auth_app: str | None
    middleware: tuple[_Guarding, ...]
    mount: str


def _walk(app: Any, prefix: str, context: _Context) -> Iterator[RouteRecord]:
    while not hasattr(app, "routes") and hasattr(app, "app"):  # ASGI middleware around it
        if is_middleware(type(app)):
            guarding = _Guarding(app.auth, app.exclude_paths, prefix, docs_paths(app.app))
            context = _with_middleware(context, guarding)
        app = app.app
    if isinstance(app, Starlette):  # it puts itself into the scope: its registration counts
        # A mounted app's lifespan never runs: only init_app registers it.
        auth = registered_auth(app, by_lifespan=not prefix)
        mount = prefix or "/"
        context = _Context(auth, mount if auth else None, context.middleware, mount)
    for entry in getattr(app, "user_middleware", ()):
        if is_middleware(getattr(entry, "cls", None)):
            options = entry.kwargs
            given = options.get("exclude_paths")
            exclude = None if given is None else PathExclusions(given)
            guarding = _Guarding(options["auth"], exclude, prefix, docs_paths(app))
            context = _with_middleware(context, guarding)
    for route, effective in _routes(app):
        yield from _records(route, effective, app, prefix, context)


def _with_middleware(context: _Context, guarding: _Guarding) -> _Context:
    return replace(context, middleware=(*context.middleware, guarding))


def _routes(app: Any) -> Iterator[tuple[BaseRoute, Any]]:
    """Each route of ``app`` with its effective form (full path, router dependencies):
    FastAPI 0.12x+ includes routers lazily, older versions copy their routes."""
    routes = getattr(app, "routes", ())
    contexts = getattr(fastapi_routing, "iter_route_contexts", None)
    if contexts is None:
        yield from ((route, route) for route in routes)
        return
    for context in contexts(routes):
        yield context.original_route, context


def _records(
    route: BaseRoute, effective: Any, app: Any, prefix: str, context: _Context
) -> Iterator[RouteRecord]:
    if isinstance(route, (APIRoute, APIWebSocketRoute)):
        yield _record(route, effective, prefix + effective.path, context)
    elif isinstance(route, (Mount, Host)):
        mount_prefix = prefix + (route.path if isinstance(route, Mount) else "")
        inner = route.app
        if hasattr(inner, "routes") or hasattr(inner, "app"):
            yield from _walk(inner, mount_prefix, context)
        else:
            status = OPEN if isinstance(inner, StaticFiles) else UNKNOWN
            yield _plain(("GET", "HEAD"), mount_prefix + "/{path}", "http", status, context)
    elif isinstance(route, Route):
        status = OPEN if route.path in docs_paths(app) else UNKNOWN
        methods = tuple(sorted(route.methods or ()))
        yield _plain(methods, prefix + route.path, "http", status, context)
    elif isinstance(route, WebSocketRoute):
        yield _plain((), prefix + route.path, "websocket", UNKNOWN, context)


def _plain(
    methods: tuple[str, ...], path: str, kind: str, status: str, context: _Context
) -> RouteRecord:
    """A route without dependencies: open or unknown, unless a middleware guards it."""
    guarding, excluded_by = _covering(context, path)
    if guarding is None:
        return RouteRecord(
            methods, path, kind, status, excluded_by=excluded_by, mount=context.mount
        )
    return RouteRecord(
        methods,
        path,
        kind,
        GUARDED,
        auth_source="middleware",
        mount=context.mount,
        auths=(guarding.auth,),
        **_auth_fields([guarding.auth]),
    )


def _covering(context: _Context, path: str) -> tuple[_Guarding | None, str | None]:
    """The first middleware that guards ``path``, and the exclusion that opened it if
    every middleware over it excludes it."""
    excluded_by = None
    for guarding in context.middleware:
        entry = guarding.excluded_by(path)
        if entry is None:
            return guarding, None
        excluded_by = entry
    return None, excluded_by


def _record(
    route: APIRoute | APIWebSocketRoute, effective: Any, path: str, context: _Context
) -> RouteRecord:
    specs: list[tuple[GuardSpec, Sequence[str]]] = []
    custom: list[str] = []
    _gather(effective.dependant, specs, custom)
    endpoint = getattr(route, "endpoint", None)
    if hasattr(endpoint, "__wrapped__"):  # a decorator (Starlette's @requires, ...) may refuse
        custom.append(f"decorated {getattr(endpoint, '__name__', 'endpoint')}")
    requiring = [(spec, declared) for spec, declared in specs if spec.requires_user]
    guarding, excluded_by = _covering(context, path)
    methods = tuple(sorted(effective.methods or ())) if isinstance(route, APIRoute) else ()
    kind = "http" if isinstance(route, APIRoute) else "websocket"
    if not requiring and guarding is None:
        status = UNKNOWN if custom else OPEN
        source = _source(specs, context) if specs else None
        return RouteRecord(
            methods,
            path,
            kind,
            status,
            auth_source=source,
            auth_app=context.auth_app if source == "registered" else None,
            excluded_by=excluded_by,
            credentials=any(s.credentials for s, _ in specs),
            custom=tuple(custom),
            mount=context.mount,
            auths=tuple(dict.fromkeys(a for a in (_auth_of(s, context) for s, _ in specs) if a)),
            name=route.name,
        )
    auths = [_auth_of(spec, context) for spec, _ in requiring]
    if guarding is not None:
        auths.append(guarding.auth)
    source = _source(requiring, context) if requiring else "middleware"
    groups = _union(spec.groups for spec, _ in requiring)
    scopes = _union([*(spec.scopes for spec, _ in requiring), *(d for _, d in requiring)])
    step_up = [spec.step_up for spec, _ in requiring if spec.step_up]
    deciding = tuple(dict.fromkeys(a for a in auths if a is not None))
    fields = _auth_fields(list(deciding))
    demanded_pools = _union(spec.pools for spec, _ in requiring)
    if demanded_pools:
        known = fields["pools"]
        fields["pools"] = (
            tuple(p for p in known if p in demanded_pools) if known else demanded_pools
        )
    return RouteRecord(
        methods,
        path,
        kind,
        GUARDED,
        groups=groups,
        groups_all=any(s.groups_all for s, _ in requiring) or _count(requiring, "groups") > 1,
        scopes=scopes,
        scopes_all=all(s.scopes_all for s, _ in requiring if s.scopes and not s.group_or_scope),
        group_or_scope=any(s.group_or_scope for s, _ in requiring),
        auth_source=source,
        auth_app=context.auth_app if source == "registered" else None,
        step_up="; ".join(step_up) or None,
        active_session=any(s.active_session for s, _ in requiring),
        login_required=any(s.login_required for s, _ in requiring),
        credentials=any(s.credentials for s, _ in specs),
        custom=tuple(custom),
        name=route.name,
        mount=context.mount,
        auths=deciding,
        **fields,
    )


def _gather(
    dependant: Dependant,
    specs: list[tuple[GuardSpec, Sequence[str]]],
    custom: list[str],
    *,
    nested: bool = False,
) -> None:
    """Every library dependency below ``dependant`` with the scopes declared around it
    (``Security(dep, scopes=...)``, all required), and the user's own dependencies
    at the top level (what they depend on is theirs too)."""
    for sub in dependant.dependencies:
        spec = spec_of(sub.call)
        if spec is not None:
            declared = [*(sub.parent_oauth_scopes or ()), *(sub.own_oauth_scopes or ())]
            specs.append((spec, declared if spec.requires_user else ()))
        elif not nested:
            custom.append(_name(sub))
        # Below a described dependency everything is the library's; below a user's
        # own, only the library's guards are of interest (the user's is named once).
        _gather(sub, specs, custom, nested=True)


def _name(dependant: Dependant) -> str:
    call = dependant.call
    return getattr(call, "__qualname__", None) or type(call).__qualname__


def _count(requiring: Iterable[tuple[GuardSpec, Sequence[str]]], attribute: str) -> int:
    return sum(1 for spec, _ in requiring if getattr(spec, attribute))


def _union(groups: Iterable[Iterable[str]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name for names in groups for name in names))


def _auth_of(spec: GuardSpec, context: _Context) -> Any:
    return spec.auth if spec.auth is not None else context.auth


def _source(requiring: Sequence[tuple[GuardSpec, Sequence[str]]], context: _Context) -> str:
    if any(spec.auth is None for spec, _ in requiring):
        return "registered" if context.auth is not None else "environment"
    return "instance"


def _auth_fields(auths: Sequence[Any]) -> dict[str, Any]:
    """``pools``, ``clients``, ``token_use`` and ``sessions`` of the auths a token must
    pass (every one of them: pools and clients they share); the ``COGNITO_*``
    environment's when ``auths`` is empty (module-level dependencies, no registration)."""
    settings_lists = [list(auth.settings) for auth in auths] or [_environment_settings()]
    pools: tuple[str, ...] | None = None
    clients: tuple[str, ...] | None = None
    token_uses: set[str] = set()
    for settings in settings_lists:
        these_pools = tuple(s.user_pool_id for s in settings)
        these_clients = _union(s.client_ids for s in settings)
        pools = these_pools if pools is None else tuple(p for p in pools if p in these_pools)
        clients = (
            these_clients if clients is None else tuple(c for c in clients if c in these_clients)
        )
        token_uses.update(s.token_use for s in settings)
    return {
        "pools": pools or (),
        "clients": clients or (),
        "token_use": tuple(sorted(token_uses)),
        "sessions": any(getattr(auth, "sessions", None) is not None for auth in auths),
    }


def _environment_settings() -> list[CognitoSettings]:
    """The settings the ``COGNITO_*`` environment describes, or none when it is unusable."""
    try:
        return [CognitoSettings()]
    except ValidationError:
        return []


def dumps(records: Sequence[dict[str, Any]]) -> str:
    """The route map file's text: stable, one key per line, ending in a newline."""
    return json.dumps(records, indent=2, sort_keys=True) + "\n"


def requirement(record: RouteRecord) -> str:
    """What a caller needs for the route, in words (``-`` when nothing)."""
    parts: list[str] = []
    if record.group_or_scope:
        parts.append(f"group or scope: {', '.join((*record.groups, *record.scopes))}")
    else:
        if record.groups:
            joiner = " and " if record.groups_all else " or "
            parts.append(f"group {joiner.join(record.groups)}")
        if record.scopes:
            joiner = " and " if record.scopes_all else " or "
            parts.append(f"scope {joiner.join(record.scopes)}")
    if record.step_up:
        parts.append(f"step-up {record.step_up}")
    if record.active_session:
        parts.append("active session")
    if record.login_required:
        parts.append("login (redirects)")
    if record.credentials:
        parts.append("AWS credentials")
    if record.excluded_by:
        parts.append(f"excluded by {record.excluded_by}")
    if record.custom:
        parts.append(f"own code: {', '.join(record.custom)}")
    demands = [part for part in parts if not part.startswith(("own code", "excluded"))]
    if record.status == GUARDED and not demands:
        parts.insert(0, "signed in")
    return "; ".join(parts) or "-"


def format_table(records: Sequence[RouteRecord]) -> str:
    """The route map as a text table: route, status, auth and what a caller needs."""
    rows = [("ROUTE", "STATUS", "AUTH", "POOLS", "REQUIRES")]
    for record in records:
        source = record.auth_source or "-"
        if record.auth_app and record.auth_app != "/":
            source += f" ({record.auth_app})"
        rows.append(
            (record.key, record.status, source, ",".join(record.pools) or "-", requirement(record))
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join([*(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)), row[4]])
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def admits(record: RouteRecord, user: CognitoUser | None) -> bool | None:
    """Whether ``user`` (None: a caller without a token) would pass the route's
    guards: True or False, or None when code the library cannot see decides (an
    ``unknown`` route) or the answer depends on more than the user (step-up: when
    they signed in; the active-session check asks Cognito)."""
    if record.status == OPEN:
        return True
    if record.status == UNKNOWN:
        return None
    if user is None:
        return False
    if (record.pools and user.user_pool_id not in record.pools) or (
        record.clients and user.client_id not in record.clients
    ):
        return False
    if (
        record.token_use
        and "any" not in record.token_use
        and user.token_use not in record.token_use
    ):
        return False
    if not _holds(record, set(user.groups), set(user.scopes)):
        return False
    return None if record.step_up else True


def _holds(record: RouteRecord, groups: set[str], scopes: set[str]) -> bool:
    if record.group_or_scope:
        return not (groups.isdisjoint(record.groups) and scopes.isdisjoint(record.scopes))
    for wanted, held, every in (
        (record.groups, groups, record.groups_all),
        (record.scopes, scopes, record.scopes_all),
    ):
        if wanted and not (held.issuperset(wanted) if every else not held.isdisjoint(wanted)):
            return False
    return True
