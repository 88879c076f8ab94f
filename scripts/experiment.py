"""Does a learned principal beat the baselines? Train and evaluate a grid (issues 10, 16).

Examples:
  python scripts/experiment.py --grid=smoke --engine=rllib --output_dir=outputs/experiment_smoke
  python scripts/experiment.py --grid=small --output_dir=outputs/experiment_small
  python scripts/experiment.py --grid=paper_fast --output_dir=outputs/paper_fast  # ~2 h, 2 cores
  python scripts/experiment.py --grid=paper --output_dir=outputs/experiment_paper  # a GPU

For every welfare definition (W_eta on apples eaten, the paper's, and on post-tax
income: --welfare_on), objective (eta fixed at 0, 0.5, 1 through the `fixed:<eta>`
voting rule, and the voted eta of the players' types) and principal (learned; sampled,
one principal per definition that observes eta drawn per episode, jax engine; none;
flat / progressive / regressive / flat100 fixed schedules; random), players are trained
from scratch with the same budget and seeds, then every run is evaluated on the same
held-out seeds. best_fixed: the best fixed schedule of a grid search against the players
trained with the learned principal, played with fresh players trained under it (a second
stage of runs). A scripted principal's runs are trained once per seed and judged under
every objective and definition (players' rewards, paper Eq. 8, depend on neither).
Writes to --output_dir: results.csv (one row per definition, objective, principal, seed
and substrate), results.md (mean ± 95% CI per cell, paired t-tests by seed with Holm's
correction per definition and objective, signed-rank checks), learning_curves.png (data
in learning_curves.csv), equality_productivity.png, rates_vs_eta.png (the sampled
principal's rates at fixed etas), experiment.json and runs/<run>/ (each training run).
An interrupted experiment resumes: finished runs and evaluations are reused.
The logic is in sed_meltingpot.experiment (its engines and jobs modules run the jobs).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import sys
import time

from absl import app, flags

from sed_meltingpot import cli
from sed_meltingpot import experiment as ex
from sed_meltingpot.analysis import plotting
from sed_meltingpot.design.halving import CHOICES as SEARCH_CHOICES
from sed_meltingpot.experiment import engines
from sed_meltingpot.experiment import jobs as runs
from sed_meltingpot.experiment import searches as stackelberg
from sed_meltingpot.game.config import WELFARE_ON
from sed_meltingpot.runs import run_lock

flags.DEFINE_enum("grid", "smoke", list(ex.GRIDS),
                  "smoke: wiring test (minutes on 2 cores); small: hours on 2 cores with "
                  "--engine=jax (README Results); paper_fast: the paper's game with the fast "
                  "preset, about 2 h on 2 cores with --engine=jax; paper: the paper's game, "
                  "for a GPU machine or a cluster.")
flags.DEFINE_enum("engine", "jax", list(engines.ENGINES),
                  "jax: the JAX twin (its learned runs are also evaluated on the Lua "
                  "substrate); rllib: RLlib on the Lua substrate (no sampled principal).")
flags.DEFINE_string("output_dir", "outputs/experiment", "Where results and runs go.")
flags.DEFINE_string("seeds", None,
                    "Training seeds: comma list (0,1,2) or range (0-4); default 0..N-1 with "
                    "the grid's N (smoke 2, paper_fast 3, small and paper 5).")
flags.DEFINE_list("objectives", list(ex.OBJECTIVES), f"Subset of {list(ex.OBJECTIVES)}.")
flags.DEFINE_list("principals", None,
                  f"Subset of {list(ex.PRINCIPALS)}; must include learned or another co-trained "
                  f"principal ({', '.join(ex.LEARNERS)}). Default: all "
                  f"(without {', '.join(ex.JAX_ONLY)} for --engine=rllib).")
flags.DEFINE_list("welfare_on", None,
                  f"Welfare definitions to run, from {list(WELFARE_ON)}: W_eta on apples "
                  "eaten (the paper's Section 4) or on post-tax income. Default: the grid's "
                  "(both).")
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
flags.DEFINE_integer("lua_episodes", None,
                     "Override the grid's episodes of the jax engine's learned runs replayed "
                     "on the Lua substrate (the transfer gap).", lower_bound=1)
flags.DEFINE_integer("search_seeds", None,
                     "Override the grid's number of search seeds of the search principal (2 in "
                     "every grid): its candidates are scored on this many seeds of their own, "
                     "disjoint from the reported ones; more seeds tell closer schedules apart.",
                     lower_bound=1, upper_bound=100)
flags.DEFINE_integer("search_seed_start", None,
                     "Override the first of the search principal's seeds (900000 in every "
                     "grid): a protocol revised on earlier search seeds is tested on a fresh "
                     "range. Must stay below 1000000 and clear of the reported seeds.",
                     lower_bound=0, upper_bound=999_999)
flags.DEFINE_float("search_first_cut", None,
                   "Override the grid's first cut of the search principal, as a share of a "
                   "run's iterations (0.5 in the jax grids but smoke's 1.0): no schedule is "
                   "cut before then; 1.0 trains every candidate to the full budget.",
                   lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_integer("ucb_detrend", None,
                     "Override the ucb principal's --ucb_detrend (0 in every grid: arms ranked "
                     "by their mean scores; 1 or 2: by their effects net of a common linear or "
                     "quadratic trend over the principal steps).", lower_bound=0, upper_bound=2)
flags.DEFINE_float("players_only_fraction", None,
                   "jax engine: override the learned principal's recipe, the share of a run's "
                   "iterations in which the players train alone before it joins (0.2 in "
                   "every grid; training/jax/recipe.py).", lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_enum("search_choice", None, list(SEARCH_CHOICES),
                  "Override the grid's rule by which the search principal picks among its "
                  "last rung's schedules (best by default): best, the highest mean score; "
                  "least_tax, the lowest mean rate within one paired standard error of the "
                  "best (design/halving.py). It trains nothing: a finished search answers "
                  "either rule from its file.")
flags.DEFINE_bool("eta_normalised", None,
                  "jax engine: the sampled principal's reward scaled per player and its "
                  "advantages centred per eta (the recipe's --principal_reward_scale=per_player "
                  "and --principal_eta_baseline); --noeta_normalised trains it without them. "
                  "Default: the grid's (on in every grid).")
flags.DEFINE_bool("eta_heads", None,
                  "jax engine: the sampled principal's policy and value heads linear in eta "
                  "(the recipe's --principal_eta_heads); --noeta_heads trains it without. "
                  "Default: the grid's (on in every grid).")

FLAGS = flags.FLAGS


def _check_subset(name: str, allowed: tuple[str, ...]) -> None:
    def check(values: list[str] | None) -> bool:
        if values is None:
            return True
        bad = [v for v in values if v not in allowed]
        if bad or not values or len(set(values)) != len(values):
            raise flags.ValidationError(
                f"--{name}={','.join(values)}: each must be one of {list(allowed)}, no repeats, "
                "at least one")
        return True

    flags.register_validator(name, check)


_check_subset("objectives", tuple(ex.OBJECTIVES))
_check_subset("principals", ex.PRINCIPALS)
_check_subset("welfare_on", WELFARE_ON)
flags.register_validator("principals", lambda v: v is None or bool(set(v) & set(ex.LEARNERS)),
                         message="--principals must include learned or another co-trained "
                         f"principal ({', '.join(ex.LEARNERS)}): every comparison is a "
                         "co-trained principal against a baseline")


@flags.multi_flags_validator(["principals", "engine"])
def _check_engine(values: dict) -> bool:
    jax_only = [p for p in values["principals"] or () if p in ex.JAX_ONLY]
    if values["engine"] != "jax" and jax_only:
        raise flags.ValidationError(
            f"--principals={','.join(jax_only)} needs --engine=jax (eta sampling is a twin "
            "recipe; the two-timescale principals set the twin trainer's rates)")
    return True


@flags.multi_flags_validator(["players_only_fraction", "engine"],
                             message="--players_only_fraction needs --engine=jax (the jax "
                             "recipe's curriculum)")
def _check_recipe_engine(values: dict) -> bool:
    return values["players_only_fraction"] is None or values["engine"] == "jax"


def _check_seeds(text: str | None) -> bool:
    if text is None:
        return True
    try:
        ex.check_seeds(ex.parse_seeds(text))
    except ValueError as e:
        raise flags.ValidationError(str(e)) from e
    return True


flags.register_validator("seeds", _check_seeds)
cli.require_finite_floats()


def _ordered(values: list[str], order: tuple[str, ...] | list[str]) -> list[str]:
    return [v for v in order if v in values]


def curve_panels(jobs: list[runs.Job], objectives: list[str], principals: list[str],
                 welfare_on: list[str]) -> dict[tuple[str, str], dict[str, list[tuple[int, str]]]]:
    """(definition, objective) -> principal -> [(seed, run folder)] of the first stage's
    runs: a learned or two-timescale run in the panels it serves, a scripted run in every panel, the
    sampled principal in a panel of its own per definition (objective "sampled")."""
    trained = [(t, d) for j in jobs for t, d in zip(j.tasks, j.run_dirs, strict=True)]
    panels: dict[tuple[str, str], dict[str, list[tuple[int, str]]]] = {}
    for w in welfare_on:
        for o in objectives:
            panels[(w, o)] = {p: [(t.seed, d) for t, d in trained if t.principal == p and (
                t.objective is None or (t.objective == o
                                        and t.welfare_on == ex.learned_welfare_on(o, w)))]
                for p in principals if p not in (ex.BEST_FIXED, ex.SAMPLED, ex.SEARCH)}
        if ex.SAMPLED in principals:
            panels[(w, ex.SAMPLED)] = {ex.SAMPLED: [
                (t.seed, d) for t, d in trained if t.principal == ex.SAMPLED
                and t.welfare_on == w]}
    return panels


#: The exit status of a call whose training a signal stopped (128 + SIGINT, the shell's).
STOPPED_EXIT_CODE = 130


def _run_jobs(jobs: list, log) -> list[dict]:
    """runs.run_jobs, with a run that diverged ending the call in one line (the runs
    finished before it are kept and reused by the same command once the setting is
    changed) and the trainers' exit status for divergence; a job stopped by a signal
    ends the call too, before anything of it is evaluated."""
    from sed_meltingpot.runs.runlog import DIVERGED_EXIT_CODE, TrainingDiverged

    try:
        return runs.run_jobs(jobs, num_workers=FLAGS.num_workers,
                             ray_address=FLAGS.ray_address, log=log)
    except TrainingDiverged as e:
        print(f"error: {e} (the experiment stopped; finished runs are kept and reused)",
              file=sys.stderr, flush=True)
        sys.exit(DIVERGED_EXIT_CODE)
    except runs.TrainingStopped as e:
        print(f"stopped: {e} (finished runs are kept and reused)", file=sys.stderr, flush=True)
        sys.exit(STOPPED_EXIT_CODE)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    start = time.time()
    grid = ex.GRIDS[FLAGS.grid]
    changes: dict = {}
    if FLAGS.num_iterations:  # the grid's description states its own budget
        changes.update(num_iterations=FLAGS.num_iterations, twin_iterations=FLAGS.num_iterations,
                       description=f"{grid.description}; here --num_iterations="
                                   f"{FLAGS.num_iterations} iterations per run instead")
    if FLAGS.eval_episodes:
        changes["eval_episodes"] = FLAGS.eval_episodes
    if FLAGS.lua_episodes:
        changes["lua_episodes"] = FLAGS.lua_episodes
    if FLAGS.search_seeds:
        changes["stackelberg_seeds"] = FLAGS.search_seeds
    if FLAGS.search_seed_start is not None:
        changes["stackelberg_seed_start"] = FLAGS.search_seed_start
    if FLAGS.search_first_cut is not None:
        if FLAGS.search_first_cut == 0:
            raise app.UsageError("--search_first_cut=0: must be in (0, 1] (a share of a run's "
                                 "iterations)")
        changes["stackelberg_first_cut"] = FLAGS.search_first_cut
    if FLAGS.search_choice:
        changes["stackelberg_choice"] = FLAGS.search_choice
    if FLAGS.ucb_detrend is not None:
        changes["designer"] = dataclasses.replace(grid.designer, ucb_detrend=FLAGS.ucb_detrend)
    if FLAGS.players_only_fraction is not None:
        from sed_meltingpot.training.jax.recipe import PrincipalRecipe

        changes["recipe"] = dataclasses.replace(grid.recipe or PrincipalRecipe(),
                                                players_only_fraction=FLAGS.players_only_fraction)
    if FLAGS.eta_normalised is not None:
        changes["eta_normalised"] = FLAGS.eta_normalised
    if FLAGS.eta_heads is not None:
        changes["eta_heads"] = FLAGS.eta_heads
    if FLAGS.welfare_on:
        changes["welfare_on"] = tuple(_ordered(FLAGS.welfare_on, list(WELFARE_ON)))
    grid = dataclasses.replace(grid, **changes).validate()
    seeds = (ex.parse_seeds(FLAGS.seeds) if FLAGS.seeds is not None
             else list(range(grid.num_seeds)))
    objectives = _ordered(FLAGS.objectives, list(ex.OBJECTIVES))
    engine = engines.get_engine(FLAGS.engine)
    principals = _ordered(FLAGS.principals or [
        p for p in ex.PRINCIPALS if engine.name == "jax" or p not in ex.JAX_ONLY], ex.PRINCIPALS)
    welfare_on = list(grid.welfare_on)
    out = FLAGS.output_dir
    try:  # hours of training must not end in a traceback about the folder
        cli.check_writable("output_dir", out)
        # One call per folder: two would train the same runs and write one results.csv.
        run_lock.hold_until_exit(out)
        if ex.SEARCH in principals:  # before any training: the search's seeds are its own
            stackelberg.grid_search_seeds(grid, seeds)
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    engines.load_later_stages(engine.name)  # the code this call runs is the code at its start
    jobs = runs.plan_jobs(engine, grid, out, objectives, principals, seeds, welfare_on)
    n_runs = sum(len(j.tasks) for j in jobs)
    budget = grid.budget(engine.name)
    print(f"grid {grid.name} ({grid.description}); engine {engine.name}; seeds {seeds}; "
          f"definitions {welfare_on}; {n_runs} training runs of {budget} env steps each, "
          f"in {len(jobs)} jobs, then best_fixed's fresh players; output {out}", flush=True)

    log = lambda s: print(s, flush=True)  # noqa: E731
    results = _run_jobs(jobs, log)
    searches = [s for res in results for s in res["searches"]]
    second = runs.best_fixed_jobs(engine, grid, out, searches, jobs) if searches else []
    if second:
        print(f"best_fixed: {len(searches)} searches chose {len(second)} run groups "
              f"({sum(1 for j in second for d in j.run_dirs if not runs.is_trained(d))} "
              "runs to train)", flush=True)
        results += _run_jobs(second, log)
    search_lines: list[str] = []
    if ex.SEARCH in principals:  # its searches, then fresh players under each choice
        try:
            chosen, search_lines = stackelberg.run_searches(engine, grid, out, objectives,
                                                         welfare_on, seeds, log)
        except ValueError as e:  # e.g. a searches/ folder of other settings
            raise app.UsageError(str(e)) from e
        third = runs.best_fixed_jobs(engine, grid, out, chosen, jobs, principal=ex.SEARCH)
        second += third
        results += _run_jobs(third, log)
    rows = [r for res in results for r in res["rows"]]
    order = {p: i for i, p in enumerate(ex.PRINCIPALS)}
    labels = ex.sampled_objectives(objectives, grid.rate_etas)
    rows.sort(key=lambda r: (welfare_on.index(r["welfare_on"]), labels.index(r["objective"]),
                             order[r["principal"]], r["substrate"] != engine.substrate,
                             r["seed"]))
    b = grid.game.num_brackets
    csv_path = ex.write_csv(rows, os.path.join(out, "results.csv"), b)

    panels = curve_panels(jobs, objectives, principals, welfare_on)
    curves = {k: {p: [plotting.load_progress(d) for _, d in found]
                  for p, found in per_p.items()} for k, per_p in panels.items()}
    curves_csv = ex.write_learning_curves(
        curves, {k: {p: [seed for seed, _ in found] for p, found in per_p.items()}
                 for k, per_p in panels.items()}, os.path.join(out, "learning_curves.csv"))
    figures = [
        ex.plot_learning_curves(curves, os.path.join(out, "learning_curves.png")),
        ex.plot_equality_productivity(rows, objectives, principals, engine.substrate,
                                      os.path.join(out, "equality_productivity.png"),
                                      welfare_on=welfare_on),
    ]
    if ex.SAMPLED in principals:
        figures.append(ex.plot_rates_vs_eta(rows, engine.substrate, b,
                                            os.path.join(out, "rates_vs_eta.png"),
                                            welfare_on=welfare_on))
    wall = time.time() - start
    trained = sum(r["trained"] for r in results)
    n_all = n_runs + sum(len(j.tasks) for j in second
                         if j.tasks[0].principal in (ex.BEST_FIXED, ex.SEARCH))
    iterations = grid.num_iterations if engine.name == "rllib" else grid.twin_iterations
    command = " ".join(["python", "scripts/experiment.py"] + [shlex.quote(a)
                                                              for a in sys.argv[1:]])
    recipe = engines.task_recipe(grid, ex.TrainTask(ex.LEARNED, objectives[0], 0)) \
        if engine.name == "jax" else None
    meta = {
        "grid": grid.name, "engine": engine.name, "command": f"`{command}`",
        "seeds": ", ".join(map(str, seeds)),
        "budget": (f"{budget} env steps per run ({iterations} iterations), the same for "
                   f"every principal; tax cap ramp over tax_cap_fraction="
                   f"{grid.tax_cap_fraction} of "
                   + ("phase 2 (jax recipe)" if engine.name == "jax" else "the run")),
        "game": (f"{grid.game.num_players} players, {grid.game.episode_length}-step episodes, "
                 f"tax period {grid.game.tax_period}, brackets {grid.game.thresholds}, "
                 f"preset {grid.preset}, {grid.frame_stack} frame(s); schedules "
                 + ", ".join(f"{k} {v}" for k, v in ex.SCHEDULES.items())
                 + f"; welfare definitions {', '.join(welfare_on)}"),
        "evaluation": (f"{grid.eval_episodes} episodes per run and principal from seed "
                       f"{ex.EVAL_SEED} ({engine.substrate}); "
                       + (f"the learned runs also {grid.lua_episodes} on the Lua substrate; "
                          if engine.name == "jax" else "")
                       + f"best_fixed searched over {grid.search_resolution}^{b} schedules x "
                       f"{grid.search_episodes} episodes from seed "
                       f"{ex.EVAL_SEED + ex.SEARCH_SEED_OFFSET}; the sampled principal at "
                       f"etas {', '.join(f'{e:g}' for e in grid.rate_etas)} besides the "
                       "objectives"),
        "wall_time": f"{wall / 60:.1f} min ({os.cpu_count()} CPUs, {FLAGS.num_workers} "
                     f"worker(s){', Ray at ' + FLAGS.ray_address if FLAGS.ray_address else ''}; "
                     f"{trained} of {n_all} runs trained by this call, the others reused "
                     "from an earlier call)",
    }
    if search_lines:
        meta["search"] = ("the search principal (experiment/searches.py, design/search.py) "
                          f"over the arm set {grid.stackelberg_candidates!r}, successive "
                          "halving: " + "; ".join(search_lines))
    if recipe is not None:
        meta["recipe"] = ("the learned principal's (training/jax/recipe.py): "
                          + ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(recipe).items())
                          + f"; the sampled principal's eta_sampling={grid.eta_sampling}, "
                          f"eta_normalised={grid.eta_normalised}, eta_heads={grid.eta_heads}")
    md = ex.results_markdown(rows, objectives=objectives, principals=principals,
                             substrate=engine.substrate, meta=meta, num_brackets=b,
                             welfare_on=welfare_on, figures=figures, curves=curves,
                             learned_rates={k: ex.last_period_rates(per_p[ex.LEARNED])
                                            for k, per_p in curves.items()
                                            if ex.LEARNED in per_p})
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(md + "\n")
    with open(os.path.join(out, "experiment.json"), "w") as f:
        json.dump({"meta": meta, "grid": dataclasses.asdict(grid), "objectives": objectives,
                   "principals": principals, "welfare_on": welfare_on, "seeds": seeds,
                   "searches": [dataclasses.asdict(s) for s in searches],
                   "wall_time_s": wall, "train_s": [r["train_s"] for r in results],
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
