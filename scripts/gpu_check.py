"""One device check of the JAX twin (issue 19): speed, memory and bfloat16, one table.

Runs from the repository root as it is, without installing anything: it needs only
jax, flax, optax and numpy (what a GPU machine with JAX has), and it makes Ray,
Melting Pot, dmlab2d, TensorFlow and tensorboardX unimportable before it starts, so
a run on a CPU machine that has them proves the device run needs none of them.

    python3 scripts/gpu_check.py                 # the device run: about 5 minutes
    python3 scripts/gpu_check.py --quick         # tiny sizes (the CPU test's run)
    python3 scripts/gpu_check.py --dry_run       # the plan, without running it

What it measures, in this order (a "game step" is one step of one game, all 7
players acting, so 1,024 games stepped once count 1,024 game steps):
1. bf16 vs f32: each trained preset's players network on one fixed batch of real
   observations, the same parameters computing in float32 and in bfloat16: the max
   abs difference of the logits, values, PPO loss and loss gradient, each against a
   stated tolerance (atol + rtol x max |f32 value|). The one check that can fail.
2. env rows: `vmap(step)` under `lax.scan` (benchmark_twin.make_twin_rollout, random
   actions drawn on device), without observations, with every player's 11x11 tiles
   and with its 88x88 RGB pixels, at each of --sizes games.
3. training rows: one `twin/ppo.py` iteration (rollout, GAE, PPO epochs in one
   jitted call, as `train.py --engine=jax`), fast and paper presets, float32 and
   bfloat16, at --fast_envs / --paper_envs games x --rollout steps; each preset has a
   fixed wall-clock slot (warm-up and timed iterations) shared by its dtypes.
All rows' programs are lowered first, then compiled in parallel threads (XLA compiles
outside the GIL: on a 16-core host the 13 compiles overlap), then run one by one.
Compile time (the row's lowering + XLA compile) is reported apart and never enters a
rate; a warm-up call after it is untimed. Memory: `prog MiB` is XLA's
memory_analysis() of the row's program (arguments + outputs + temporaries), `peak
MiB` the device's
peak_bytes_in_use so far in this process (jax memory_stats; 'n/a' where the backend
has none, e.g. CPU). A row that would start after --budget_seconds is skipped, a row
that raises is reported as failed; the table is printed either way. Speed targets
are reported, never enforced; exit status 1 means a bf16 check or a row failed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import datetime
import importlib.util
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # no install: the package from the checkout itself
    sys.path.insert(0, ROOT)

NEEDED = ("jax", "flax", "optax", "numpy")
ABSENT = ("ray", "meltingpot", "dmlab2d", "tensorflow", "tensorboardX")  # not on the device
OBSERVATIONS = ("none", "tiles", "pixels")
PRESETS = ("fast", "paper")
DTYPES = ("float32", "bfloat16")
OBS_LABELS = {"none": "env step, no observations", "tiles": "env step + tiles (11x11)",
              "pixels": "env step + pixels (88x88 RGB)"}
# Issue 19's targets on one H100/H200 (game steps/s), reported against, not required.
TARGETS = {"none": 10e6, "tiles": 3e6, "fast": 1e6, "paper": 1e5}
MAX_GAMES = 1 << 20

# The device run's sizes and slots, and --quick's (tiny, for a CPU test in about a
# minute); an explicit flag overrides either.
FULL = {"sizes": "1024,4096,16384", "obs": "none,tiles,pixels", "env_steps": 100,
        "env_seconds": 1.0, "presets": "fast,paper", "dtypes": "float32,bfloat16",
        "fast_envs": 512, "paper_envs": 64, "rollout": 200, "fast_seconds": 40.0,
        "paper_seconds": 120.0, "min_iterations": 2, "budget_seconds": 330.0,
        "bf16_games": 4, "principal": "learned"}
QUICK = {"sizes": "3", "obs": "none,tiles,pixels", "env_steps": 4, "env_seconds": 0.0,
         "presets": "fast", "dtypes": "bfloat16", "fast_envs": 2, "paper_envs": 2,
         "rollout": 50, "fast_seconds": 0.0, "paper_seconds": 0.0, "min_iterations": 1,
         "budget_seconds": 600.0, "bf16_games": 2, "principal": "none"}
# bf16 tolerances (atol + rtol x max |f32 value|): bfloat16 keeps 8 significant bits
# (0.4% per rounding); outputs agreed within 0.7% of their max on CPU, the loss
# gradient (bf16 backward products) within 2.7%.
BF16_RTOL, BF16_GRAD_RTOL, BF16_ATOL = 0.02, 0.1, 1e-5


# ------------------------------------------------------------ flags
def _in_range(parser: argparse.ArgumentParser, name: str, value: float, low: float,
              high: float) -> None:
    if not low <= value <= high:
        parser.error(f"--{name}={value}: must be in [{low}, {high}]")


def _choices(parser: argparse.ArgumentParser, name: str, value: str,
             allowed: Sequence[str]) -> list[str]:
    items = [x for x in value.split(",") if x]
    bad = [x for x in items if x not in allowed]
    if bad or not items:
        parser.error(f"--{name}={value!r}: comma-separated, each one of {', '.join(allowed)}")
    return items


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The flags, filled from FULL or (--quick) QUICK where not given, and checked:
    a bad one exits with a one-line usage error naming the flag, value and range."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes and no time slots (a CPU test in about a minute)")
    p.add_argument("--dry_run", action="store_true", help="print the plan and stop")
    p.add_argument("--sizes", help=f"games of the env rows, comma-separated ({FULL['sizes']})")
    p.add_argument("--obs", help=f"env rows' observations: {', '.join(OBSERVATIONS)}")
    p.add_argument("--env_steps", type=int, help="steps per jitted env call (100)")
    p.add_argument("--env_seconds", type=float,
                   help="timed seconds per env row, at least one call (1)")
    p.add_argument("--presets", help="training presets: fast, paper")
    p.add_argument("--dtypes", help="training dtypes: float32, bfloat16")
    p.add_argument("--fast_envs", type=int, help="games of the fast preset's rows (512)")
    p.add_argument("--paper_envs", type=int, help="games of the paper preset's rows (64)")
    p.add_argument("--rollout", type=int,
                   help="steps per game per training iteration, a multiple of the tax "
                        "period (200)")
    p.add_argument("--fast_seconds", type=float,
                   help="wall-clock slot of the fast preset's rows, after compiling (40)")
    p.add_argument("--paper_seconds", type=float,
                   help="wall-clock slot of the paper preset's rows, after compiling (120)")
    p.add_argument("--min_iterations", type=int,
                   help="timed training iterations per row at least, slot or not (2)")
    p.add_argument("--budget_seconds", type=float,
                   help="no row starts after this many seconds of the run (330)")
    p.add_argument("--compile_threads", type=int, default=0,
                   help="programs compiled at once (0: one per row, at most the CPU count)")
    p.add_argument("--bf16_games", type=int, help="games of the bf16 check's batch (4)")
    p.add_argument("--principal", choices=("learned", "none"),
                   help="the training rows' principal (learned; --quick: none, a shorter "
                        "compile)")
    p.add_argument("--bf16_rtol", type=float, default=BF16_RTOL,
                   help="bf16 tolerance of logits, values and loss, relative to max |f32|")
    p.add_argument("--bf16_grad_rtol", type=float, default=BF16_GRAD_RTOL,
                   help="bf16 tolerance of the loss gradient, relative to max |f32|")
    p.add_argument("--bf16_atol", type=float, default=BF16_ATOL,
                   help="bf16 absolute tolerance")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the results to this JSON file")
    args = p.parse_args(argv)
    for name, value in (QUICK if args.quick else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    try:
        args.sizes = [int(x) for x in str(args.sizes).split(",")]
    except ValueError:
        p.error(f"--sizes={args.sizes!r}: comma-separated integers in [1, {MAX_GAMES}]")
    for games in args.sizes:
        _in_range(p, "sizes", games, 1, MAX_GAMES)
    args.obs = _choices(p, "obs", args.obs, OBSERVATIONS)
    args.presets = _choices(p, "presets", args.presets, PRESETS)
    args.dtypes = _choices(p, "dtypes", args.dtypes, DTYPES)
    for name, low, high in (("env_steps", 1, 100_000), ("fast_envs", 1, MAX_GAMES),
                            ("paper_envs", 1, MAX_GAMES), ("min_iterations", 1, 1000),
                            ("bf16_games", 1, 1024), ("env_seconds", 0, 600),
                            ("compile_threads", 0, 256),
                            ("fast_seconds", 0, 3600), ("paper_seconds", 0, 3600),
                            ("budget_seconds", 0, 3600), ("bf16_rtol", 0, 1),
                            ("bf16_grad_rtol", 0, 1),
                            ("bf16_atol", 0, 1)):
        _in_range(p, name, getattr(args, name), low, high)
    from sed_meltingpot.game.config import GameConfig  # pure Python

    period = GameConfig().tax_period
    if args.rollout < period or args.rollout % period:
        p.error(f"--rollout={args.rollout}: must be a positive multiple of the tax period "
                f"({period})")
    return args


# ------------------------------------------------------------ results
@dataclasses.dataclass
class Result:
    """One table row. `steps_per_game` x `games` = `game_steps`, all in the timed part."""

    name: str
    kind: str  # an observation (env rows) or a preset (training rows)
    dtype: str  # "-" for env rows
    games: int
    steps_per_game: int = 0
    compile_s: float = math.nan
    run_s: float = math.nan
    program_mib: float | None = None
    peak_mib: float | None = None
    status: str = "ok"  # ok | skipped: ... | failed: ...

    @property
    def game_steps(self) -> int:
        return self.games * self.steps_per_game

    @property
    def rate(self) -> float:
        return self.game_steps / self.run_s if self.status == "ok" and self.run_s > 0 \
            else math.nan

    @property
    def target(self) -> float | None:
        return TARGETS.get(self.kind)


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


# ------------------------------------------------------------ memory, time
def peak_mib() -> float | None:
    """The device's peak_bytes_in_use so far (MiB); None where memory_stats has none."""
    import jax

    try:
        stats = jax.devices()[0].memory_stats()
    except Exception:  # noqa: BLE001 - an optional figure some backends lack
        return None
    if not stats or "peak_bytes_in_use" not in stats:
        return None
    return stats["peak_bytes_in_use"] / 2**20


