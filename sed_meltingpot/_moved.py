"""Old module names that moved into the package's layers (issue 17, README Layout).

`from sed_meltingpot import tax` and `import sed_meltingpot.training.runlog` keep
working for one release: `install` puts a finder on `sys.meta_path` that answers an
old name with the new module itself (one module object, so patches and pickles see
one module), without a file per old name. Two old names are served otherwise:
`sed_meltingpot.game` is now the `game/` package (its `__getattr__` serves `SEDGame`
and the rest of `game/sed_game.py`), and `sed_meltingpot.training.config` is a file
that forwards to `runs.train_config` and, for the RLlib builder, to
`training.rllib_config`.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from typing import Any

MOVED = {
    "sed_meltingpot.tax": "sed_meltingpot.core.tax",
    "sed_meltingpot.rewards": "sed_meltingpot.core.rewards",
    "sed_meltingpot.welfare": "sed_meltingpot.core.welfare",
    "sed_meltingpot.voting": "sed_meltingpot.core.voting",
    "sed_meltingpot.constraints": "sed_meltingpot.core.constraints",
    "sed_meltingpot.validators": "sed_meltingpot.core.validators",
    "sed_meltingpot.registry": "sed_meltingpot.core.registry",
    "sed_meltingpot.hyperparameters": "sed_meltingpot.core.hyperparameters",
    "sed_meltingpot.optional": "sed_meltingpot.core.optional",
    "sed_meltingpot.config": "sed_meltingpot.game.config",
    "sed_meltingpot.kernel": "sed_meltingpot.game.kernel",
    "sed_meltingpot.principals": "sed_meltingpot.game.principals",
    "sed_meltingpot.observations": "sed_meltingpot.game.observations",
    "sed_meltingpot.substrate": "sed_meltingpot.game.substrate",
    "sed_meltingpot.rllib_env": "sed_meltingpot.envs.rllib_env",
    "sed_meltingpot.pettingzoo_env": "sed_meltingpot.envs.pettingzoo_env",
    "sed_meltingpot.plotting": "sed_meltingpot.analysis.plotting",
    "sed_meltingpot.rendering": "sed_meltingpot.analysis.rendering",
    "sed_meltingpot.lever": "sed_meltingpot.analysis.lever",
    "sed_meltingpot.twin.lever_play": "sed_meltingpot.analysis.lever_play",
    "sed_meltingpot.training.run_files": "sed_meltingpot.runs.run_files",
    "sed_meltingpot.training.run_record": "sed_meltingpot.runs.run_record",
    "sed_meltingpot.training.runlog": "sed_meltingpot.runs.runlog",
}


class _AliasLoader(importlib.abc.Loader):
    """Loads an old name as its new module (no new module object is made)."""

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module: Any) -> None:
        pass  # already executed under its new name


class MovedFinder(importlib.abc.MetaPathFinder):
    """Finds the old names of `MOVED` (and nothing else)."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None
                  ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader())


def install() -> None:
    """Put the finder on `sys.meta_path` once (`sed_meltingpot/__init__.py` calls it)."""
    if not any(isinstance(f, MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(MovedFinder())
