"""Timing and memory figures of a benchmark row: a run-wide time budget, a timed loop
of calls that waits for the device, the median of calls each timed alone
(`time_calls`: the scaling benchmark's rows and the iteration profile's stages), and the
device's and a program's memory.

Kept apart from what is timed (`perf.programs`) so that the loop and the budget can
be tested with a fake clock, without JAX doing any work.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

#: Timed calls of a row: at least MIN_CALLS (a median of one call is no median), at most
#: MAX_CALLS (a fast program on a long budget), whatever `seconds` asks.
MIN_CALLS, MAX_CALLS = 3, 1000


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


@dataclasses.dataclass(frozen=True)
class Timing:
    """A row's timed calls: the median seconds of one call, how many were timed, and the
    warm-up call's seconds (with the compile, where the call compiled)."""

    median_s: float
    calls: int
    warmup_s: float


def call_count(pilot_s: float, seconds: float, min_calls: int = MIN_CALLS,
               max_calls: int = MAX_CALLS) -> int:
    """Calls that fill `seconds` at the pilot call's pace, within [min_calls, max_calls]."""
    if pilot_s <= 0:
        return max_calls
    return max(min_calls, min(max_calls, math.ceil(seconds / pilot_s)))


def time_calls(call: Callable[[Any], Any], carry: Any, seconds: float, *,
               done: Callable[[Any], Any] = lambda c: c, min_calls: int = MIN_CALLS,
               max_calls: int = MAX_CALLS, clock: Callable[[], float] = time.perf_counter,
               wait: Callable[[Any], Any] | None = None) -> tuple[Any, Timing]:
    """`carry = call(carry)` once to warm up, once as a pilot, then `call_count` times,
    each call waited for (`wait(done(carry))`, default `jax.block_until_ready`) and timed
    alone; returns (carry, Timing with the median of the counted calls)."""
    if wait is None:
        import jax

        wait = jax.block_until_ready

    def one(carry: Any) -> tuple[Any, float]:
        start = clock()
        carry = call(carry)
        wait(done(carry))
        return carry, clock() - start

    carry, warmup_s = one(carry)
    carry, pilot_s = one(carry)
    times = []
    for _ in range(call_count(pilot_s, seconds, min_calls, max_calls)):
        carry, elapsed = one(carry)
        times.append(elapsed)
    return carry, Timing(statistics.median(times), len(times), warmup_s)