def program_mib(memory: Any) -> float | None:
    """Arguments + outputs + temporaries - aliased bytes of a compiled program (MiB)."""
    if memory is None:
        return None
    total = (memory.argument_size_in_bytes + memory.output_size_in_bytes
             + memory.temp_size_in_bytes - memory.alias_size_in_bytes)
    return total / 2**20


class Budget:
    """The run's time guard: rows start only while `left()` > 0; slots end by then."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.perf_counter):
        self.clock = clock
        self.end = clock() + seconds

    def left(self) -> float:
        return self.end - self.clock()

    def deadline(self, seconds: float) -> float:
        """The clock time a slot of `seconds` starting now ends, cut to the budget."""
        return min(self.clock() + seconds, self.end)

    def share(self, slot: float, remaining: float) -> float:
        """`slot`, shrunk when it and the slots after it (`remaining` seconds, this one
        included) no longer fit what is left: late rows then get shorter slots rather
        than none."""
        left = self.left()
        if remaining <= 0 or left >= remaining:
            return slot
        return max(0.0, slot * left / remaining)


def timed_calls(call: Callable[[Any], Any], carry: Any, done: Callable[[Any], Any],
                min_calls: int, deadline: float, clock: Callable[[], float] = time.perf_counter
                ) -> tuple[Any, int, float]:
    """Calls `carry = call(carry)` at least `min_calls` times and until `deadline`,
    waiting for each (`done(carry)`: the arrays to block on); returns (carry, calls,
    seconds)."""
    import jax

    calls, start = 0, clock()
    while calls < min_calls or clock() < deadline:
        carry = call(carry)
        jax.block_until_ready(done(carry))
        calls += 1
    return carry, calls, clock() - start


# ------------------------------------------------------------ the rows
def benchmark_twin() -> Any:
    """scripts/benchmark_twin.py as a module (its rollout and training programs), loaded
    by path: scripts/ is no package, and putting it on sys.path would shadow names."""
    if "benchmark_twin" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "benchmark_twin", os.path.join(ROOT, "scripts", "benchmark_twin.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules["benchmark_twin"]


def bf16_check(preset: str, args: argparse.Namespace) -> list[Comparison]:
    """The players network of `preset` on one fixed batch (the observations of
    --bf16_games fresh games, actions drawn from the f32 policy, fixed advantages and
    targets), its f32 parameters computing in float32 and in bfloat16."""
    import jax
    import jax.numpy as jnp

    from sed_meltingpot.game.config import GameConfig
    from sed_meltingpot.runs.train_config import TrainConfig
    from sed_meltingpot.runs.train_config import preset as preset_overrides
    from sed_meltingpot.twin import networks, ppo

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


# ------------------------------------------------------------ plan and run
@dataclasses.dataclass(frozen=True)
class Planned:
    """A row to run: group "env" (kind = observation) or "train" (kind = preset)."""

    group: str
    kind: str
    dtype: str
    games: int
    slot_s: float  # env: timed seconds; train: the row's wall-clock slot


def plan(args: argparse.Namespace) -> list[Planned]:
    """The rows in running order: env rows by size (so peak memory grows with the
    row), then each preset's dtypes, which share the preset's slot evenly."""
    rows = [Planned("env", obs, "-", games, args.env_seconds)
            for games in sorted(args.sizes) for obs in args.obs]
    for preset in args.presets:
        games = args.fast_envs if preset == "fast" else args.paper_envs
        slot = (args.fast_seconds if preset == "fast" else args.paper_seconds)
        rows += [Planned("train", preset, dtype, games, slot / len(args.dtypes))
                 for dtype in args.dtypes]
    return rows


def row_label(row: Planned) -> str:
    if row.group == "env":
        return OBS_LABELS[row.kind]
    return f"training, {row.kind} preset ({'tiles' if row.kind == 'fast' else '88x88 pixels'})"


def _failure(e: BaseException) -> str:
    return "failed: " + " ".join(f"{type(e).__name__}: {e}".split())[:160]


@dataclasses.dataclass
class Prepared:
    """A planned row's program, lowered (then compiled), or why it could not be."""

    row: Planned
    program: Any = None  # benchmark_twin.Program
    steps_per_call: int = 0  # game steps per game in one call (env) or iteration (train)
    error: str | None = None


