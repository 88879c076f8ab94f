"""Does a learned principal beat the baselines? Train and evaluate a grid (issue 10).

Examples:
  python scripts/experiment.py --grid=smoke --engine=rllib --output_dir=outputs/experiment_smoke
  python scripts/experiment.py --grid=small --output_dir=outputs/experiment_small
  python scripts/experiment.py --grid=paper --output_dir=outputs/experiment_paper  # a GPU

For every objective (eta fixed at 0, 0.5, 1 through the `fixed:<eta>` voting
rule, and the voted eta of the players' types) and principal (learned, none,
flat / progressive / regressive fixed schedules, random), players are trained
from scratch with the same budget and seeds, then every run is evaluated on the
same held-out seeds; the best fixed schedule is searched against the players
trained with the learned principal. A scripted principal's runs are trained
once per seed and judged under every objective (players' rewards, paper Eq. 8,
do not depend on eta). Writes to --output_dir: results.csv (one row per
objective, principal, seed and substrate), results.md (mean ± 95% CI per cell,
Welch t-tests with Holm's correction), learning_curves.png (data in learning_curves.csv),
equality_productivity.png, experiment.json and runs/<run>/ (each training run).
An interrupted experiment resumes: finished runs and evaluations are reused.
The logic is in sed_meltingpot.experiment and sed_meltingpot.experiment_runs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import sys
import time

from absl import app, flags

from sed_meltingpot import experiment as ex
from sed_meltingpot import experiment_runs as runs
from sed_meltingpot import plotting

flags.DEFINE_enum("grid", "smoke", list(ex.GRIDS),
                  "smoke: wiring test (on 2 cores: 4 min with --engine=jax, 2.6 min with "
                  "rllib); small: about 1 h on 2 cores with --engine=jax; "
                  "paper: the paper's game, for a GPU machine or a cluster.")
flags.DEFINE_enum("engine", "jax", list(runs.ENGINES),
                  "jax: the JAX twin (its learned runs are also evaluated on the Lua "
                  "substrate); rllib: RLlib on the Lua substrate.")
flags.DEFINE_string("output_dir", "outputs/experiment", "Where results and runs go.")
flags.DEFINE_string("seeds", None,
                    "Training seeds: comma list (0,1,2) or range (0-4); default 0..N-1 with "
                    "the grid's N (smoke 2, small and paper 5).")
flags.DEFINE_list("objectives", list(ex.OBJECTIVES), f"Subset of {list(ex.OBJECTIVES)}.")
flags.DEFINE_list("principals", list(ex.PRINCIPALS),
                  f"Subset of {list(ex.PRINCIPALS)}; must include learned.")
flags.DEFINE_integer("num_workers", 1,
                     "Runs in parallel as Ray tasks on this machine (1: one after the other "
                     "in this process).", lower_bound=1)
flags.DEFINE_string("ray_address", None,
                    "Existing Ray cluster (e.g. 10.0.0.1:6379): runs become Ray tasks there.")
flags.DEFINE_integer("num_iterations", None,
                     "Override the grid's training iterations per run (budget).", lower_bound=1)
flags.DEFINE_integer("eval_episodes", None,
                     "Override the grid's evaluation episodes per run and principal.",
                     lower_bound=1)

FLAGS = flags.FLAGS


def _check_subset(name: str, allowed: tuple[str, ...]) -> None:
    def check(values: list[str]) -> bool:
        bad = [v for v in values if v not in allowed]
        if bad or not values or len(set(values)) != len(values):
            raise flags.ValidationError(
                f"--{name}={','.join(values)}: each must be one of {list(allowed)}, no repeats, "
                "at least one")
        return True

    flags.register_validator(name, check)


_check_subset("objectives", tuple(ex.OBJECTIVES))
_check_subset("principals", ex.PRINCIPALS)
flags.register_validator("principals", lambda v: ex.LEARNED in v,
                         message="--principals must include learned (every comparison is "
                         "learned against a baseline)")


def _check_seeds(text: str | None) -> bool:
    if text is None:
        return True
    try:
        ex.check_seeds(ex.parse_seeds(text))
    except ValueError as e:
        raise flags.ValidationError(str(e)) from e
    return True


flags.register_validator("seeds", _check_seeds)


def _ordered(values: list[str], order: tuple[str, ...] | list[str]) -> list[str]:
    return [v for v in order if v in values]


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    start = time.time()
    grid = ex.GRIDS[FLAGS.grid]
    changes = {}
    if FLAGS.num_iterations:
        changes.update(num_iterations=FLAGS.num_iterations, twin_iterations=FLAGS.num_iterations)
    if FLAGS.eval_episodes:
        changes["eval_episodes"] = FLAGS.eval_episodes
    grid = dataclasses.replace(grid, **changes)
    seeds = (ex.parse_seeds(FLAGS.seeds) if FLAGS.seeds is not None
             else list(range(grid.num_seeds)))
    objectives = _ordered(FLAGS.objectives, list(ex.OBJECTIVES))
    principals = _ordered(FLAGS.principals, ex.PRINCIPALS)
    engine = runs.get_engine(FLAGS.engine)
    out = FLAGS.output_dir
    os.makedirs(out, exist_ok=True)
    jobs = runs.make_jobs(engine, grid, out, objectives, principals, seeds)
    n_runs = sum(len(j.tasks) for j in jobs)
    budget = grid.budget(engine.name)
    print(f"grid {grid.name} ({grid.description}); engine {engine.name}; seeds {seeds}; "
          f"{n_runs} training runs of {budget} env steps each, in {len(jobs)} jobs; "
          f"output {out}", flush=True)

    results = runs.run_jobs(jobs, num_workers=FLAGS.num_workers, ray_address=FLAGS.ray_address,
                            log=lambda s: print(s, flush=True))
    rows = [r for res in results for r in res["rows"]]
    order = {p: i for i, p in enumerate(ex.PRINCIPALS)}
    rows.sort(key=lambda r: (objectives.index(r["objective"]), order[r["principal"]],
                             r["substrate"] != engine.substrate, r["seed"]))
    b = grid.game.num_brackets
    csv_path = ex.write_csv(rows, os.path.join(out, "results.csv"), b)

    runs_of = {o: {p: [(t.seed, d) for j in jobs for t, d in zip(j.tasks, j.run_dirs, strict=True)
                       if t.principal == p and (t.objective in (None, o))]
                   for p in principals if p != ex.BEST_FIXED} for o in objectives}
    curves = {o: {p: [plotting.load_progress(d) for _, d in runs]
                  for p, runs in per_p.items()} for o, per_p in runs_of.items()}
    curves_csv = ex.write_learning_curves(
        curves, {o: {p: [seed for seed, _ in runs] for p, runs in per_p.items()}
                 for o, per_p in runs_of.items()}, os.path.join(out, "learning_curves.csv"))
    figures = [
        ex.plot_learning_curves(curves, os.path.join(out, "learning_curves.png")),
        ex.plot_equality_productivity(rows, objectives, principals, engine.substrate,
                                      os.path.join(out, "equality_productivity.png")),
    ]
    wall = time.time() - start
    trained = sum(r["trained"] for r in results)
    iterations = grid.num_iterations if engine.name == "rllib" else grid.twin_iterations
    command = " ".join(["python", "scripts/experiment.py"] + [shlex.quote(a)
                                                              for a in sys.argv[1:]])
    meta = {
        "grid": grid.name, "engine": engine.name, "command": f"`{command}`",
        "seeds": ", ".join(map(str, seeds)),
        "budget": (f"{budget} env steps per run ({iterations} iterations), the same for "
                   "every principal"),
        "game": (f"{grid.game.num_players} players, {grid.game.episode_length}-step episodes, "
                 f"tax period {grid.game.tax_period}, brackets {grid.game.thresholds}, "
                 f"preset {grid.preset}, {grid.frame_stack} frame(s); schedules "
                 + ", ".join(f"{k} {v}" for k, v in ex.SCHEDULES.items())),
        "evaluation": (f"{grid.eval_episodes} episodes per run and principal from seed "
                       f"{ex.EVAL_SEED}; best_fixed searched over {grid.search_resolution}^{b} "
                       f"schedules x {grid.search_episodes} episodes from seed "
                       f"{ex.EVAL_SEED + ex.SEARCH_SEED_OFFSET}"),
        "wall_time": f"{wall / 60:.1f} min ({os.cpu_count()} CPUs, {FLAGS.num_workers} "
                     f"worker(s){', Ray at ' + FLAGS.ray_address if FLAGS.ray_address else ''}; "
                     f"{trained} of {n_runs} runs trained by this call, the others reused "
                     "from an earlier call)",
    }
    md = ex.results_markdown(rows, objectives=objectives, principals=principals,
                             substrate=engine.substrate, meta=meta, num_brackets=b,
                             figures=figures, curves=curves, learned_rates={
                                 o: ex.last_period_rates(curves[o][ex.LEARNED])
                                 for o in objectives})
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(md + "\n")
    with open(os.path.join(out, "experiment.json"), "w") as f:
        json.dump({"meta": meta, "grid": dataclasses.asdict(grid), "objectives": objectives,
                   "principals": principals, "seeds": seeds, "wall_time_s": wall,
                   "train_s": [r["train_s"] for r in results],
                   "eval_s": [r["eval_s"] for r in results]}, f, indent=2, default=str)
    bad = ex.non_finite(rows, ex.metric_columns(b))
    if bad:
        print(f"warning: {len(bad)} non-finite values, e.g. {bad[:3]}", flush=True)
    print(md)
    print(f"wrote {csv_path}, {os.path.join(out, 'results.md')}, {curves_csv}, "
          + ", ".join(figures))
    print(f"wall time {wall / 60:.1f} min")


if __name__ == "__main__":
    app.run(main)
