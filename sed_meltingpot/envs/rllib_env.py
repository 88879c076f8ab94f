"""RLlib `MultiAgentEnv` over the SED game: n players plus the principal.

Turn order. The principal decides before the players act in a tax period:
at the start of each period the env returns only the principal's
observation; its action (one level per bracket) sets the rates without
advancing the world, and the next observation goes to the players, whose
`features` then hold the new rates. The world then runs `tax_period` player
steps, during which the principal is absent from the observation dict, so
RLlib sums the per-step objective changes into the reward of its last
decision. On the episode's last step every agent gets its final observation.
RLlib therefore counts one extra env step per tax period (20 per
1000-step episode); game steps are reported separately.

Episode end. The game stops after `episode_length` steps, a time limit
the players cannot observe (their features hold the position in the tax
period, not in the episode; the principal's hold the period within the
round, not the round within a continual episode). Every agent is therefore
`truncated`, never `terminated`, as in `pettingzoo_env`: a time limit that
is not part of the state is no terminal state (Pardo et al. 2018, "Time
Limits in Reinforcement Learning", partial-episode bootstrapping). RLlib's
GAE then bootstraps the last step with gamma * V(final observation), as
it does at every fragment boundary, instead of a target of 0 that the value
net could not tell apart from mid-episode states; the price is a small
optimism about steps the game does not play (gamma^k V for the last k).
Only `"__all__"` is set: RLlib 2.60's `MultiAgentEpisode.add_env_step` calls
an episode in which every agent reported done *terminated* and passes that
to each agent's episode (so GAE would not bootstrap), while `"__all__"`
alone truncates every agent's episode and terminates none.

Scripted principals (`none`, `fixed:...`, `random`) are not agents: the env
asks them for rates itself, and only the players are trained.

Observations are dicts of `image` (uint8, HWC) and `features` (float32):
* players: the last `frame_stack` RGB views stacked on channels; features
  [sigma, rates (B), position in the tax period, ready to shoot];
* principal: WORLD.RGB; features [log1p of each player's apples in the last
  period (n) and in the round so far (n), eta, current rates (B),
  position of the period in the round] (`observations.principal_input`).
`pixels_per_tile` < 8 averages each tile's 8x8 block down (fast preset).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from sed_meltingpot.core.optional import extra_import
from sed_meltingpot.game.config import GameConfig
from sed_meltingpot.game.observations import SPRITE, downsample, principal_input
from sed_meltingpot.game.principals import Principal, check_principal, parse_principal
from sed_meltingpot.game.sed_game import SEDGame
from sed_meltingpot.substrates import apple_picking_data

with extra_import("rllib", __name__):
    import gymnasium
    from ray.rllib.env.multi_agent_env import MultiAgentEnv

PRINCIPAL = "principal"
PLAYERS_MODULE = "players"
VIEW_TILES = apple_picking_data.VIEW_SHAPE  # (rows, cols) of a player's view


def player_id(i: int) -> str:
    return f"player_{i}"


def policy_mapping_fn(agent_id: str, *args: Any, **kwargs: Any) -> str:
    """Every player shares `players`; the principal has its own module."""
    return PRINCIPAL if agent_id == PRINCIPAL else PLAYERS_MODULE


def game_config_from_dict(values: dict[str, Any]) -> GameConfig:
    fields = {f.name for f in dataclasses.fields(GameConfig)}
    unknown = set(values) - fields
    if unknown:
        raise ValueError(f"unknown game settings {sorted(unknown)}; known: {sorted(fields)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return GameConfig(**values)


def world_seed(seed: int, worker_index: int = 0, vector_index: int = 0) -> int:
    """The substrate seed of one env: a hash of the run's (or reset's) seed
    and the env's place, so that distinct places never share a world
    sequence (sums such as seed + worker collide: seed 1 on runner 0 is seed
    0 on runner 1). A 31-bit value, as the substrate's Lua seed takes."""
    if seed < 0:
        raise ValueError(f"seed={seed} must be a non-negative integer")
    state = np.random.SeedSequence([int(seed), int(worker_index), int(vector_index)])
    return int(state.generate_state(1, dtype=np.uint32)[0] >> 1)


