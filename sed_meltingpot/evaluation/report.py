"""Writing and printing an evaluation's results (CSV, JSON, a table)."""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from typing import Any

from sed_meltingpot.evaluation.compare import PrincipalResult
from sed_meltingpot.evaluation.search import SearchResult
from sed_meltingpot.evaluation.stats import METRIC_LABELS, Stat


def result_keys(results: Sequence[PrincipalResult]) -> list[str]:
    keys: list[str] = []
    for r in results:
        keys += [k for k in r.summary if k not in keys]
    return keys


def _num(value: float) -> float | None:
    return value if math.isfinite(value) else None


def write_results(results: Sequence[PrincipalResult], output_dir: str, *,
                  search: SearchResult | None = None, meta: dict[str, Any] | None = None
                  ) -> dict[str, str]:
    """summary.csv (one row per principal: mean, CI bounds, n per metric),
    episodes.csv (one row per episode) and results.json (all of it)."""
    os.makedirs(output_dir, exist_ok=True)
    keys = result_keys(results)
    paths = {name: os.path.join(output_dir, name)
             for name in ("summary.csv", "episodes.csv", "results.json")}
    with open(paths["summary.csv"], "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["principal", "episodes"] + [
            f"{k}_{s}" for k in keys for s in ("mean", "ci_low", "ci_high", "n")])
        for r in results:
            row: list[Any] = [r.name, len(r.episodes)]
            for k in keys:
                s = r.summary.get(k, Stat(math.nan, math.nan, math.nan, math.nan, 0))
                row += [s.mean, s.ci_low, s.ci_high, s.n]
            writer.writerow(row)
    with open(paths["episodes.csv"], "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["principal", "episode"] + keys)
        for r in results:
            for k, e in enumerate(r.episodes):
                writer.writerow([r.name, k] + [e.get(key, math.nan) for key in keys])
    doc = {
        "meta": meta or {},
        "principals": [{
            "name": r.name, "description": r.description,
            "summary": {k: {f: _num(getattr(s, f)) if f != "n" else s.n
                            for f in ("mean", "ci_low", "ci_high", "std", "n")}
                        for k, s in r.summary.items()},
            "episodes": [{k: _num(v) for k, v in e.items()} for e in r.episodes],
        } for r in results],
        "search": None if search is None else {
            "objective": search.objective, "best_rates": list(search.best_rates),
            "best_value": _num(search.best_value),
            "table": [{"rates": list(r), "value": _num(v)} for r, v in search.table],
        },
    }
    with open(paths["results.json"], "w") as f:
        json.dump(doc, f, indent=2)
    return paths


def format_table(results: Sequence[PrincipalResult], keys: Sequence[str] | None = None) -> str:
    """Mean ± 95% half-width, one row per metric and one column per
    principal, as aligned text."""
    keys = list(keys or result_keys(results))

    def cell(s: Stat | None) -> str:
        if s is None or not math.isfinite(s.mean):
            return "n/a"
        if not math.isfinite(s.half_width):
            return f"{s.mean:.4g}"
        return f"{s.mean:.4g} ± {s.half_width:.2g}"

    rows = [["metric"] + [r.name for r in results]]
    rows += [[METRIC_LABELS.get(k, k)] + [cell(r.summary.get(k)) for r in results]
             for k in keys]
    rows.append(["episodes"] + [str(len(r.episodes)) for r in results])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(row, widths, strict=True)))
             for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)

