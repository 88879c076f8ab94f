"""Social Environment Design on Melting Pot (see README.md).

The Lua level and the substrate configs live at the top of the repository
(`lua/`, `substrates/`); setup.py installs them inside this package as
`sed_meltingpot.lua` and `sed_meltingpot.substrates`. A process that
imports this package straight from a source checkout does not see that
mapping: Ray's env runners start in the driver's working directory, so a run
launched from the repository root imports the checkout's `sed_meltingpot/`
even when the project is installed (non-editable) elsewhere, and
`from sed_meltingpot import lua` failed there. In a checkout the two folders
are therefore registered under their installed names, from where they sit.

Import order: `import meltingpot` loads TensorFlow, and Triton (which torch
imports when an optimizer is made, on CUDA builds of torch) crashes the
process with a segmentation fault when it is imported after TensorFlow
(`python -c "import tensorflow; import triton"` exits 139 with triton 3.7
and 3.8, i.e. torch 2.13 and 2.14 from PyPI). Imported before TensorFlow it
works, so this package, which every script and Ray worker imports before
Melting Pot, imports Triton first when it is installed.

Layers (README Layout), each importing only from those before it: core/ (formulas),
game/ (rules, settings, SEDGame), envs/ (RLlib, PettingZoo), twin/ (the game world
in JAX), runs/ (engine-neutral run settings and files), training/ (the two engines:
training/rllib/ on the Lua substrate and training/jax/ on the twin, which do not
import each other), evaluation/, analysis/, experiment/, perf/ (the GPU check and
the benchmarks), and cli.py for the scripts.
"""

from __future__ import annotations

import importlib.util
import os
import sys

#: The release (setup.py's `version`; tests/test_release.py keeps the two equal). A
#: literal, not importlib.metadata: an editable install's metadata keeps the version it
#: was installed at, and a checkout on sys.path has none.
__version__ = "0.2.0"

_CHECKOUT_SUBPACKAGES = ("lua", "substrates")


def _register_checkout_subpackages() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    for name in _CHECKOUT_SUBPACKAGES:
        full_name = f"{__name__}.{name}"
        if full_name in sys.modules or os.path.isdir(os.path.join(here, name)):
            continue  # already imported, or an installed copy that holds it
        folder = os.path.join(root, name)
        init = os.path.join(folder, "__init__.py")
        if not (os.path.isfile(init) and os.path.isfile(os.path.join(root, "setup.py"))):
            continue  # not a checkout: the import fails later with Python's own error
        spec = importlib.util.spec_from_file_location(
            full_name, init, submodule_search_locations=[folder])
        module = importlib.util.module_from_spec(spec)
        sys.modules[full_name] = module
        spec.loader.exec_module(module)
        globals()[name] = module


def _import_triton_before_tensorflow() -> None:
    if "tensorflow" in sys.modules or importlib.util.find_spec("triton") is None:
        return  # too late to help, or nothing to order (CPU torch has no Triton)
    import triton  # noqa: F401


_import_triton_before_tensorflow()
_register_checkout_subpackages()
