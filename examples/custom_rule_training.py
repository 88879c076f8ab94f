"""A custom voting rule, registered by name and used in a short training run (jax engine).

Shows: `voting.register_voting_rule` (paper Section 3: the voting mechanism f maps the
players' reported types to the principal's objective), a `GameConfig` that names the
rule, and the JAX trainer's Python API (`training.jax.trainer.train`, what
`scripts/train.py --engine=jax` calls) training players and principal on the JAX twin.
The jax engine runs a custom rule once on the host, so the run fixes the players' types
(`GameConfig.selfishness`); custom *welfare* functions have no JAX form and need the
Lua game (`SEDGame`) instead.
Needs: the base install only (`pip install .`): JAX, flax, optax.
Run:   python examples/custom_rule_training.py [--output_dir=DIR]
       (about 1 min on 2 CPU cores, 25 s once the compile is cached)
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np

from sed_meltingpot.core import voting
from sed_meltingpot.game.config import GameConfig
from sed_meltingpot.runs.train_config import TrainConfig, preset
from sed_meltingpot.training.jax import trainer


def trimmed_mean(selfishness: np.ndarray) -> float:
    """eta = the mean of the types without the most and the least selfish player: one
    extreme voter cannot drag the objective (a rule of our own, not the paper's)."""
    s = np.sort(np.asarray(selfishness, dtype=float))
    return float(s[1:-1].mean()) if len(s) > 2 else float(s.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", default=None, help="default: a new temporary folder")
    args = parser.parse_args()
    output_dir = args.output_dir or tempfile.mkdtemp(prefix="sed_custom_rule_")

    voting.register_voting_rule("trimmed_mean", trimmed_mean)
    types = (0.95, 0.6, 0.5, 0.05)
    game = GameConfig(num_players=4, episode_length=200, tax_period=50,
                      selfishness=types, voting_rule="trimmed_mean")
    print(f"types {list(types)}: trimmed_mean eta {voting.vote('trimmed_mean', types):.4f}, "
          f"mean eta {voting.mean_vote(types):.4f}")
    # A tiny budget: 8 games x 200 steps per iteration (one episode each), 6 iterations.
    config = TrainConfig(num_iterations=6, rollout_fragment_length=200, frame_stack=1,
                         **preset("fast"))
    records: list[dict] = []
    trainer.enable_compilation_cache()  # a rerun skips the compile
    summary = trainer.train(game, config, output_dir, num_envs=8, overwrite=True,
                            checkpoint_every=0, on_iteration=records.append,
                            print_fn=lambda line: None)
    for r in records:
        print(f"iteration {r['iteration']}: eta {r['eta']:.4f} objective "
              f"{r['objective']:.4f} utilitarian {r['utilitarian']:.4f} egalitarian "
              f"{r['egalitarian']:.4f}")
    print(f"run folder: {output_dir} (progress.jsonl, summary.json, checkpoints/)")
    checkpoint = os.path.relpath(summary["checkpoint"], output_dir)
    print(f"summary: eta {summary['eta']:.4f}, checkpoint {checkpoint}")


if __name__ == "__main__":
    main()
