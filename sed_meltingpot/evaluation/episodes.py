"""Playing episodes on the Lua substrate through `SEDMultiAgentEnv`, so that
players see exactly the observations they were trained on; every metric is
read from the game itself (`SEDGame.episode_metrics`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sed_meltingpot.evaluation.policies import ModulePrincipal, PlayerPolicy
from sed_meltingpot.evaluation.runs import EvalSetup
from sed_meltingpot.evaluation.stats import episode_scalars
from sed_meltingpot.principals import Principal

PRINCIPAL_ID = "principal"  # sed_meltingpot.rllib_env.PRINCIPAL, without importing ray


StepHook = Callable[[Any, Any], None]  # (SEDGame, StepResult) after each game step


def make_env(setup: EvalSetup, principal: str | Principal, seed: int,
             on_step: StepHook | None = None) -> Any:
    """A `SEDMultiAgentEnv` for `principal`: "learned" (an agent acts in the
    principal's turn), a spec ("none", "fixed:..", "random") or any callable
    `Principal` (asked for rates at each period start, like the env's own
    scripted principals)."""
    from sed_meltingpot.rllib_env import SEDMultiAgentEnv

    if isinstance(principal, str):
        env = SEDMultiAgentEnv(setup.env_config(principal, seed))
    else:  # a callable: a scripted env ("none" is only its spec's placeholder)
        env = SEDMultiAgentEnv(setup.env_config("none", seed), scripted_principal=principal)
    if on_step is not None:
        env.step_hooks.append(on_step)
    return env


def run_episode(env: Any, players: PlayerPolicy, principal: ModulePrincipal | None = None, *,
                seed: int = 0, max_steps: int | None = None) -> dict[str, Any]:
    """Plays one episode (or `max_steps` game steps) and returns the game's
    `episode_metrics()`; per-step info goes to the env's `on_step` hook."""
    players.reset(seed)
    if principal is not None:
        principal.reset(seed + 7919)
    if env.learned_principal and principal is None:
        raise ValueError("the env expects a learned principal; pass a ModulePrincipal")
    obs, _ = env.reset()
    steps = 0
    while max_steps is None or steps < max_steps:
        if PRINCIPAL_ID in obs:  # a period starts: the learned principal's turn
            obs, _, _, _, _ = env.step({PRINCIPAL_ID: principal.act(obs[PRINCIPAL_ID])})
            continue
        obs, _, terminated, truncated, _ = env.step(players.act(obs))
        steps += 1
        if terminated["__all__"] or truncated["__all__"]:  # the env truncates at the end
            break
    return env.game.episode_metrics()


def evaluate_principal(setup: EvalSetup, players: PlayerPolicy,
                       principal: str | Principal | ModulePrincipal, *, num_episodes: int,
                       seed: int = 0, max_steps: int | None = None,
                       on_episode: Callable[[int, dict[str, float]], None] | None = None,
                       on_step: StepHook | None = None) -> list[dict[str, float]]:
    """Scalars of `num_episodes` episodes; episode k is seeded `seed + k` for
    every principal (same worlds, same players' random streams)."""
    learned = isinstance(principal, ModulePrincipal)
    env = make_env(setup, "learned" if learned else principal, seed, on_step)
    try:
        out = []
        for k in range(num_episodes):
            metrics = run_episode(env, players, principal if learned else None,
                                  seed=seed + k, max_steps=max_steps)
            scalars = episode_scalars(metrics)
            out.append(scalars)
            if on_episode:
                on_episode(k, scalars)
        return out
    finally:
        env.close()