def prepare(row: Planned, args: argparse.Namespace) -> Prepared:
    """Lowers a row's program (tracing is Python: one row at a time)."""
    from sed_meltingpot.twin import TwinEnv

    bt = benchmark_twin()
    try:
        if row.group == "env":
            program = bt.twin_rollout_program(TwinEnv.create("apple_picking"), row.games,
                                              args.env_steps, args.seed, row.kind)
            return Prepared(row, program, args.env_steps)
        config, program = bt.twin_training_program(row.kind, row.games, args.rollout,
                                                   args.seed, row.dtype, args.principal)
        return Prepared(row, program, config.rollout_length)
    except Exception as e:  # noqa: BLE001 - reported in the row, the others go on
        return Prepared(row, error=_failure(e))


def compile_all(prepared: list[Prepared], threads: int) -> None:
    """Compiles the lowered programs, `threads` at a time: XLA compiles outside the
    GIL, so on a many-core host the 13 compiles of the device run overlap."""

    def one(p: Prepared) -> None:
        if p.program is None:
            return
        try:
            p.program.compile()
        except Exception as e:  # noqa: BLE001 - reported in the row
            p.program, p.error = None, _failure(e)

    with concurrent.futures.ThreadPoolExecutor(max(1, threads)) as pool:
        list(pool.map(one, prepared))


