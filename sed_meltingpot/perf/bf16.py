"""bfloat16 against float32 on one fixed batch: is a bf16 run of the jax engine's
players network close enough to the f32 one to train on?

The same f32 parameters compute the logits, values, PPO loss and loss gradient in
float32 and in bfloat16 (`networks.NetworkSpec.dtype`); each quantity passes when
max |f32 - bf16| <= atol + rtol x max |f32| (`compare`). Checked on the device by
`scripts/gpu_check.py`, the one check there that can fail.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

# (0.4% per rounding); outputs agreed within 0.7% of their max on CPU, the loss
# gradient (bf16 backward products) within 2.7%.
BF16_RTOL, BF16_GRAD_RTOL, BF16_ATOL = 0.02, 0.1, 1e-5



@dataclasses.dataclass
class Comparison:
    """bf16 against f32 for one quantity: passed when max |f32 - bf16| <= tolerance =
    atol + rtol x max |f32| (both finite)."""

    name: str
    values: int  # how many numbers were compared
    max_abs_diff: float
    tolerance: float
    passed: bool


def compare(name: str, reference: Any, candidate: Any, rtol: float, atol: float
            ) -> Comparison:
    """`Comparison` of two same-shape arrays (candidate: the bf16 run's)."""
    import numpy as np

    ref = np.asarray(reference, np.float64)
    cand = np.asarray(candidate, np.float64)
    if ref.shape != cand.shape:
        raise ValueError(f"{name}: shapes differ, {ref.shape} vs {cand.shape}")
    with np.errstate(invalid="ignore"):  # inf - inf: NaN, a failed check
        diff = float(np.max(np.abs(ref - cand))) if ref.size else 0.0
    tolerance = atol + rtol * (float(np.max(np.abs(ref))) if ref.size else 0.0)
    passed = bool(np.isfinite(ref).all() and np.isfinite(cand).all() and diff <= tolerance)
    return Comparison(name, int(ref.size), diff, tolerance, passed)



def bf16_check(preset: str, args: argparse.Namespace) -> list[Comparison]:
    """The players network of `preset` on one fixed batch (the observations of
    --bf16_games fresh games, actions drawn from the f32 policy, fixed advantages and
    targets), its f32 parameters computing in float32 and in bfloat16."""
    import jax
    import jax.numpy as jnp

    from sed_meltingpot.game.config import GameConfig
    from sed_meltingpot.runs.train_config import TrainConfig
    from sed_meltingpot.runs.train_config import preset as preset_overrides
    from sed_meltingpot.training.jax import networks, ppo

    config = ppo.TwinTrainConfig(
        game=GameConfig(), train=TrainConfig(**preset_overrides(preset)),
        num_envs=args.bf16_games, rollout_length=args.rollout)
    t, n = config.train, config.game.num_players
    game = ppo.make_game(config)
    keys = jax.random.split(jax.random.PRNGKey(args.seed), args.bf16_games + 3)
    _, obs = jax.jit(jax.vmap(game.reset, in_axes=(0, None)))(
        keys[3:], jnp.full(n, 0.5, jnp.float32))
    image = obs.player_image.reshape((-1,) + obs.player_image.shape[2:])
    features = obs.player_features.reshape((-1, obs.player_features.shape[-1]))
    rows = image.shape[0]
    spec32, _ = ppo.network_specs(config, obs)
    spec16 = dataclasses.replace(spec32, dtype="bfloat16")

    @jax.jit
    def fixed_batch(keys: Any) -> tuple[Any, dict[str, Any]]:
        """f32 parameters, actions from the f32 policy, old log-probs near its own,
        standardised advantages and value targets: all fixed by the seed."""
        params = networks.init_params(spec32, keys[0])
        logits, _ = networks.ImageFeaturesNet(spec32).apply(params, image, features)
        actions = jax.random.categorical(keys[1], logits, axis=-1)
        logp, _ = networks.categorical_logp_entropy(logits, actions)
        noise = jax.random.normal(keys[2], (3, rows))
        return params, {"actions": actions, "old_logp": logp + 0.1 * noise[0],
                        "advantages": ppo.standardize(noise[1]), "targets": noise[2] + 1.0}

    params, batch = fixed_batch(keys[:3])

    def outputs(spec: Any) -> dict[str, Any]:
        net = networks.ImageFeaturesNet(spec)

        def loss_fn(p: Any, image: Any, features: Any, batch: dict[str, Any]
                    ) -> tuple[Any, tuple[Any, Any]]:
            logits, value = net.apply(p, image, features)
            logp, entropy = networks.categorical_logp_entropy(logits, batch["actions"])
            loss, _ = ppo.ppo_loss(logp, batch["old_logp"], batch["advantages"], value,
                                   batch["targets"], entropy, clip=t.clip_param,
                                   vf_coeff=t.vf_loss_coeff, entropy_coeff=t.entropy_coeff)
            return loss, (logits, value)

        (loss, (logits, value)), grads = jax.jit(
            jax.value_and_grad(loss_fn, has_aux=True))(params, image, features, batch)
        flat = jnp.concatenate([g.reshape(-1) for g in jax.tree_util.tree_leaves(grads)])
        return {"logits": logits, "value": value, "loss": loss[None], "gradient": flat}

    f32, b16 = outputs(spec32), outputs(spec16)
    return [compare(f"{preset} preset, {name} ({rows} rows)", f32[name], b16[name],
                    args.bf16_grad_rtol if name == "gradient" else args.bf16_rtol,
                    args.bf16_atol)
            for name in ("logits", "value", "loss", "gradient")]


