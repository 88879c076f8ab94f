"""The lever analysis's episodes on the twin (issue 16): frozen players, random rates.

Each tax period the principal draws an independent uniform level per bracket
(levels -> GameConfig.rate_levels, tax cap 1; the draws of the twin's random principal,
`training.jax.play.random_levels`), so that the rates are independent of
everything else in the game and `sed_meltingpot.analysis.lever` can regress the period's
objective change on them. The players are a jax-engine run's trained players
(sampling their policy, loaded as `training.jax.play.play_run` loads them) or
uniform random actions (a run-free check). `num_games` games are vmapped in one
jitted call that plays whole episodes; eta is the `fixed_eta` input of
`SEDTwin.reset`, so every eta reuses one compiled program, and every eta plays the
same worlds, actions keys and rate draws (common random numbers).

Per period it records the effective rates, the principal's reward summed over the
period's steps (W_eta at the period's end minus at its start: the taxes settle at the
period's last step, inside the sum), and each player's apples of the period.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from sed_meltingpot.analysis.lever import LeverRecords
from sed_meltingpot.core import rewards
from sed_meltingpot.game.config import GameConfig
from sed_meltingpot.runs.run_record import obs_mode_of, read_run
from sed_meltingpot.training.jax import networks
from sed_meltingpot.training.jax.play import random_levels, random_principal_keys
from sed_meltingpot.training.jax.rollout import make_period_play
from sed_meltingpot.twin.sed import SEDTwin

__all__ = ["RANDOM", "Players", "check_players_fit", "load_run_players", "play_episodes",
           "play_lever"]

RANDOM = "random"


@dataclasses.dataclass(frozen=True)
class Players:
    """Who plays: a shared player network (spec and params, as a run saved them) or,
    with spec None, uniform random actions. obs_mode / frame_stack: what the network
    was trained on (the run's pixels_per_tile and frame_stack)."""

    spec: networks.NetworkSpec | None = None
    params: Any = None
    obs_mode: str = "tiles"
    frame_stack: int = 1
    source: str = RANDOM  # the run's checkpoint folder, or "random"


def load_run_players(run_dir: str) -> tuple[GameConfig, Players]:
    """A jax-engine run's game (with its players' types) and trained players: the
    run_config.json and newest checkpoint, read by `runs.run_record.read_run`.
    Raises ValueError / FileNotFoundError naming what is missing."""
    from sed_meltingpot.training.jax import checkpoint as ckpt

    path = os.path.join(run_dir, "run_config.json")
    if not os.path.isfile(path):
        seeds = sorted(d for d in os.listdir(run_dir) if d.startswith("seed_")) \
            if os.path.isdir(run_dir) else []
        hint = f"; a multi-seed run: pick one of {seeds}" if seeds else ""
        raise FileNotFoundError(f"no run_config.json in {run_dir!r}{hint}")
    run = read_run(run_dir)
    if run.engine != "jax":
        raise ValueError(f"{run_dir!r} is not a jax-engine run (run_config.json engine="
                         f"{run.engine!r}); the lever analysis plays the twin")
    game = run.game
    obs_mode, frame_stack = obs_mode_of(run.train), run.train.frame_stack
    checkpoint = ckpt.latest_checkpoint(run_dir)
    spec, params = ckpt.load_params(checkpoint, "players")
    if spec is None:
        raise ValueError(f"{checkpoint!r} holds no players' network")
    return game, Players(spec, params, obs_mode, frame_stack, checkpoint)


def check_players_fit(sed: SEDTwin, players: Players) -> None:
    """ValueError unless the trained players' network takes this game's observations
    (image and feature shapes, from `jax.eval_shape`, nothing computed): game flags that
    change them (the players, the brackets) would otherwise fail as a JAX shape error
    after the compile."""
    if players.spec is None:
        return
    _, obs = jax.eval_shape(sed.reset, jax.random.PRNGKey(0),
                            jnp.zeros(sed.num_players, jnp.float32))
    got = (tuple(int(d) for d in obs.player_image.shape[-3:]),
           int(obs.player_features.shape[-1]))
    want = (tuple(players.spec.image_shape), int(players.spec.num_features))
    if got != want:
        raise ValueError(f"the run's players' network takes images {want[0]} and {want[1]} "
                         f"features; this game gives {got[0]} and {got[1]} (leave the game "
                         "flags that change them at the run's values)")


_PLAY: dict[tuple, Callable[..., Any]] = {}


def _play_fn(game: GameConfig, players: Players, num_games: int) -> Callable[..., Any]:
    """A jitted `play(reset_keys[E], play_key, rate_keys[E], sigma, params, fixed_eta) ->
    (rates f32[P, E, B], y f32[P, E], apples f32[P, E, n], eta f32[E])`: E games,
    one whole episode each. Compiled once per (game, players' network, E)."""
    key = (game, players.spec, players.obs_mode, players.frame_stack, num_games)
    if key in _PLAY:
        return _PLAY[key]
    sed = SEDTwin(game, obs_mode=players.obs_mode, frame_stack=players.frame_stack,
                  principal_image_every_step=False)
    net = networks.ImageFeaturesNet(players.spec) if players.spec is not None else None
    e, b, k = num_games, game.num_brackets, game.num_rate_levels
    reset_v = jax.vmap(sed.reset, in_axes=(0, None, None))
    period_play = make_period_play(sed, "random", net, None, e, b, k, game.tax_period,
                                   num_actions=sed.num_actions)

    def play(reset_keys, play_key, rate_keys, sigma, params, fixed_eta):
        g, obs = reset_v(reset_keys, sigma, fixed_eta)
        no_returns = jnp.zeros((e, game.num_players), jnp.float32)  # not read here

        def period(carry, inputs):
            g, obs = carry
            ks, index = inputs
            g, obs, _ = period_play.principal_turn(
                {}, g, obs, None, 1.0, None, random_levels(rate_keys, index, b, k))
            rates = g.sed.rates  # effective: after the projection and the cap
            (g, obs, _), steps = period_play.players_steps(params, g, obs, no_returns, ks)
            y = steps["principal_reward"].sum(axis=0).astype(jnp.float32)
            return (g, obs), (rates, y, steps["info"]["apples"].sum(axis=0).astype(jnp.float32))

        periods = game.episode_length // game.tax_period
        (g, _), out = jax.lax.scan(period, (g, obs), (jax.random.split(play_key, periods),
                                                      jnp.arange(periods)))
        return (*out, g.sed.eta)

    _PLAY[key] = jax.jit(play)
    return _PLAY[key]


def play_episodes(game: GameConfig, players: Players, fixed_eta: float, first_episode: int,
                  num_games: int, seed: int, sigma: np.ndarray, rate_stream: int = 0
                  ) -> dict[str, np.ndarray]:
    """Episodes first_episode .. + num_games - 1 in one call, keyed as
    `training.jax.play.play_run` keys them: episode k's world from PRNGKey(seed + k),
    the players' actions from the first episode's key, and the rates drawn as the twin's
    random principal draws them (`random_principal_keys(seed, rate_stream)`,
    `random_levels`). Another rate_stream replays the same worlds and, for players
    that ignore the rates, the same actions, under other rates.

    Returns rates f32[E, P, B], y f32[E, P], apples f32[E, P, n], eta f32[E]."""
    keys = [jax.random.split(jax.random.PRNGKey(seed + first_episode + j))
            for j in range(num_games)]
    play = _play_fn(game, players, num_games)
    rates, y, apples, eta = jax.device_get(play(
        jnp.stack([kk[0] for kk in keys]), keys[0][1],
        random_principal_keys(seed + first_episode, rate_stream, num_games),
        jnp.asarray(sigma, jnp.float32),
        players.params if players.params is not None else {}, jnp.float32(fixed_eta)))
    return {"rates": np.swapaxes(np.asarray(rates), 0, 1), "y": np.asarray(y).T,
            "apples": np.swapaxes(np.asarray(apples), 0, 1), "eta": np.asarray(eta)}


def lever_game(game: GameConfig, welfare_on: str | None = None) -> GameConfig:
    """The game as played here: eta comes from `fixed_eta` (the default on-device vote,
    overridden at run time, as `ppo.compile_game` does for `fixed:<eta>` rules), types
    are an argument, and `welfare_on` replaced if given."""
    from sed_meltingpot.training.jax.ppo import COMPILED_VOTING_RULE

    updates: dict[str, Any] = {"voting_rule": COMPILED_VOTING_RULE, "selfishness": None}
    if welfare_on is not None:
        updates["welfare_on"] = welfare_on
    return dataclasses.replace(game, **updates).validate()


def play_lever(game: GameConfig, players: Players, etas: Sequence[float], *,
               num_episodes: int, num_games: int, seed: int = 0,
               welfare_on: str | None = None, rate_stream: int = 0,
               log: Callable[[str], None] | None = None) -> LeverRecords:
    """`num_episodes` episodes per eta (in calls of `num_games` vmapped games) with random
    rates each period; the records for `sed_meltingpot.analysis.lever.analyse`. The players'
    types: game.selfishness, else drawn from `seed` (rewards.sample_selfishness).
    Episode ids are unique across etas (eta index * num_episodes + episode)."""
    if num_games < 1 or num_episodes < 1 or num_episodes % num_games:
        raise ValueError(f"num_episodes={num_episodes} must be a positive multiple of "
                         f"num_games={num_games} (>= 1)")
    sigma = (np.asarray(game.selfishness, np.float32) if game.selfishness is not None else
             rewards.sample_selfishness(game.num_players, seed).astype(np.float32))
    played = lever_game(game, welfare_on)
    parts = []
    start = time.time()
    for i, eta in enumerate(etas):
        for first in range(0, num_episodes, num_games):
            out = play_episodes(played, players, float(eta), first, num_games, seed, sigma,
                                rate_stream)
            e, p = out["y"].shape
            parts.append(LeverRecords(
                rates=out["rates"].reshape(e * p, -1), y=out["y"].reshape(-1),
                eta=np.repeat(np.round(out["eta"].astype(np.float64), 6), p),
                episode=np.repeat(i * num_episodes + first + np.arange(e), p),
                apples=out["apples"].reshape(e * p, -1)))
            if log is not None:
                log(f"eta {float(eta):g}: {first + e}/{num_episodes} episodes "
                    f"({time.time() - start:.0f} s)")
    return LeverRecords.concatenate(parts)
