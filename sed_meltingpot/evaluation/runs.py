"""Loading a training run for evaluation (either engine's checkpoints): its
game settings, the players' types (read by `training.runlog.read_run`), and the
policies built from its modules."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from typing import Any

from sed_meltingpot.evaluation.policies import (
    PLAYER_CHOICES,
    GreedyApplePlayers,
    ModulePlayers,
    ModulePrincipal,
    PlayerPolicy,
    RandomPlayers,
    apple_tile_colour,
)
from sed_meltingpot.game.config import GameConfig
from sed_meltingpot.game.principals import Principal, parse_principal
from sed_meltingpot.runs import runlog


@dataclasses.dataclass(frozen=True)
class EvalSetup:
    """What fixes the environment: the game and the observation format the
    players were trained with."""

    game: GameConfig
    frame_stack: int = 4
    pixels_per_tile: int = 8

    def env_config(self, seed: int, principal: str | None = None) -> dict[str, Any]:
        """`SEDMultiAgentEnv`'s config; `principal` a spec, or None when the
        env is given a `principals.Principal` object."""
        config = {"game": dataclasses.asdict(self.game), "seed": int(seed),
                  "frame_stack": self.frame_stack, "pixels_per_tile": self.pixels_per_tile}
        if principal is not None:
            config["principal"] = principal
        return config


@dataclasses.dataclass
class LoadedRun:
    """A training run restored for evaluation."""

    setup: EvalSetup
    checkpoint: str
    players: Any  # RLModule
    principal: Any | None  # RLModule, None if the run used a scripted principal


def find_run_config(checkpoint: str) -> str:
    """run_config.json of the run a checkpoint belongs to (it sits in the
    run directory, two levels above checkpoints/iter_N)."""
    path = os.path.abspath(checkpoint)
    for _ in range(4):
        candidate = os.path.join(path, runlog.RUN_CONFIG_FILE)
        if os.path.exists(candidate):
            return candidate
        path = os.path.dirname(path)
    raise FileNotFoundError(f"no {runlog.RUN_CONFIG_FILE} in {checkpoint!r} or the folders "
                            "above it")


def load_setup(checkpoint: str) -> EvalSetup:
    """The game (with the run's types) and observation format of a run
    (`runlog.read_run`; ValueError naming the file where its settings are bad)."""
    run = runlog.read_run(os.path.dirname(find_run_config(checkpoint)))
    return EvalSetup(run.game, frame_stack=run.train.frame_stack,
                     pixels_per_tile=run.train.pixels_per_tile)


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the path or the
    file at fault (scripts show it as a one-line usage error)."""


# What `RLModule.save_to_path` writes into a module's folder (the state last).
MODULE_FILES = ("metadata.json", "class_and_ctor_args.pkl")
MODULE_STATE_FILES = ("module_state.pkl", "module_state.msgpack")


def _pickle_is_cut(path: str) -> bool:
    """Whether the pickle file ends before its STOP opcode (truncated) or is not a
    pickle. `pickletools.genops` only parses the opcodes: it builds no object and
    imports nothing, so a damaged or hostile file runs no code here."""
    import pickletools

    try:
        with open(path, "rb") as f:
            for _ in pickletools.genops(f):
                pass
    except Exception:  # noqa: BLE001 - any parse failure marks the file
        return True
    return False


def _unreadable_file(folder: str) -> str | None:
    """Why a module folder does not load, naming the file: one of MODULE_FILES or the
    state missing, a JSON file that does not parse, a pickle cut short. Diagnosed from
    the file names, the JSON and the pickles' opcodes, never by unpickling: a pickle
    runs code as it loads, and this runs on checkpoints that already failed to load."""
    names = set(os.listdir(folder)) if os.path.isdir(folder) else set()
    missing = [n for n in MODULE_FILES if n not in names]
    if not names & set(MODULE_STATE_FILES):
        missing.append(MODULE_STATE_FILES[0])
    if missing:
        return f"{os.path.join(folder, missing[0])} is missing"
    for root, _, files in sorted(os.walk(folder)):
        for name in sorted(files):
            path = os.path.join(root, name)
            if name.endswith(".json"):
                try:
                    with open(path) as f:
                        json.load(f)
                except (OSError, ValueError):
                    return f"{path} is damaged or truncated"
            elif name.endswith(".pkl") and _pickle_is_cut(path):
                return f"{path} is damaged or truncated"
    return None


def _load_module(folder: str):
    from sed_meltingpot.core.optional import extra_import

    with extra_import("rllib", "loading an RLlib checkpoint"):
        from ray.rllib.core.rl_module.rl_module import RLModule

    try:
        # Absolute: RLlib reads checkpoints through pyarrow, which takes a
        # relative path for a URI without a scheme and fails.
        return RLModule.from_checkpoint(os.path.abspath(folder))
    except Exception as e:
        bad = _unreadable_file(folder)
        where = bad or f"{folder} does not load"
        raise CheckpointError(f"checkpoint module {where} ({type(e).__name__}: {e})") from e


def load_run(path: str, *, warn: Callable[[str], None] | None = print) -> LoadedRun:
    """Restores the game settings, types and modules of a run directory or
    checkpoint (the newest complete checkpoint of a run directory: a newer one whose
    save was interrupted is skipped with one `warn` line); CheckpointError
    names what is missing or damaged. Runs of both engines load: a jax-engine
    run's flax networks act through `_forward` like the RLlib modules."""
    from sed_meltingpot.training.rllib.trainer import latest_checkpoint, module_checkpoint

    if not os.path.exists(path):
        raise CheckpointError(f"{path!r} does not exist")
    try:
        checkpoint = latest_checkpoint(path, warn=warn)
        run_config = find_run_config(checkpoint)
    except FileNotFoundError as e:
        raise CheckpointError(f"{e}: give a run folder (with run_config.json and "
                              "checkpoints/iter_N) or one of its checkpoints") from e
    try:
        setup = load_setup(checkpoint)
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{run_config} is damaged or not a run's settings "
                              f"({type(e).__name__}: {e})") from e
    if os.path.exists(os.path.join(checkpoint, runlog.TWIN_CHECKPOINT_MARKER)):
        return _load_jax_run(setup, checkpoint)
    from sed_meltingpot.envs.rllib_env import PLAYERS_MODULE, PRINCIPAL

    players_dir = module_checkpoint(checkpoint, PLAYERS_MODULE)
    if not os.path.isdir(players_dir):
        raise CheckpointError(f"{checkpoint!r} holds no players' module ({players_dir} is "
                              "missing)")
    players = _load_module(players_dir)
    principal_dir = module_checkpoint(checkpoint, PRINCIPAL)
    principal = _load_module(principal_dir) if os.path.isdir(principal_dir) else None
    return LoadedRun(setup, checkpoint, players, principal)


