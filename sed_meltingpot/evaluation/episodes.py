"""Playing episodes on the Lua substrate through `SEDMultiAgentEnv`, so that
players see exactly the observations they were trained on; every metric is
read from the game itself (`SEDGame.episode_metrics`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sed_meltingpot.evaluation.policies import PlayerPolicy
from sed_meltingpot.evaluation.runs import EvalSetup
from sed_meltingpot.evaluation.stats import episode_scalars
from sed_meltingpot.game.principals import PRINCIPAL_SEED_OFFSET, Principal, check_principal

StepHook = Callable[[Any, Any], None]  # (SEDGame, StepResult) after each game step


def make_env(setup: EvalSetup, principal: Principal, seed: int,
             on_step: StepHook | None = None) -> Any:
    """A `SEDMultiAgentEnv` in which `principal` (any `principals.Principal`:
    a baseline, a searched schedule or a trained `ModulePrincipal`) sets the
    rates at each period start; only the players are agents."""
    from sed_meltingpot.envs.rllib_env import SEDMultiAgentEnv

    env = SEDMultiAgentEnv(setup.env_config(seed), scripted_principal=check_principal(principal))
    if on_step is not None:
        env.step_hooks.append(on_step)
    return env


def run_episode(env: Any, players: PlayerPolicy, *, seed: int = 0,
                max_steps: int | None = None) -> dict[str, Any]:
    """Plays one episode (or `max_steps` game steps) of the env's next world,
    the players' and the principal's randomness seeded from `seed`, and returns
    the game's `episode_metrics()`; per-step info goes to the env's `on_step`
    hook."""
    if env.scripted_principal is None:
        raise ValueError("evaluation plays the principal inside the env: build it with "
                         "make_env (a learned principal as a ModulePrincipal)")
    players.reset(seed)
    env.scripted_principal.reset(seed + PRINCIPAL_SEED_OFFSET)
    obs, _ = env.reset()
    steps = 0
    while max_steps is None or steps < max_steps:
        obs, _, terminated, truncated, _ = env.step(players.act(obs))
        steps += 1
        if terminated["__all__"] or truncated["__all__"]:  # the env truncates at the end
            break
    return env.game.episode_metrics()


def evaluate_principal(setup: EvalSetup, players: PlayerPolicy, principal: Principal, *,
                       num_episodes: int, seed: int = 0, max_steps: int | None = None,
                       on_episode: Callable[[int, dict[str, float]], None] | None = None,
                       on_step: StepHook | None = None,
                       scalars_fn: Callable[[dict[str, Any]], dict[str, float]] = episode_scalars
                       ) -> list[dict[str, float]]:
    """Scalars of `num_episodes` episodes; episode k is seeded `seed + k` for
    every principal (same worlds, same players' random streams). `scalars_fn` turns
    an episode's `episode_metrics()` into its scalars (e.g. adding figures computed
    from the per-player totals)."""
    env = make_env(setup, principal, seed, on_step)
    try:
        out = []
        for k in range(num_episodes):
            metrics = run_episode(env, players, seed=seed + k, max_steps=max_steps)
            scalars = scalars_fn(metrics)
            out.append(scalars)
            if on_episode:
                on_episode(k, scalars)
        return out
    finally:
        env.close()
