"""One row of results.csv: its columns, W_eta under both definitions, CSV I/O.

The unit of replication is the training seed: each row (one per definition,
objective, principal, seed and substrate) is the mean over the evaluation episodes
of one trained run, played on held-out seeds (`grid.EVAL_SEED`) that are the same
for every principal. Every row carries W_eta under both definitions (`W_apples`,
`W_taxed`, from the episode's per-player totals: `episode_welfare`); `W_eta` is the
one of the row's `welfare_on`. The statistics and reports read rows only.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from sed_meltingpot.core import welfare
from sed_meltingpot.evaluation.stats import METRICS, mean_ci
from sed_meltingpot.experiment.grid import DEFAULT_WELFARE_ON

#: CSV columns besides the metrics ("objective" is the objective's label, "welfare_on"
#: the definition W_eta is on).
ID_COLUMNS = ("welfare_on", "objective", "principal", "seed", "substrate", "players_from",
              "rates", "episodes")
#: The evaluation's metric "objective" (the game's W_eta) is the column W_eta here,
#: since "objective" names the cell's objective; it is then set to the row's definition.
RENAME = {"objective": "W_eta"}
#: The column of W_eta under each definition (config.WELFARE_ON).
DEFINITION_COLUMNS = {"apples": "W_apples", "taxed": "W_taxed"}
DEFINITION_LABELS = {"apples": "W on apples eaten (paper Section 4)",
                     "taxed": "W on post-tax income"}


def metric_columns(num_brackets: int) -> list[str]:
    return ([RENAME.get(m, m) for m in METRICS] + list(DEFINITION_COLUMNS.values())
            + [f"rate_b{b}" for b in range(num_brackets)])


def episode_welfare(metrics: Mapping[str, Any]) -> dict[str, float]:
    """W_eta of one episode under each definition: `welfare.interpolated` of its
    apples_per_player and of its income_per_player (post-tax) at its eta. Exact with one
    round per episode (the grids'; `Grid.validate`), where the game's objective is W_eta
    of the round's totals."""
    eta = float(metrics["eta"])
    return {"W_apples": float(welfare.interpolated(metrics["apples_per_player"], eta)),
            "W_taxed": float(welfare.interpolated(metrics["income_per_player"], eta))}


def check_objective(episodes: Sequence[Mapping[str, float]], welfare_on: str,
                    tolerance: float = 1e-4) -> None:
    """The game's own objective of episodes played with `welfare_on` must be the
    `episode_welfare` column of that definition (float32 accumulators: relative
    `tolerance`); ValueError otherwise, so no row silently mixes definitions."""
    column = DEFINITION_COLUMNS[welfare_on]
    for k, e in enumerate(episodes):
        game, ours = float(e["objective"]), float(e[column])
        if math.isfinite(game) and abs(game - ours) > tolerance * max(1.0, abs(ours)):
            raise ValueError(f"episode {k}: the game's objective {game!r} (welfare_on="
                             f"{welfare_on}) is not {column}={ours!r} from its totals")


def episodes_row(episodes: Sequence[Mapping[str, float]], welfare_on: str | None = None,
                 **ids: Any) -> dict[str, Any]:
    """One CSV row: the mean over the evaluation episodes of each scalar
    (NaN episodes skipped, as `evaluation.mean_ci` does), plus the ids. With
    `welfare_on` the row is under that definition: W_eta is its column of
    `episode_welfare`."""
    if not episodes:
        raise ValueError("a row needs at least one evaluated episode")
    row: dict[str, Any] = dict(ids)
    row["episodes"] = len(episodes)
    for key in episodes[0]:
        row[RENAME.get(key, key)] = mean_ci(e[key] for e in episodes).mean
    if welfare_on is not None:
        row["welfare_on"] = welfare_on
        row["W_eta"] = row[DEFINITION_COLUMNS[welfare_on]]
    return row


def write_csv(rows: Sequence[Mapping[str, Any]], path: str, num_brackets: int) -> str:
    columns = list(ID_COLUMNS) + metric_columns(num_brackets)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})
    return path


