"""Playing a trained jax run's players (and learned principal) on the twin: the
evaluation episodes of the experiment (`experiment.engines.twin_episodes`) and the lever
analysis (`analysis.lever_play`) read their runs and draw the random principal's rates
here; a period's play (the principal's turn, the players' steps) is the trainer's own
(`training/jax/rollout.py`).

`play_run` loads a run folder (its settings typed by `runs.run_record.read_run`, its
newest checkpoint) and plays `num_episodes` games vmapped with one compiled program per game
settings and principal kind (`play_fn`): the networks' weights, the types, fixed rates
and a fixed eta are its arguments, so every run, schedule and objective of a grid reuses
it. Episode k's world comes from PRNGKey(seed + k) (common random numbers across
principals and runs); policies sample as in training; the random principal's draws come
from `random_principal_keys(seed, stream)`, independent across training seeds (stream)
and episodes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from sed_meltingpot.game.principals import LEARNED, PRINCIPAL_SEED_OFFSET, FixedRates
from sed_meltingpot.runs.run_record import obs_mode_of, read_run
from sed_meltingpot.training.jax import checkpoint as ckpt
from sed_meltingpot.training.jax import networks
from sed_meltingpot.training.jax.ppo_config import compile_game, parse_scripted, run_inputs
from sed_meltingpot.training.jax.rollout import make_period_play
from sed_meltingpot.twin.sed import SEDTwin

#: A principal as the experiment names it: "learned" | a spec ("none", "random",
#: "fixed:..") | a tuple of rates.
PrincipalArg = str | tuple[float, ...]


def random_principal_keys(seed: int, stream: int, num_episodes: int) -> Any:
    """(num_episodes, 2) keys of the random principal's draws: episode k's is
    PRNGKey(seed + k + PRINCIPAL_SEED_OFFSET) folded with `stream` (the training
    seed), as the Lua path seeds its principal per episode (`StreamRandomPrincipal`)."""
    return jnp.stack([jax.random.fold_in(jax.random.PRNGKey(seed + k + PRINCIPAL_SEED_OFFSET),
                                         stream) for k in range(num_episodes)])


def random_levels(principal_keys: Any, period: Any, num_brackets: int, num_levels: int) -> Any:
    """int32 (E, B): the random principal's rate levels of tax period `period`, uniform,
    from each episode's key (`random_principal_keys`) folded with the period."""
    def draw(key: Any) -> Any:
        return jax.random.randint(jax.random.fold_in(key, period), (num_brackets,), 0,
                                  num_levels)

    return jax.vmap(draw)(principal_keys)


def play_fn(game: Any, obs_mode: str, frame_stack: int, kind: str,
                  players_spec: Any, principal_spec: Any, num_episodes: int) -> Any:
    """A jitted `play(reset_keys, play_key, principal_keys, sigma, players_params,
    principal_params, rates, fixed_eta) -> episode metrics (per episode)` for
    `num_episodes` games vmapped. Compiled once per game settings and principal kind:
    networks' weights, types, fixed rates and a fixed eta are arguments, so every run,
    schedule and objective of a grid reuses it."""
    game = compile_game(game)
    key = (game, obs_mode, frame_stack, kind, players_spec, principal_spec, num_episodes)
    if key in _PLAY_FNS:
        return _PLAY_FNS[key]
    sed = SEDTwin(game, obs_mode=obs_mode, frame_stack=frame_stack)
    players = networks.ImageFeaturesNet(players_spec)
    principal = networks.ImageFeaturesNet(principal_spec) if principal_spec else None
    E, B, K = num_episodes, game.num_brackets, game.num_rate_levels
    periods, period_len = game.episode_length // game.tax_period, game.tax_period
    reset_v = jax.vmap(sed.reset, in_axes=(0, None, None))
    metrics_v = jax.vmap(sed.episode_metrics)
    period_play = make_period_play(sed, kind, players, principal, E, B, K, period_len)

    def play(reset_keys, play_key, principal_keys, sigma, players_params, principal_params,
             rates, fixed_eta):
        g, obs = reset_v(reset_keys, sigma, fixed_eta)
        no_returns = jnp.zeros((E, game.num_players), jnp.float32)  # not read here

        def period(carry, inputs):
            g, obs = carry
            k, index = inputs
            kq, ks = jax.random.split(k)
            levels = random_levels(principal_keys, index, B, K) if kind == "random" else None
            g, obs, _ = period_play.principal_turn(principal_params, g, obs, kq, 1.0, rates,
                                                   levels)
            (g, obs, _), _ = period_play.players_steps(players_params, g, obs, no_returns, ks)
            return (g, obs), None

        (g, obs), _ = jax.lax.scan(period, (g, obs), (jax.random.split(play_key, periods),
                                                      jnp.arange(periods)))
        return metrics_v(g)

    _PLAY_FNS[key] = jax.jit(play)
    return _PLAY_FNS[key]


_PLAY_FNS: dict[tuple, Any] = {}


def play_run(run_dir: str, voting_rule: str, principal: PrincipalArg, seed: int,
             num_episodes: int, stream: int = 0) -> tuple[Any, dict[str, np.ndarray]]:
    """(the run's GameConfig under `voting_rule`, SEDTwin.episode_metrics per episode
    (leading axis: episode)) of `num_episodes` games of a jax run (module docstring)."""
    run = read_run(run_dir)
    game = dataclasses.replace(run.game, voting_rule=voting_rule)
    sigma = jnp.asarray(game.selfishness, jnp.float32)
    game = dataclasses.replace(game, selfishness=None)  # types are an argument of play
    obs_mode, frame_stack = obs_mode_of(run.train), run.train.frame_stack
    path = ckpt.latest_checkpoint(run_dir)
    players_spec, players_params = ckpt.load_params(path, "players")
    principal_spec, principal_params = (ckpt.load_params(path, "principal")
                                        if principal == LEARNED else (None, {}))
    spec = str(FixedRates(principal)) if isinstance(principal, tuple) else principal
    kind, _ = parse_scripted(spec, game)
    if kind == "learned" and principal_spec is None:
        raise ValueError(f"{path} has no learned principal")
    inputs = run_inputs(game, spec)
    play = play_fn(game, obs_mode, frame_stack, kind, players_spec, principal_spec,
                   num_episodes)
    keys = [jax.random.split(jax.random.PRNGKey(seed + k)) for k in range(num_episodes)]
    metrics = jax.device_get(play(
        jnp.stack([k[0] for k in keys]), keys[0][1],
        random_principal_keys(seed, stream, num_episodes), sigma, players_params,
        principal_params, inputs.rates, inputs.fixed_eta))
    return game, {k: np.asarray(v) for k, v in metrics.items()}
