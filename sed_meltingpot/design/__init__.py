"""The principal's algorithms that sit above a trainer (issue 30, item 5).

The paper's principal is a leader (Section 4, Eq. 7: it maximises W(phi, pi(phi)) over
the tax phi, where pi(phi) is what the players learn under phi). A designer here picks
phi, waits for a trainer to report the welfare W that the players reached under it, and
picks again: one interface (`protocol.Designer`: `propose` / `observe` / `best`) shared
by the bandits (`bandits`), successive halving (`halving`) and any later designer, so a
new algorithm is one file. Pure numpy: nothing here imports JAX, Ray or the trainers,
which is why the package sits one layer above `training` and below `evaluation`.
"""

from sed_meltingpot.design.bandits import UCB, EpsilonGreedy, PerEtaBucket, Thompson
from sed_meltingpot.design.halving import Rung, halving_plan, keep_best
from sed_meltingpot.design.protocol import Designer, Schedule, arm_grid, check_arms

__all__ = ["UCB", "Designer", "EpsilonGreedy", "PerEtaBucket", "Rung", "Schedule",
           "Thompson", "arm_grid", "check_arms", "halving_plan", "keep_best"]
