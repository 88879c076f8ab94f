"""The twin's env steps per second against the number of players (`scripts/benchmark_scale.py`).

One row per (players, locality): the paper's map for 7 players (what every other
run plays), a generated map (`twin/generated_map.py`) for the others, `num_games`
games under `jax.vmap`, random actions, `perf.programs.twin_rollout_program`'s
jitted scan (the same program `scripts/benchmark_twin.py` times), compile kept out
of the rate. A game step is one step of one game (all its players acting); an
agent step is one player's step, so agent steps = game steps x players.
"""

from __future__ import annotations

import dataclasses
import time

from sed_meltingpot.perf.programs import twin_rollout_program


@dataclasses.dataclass(frozen=True)
class ScaleRow:
    """One row: the game's size, how it was run and its rates."""

    players: int
    map_name: str
    height: int
    width: int
    locality: str
    num_games: int
    game_steps_per_s: float
    compile_s: float

    @property
    def agent_steps_per_s(self) -> float:
        return self.game_steps_per_s * self.players


def scale_row(players: int, num_games: int, steps_per_call: int, seconds: float,
              locality: str | None = None, observe: str = "none", seed: int = 0) -> ScaleRow:
    """Times calls of `steps_per_call` steps until `seconds` have passed (at least one
    call) after a warm-up call; the paper's map for 7 players, else a generated one."""
    import jax

    from sed_meltingpot.twin import TwinEnv

    map_name = "default" if players == 7 else "generated"
    env = TwinEnv.create(num_players=players, map=map_name, locality=locality)
    program = twin_rollout_program(env, num_games, steps_per_call, seed, observe).compile()
    state, key, checksum = program.run(*program.args)  # warm-up
    jax.block_until_ready(checksum)
    calls, start = 0, time.perf_counter()
    while calls == 0 or time.perf_counter() - start < seconds:
        state, key, checksum = program.run(state, key)
        jax.block_until_ready(checksum)
        calls += 1
    elapsed = time.perf_counter() - start
    return ScaleRow(players, map_name, env.height, env.width, env.locality, num_games,
                    calls * steps_per_call * num_games / elapsed,
                    program.lower_s + program.compile_s)


def table(rows: list[ScaleRow]) -> str:
    """The rows as a Markdown table."""
    lines = ["| players | map | size | locality | games | game steps/s | agent steps/s "
             "| compile s |", "|---:|---|---|---|---:|---:|---:|---:|"]
    lines += [f"| {r.players} | {r.map_name} | {r.height}x{r.width} | {r.locality} | "
              f"{r.num_games} | {r.game_steps_per_s:,.0f} | {r.agent_steps_per_s:,.0f} | "
              f"{r.compile_s:.1f} |" for r in rows]
    return "\n".join(lines)