def _load_jax_run(setup: EvalSetup, checkpoint: str) -> LoadedRun:
    """A `scripts/train.py --engine=jax` run: its flax networks (training/jax/checkpoint.py's
    FlaxPolicy, the same inputs as the torch module) act on the Lua substrate's
    observations through ModulePlayers / ModulePrincipal."""
    from sed_meltingpot.training.jax import checkpoint as twin_checkpoint

    try:
        players = twin_checkpoint.load_policy(checkpoint, "players")
        principal = twin_checkpoint.load_policy(checkpoint, "principal")
    except twin_checkpoint.DamagedCheckpointError as e:  # it names the file
        raise CheckpointError(str(e)) from e
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{checkpoint!r}: the jax-engine checkpoint is damaged "
                              f"({type(e).__name__}: {e})") from e
    if players is None:
        raise CheckpointError(f"{checkpoint!r} holds no players' network")
    return LoadedRun(setup, checkpoint, players, principal)


def with_fixed_types(setup: EvalSetup, seed: int) -> EvalSetup:
    """Draws the players' types once from `seed` if the game leaves them to
    each env's seed, so that every principal (and the grid search, which runs
    on other seeds) faces the same players."""
    if setup.game.selfishness is not None:
        return setup
    from sed_meltingpot.core.rewards import sample_selfishness

    sigma = tuple(float(s) for s in sample_selfishness(setup.game.num_players, seed))
    return dataclasses.replace(setup, game=dataclasses.replace(setup.game, selfishness=sigma))


def build_setup(run: LoadedRun | None, overrides: dict[str, Any] | None = None, *,
                seed: int = 0) -> EvalSetup:
    """The run's game (or GameConfig's defaults without a run) with the
    non-None `overrides` applied and the types fixed. Without a run nothing
    reads the pixels, so observations are kept small (1 pixel per tile)."""
    setup = run.setup if run is not None else EvalSetup(GameConfig(), 1, 1)
    changes = {k: v for k, v in (overrides or {}).items() if v is not None}
    if changes.get("num_players", setup.game.num_players) != setup.game.num_players:
        changes.setdefault("selfishness", None)  # the run's types no longer fit
    game = dataclasses.replace(setup.game, **changes).validate()
    from sed_meltingpot.game.sed_game import substrate_config

    substrate_config(game)  # what only the substrate knows (players the map holds)
    return with_fixed_types(dataclasses.replace(setup, game=game), seed)


def make_players(kind: str, run: LoadedRun | None = None, greedy: bool = False,
                 setup: EvalSetup | None = None) -> PlayerPolicy:
    """`checkpoint` (the run's players; needs `run`), `random` or
    `greedy_apples` (GreedyApplePlayers; needs `setup`)."""
    if kind == "random":
        return RandomPlayers()
    if kind == "greedy_apples":
        if setup is None:
            raise ValueError("players 'greedy_apples' need the EvalSetup")
        return GreedyApplePlayers(apple_tile_colour(setup.game), setup.pixels_per_tile)
    if kind == "checkpoint":
        if run is None:
            raise ValueError("players 'checkpoint' need a checkpoint")
        return ModulePlayers(run.players, greedy=greedy)
    raise ValueError(f"players {kind!r} must be one of {PLAYER_CHOICES}")


def make_principal(spec: str, setup: EvalSetup, run: LoadedRun | None = None,
                   greedy: bool = False) -> Principal:
    """The command-line spelling of a principal as one: `trained` (the run's
    learned principal) or a scripted spec (`none`, `fixed:r0,..`, `random`)."""
    if spec == "trained":
        principal = trained_principal(run, setup, greedy)
        if principal is None:
            raise ValueError("principal 'trained' needs a checkpoint of a run that learned a "
                             "principal")
        return principal
    return parse_principal(spec, num_brackets=setup.game.num_brackets,
                           rate_levels=setup.game.rate_levels)


def trained_principal(run: LoadedRun | None, setup: EvalSetup, greedy: bool = False
                      ) -> ModulePrincipal | None:
    """The run's learned principal, or None if it has none."""
    if run is None or run.principal is None:
        return None
    if setup.game.num_players != run.setup.game.num_players:
        raise ValueError(f"the trained principal observes {run.setup.game.num_players} players; "
                         f"the game now has {setup.game.num_players}")
    return ModulePrincipal(run.principal, setup.game, setup.pixels_per_tile, greedy=greedy)