#: Columns every results.csv row needs (the keys its readers pool and compare by).
REQUIRED_COLUMNS = ("objective", "principal", "seed", "substrate")


def read_csv(path: str) -> list[dict[str, Any]]:
    """Rows of `write_csv`, numbers as floats (seed and episodes as ints). Files
    written before the welfare_on column (all on apples) read as welfare_on=apples.

    A damaged file (cut mid-row by a crash or a full disk, a header without the key
    columns, a number that is not one) raises ValueError naming the file and its line,
    which scripts print as one line instead of a KeyError/TypeError from deep inside."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        header = reader.fieldnames or []
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if rows and missing:
        raise ValueError(f"{path}: the header lacks the column(s) {missing} (a truncated or "
                         "damaged results.csv)")
    for line, row in enumerate(rows, start=2):
        if None in row or None in row.values():
            raise ValueError(f"{path}: line {line} has {len(row) - (None in row)} of "
                             f"{len(header)} columns (a truncated or damaged results.csv)")
        for key, value in row.items():
            try:
                if key in ("seed", "episodes"):
                    row[key] = int(value)
                elif key not in ID_COLUMNS:
                    row[key] = float(value) if value != "" else math.nan
            except ValueError:
                raise ValueError(f"{path}: line {line}: {key}={value!r} is not a number (a "
                                 "truncated or damaged results.csv)") from None
        row.setdefault("welfare_on", DEFAULT_WELFARE_ON)
    return rows


def read_experiment_json(path: str) -> dict[str, Any]:
    """An experiment call's experiment.json (scripts/experiment.py, pool_results.py),
    checked to be a JSON object with its "grid" and "meta" objects: ValueError naming
    the file otherwise (a damaged file read by the pooling or the results summary)."""
    try:
        with open(path) as f:
            info = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}); a truncated "
                         "or damaged experiment.json") from None
    bad = ("not a JSON object" if not isinstance(info, dict) else
           next((f"its {key!r} is missing or not an object" for key in ("grid", "meta")
                 if not isinstance(info.get(key), dict)), None))
    if bad:
        raise ValueError(f"{path}: {bad} (a damaged experiment.json)")
    return info


def definition_of(row: Mapping[str, Any]) -> str:
    return row.get("welfare_on") or DEFAULT_WELFARE_ON


def non_finite(rows: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> list[str]:
    """Names of the (row, key) pairs whose value is not a finite number."""
    bad = []
    for r in rows:
        for k in keys:
            v = r.get(k)
            if not (isinstance(v, (int, float)) and math.isfinite(v)):
                bad.append(f"{r.get('welfare_on')}/{r.get('objective')}/{r.get('principal')}/"
                           f"seed {r.get('seed')}/{r.get('substrate')}: {k}={v!r}")
    return bad


def pool_rows(tables: Sequence[tuple[str, Sequence[Mapping[str, Any]]]]
              ) -> list[dict[str, Any]]:
    """The rows of several results.csv tables (name, rows) as one table, for a grid whose
    seeds ran in separate calls: every (definition, objective, principal, seed,
    substrate) may come from one table only (ValueError naming both tables otherwise),
    so no seed is counted twice, and every table must give rows (ValueError naming an
    empty one: a report would credit its seeds with results it does not hold)."""
    seen: dict[tuple, str] = {}
    pooled = []
    for name, rows in tables:
        if not rows:
            raise ValueError(f"{name} contributes no rows (its results.csv holds none of "
                             "the pooled objectives, principals and definitions); leave it "
                             "out of the pool")
        for row in rows:
            key = (definition_of(row), row["objective"], row["principal"], int(row["seed"]),
                   row["substrate"])
            if key in seen:
                raise ValueError(f"{name} and {seen[key]} both hold welfare_on={key[0]}, "
                                 f"objective={key[1]}, principal={key[2]}, seed={key[3]}, "
                                 f"substrate={key[4]}: pool tables of different seeds")
            seen[key] = name
            pooled.append(dict(row))
    return pooled
