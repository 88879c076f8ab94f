"""The results page's summary (issue 29): docs/results/index.md's table, forest.png and
the reproduction scripts the pages show.

The committed table is recomputed here without the package's statistics: the calls'
rows read with the csv module and merged by hand, the best baseline by the highest
mean, the paired differences with numpy, their 95% interval from scipy.stats.t's
quantile, the paired t-test's p from scipy.stats.t's CDF and Holm's step-down by hand.
Synthetic calls whose verdicts are known (a clear win, a clear loss, a tie) check the
verdict rule and the script end to end, and `--check` must fail on a stale table. Each
page shows its scripts/reproduce/*.sh verbatim (checked here), so the commands'
flags are checked where tests/test_readme_commands.py runs every page's commands.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats as scipy_stats

from sed_meltingpot.experiment import summary

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "docs", "results")
SCRIPT = os.path.join(ROOT, "scripts", "results_summary.py")
REPRODUCE = os.path.join(ROOT, "scripts", "reproduce")
#: The calls the page says do not count (index.md, "Which results count").
NOT_COUNTED = {"small", "budget", "small_ucb_detrended", "paper_fast_late",
               "paper_fast_ucb_detrended", "paper_fast_search_replication",
               "small_search_least_tax", "small_search_no_cut"}
BASELINES = ("none", "flat", "progressive", "regressive", "flat100", "random", "best_fixed")
OBJECTIVE_ORDER = ("eta=0", "eta=0.5", "eta=1", "voted")
DEFINITIONS = {"apples": "apples eaten", "taxed": "post-tax income"}


# ------------------------------------------------------------ independent recomputation
def _calls_by_grid() -> dict[str, list[str]]:
    """{grid name: its call folders}, every docs/results/<call>/results.csv but those the
    page leaves out."""
    grids: dict[str, list[str]] = {}
    for name in sorted(os.listdir(RESULTS)):
        folder = os.path.join(RESULTS, name)
        if name in NOT_COUNTED or not os.path.isfile(os.path.join(folder, "results.csv")):
            continue
        with open(os.path.join(folder, "experiment.json")) as f:
            grids.setdefault(json.load(f)["grid"]["name"], []).append(name)
    return grids


def _merged_rows(calls: list[str]) -> dict[tuple, float]:
    """{(definition, objective, principal, seed): W_eta} on the twin over the calls; a key
    that two calls hold must hold the same value."""
    out: dict[tuple, float] = {}
    for call in calls:
        with open(os.path.join(RESULTS, call, "results.csv"), newline="") as f:
            for r in csv.DictReader(f):
                if r["substrate"] != "twin" or r["principal"] == "sampled":
                    continue
                key = (r.get("welfare_on") or "apples", r["objective"], r["principal"],
                       int(r["seed"]))
                value = float(r["W_eta"])
                assert out.setdefault(key, value) == value, (call, key)
    return out


def _holm(p: list[float]) -> list[float]:
    order = sorted(range(len(p)), key=lambda i: p[i])
    adjusted, running = [0.0] * len(p), 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - k) * p[i]))
        adjusted[i] = running
    return adjusted


def _expected_rows() -> list[dict]:
    expected = []
    for grid, calls in _calls_by_grid().items():
        rows = _merged_rows(calls)
        cells = sorted({(w, o) for (w, o, p, _) in rows if p == "learned"},
                       key=lambda c: (c[0], OBJECTIVE_ORDER.index(c[1])))
        for w, o in cells:
            def seeds(principal, w=w, o=o, rows=rows):
                return {s: v for (w2, o2, p, s), v in rows.items()
                        if (w2, o2, p) == (w, o, principal)}

            ours = seeds("learned")
            present = [b for b in BASELINES if seeds(b)]
            p_values, diffs = [], {}
            for b in present:
                theirs = seeds(b)
                d = np.array([ours[s] - theirs[s] for s in sorted(ours)])
                t = d.mean() / (d.std(ddof=1) / math.sqrt(len(d)))
                p_values.append(2 * scipy_stats.t.sf(abs(t), len(d) - 1))
                diffs[b] = d
            holm = dict(zip(present, _holm(p_values), strict=True))
            raw = dict(zip(present, p_values, strict=True))
            best = max(present, key=lambda b: np.mean(list(seeds(b).values())))
            d = diffs[best]
            half = scipy_stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
            learned = np.array(list(ours.values()))
            best_values = np.array(list(seeds(best).values()))
            verdict = ("wins" if d.mean() > 0 and holm[best] < 0.05 else
                       "loses" if d.mean() < 0 and holm[best] < 0.05 else "ties")
            expected.append({
                "grid": grid, "w": DEFINITIONS[w], "objective": o.replace("=", " = "),
                "n": len(d), "learned": learned.mean(), "best": best,
                "best_mean": best_values.mean(), "diff": d.mean(), "lo": d.mean() - half,
                "hi": d.mean() + half, "p": raw[best], "holm": holm[best],
                "family": len(present), "verdict": verdict})
    return expected


def _committed_table(text: str) -> list[list[str]]:
    block = text[text.index(summary.START):text.index(summary.END)]
    lines = [line for line in block.splitlines() if line.startswith("| ")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[1:]]


def test_the_committed_summary_table_is_the_csvs_recomputed_here():
    with open(os.path.join(RESULTS, "index.md")) as f:
        table = _committed_table(f.read())
    expected = _expected_rows()
    assert len(table) == len(expected) >= 14
    by_key = {(e["grid"], e["w"], e["objective"]): e for e in expected}
    assert len(by_key) == len(expected)
    number = r"[-+]?\d+(?:\.\d+)?"
    for cells in table:
        grid, w, objective, n, learned, best, ci, p, holm, verdict, _pages = cells
        e = by_key.pop((grid, w, objective))
        assert int(n) == e["n"]
        assert float(re.findall(number, learned)[0]) == pytest.approx(e["learned"], abs=0.051)
        name, rest = best.split(" ", 1)
        mean = float(re.findall(number, rest)[0])
        assert name == e["best"] and mean == pytest.approx(e["best_mean"], abs=0.051)
        diff, lo, hi = (float(x) for x in re.findall(number, ci))
        assert (diff, lo, hi) == pytest.approx((e["diff"], e["lo"], e["hi"]), abs=0.051)
        assert float(p) == pytest.approx(e["p"], abs=0.0006)
        holm_p, family = re.fullmatch(r"([\d.]+) \((\d+)\)", holm).groups()
        assert float(holm_p) == pytest.approx(e["holm"], abs=0.0006)
        assert int(family) == e["family"]
        assert verdict.strip("*") == e["verdict"]
    assert not by_key


def test_the_short_answer_counts_the_tables_verdicts():
    with open(os.path.join(RESULTS, "index.md")) as f:
        text = f.read()
    verdicts = [row[9].strip("*") for row in _committed_table(text)]
    claim = re.search(r"\((\d+) of (\d+) ties\)", " ".join(text.split()))
    assert claim and claim.groups() == (str(verdicts.count("ties")), str(len(verdicts)))


def test_check_passes_on_the_committed_files():
    done = subprocess.run([sys.executable, SCRIPT, "--check"], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "matches the committed results" in done.stdout


def test_check_fails_on_a_stale_table_and_a_rerun_fixes_it(tmp_path):
    results = tmp_path / "results"
    shutil.copytree(RESULTS, results, ignore=shutil.ignore_patterns("*.png", "*.jsonl"))
    page = results / "index.md"
    text = page.read_text()
    page.write_text(text.replace("| ties |", "| wins |", 1))
    args = [sys.executable, SCRIPT, f"--results_dir={results}"]
    done = subprocess.run([*args, "--check"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "stale" in done.stdout
    done = subprocess.run([*args, f"--forest={tmp_path / 'f.png'}"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert page.read_text() == text  # the prose around the table is kept as it was
    assert (tmp_path / "f.png").stat().st_size > 1000


# ------------------------------------------------------------------- synthetic calls
def _write_call(folder, name: str, rows: list[dict], grid: str = "toy", **fields) -> str:
    path = os.path.join(folder, name)
    os.makedirs(path)
    columns = ["welfare_on", "objective", "principal", "seed", "substrate", "W_eta"]
    with open(os.path.join(path, "results.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    with open(os.path.join(path, "experiment.json"), "w") as f:
        json.dump({"meta": {"engine": "jax"},
                   "grid": {"name": grid, "twin_iterations": 10, **fields}}, f)
    return path


def _rows(objective: str, values: dict[str, list[float]]) -> list[dict]:
    return [{"welfare_on": "apples", "objective": objective, "principal": p, "seed": s,
             "substrate": "twin", "W_eta": v}
            for p, vs in values.items() for s, v in enumerate(vs)]


#: Five seeds; noise small against the gaps so the verdicts are certain.
NOISE = [0.0, 0.3, -0.2, 0.1, -0.1]
TOY = {
    # learned 10 above the best baseline (flat100) in every seed: wins
    "eta=0": {"learned": [30 + e for e in NOISE], "none": [10 - e for e in NOISE],
              "flat100": [20 + 2 * e for e in NOISE]},
    # learned 10 below no tax in every seed: loses
    "eta=1": {"learned": [50 + e for e in NOISE], "none": [60 - e for e in NOISE],
              "flat100": [40 + e for e in NOISE]},
    # learned and no tax differ by noise of either sign: ties
    "voted": {"learned": [20, 25, 15, 22, 18], "none": [21, 23, 16, 20, 20]},
}


def test_synthetic_verdicts_win_lose_tie(tmp_path):
    rows = [r for o, values in TOY.items() for r in _rows(o, values)]
    call = summary.read_call(_write_call(str(tmp_path), "toy_call", rows))
    got = {r.objective: r for r in summary.summarise([call])}
    assert {o: (r.best, r.verdict) for o, r in got.items()} == {
        "eta=0": ("flat100", "wins"), "eta=1": ("none", "loses"), "voted": ("none", "ties")}
    assert got["eta=0"].diff.mean == pytest.approx(10.0 - np.mean(NOISE))
    assert got["eta=0"].family_size == 2 and got["voted"].family_size == 1
    d = np.array(TOY["voted"]["learned"]) - np.array(TOY["voted"]["none"])
    half = scipy_stats.t.ppf(0.975, 4) * d.std(ddof=1) / math.sqrt(5)
    assert (got["voted"].diff.ci_low, got["voted"].diff.ci_high) == pytest.approx(
        (d.mean() - half, d.mean() + half))
    assert summary.verdict(1.0, 0.049) == "wins" and summary.verdict(-1.0, 0.01) == "loses"
    assert summary.verdict(5.0, 0.05) == "ties" and summary.verdict(-5.0, math.nan) == "ties"


def test_the_script_writes_the_synthetic_table_and_forest(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    rows = [r for o, values in TOY.items() for r in _rows(o, values)]
    # Two calls of one grid: the second repeats learned and none at eta=0 (same values)
    # and adds flat100 there, so the merge counts the shared rows once.
    first = [r for r in rows if not (r["objective"] == "eta=0" and r["principal"] == "flat100")]
    second = [r for r in rows if r["objective"] == "eta=0"]
    _write_call(str(results), "a", first)
    _write_call(str(results), "b", second, seeds=[0, 1, 2, 3, 4])
    _write_call(str(results), "small", _rows("eta=0", {"learned": [1, 2], "none": [9, 9]}),
                grid="old")  # NOT_COUNTED: must not appear
    (results / "index.md").write_text(f"# t\n\nprose\n\n{summary.START}\n{summary.END}\n\nend\n")
    done = subprocess.run([sys.executable, SCRIPT, f"--results_dir={results}"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    text = (results / "index.md").read_text()
    assert text.startswith("# t\n\nprose\n\n") and text.endswith("\n\nend\n")
    table = _committed_table(text)
    assert [(r[2], r[5].split(" ")[0], r[9].strip("*")) for r in table] == [
        ("eta = 0", "flat100", "wins"), ("eta = 1", "none", "loses"), ("voted", "none", "ties")]
    assert table[0][10] == "[a](a.md), [b](b.md)" and table[1][10] == "[a](a.md)"
    assert all(r[0] == "toy" for r in table)
    assert (results / "forest.png").stat().st_size > 1000
    done = subprocess.run([sys.executable, SCRIPT, f"--results_dir={results}", "--check"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout


def test_merge_refuses_a_run_with_two_values_and_calls_of_different_grids(tmp_path):
    rows = _rows("eta=0", TOY["eta=0"])
    a = summary.read_call(_write_call(str(tmp_path), "a", rows))
    changed = [dict(r, W_eta=r["W_eta"] + (1 if r["principal"] == "none" else 0)) for r in rows]
    b = summary.read_call(_write_call(str(tmp_path), "b", changed))
    with pytest.raises(ValueError, match="b and a hold .* not the same run"):
        summary.merge_calls([a, b])
    c = summary.read_call(_write_call(str(tmp_path), "c", rows, eval_episodes=4))
    with pytest.raises(ValueError, match="differ in eval_episodes"):
        summary.merge_calls([a, c])


def test_markers_keep_the_prose_and_are_required():
    page = "intro\n<!-- summary:start -->\nold\n<!-- summary:end -->\noutro\n"
    assert summary.replace_between_markers(page, "new") == (
        "intro\n<!-- summary:start -->\nnew\n<!-- summary:end -->\noutro\n")
    assert summary.between_markers(summary.replace_between_markers(page, "| x |")) == "| x |"
    for bad in ("no markers", "<!-- summary:end -->\n<!-- summary:start -->"):
        with pytest.raises(ValueError, match="needs one"):
            summary.replace_between_markers(bad, "x")


# ---------------------------------------------------------- pages and their scripts
def _script_body(path: str) -> str:
    """A reproduce script's commands: what follows its `cd` to the repository root."""
    with open(path) as f:
        lines = f.read().splitlines()
    start = lines.index('cd "$(dirname "$0")/../.."') + 1
    return "\n".join(lines[start:]).strip("\n")


