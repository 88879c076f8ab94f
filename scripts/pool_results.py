"""Pool the results of experiment calls that ran the same grid on different seeds.

Example (the paper's game: seeds 0-2 from one call, 3-5 from another):
  python scripts/pool_results.py --inputs=docs/results/paper_fast,outputs/paper_fast_s3 \
      --objectives=eta=1 --principals=learned,none,flat100 --welfare_on=apples \
      --output_dir=outputs/paper_fast_pooled

Each input is an --output_dir of scripts/experiment.py (its results.csv and
experiment.json). The inputs must have run the same grid: every setting their
experiment.json records in common must be equal but the seeds and the definitions
run (the settings only one records are listed in results.md), and no (definition,
objective, principal, seed, substrate) may come from two inputs. Every input must
contribute rows (one with an empty results.csv is refused), and results.md credits
each input with the seeds of the rows pooled from it. A principal run by some inputs
only (a new principal run on every seed in a call of its own) is pooled over their
seeds; its paired tests pair the seeds both sides hold. Writes
results.csv, results.md (the tables, paired t-tests by seed with Holm's correction
and signed-rank checks of scripts/experiment.py, over the pooled seeds) and
experiment.json to --output_dir. It reads no runs, so it draws no learning curves.
"""

from __future__ import annotations

import json
import os
import shlex
import sys

from absl import app, flags

from sed_meltingpot import cli
from sed_meltingpot import experiment as ex

flags.DEFINE_list("inputs", None, "Output folders of scripts/experiment.py, two or more.")
flags.DEFINE_string("output_dir", None, "Where the pooled results.csv, results.md go.")
flags.DEFINE_list("objectives", None, "Subset of the objectives every input ran "
                  "(default: all of those).")
flags.DEFINE_list("principals", None, "Subset of the principals the inputs ran "
                  "(default: all of those; one run by some inputs only is pooled over "
                  "their seeds).")
flags.DEFINE_list("welfare_on", None, "Subset of the definitions every input ran "
                  "(default: all of those).")
FLAGS = flags.FLAGS
cli.require_finite_floats()

#: experiment.json grid fields that may differ between the inputs: the seeds, and the
#: definitions each call ran (only those all of them ran are pooled: --welfare_on).
FREE_FIELDS = ("num_seeds", "welfare_on")


def _read(folder: str) -> tuple[dict, list[dict]]:
    paths = [os.path.join(folder, name) for name in ("experiment.json", "results.csv")]
    for path in paths:
        if not os.path.isfile(path):
            raise app.UsageError(f"--inputs: {path} does not exist (an input is an "
                                 "--output_dir of scripts/experiment.py)")
    try:  # a damaged file: one line naming it
        return ex.read_experiment_json(paths[0]), ex.read_csv(paths[1])
    except ValueError as e:
        raise app.UsageError(f"--inputs: {e}") from None


def _common(name: str, chosen: list[str] | None, per_input: list[list[str]]) -> list[str]:
    """The values every input ran, in the first input's order; --<name> a subset."""
    common = [v for v in per_input[0] if all(v in other for other in per_input[1:])]
    return _chosen(name, chosen, common, f"not run by every input (all of them ran {common})")


def _union(chosen: list[str] | None, per_input: list[list[str]]) -> list[str]:
    """The principals any input ran, in first-seen order; --principals a subset. A
    principal run by some inputs only is pooled over their seeds (its paired tests
    pair the seeds both sides hold)."""
    union = list(dict.fromkeys(v for values in per_input for v in values))
    return _chosen("principals", chosen, union, f"run by no input (they ran {union})")


def _chosen(name: str, chosen: list[str] | None, available: list[str], missing_why: str
            ) -> list[str]:
    """`available`, or those of --<name> (`chosen`) in its order; a one-line UsageError
    naming the chosen values that are not available, and why (`missing_why`)."""
    if chosen is None:
        return available
    missing = [v for v in chosen if v not in available]
    if missing:
        raise app.UsageError(f"--{name}={','.join(chosen)}: {missing} {missing_why}")
    return [v for v in available if v in chosen]