class SEDMultiAgentEnv(MultiAgentEnv):
    """See the module docstring. `env_config` keys: `game` (GameConfig
    fields), `seed`, `principal` ("learned" | "none" | "fixed:..." |
    "random"), `frame_stack`, `pixels_per_tile`.

    `scripted_principal`: a `principals.Principal` to play instead of a
    `principal` spec (evaluation plays every principal this way, a trained one
    included); then env_config names no principal. Whenever the env seeds its
    world (here and on `reset(seed=...)`) it resets the principal with that
    world's seed."""

    def __init__(self, env_config: dict[str, Any] | None = None,
                 scripted_principal: Principal | None = None) -> None:
        super().__init__()
        # RLlib's EnvContext carries the runner's indices as attributes, which
        # a copy into a plain dict would drop (every runner would then play the
        # same worlds): read them first.
        self.worker_index = int(getattr(env_config, "worker_index", 0) or 0)
        self.vector_index = int(getattr(env_config, "vector_index", 0) or 0)
        env_config = dict(env_config or {})
        self.game_config = game_config_from_dict(dict(env_config.get("game", {})))
        self.run_seed = int(env_config.get("seed", 0))
        self.seed = world_seed(self.run_seed, self.worker_index, self.vector_index)
        if scripted_principal is not None and "principal" in env_config:
            raise ValueError(f"scripted_principal given and env_config names principal "
                             f"{env_config['principal']!r}: give one")
        self.frame_stack = int(env_config.get("frame_stack", 4))
        self.pixels_per_tile = int(env_config.get("pixels_per_tile", SPRITE))
        if self.pixels_per_tile not in (1, 2, 4, 8):
            raise ValueError(f"pixels_per_tile={self.pixels_per_tile} must be 1, 2, 4 or 8")
        if self.frame_stack < 1:
            raise ValueError(f"frame_stack={self.frame_stack} must be >= 1")
        self.game = SEDGame(self.game_config, seed=self.seed)
        cfg = self.game.config
        spec = str(env_config.get("principal", "learned"))
        self.learned_principal = scripted_principal is None and spec == "learned"
        self.scripted_principal: Principal | None = None
        if scripted_principal is not None:
            self.scripted_principal = check_principal(scripted_principal)
        elif not self.learned_principal:
            self.scripted_principal = parse_principal(
                spec, num_brackets=cfg.num_brackets, rate_levels=cfg.rate_levels)
        self._reset_principal()

        n, b = cfg.num_players, cfg.num_brackets
        self.players = [player_id(i) for i in range(n)]
        self.possible_agents = self.players + ([PRINCIPAL] if self.learned_principal else [])
        self.agents = list(self.possible_agents)
        ppt = self.pixels_per_tile
        player_space = gymnasium.spaces.Dict({
            "image": gymnasium.spaces.Box(
                0, 255, (VIEW_TILES[0] * ppt, VIEW_TILES[1] * ppt, 3 * self.frame_stack),
                np.uint8),
            "features": gymnasium.spaces.Box(-np.inf, np.inf, (b + 3,), np.float32),
        })
        world_h, world_w, _ = self.game.principal_observation_shape()
        principal_space = gymnasium.spaces.Dict({
            "image": gymnasium.spaces.Box(
                0, 255, (world_h // SPRITE * ppt, world_w // SPRITE * ppt, 3), np.uint8),
            "features": gymnasium.spaces.Box(-np.inf, np.inf, (2 * n + b + 2,), np.float32),
        })
        self.observation_spaces = {a: player_space for a in self.players}
        self.action_spaces = {
            a: gymnasium.spaces.Discrete(apple_picking_data.NUM_ACTIONS) for a in self.players}
        if self.learned_principal:
            self.observation_spaces[PRINCIPAL] = principal_space
            self.action_spaces[PRINCIPAL] = gymnasium.spaces.MultiDiscrete(
                [cfg.num_rate_levels] * b)
        self.last_episode_metrics: dict[str, Any] | None = None
        # Called as hook(game, step_result) after every game step, so that
        # evaluation and rendering read the game's per-step info (RLlib only
        # passes rewards on).
        self.step_hooks: list[Callable[[SEDGame, Any], None]] = []
        self._frames: list[np.ndarray] = []

    # ------------------------------------------------------------ interface
    def set_tax_cap(self, cap: float) -> None:
        """Curriculum hook (see `training.rllib.callbacks`)."""
        self.game.tax_cap = cap

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Gymnasium's contract: a `seed` restarts the world's seed sequence
        (and the scripted principal's random stream) deterministically. RLlib passes
        `config.seed + worker_index + sub-env index` on a runner's first
        reset; mixing in the worker index keeps every (runner, sub-env) on
        its own worlds (see `world_seed`)."""
        del options
        if seed is not None:
            self.seed = world_seed(seed, self.worker_index, self.vector_index)
            self._reset_principal()
            players_obs, _ = self.game.reset(seed=self.seed)
        else:
            players_obs, _ = self.game.reset()
        # frame_stack copies of the first RGB view (tile, not repeat: repeat would
        # interleave the channels as R..RG..GB..B, unlike the stacked frames after a step).
        self._frames = [np.tile(self._view(o), self.frame_stack) for o in players_obs]
        if self.learned_principal:
            return {PRINCIPAL: self._principal_obs()}, {}
        self._scripted_decision()
        return self._players_obs(), {}

    def step(self, action_dict: dict[str, Any]):
        if PRINCIPAL in action_dict:
            if not self.game.principal_due:
                raise RuntimeError("the principal acted outside the start of a tax period")
            rates = self.game.set_rate_levels(np.asarray(action_dict[PRINCIPAL], dtype=np.int64))
            info = {PRINCIPAL: {"rates": rates}}
            return self._players_obs(), {}, {"__all__": False}, {"__all__": False}, info
        missing = [a for a in self.players if a not in action_dict]
        if missing:
            raise ValueError(f"actions missing for {missing}")
        result = self.game.step([int(action_dict[a]) for a in self.players])
        for hook in self.step_hooks:
            hook(self.game, result)
        for i, obs in enumerate(result.observations):
            self._frames[i] = np.concatenate([self._frames[i][..., 3:], self._view(obs)], axis=-1)
        rewards = {a: float(r) for a, r in zip(self.players, result.rewards, strict=True)}
        if self.learned_principal:
            rewards[PRINCIPAL] = result.principal_reward
        if result.done:
            self.last_episode_metrics = self.game.episode_metrics()
            obs = self._players_obs()
            if self.learned_principal:
                obs[PRINCIPAL] = self._principal_obs()
            # Truncated, not terminated: see "Episode end" in the module docstring.
            return obs, rewards, {"__all__": False}, {"__all__": True}, {}
        if self.game.principal_due:
            if self.learned_principal:
                obs = {PRINCIPAL: self._principal_obs()}
                return obs, rewards, {"__all__": False}, {"__all__": False}, {}
            self._scripted_decision()
        return (self._players_obs(), rewards, {"__all__": False},
                {"__all__": False}, {})

    # -------------------------------------------------------------- helpers
    def _reset_principal(self) -> None:
        if self.scripted_principal is not None:
            self.scripted_principal.reset(self.seed)

    def _scripted_decision(self) -> None:
        self.game.set_rates(self.scripted_principal(self.game.principal_observation()))

    def _view(self, obs: dict[str, Any]) -> np.ndarray:
        return downsample(obs["RGB"], self.pixels_per_tile)

    def _players_obs(self) -> dict[str, dict[str, np.ndarray]]:
        """Frames plus features (`SEDGame.player_features`: the kernel's, as the twin's);
        rates, period position and READY_TO_SHOOT are read from the game, so they are
        current after a scripted rate change too."""
        features = self.game.player_features()
        return {agent: {"image": self._frames[i], "features": features[i]}
                for i, agent in enumerate(self.players)}

    def _principal_obs(self) -> dict[str, np.ndarray]:
        cfg = self.game.config
        return principal_input(self.game.principal_observation(),
                               cfg.round_length // cfg.tax_period, self.pixels_per_tile)

    def close(self) -> None:
        self.game.close()