def _page_bash_blocks(path: str) -> list[str]:
    with open(path) as f:
        return re.findall(r"^```bash\n(.*?)\n```$", f.read(), flags=re.S | re.M)


#: The page of a script whose page has another name.
SCRIPT_PAGES = {"summary": "index"}


def test_every_reproduce_script_is_shown_verbatim_on_its_page():
    scripts = sorted(f[:-3] for f in os.listdir(REPRODUCE) if f.endswith(".sh"))
    assert len(scripts) >= 9
    pages_with_commands = set()
    for name in scripts:
        path = os.path.join(REPRODUCE, name + ".sh")
        assert os.access(path, os.X_OK), f"{path} is not executable"
        with open(path) as f:
            head = f.read().split('cd "$(dirname "$0")/../.."')[0]
        assert head.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in head
        if name != "summary":
            assert "Wall time" in head and "Machine" in head, f"{name}.sh: its header"
        page = SCRIPT_PAGES.get(name, name)
        blocks = _page_bash_blocks(os.path.join(RESULTS, page + ".md"))
        assert blocks == [_script_body(path)], f"{page}.md does not show {name}.sh verbatim"
        pages_with_commands.add(page + ".md")
    # A results page with a command has a script; the archive shows none.
    for page in os.listdir(RESULTS):
        if page.endswith(".md") and page not in pages_with_commands:
            assert not _page_bash_blocks(os.path.join(RESULTS, page)), page


