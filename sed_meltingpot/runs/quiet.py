"""A quiet start: the start-up lines TensorFlow, CUDA and Ray print, left out.

A run on the Lua substrate (`--engine=rllib`) imports Melting Pot, which loads
TensorFlow, and starts Ray, whose workers load TensorFlow again. Before the first
progress line that printed about thirty lines that say nothing about the run:
TensorFlow's C++ log ("oneDNN custom operations are on", "Could not find cuda
drivers", "failed call to cuInit"; TensorFlow 2.21 writes them through absl's C++
log before it reads TF_CPP_MIN_LOG_LEVEL, so that variable no longer hides them),
Ray's authentication-token notice, "Started a local Ray instance", RLlib's "You are
running PPO on the new API stack", RLlib's own `RLModuleConfig` deprecation (raised
by RLlib's `RLModule.__init__` itself), Ray Tune's "Install gputil" and "Trainable.
setup took", and a Ray core-worker line about the restart of RLlib's env-runner
actors. Nothing here changes what is computed.

* `filtered_stderr`: a block whose writes to the process's stderr (file descriptor
  2: C++ libraries and Python alike) are held back and written out at its end
  without the lines that match NOISE (exact start-up messages, so any other line,
  an error included, still reaches the user, in order).
* `import_quietly`: imports a module inside `filtered_stderr` (TensorFlow prints its
  lines when it loads).
* `quiet_python_loggers`: raises the level of the Python loggers that print the
  notices above; the RLlib trainer calls it, and each Ray worker calls
  `quiet_ray_worker` (Ray's `worker_process_setup_hook`, RAY_WORKER_SETUP_HOOK).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from types import ModuleType

# Start-up lines that say nothing about the run (matched anywhere in a line, so a
# line Ray forwards from a worker, "(pid=123) ...", matches too).
NOISE = tuple(re.compile(p) for p in (
    # absl's C++ log, written by TensorFlow before absl::InitializeLog.
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"port\.cc:\d+\] oneDNN custom operations are on",
    r"cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine",
    r"cuda_platform\.cc:\d+\] failed call to cuInit",
    # Ray's core worker on every RLlib run (a Ray design note, not a failure).
    r"core_worker\.cc:\d+: Actor with class name: .* has constructor arguments in the "
    r"object store and max_restarts > 0",
))

# Python loggers that print a notice at WARNING on every run, and the level that
# hides it. The "ray" logger itself is set to WARNING by `ray.init`'s logging_level
# (training/rllib/trainer.py), which hides Ray's INFO lines.
QUIET_LOGGERS = {
    # "Token authentication is enabled for this Ray cluster ..." (a local cluster).
    "ray._private.authentication.authentication_token_setup": logging.ERROR,
    # "You are running PPO on the new API stack! This is the new default ..."
    "ray.rllib.algorithms.algorithm_config": logging.ERROR,
    # RLlib's RLModule.__init__ builds the deprecated RLModuleConfig itself.
    "ray._common.deprecation": logging.ERROR,
    # "Install gputil for GPU system monitoring."
    "ray.tune.utils.util": logging.ERROR,
}

# Ray's `worker_process_setup_hook` (runtime_env): each worker imports this module
# and calls the function before any actor starts in it.
RAY_WORKER_SETUP_HOOK = f"{__name__}.quiet_ray_worker"


def drop_noise(text: str, patterns: Sequence[re.Pattern[str]] = NOISE) -> str:
    """`text` without its lines that match one of `patterns`."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if not any(p.search(line) for p in patterns))


@contextlib.contextmanager
def filtered_stderr(patterns: Sequence[re.Pattern[str]] = NOISE) -> Iterator[None]:
    """Holds back what the process writes to stderr (file descriptor 2) inside the
    block and writes it out at the end, exception or not, without the lines that
    match `patterns`. Where descriptor 2 cannot be redirected, a plain block."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = drop_noise(capture.read().decode("utf-8", errors="replace"), patterns)
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


def import_quietly(name: str) -> ModuleType:
    """`importlib.import_module(name)` inside `filtered_stderr` (e.g. "meltingpot",
    which loads TensorFlow: its C++ start-up lines are left out)."""
    with filtered_stderr():
        return importlib.import_module(name)


def quiet_python_loggers() -> None:
    """Raises each QUIET_LOGGERS logger to its level (never lowers one set higher)."""
    for name, level in QUIET_LOGGERS.items():
        logger = logging.getLogger(name)
        if logger.level < level:
            logger.setLevel(level)


def quiet_ray_worker() -> None:
    """Ray's worker_process_setup_hook: the quiet loggers, and Melting Pot (with
    TensorFlow) imported quietly before an env runner imports it loudly. Without
    Melting Pot the env runner fails later with its own error."""
    quiet_python_loggers()
    with contextlib.suppress(ImportError):
        import_quietly("meltingpot")
