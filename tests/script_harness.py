"""Runs one absl script's `main` on many command lines in one process.

    python tests/script_harness.py scripts/train.py < argvs.json > results.json
    python tests/script_harness.py --float_flags scripts/train.py  # its float flags
    python tests/script_harness.py --finite_probe scripts/train.py  # each at nan and inf

stdin: a JSON list of argument lists (without the program name), or of
{"argv": [...], "cwd": folder, "main": true} to run a command line in its own folder
(cwd) or (main) to hand it to `main` even without `--dry_run` (for a command line
that must fail in `main` before any work starts: an unwritable output path, a
damaged input file). Each is
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

`--float_flags` prints the names of the script's float flags instead: absl flags
whose parser is a FloatParser, and argparse options whose `type` turns "1.5" into
1.5 (a plain `float` or the package's `finite_float`), found without a command line.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import runpy
import sys
import traceback


def _load(script: str) -> dict:
    return runpy.run_path(script, run_name="sed_script_under_test")


def run_all(script: str, argvs: list, namespace: dict | None = None) -> list[dict[str, str]]:
    from absl import app, flags

    namespace = namespace if namespace is not None else _load(script)
    if "parse_args" in namespace:  # an argparse script (the benchmarks): parse only
        return [_parse_argparse(namespace["parse_args"], argv) for argv in argvs]
    main = namespace["main"]
    FLAGS = flags.FLAGS
    has_dry_run = "dry_run" in FLAGS
    results = []
    for argv in argvs:
        run_main = has_dry_run
        if isinstance(argv, dict):
            os.chdir(argv.get("cwd") or os.getcwd())
            run_main = run_main or bool(argv.get("main"))
            argv = argv["argv"]
        FLAGS.unparse_flags()
        args = [script, *argv] + (["--dry_run"] if has_dry_run else [])
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                rest = FLAGS(args)
                if run_main:
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


class _Captured(Exception):
    """Raised by a patched `ArgumentParser.parse_args`, carrying the parser."""


def float_flags(script: str, namespace: dict | None = None) -> list[str]:
    """The names of `script`'s float flags (see the module docstring)."""
    import argparse

    from absl import flags

    def capture(self, *args, **kwargs):
        raise _Captured(self)

    namespace = namespace if namespace is not None else _load(script)
    original = argparse.ArgumentParser.parse_args
    argparse.ArgumentParser.parse_args = capture
    try:
        if "argparse" not in namespace:  # an absl script
            FLAGS = flags.FLAGS
            return sorted(name for name in FLAGS if FLAGS[name].name == name
                          and isinstance(FLAGS[name].parser, flags.FloatParser))
        try:
            (namespace.get("parse_args") or namespace["main"])(*(
                [[]] if "parse_args" in namespace else []))
        except _Captured as e:
            parser = e.args[0]
        else:
            raise AssertionError(f"{script}: no ArgumentParser.parse_args call found")
    finally:
        argparse.ArgumentParser.parse_args = original
    found = []
    for action in parser._actions:
        try:
            is_float = callable(action.type) and action.type("1.5") == 1.5
        except (TypeError, ValueError, argparse.ArgumentTypeError):
            is_float = False
        if is_float:
            found.append(action.option_strings[-1].lstrip("-"))
    return sorted(found)


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
    if sys.argv[1] == "--float_flags":
        print("\n@@RESULTS@@" + json.dumps(float_flags(sys.argv[2])))
        sys.exit(0)
    if sys.argv[1] == "--finite_probe":  # each float flag at nan, then at inf
        loaded = _load(sys.argv[2])
        names = float_flags(sys.argv[2], loaded)
        argvs = [[f"--{name}={value}"] for value in ("nan", "inf") for name in names]
        results = run_all(sys.argv[2], argvs, loaded)
        sys.stdout.flush()
        print("\n@@RESULTS@@" + json.dumps({"flags": names, "results": results}))
        sys.exit(0)
    argvs = json.load(sys.stdin)
    results = run_all(sys.argv[1], argvs)
    sys.stdout.flush()
    print("\n@@RESULTS@@" + json.dumps(results))
