"""Runs one absl script's `main` on many command lines in one process.

    python tests/script_harness.py scripts/train.py < argvs.json > results.json

stdin: a JSON list of argument lists (without the program name), or of
{"argv": [...], "cwd": folder} to run a command line in its own folder. Each is
parsed by the script's own flags (validators included) and, if the script
has a `--dry_run` flag, handed to its `main` with `--dry_run` added, which
checks everything and stops before the work (training, evaluating,
rendering). Scripts without `--dry_run` are only parsed. stdout: a JSON list
with, per command line, `outcome`:

* "ok": parsed (and, with --dry_run, main returned);
* "usage": a flag or usage error, what `absl.app.run` prints as one line
  without a traceback (`message` holds it);
* "exit": main called sys.exit with a non-zero code;
* "crash": any other exception (`message` holds the traceback).

One process per script because absl flags are global: the scripts define
flags of the same names and cannot be imported together.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import runpy
import sys
import traceback


def run_all(script: str, argvs: list) -> list[dict[str, str]]:
    from absl import app, flags

    namespace = runpy.run_path(script, run_name="sed_script_under_test")
    if "parse_args" in namespace:  # an argparse script (the benchmarks): parse only
        return [_parse_argparse(namespace["parse_args"], argv) for argv in argvs]
    main = namespace["main"]
    FLAGS = flags.FLAGS
    has_dry_run = "dry_run" in FLAGS
    results = []
    for argv in argvs:
        if isinstance(argv, dict):
            os.chdir(argv["cwd"])
            argv = argv["argv"]
        FLAGS.unparse_flags()
        args = [script, *argv] + (["--dry_run"] if has_dry_run else [])
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                rest = FLAGS(args)
                if has_dry_run:
                    main(rest)
            results.append({"outcome": "ok", "message": out.getvalue()[-2000:]})
        except (flags.Error, app.UsageError) as e:
            results.append({"outcome": "usage", "message": str(e)})
        except SystemExit as e:  # a main that ends with sys.exit(code)
            outcome = "ok" if e.code in (0, None) else "exit"
            results.append({"outcome": outcome, "message": f"exit {e.code}\n"
                            + out.getvalue()[-2000:]})
        except BaseException:  # noqa: BLE001 - reported to the test, which fails
            results.append({"outcome": "crash", "message": traceback.format_exc()})
    return results


def _parse_argparse(parse_args, argv) -> dict[str, str]:
    """argparse prints its usage error to stderr and exits 2. A command with a folder
    of its own is parsed there (a parser may check that an input file exists)."""
    if isinstance(argv, dict):
        os.chdir(argv["cwd"])
        argv = argv["argv"]
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            parse_args(list(argv))
    except SystemExit as e:
        if e.code not in (0, None):
            return {"outcome": "usage", "message": err.getvalue()[-2000:]}
    return {"outcome": "ok", "message": ""}


if __name__ == "__main__":
    argvs = json.load(sys.stdin)
    results = run_all(sys.argv[1], argvs)
    sys.stdout.flush()
    print("\n@@RESULTS@@" + json.dumps(results))
