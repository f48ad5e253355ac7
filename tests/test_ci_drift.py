"""``.ci/drift.py``'s report of moved pins: which pins changed, appeared or went away,
names compared as pip compares them. (The resolution and the checks it runs need a
package index and minutes; they are run by hand, as the README's Development section says.)
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def load_drift() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ci_drift", ROOT / ".ci" / "drift.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


drift = load_drift()


def test_pins_are_read_from_name_equals_version_lines_only() -> None:
    text = "# header\nruff==0.17.6\n\nTyping_Extensions==4.16.0  # why\n"

    assert drift.read_pins(text) == {
        "ruff": ("ruff", "0.17.6"),
        "typing-extensions": ("Typing_Extensions", "4.16.0"),
    }


def test_a_moved_pin_is_shown_old_to_new() -> None:
    old = drift.read_pins("mypy==2.4.1\nredis==8.2.0\n")
    new = drift.read_pins("mypy==2.4.1\nredis==8.3.0\n")

    assert drift.moved(old, new) == ["  ~ redis 8.2.0 -> 8.3.0"]


def test_new_and_dropped_packages_are_named() -> None:
    old = drift.read_pins("six==1.17.0\n")
    new = drift.read_pins("librt==0.17.0\n")

    assert drift.moved(old, new) == [
        "  + librt 0.17.0 (new)",
        "  - six 1.17.0 (no longer installed)",
    ]


def test_names_that_differ_only_in_spelling_are_one_package() -> None:
    old = drift.read_pins("typing_extensions==4.16.0\n")
    new = drift.read_pins("typing-extensions==4.16.0\n")

    assert drift.moved(old, new) == []
