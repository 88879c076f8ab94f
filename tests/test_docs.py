"""The documentation site (issue 29): it builds, every page is reachable, no link is
broken, and the Python on its pages runs.

* `mkdocs build --strict` (mkdocs.yml; the `docs` extra, which `dev` installs) fails on
  any warning: a broken link or anchor, a nav entry without a page, a docstring that
  mkdocstrings cannot render. It runs in the default test run, with a check that the
  configuration really turns a broken link into a failure.
* Every page under docs/ is in the nav, except the experiments' generated outputs
  (`docs/results/<call>/*.md`, written by scripts), and every relative link in the pages
  resolves to a file, so the pages also read on the repository host without building.
* Every ```python block of the pages in `SNIPPET_PAGES` runs in a fresh process (slow):
  each block says on its first line which extra it needs, and one that needs an extra
  this install lacks is skipped saying so. A line `expression  # -> value` is checked:
  the expression must equal the value (numerically), so a number in the docs cannot
  drift from what the code returns.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CONFIG = ROOT / "mkdocs.yml"
#: Pages whose ```python blocks run in a test (each block on its own): docs pages and
#: the README (relative to the repository root).
SNIPPET_PAGES = ("docs/python.md", "docs/jaxmarl.md", "README.md")
#: extra named on a block's first line -> the module whose presence means it is installed.
EXTRA_MODULES = {"lua": "meltingpot", "jaxmarl": "jaxmarl", "rllib": "ray"}

HAVE_MKDOCS = all(importlib.util.find_spec(m) is not None
                  for m in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers"))
needs_mkdocs = pytest.mark.skipif(
    not HAVE_MKDOCS, reason="mkdocs is not installed: pip install -e '.[docs]' (dev has it)")


# ------------------------------------------------------------------ pages and links
def generated(page: pathlib.Path) -> bool:
    """An experiment's output written by a script (docs/results/<call>/results.md,
    run_log.md, lever.md), not a page of the site."""
    rel = page.relative_to(DOCS)
    return rel.parts[0] == "results" and len(rel.parts) > 2


def written_pages() -> list[pathlib.Path]:
    return sorted(p for p in DOCS.rglob("*.md") if not generated(p))


def load_config() -> dict:
    yaml = pytest.importorskip("yaml", reason="PyYAML (an mkdocs dependency) is not installed")
    return yaml.safe_load(CONFIG.read_text())


def nav_pages(nav) -> list[str]:
    """Every page path in mkdocs.yml's nav (nested sections included)."""
    found = []
    for item in nav:
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, dict):
            for value in item.values():
                found.extend(nav_pages(value) if isinstance(value, list) else [value])
    return found


