"""Train the paper preset on one GPU for a fixed wall-clock slot, one run per principal.

    python3 scripts/gpu_train.py --gpu_check_json=gpu_check.json --output_dir=/tmp/gpu_train
    python3 scripts/gpu_train.py --quick --output_dir=/tmp/gpu_train   # tiny, on CPU

Issue 16's device run: the paper's game (7 players, 1000-step episodes) with the paper
preset (88x88 RGB, 4 frames, the paper's networks) trained by `train.py --engine=jax`
at eta 1 (`--voting_rule=fixed:1`, apples), the principals side by side in concurrent
processes on the one GPU (each with its share of the GPU's memory), as many game steps
as fit in --seconds. The run length must be fixed before it starts (the learning rate,
the players-only phase and the tax-cap ramp are shares of it), so it is sized from
scripts/gpu_check.py's measured rate of the same training iteration (paper preset, 64
games x 200 steps, float32, learned principal) when --gpu_check_json is given: the
iterations that fit in --seconds minus --compile_seconds at that rate divided by the
number of concurrent runs; else --num_iterations. A run still going at --seconds gets
SIGTERM (train.py then checkpoints and stops), so the table holds what it reached.
Prints one table: per principal, iterations and game steps done, game steps/s over the
iterations after the first (which holds the compile), and the players' apples per
episode and the principal's mean rates, early and late in the run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # no install: the package from the checkout itself
    sys.path.insert(0, ROOT)

from sed_meltingpot.core.validators import finite_float  # noqa: E402

#: The paper's game at eta 1 on apples, the paper preset; the tax cap ramp of the
#: paper_fast grid (tax_cap_fraction 0.25 of phase 2).
GAME_FLAGS = ("--engine=jax", "--preset=paper", "--voting_rule=fixed:1", "--welfare_on=apples",
              "--tax_cap_fraction=0.25", "--checkpoint_every=0")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--output_dir", required=True, help="one run folder per principal here")
    p.add_argument("--principals", default="learned,none",
                   help="train.py --principal values, trained concurrently")
    p.add_argument("--num_envs", type=int, default=64, help="games per iteration")
    p.add_argument("--rollout", type=int, default=200, help="steps per game per iteration")
    p.add_argument("--seconds", type=finite_float, default=250.0,
                   help="wall-clock slot of the runs, compile included (SIGTERM after it)")
    p.add_argument("--compile_seconds", type=finite_float, default=90.0,
                   help="the share of --seconds assumed spent before the first iteration")
    p.add_argument("--gpu_check_json", help="size the runs from this gpu_check.py result")
    p.add_argument("--num_iterations", type=int, default=20,
                   help="the runs' length when --gpu_check_json gives no paper rate")
    p.add_argument("--mem_fraction", type=finite_float, default=None,
                   help="each run's XLA_PYTHON_CLIENT_MEM_FRACTION (default: 0.9 / runs)")
    p.add_argument("--quick", action="store_true",
                   help="a tiny fast-preset game (a CPU check of the wiring)")
    args = p.parse_args(argv)
    args.principals = [x for x in args.principals.split(",") if x]
    if not args.principals:
        p.error("--principals: give at least one")
    twice = sorted({x for x in args.principals if args.principals.count(x) > 1})
    if twice:  # both runs would write <output_dir>/<principal> at once
        p.error(f"--principals={','.join(args.principals)}: {', '.join(twice)} listed twice "
                "(each principal trains into <output_dir>/<principal>; give each once)")
    for name, low, high in (("num_envs", 1, 1 << 16), ("rollout", 50, 10_000),
                            ("seconds", 1, 3600), ("compile_seconds", 0, 3600),
                            ("num_iterations", 1, 100_000)):
        value = getattr(args, name)
        if not low <= value <= high:
            p.error(f"--{name}={value}: must be in [{low}, {high}]")
    if args.mem_fraction is not None and not 0 < args.mem_fraction <= 1:
        p.error(f"--mem_fraction={args.mem_fraction}: must be in (0, 1]")
    if args.gpu_check_json and not os.path.isfile(args.gpu_check_json):
        p.error(f"--gpu_check_json={args.gpu_check_json}: no such file")
    return args


def measured_rate(path: str) -> float | None:
    """gpu_check.py's game steps/s of the paper preset's float32 training row, if it ran."""
    with open(path) as f:
        rows = json.load(f).get("rows", [])
    for row in rows:
        if row.get("kind") == "paper" and row.get("dtype") == "float32" \
                and row.get("status") == "ok" and math.isfinite(row.get("rate") or math.nan):
            return float(row["rate"])
    return None


def plan_iterations(args: argparse.Namespace) -> tuple[int, str]:
    """(iterations per run, why): sized from the measured rate when there is one."""
    rate = measured_rate(args.gpu_check_json) if args.gpu_check_json else None
    if rate is None:
        return args.num_iterations, f"--num_iterations={args.num_iterations}"
    per_iteration = args.num_envs * args.rollout
    usable = max(args.seconds - args.compile_seconds, 1.0)
    n = max(1, int(usable * rate / len(args.principals) / per_iteration))
    return n, (f"gpu_check's paper float32 rate {rate:,.0f} game steps/s / "
               f"{len(args.principals)} concurrent runs x {usable:.0f} s / "
               f"{per_iteration:,} game steps per iteration")


def train_command(args: argparse.Namespace, principal: str, iterations: int) -> list[str]:
    game = (["--preset=fast", "--num_players=3", "--episode_length=100", "--tax_period=50"]
            if args.quick else [])
    return [sys.executable, os.path.join(ROOT, "scripts", "train.py"), *GAME_FLAGS, *game,
            f"--principal={principal}", f"--num_envs={args.num_envs}",
            f"--rollout_fragment_length={args.rollout}", f"--num_iterations={iterations}",
            f"--output_dir={os.path.join(args.output_dir, principal)}"]


def read_progress(folder: str) -> list[dict]:
    path = os.path.join(folder, "progress.jsonl")
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _mean(records: list[dict], key: str) -> float:
    values = [float(r[key]) for r in records
              if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
    return sum(values) / len(values) if values else math.nan


def summary_row(principal: str, records: list[dict], rc: int | None) -> str:
    if not records:
        return f"| {principal} | 0 | 0 | - | - | - | - | exit {rc} |"
    last = records[-1]
    timed = records[1:]
    seconds = sum(float(r["time_this_iter_s"]) for r in timed)
    steps = last["game_steps"] - records[0]["game_steps"]
    rate = steps / seconds if seconds > 0 else math.nan
    fresh = [r for r in records if not r.get("metrics_stale")]
    quarter = max(1, len(fresh) // 4)
    early, late = fresh[:quarter], fresh[-quarter:]
    rates = "/".join(f"{_mean(late, f'rate_b{k}'):.2f}" for k in range(3))
    return (f"| {principal} | {last['iteration']} | {last['game_steps']:,} | {rate:,.0f} | "
            f"{_mean(early, 'utilitarian'):.1f} | {_mean(late, 'utilitarian'):.1f} | "
            f"{rates} | exit {rc} |")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from sed_meltingpot.cli import check_writable
    from sed_meltingpot.runs.run_lock import hold_until_exit

    try:  # before the runs start (their logs go there)
        check_writable("output_dir", args.output_dir)
        # One gpu_train per folder: a second would overwrite the first's <principal>.log
        # (each train.py also locks its own <output_dir>/<principal>).
        hold_until_exit(args.output_dir)
    except ValueError as e:
        sys.exit(f"gpu_train.py: error: {e}")
    iterations, why = plan_iterations(args)
    print(f"gpu_train: {iterations} iterations x {args.num_envs} games x {args.rollout} steps "
          f"per run ({why}); principals {', '.join(args.principals)}; slot {args.seconds:g} s",
          flush=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(  # the package from the checkout, not installed
        [ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["XLA_PYTHON_CLIENT_MEM_FRACTION"] = str(args.mem_fraction or
                                                round(0.9 / len(args.principals), 3))
    procs = {}
    for principal in args.principals:
        log = open(os.path.join(args.output_dir, f"{principal}.log"), "w")
        procs[principal] = subprocess.Popen(train_command(args, principal, iterations),
                                            stdout=log, stderr=subprocess.STDOUT, env=env,
                                            cwd=ROOT)
    deadline = time.monotonic() + args.seconds
    while any(p.poll() is None for p in procs.values()) and time.monotonic() < deadline:
        time.sleep(1.0)
    for principal, proc in procs.items():
        if proc.poll() is None:
            print(f"gpu_train: {principal} still running at {args.seconds:g} s: SIGTERM",
                  flush=True)
            proc.send_signal(signal.SIGTERM)
    for proc in procs.values():
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    print("| principal | iterations | game steps | game steps/s (after the 1st iteration) | "
          "apples/episode, first quarter | apples/episode, last quarter | "
          "rates b0/b1/b2, last quarter | status |")
    print("|---|---|---|---|---|---|---|---|")
    failed = False
    for principal, proc in procs.items():
        records = read_progress(os.path.join(args.output_dir, principal))
        print(summary_row(principal, records, proc.returncode))
        failed |= not records
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
