"""Moved: the training settings to `sed_meltingpot.runs.train_config`, the RLlib PPO
config builder to `sed_meltingpot.training.rllib_config` (issue 17, README Layout).

Compat module for one release: every name is served lazily from its new home, so that
`from sed_meltingpot.training.config import TrainConfig, build_ppo_config` keeps
working. The import graph test skips `__getattr__` (it points up on purpose).
"""

from __future__ import annotations

from typing import Any

_RLLIB_NAMES = frozenset({"build_ppo_config", "env_config", "ENV_RUNNER_MAX_RESTARTS",
                          "ENV_RUNNER_RESTART_DELAY_S"})


def __getattr__(name: str) -> Any:
    if name in _RLLIB_NAMES:
        from sed_meltingpot.training import rllib_config

        return getattr(rllib_config, name)
    from sed_meltingpot.runs import train_config

    return getattr(train_config, name)
