"""The device check of the JAX twin (issue 19) as one run: the bf16 check, the speed
rows and their table (`scripts/gpu_check.py`, whose docstring says what is measured).

The run needs only jax, flax, optax and numpy (what a GPU machine with JAX has):
`require_modules` stops with one line if one is missing and makes Ray, Melting Pot,
dmlab2d, TensorFlow and tensorboardX unimportable, so a CPU run proves the device run
needs none of them. Exit status 1 means a bf16 check or a row failed; speed targets
are reported, never enforced.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.util
import json
import math
import os
import sys
import time
from typing import Any

from sed_meltingpot.perf.bf16 import Comparison, bf16_check
from sed_meltingpot.perf.device_rows import Result, plan, run_rows
from sed_meltingpot.perf.timing import Budget

NEEDED = ("jax", "flax", "optax", "numpy")
ABSENT = ("ray", "meltingpot", "dmlab2d", "tensorflow", "tensorboardX")  # not on the device
PRESETS = ("fast", "paper")
DTYPES = ("float32", "bfloat16")
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


# ------------------------------------------------------------ output
def _num(value: float | None, fmt: str) -> str:
    """`value` formatted, or n/a where it is missing or not finite."""
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
    """The speed rows as a markdown table (n/a where a row did not run)."""
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
    """The bf16 checks as a markdown table, or one row saying why none ran."""
    lines = ["| " + " | ".join(BF16_COLUMNS) + " |", "|" + "---|" * len(BF16_COLUMNS)]
    if skipped:
        return lines + [f"| all | n/a | n/a | n/a | {skipped} |"]
    for c in checks:
        lines.append(f"| {c.name} | {c.values} | {c.max_abs_diff:.3g} | {c.tolerance:.3g} | "
                     f"{'yes' if c.passed else 'NO'} |")
    return lines


def device_line() -> str:
    """The device, backend, versions, CPU cores and time: what the figures were measured on."""
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
    """The rows, checks and flags to `args.json` (--json), NaN written as null."""
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


def run(args: argparse.Namespace) -> int:
    """The whole check for `scripts/gpu_check.py`'s parsed flags (or, with --dry_run,
    its plan): prints the tables and returns the exit status (1: a bf16 check or a row
    failed)."""
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

