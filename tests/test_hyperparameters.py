"""Each hyperparameter is declared once, on its config field (issue 11, section 7):
the flags of scripts/train.py, evaluate.py and render_video.py come from the fields,
and a value typed on the command line reaches that field and no other."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest
from absl import flags

from sed_meltingpot import cli
from sed_meltingpot.core.hyperparameters import flag_fields, hyperparameter
from sed_meltingpot.game.config import GameConfig
from sed_meltingpot.runs.train_config import TrainConfig
from sed_meltingpot.training.jax.ppo import TwinTrainConfig
from sed_meltingpot.training.jax.recipe import PrincipalRecipe

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HARNESS = os.path.join(ROOT, "tests", "script_harness.py")


@dataclasses.dataclass(frozen=True)
class Toy:
    count: int = hyperparameter(3, "A count.", lower_bound=1, upper_bound=9)
    rate: float = hyperparameter(0.5, "A rate.", lower_bound=0.0)
    on: bool = hyperparameter(True, "A switch.")
    name: str = hyperparameter("a", "A name.")
    where: str | None = hyperparameter(None, "A place.")
    size: int = hyperparameter(128, "Preset-dependent.", preset=True)
    hidden_detail: int = 7  # not a hyperparameter: no flag


def toy_flags(defaults: str = "config") -> tuple[flags.FlagValues, tuple[str, ...]]:
    values = flags.FlagValues()
    names = cli.define_config_flags(Toy, defaults=defaults, flag_values=values)
    return values, names


def test_flags_come_from_the_fields_with_their_types_defaults_and_bounds():
    values, names = toy_flags()
    assert names == ("count", "rate", "on", "name", "where", "size")
    values(["prog"])
    assert (values.count, values.rate, values.on, values.name, values.where) == (
        3, 0.5, True, "a", None)
    assert values.size is None  # the preset decides
    assert "Preset-dependent. (default: the preset's; 128" in values["size"].help
    values(["prog", "--count=9", "--rate=0.25", "--noon", "--name=b", "--where=x",
            "--size=64"])
    toy = cli.replace_from_flags(Toy(), values, names)
    assert toy == Toy(count=9, rate=0.25, on=False, name="b", where="x", size=64)
    for bad in ("--count=0", "--count=10", "--rate=-0.1", "--count=2.5"):
        fresh, _ = toy_flags()
        with pytest.raises(flags.IllegalFlagValueError):
            fresh(["prog", bad])


def test_flags_left_unset_keep_the_config_and_none_defaults_override_nothing():
    values, names = toy_flags(defaults="none")
    values(["prog", "--rate=0.75"])
    assert all(getattr(values, n) is None for n in names if n != "rate")
    base = Toy(count=5, name="from_checkpoint")
    assert cli.replace_from_flags(base, values, names) == dataclasses.replace(base, rate=0.75)
    assert "(default: the checkpoint's, else 3)" in values["count"].help


#: A value other than the default for every hyperparameter of train.py, consistent
#: with each other. A new hyperparameter field makes the coverage test fail until
#: it is listed here (and so checked end to end).
RLLIB_VALUES = {
    "num_players": 3, "episode_length": 400, "rounds_per_episode": 2, "tax_period": 25,
    "voting_rule": "median", "welfare": "utilitarian", "welfare_on": "taxed", "map": "large",
    "num_iterations": 7, "seed": 3, "principal": "random", "rollout_fragment_length": 100,
    "train_batch_size": 600, "num_env_runners": 3, "num_envs_per_env_runner": 2,
    "lr": 0.001, "minibatch_size": 64, "principal_minibatch_size": 8, "num_epochs": 3,
    "frame_stack": 2, "pixels_per_tile": 4, "tax_cap_anneal": False, "tax_cap_start": 0.2,
    "tax_cap_fraction": 0.3, "num_gpus": 1,
}
JAX_VALUES = {"num_envs": 5, "dtype": "bfloat16"}
#: TrainConfig's fields that only the jax engine reads (train.py refuses them with rllib).
JAX_TRAIN_VALUES = {"num_minibatches": 4}
#: The jax engine's principal recipe (training/jax/recipe.py).
RECIPE_VALUES = {
    "principal_lr": 0.003, "principal_lr_schedule": "linear", "principal_entropy_coeff": 0.1,
    "principal_entropy_final": 0.01, "principal_entropy_anneal_fraction": 0.25,
    "principal_num_epochs": 5, "principal_gamma": 0.9, "principal_lambda": 0.5,
    "principal_round_end": "truncated", "players_only_fraction": 0.4,
    "phase2_players_lr_scale": 0.5, "principal_init_no_tax": 0.9, "eta_sampling": "0,0.5,1",
    "principal_reward_scale": "per_player", "principal_eta_baseline": True,
    "principal_eta_heads": True, "principal_value_net": "separate",
    "principal_entropy_floor": 1.5, "principal_entropy_floor_weight": 2.0,
    "principal_init_level": 10, "scripted_curriculum": True,
}


def test_every_hyperparameter_field_is_exercised_below():
    declared = {f.name for cls in (GameConfig, TrainConfig) for f, _ in flag_fields(cls)}
    assert declared == set(RLLIB_VALUES) | set(JAX_TRAIN_VALUES)
    assert {f.name for f, _ in flag_fields(TwinTrainConfig)} == set(JAX_VALUES)
    assert {f.name for f, _ in flag_fields(PrincipalRecipe)} == set(RECIPE_VALUES)
    for cls, values in ((GameConfig, RLLIB_VALUES),
                        (TrainConfig, {**RLLIB_VALUES, **JAX_TRAIN_VALUES}),
                        (TwinTrainConfig, JAX_VALUES), (PrincipalRecipe, RECIPE_VALUES)):
        for f, _ in flag_fields(cls):
            assert values[f.name] != f.default, f.name


def _argv(values: dict) -> list[str]:
    out = []
    for name, value in values.items():
        out.append(f"--{name}" if value is True else f"--no{name}" if value is False
                   else f"--{name}={value}")
    return out


def test_train_py_hands_every_flag_to_its_field(tmp_path):
    """scripts/train.py --dry_run prints the configs it would train with."""
    argvs = [_argv(RLLIB_VALUES) + [f"--output_dir={tmp_path / 'rllib'}"],
             _argv({k: v for k, v in RLLIB_VALUES.items()
                    if k not in ("num_env_runners", "num_envs_per_env_runner", "num_gpus",
                                 "train_batch_size", "pixels_per_tile")})
             + ["--pixels_per_tile=1"] + _argv(JAX_VALUES) + _argv(JAX_TRAIN_VALUES)
             + _argv(RECIPE_VALUES)
             + ["--engine=jax", f"--output_dir={tmp_path / 'jax'}"]]
    proc = subprocess.run([sys.executable, HARNESS, os.path.join(ROOT, "scripts", "train.py")],
                          input=json.dumps(argvs), capture_output=True, text=True, cwd=ROOT,
                          timeout=600)
    results = json.loads(proc.stdout.split("@@RESULTS@@")[-1])
    assert [r["outcome"] for r in results] == ["ok", "ok"], results
    rllib_out, jax_out = results[0]["message"], results[1]["message"]
    for name, value in RLLIB_VALUES.items():
        assert f"{name}={value!r}" in rllib_out, (name, rllib_out)
    for name, value in JAX_VALUES.items():
        assert f"'{name}': {value!r}" in jax_out, (name, jax_out)
    for name, value in {**RECIPE_VALUES, **JAX_TRAIN_VALUES}.items():
        assert f"{name}={value!r}" in jax_out, (name, jax_out)
