"""Evaluate principals against baselines with frozen players.

A researcher compares what a trained principal does with what simple tax
policies do, on the same game with the same players. This module:

* loads a training run's checkpoint (`load_run`): its game settings, the
  players' types, the players' module and, if the run learned one, the
  principal's module;
* plays episodes through `SEDMultiAgentEnv` (`run_episode`), so players see
  exactly the observations they were trained on, and reads every metric from
  the game itself (`SEDGame.episode_metrics`, which uses
  `sed_meltingpot.welfare`); nothing the game records is recomputed here;
* evaluates named principals (trained, no tax, fixed schedules, random and
  the best fixed schedule found by `grid_search` against the frozen players)
  and summarises each metric by its mean and a 95% Student-t confidence
  interval over episodes (`summarize`, `student_t_quantile`);
* writes CSV and JSON and formats a table.

The grid search runs on seeds disjoint from the final evaluation's, so the
best schedule's reported numbers are not inflated by picking the luckiest.
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import math
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import numpy as np

from sed_meltingpot import tax
from sed_meltingpot.config import GameConfig
from sed_meltingpot.principals import FixedRates, Principal
from sed_meltingpot.substrates import apple_picking_data

NUM_ACTIONS = apple_picking_data.NUM_ACTIONS  # Melting Pot's action set
PRINCIPAL_ID = "principal"  # sed_meltingpot.rllib_env.PRINCIPAL, without importing ray
# Seeds of the grid search are offset from the evaluation's, so the best
# schedule is judged on episodes it was not picked on.
SEARCH_SEED_OFFSET = 1_000_003

#: Scalar metrics reported per principal, in table order; all come from
#: `SEDGame.episode_metrics()` (rates per bracket are added as rate_b<k>).
METRICS = ("objective", "eta", "utilitarian", "egalitarian", "nash_welfare", "productivity",
           "equality", "income_equality", "sustainability", "peace", "tax_revenue",
           "principal_return")
METRIC_LABELS = {
    "objective": "W_eta", "eta": "eta", "utilitarian": "utilit.", "egalitarian": "egalit.",
    "nash_welfare": "Nash", "productivity": "apples", "equality": "equality",
    "income_equality": "post-tax eq.", "sustainability": "sustain.", "peace": "peace",
    "tax_revenue": "tax rev.", "principal_return": "princ. ret.",
}


# --------------------------------------------------------------- statistics
def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b), the CDF of a Beta(a, b) variable (Numerical Recipes 6.4)."""
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"x={x!r} is outside [0, 1]")
    if x in (0.0, 1.0):
        return x
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def student_t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with `df` degrees of freedom."""
    if df <= 0:
        raise ValueError(f"df={df!r} must be > 0")
    tail = 0.5 * regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def student_t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t (scipy is not a dependency): the CDF,
    exact through the incomplete beta function, inverted by bisection."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p={p!r} must be in (0, 1)")
    if df <= 0:
        raise ValueError(f"df={df!r} must be > 0")
    if p < 0.5:
        return -student_t_quantile(1.0 - p, df)
    if p == 0.5:
        return 0.0
    lo, hi = 0.0, 1.0
    while student_t_cdf(hi, df) < p:
        lo, hi = hi, 2.0 * hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if student_t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


@dataclasses.dataclass(frozen=True)
class Stat:
    """Mean of a metric over episodes and its 95% Student-t interval
    (NaN bounds with fewer than two finite values)."""

    mean: float
    ci_low: float
    ci_high: float
    std: float
    n: int

    @property
    def half_width(self) -> float:
        return 0.5 * (self.ci_high - self.ci_low)


def mean_ci(values: Iterable[float], confidence: float = 0.95) -> Stat:
    """Mean and t-interval of the finite values (a metric can be NaN in an
    episode, e.g. sustainability when nobody ate an apple)."""
    x = np.asarray([float(v) for v in values], dtype=float)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return Stat(math.nan, math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if n == 1:
        return Stat(mean, math.nan, math.nan, math.nan, 1)
    std = float(x.std(ddof=1))
    if np.ptp(x) <= 1e-12 * max(1.0, abs(mean)):
        std = 0.0  # equal up to rounding: no spread, not a spread of 1e-17
    half = student_t_quantile(0.5 + confidence / 2.0, n - 1) * std / math.sqrt(n)
    return Stat(mean, mean - half, mean + half, std, n)


def episode_scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """The reported scalars of one `SEDGame.episode_metrics()` dict."""
    out = {key: float(metrics[key]) for key in METRICS}
    for b, rate in enumerate(np.asarray(metrics["mean_rates"], dtype=float)):
        out[f"rate_b{b}"] = float(rate)
    return out


def summarize(episodes: Sequence[dict[str, float]], confidence: float = 0.95
              ) -> dict[str, Stat]:
    """Per metric: mean and confidence interval over episodes."""
    keys = list(episodes[0]) if episodes else []
    return {k: mean_ci((e[k] for e in episodes), confidence) for k in keys}


# ---------------------------------------------------------------- policies
class PlayerPolicy(Protocol):
    """Acts for all players at once (they share one policy in training)."""

    def reset(self, seed: int) -> None: ...

    def act(self, observations: dict[str, dict[str, np.ndarray]]) -> dict[str, int]: ...


class RandomPlayers:
    """Uniformly random actions: the game before any training."""

    def __init__(self, num_actions: int = NUM_ACTIONS) -> None:
        self.num_actions = num_actions
        self._rng = np.random.default_rng(0)

    def reset(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    def act(self, observations: dict[str, dict[str, np.ndarray]]) -> dict[str, int]:
        return {a: int(self._rng.integers(self.num_actions)) for a in observations}


class ScriptedPlayers:
    """Actions from `fn(step, player_index, observation, rng) -> action`."""

    def __init__(self, fn: Callable[[int, int, dict[str, np.ndarray], np.random.Generator], int]
                 ) -> None:
        self.fn = fn
        self._step = 0
        self._rng = np.random.default_rng(0)

    def reset(self, seed: int) -> None:
        self._step = 0
        self._rng = np.random.default_rng(seed)

    def act(self, observations: dict[str, dict[str, np.ndarray]]) -> dict[str, int]:
        actions = {a: int(self.fn(self._step, int(a.rsplit("_", 1)[1]), o, self._rng))
                   for a, o in observations.items()}
        self._step += 1
        return actions


class GreedyApplePlayers:
    """Scripted baseline that harvests greedily: each player steps towards the
    nearest apple in its own view, else wanders; it never zaps. With it the
    tax can be studied before any training (random players barely eat).

    Apples are recognised by their tile's mean colour, which does not change
    when the egocentric view rotates; `apple_colour` is measured from the
    substrate (`apple_tile_colour`).
    """

    FORWARD, BACKWARD, LEFT, RIGHT, TURN_LEFT, TURN_RIGHT = (
        apple_picking_data.ACTION_NAMES.index(name) for name in (
            "FORWARD", "BACKWARD", "STEP_LEFT", "STEP_RIGHT", "TURN_LEFT", "TURN_RIGHT"))

    def __init__(self, apple_colour: Sequence[float], pixels_per_tile: int,
                 view_tiles: tuple[int, int] = apple_picking_data.VIEW_SHAPE,
                 own_tile: tuple[int, int] = apple_picking_data.VIEW_SELF_TILE,
                 tolerance: float = 6.0, explore: float = 0.1) -> None:
        self.apple_colour = np.asarray(apple_colour, dtype=float)
        self.pixels_per_tile, self.view_tiles, self.own_tile = pixels_per_tile, view_tiles, own_tile
        self.tolerance, self.explore = tolerance, explore
        self._rng = np.random.default_rng(0)

    def reset(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    def apples_in_view(self, image: np.ndarray) -> np.ndarray:
        """(rows, cols) of apple tiles in the newest frame of a stacked view."""
        p, (h, w) = self.pixels_per_tile, self.view_tiles
        frame = image[..., -3:].astype(float).reshape(h, p, w, p, 3).mean(axis=(1, 3))
        return np.argwhere(np.abs(frame - self.apple_colour).max(axis=-1) <= self.tolerance)

    def _action(self, image: np.ndarray) -> int:
        if self._rng.random() < self.explore:
            return int(self._rng.integers(self.FORWARD, self.TURN_RIGHT + 1))  # moves, turns
        apples = self.apples_in_view(image)
        if not len(apples):
            return int(self._rng.choice([self.FORWARD] * 3 + [self.TURN_LEFT, self.TURN_RIGHT]))
        offsets = apples - np.asarray(self.own_tile)
        dr, dc = offsets[np.abs(offsets).sum(axis=1).argmin()]
        if abs(dr) >= abs(dc):
            return self.FORWARD if dr < 0 else self.BACKWARD
        return self.LEFT if dc < 0 else self.RIGHT

    def act(self, observations: dict[str, dict[str, np.ndarray]]) -> dict[str, int]:
        return {a: self._action(o["image"]) for a, o in observations.items()}


def apple_tile_colour(game: GameConfig) -> np.ndarray:
    """Mean RGB of a tile holding an apple, read from WORLD.RGB at reset at the
    map's apple cells ('A')."""
    from sed_meltingpot import substrate as substrate_lib

    overrides: dict[str, Any] = {"map": game.map} if game.map is not None else {}
    config = substrate_lib.get_config(game.substrate, num_players=game.num_players, **overrides)
    env = substrate_lib.build_from_config(config, seed=0)
    try:
        world = env.reset().observation[0]["WORLD.RGB"].astype(float)
    finally:
        env.close()
    rows = config.ascii_map.strip("\n").split("\n")
    sprite = world.shape[0] // len(rows)
    tiles = world.reshape(len(rows), sprite, -1, sprite, 3).mean(axis=(1, 3))
    cells = [(r, c) for r, row in enumerate(rows) for c, ch in enumerate(row) if ch == "A"]
    if not cells:
        raise ValueError("the map has no apples ('A') to measure the apple colour from")
    return np.mean([tiles[r, c] for r, c in cells], axis=0)


