"""results.md: the results experiment's tables, tests and findings, as Markdown.

`results_markdown` writes the settings, one table per (definition, objective) (mean ±
95% CI half-width over seeds), the paired comparisons with Holm's correction per
table (`stats.comparisons`), the transfer gap to the Lua substrate, the sampled
principal's rates against eta, whether the learning curves flattened
(`curves.budget_quarters`) and the figures; with its formatting helpers. The numbers
come from `stats` and `curves`; this module only lays them out.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from sed_meltingpot.evaluation.stats import METRIC_LABELS, Stat, mean_ci
from sed_meltingpot.experiment.curves import Panels, budget_quarters
from sed_meltingpot.experiment.grid import DEFAULT_WELFARE_ON, EVAL_SEED, eta_of, rule_of
from sed_meltingpot.experiment.rows import DEFINITION_LABELS
from sed_meltingpot.experiment.stats import cell_rows, comparisons, rates_by_eta, transfer_gaps

TABLE_METRICS = ("W_eta", "utilitarian", "egalitarian", "egalitarian_income",
                 "nash_welfare", "equality", "income_equality", "sustainability", "peace",
                 "tax_revenue")


def format_stat(s: Stat, digits: int = 3) -> str:
    if not math.isfinite(s.mean):
        return "n/a"
    if not math.isfinite(s.half_width):
        return f"{s.mean:.{digits}g}"
    return f"{s.mean:.{digits}g} ± {s.half_width:.2g}"


def _md_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return lines


def _fmt_num(x: float) -> str:
    return f"{x:.3g}" if math.isfinite(x) else "n/a"


def _fmt_p(p: float) -> str:
    if not math.isfinite(p):
        return "n/a"
    return f"{p:.2g}" if p >= 1e-4 else "<1e-4"


def cell_label(principal: str, substrate: str, engine_substrate: str) -> str:
    return principal if substrate == engine_substrate else f"{principal} ({substrate})"


def definition_heading(welfare_on: str) -> str:
    return f"{DEFINITION_LABELS.get(welfare_on, welfare_on)}, welfare_on={welfare_on}"


def results_markdown(rows: Sequence[Mapping[str, Any]], *, objectives: Sequence[str],
                     principals: Sequence[str], substrate: str, meta: Mapping[str, Any],
                     num_brackets: int, welfare_on: Sequence[str] = (DEFAULT_WELFARE_ON,),
                     figures: Sequence[str] = (),
                     learned_rates: Mapping[tuple[str, str], Sequence[Sequence[float]]]
                     | None = None, curves: Panels | None = None) -> str:
    """results.md: settings, one table per (definition, objective) (mean ± 95% CI
    half-width over seeds), the paired comparisons with Holm's correction per table,
    the transfer gap if the learned principal was also played on the Lua substrate,
    the sampled principal's rates against eta, whether the learning curves flattened
    (`budget_quarters` of `curves`), and the figures."""
    lines = [f"# Results: grid `{meta.get('grid')}`, engine `{meta.get('engine')}`", ""]
    for key in ("command", "seeds", "budget", "game", "recipe", "search", "evaluation",
                "wall_time"):
        if key in meta:
            lines.append(f"* {key.replace('_', ' ')}: {meta[key]}")
    lines += [
        "",
        "Each cell: mean ± half-width of the 95% Student-t interval over training seeds "
        "(n in brackets); a seed's value is the mean over its evaluation episodes (the "
        "`episodes` column of results.csv: per run and principal, fewer on the Lua "
        f"substrate), played on held-out seeds (from {EVAL_SEED}) that are the same for "
        "every principal and training seed (common random numbers: worlds and the "
        "players' sampling draws match, so differences come from the trained networks "
        "and the principal; the random principal's own draws differ by training seed "
        "and episode). W_eta = eta * sum_i u_i + (1 - eta) * min_i u_i (paper Section "
        "4) with u the episode's apples eaten (welfare_on=apples, the paper's) or its "
        "post-tax incomes (welfare_on=taxed); every row of results.csv carries both "
        "(W_apples, W_taxed) and W_eta is the one of its welfare_on. Players are "
        "trained from scratch under each principal with the same budget. The players' "
        "rewards (paper Eq. 8) depend neither on eta nor on the definition, so the runs "
        "of a scripted principal are trained once per seed and evaluated under every "
        "objective and definition; the learned principal is trained once per "
        "definition, objective and seed (one run serves both definitions at eta = 1: "
        "the tax is budget-balanced, so the sums agree); the sampled principal once per "
        "definition and seed, with eta drawn per episode, and is evaluated at fixed "
        "etas. best_fixed: the best fixed schedule of a grid search (on other held-out "
        "seeds) against the players trained with the learned principal, played with "
        "fresh players trained under it (the scripted run of that schedule where one "
        "exists). ucb, thompson, egreedy: two-timescale bandit principals, trained like "
        "the learned principal, each holding an arm (a schedule) for several iterations "
        "and played with the arm it committed to and its own players. search: the "
        "schedule whose freshly trained players reached the highest W_eta on search seeds "
        "of its own (successive halving), played with fresh players trained under it.",
        ""]
    substrates = sorted({r["substrate"] for r in rows}, key=lambda s: s != substrate)
    rate_keys = [f"rate_b{b}" for b in range(num_brackets)]
    for w in welfare_on:
        for o in objectives:
            lines += [f"## {definition_heading(w)}: objective {o} (voting rule "
                      f"`{rule_of(o)}`)", ""]
            header = ["principal"] + [METRIC_LABELS.get(k, k) for k in TABLE_METRICS] + [
                "rates/bracket", "n"]
            body = []
            for p in principals:
                for sub in substrates:
                    cell = cell_rows(rows, o, p, sub, w)
                    if not cell:
                        continue
                    stats = {k: mean_ci(float(r.get(k, math.nan)) for r in cell)
                             for k in TABLE_METRICS}
                    rates = "/".join(f"{mean_ci(float(r[k]) for r in cell).mean:.2f}"
                                     for k in rate_keys)
                    eta = mean_ci(float(r["eta"]) for r in cell).mean
                    label = cell_label(p, sub, substrate)
                    if eta_of(o) is None:
                        label += f" (eta {eta:.2f})"
                    body.append([label] + [format_stat(stats[k]) for k in TABLE_METRICS]
                                + [rates, str(len(cell))])
            lines += _md_table(header, body) + [""]
    tests = comparisons(rows, objectives, principals, substrate, welfare_on)
    for w in welfare_on:
        family = [t for t in tests if t["welfare_on"] == w]
        if not family:
            continue
        pairs = max(t["n"] for t in family)
        lines += [f"## Learned principals against each baseline: {definition_heading(w)}",
                  "",
                  "Paired by training seed (each seed's players are trained from the same "
                  "seed under every principal and evaluated in the same worlds): the "
                  "paired t-test of the per-seed W_eta differences (scipy.stats.ttest_rel, "
                  "two-sided, n - 1 df) is the test; Holm's correction within each "
                  "objective (one family per table above: every learner-baseline pair of "
                  "that definition and objective); the signed-rank test (scipy.stats."
                  "wilcoxon, two-sided) is a check only: with n pairs its smallest p is "
                  f"2 / 2^n ({_fmt_p(2.0 ** (1 - pairs))} here, n = {pairs}). diff = mean "
                  "over seeds of learner - baseline; n = pairs; n/a where fewer than two "
                  "pairs or the differences do not vary.", ""]
        body = [[t["objective"], t["learner"], t["baseline"], str(t["n"]),
                 _fmt_num(t["diff"]), _fmt_num(t["t"]), _fmt_num(t["df"]), _fmt_p(t["p"]),
                 _fmt_p(t["p_holm"]),
                 "yes" if math.isfinite(t["p_holm"]) and t["p_holm"] < 0.05 else "no",
                 _fmt_p(t["p_signed_rank"])] for t in family]
        lines += _md_table(["objective", "learner", "baseline", "n", "diff", "t", "df", "p",
                            "p (Holm)", "significant at 0.05", "signed-rank p (check)"],
                           body) + [""]
    for w in welfare_on:
        gaps = transfer_gaps(rows, objectives, substrate, w)
        if gaps:
            lines += [f"## Transfer gap: learned players and principal on the Lua substrate, "
                      f"{definition_heading(w)}", "",
                      "The same trained networks played on the twin and on the Lua substrate "
                      "(the first of the same held-out seeds); gap = Lua - twin.", ""]
            body = [[g["objective"], format_stat(g["twin"]), format_stat(g["lua"]),
                     f"{g['gap']:.3g}"] for g in gaps]
            lines += _md_table(["objective", "W_eta on the twin", "W_eta on Lua", "gap"],
                               body) + [""]
    for w in welfare_on:
        table = rates_by_eta(rows, substrate, num_brackets, w)
        if table:
            lines += [f"## The sampled principal's rates against eta, {definition_heading(w)}",
                      "", "Trained once per seed with eta drawn per episode (it observes "
                      "eta), evaluated at fixed etas: mean effective rate per bracket over "
                      "the evaluation episodes, mean ± 95% half-width over seeds "
                      "(rates_vs_eta.png).", ""]
            body = [[f"{eta:g}"] + [format_stat(s, 2) for s in stats] + [str(n)]
                    for eta, stats, n in table]
            lines += _md_table(["eta"] + [f"bracket {b}" for b in range(num_brackets)]
                               + ["n"], body) + [""]
    if learned_rates:
        lines += ["## What the learned principal sets", "",
                  "Rates per bracket in each tax period of the last training episode "
                  "(the runs' progress.jsonl), mean over seeds.", ""]
        for (w, o), periods in learned_rates.items():
            text = "; ".join(f"period {k}: " + "/".join(f"{r:.2f}" for r in rates)
                             for k, rates in enumerate(periods))
            lines.append(f"* {o}, welfare_on={w}: {text or 'n/a'}")
        lines.append("")
    quarters = budget_quarters(curves) if curves else []
    if quarters:
        lines += ["## Is the budget enough? The learning curves by quarter", "",
                  "W_eta of the training episodes under the panel's definition "
                  "(learning_curves.csv), each seed's curve averaged over each quarter of "
                  "its iterations, then mean ± 95% half-width over seeds; the last column "
                  "is the last quarter minus the third per seed: near 0 where the curves "
                  "flattened, positive where they still rise.", ""]
        body = [[q["welfare_on"], q["objective"], q["principal"]]
                + [format_stat(s) for s in q["quarters"]]
                + [format_stat(q["change"]), str(q["seeds"])] for q in quarters]
        lines += _md_table(["welfare_on", "objective", "principal", "Q1", "Q2", "Q3", "Q4",
                            "Q4 - Q3", "n"], body) + [""]
    if figures:
        lines += ["## Figures", ""] + [f"![{os.path.basename(f)}]({os.path.basename(f)})"
                                       for f in figures] + [""]
    return "\n".join(lines)
