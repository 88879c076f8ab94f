"""The optional parts of the install and the one-line error a missing one raises.

The base install (numpy, absl, scipy, matplotlib, jax, flax, optax) runs the SED layer,
the JAX twin, its trainer and the experiment with the jax engine. Everything else is an
extra of setup.py (`EXTRAS`): an import of it goes through `extra_import`, so that a
machine without it gets one line that names the extra to install, e.g.

    sed_meltingpot.game.substrate needs the 'lua' extra (the Lua substrate: dmlab2d,
    dm-meltingpot): pip install 'sed-meltingpot[lua]' (No module named 'meltingpot')

(on one line) instead of a bare ModuleNotFoundError deep in a stack. The error is a
`MissingExtra`, a ModuleNotFoundError, so code that catches ImportError still does.
Only the import statements inside the block are checked, so lazy imports stay lazy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

# extra -> what it holds (setup.py's extras_require has the same keys).
EXTRAS = {
    "lua": "the Lua substrate: dmlab2d, dm-meltingpot",
    "rllib": "RLlib training: ray[rllib], torch",
    "jaxmarl": "the JaxMARL adapter: jaxmarl",
}


class MissingExtra(ModuleNotFoundError):
    """An optional part is not installed; the message names the extra to install."""


def missing_extra_message(extra: str, needed_by: str, error: BaseException) -> str:
    """The one-line message: who needs which extra, the pip command, Python's reason."""
    return (f"{needed_by} needs the '{extra}' extra ({EXTRAS[extra]}): "
            f"pip install 'sed-meltingpot[{extra}]' ({error})")


@contextlib.contextmanager
def extra_import(extra: str, needed_by: str) -> Iterator[None]:
    """Imports in this block belong to `extra`; a missing module raises MissingExtra.

    `needed_by` names what needs them (a module's `__name__`, or a command). A
    MissingExtra raised further down (another module's block) passes unchanged.
    """
    if extra not in EXTRAS:
        raise ValueError(f"extra={extra!r} must be one of {sorted(EXTRAS)}")
    try:
        yield
    except MissingExtra:
        raise
    except ModuleNotFoundError as err:
        raise MissingExtra(missing_extra_message(extra, needed_by, err),
                           name=err.name) from None
