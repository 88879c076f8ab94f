"""Every `scripts/*.py` command in README.md and in the documentation pages
(`docs/**/*.md`, the experiments' generated outputs left out) parses and validates
(issue 11, section 1; issue 29 moved most of the README's commands to docs/), read from
the pages when the test runs, so lines added later are checked too.

Commands come from the pages' code blocks (fenced and indented), with
`\\` continuations joined and `&&`/`;` chains split; `docker run IMAGE
COMMAND ...` lines are mapped to their script through the entrypoint's own
table (docker/entrypoint.sh), with the `/outputs` volume mapped to a local
folder. Each command runs in a folder of its own holding what it reads (a
run folder for --checkpoint/--restore, a jax run folder for --run_dir, progress
logs for plot.py, the --flagfile, gpu_check.py's JSON), through
`tests/script_harness.py`: scripts with `--dry_run` check everything up to the work
itself; others are parsed.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil

import pytest
from test_script_errors import ROOT, run_script

README = os.path.join(ROOT, "README.md")
DOCS = os.path.join(ROOT, "docs")
ENTRYPOINT = os.path.join(ROOT, "docker", "entrypoint.sh")
DATA = os.path.join(ROOT, "tests", "data")
# Scripts that must have --dry_run: their work (training, playing episodes)
# is too long to run here, and parsing alone would miss their checks.
DRY_RUN_SCRIPTS = ("train.py", "evaluate.py", "render_video.py")
# Flags whose value is a run folder the command reads.
RUN_INPUT_FLAGS = ("restore", "checkpoint")
# Flags whose value is a jax-engine run folder (the lever analysis plays its players).
JAX_RUN_INPUT_FLAGS = ("run_dir",)
# gpu_train.py's --gpu_check_json reads a gpu_check.py output: the committed H200 one.
GPU_CHECK_JSON = os.path.join(ROOT, "docs", "results", "gpu_h200", "gpu_check.json")

pytestmark = pytest.mark.slow  # one script process each: minutes on a loaded 2-core machine


def documented_pages() -> list[str]:
    """README.md, then every page of the documentation site. The experiments' outputs
    under docs/results/<call>/ (results.md, run_log.md, lever.md) are left out: scripts
    write them, and their commands are the pages' own."""
    pages = []
    for folder, _, files in os.walk(DOCS):
        rel = os.path.relpath(folder, DOCS).split(os.sep)
        if rel[0] == "results" and len(rel) > 1:
            continue
        pages += [os.path.join(folder, f) for f in files if f.endswith(".md")]
    return [README, *sorted(pages)]


def documented_commands() -> list[tuple[str, list[str], str]]:
    """`readme_commands` of every documented page, each line prefixed with its page."""
    found = []
    for page in documented_pages():
        with open(page) as f:
            text = f.read()
        name = os.path.relpath(page, ROOT)
        found += [(script, args, f"{name}: {line}")
                  for script, args, line in readme_commands(text)]
    return found


