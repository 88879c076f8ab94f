"""Plot training curves from run directories' progress.jsonl (runs overlaid).

Examples:
  python scripts/plot.py outputs/run --output_dir=outputs/plots
  python scripts/plot.py --runs=outputs/run_a,outputs/run_b --width=1600 --height=900 --dpi=150

Writes learning_curve.png, objective.png, returns.png, tax_rates.png,
equality_productivity.png and throughput.png. The logic is in sed_meltingpot.analysis.plotting.
"""

from __future__ import annotations

import os

from absl import app, flags

from sed_meltingpot import cli
from sed_meltingpot.analysis import plotting

flags.DEFINE_list("runs", [], "Run directories (or give them as arguments).")
flags.DEFINE_string("output_dir", None, "Where the PNGs go (default: <first run>/plots).")
flags.DEFINE_integer("width", 1000, "Image width in pixels.", lower_bound=100)
flags.DEFINE_integer("height", 700, "Image height in pixels.", lower_bound=100)
flags.DEFINE_integer("dpi", 100, "Dots per inch (text size scales with it).", lower_bound=10)

FLAGS = flags.FLAGS
cli.require_finite_floats()


def main(argv: list[str]) -> None:
    runs = list(FLAGS.runs) + argv[1:]
    if not runs:
        raise app.UsageError("give run directories as arguments or with --runs")
    missing = [r for r in runs if not os.path.exists(os.path.join(r, plotting.PROGRESS_FILE))
               and not os.path.isfile(r)]
    if missing:
        raise app.UsageError(f"--runs: no {plotting.PROGRESS_FILE} in {missing}")
    first = runs[0] if os.path.isdir(runs[0]) else os.path.dirname(runs[0]) or "."
    output_dir = FLAGS.output_dir or os.path.join(first, "plots")  # a log file: beside it
    try:  # before the logs are read and drawn
        cli.check_writable("output_dir", output_dir)
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    paths = plotting.plot_runs(runs, output_dir, width=FLAGS.width, height=FLAGS.height,
                               dpi=FLAGS.dpi)
    print("wrote " + ", ".join(paths))


if __name__ == "__main__":
    app.run(main)
