"""The principal's algorithms that sit above a trainer (issue 30, item 5).

The paper's principal is a leader (Section 4, Eq. 7: it maximises W(phi, pi(phi)) over
the tax phi, where pi(phi) is what the players learn under phi). A designer here picks
phi, waits for a trainer to report the welfare W that the players reached under it, and
picks again: one interface (`protocol.Designer`: `propose` / `observe` / `best`) shared
by the bandits (`bandits`), successive halving (`halving`) and any later designer, so a
new algorithm is one file. The Stackelberg search (`search.search`) trains players from scratch
under every candidate schedule with the jax trainer (`training/jax/population.py`) and
cuts the candidates by successive halving. The package sits one layer above `training`
and below `evaluation`; importing it stays pure numpy: `search`'s names (which import
JAX) are served lazily by `__getattr__`.
"""

from sed_meltingpot.design.bandits import UCB, EpsilonGreedy, PerEtaBucket, Thompson
from sed_meltingpot.design.halving import Rung, halving_plan, keep_best
from sed_meltingpot.design.protocol import Designer, Schedule, arm_grid, check_arms

__all__ = ["UCB", "Designer", "EpsilonGreedy", "PerEtaBucket", "Rung", "RungResult",
           "Schedule", "SearchResult", "Thompson", "arm_grid", "check_arms",
           "default_candidates", "halving_plan", "keep_best", "search_seeds"]

#: Served lazily from `design.search` (the search itself is `design.search.search`: the
#: package's attribute `search` is that module).
_SEARCH_NAMES = ("RungResult", "SearchResult", "default_candidates", "search_seeds")


def __getattr__(name: str):
    """The search's names, imported on first use (they import JAX)."""
    if name in _SEARCH_NAMES:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.search"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