def code_blocks(text: str) -> list[str]:
    """Fenced (```) blocks, and blocks indented by 4 spaces after a blank line."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].lstrip().startswith("```"):
                j += 1
            blocks.append("\n".join(lines[i + 1:j]))
            i = j + 1
        elif line.startswith("    ") and (i == 0 or not lines[i - 1].strip()):
            j = i
            while j < len(lines) and (lines[j].startswith("    ") or not lines[j].strip()):
                j += 1
            blocks.append("\n".join(x[4:] for x in lines[i:j]))
            i = j
        else:
            i += 1
    return blocks


def docker_commands() -> dict[str, str]:
    """Entrypoint command -> script, from docker/entrypoint.sh."""
    text = open(ENTRYPOINT).read()
    return dict(re.findall(r'^\s*(\w+)\)\s*script="([\w.]+)"', text, flags=re.M))


def readme_commands(text: str) -> list[tuple[str, list[str], str]]:
    """(script, arguments, the README line) for every script command."""
    docker = docker_commands()
    found = []
    for block in code_blocks(text):
        for logical in re.sub(r"\\\n\s*", " ", block).splitlines():
            try:
                tokens = shlex.split(logical, comments=True)
            except ValueError:
                continue  # not shell (e.g. a Python example)
            segments, current = [], []
            for token in tokens:
                if token in ("&&", "||", ";", "|"):
                    segments.append(current)
                    current = []
                else:
                    current.append(token)
            segments.append(current)
            for seg in segments:
                scripts = [k for k, t in enumerate(seg)
                           if re.fullmatch(r"(.*/)?scripts/\w+\.py", t)]
                if scripts:
                    k = scripts[0]
                    found.append((os.path.basename(seg[k]), seg[k + 1:], logical.strip()))
                elif seg[:2] == ["docker", "run"]:
                    images = [k for k, t in enumerate(seg) if t.startswith("sed-meltingpot")]
                    if images and images[0] + 1 < len(seg) and seg[images[0] + 1] in docker:
                        k = images[0] + 1
                        args = [a.replace("/outputs", "outputs") for a in seg[k + 1:]]
                        found.append((docker[seg[k]], args, logical.strip()))
    return found


def test_extraction_finds_the_known_kinds_of_lines():
    """Guards the extractor: a change of the README or the pages must not make it find
    nothing (every script the documentation shows, and the Docker lines)."""
    pages = [os.path.relpath(p, ROOT) for p in documented_pages()]
    assert "README.md" in pages and os.path.join("docs", "install.md") in pages
    assert not [p for p in pages if len(p.split(os.sep)) > 3], "a generated output"
    commands = documented_commands()
    scripts = {c[0] for c in commands}
    assert {"train.py", "evaluate.py", "render_video.py", "plot.py", "experiment.py",
            "lever_analysis.py", "pool_results.py", "gpu_check.py", "gpu_train.py",
            "benchmark_twin.py"} <= scripts, scripts
    docker_lines = [c for c in commands if c[2].split(": ", 1)[1].startswith("docker run")]
    assert {c[0] for c in docker_lines} >= {"train.py", "evaluate.py", "render_video.py"}
    # Each page that shows a kind of command is read (the text followed to its pages).
    by_page = {c[2].split(": ", 1)[0] for c in commands}
    assert {os.path.join("docs", p) for p in ("install.md", "training-rllib.md",
                                              "training-jax.md", "evaluation.md",
                                              "lever.md", "experiments.md",
                                              "performance.md", "docker.md")} <= by_page
    sample = readme_commands(
        "```bash\nbash x.sh && .venv/bin/python scripts/train.py --a=1 \\\n"
        "    --b=2   # note\n```\n\n    docker run --rm -v \"$PWD/o:/outputs\" "
        "sed-meltingpot:cuda \\\n        render --output=/outputs/v.mp4\n")
    assert [(script, args) for script, args, _ in sample] == [
        ("train.py", ["--a=1", "--b=2"]), ("render_video.py", ["--output=outputs/v.mp4"])]


def _flag_values(args: list[str], name: str) -> list[str]:
    return [a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")]


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory):
    from fake_run import make_run

    folder = str(tmp_path_factory.mktemp("fake") / "run")
    make_run(folder)  # the paper's settings, as `train.py` with defaults leaves them
    return folder


@pytest.fixture(scope="module")
def fake_jax_run(tmp_path_factory):
    from test_experiment import make_twin_run

    from sed_meltingpot.game.config import GameConfig

    folder = str(tmp_path_factory.mktemp("fake_jax") / "run")
    return make_twin_run(folder, GameConfig(num_players=3, episode_length=50, tax_period=25))


def test_every_documented_command_parses_and_validates(tmp_path, fake_run, fake_jax_run):
    commands = documented_commands()
    by_script: dict[str, list] = {}
    for index, (script, args, line) in enumerate(commands):
        cwd = tmp_path / f"cmd{index:02d}"
        cwd.mkdir()
        for name in RUN_INPUT_FLAGS:
            for value in _flag_values(args, name):
                shutil.copytree(fake_run, cwd / value)
        for name in JAX_RUN_INPUT_FLAGS:
            for value in _flag_values(args, name):
                shutil.copytree(fake_jax_run, cwd / value)
        for value in _flag_values(args, "gpu_check_json"):
            shutil.copy(GPU_CHECK_JSON, cwd / value)
        for value in _flag_values(args, "flagfile"):
            (cwd / value).write_text("--preset=fast\n--num_iterations=3\n")
        if script == "plot.py":
            for value in [a for a in args if not a.startswith("-")]:
                os.makedirs(cwd / value)
                shutil.copy(os.path.join(DATA, "progress_tiny.jsonl"),
                            cwd / value / "progress.jsonl")
        by_script.setdefault(script, []).append(({"argv": args, "cwd": str(cwd)}, line))
    failures = []
    for script, items in by_script.items():
        assert os.path.exists(os.path.join(ROOT, "scripts", script)), script
        results = run_script(script, [item for item, _ in items], str(tmp_path))
        for (_, line), result in zip(items, results, strict=True):
            if result["outcome"] != "ok":
                failures.append(f"{line}\n  -> {result['outcome']}: {result['message']}")
            elif script in DRY_RUN_SCRIPTS:
                assert "dry run" in result["message"], (line, result)
    assert not failures, "documented commands that fail:\n" + "\n".join(failures)
