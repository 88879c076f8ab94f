"""End-to-end jitted PPO on the JAX twin: players (one shared network) and the principal
(its own network), trained at the same timescale (issue 9, item 3).

PureJaxRL style, top to bottom: `init` builds the networks, optimisers and `num_envs`
games; `update` is one training iteration:
  1. rollout (`lax.scan` over tax periods, an inner `lax.scan` over the period's steps,
     `vmap` over games): at each period start the principal acts first (learned: its
     network samples one rate level per bracket; scripted: none / fixed / random), then
     the players act for `tax_period` steps. As in `rllib_env.SEDMultiAgentEnv`, the
     principal has ONE transition per period whose reward is the summed change of the
     objective over the period; the players have one transition per game step.
     Episodes end at a period's end (episode_length is a multiple of tax_period), where
     the game is reset (once per period, not per step).
  2. GAE (gamma 0.99, lambda 0.95; `gae`, a reverse `lax.scan`); an episode's end is a
     time limit, bootstrapped with the value of its final observation, as the RLlib path
     treats it (truncated); advantages standardised per module over the batch like
     RLlib's GAE connector.
  3. PPO epochs (`lax.scan` over epochs and shuffled minibatches), per module with its
     own minibatch size (players `minibatch_size`, principal `principal_minibatch_size`,
     like training/rllib/learner.py; a remainder smaller than a minibatch is left out of that
     epoch; the players' may instead be planned by count, `num_minibatches`:
     `ppo_config.minibatch_plan`), its own Adam and global-norm gradient clip, loss =
     RLlib's PPO loss with no KL term and no value clipping (`ppo_loss`).
Schedules: the players' learning rate falls linearly from `lr` to 0 over the run's
env-step budget (`lr_at`, the RLlib path's), times the recipe's phase-2 scale. A learned
principal trains by its own recipe (`training/jax/recipe.py`, `TwinTrainConfig.recipe`): its own
lr, epochs, entropy coefficient (annealed), gamma/lambda over its turns and a terminal
round end (`principal_gae`); a players-first phase 1 (tax cap 0, its update discarded),
then the tax cap ramps from tax_cap_start to 1 over tax_cap_fraction of phase 2
(`recipe.schedule`; with no phase 1 this is the RLlib path's `tax_cap_at`); eta may be
drawn per game and episode (`recipe.draw_etas`), and the principal's reward
scaled and its advantages centred per eta (`recipe.reward_scale`,
`recipe.remove_eta_trend`); its value may sit on a torso of its own, clipped and
optimised apart (`per_tower`), and a per-bracket entropy floor may join its loss
(`entropy_floor_penalty`). Env steps count game steps plus the
learned principal's turns, as RLlib counts them.

Everything is a pure function of its arguments, so `jax.vmap(update)` trains several
seeds at once (`make_train(...)` with `jax.vmap` over rng and types). Observations stay
uint8 in the rollout buffer; its size is num_envs x rollout_length x players images.

Known difference from the RLlib path: the players' bootstrap value at a rollout's end is
taken on the observation before the next period's rates are set (RLlib's players next see
the observation after the principal's turn).

Layout: the configuration and run inputs are `training/jax/ppo_config.py` (TwinTrainConfig,
RunInputs, the schedules), GAE and the loss `training/jax/ppo_losses.py`, the game interface
`training/jax/protocol.py` (TrainableGame: SEDTwin, or a test's stand-in), one period of play
`training/jax/rollout.py` (the principal's turn and the players' steps, shared with evaluation's
`training/jax/play.py`); this module is the algorithm: state types, then `make_functions` (init,
rollout, GAE, update; the update's stages also on their own, `IterationStages`, for
`scripts/profile_iteration.py`) and `make_train`. Their names are re-exported here
(`ppo.TwinTrainConfig`, `ppo.gae`, `ppo.Transitions`, ...).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from sed_meltingpot.game.kernel import principal_eta_index
from sed_meltingpot.training.jax import networks
from sed_meltingpot.training.jax import recipe as recipes
from sed_meltingpot.training.jax.ppo_config import (
    COMPILED_VOTING_RULE,
    NUM_ACTIONS,
    RunInputs,
    TwinTrainConfig,
    compile_game,
    lr_at,
    make_game,
    minibatch_plan,
    parse_scripted,
    players_lr,
    principal_lr,
    run_inputs,
    tax_cap_at,
)
from sed_meltingpot.training.jax.ppo_losses import (
    entropy_floor_penalty,
    gae,
    ppo_loss,
    principal_gae,
    standardize,
)
from sed_meltingpot.training.jax.protocol import TrainableGame, check_trainable
from sed_meltingpot.training.jax.rollout import Transitions, make_period_play

__all__ = [  # defined here, and re-exported from ppo_config, ppo_losses, protocol, rollout
    "IterationStages", "Networks", "RunnerState", "TrainFunctions", "Transitions",
    "init_vmapped", "make_functions", "make_optimizer", "make_train", "network_specs",
    "num_params",
    "COMPILED_VOTING_RULE", "NUM_ACTIONS", "RunInputs", "TwinTrainConfig", "compile_game",
    "lr_at", "make_game", "minibatch_plan", "parse_scripted", "players_lr", "principal_lr",
    "run_inputs",
    "tax_cap_at", "gae", "ppo_loss", "principal_gae", "standardize", "TrainableGame",
]


# ------------------------------------------------------------ state types
class RunnerState(NamedTuple):
    players_params: Any
    players_opt: Any
    principal_params: Any  # {} without a learned principal
    principal_opt: Any
    game_state: Any  # SEDTwin state, batched over games
    obs: Any  # SEDTwin Obs, batched over games
    selfishness: jax.Array  # (n,) the run's types
    episode_returns: jax.Array  # (games, n) players' returns of the running episodes
    rng: jax.Array
    iteration: jax.Array  # int32, iterations done
    inputs: RunInputs  # the fixed eta and rates, inputs of the compiled update


class Networks(NamedTuple):
    """A run's fresh networks and optimiser states (`TrainFunctions.init_networks`), and
    the keys left for its games and its updates."""

    players_params: Any
    players_opt: Any
    principal_params: Any
    principal_opt: Any
    env_key: jax.Array
    rng: jax.Array


class IterationStages(NamedTuple):
    """`update`'s stages as functions of their own, so that a profile can jit and time
    each alone (`perf/iteration_profile.py`); `update` runs exactly these (the same
    operations in the same order: its program is unchanged by them).

    rollout(state, key, tax_cap) -> (state, roll): the iteration's tax periods (the
        principal's turns, the players' policy forwards and env steps, the resets)
    players_batch(state, roll) -> batch: the players' GAE (with the value of the last
        observation) and their flat, standardised batch
    players_train(state, batch, key) -> (params, opt_state, stats): their PPO epochs
    principal_batch, principal_train: the same for a learned principal (its train takes
        the entropy coefficient last); None without one
    """

    rollout: Callable[..., tuple[RunnerState, dict[str, Any]]]
    players_batch: Callable[..., dict[str, jax.Array]]
    players_train: Callable[..., tuple[Any, Any, dict[str, jax.Array]]]
    principal_batch: Callable[..., dict[str, jax.Array]] | None
    principal_train: Callable[..., tuple[Any, Any, dict[str, jax.Array]]] | None


class TrainFunctions(NamedTuple):
    init: Callable[..., RunnerState]  # (rng, selfishness, inputs=run_inputs(game, ..))
    # init in two stages (init = init_games(init_networks(rng), selfishness, inputs)):
    # `init_vmapped` compiles each on its own (a hang of XLA's CPU runtime, below).
    init_networks: Callable[[jax.Array], Networks]
    init_games: Callable[..., RunnerState]  # (Networks, selfishness, inputs)
    update: Callable[[RunnerState], tuple[RunnerState, dict[str, Any]]]
    players_spec: networks.NetworkSpec
    principal_spec: networks.NetworkSpec | None
    game: TrainableGame
    stages: IterationStages  # update's stages, for profiling


# ------------------------------------------------- networks and optimisers
def network_specs(config: TwinTrainConfig, obs: Any
                  ) -> tuple[networks.NetworkSpec, networks.NetworkSpec | None]:
    """Players' and principal's NetworkSpec from one (unbatched) observation."""
    t, g = config.train, config.game
    players = networks.NetworkSpec(
        image_shape=tuple(int(d) for d in obs.player_image.shape[-3:]),
        num_features=int(obs.player_features.shape[-1]), num_logits=NUM_ACTIONS,
        pixels_per_tile=t.pixels_per_tile, conv_channels=tuple(t.conv_channels),
        hidden=t.hidden, conv2_stride=1, dtype=config.dtype).validate()
    if not config.learned:
        return players, None
    principal = dataclasses.replace(
        players, image_shape=tuple(int(d) for d in obs.principal_image.shape[-3:]),
        num_features=int(obs.principal_features.shape[-1]),
        num_logits=g.num_brackets * g.num_rate_levels, conv2_stride=2,
        eta_feature=(principal_eta_index(g.num_players) if config.recipe.principal_eta_heads
                     else -1),
        value_tower=config.recipe.principal_value_net == "separate").validate()
    return players, principal


def make_optimizer(config: TwinTrainConfig, updates_per_iteration: int,
                   lr_fn: Callable[[jax.Array], jax.Array] | None = None
                   ) -> optax.GradientTransformation:
    """Global-norm clip then Adam (torch defaults) at the lr of the iteration the update
    belongs to (the lr changes between iterations, as in RLlib): `lr_fn(iterations this
    optimiser has stepped through)`, by default the players' (`players_lr`)."""
    lr_fn = lr_fn or (lambda iteration: players_lr(config, iteration))

    def schedule(count: jax.Array) -> jax.Array:
        return lr_fn(count // updates_per_iteration)

    return optax.chain(optax.clip_by_global_norm(config.train.grad_clip),
                       optax.adam(schedule, b1=0.9, b2=0.999, eps=1e-8))


def value_tower_labels(params: Any) -> Any:
    """"value" for the value tower's layers and heads (networks.py: "v_*", "vf",
    "vf_eta"), "policy" for the rest: the parts that `per_tower` optimises apart."""
    def label(path: tuple[Any, ...], _leaf: Any) -> str:
        names = [getattr(k, "key", str(k)) for k in path]
        top = names[1] if len(names) > 1 and names[0] == "params" else names[0]
        return "value" if top.startswith("v_") or top in ("vf", "vf_eta") else "policy"

    return jax.tree_util.tree_map_with_path(label, params)


def per_tower(optimizer: optax.GradientTransformation) -> optax.GradientTransformation:
    """`optimizer` (clip, then Adam) applied to the policy's and the value tower's
    parameters apart: the global-norm clip of one tower's gradient no longer scales the
    other's, so a value shock (norm ~1,800 against a clip of 0.5 in the H200 trace)
    leaves the policy's step whole (recipe.principal_value_net=separate)."""
    return optax.multi_transform({"policy": optimizer, "value": optimizer},
                                 value_tower_labels)


# ------------------------------------------------------------ make_train
def make_functions(config: TwinTrainConfig, game: TrainableGame | None = None
                   ) -> TrainFunctions:
    """init and one-iteration update of a run; `game` defaults to the SEDTwin for
    `config` (tests pass a stand-in: any `TrainableGame`)."""
    config.validate()
    game = check_trainable(game if game is not None else make_game(config))
    t, g = config.train, config.game
    n, num_b, num_k = g.num_players, g.num_brackets, g.num_rate_levels
    E, P, L = config.num_envs, config.periods_per_rollout, g.tax_period
    kind, _ = parse_scripted(t.principal, g)
    learned = kind == "learned"
    r = config.recipe

    reset_v = jax.vmap(game.reset, in_axes=(0, None, 0))
    metrics_v = jax.vmap(game.episode_metrics)

    # Shapes from one game, to size the networks.
    _, probe_obs = jax.eval_shape(game.reset, jax.random.PRNGKey(0), jnp.zeros(n, jnp.float32))
    players_spec, principal_spec = network_specs(config, probe_obs)
    players_net = networks.ImageFeaturesNet(players_spec)
    principal_net = networks.ImageFeaturesNet(principal_spec) if learned else None

    p_mb, p_num = config.players_minibatch_plan  # by --minibatch_size or --num_minibatches
    q_rows = P * E
    q_mb, q_num = config.principal_minibatch_plan
    players_tx = make_optimizer(config, t.num_epochs * p_num)
    # The principal's lr follows its own trained iterations (it trains in phase 2 only).
    principal_tx = make_optimizer(config, r.principal_num_epochs * q_num,
                                  lambda k: principal_lr(config, k))
    if r.principal_value_net == "separate":
        principal_tx = per_tower(principal_tx)
    ppo_kwargs = {"clip": t.clip_param, "vf_coeff": t.vf_loss_coeff}
    # The recipe's per-eta treatments read each step's eta (the game's info["eta"]).
    eta_aware = learned and (r.principal_reward_scale != "none" or r.principal_eta_baseline)

    def episode_etas(inputs: RunInputs, key: jax.Array) -> jax.Array:
        """f32[E]: each new episode's fixed eta (NaN: the vote), drawn per game under
        the recipe's eta_sampling, else the run input."""
        if recipes.sampled_etas(r.eta_sampling) is None:
            return jnp.broadcast_to(inputs.fixed_eta, (E,))
        return recipes.draw_etas(r.eta_sampling, key, (E,))

    def no_tax_init(params: Any) -> Any:
        """The principal's policy starts near phi_0 = 0 (recipe.principal_init_no_tax):
        logits layer weights zero, biases giving level 0 (or the recipe's
        principal_init_level) that probability per head."""
        if not r.principal_init_no_tax:
            return params
        bias = jnp.zeros((num_b, num_k), jnp.float32).at[:, r.principal_init_level].set(
            recipes.no_tax_bias(num_k, r.principal_init_no_tax)).reshape(-1)
        pi = params["params"]["pi"]
        pi = {"kernel": jnp.zeros_like(pi["kernel"]), "bias": bias.astype(pi["bias"].dtype)}
        return {**params, "params": {**params["params"], "pi": pi}}

    def init_networks(rng: jax.Array) -> Networks:
        rng, k_players, k_principal, k_env = jax.random.split(rng, 4)
        players_params = networks.init_params(players_spec, k_players)
        principal_params = (no_tax_init(networks.init_params(principal_spec, k_principal))
                            if learned else {})
        return Networks(players_params, players_tx.init(players_params), principal_params,
                        principal_tx.init(principal_params) if learned else {}, k_env, rng)

    def init_games(nets: Networks, selfishness: jax.Array, inputs: RunInputs | None = None
                   ) -> RunnerState:
        inputs = run_inputs(g, t.principal) if inputs is None else inputs
        selfishness = jnp.asarray(selfishness, jnp.float32)
        k_env, k_eta = jax.random.split(nets.env_key)
        game_state, obs = reset_v(jax.random.split(k_env, E), selfishness,
                                  episode_etas(inputs, k_eta))
        return RunnerState(
            nets.players_params, nets.players_opt, nets.principal_params, nets.principal_opt,
            game_state, obs, selfishness, jnp.zeros((E, n), jnp.float32), nets.rng,
            jnp.int32(0), inputs)

    def init(rng: jax.Array, selfishness: jax.Array, inputs: RunInputs | None = None
             ) -> RunnerState:
        return init_games(init_networks(rng), selfishness, inputs)

    # ---------------------------------------------------------------- rollout
    play = make_period_play(game, kind, players_net, principal_net, E, num_b, num_k, L)

    def period(carry, key):
        state, cap = carry
        k_principal, k_steps, k_reset, k_eta = jax.random.split(key, 4)
        random_levels = (jax.random.randint(k_principal, (E, num_b), 0, num_k, jnp.int32)
                         if kind == "random" else None)
        game_state, obs, turn = play.principal_turn(
            state.principal_params, state.game_state, state.obs, k_principal, cap,
            state.inputs.rates, random_levels)
        (game_state, obs, returns), steps = play.players_steps(
            state.players_params, game_state, obs, state.episode_returns, k_steps)
        state = state._replace(game_state=game_state, obs=obs, episode_returns=returns)
        done = steps["done"][-1]  # episodes end only at a period's end
        round_end = steps["info"]["round_end"][-1]  # so do rounds
        # Values of the final observations, for GAE's time-limit bootstrap at episode ends.
        _, players_final = players_net.apply(state.players_params, state.obs.player_image,
                                             state.obs.player_features)
        principal_final = principal_net.apply(
            state.principal_params, state.obs.principal_image,
            state.obs.principal_features)[1] if learned and r.principal_round_end == "truncated" \
            else jnp.zeros(E, jnp.float32)
        # The finished episodes' figures (SEDTwin.episode_metrics), read by the host
        # where `done`; the players' returns are summed here.
        episodes = {"done": done, "returns": state.episode_returns,
                    "metrics": metrics_v(state.game_state)}
        # Reset finished games once per period (a select under vmap costs one reset).
        fresh_state, fresh_obs = reset_v(jax.random.split(k_reset, E), state.selfishness,
                                         episode_etas(state.inputs, k_eta))
        pick = lambda a, b: jnp.where(done.reshape(done.shape + (1,) * (a.ndim - 1)), a, b)  # noqa: E731
        state = state._replace(game_state=jax.tree_util.tree_map(pick, fresh_state,
                                                                  state.game_state),
                               obs=jax.tree_util.tree_map(pick, fresh_obs, state.obs),
                               episode_returns=pick(jnp.zeros_like(state.episode_returns),
                                                    state.episode_returns))
        principal_reward = steps["principal_reward"].sum(axis=0).astype(jnp.float32)
        out = {"episodes": episodes, "players_final": players_final,
               "principal_final": principal_final, "round_end": round_end,
               "head_entropy": turn.head_entropy, "levels": turn.levels}
        if eta_aware:
            out["eta"] = steps["info"]["eta"][-1]  # the period's (fixed within a round)
            principal_reward = principal_reward / recipes.reward_scale(
                r.principal_reward_scale, out["eta"], n)  # 1 for "none"
        principal_t = Transitions(turn.image, turn.features, turn.levels, turn.logp,
                                  turn.value, principal_reward, done)
        return (state, cap), {"players": steps["t"], "principal": principal_t, **out}

    # ----------------------------------------------------------------- update
    def module_update(net, params, opt_state, tx, batch: dict[str, jax.Array], key, mb: int,
                      num_mb: int, logp_fn, *, num_epochs: int, entropy_coeff: Any,
                      penalty_fn: Callable[[jax.Array], jax.Array] | None = None):
        """PPO epochs over one module's flat batch (rows first). The stats are means over
        the minibatch steps, with the gradient's global norm before clipping.
        `penalty_fn(logits)`: a term added to the loss (the principal's entropy floor)."""
        rows = batch["advantages"].shape[0]

        def loss_fn(p, b):
            logits, value = net.apply(p, b["image"], b["features"])
            logp, entropy = logp_fn(logits, b["action"])
            loss, aux = ppo_loss(logp, b["logp"], b["advantages"], value, b["targets"],
                                 entropy, entropy_coeff=entropy_coeff, **ppo_kwargs)
            if penalty_fn is None:
                return loss, aux
            penalty = penalty_fn(logits)
            return loss + penalty, {**aux, "entropy_floor_penalty": penalty}

        def minibatch_step(carry, index):
            p, o = carry
            b = jax.tree_util.tree_map(lambda x: x[index], batch)
            (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(p, b)
            updates, o = tx.update(grads, o, p)
            return (optax.apply_updates(p, updates), o), {
                "total_loss": loss, **aux, "grad_norm": optax.global_norm(grads)}

        def epoch(carry, k):
            order = jax.random.permutation(k, rows)[: mb * num_mb].reshape(num_mb, mb)
            return jax.lax.scan(minibatch_step, carry, order)

        (params, opt_state), stats = jax.lax.scan(
            epoch, (params, opt_state), jax.random.split(key, num_epochs))
        return params, opt_state, jax.tree_util.tree_map(jnp.mean, stats)

    def flat(x: jax.Array, lead: int) -> jax.Array:
        return x.reshape((-1,) + x.shape[lead:])

    # The stages of `update` (IterationStages), in the order it runs them.
    def rollout(state: RunnerState, key: jax.Array, cap: jax.Array
                ) -> tuple[RunnerState, dict[str, Any]]:
        (state, _), roll = jax.lax.scan(period, (state, cap), jax.random.split(key, P))
        return state, roll

    def time_major(roll: dict[str, Any]) -> Transitions:
        """The players' transitions (P, L, E, n) -> time-major (P*L, E, n)."""
        return jax.tree_util.tree_map(lambda x: x.reshape((P * L,) + x.shape[2:]),
                                      roll["players"])

    def players_batch_of(state: RunnerState, pt: Transitions, players_final: jax.Array
                         ) -> dict[str, jax.Array]:
        _, last_value = players_net.apply(state.players_params, state.obs.player_image,
                                          state.obs.player_features)
        dones = jnp.broadcast_to(pt.done[..., None], pt.reward.shape)
        # Final-observation values sit at each period's last step (P, L, E, n).
        final = jnp.zeros((P, L, E, n), jnp.float32).at[:, -1].set(players_final)
        adv, targets = gae(pt.reward, pt.value, dones, last_value, t.gamma, t.lambda_,
                           final.reshape((P * L, E, n)))
        return {"image": flat(pt.image, 3), "features": flat(pt.features, 3),
                "action": pt.action.reshape(-1), "logp": pt.logp.reshape(-1),
                "advantages": standardize(adv.reshape(-1)), "targets": targets.reshape(-1)}

    def players_batch(state: RunnerState, roll: dict[str, Any]) -> dict[str, jax.Array]:
        return players_batch_of(state, time_major(roll), roll["players_final"])

    def players_train(state: RunnerState, batch: dict[str, jax.Array], key: jax.Array
                      ) -> tuple[Any, Any, dict[str, jax.Array]]:
        return module_update(
            players_net, state.players_params, state.players_opt, players_tx, batch, key,
            p_mb, p_num, networks.categorical_logp_entropy, num_epochs=t.num_epochs,
            entropy_coeff=t.entropy_coeff)

    def principal_batch(state: RunnerState, roll: dict[str, Any]) -> dict[str, jax.Array]:
        qt = roll["principal"]  # (P, E)
        _, q_last = principal_net.apply(state.principal_params, state.obs.principal_image,
                                        state.obs.principal_features)
        q_adv, q_targets = principal_gae(r, qt.reward, qt.value, roll["round_end"],
                                         qt.done, q_last, roll["principal_final"])
        q_adv = q_adv.reshape(-1)
        if r.principal_eta_baseline:
            q_adv = recipes.remove_eta_trend(q_adv, roll["eta"].reshape(-1))
        return {"image": flat(qt.image, 2), "features": flat(qt.features, 2),
                "action": flat(qt.action, 2), "logp": qt.logp.reshape(-1),
                "advantages": standardize(q_adv), "targets": q_targets.reshape(-1)}

    def principal_train(state: RunnerState, batch: dict[str, jax.Array], key: jax.Array,
                        entropy_coeff: jax.Array) -> tuple[Any, Any, dict[str, jax.Array]]:
        return module_update(
            principal_net, state.principal_params, state.principal_opt, principal_tx, batch,
            key, q_mb, q_num,
            lambda logits, a: networks.multi_categorical_logp_entropy(logits, a, num_b),
            num_epochs=r.principal_num_epochs, entropy_coeff=entropy_coeff,
            penalty_fn=entropy_floor if r.principal_entropy_floor > 0 else None)

    def entropy_floor(logits: jax.Array) -> jax.Array:
        return entropy_floor_penalty(networks.head_entropies(logits, num_b),
                                     r.principal_entropy_floor,
                                     r.principal_entropy_floor_weight)

    def update(state: RunnerState) -> tuple[RunnerState, dict[str, Any]]:
        plan = config.schedule(state.iteration)
        cap = plan.tax_cap
        rng, k_roll, k_players, k_principal = jax.random.split(state.rng, 4)
        state, roll = rollout(state._replace(rng=rng), k_roll, cap)
        pt = time_major(roll)
        batch = players_batch_of(state, pt, roll["players_final"])
        players_params, players_opt, players_stats = players_train(state, batch, k_players)
        metrics: dict[str, Any] = {"players": players_stats}
        principal_params, principal_opt = state.principal_params, state.principal_opt
        if learned:
            new_params, new_opt, principal_stats = principal_train(
                state, principal_batch(state, roll), k_principal,
                plan.principal_entropy_coeff)
            # Phase 1 (players alone): the principal's update is discarded, so its
            # parameters, Adam moments and lr schedule start with phase 2.
            keep = lambda new, old: jnp.where(plan.principal_active, new, old)  # noqa: E731
            principal_params = jax.tree_util.tree_map(keep, new_params, principal_params)
            principal_opt = jax.tree_util.tree_map(keep, new_opt, principal_opt)
            change = optax.global_norm(jax.tree_util.tree_map(
                jnp.subtract, principal_params, state.principal_params))
            metrics["principal"] = principal_stats
            metrics["principal_diagnostics"] = {
                "active": plan.principal_active.astype(jnp.float32),
                "samples": jnp.float32(q_rows),
                "updates": jnp.where(plan.principal_active,
                                     jnp.float32(r.principal_num_epochs * q_num), 0.0),
                "lr": jnp.where(plan.principal_active, principal_lr(
                    config, state.iteration - config.phase1_iterations), 0.0),
                "entropy_coeff": plan.principal_entropy_coeff,
                "grad_norm": principal_stats["grad_norm"],
                "param_change": change,
                "head_entropy": roll["head_entropy"].mean(axis=(0, 1)),  # (B,)
                "mean_rate": (jnp.asarray(g.rate_levels, jnp.float32)[roll["levels"]]
                              * cap).mean(axis=(0, 1)),  # (B,) requested x cap
            }
        metrics.update({
            "tax_cap": cap,
            "principal_round_end": roll["round_end"],  # (P, E): its episode ends (terminal)
            "lr": players_lr(config, state.iteration),
            "reward_mean": pt.reward.mean(),
            "principal_reward_mean": roll["principal"].reward.mean(),
            # Per period (P, E, ...): which games finished an episode, and its figures.
            "episodes": roll["episodes"],
        })
        state = state._replace(players_params=players_params, players_opt=players_opt,
                               principal_params=principal_params, principal_opt=principal_opt,
                               iteration=state.iteration + 1)
        return state, metrics

    stages = IterationStages(rollout, players_batch, players_train,
                             principal_batch if learned else None,
                             principal_train if learned else None)
    return TrainFunctions(init, init_networks, init_games, update, players_spec,
                          principal_spec, game, stages)


def init_vmapped(fns: TrainFunctions, keys: jax.Array, selfishness: jax.Array,
                 inputs: RunInputs) -> RunnerState:
    """`fns.init` for a batch of seeds (keys and types stacked), as two compiled
    programs, the networks and then the games, each finished before the next starts.

    Why not one: on CPU (jax 0.10.2, 2-core machine) the single program of an
    eta-heads principal's init, 5 seeds x 8 games, stopped idle every time it ran,
    with every XLA thread waiting (`XLA_FLAGS=
    --xla_cpu_enable_concurrency_optimized_scheduler=false` let it finish; each half
    alone finishes without it). The two stages compute the same values: they share no
    arithmetic, only keys."""
    nets = jax.block_until_ready(jax.jit(jax.vmap(fns.init_networks))(keys))
    return jax.block_until_ready(jax.jit(jax.vmap(fns.init_games, in_axes=(0, 0, None)))(
        nets, selfishness, inputs))


def make_train(config: TwinTrainConfig, game: TrainableGame | None = None
               ) -> Callable[..., tuple[RunnerState, dict[str, Any]]]:
    """`train(rng, selfishness)`: the whole run (num_iterations updates under one
    `lax.scan`), jittable and vmappable over seeds (`jax.vmap(train)(rngs, types)`).
    Returns the final RunnerState and the stacked per-iteration metrics."""
    fns = make_functions(config, game)

    def train(rng: jax.Array, selfishness: jax.Array) -> tuple[RunnerState, dict[str, Any]]:
        state = fns.init(rng, selfishness)
        return jax.lax.scan(lambda s, _: fns.update(s), state, None,
                            length=config.train.num_iterations)

    train.functions = fns  # type: ignore[attr-defined]
    return train


def num_params(params: Any) -> int:
    return int(sum(math.prod(x.shape) for x in jax.tree_util.tree_leaves(params)))