def run_prepared(p: Prepared, args: argparse.Namespace, budget: Budget, slot_s: float
                 ) -> Result:
    """One row: a warm-up call, then timed calls (env: for `slot_s`, one at least;
    training: to the end of the `slot_s` slot, which the warm-up counts in, and
    --min_iterations at least). Training steps are counted on device (the state's
    iteration counter)."""
    import jax

    row = p.row
    result = Result(row_label(row), row.kind, row.dtype, row.games)
    if p.error or p.program is None or budget.left() <= 0:
        result.status = p.error or "skipped: time budget"
        return result
    program, p.program = p.program, None  # freed once the row is done
    result.compile_s = program.lower_s + program.compile_s
    result.program_mib = program_mib(program.memory)
    try:
        if row.group == "env":
            carry = program.run(*program.args)  # warm-up
            jax.block_until_ready(carry)
            carry, calls, result.run_s = timed_calls(
                lambda c: program.run(c[0], c[1]), carry, lambda c: c[2], 1,
                budget.deadline(slot_s))
            result.steps_per_game = calls * p.steps_per_call
        else:
            deadline = budget.deadline(slot_s)
            state, metrics = program.run(*program.args)  # warm-up
            jax.block_until_ready(metrics)
            first = int(state.iteration)
            (state, _), _, result.run_s = timed_calls(
                lambda c: program.run(c[0]), (state, metrics), lambda c: c[1],
                args.min_iterations, deadline)
            result.steps_per_game = (int(state.iteration) - first) * p.steps_per_call
    except Exception as e:  # noqa: BLE001 - e.g. out of memory: report it, go on
        result.status = _failure(e)
    result.peak_mib = peak_mib()
    return result


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_rows(args: argparse.Namespace, budget: Budget) -> tuple[list[Result], float]:
    """Every planned row: all lowered, then compiled in threads, then run one by one.
    Returns the results and the wall seconds of lowering and compiling."""
    start = time.perf_counter()
    rows = plan(args)
    prepared = [prepare(row, args) if budget.left() > 0 else Prepared(row) for row in rows]
    _progress(f"lowered {len(rows)} programs; compiling")
    threads = args.compile_threads or min(len(rows), os.cpu_count() or 1)
    compile_all(prepared, threads)
    compile_wall = time.perf_counter() - start
    _progress(f"compiled in {compile_wall:.0f} s ({threads} threads)")
    results = []
    for k, p in enumerate(prepared):
        slot = budget.share(p.row.slot_s, sum(q.row.slot_s for q in prepared[k:]))
        result = run_prepared(p, args, budget, slot)
        results.append(result)
        _progress(f"{result.name}, {result.dtype}, {result.games} games: {result.status}, "
                  f"{result.rate:,.0f} game steps/s")
    return results, compile_wall


