"""``assert_route_map(app, "auth-routes.json")``: every change of protection is reviewed.

The app's route map (DESIGN §17) is compared with a committed file. A route added,
removed, or whose protection changed fails the test with a message naming each one
— an added open route and a lost guard first, since those are the changes that open
something. ``FCG_UPDATE_ROUTE_MAP=1`` writes the file instead (and passes), so the
diff of the file is what a reviewer reads.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["UPDATE_VARIABLE", "assert_route_map"]

UPDATE_VARIABLE = "FCG_UPDATE_ROUTE_MAP"


def assert_route_map(app: Any, path: str | os.PathLike[str]) -> None:
    """Raise ``AssertionError`` naming each route of ``app`` added, removed or whose
    protection changed against the map in ``path`` (relative to the working
    directory). With ``FCG_UPDATE_ROUTE_MAP=1`` in the environment, write ``path``."""
    from ..route_records import dumps, route_map_json

    current = route_map_json(app)
    target = Path(path)
    if os.environ.get(UPDATE_VARIABLE) == "1":
        target.write_text(dumps(current), encoding="utf-8")
        return
    if not target.exists():
        raise AssertionError(
            f"no route map at {target.resolve()}: run the test once with "
            f"{UPDATE_VARIABLE}=1 to write it, review it and commit it"
        )
    recorded = json.loads(target.read_text(encoding="utf-8"))
    problems = _differences(recorded, current)
    if problems:
        raise AssertionError(
            f"the route map of the app differs from {path} "
            f"(if intended, rerun with {UPDATE_VARIABLE}=1 and commit the file):\n"
            + "\n".join(f"- {line}" for line in problems)
        )


def _key(record: dict[str, Any]) -> str:
    verb = "WS" if record.get("kind") == "websocket" else ",".join(record.get("methods", ())) or "*"
    return f"{verb} {record.get('path')}"


def _differences(recorded: list[dict[str, Any]], current: list[dict[str, Any]]) -> list[str]:
    """One line per difference, the ones that open something first."""
    before = {_key(record): record for record in recorded}
    after = {_key(record): record for record in current}
    opening: list[str] = []
    others: list[str] = []
    for key, record in after.items():
        old = before.get(key)
        if old is None:
            status = record.get("status")
            if status == "open":
                opening.append(f"added open route: {key}")
            else:
                others.append(f"added route: {key} ({status})")
            continue
        changed = sorted(
            name for name in set(old) | set(record) if old.get(name) != record.get(name)
        )
        if not changed:
            continue
        detail = ", ".join(f"{name} {old.get(name)!r} -> {record.get(name)!r}" for name in changed)
        if _weaker(old, record):
            opening.append(f"lost a guard: {key}: {detail}")
        else:
            others.append(f"protection changed: {key}: {detail}")
    others += [f"removed route: {key}" for key in before if key not in after]
    return opening + others


def _weaker(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether a route now admits callers it refused: no longer guarded, or a
    demand (group, scope, step-up, active session, middleware coverage) dropped."""
    if old.get("status") == "guarded" and new.get("status") != "guarded":
        return True
    for name in ("groups", "scopes"):
        if set(old.get(name) or ()) - set(new.get(name) or ()):
            return True
    for name in ("groups_all", "scopes_all", "active_session", "step_up"):
        if old.get(name) and not new.get(name):
            return True
    if not old.get("group_or_scope") and new.get("group_or_scope"):
        return True
    return bool(set(new.get("pools") or ()) - set(old.get("pools") or ()))
