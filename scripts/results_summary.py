"""Regenerate the results page's summary table and forest plot (issue 29).

  python scripts/results_summary.py           # rewrite docs/results/index.md's table, forest.png
  python scripts/results_summary.py --check   # exit 1 if the committed table is stale

Reads every committed docs/results/<call>/results.csv (with its experiment.json) but the
calls sed_meltingpot.experiment.summary.NOT_COUNTED lists (superseded or not a grid
comparison), merges the calls of each grid, and per (grid, welfare definition,
objective) compares the learned principal with the best baseline (paired t by seed,
Holm over learned against every baseline there). The table replaces what lies between
the `<!-- summary:start -->` and `<!-- summary:end -->` lines of --page, so the prose
around it stays. The logic is in sed_meltingpot.experiment.summary.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags

from sed_meltingpot import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

flags.DEFINE_string("results_dir", os.path.join(ROOT, "docs", "results"),
                    "The folder of committed experiment calls (one sub-folder each).")
flags.DEFINE_string("page", None, "The page whose marked block gets the table "
                    "(default: <results_dir>/index.md).")
flags.DEFINE_string("forest", None, "Where the forest plot goes (default: "
                    "<results_dir>/forest.png); empty: no plot.")
flags.DEFINE_bool("check", False, "Write nothing; exit 1 if the page's table differs from "
                  "a fresh one (the plot is not compared: PNG bytes vary by matplotlib).")
FLAGS = flags.FLAGS
cli.require_finite_floats()


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    from sed_meltingpot.experiment import summary

    if not os.path.isdir(FLAGS.results_dir):
        raise app.UsageError(f"--results_dir={FLAGS.results_dir}: no such folder")
    page = FLAGS.page or os.path.join(FLAGS.results_dir, "index.md")
    if not os.path.isfile(page):
        raise app.UsageError(f"--page={page}: no such file")
    forest = (os.path.join(FLAGS.results_dir, "forest.png") if FLAGS.forest is None
              else FLAGS.forest)
    try:
        if not FLAGS.check:  # what it writes, before the calls are read
            cli.check_writable("page", page, is_file=True)
            if forest:
                cli.check_writable("forest", forest, is_file=True)
        rows = summary.summarise_folder(FLAGS.results_dir)
    except ValueError as e:  # a damaged results.csv / experiment.json, named
        raise app.UsageError(str(e)) from None
    table = summary.summary_table(rows)
    with open(page) as f:
        text = f.read()
    try:
        committed = summary.between_markers(text)
    except ValueError as e:
        raise app.UsageError(f"--page={page}: {e}") from None
    if FLAGS.check:
        if committed != table:
            print(f"{page}: the summary table is stale; run scripts/results_summary.py\n"
                  f"--- committed\n{committed}\n--- fresh\n{table}")
            sys.exit(1)
        print(f"{page}: the summary table matches the committed results ({len(rows)} rows)")
        return
    with open(page, "w") as f:
        f.write(summary.replace_between_markers(text, table))
    print(table)
    print(f"wrote {page}")
    if forest:
        print(f"wrote {summary.plot_forest(rows, forest)}")


if __name__ == "__main__":
    app.run(main)