# ------------------------------------------------------------ output
def _num(value: float | None, fmt: str) -> str:
    return "n/a" if value is None or not math.isfinite(value) else format(value, fmt)


def _mib(value: float | None) -> str:
    """MiB with about three significant digits, small programs included."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return format(value, ".0f" if value >= 100 else ".1f" if value >= 1 else ".3f")


SPEED_COLUMNS = ("row", "dtype", "games", "steps/game", "game steps", "compile s", "run s",
                 "game steps/s", "target", "met", "prog MiB", "peak MiB", "status")
BF16_COLUMNS = ("bf16 vs f32, fixed batch", "values", "max abs diff", "tolerance", "ok")


def speed_table(results: list[Result]) -> list[str]:
    lines = ["| " + " | ".join(SPEED_COLUMNS) + " |", "|" + "---|" * len(SPEED_COLUMNS)]
    for r in results:
        ran = r.status == "ok"
        met = "-" if r.target is None or not ran else ("yes" if r.rate >= r.target else "no")
        cells = (r.name, r.dtype, str(r.games), str(r.steps_per_game) if ran else "n/a",
                 str(r.game_steps) if ran else "n/a", _num(r.compile_s, ".1f"),
                 _num(r.run_s, ".2f"), _num(r.rate, ",.0f"),
                 ">= " + _num(r.target, ",.0f") if r.target else "-", met,
                 _mib(r.program_mib), _mib(r.peak_mib), r.status)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def bf16_table(checks: list[Comparison], skipped: str | None) -> list[str]:
    lines = ["| " + " | ".join(BF16_COLUMNS) + " |", "|" + "---|" * len(BF16_COLUMNS)]
    if skipped:
        return lines + [f"| all | n/a | n/a | n/a | {skipped} |"]
    for c in checks:
        lines.append(f"| {c.name} | {c.values} | {c.max_abs_diff:.3g} | {c.tolerance:.3g} | "
                     f"{'yes' if c.passed else 'NO'} |")
    return lines


def device_line() -> str:
    import flax
    import jax

    device = jax.devices()[0]
    return (f"device: {device.device_kind} ({jax.default_backend()}, {jax.device_count()} "
            f"device(s)), jax {jax.__version__}, flax {flax.__version__}, {os.cpu_count()} "
            f"CPU cores, {datetime.datetime.now().isoformat(timespec='minutes')}")


def _plain(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def write_json(args: argparse.Namespace, results: list[Result], checks: list[Comparison],
               bf16_status: str | None) -> None:
    rows = [{**dataclasses.asdict(r), "game_steps": r.game_steps, "rate": r.rate,
             "target": r.target} for r in results]
    with open(args.json, "w") as f:
        json.dump(_plain({"device": device_line(), "rows": rows,
                          "bf16": [dataclasses.asdict(c) for c in checks],
                          "bf16_status": bf16_status, "args": vars(args)}), f, indent=1)


def require_modules() -> None:
    """Stops with one line if a needed package is missing, and makes the packages the
    device lacks unimportable (a CPU run then imports only what the device has)."""
    missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
    if missing:
        sys.exit(f"gpu_check: missing Python package(s) {', '.join(missing)}; "
                 f"it needs {', '.join(NEEDED)}")
    for name in ABSENT:
        if name not in sys.modules:
            sys.modules[name] = None  # type: ignore[assignment]  # import raises ImportError


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.dry_run:
        for row in plan(args):
            print(f"{row.group} {row.kind} {row.dtype} {row.games} games, slot {row.slot_s:g} s")
        print(f"bf16 check: {', '.join(args.presets)}; budget {args.budget_seconds:g} s")
        return 0
    if args.json and not os.path.isdir(os.path.dirname(os.path.abspath(args.json))):
        sys.exit(f"gpu_check: --json={args.json}: its folder does not exist")
    require_modules()
    start = time.perf_counter()
    budget = Budget(args.budget_seconds)
    print(device_line(), file=sys.stderr, flush=True)
    checks: list[Comparison] = []
    skipped = "skipped: time budget" if budget.left() <= 0 else None
    if skipped is None:
        try:
            for preset in args.presets:
                checks += bf16_check(preset, args)
        except Exception as e:  # noqa: BLE001 - reported as a failed check
            skipped = " ".join(f"failed: {type(e).__name__}: {e}".split())[:160]
    results, compile_wall = run_rows(args, budget)
    lines = [device_line(), "", *speed_table(results), "", *bf16_table(checks, skipped), "",
             f"total {time.perf_counter() - start:.0f} s (budget {args.budget_seconds:g} s); "
             f"training rows' principal: {args.principal}",
             f"compile s: the row's lowering + XLA compile (all rows' compiles in parallel "
             f"threads, {compile_wall:.0f} s wall for all); it and one warm-up call per row "
             "are left out of run s and game steps/s",
             "steps/game: timed calls x steps per call (training: iterations counted on "
             "device x rollout)",
             "prog MiB: XLA memory_analysis of the row's program (arguments + outputs + "
             "temporaries); peak MiB: device peak_bytes_in_use so far in this process (n/a: "
             "no memory_stats on this backend)",
             f"bf16 ok: max |f32 - bf16| <= {args.bf16_atol:g} + rtol x max |f32|, rtol "
             f"{args.bf16_rtol:g} (gradient {args.bf16_grad_rtol:g})"]
    print("\n".join(lines), flush=True)
    if args.json:
        write_json(args, results, checks, skipped)
    failed = [r for r in results if r.status.startswith("failed")]
    bad = [c.name for c in checks if not c.passed] or ([skipped] if skipped and
                                                       skipped.startswith("failed") else [])
    if bad:
        print(f"bf16 check FAILED: {', '.join(bad)}", file=sys.stderr)
    return 1 if failed or bad else 0


if __name__ == "__main__":
    sys.exit(main())
