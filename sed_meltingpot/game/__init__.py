"""The SED game: its settings (config.py), its rules once as pure functions over numpy
or jax.numpy (kernel.py), the numpy shell over the Lua substrate (sed_game.py:
SEDGame), the principals, the principal's observation and the substrate builder.

`from sed_meltingpot.game import SEDGame` keeps working: before issue 17 this name was
the module `game.py` (now `sed_game.py`), whose names are served here lazily, so that
importing `sed_meltingpot.game.config` does not import Melting Pot's substrate code.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    import importlib
    import pkgutil

    # `from sed_meltingpot.game import kernel` asks this function for a submodule
    # that is not imported yet: import it, not sed_game (which imports Melting Pot).
    if name in {m.name for m in pkgutil.iter_modules(__path__)}:
        return importlib.import_module(f"{__name__}.{name}")
    module = importlib.import_module(f"{__name__}.sed_game")
    try:
        value = getattr(module, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value  # served once: later lookups do not come back here
    return value
