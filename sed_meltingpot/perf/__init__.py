"""Performance checks of the engines: the library logic of `scripts/gpu_check.py`
(does JAX see the accelerator, and how fast do the twin and its trainer run on it)
and `scripts/benchmark_twin.py` (the twin's and the jax trainer's speed against the
Lua substrate's).

A layer above `experiment/` (it times the engines and the twin, and nothing below
imports it); the scripts are thin flag wrappers around these modules. Nothing here
is imported by this package's `__init__`, and importing it imports no JAX.
"""
