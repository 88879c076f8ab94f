"""The names of a run folder's files and the JSON cleaning every writer uses.

The bottom of the run-folder modules: `run_record` (run_config.json) and `runlog`
(progress, summary, signals) both import it, and it imports nothing of the package.
"""

from __future__ import annotations

import math
from typing import Any

PROGRESS_FILE = "progress.jsonl"
SUMMARY_FILE = "summary.json"
RUN_CONFIG_FILE = "run_config.json"
CHECKPOINT_DIR = "checkpoints"
TENSORBOARD_DIR = "tensorboard"
# Checkpoints a resume from an older one moved aside (runs/checkpoint_files.py).
ABANDONED_DIR = "abandoned"
# What a run directory holds; a fresh run refuses a directory with any of them.
RUN_FILES = (PROGRESS_FILE, SUMMARY_FILE, RUN_CONFIG_FILE, CHECKPOINT_DIR, TENSORBOARD_DIR,
             ABANDONED_DIR)
# A checkpoint folder holds one of these: RLlib's (the first two) or the jax
# engine's (training/jax/checkpoint.py's MARKER).
TWIN_CHECKPOINT_MARKER = "twin_checkpoint.json"
CHECKPOINT_MARKERS = ("algorithm_state.pkl", "rllib_checkpoint.json", TWIN_CHECKPOINT_MARKER)
ENGINES = ("rllib", "jax")  # run_config.json's "engine" (absent: "rllib")


def _finite(value: Any) -> bool:
    """A number, or a non-empty list with at least one finite number in it."""
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return any(_finite(v) for v in value)
    return False


def clean(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN and infinities to None."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "shape", None) == ():
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
