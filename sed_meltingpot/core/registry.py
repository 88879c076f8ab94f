"""Name -> callable registries (voting rules, welfare functions).

The paper lets the voting set hold custom social choice rules and welfare
functions (Section 3, after Eq. 6), so `voting` and `welfare` each keep a
plain dict of named callables that users may extend. The checks and error
messages of adding and looking up live here once, so both registries refuse
duplicates and unknown names the same way.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import TypeVar

__all__ = ["lookup", "register"]

T = TypeVar("T", bound=Callable)


def register(registry: MutableMapping[str, T], kind: str, name: str, entry: T, *,
             overwrite: bool = False) -> None:
    """Add `entry` to `registry` under `name`; `kind` names the registry in errors.

    Re-using a name raises unless `overwrite=True`, so a typo cannot silently
    replace a built-in entry.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"{kind} name must be a non-empty string, got {name!r}")
    if not callable(entry):
        raise TypeError(f"{kind} {name!r} must be callable, got {entry!r}")
    if name in registry and not overwrite:
        raise ValueError(
            f"{kind} {name!r} is already registered; pass overwrite=True to replace it")
    registry[name] = entry


def lookup(registry: MutableMapping[str, T], kind: str, name: str, hint: str = "") -> T:
    """`registry[name]`; an unknown (or unhashable) name raises ValueError listing
    the registered names, followed by `hint` (other accepted forms)."""
    try:
        return registry[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(registry))
        raise ValueError(f"unknown {kind} {name!r}; known: {known}{hint}") from None