def test_reproduce_scripts_are_valid_bash():
    for name in os.listdir(REPRODUCE):
        done = subprocess.run(["bash", "-n", os.path.join(REPRODUCE, name)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (name, done.stderr)


def test_the_pages_name_what_does_not_count():
    """The module's lists, the archive and the index agree on what the summary leaves out."""
    assert set(summary.NOT_COUNTED) == NOT_COUNTED
    with open(os.path.join(RESULTS, "archive.md")) as f:
        archive = f.read()
    with open(os.path.join(RESULTS, "index.md")) as f:
        index = f.read()
    for name in summary.SUPERSEDED:
        assert f"]({name}/results.md)" in archive and "superseded" in archive.lower()
    for name in summary.NOT_COUNTED:
        assert f"`{name}`" in index, name
    for folder in os.listdir(RESULTS):
        if os.path.isfile(os.path.join(RESULTS, folder, "results.csv")):
            page = summary.PAGE_OF.get(folder, folder)
            assert os.path.isfile(os.path.join(RESULTS, f"{page}.md")) or folder in \
                summary.NOT_COUNTED, f"{folder} has no page"


def test_every_relative_link_and_image_of_the_pages_resolves():
    """Readable on the repository host without building: every relative target exists."""
    for page in sorted(os.listdir(RESULTS)):
        if not page.endswith(".md"):
            continue
        with open(os.path.join(RESULTS, page)) as f:
            text = f.read()
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" in target:
                continue
            assert os.path.exists(os.path.join(RESULTS, target)), (page, target)
