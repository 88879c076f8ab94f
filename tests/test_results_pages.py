"""The results pages (docs/results/*.md) against the committed outputs they describe.

Every table of a grid page is recomputed here from its docs/results/<call>/results.csv:
each W_eta cell's mean and 95% half-width, and each quoted paired comparison's
difference, p (the t from the per-seed differences, its p from tests/t_distribution.py,
not scipy) and Holm p (step-down by hand). The budget page's quarter table from its
learning_curves.csv, the archived small grid's table and quarter claim, and the H200
page's tables from the raw logs and JSON. A number on a page that drifts from the
committed outputs fails here. (These checks read README.md before the results moved to
the documentation site, issue 29.)
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import t_distribution

from sed_meltingpot import experiment as ex

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "docs", "results")


def committed_rows(results_dir: str) -> list[dict]:
    """The rows of a committed docs/results/<results_dir>/results.csv."""
    return ex.read_csv(os.path.join(RESULTS, results_dir, "results.csv"))


def t975(df: int) -> float:
    """The 97.5% Student-t quantile by bisection on the written-out CDF."""
    lo, hi = 0.0, 20.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_distribution.student_t_cdf(mid, df) < 0.975 else (lo, mid)
    return lo


def page_text(page: str) -> str:
    """docs/results/<page>.md."""
    with open(os.path.join(RESULTS, f"{page}.md")) as f:
        return f.read()


def page_section(page: str, start: str, end: str) -> str:
    """The text of docs/results/<page>.md from `start` to the next `end` after it."""
    text = page_text(page)
    section = text[text.index(start):]
    return section[:section.index(end)]


def seed_quarters(points, objective: str, principal: str) -> np.ndarray:
    """(seeds, 4): each seed's mean W_eta in each quarter of its logged iterations (the
    first n % 4 quarters get one point more), from learning_curves.csv rows."""
    out = []
    for seed in sorted({p["seed"] for p in points}):
        y = [float(p["W_eta"]) for p in points if p["objective"] == objective
             and p["principal"] == principal and p["seed"] == seed]
        n = len(y)
        sizes = [n // 4 + (1 if k < n % 4 else 0) for k in range(4)]
        starts = np.cumsum([0] + sizes)
        out.append([np.mean(y[starts[k]:starts[k + 1]]) for k in range(4)])
    return np.asarray(out)


def test_budget_page_matches_its_committed_curves():
    """budget.md's 4x-budget table is the quarter means of each seed's W_eta curve in
    docs/results/budget/learning_curves.csv (quarters cut by hand here: the first
    n % 4 get one point more), averaged over seeds, with 95% t half-widths; its
    held-out comparison is results.csv's mean, half-width and Welch p."""
    import csv as csv_module
    import re

    folder = os.path.join(ROOT, "docs", "results", "budget")
    with open(os.path.join(folder, "learning_curves.csv")) as f:
        points = list(csv_module.DictReader(f))
    section = page_section("budget", "## Quarter means", "## Figures")
    table = [line for line in section.splitlines() if line.startswith("| ")][1:]
    assert len(table) == 2

    def stat(values):
        values = np.asarray(values, dtype=float)
        return values.mean(), t975(len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))

    for line, principal in zip(table, ("learned", "none"), strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")][1:]
        per_seed = seed_quarters(points, "voted", principal)
        columns = [per_seed[:, k] for k in range(4)] + [per_seed[:, 3] - per_seed[:, 2]]
        for cell, values in zip(cells, columns, strict=True):
            mean, half = (float(x) for x in re.findall(r"[-\d.]+", cell))
            want_mean, want_half = stat(values)
            assert mean == pytest.approx(want_mean, rel=0.005, abs=0.006), (principal, cell)
            assert half == pytest.approx(want_half, rel=0.05, abs=0.06), (principal, cell)
    rows = ex.read_csv(os.path.join(folder, "results.csv"))
    held_out = {p: [r["W_eta"] for r in rows if r["principal"] == p and r["substrate"] ==
                    ex.SUBSTRATE_TWIN] for p in ("learned", "none")}
    quoted = re.search(r"W_eta ([\d.]+) ± ([\d.]+) vs ([\d.]+) ± ([\d.]+) on held-out seeds, "
                       r"Welch p = ([\d.]+)", " ".join(section.split()))
    assert quoted, "budget.md's held-out comparison"
    numbers = [float(x) for x in quoted.groups()]
    for k, principal in enumerate(("learned", "none")):
        want_mean, want_half = stat(held_out[principal])
        assert numbers[2 * k] == pytest.approx(want_mean, abs=0.06)
        assert numbers[2 * k + 1] == pytest.approx(want_half, rel=0.05, abs=0.6)
    a, b = (np.asarray(held_out[p], dtype=float) for p in ("learned", "none"))
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    t = (a.mean() - b.mean()) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    p_value = 2 * (1 - t_distribution.student_t_cdf(abs(t), df))
    assert numbers[4] == pytest.approx(p_value, abs=0.006)


def test_archive_small_grid_table_matches_the_committed_results():
    """Every W_eta cell of the archived (pre-recipe) small-grid table is the mean and 95%
    half-width (computed here with numpy and t_distribution) of the per-seed
    values in docs/results/small/results.csv, the committed command's output."""
    import re

    rows = committed_rows("small")
    text = page_text("archive")
    section = page_section("archive", "## Small grid on the 2-core machine",
                           "What the numbers say")
    table = [line for line in section.splitlines() if line.startswith("| ")][1:]
    names = {"learned (played on the twin)": ("learned", ex.SUBSTRATE_TWIN),
             "learned (played on the Lua substrate)": ("learned", ex.SUBSTRATE_LUA)}
    objectives = ("eta=0", "eta=0.5", "eta=1", "voted")
    assert len(table) == 8
    for line in table:
        cells = [c.strip() for c in line.strip("|").split("|")]
        label = cells[0]
        principal, substrate = names.get(label, (label.split(" ")[0], ex.SUBSTRATE_TWIN))
        for objective, cell in zip(objectives, cells[1:], strict=True):
            mean, half = (float(x) for x in re.findall(r"[-\d.]+", cell))
            values = np.array([r["W_eta"] for r in rows if r["objective"] == objective
                               and r["principal"] == principal
                               and r["substrate"] == substrate], dtype=float)
            assert len(values) == 5, (label, objective)
            n = len(values)
            want_half = t975(n - 1) * values.std(ddof=1) / math.sqrt(n)
            assert mean == pytest.approx(values.mean(), abs=0.006, rel=0.005), (label, objective)
            assert half == pytest.approx(want_half, rel=0.05, abs=0.06), (label, objective)
    # "the last quarter of training is above the third in all 24 cells (by 0.22 to
    # 3.53 W_eta), in 10 of them with a 95% interval above zero"
    import csv as csv_module

    with open(os.path.join(ROOT, "docs", "results", "small", "learning_curves.csv")) as f:
        points = list(csv_module.DictReader(f))
    changes = []
    for objective in objectives:
        for principal in ("learned", "none", "flat", "progressive", "regressive", "random"):
            q = seed_quarters(points, objective, principal)
            change = q[:, 3] - q[:, 2]
            assert len(change) == 5, (objective, principal)
            half = t975(4) * change.std(ddof=1) / math.sqrt(5)
            changes.append((change.mean(), change.mean() - half))
    claim = re.search(r"above the third in all (\d+) cells \(by ([\d.]+) to ([\d.]+) W_eta\), "
                      r"in (\d+) of them with a 95% interval above zero",
                      " ".join(text.split()))
    assert claim, "the archive's quarter claim"
    cells, low, high, significant = claim.groups()
    assert int(cells) == len(changes) == 24 and all(m > 0 for m, _ in changes)
    assert float(low) == pytest.approx(min(m for m, _ in changes), abs=0.006)
    assert float(high) == pytest.approx(max(m for m, _ in changes), abs=0.006)
    assert int(significant) == sum(lo > 0 for _, lo in changes)


def check_page_grid_tables(page: str, results_dir: str, heading: str, welfare_on: str, *,
                           objectives: tuple[str, ...], learners: tuple[str, ...],
                           baselines: tuple[str, ...], num_seeds: int,
                           num_cell_rows: int) -> None:
    """A grid page's section (docs/results/<page>.md from `heading` to its "What the
    numbers say"): its two tables against docs/results/<results_dir>/results.csv:
    every W_eta cell is the mean and 95% half-width of the per-seed values (rows whose
    name holds "Lua" read the Lua substrate's), and every quoted comparison of
    `learned` with a baseline has its diff, p (t from the per-seed differences, p from
    tests/t_distribution.py) and Holm p (over the objective's comparisons of every
    learner with every baseline, step-down by hand) recomputed here."""
    import re

    rows = committed_rows(results_dir)
    section = page_section(page, heading, "What the numbers say")
    tables = [[line for line in block.splitlines() if line.startswith("| ")][1:]
              for block in section.split("\n\n") if block.startswith("| ")]
    assert len(tables) == 2
    cells_table, paired_table = tables

    def per_seed(objective: str, principal: str, substrate: str = ex.SUBSTRATE_TWIN):
        out = {int(r["seed"]): float(r["W_eta"]) for r in rows
               if r["objective"] == objective and r["principal"] == principal
               and r["substrate"] == substrate and r["welfare_on"] == welfare_on}
        assert sorted(out) == list(range(num_seeds)), (objective, principal, substrate)
        return out

    assert len(cells_table) == num_cell_rows
    for line in cells_table:
        cells = [c.strip() for c in line.strip("|").split("|")]
        substrate = ex.SUBSTRATE_LUA if "Lua" in cells[0] else ex.SUBSTRATE_TWIN
        principal = cells[0].split(" ")[0]
        for objective, cell in zip(objectives, cells[1:], strict=True):
            mean, half = (float(x) for x in re.findall(r"[-\d.]+", cell))
            v = np.array(list(per_seed(objective, principal, substrate).values()))
            assert mean == pytest.approx(v.mean(), abs=0.051), (cells[0], objective)
            assert half == pytest.approx(t975(num_seeds - 1) * v.std(ddof=1)
                                         / math.sqrt(num_seeds), abs=0.051), (cells[0], objective)

    quoted = {}
    for line in paired_table:
        objective, baseline, diff, p, p_holm = (c.strip() for c in line.strip("|").split("|"))
        quoted[objective, baseline] = (float(diff), float(p), float(p_holm))
    assert len(quoted) == len(objectives) * len(baselines)
    for objective in objectives:
        family = []
        for learner in learners:
            for baseline in baselines:
                a, b = per_seed(objective, learner), per_seed(objective, baseline)
                d = np.array([a[s] - b[s] for s in sorted(a)])
                t = d.mean() / (d.std(ddof=1) / math.sqrt(len(d)))
                family.append((learner, baseline, d.mean(),
                               2 * (1 - t_distribution.student_t_cdf(abs(t), len(d) - 1))))
        order = sorted(range(len(family)), key=lambda i: family[i][3])
        adjusted, running = {}, 0.0
        for k, i in enumerate(order):
            running = max(running, min(1.0, (len(family) - k) * family[i][3]))
            adjusted[i] = running
        for i, (learner, baseline, diff, p) in enumerate(family):
            if learner != "learned":
                continue
            q_diff, q_p, q_holm = quoted[objective, baseline]
            assert q_diff == pytest.approx(diff, abs=0.051), (objective, baseline)
            assert q_p == pytest.approx(p, abs=0.0006), (objective, baseline)
            assert q_holm == pytest.approx(adjusted[i], abs=0.0006), (objective, baseline)


#: small_taxed.md's sections, one per definition.
RECIPE_GRIDS = {"taxed": "## W on post-tax income", "apples": "## W on apples eaten"}


@pytest.mark.parametrize("welfare_on", sorted(RECIPE_GRIDS))
def test_small_taxed_page_tables_match_the_committed_results(welfare_on):
    """small_taxed.md, per definition, against docs/results/small_taxed: 5 seeds, 7 rows
    (one on Lua), Holm over the objective's 8 comparisons of learned and sampled
    (`check_page_grid_tables`)."""
    check_page_grid_tables(
        "small_taxed", "small_taxed", RECIPE_GRIDS[welfare_on], welfare_on,
        objectives=("eta=0", "eta=0.5", "eta=1"), learners=("learned", "sampled"),
        baselines=("none", "progressive", "flat100", "random"), num_seeds=5,
        num_cell_rows=7)


#: paper_fast.md's sections of seeds 0-2, one per definition.
PAPER_FAST = {"apples": "## W on apples eaten, seeds 0-2",
              "taxed": "## W on post-tax income, seeds 0-2"}


@pytest.mark.parametrize("welfare_on", sorted(PAPER_FAST))
def test_paper_fast_page_tables_match_the_committed_results(welfare_on):
    """paper_fast.md's seeds 0-2, per definition, against docs/results/paper_fast: 3 seeds,
    4 rows, Holm over the objective's 3 comparisons of learned."""
    check_page_grid_tables(
        "paper_fast", "paper_fast", PAPER_FAST[welfare_on], welfare_on,
        objectives=("eta=0", "eta=1"), learners=("learned",),
        baselines=("none", "progressive", "flat100"), num_seeds=3, num_cell_rows=4)


def test_paper_fast_page_six_seeds_match_the_pooled_results():
    """paper_fast.md's six-seed section against docs/results/paper_fast_pooled (seeds 0-5
    from two calls): 4 rows, Holm over learned's 3 comparisons."""
    check_page_grid_tables(
        "paper_fast", "paper_fast_pooled", "## Six seeds at eta 1 on apples eaten", "apples",
        objectives=("eta=1",), learners=("learned",),
        baselines=("none", "progressive", "flat100"), num_seeds=6, num_cell_rows=4)


#: paper_fast_voted.md's sections, one per definition.
PAPER_FAST_VOTED = {"apples": "## W on apples eaten", "taxed": "## W on post-tax income"}


@pytest.mark.parametrize("welfare_on", sorted(PAPER_FAST_VOTED))
def test_paper_fast_voted_page_tables_match_the_committed_results(welfare_on):
    """paper_fast_voted.md against docs/results/paper_fast_voted: 3 seeds, 4 rows, Holm
    over the 3 comparisons of learned."""
    check_page_grid_tables(
        "paper_fast_voted", "paper_fast_voted", PAPER_FAST_VOTED[welfare_on], welfare_on,
        objectives=("voted",), learners=("learned",),
        baselines=("none", "progressive", "flat100"), num_seeds=3, num_cell_rows=4)


def test_small_sampled_page_tables_match_the_committed_results():
    """small_sampled.md against docs/results/small_sampled: 5 seeds, 8 rows (one on Lua),
    Holm over the objective's 10 comparisons of learned and sampled."""
    check_page_grid_tables(
        "small_sampled", "small_sampled", "## W on post-tax income", "taxed",
        objectives=("eta=0", "eta=0.5", "eta=1", "voted"), learners=("learned", "sampled"),
        baselines=("none", "flat", "regressive", "flat100", "best_fixed"), num_seeds=5,
        num_cell_rows=8)


def test_small_apples_more_page_tables_match_the_committed_results():
    """small_apples_more.md against docs/results/small_apples_more: 5 seeds, 7 rows (one
    on Lua), Holm over the objective's 5 comparisons of learned."""
    check_page_grid_tables(
        "small_apples_more", "small_apples_more", "## W on apples eaten", "apples",
        objectives=("eta=0", "eta=0.5", "eta=1", "voted"), learners=("learned",),
        baselines=("none", "flat", "regressive", "flat100", "best_fixed"), num_seeds=5,
        num_cell_rows=7)


# ------------------------------------------------ gpu_h200.md's figures vs the raw logs
def _page_table(page: str, start: str) -> list[list[str]]:
    """The cells of the first table after `start` on docs/results/<page>.md (no header)."""
    text = page_text(page)
    block = text[text.index(start):].split("\n\n")
    table = next(b for b in block if b.startswith("| "))
    return [[c.strip() for c in line.strip("|").split("|")]
            for line in table.splitlines()[2:]]


def test_h200_training_table_is_the_committed_progress_logs():
    """Each row of gpu_h200.md's paper-preset table is the mean over a tenth of the
    finished episode batches of docs/results/gpu_h200's progress logs, and the
    second-half means quoted below it are recomputed here."""
    folder = os.path.join(RESULTS, "gpu_h200")
    fresh = {}
    for principal in ("learned", "none"):
        with open(os.path.join(folder, f"{principal}_progress.jsonl")) as f:
            records = [json.loads(line) for line in f]
        assert records[-1]["game_steps"] == 2_112_000
        fresh[principal] = [r for r in records if not r.get("metrics_stale")]
    rows = _page_table("gpu_h200", "## The paper preset trained on the H200")
    rows = rows[[r[0] for r in rows].index("64k-192k (players alone)"):]
    assert len(rows) == 10
    k = len(fresh["learned"]) // 10

    def mean(records, key):
        return sum(r[key] for r in records) / len(records)

    for i, row in enumerate(rows):
        learned = fresh["learned"][i * k:(i + 1) * k]
        none = fresh["none"][i * k:(i + 1) * k]
        assert float(row[1]) == pytest.approx(mean(learned, "utilitarian"), abs=0.051)
        assert float(row[3]) == pytest.approx(mean(none, "utilitarian"), abs=0.051)
        rates = [float(x) for x in row[2].split("/")]
        assert rates == pytest.approx([mean(learned, f"rate_b{b}") for b in range(3)],
                                      abs=0.0051)
    text = page_text("gpu_h200")
    for principal, quoted in (("learned", "121.5"), ("none", "108.1")):
        half = [r for r in fresh[principal] if r["game_steps"] > 2_112_000 / 2]
        assert len(half) == 17
        assert f"{mean(half, 'utilitarian'):.1f}" == quoted and quoted in text


def test_h200_check_table_is_the_committed_json():
    with open(os.path.join(RESULTS, "gpu_h200", "gpu_check.json")) as f:
        results = json.load(f)
    assert "NVIDIA H200" in results["device"]
    rates = {(r["name"], r["dtype"], r["games"]): r["rate"] for r in results["rows"]}
    table = {r[0]: r for r in _page_table("gpu_h200", "## The twin's speed")}
    for label in ("env step, no observations", "env step + tiles (11x11)"):
        quoted = [float(x.rstrip("M")) * 1e6 for x in table[label][2].split(" / ")]
        measured = [v for (name, _, games), v in sorted(rates.items(), key=lambda x: x[0][2])
                    if name == label]
        assert quoted == pytest.approx(measured, rel=0.01), label
    for label, prefix in (("training, fast preset, float32 / bfloat16", "training, fast"),
                          ("training, paper preset, float32 / bfloat16", "training, paper")):
        quoted = [float(x.replace(",", "")) for x in table[label][2].split(" / ")]
        measured = {dtype: v for (name, dtype, _), v in rates.items() if name.startswith(prefix)}
        assert quoted == pytest.approx([measured["float32"], measured["bfloat16"]], abs=1.0)
    assert all(c["passed"] for c in results["bf16"]) and len(results["bf16"]) == 8


# ------------------------------------------------ lever.md's trained players vs lever.json
def test_lever_page_trained_players_are_the_committed_analyses():
    """lever.md's trained-player numbers against docs/results/lever_none_seed0_*/lever.json:
    the joint p on apples, every apples interval covering 0, the taxed slopes with their
    intervals (and none at eta 1), and the binding shares."""
    import re

    def analysis(welfare_on: str) -> dict:
        with open(os.path.join(RESULTS, f"lever_none_seed0_{welfare_on}", "lever.json")) as f:
            return json.load(f)

    page = page_text("lever")
    text = " ".join(page[page.index("## Trained players"):].split())
    apples, taxed = analysis("apples"), analysis("taxed")
    joint = re.search(r"joint p ([\d.]+), ([\d.]+) and ([\d.]+) at eta 0, 0.5 and 1", text)
    assert joint, "the apples joint p"
    assert [float(x) for x in joint.groups()] == pytest.approx(
        [s["joint_p"] for s in apples["summaries"]], abs=0.006)
    assert all(r["ci_low"] < 0 < r["ci_high"] for r in apples["rows"])
    slope = {(r["eta"], r["bracket"]): r for r in taxed["rows"]}
    for quoted, key in (
            (r"bracket 0's slope is ([\d.]+) \(([\d.]+) to ([\d.]+)\) at eta 0 ", (0.0, 0)),
            (r"and ([\d.]+) \(([\d.]+) to ([\d.]+)\) at eta 0.5", (0.5, 0)),
            (r"bracket 1's ([\d.]+) \(([\d.]+) to ([\d.]+)\) at eta 0", (0.0, 1))):
        found = re.search(quoted, text)
        assert found, quoted
        r = slope[key]
        assert [float(x) for x in found.groups()] == pytest.approx(
            [r["slope"], r["ci_low"], r["ci_high"]], abs=0.006), key
    assert all(r["ci_low"] < 0 < r["ci_high"] for r in taxed["rows"] if r["eta"] == 1.0)
    binds = re.search(r"bind brackets 0, 1 and 2 in ([\d.]+)%, ([\d.]+)% and ([\d.]+)%", text)
    assert binds, "the binding shares"
    assert [float(x) for x in binds.groups()] == pytest.approx(
        [100 * slope[(0.0, b)]["binds"] for b in range(3)], abs=0.051)


def test_bandit_lag_page_tables_are_the_committed_data():
    """paper_fast_bandit_lag.md's two tables recomputed here: the flat100 - none windows
    from the replication's learning curves (pure Python), and the lag regressions'
    coefficients in another basis (an intercept, the first step and run as the reference,
    each lag as a difference from the next: the same span, so the same fitted values,
    with the rates' coefficients recovered as differences of theirs)."""
    import csv
    import glob
    import re

    page = page_text("paper_fast_bandit_lag")
    windows = {}
    with open(os.path.join(RESULTS, "paper_fast_search_replication",
                           "learning_curves.csv")) as f:
        for r in csv.DictReader(f):
            w = (int(r["game_steps"]) - 1) // 32_000
            windows.setdefault((r["principal"], r["seed"], w), []).append(float(r["W_eta"]))
    rows = re.findall(r"^\| (\d+)-(\d+)k \| ([\d.]+) \| ([+-][\d.]+) \| ([\d.]+) \| 12 \|$",
                      page, re.M)
    assert len(rows) == 13
    for start, _, none, diff, se in rows:
        w = int(start) // 32
        seeds = sorted({s for p, s, k in windows if k == w})
        assert len(seeds) == 12
        d = [sum(windows["flat100", s, w]) / len(windows["flat100", s, w])
             - sum(windows["none", s, w]) / len(windows["none", s, w]) for s in seeds]
        mean = sum(d) / 12
        sd = math.sqrt(sum((x - mean) ** 2 for x in d) / 11)
        assert float(diff) == pytest.approx(mean, abs=0.051)
        assert float(se) == pytest.approx(sd / math.sqrt(12), abs=0.051)
        assert float(none) == pytest.approx(np.mean([np.mean(windows["none", s, w])
                                                     for s in seeds]), abs=0.051)
    runs = []
    for path in sorted(glob.glob(os.path.join(RESULTS, "paper_fast_ucb", "designer", "*.json"))
                       + glob.glob(os.path.join(RESULTS, "paper_fast_s67", "designer",
                                                "*.json"))):
        with open(path) as f:
            steps = json.load(f)["steps"]
        runs.append(([float(np.mean(s["arm"])) for s in steps], [s["score"] for s in steps]))
    assert len(runs) == 8 and all(len(r[0]) == 12 for r in runs)
    for lags in (2, 3, 4):
        x, y = [], []
        for i, (rates, scores) in enumerate(runs):
            for t in range(lags, 12):
                held = [rates[t - k] for k in range(lags + 1)]
                diffs = [held[k] - (held[k + 1] if k < lags else 0.0) for k in range(lags + 1)]
                x.append([1.0] + [float(t == u) for u in range(lags + 1, 12)]
                         + [float(i == j) for j in range(1, 8)] + diffs)
                y.append(scores[t])
        gamma = np.linalg.lstsq(np.asarray(x), np.asarray(y), rcond=None)[0][-(lags + 1):]
        # rate_k is the sum of the differences from k on, so gamma_j = beta_0 + ... + beta_j
        beta = np.diff(gamma, prepend=0.0)
        row = re.search(rf"^\| 0-{lags} \| (.*)$", page, re.M).group(1)
        quoted = [float(v) for v in re.findall(r"([+-][\d.]+) \(", row)]
        assert quoted[:-1] == pytest.approx(list(beta), abs=0.051), lags
        assert quoted[-1] == pytest.approx(beta.sum(), abs=0.051)


def test_small_search_no_cut_page_is_its_committed_search_and_rows():
    """small_search_no_cut.md against its search.json (each schedule's mean and paired
    lead over no tax, recomputed in pure Python; the least-tax rule by its definition:
    no tax and flat 30% lie outside one paired standard error of progressive) and its
    results.csv (the per-seed table and the paired t against no tax and flat100, its p
    from tests/t_distribution.py)."""
    import re

    page = page_text("small_search_no_cut")
    with open(os.path.join(RESULTS, "small_search_no_cut", "searches", "search__eta1",
                           "search.json")) as f:
        saved = json.load(f)
    (rung,) = saved["rungs"]
    assert rung["budget"] == 150 and saved["choice"] == "least_tax"
    names = [tuple(c) for c in rung["candidates"]]
    scores = dict(zip(names, rung["seed_scores"], strict=True))
    assert all(len(s) == 16 for s in scores.values())

    def lead(a, b):
        d = [x - y for x, y in zip(scores[a], scores[b], strict=True)]
        m = sum(d) / len(d)
        return m, math.sqrt(sum((x - m) ** 2 for x in d) / (len(d) - 1) / len(d))

    none = (0.0, 0.0, 0.0)
    for name in names:
        m, se = lead(name, none) if name != none else (0.0, 0.0)
        quoted = re.search(rf"  {re.escape(str(name))}: W ([\d.]+), minus none ([+-][\d.]+) "
                           rf"\(se ([\d.]+)\)", page)
        assert quoted, name
        assert [float(v) for v in quoted.groups()] == pytest.approx(
            [sum(scores[name]) / 16, m, se], abs=0.051)
    best = max(names, key=lambda c: sum(scores[c]))
    assert best == (0.1, 0.3, 0.5) == tuple(saved["chosen"])
    for other in (none, (0.3, 0.3, 0.3)):  # outside one standard error of the best
        m, se = lead(best, other)
        assert m > se
    rows = committed_rows("small_search_no_cut")
    w = {(r["principal"], r["seed"]): r["W_eta"] for r in rows if r["substrate"] == "twin"}
    for seed, rates, search, no_tax, flat100 in re.findall(
            r"^\| (\d) \| ([\d.,]+): ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$", page, re.M):
        s = int(seed)
        assert rates == "0.1,0.3,0.5"
        assert [float(search), float(no_tax), float(flat100)] == pytest.approx(
            [w["search", s], w["none", s], w["flat100", s]], abs=0.051)
    for baseline in ("none", "flat100"):
        d = [w["search", s] - w[baseline, s] for s in range(5)]
        m = sum(d) / 5
        t = m / math.sqrt(sum((x - m) ** 2 for x in d) / 4 / 5)
        p = 2 * (1 - t_distribution.student_t_cdf(abs(t), 4))
        quoted = re.search(rf"search - {baseline}: ([+-][\d.]+), n 5, p ([\d.]+)", page)
        assert float(quoted.group(1)) == pytest.approx(m, abs=0.051)
        assert float(quoted.group(2)) == pytest.approx(p, abs=0.00051)
