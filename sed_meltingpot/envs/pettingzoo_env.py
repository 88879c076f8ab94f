"""PettingZoo `ParallelEnv` of the players, with the principal built in.

For users of other trainers (SB3, CleanRL, TorchRL): the players are the
agents; the principal is a `principals.Principal` (a scripted baseline, or a
trained one through `evaluation.ModulePrincipal`) that the environment asks
for rates at the start of every tax period. Per-player infos carry the game's step info, and
`game.period_records` / `game.round_records` the settled periods and rounds.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sed_meltingpot.core.optional import extra_import
from sed_meltingpot.game.config import GameConfig
from sed_meltingpot.game.principals import Principal, check_principal, no_tax
from sed_meltingpot.game.sed_game import SEDGame
from sed_meltingpot.substrates import apple_picking_data as data

with extra_import("lua", __name__):
    import gymnasium
    from pettingzoo.utils.env import ParallelEnv


def player_observation_space(config: GameConfig) -> gymnasium.spaces.Dict:
    """The space of one player's observation dict."""
    n, b = config.num_players, config.num_brackets
    box = gymnasium.spaces.Box
    return gymnasium.spaces.Dict({
        "RGB": box(0, 255, (data.VIEW_SHAPE[0] * data.SPRITE_SIZE,
                            data.VIEW_SHAPE[1] * data.SPRITE_SIZE, 3), np.uint8),
        "READY_TO_SHOOT": box(0.0, 1.0, (), np.float64),
        "NEARBY": box(0.0, 1.0, (n,), np.float64),
        "APPLES_EATEN": box(0.0, np.inf, (), np.float64),
        "ZAPPED": box(0.0, 1.0, (), np.float64),
        "SELFISHNESS": box(0.0, 1.0, (), np.float32),
        "TAX_RATES": box(0.0, 1.0, (b,), np.float32),
        "PERIOD_POSITION": box(0.0, 1.0, (), np.float32),
    })


class SEDParallelEnv(ParallelEnv):
    """The players' side of the SED game as a PettingZoo parallel env."""

    metadata = {"name": "sed_apple_picking_v0", "render_modes": ["rgb_array"]}

    def __init__(self, config: GameConfig | None = None, principal: Principal | None = None,
                 seed: int | None = 0) -> None:
        if principal is not None:
            check_principal(principal)  # before the substrate is built
        self.game = SEDGame(config, seed=seed)
        cfg = self.game.config
        self.principal = no_tax(cfg.num_brackets) if principal is None else principal
        if seed is not None:
            self.principal.reset(seed)
        self.possible_agents = [f"player_{i}" for i in range(cfg.num_players)]
        self.agents: list[str] = []
        self._has_reset = False
        self._obs_space = player_observation_space(cfg)
        self._act_space = gymnasium.spaces.Discrete(data.NUM_ACTIONS)
        self.render_mode = "rgb_array"

    def observation_space(self, agent: str) -> gymnasium.spaces.Dict:
        return self._obs_space

    def action_space(self, agent: str) -> gymnasium.spaces.Discrete:
        return self._act_space

    def _ask_principal(self) -> None:
        if self.game.principal_due:
            self.game.set_rates(self.principal(self.game.principal_observation()))

    def reset(self, seed: int | None = None, options: dict | None = None):
        """`seed` restarts the world's seed sequence (PettingZoo's contract):
        the episode plays the world, and the principal's random stream, of
        `SEDParallelEnv(config, principal, seed=seed)`; without a seed both
        go on where they were."""
        del options
        self.game.reset(seed=seed)
        if seed is not None:
            self.principal.reset(seed)
        self._has_reset = True
        self._ask_principal()
        observations = self.game.player_observations()
        self.agents = list(self.possible_agents)
        obs = dict(zip(self.agents, observations, strict=True))
        return obs, {a: {} for a in self.agents}

    def step(self, actions: dict[str, int]):
        if not self.agents:
            when = "after the episode ended" if self._has_reset else "before reset()"
            raise RuntimeError(f"step() called {when}: no agent is live; call reset() first")
        missing = set(self.agents) - set(actions)
        if missing:
            raise ValueError(f"actions missing for agents {sorted(missing)}")
        unknown = set(actions) - set(self.agents)
        if unknown:
            raise ValueError(f"actions for unknown agents {sorted(unknown)}; live agents: "
                             f"{self.agents}")
        result = self.game.step([int(actions[a]) for a in self.possible_agents])
        observations = result.observations
        if not result.done and self.game.principal_due:
            self._ask_principal()
            observations = self.game.player_observations()
        agents = list(self.agents)
        obs = dict(zip(agents, observations, strict=True))
        rewards = {a: float(r) for a, r in zip(agents, result.rewards, strict=True)}
        # A time limit the players cannot observe: truncated, never terminated
        # (as in rllib_env; see "Episode end" in its docstring).
        terminations = {a: False for a in agents}
        truncations = {a: result.done for a in agents}
        infos: dict[str, dict[str, Any]] = {a: {"game": result.info} for a in agents}
        if result.done:
            self.agents = []
        return obs, rewards, terminations, truncations, infos

    def render(self) -> np.ndarray:
        return self.game.principal_observation()["WORLD.RGB"]

    def close(self) -> None:
        self.game.close()