def _softmax_sample(logits: np.ndarray, rng: np.random.Generator, greedy: bool) -> np.ndarray:
    """One index per row of `logits` (argmax if greedy)."""
    if greedy:
        return logits.argmax(axis=-1)
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    p = z / z.sum(axis=-1, keepdims=True)
    u = rng.random(p.shape[:-1] + (1,))
    return np.minimum((p.cumsum(axis=-1) < u).sum(axis=-1), p.shape[-1] - 1)


def _forward(module: Any, observations: Sequence[dict[str, np.ndarray]]) -> np.ndarray:
    if hasattr(module, "action_logits"):  # a jax-engine network (twin/checkpoint.FlaxPolicy)
        return module.action_logits(list(observations))
    import torch

    batch = {"obs": {
        "image": torch.from_numpy(np.stack([o["image"] for o in observations])),
        "features": torch.from_numpy(np.stack([o["features"] for o in observations])),
    }}
    with torch.no_grad():
        out = module.forward_inference(batch)["action_dist_inputs"]
    return out.detach().cpu().numpy().astype(np.float64)


class ModulePlayers:
    """The trained players' shared RLModule; samples its policy like in
    training unless `greedy` (argmax)."""

    def __init__(self, module: Any, greedy: bool = False) -> None:
        self.module, self.greedy = module, greedy
        self._rng = np.random.default_rng(0)

    def reset(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    def act(self, observations: dict[str, dict[str, np.ndarray]]) -> dict[str, int]:
        agents = list(observations)
        logits = _forward(self.module, [observations[a] for a in agents])
        actions = _softmax_sample(logits, self._rng, self.greedy)
        return {a: int(x) for a, x in zip(agents, actions, strict=True)}


class ModulePrincipal:
    """The trained principal's RLModule: one rate level per bracket."""

    def __init__(self, module: Any, num_brackets: int, num_levels: int,
                 greedy: bool = False) -> None:
        self.module, self.greedy = module, greedy
        self.num_brackets, self.num_levels = num_brackets, num_levels
        self._rng = np.random.default_rng(0)

    def reset(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        logits = _forward(self.module, [observation])[0]
        if logits.shape != (self.num_brackets * self.num_levels,):
            raise ValueError(f"principal module gives {logits.shape[0]} logits; expected "
                             f"{self.num_brackets} brackets x {self.num_levels} levels")
        logits = logits.reshape(self.num_brackets, self.num_levels)
        return _softmax_sample(logits, self._rng, self.greedy).astype(np.int64)


# ------------------------------------------------------------ loading runs
@dataclasses.dataclass(frozen=True)
class EvalSetup:
    """What fixes the environment: the game and the observation format the
    players were trained with."""

    game: GameConfig
    frame_stack: int = 4
    pixels_per_tile: int = 8

    def env_config(self, principal: str, seed: int) -> dict[str, Any]:
        return {"game": dataclasses.asdict(self.game), "seed": int(seed),
                "principal": principal, "frame_stack": self.frame_stack,
                "pixels_per_tile": self.pixels_per_tile}


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
        candidate = os.path.join(path, "run_config.json")
        if os.path.exists(candidate):
            return candidate
        path = os.path.dirname(path)
    raise FileNotFoundError(f"no run_config.json in {checkpoint!r} or the folders above it")


def load_setup(checkpoint: str) -> EvalSetup:
    """The game (with the run's types) and observation format of a run."""
    from sed_meltingpot.rllib_env import game_config_from_dict

    with open(find_run_config(checkpoint)) as f:
        run = json.load(f)
    # run_config.json stores non-finite floats (divergence_delta = inf) as
    # null: a null where GameConfig's default is not None means that default.
    defaults = {f.name: f.default for f in dataclasses.fields(GameConfig)}
    game_values = {k: v for k, v in run["game"].items()
                   if v is not None or defaults.get(k, None) is None}
    game_values["selfishness"] = run.get("selfishness") or game_values.get("selfishness")
    train = run.get("train", {})
    return EvalSetup(game_config_from_dict(game_values).validate(),
                     frame_stack=int(train.get("frame_stack", 4)),
                     pixels_per_tile=int(train.get("pixels_per_tile", 8)))


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the path or the
    file at fault (scripts show it as a one-line usage error)."""


def _unreadable_file(folder: str) -> str | None:
    """The first file under `folder` that does not load (pickle, JSON), so
    that a truncated checkpoint is reported by name."""
    import pickle

    for root, _, files in sorted(os.walk(folder)):
        for name in sorted(files):
            path = os.path.join(root, name)
            try:
                if name.endswith(".json"):
                    with open(path) as f:
                        json.load(f)
                elif name.endswith(".pkl"):
                    with open(path, "rb") as f:
                        pickle.load(f)
            except Exception:  # noqa: BLE001 - any failure to load marks the file
                return path
    return None


def _load_module(folder: str):
    from ray.rllib.core.rl_module.rl_module import RLModule

    try:
        # Absolute: RLlib reads checkpoints through pyarrow, which takes a
        # relative path for a URI without a scheme and fails.
        return RLModule.from_checkpoint(os.path.abspath(folder))
    except Exception as e:
        bad = _unreadable_file(folder)
        where = f"{bad} is damaged or truncated" if bad else f"{folder} does not load"
        raise CheckpointError(f"checkpoint module {where} ({type(e).__name__}: {e})") from e


def load_run(path: str) -> LoadedRun:
    """Restores the game settings, types and modules of a run directory or
    checkpoint (the newest checkpoint of a run directory); CheckpointError
    names what is missing or damaged. Runs of both engines load: a jax-engine
    run's flax networks act through `_forward` like the RLlib modules."""
    from sed_meltingpot.training.trainer import latest_checkpoint, module_checkpoint

    if not os.path.exists(path):
        raise CheckpointError(f"{path!r} does not exist")
    try:
        checkpoint = latest_checkpoint(path)
        run_config = find_run_config(checkpoint)
    except FileNotFoundError as e:
        raise CheckpointError(f"{e}: give a run folder (with run_config.json and "
                              "checkpoints/iter_N) or one of its checkpoints") from e
    try:
        setup = load_setup(checkpoint)
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{run_config} is damaged or not a run's settings "
                              f"({type(e).__name__}: {e})") from e
    if os.path.exists(os.path.join(checkpoint, "twin_checkpoint.json")):
        return _load_jax_run(setup, checkpoint)
    from sed_meltingpot.rllib_env import PLAYERS_MODULE, PRINCIPAL

    players_dir = module_checkpoint(checkpoint, PLAYERS_MODULE)
    if not os.path.isdir(players_dir):
        raise CheckpointError(f"{checkpoint!r} holds no players' module ({players_dir} is "
                              "missing)")
    players = _load_module(players_dir)
    principal_dir = module_checkpoint(checkpoint, PRINCIPAL)
    principal = _load_module(principal_dir) if os.path.isdir(principal_dir) else None
    return LoadedRun(setup, checkpoint, players, principal)


def _load_jax_run(setup: EvalSetup, checkpoint: str) -> LoadedRun:
    """A `scripts/train.py --engine=jax` run: its flax networks (twin/checkpoint.py's
    FlaxPolicy, the same inputs as the torch module) act on the Lua substrate's
    observations through ModulePlayers / ModulePrincipal."""
    from sed_meltingpot.twin import checkpoint as twin_checkpoint

    try:
        players = twin_checkpoint.load_policy(checkpoint, "players")
        principal = twin_checkpoint.load_policy(checkpoint, "principal")
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
    from sed_meltingpot.rewards import sample_selfishness

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
    from sed_meltingpot.game import substrate_config

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


def trained_principal(run: LoadedRun | None, setup: EvalSetup, greedy: bool = False
                      ) -> ModulePrincipal | None:
    """The run's learned principal, or None if it has none."""
    if run is None or run.principal is None:
        return None
    if setup.game.num_players != run.setup.game.num_players:
        raise ValueError(f"the trained principal observes {run.setup.game.num_players} players; "
                         f"the game now has {setup.game.num_players}")
    return ModulePrincipal(run.principal, setup.game.num_brackets, setup.game.num_rate_levels,
                           greedy=greedy)


# ---------------------------------------------------------------- episodes
StepHook = Callable[[Any, Any], None]  # (SEDGame, StepResult) after each game step


def make_env(setup: EvalSetup, principal: str | Principal, seed: int,
             on_step: StepHook | None = None) -> Any:
    """A `SEDMultiAgentEnv` for `principal`: "learned" (an agent acts in the
    principal's turn), a spec ("none", "fixed:..", "random") or any callable
    `Principal` (asked for rates at each period start, like the env's own
    scripted principals)."""
    from sed_meltingpot.rllib_env import SEDMultiAgentEnv

    spec = principal if isinstance(principal, str) else "none"
    env = SEDMultiAgentEnv(setup.env_config(spec, seed))
    if not isinstance(principal, str):
        env.scripted_principal = principal
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


# ------------------------------------------------------------- principals
@dataclasses.dataclass
class PrincipalResult:
    """Per-episode scalars and their summary for one principal."""

    name: str
    description: str
    episodes: list[dict[str, float]]
    summary: dict[str, Stat]


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


def rate_grid(resolution: int, num_brackets: int = 3) -> list[tuple[float, ...]]:
    """All schedules with `resolution` evenly spaced rates in [0, 1] per
    bracket (resolution 2: {0, 1}^B)."""
    if resolution < 2:
        raise ValueError(f"grid resolution={resolution} must be >= 2 (0 and 1 at least)")
    levels = [i / (resolution - 1) for i in range(resolution)]
    return list(itertools.product(levels, repeat=num_brackets))


@dataclasses.dataclass
class SearchResult:
    best_rates: tuple[float, ...]
    best_value: float
    objective: str
    table: list[tuple[tuple[float, ...], float]]  # (schedule, mean objective), grid order


def grid_search(evaluate: Callable[[tuple[float, ...]], Sequence[dict[str, float]]],
                schedules: Sequence[tuple[float, ...]], objective: str = "objective",
                progress: Callable[[str], None] | None = None) -> SearchResult:
    """The fixed schedule with the highest mean `objective` over the episodes
    `evaluate(schedule)` returns; ties go to the first in grid order."""
    table: list[tuple[tuple[float, ...], float]] = []
    for i, rates in enumerate(schedules):
        episodes = evaluate(tuple(rates))
        value = mean_ci(e[objective] for e in episodes).mean
        table.append((tuple(rates), value))
        if progress:
            progress(f"search {i + 1}/{len(schedules)}: rates {_fmt_rates(rates)} "
                     f"{objective} {value:.3f}")
    finite = [(r, v) for r, v in table if math.isfinite(v)]
    if not finite:
        raise ValueError(f"no schedule gave a finite {objective!r}")
    best_rates, best_value = max(finite, key=lambda rv: rv[1])  # max keeps the first of ties
    return SearchResult(best_rates, best_value, objective, table)


def _fmt_rates(rates: Sequence[float]) -> str:
    return "(" + ",".join(f"{r:.3g}" for r in rates) + ")"


PLAYER_CHOICES = ("checkpoint", "random", "greedy_apples")
PRINCIPAL_CHOICES = ("trained", "none", "fixed", "random", "best_fixed")


def evaluate(setup: EvalSetup, players: PlayerPolicy, *, principals: Sequence[str],
             num_episodes: int, seed: int = 0, trained: ModulePrincipal | None = None,
             fixed: Sequence[Sequence[float]] = (), grid_resolution: int = 3,
             search_episodes: int | None = None, objective: str = "objective",
             max_steps: int | None = None, print_fn: Callable[[str], None] | None = print
             ) -> tuple[list[PrincipalResult], SearchResult | None]:
    """Evaluates each of `principals` (names in PRINCIPAL_CHOICES; "fixed"
    expands to one entry per schedule in `fixed`)."""
    unknown = [p for p in principals if p not in PRINCIPAL_CHOICES]
    if unknown:
        raise ValueError(f"unknown principals {unknown}; choose from {PRINCIPAL_CHOICES}")
    if "trained" in principals and trained is None:
        raise ValueError("principal 'trained' needs a checkpoint of a run with a learned "
                         "principal")
    if "fixed" in principals and not fixed:
        raise ValueError("principal 'fixed' needs at least one schedule")
    if objective not in METRICS:
        raise ValueError(f"objective={objective!r} must be one of {METRICS}")
    say = print_fn or (lambda s: None)
    setup = with_fixed_types(setup, seed)
    b = setup.game.num_brackets
    n_search = search_episodes or num_episodes
    results: list[PrincipalResult] = []
    search: SearchResult | None = None

    def run(name: str, description: str, principal: str | Principal | ModulePrincipal
            ) -> None:
        say(f"evaluating {name}: {description}")
        episodes = evaluate_principal(setup, players, principal, num_episodes=num_episodes,
                                      seed=seed, max_steps=max_steps)
        results.append(PrincipalResult(name, description, episodes, summarize(episodes)))

    for name in principals:
        if name == "trained":
            run("trained", "the run's learned principal", trained)
        elif name == "none":
            run("none", "no tax", "none")
        elif name == "random":
            run("random", "uniform random rate levels each period", "random")
        elif name == "fixed":
            for rates in fixed:
                rates = [float(r) for r in rates]
                run(f"fixed{_fmt_rates(rates)}", "fixed schedule",
                    FixedRates(tax.validate_rates(rates, b, "fixed schedule")))
        elif name == "best_fixed":
            grid = rate_grid(grid_resolution, b)
            say(f"grid search: {len(grid)} schedules x {n_search} episodes, by {objective}")

            def evaluate_schedule(rates: tuple[float, ...]) -> list[dict[str, float]]:
                return evaluate_principal(setup, players, FixedRates(rates),
                                          num_episodes=n_search,
                                          seed=seed + SEARCH_SEED_OFFSET, max_steps=max_steps)

            search = grid_search(evaluate_schedule, grid, objective, progress=say)
            run(f"best_fixed{_fmt_rates(search.best_rates)}",
                f"best of {len(grid)} fixed schedules by {objective} (on separate seeds)",
                FixedRates(search.best_rates))
    return results, search


# ----------------------------------------------------------------- output
def result_keys(results: Sequence[PrincipalResult]) -> list[str]:
    keys: list[str] = []
    for r in results:
        keys += [k for k in r.summary if k not in keys]
    return keys


def _num(value: float) -> float | None:
    return value if math.isfinite(value) else None


def write_results(results: Sequence[PrincipalResult], output_dir: str, *,
                  search: SearchResult | None = None, meta: dict[str, Any] | None = None
                  ) -> dict[str, str]:
    """summary.csv (one row per principal: mean, CI bounds, n per metric),
    episodes.csv (one row per episode) and results.json (all of it)."""
    os.makedirs(output_dir, exist_ok=True)
    keys = result_keys(results)
    paths = {name: os.path.join(output_dir, name)
             for name in ("summary.csv", "episodes.csv", "results.json")}
    with open(paths["summary.csv"], "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["principal", "episodes"] + [
            f"{k}_{s}" for k in keys for s in ("mean", "ci_low", "ci_high", "n")])
        for r in results:
            row: list[Any] = [r.name, len(r.episodes)]
            for k in keys:
                s = r.summary.get(k, Stat(math.nan, math.nan, math.nan, math.nan, 0))
                row += [s.mean, s.ci_low, s.ci_high, s.n]
            writer.writerow(row)
    with open(paths["episodes.csv"], "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["principal", "episode"] + keys)
        for r in results:
            for k, e in enumerate(r.episodes):
                writer.writerow([r.name, k] + [e.get(key, math.nan) for key in keys])
    doc = {
        "meta": meta or {},
        "principals": [{
            "name": r.name, "description": r.description,
            "summary": {k: {f: _num(getattr(s, f)) if f != "n" else s.n
                            for f in ("mean", "ci_low", "ci_high", "std", "n")}
                        for k, s in r.summary.items()},
            "episodes": [{k: _num(v) for k, v in e.items()} for e in r.episodes],
        } for r in results],
        "search": None if search is None else {
            "objective": search.objective, "best_rates": list(search.best_rates),
            "best_value": _num(search.best_value),
            "table": [{"rates": list(r), "value": _num(v)} for r, v in search.table],
        },
    }
    with open(paths["results.json"], "w") as f:
        json.dump(doc, f, indent=2)
    return paths


def format_table(results: Sequence[PrincipalResult], keys: Sequence[str] | None = None) -> str:
    """Mean ± 95% half-width, one row per metric and one column per
    principal, as aligned text."""
    keys = list(keys or result_keys(results))

    def cell(s: Stat | None) -> str:
        if s is None or not math.isfinite(s.mean):
            return "n/a"
        if not math.isfinite(s.half_width):
            return f"{s.mean:.4g}"
        return f"{s.mean:.4g} ± {s.half_width:.2g}"

    rows = [["metric"] + [r.name for r in results]]
    rows += [[METRIC_LABELS.get(k, k)] + [cell(r.summary.get(k)) for r in results]
             for k in keys]
    rows.append(["episodes"] + [str(len(r.episodes)) for r in results])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(row, widths, strict=True)))
             for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)