def grid_differences(grids: list[dict]) -> tuple[list[str], list[str]]:
    """(fields recorded by every input that differ, fields only some record)."""
    keys = [set(g) - set(FREE_FIELDS) for g in grids]
    shared = set.intersection(*keys)
    differ = sorted(k for k in shared if any(g[k] != grids[0][k] for g in grids[1:]))
    return differ, sorted(set.union(*keys) - shared)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    if not FLAGS.inputs or len(FLAGS.inputs) < 2:
        raise app.UsageError(f"--inputs={FLAGS.inputs!r}: give two or more folders")
    if not FLAGS.output_dir:
        raise app.UsageError("--output_dir is required")
    try:
        cli.check_writable("output_dir", FLAGS.output_dir)
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    read = [_read(folder) for folder in FLAGS.inputs]
    grids = [info["grid"] for info, _ in read]
    differ, partial = grid_differences(grids)
    if differ:
        raise app.UsageError(
            "--inputs ran different grids: " + "; ".join(
                f"{k}: " + ", ".join(f"{folder}={g[k]!r}" for folder, g
                                     in zip(FLAGS.inputs, grids, strict=True))
                for k in differ))
    engines = {info["meta"]["engine"] for info, _ in read}
    if len(engines) > 1:
        raise app.UsageError(f"--inputs ran different engines: {sorted(engines)}")
    objectives = _common("objectives", FLAGS.objectives, [i["objectives"] for i, _ in read])
    principals = _union(FLAGS.principals, [i["principals"] for i, _ in read])
    welfare_on = _common("welfare_on", FLAGS.welfare_on, [i["welfare_on"] for i, _ in read])
    for name, values in (("objectives", objectives), ("principals", principals),
                         ("welfare_on", welfare_on)):
        if not values:
            raise app.UsageError(f"--inputs: no {name} in common (each input's "
                                 f"experiment.json lists the {name} it ran)")
    keep = lambda r: (r["objective"] in objectives and r["principal"] in principals  # noqa: E731
                      and ex.definition_of(r) in welfare_on)
    for folder, (_, rows) in zip(FLAGS.inputs, read, strict=True):
        if not rows:
            raise app.UsageError(f"--inputs: {os.path.join(folder, 'results.csv')} holds no "
                                 "rows (a header only): it contributes no seeds; leave it out")
    kept = [[r for r in rows if keep(r)] for _, rows in read]
    try:
        rows = ex.pool_rows(list(zip(FLAGS.inputs, kept, strict=True)))
    except ValueError as e:
        raise app.UsageError(f"--inputs: {e}") from None

    engine = engines.pop()
    substrate = ex.SUBSTRATE_TWIN if engine == "jax" else ex.SUBSTRATE_LUA
    first = read[0][0]
    b = len(first["grid"]["game"]["thresholds"]) - 1  # GameConfig: thresholds bound brackets
    csv_path = ex.write_csv(rows, os.path.join(FLAGS.output_dir, "results.csv"), b)
    seeds = sorted({int(r["seed"]) for r in rows})
    command = " ".join(["python", "scripts/pool_results.py"]
                       + [shlex.quote(a) for a in sys.argv[1:]])
    meta = {
        "grid": first["meta"]["grid"], "engine": engine, "command": f"`{command}`",
        # The seeds each input's pooled rows hold, not those its experiment.json lists.
        "seeds": "; ".join(f"{', '.join(map(str, sorted({int(r['seed']) for r in part})))} "
                           f"from `{folder}` ({info['meta'].get('command', '')})"
                           for folder, (info, _), part
                           in zip(FLAGS.inputs, read, kept, strict=True)),
        "budget": first["meta"].get("budget", ""),
        "game": first["meta"].get("game", ""),
        "recipe": first["meta"].get("recipe", ""),
        "evaluation": first["meta"].get("evaluation", ""),
        "wall_time": " + ".join(f"{info.get('wall_time_s', float('nan')) / 60:.1f} min"
                                for info, _ in read) + " (the inputs' calls)"
                     + (f"; grid fields recorded by some inputs only: {', '.join(partial)}"
                        if partial else ""),
    }
    md = ex.results_markdown(rows, objectives=objectives, principals=principals,
                             substrate=substrate, meta=meta, num_brackets=b,
                             welfare_on=welfare_on)
    with open(os.path.join(FLAGS.output_dir, "results.md"), "w") as f:
        f.write(md + "\n")
    with open(os.path.join(FLAGS.output_dir, "experiment.json"), "w") as f:
        json.dump({"meta": meta, "grid": first["grid"], "objectives": objectives,
                   "principals": principals, "welfare_on": welfare_on, "seeds": seeds,
                   "inputs": list(FLAGS.inputs)}, f, indent=2, default=str)
    print(md)
    print(f"wrote {csv_path}, {os.path.join(FLAGS.output_dir, 'results.md')}")


if __name__ == "__main__":
    app.run(main)