FENCE = re.compile(r"^\s*```")
INLINE_CODE = re.compile(r"`[^`]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def relative_links(text: str) -> list[tuple[int, str]]:
    """(line number, target) of every Markdown link or image outside code that is not
    an absolute URL or an anchor of the same page."""
    found, in_code = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            in_code = not in_code
            continue
        if in_code:
            continue
        for target in LINK.findall(INLINE_CODE.sub("", line)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue
            found.append((number, target))
    return found


def github_anchors(text: str) -> set[str]:
    """The anchors the repository host gives the page's headings: lower case, every
    character but letters, digits, spaces, hyphens and underscores dropped, spaces made
    hyphens (mkdocs' own anchors, which the strict build checks, differ only when a
    heading holds runs of hyphens or spaces)."""
    anchors, in_code = set(), False
    for line in text.splitlines():
        if FENCE.match(line):
            in_code = not in_code
        elif not in_code and re.match(r"^#{1,6} ", line):
            heading = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", heading).replace(" ", "-"))
    return anchors


def test_every_written_page_is_in_the_nav_and_every_nav_entry_exists():
    nav = nav_pages(load_config()["nav"])
    assert len(nav) == len(set(nav)), "a page is in the nav twice"
    missing = [p for p in nav if not (DOCS / p).is_file()]
    assert not missing, f"nav entries without a page: {missing}"
    pages = {p.relative_to(DOCS).as_posix() for p in written_pages()}
    assert not pages - set(nav), f"pages under docs/ that are not in mkdocs.yml's nav: " \
                                 f"{sorted(pages - set(nav))}"


#: Markdown files at the repository root whose links are checked like the pages' (they
#: read on the repository host, where a link may also name a folder, e.g. examples/).
ROOT_PAGES = ("README.md", "CHANGELOG.md")


def test_every_relative_link_in_the_pages_resolves_to_a_file():
    broken = []
    for page in [*written_pages(), *(ROOT / name for name in ROOT_PAGES)]:
        for number, target in relative_links(page.read_text()):
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve()
            if not (file.is_file() or (page.parent == ROOT and file.is_dir())):
                broken.append(f"{page.relative_to(ROOT)}:{number}: {target}")
            elif anchor and file.suffix == ".md" and anchor not in github_anchors(
                    file.read_text()):
                broken.append(f"{page.relative_to(ROOT)}:{number}: {target} (no such "
                              "heading on the repository host)")
    assert not broken, "links to no file or heading:\n" + "\n".join(broken)


def test_github_anchors_of_headings():
    text = ("# Top\n## What W is computed on: welfare_on\n### The principal's recipe\n"
            "```bash\n# a comment\n```\n## Light install (GPU, no `Ray`)\n")
    assert github_anchors(text) == {"top", "what-w-is-computed-on-welfare_on",
                                    "the-principals-recipe", "light-install-gpu-no-ray"}


def test_the_link_finder_finds_links_and_skips_code_and_urls():
    text = ("See [a](a.md) and ![b](img/b.png \"t\"), [c](c.md#x), [d](#here),\n"
            "[e](https://x.org/e.md), `[f](f.md)`\n```\n[g](g.md)\n```\n[h](../h.md)\n")
    assert relative_links(text) == [(1, "a.md"), (1, "img/b.png"), (1, "c.md#x"),
                                     (6, "../h.md")]


# ------------------------------------------------------------------ the build
def mkdocs_build(config: pathlib.Path, site: pathlib.Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # material's banner about MkDocs 2
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d",
         str(site)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@needs_mkdocs
def test_mkdocs_build_strict_passes(tmp_path):
    result = mkdocs_build(CONFIG, tmp_path / "site")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    for page in ("index.html", "install/index.html", "api/core/index.html",
                 "api/training/index.html", "results/index.html"):
        assert (tmp_path / "site" / page).is_file(), page
    # mkdocstrings filled the API pages from the docstrings (the directive is gone).
    core = (tmp_path / "site" / "api" / "core" / "index.html").read_text()
    assert "bracket_tax" in core and ":::" not in core


@needs_mkdocs
def test_the_configuration_fails_a_broken_link(tmp_path):
    """The same theme, extensions, plugins and validation as mkdocs.yml, on two pages of
    which one links to a page that does not exist: the strict build must fail naming it
    (and pass once the link is fixed), or the build test above would prove nothing."""
    import yaml

    config = load_config()
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\nSee [the other page](other.md).\n")
    (docs / "other.md").write_text("# Other\n\nSee [nowhere](missing.md).\n")
    config.update(docs_dir=str(docs), nav=[{"Home": "index.md"}, {"Other": "other.md"}])
    config.pop("exclude_docs", None)
    config_file = tmp_path / "mkdocs.yml"
    config_file.write_text(yaml.safe_dump(config))
    result = mkdocs_build(config_file, tmp_path / "site")
    assert result.returncode != 0 and "missing.md" in result.stderr, result.stderr[-3000:]
    (docs / "other.md").write_text("# Other\n\nSee [home](index.md).\n")
    result = mkdocs_build(config_file, tmp_path / "site")
    assert result.returncode == 0, result.stderr[-3000:]


# ------------------------------------------------------------------ the Python blocks
def python_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number, source) of every ```python block."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            j = i + 1
            while j < len(lines) and not FENCE.match(lines[j]):
                j += 1
            blocks.append((i + 2, "\n".join(lines[i + 1:j]) + "\n"))
            i = j
        i += 1
    return blocks


def needed_extra(source: str) -> str | None:
    """The extra a block names on its first line ("# Needs the lua extra ..."); None for
    "# Needs the base install only"; a block that says neither is an error."""
    first = source.splitlines()[0]
    match = re.match(r"# Needs the (\w+) extra", first)
    if match:
        return match.group(1)
    assert first.startswith("# Needs the base install"), (
        f"a block's first line must name what it needs, got {first!r}")
    return None


#: Runs one block (argv[1]) with its `expression  # -> value` lines checked.
RUNNER = r'''
import ast, io, sys, tokenize
import numpy as np

path = sys.argv[1]
source = open(path).read()
expected = {}
for tok in tokenize.generate_tokens(io.StringIO(source).readline):
    if tok.type == tokenize.COMMENT and tok.string.startswith("# ->"):
        expected[tok.start[0]] = ast.literal_eval(tok.string[4:].strip())

def _expect(actual, line):
    value = expected[line]
    got = np.asarray(actual, dtype=float)
    want = np.asarray(value, dtype=float)
    if got.shape != want.shape or not np.allclose(got, want, rtol=1e-9, atol=1e-12):
        raise AssertionError(f"line {line}: the docs say {value!r}, the code gives {actual!r}")

tree = ast.parse(source)
checked = set()
for i, node in enumerate(tree.body):
    if isinstance(node, ast.Expr) and node.end_lineno in expected:
        call = ast.Call(func=ast.Name("_expect", ast.Load()),
                        args=[node.value, ast.Constant(node.end_lineno)], keywords=[])
        tree.body[i] = ast.copy_location(ast.Expr(call), node)
        checked.add(node.end_lineno)
unchecked = sorted(set(expected) - checked)
if unchecked:
    raise SystemExit(f"'# ->' comments not on a top-level expression: lines {unchecked}")
exec(compile(ast.fix_missing_locations(tree), path, "exec"), {"_expect": _expect,
                                                             "__name__": "__main__"})
print(f"CHECKED {len(checked)}")
'''


def snippet_cases() -> list:
    cases = []
    for name in SNIPPET_PAGES:
        for line, source in python_blocks((ROOT / name).read_text()):
            cases.append(pytest.param(source, id=f"{name}:{line}"))
    return cases


def test_the_snippet_pages_have_blocks_that_say_what_they_need():
    cases = snippet_cases()
    assert len(cases) >= 10, len(cases)
    assert sum(case.id.startswith("README.md") for case in cases) >= 3
    extras = [needed_extra(case.values[0]) for case in cases]
    assert set(extras) <= {None, *EXTRA_MODULES}, extras
    assert {None, "lua", "jaxmarl"} <= set(extras)


def test_the_runner_checks_the_documented_values(tmp_path):
    """`# ->` comments are compared with the code: a wrong value fails the block."""
    block = tmp_path / "block.py"
    block.write_text("x = [1, 2]\nsum(x)  # -> 3\n[len(x),\n x[0]]  # -> [2, 1.0]\n")
    ok = subprocess.run([sys.executable, "-c", RUNNER, str(block)], capture_output=True,
                        text=True, timeout=120)
    assert ok.returncode == 0 and "CHECKED 2" in ok.stdout, ok.stderr
    block.write_text("x = [1, 2]\nsum(x)  # -> 4\n")
    wrong = subprocess.run([sys.executable, "-c", RUNNER, str(block)], capture_output=True,
                           text=True, timeout=120)
    assert wrong.returncode != 0 and "the docs say 4" in wrong.stderr, wrong.stderr


@pytest.mark.slow  # a fresh process per block; the Lua blocks build the substrate
@pytest.mark.parametrize("source", snippet_cases())
def test_python_block_runs(source, tmp_path):
    extra = needed_extra(source)
    if extra and importlib.util.find_spec(EXTRA_MODULES[extra]) is None:
        pytest.skip(f"the block needs the '{extra}' extra, which is not installed")
    block = tmp_path / "block.py"
    block.write_text(source)
    result = subprocess.run([sys.executable, "-c", RUNNER, str(block)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    assert source.count("# ->") == int(re.search(r"CHECKED (\d+)", result.stdout).group(1))
