"""A missing optional part fails with one line naming its extra (issue 18, item 3).

Each case runs in a fresh interpreter where the part's top module is made unimportable
(`sys.modules[name] = None`, which makes Python's import raise ModuleNotFoundError as if
it were not installed), imports the module that needs it, and prints the error.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from sed_meltingpot.core import optional

# (module made unimportable, module imported, its extra)
CASES = [
    ("meltingpot", "sed_meltingpot.game.substrate", "lua"),
    ("meltingpot", "sed_meltingpot.game.sed_game", "lua"),
    ("pettingzoo", "sed_meltingpot.envs.pettingzoo_env", "lua"),
    ("torch", "sed_meltingpot.training.rllib.modules", "rllib"),
    ("ray", "sed_meltingpot.training.rllib.callbacks", "rllib"),
    ("jaxmarl", "sed_meltingpot.twin.jaxmarl_env", "jaxmarl"),
]


def _import_without(missing: str, module: str) -> dict[str, object]:
    code = textwrap.dedent(f"""
        import importlib, json, sys, traceback
        sys.modules[{missing!r}] = None
        try:
            importlib.import_module({module!r})
        except BaseException as e:
            last = traceback.format_exception_only(e)[-1].rstrip("\\n")
            print(json.dumps({{"type": type(e).__name__, "message": str(e), "last": last,
                               "module_not_found": isinstance(e, ModuleNotFoundError)}}))
        else:
            print(json.dumps({{"type": None}}))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(("missing", "module", "extra"), CASES)
def test_a_missing_part_names_its_extra_in_one_line(missing, module, extra):
    got = _import_without(missing, module)
    assert got["type"] == "MissingExtra" and got["module_not_found"], got
    message = got["message"]
    assert "\n" not in message
    needed_by = (module if module != "sed_meltingpot.game.sed_game"
                 else "sed_meltingpot.game.substrate")
    assert message.startswith(f"{needed_by} needs the '{extra}' extra ({optional.EXTRAS[extra]})"
                              f": pip install 'sed-meltingpot[{extra}]' ("), message
    assert missing in message  # Python's own reason, naming the missing module
    assert got["last"] == f"sed_meltingpot.core.optional.MissingExtra: {message}"


def test_extra_import_passes_other_errors_and_checks_its_extra():
    with pytest.raises(ValueError, match="extra='gpu' must be one of"):
        with optional.extra_import("gpu", "x"):
            pass
    with pytest.raises(ImportError, match="cannot import name 'nothing_here'"):
        with optional.extra_import("lua", "x"):  # not a missing module: unchanged
            from sed_meltingpot.game.config import nothing_here  # noqa: F401
    with optional.extra_import("lua", "x"):
        import sed_meltingpot.game.config  # noqa: F401  (present: no error)


def test_setup_extras_match_the_messages():
    import ast
    import pathlib

    tree = ast.parse(pathlib.Path(__file__).resolve().parents[1].joinpath("setup.py").read_text())
    extras = next(node.value for node in tree.body if isinstance(node, ast.Assign)
                  and any(getattr(t, "id", None) == "EXTRAS" for t in node.targets))
    assert sorted(ast.literal_eval(extras)) == sorted(optional.EXTRAS)
