"""Timing and memory figures of a benchmark row: a run-wide time budget, a timed loop
of calls that waits for the device, and the device's and a program's memory.

Kept apart from what is timed (`perf.programs`) so that the loop and the budget can
be tested with a fake clock, without JAX doing any work.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def peak_mib() -> float | None:
    """The device's peak_bytes_in_use so far (MiB); None where memory_stats has none."""
    import jax

    try:
        stats = jax.devices()[0].memory_stats()
    except Exception:  # noqa: BLE001 - an optional figure some backends lack
        return None
    if not stats or "peak_bytes_in_use" not in stats:
        return None
    return stats["peak_bytes_in_use"] / 2**20


def program_mib(memory: Any) -> float | None:
    """Arguments + outputs + temporaries - aliased bytes of a compiled program (MiB)."""
    if memory is None:
        return None
    total = (memory.argument_size_in_bytes + memory.output_size_in_bytes
             + memory.temp_size_in_bytes - memory.alias_size_in_bytes)
    return total / 2**20


class Budget:
    """The run's time guard: rows start only while `left()` > 0; slots end by then."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.perf_counter):
        self.clock = clock
        self.end = clock() + seconds

    def left(self) -> float:
        return self.end - self.clock()

    def deadline(self, seconds: float) -> float:
        """The clock time a slot of `seconds` starting now ends, cut to the budget."""
        return min(self.clock() + seconds, self.end)

    def share(self, slot: float, remaining: float) -> float:
        """`slot`, shrunk when it and the slots after it (`remaining` seconds, this one
        included) no longer fit what is left: late rows then get shorter slots rather
        than none."""
        left = self.left()
        if remaining <= 0 or left >= remaining:
            return slot
        return max(0.0, slot * left / remaining)


def timed_calls(call: Callable[[Any], Any], carry: Any, done: Callable[[Any], Any],
                min_calls: int, deadline: float, clock: Callable[[], float] = time.perf_counter
                ) -> tuple[Any, int, float]:
    """Calls `carry = call(carry)` at least `min_calls` times and until `deadline`,
    waiting for each (`done(carry)`: the arrays to block on); returns (carry, calls,
    seconds)."""
    import jax

    calls, start = 0, clock()
    while calls < min_calls or clock() < deadline:
        carry = call(carry)
        jax.block_until_ready(done(carry))
        calls += 1
    return carry, calls, clock() - start

