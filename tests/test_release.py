"""The release files (issue 29, item 6): one version everywhere, the Apache-2.0 text, the
citation file, the changelog's module table, and a package-index description without
relative links that the wheel really carries."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

import sed_meltingpot

ROOT = Path(__file__).resolve().parents[1]
VERSION, DATE = "0.2.0", "2026-12-05"
#: md5 of the Apache License 2.0 as apache.org serves it (LICENSE-2.0.txt), the text
#: many packages ship unchanged (jax, absl-py, optax, dm-meltingpot among them).
APACHE_2_MD5 = "3b83ef96387f14655fc854ddc3c6bd57"


def _setup_version() -> str:
    match = re.search(r'^\s*version="([^"]+)",', (ROOT / "setup.py").read_text(), re.M)
    assert match, "setup.py has no version= line"
    return match.group(1)


def test_one_version_in_setup_package_changelog_and_citation():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert _setup_version() == sed_meltingpot.__version__ == cff["version"] == VERSION
    assert str(cff["date-released"]) == DATE
    changelog = (ROOT / "CHANGELOG.md").read_text()
    releases = re.findall(r"^## \[([^\]]+)\](?: - (\S+))?$", changelog, re.M)
    if releases[0] == ("Unreleased", ""):  # Keep a Changelog: what the next release holds
        releases = releases[1:]
    assert releases[0] == (VERSION, DATE), releases  # the newest release first
    assert ("Unreleased", "") not in releases
    assert ("0.1.0", "") in releases


def test_license_is_the_verbatim_apache_2_text_and_notice_names_the_authors():
    text = (ROOT / "LICENSE").read_bytes()
    assert hashlib.md5(text).hexdigest() == APACHE_2_MD5
    assert b"APPENDIX: How to apply the Apache License to your work." in text
    notice = (ROOT / "NOTICE").read_text()
    assert "Copyright 2026 The sed-meltingpot Authors" in notice
    manifest = (ROOT / "MANIFEST.in").read_text().split("\n")
    for name in ("LICENSE", "NOTICE", "PYPI.md", "CHANGELOG.md", "CITATION.cff"):
        assert f"include {name}" in manifest, name


def test_citation_cff_has_the_required_keys_and_cites_the_paper():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors", "license", "type"):  # CFF 1.2.0's required
        assert cff.get(key), key                                      # keys, and ours
    assert cff["title"] == "sed-meltingpot" and cff["license"] == "Apache-2.0"
    assert cff["authors"] == [{"name": "The sed-meltingpot Authors"}]
    paper = cff["preferred-citation"]
    assert paper["title"].startswith("Position: Social Environment Design")
    assert paper["type"] == "conference-paper" and paper["year"] == 2024
    assert paper["volume"] == 235 and paper["publisher"]["name"] == "PMLR"
    names = [f"{a['given-names']} {a['family-names']}" for a in paper["authors"]]
    assert names == ["Edwin Zhang", "Sadie Zhao", "Tonghan Wang", "Safwan Hossain",
                     "Henry Gasztowtt", "Stephan Zheng", "David C. Parkes", "Milind Tambe",
                     "Yiling Chen"]


def _changelog_table() -> list[tuple[str, list[str]]]:
    """(old module, [new modules]) rows of the changelog's table."""
    rows = []
    for line in (ROOT / "CHANGELOG.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].startswith("`sed_meltingpot."):
            rows.append((cells[0].strip("`"),
                         re.findall(r"`(sed_meltingpot[\w.]*)`", cells[1])))
    return rows


def test_changelog_module_table_old_names_are_gone_and_new_names_exist():
    rows = _changelog_table()
    assert len(rows) >= 17
    for old, new in rows:
        assert importlib.util.find_spec(old) is None, f"{old} still imports"
        assert new, old
        for name in new:
            assert importlib.util.find_spec(name) is not None, f"{name} is missing"


_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)[^)]*\)|^\s*\[[^\]]+\]:\s*(\S+)|"
                   r"(?:src|href)=[\"']([^\"']+)", re.M)


def _link_targets(text: str) -> list[str]:
    """The targets of markdown links, images, reference definitions and HTML src/href."""
    return [next(g for g in m.groups() if g) for m in _LINK.finditer(text)]


def test_pypi_description_has_no_relative_links_and_setup_reads_it():
    text = (ROOT / "PYPI.md").read_text()
    relative = [t for t in _link_targets(text) if not re.match(r"https?://", t)]
    assert not relative, relative
    # The checker finds every kind of link (it is not vacuous).
    sample = ("[a](docs/x.md) ![b](img.gif 'title') <img src='z.png'>\n"
              "[c]: ../y.md\n[d](https://e.org/p)")
    assert _link_targets(sample) == ["docs/x.md", "img.gif", "z.png", "../y.md",
                                     "https://e.org/p"]
    out = subprocess.run([sys.executable, "setup.py", "--long-description"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == text.strip()


def test_pypi_description_commands_are_the_readme_commands_and_its_snippet_runs():
    text = (ROOT / "PYPI.md").read_text()
    readme = (ROOT / "README.md").read_text()
    commands = [line.strip() for line in text.splitlines()
                if line.startswith("    bash scripts/setup_env.sh")]
    assert len(commands) == 2
    for command in commands:
        assert command in readme, f"PYPI.md's command is not README's: {command}"
    snippet = text.split("## From Python (base install)")[1].split("\n\n")[1]
    lines = [line[4:] for line in snippet.splitlines()]
    namespace: dict = {}
    exec(compile("\n".join(lines[:1]), "PYPI.md", "exec"), namespace)
    results = [eval(line.split("#")[0], namespace) for line in lines[1:]]
    # The comments' values: T = (0, 0.1*5, 0.1*10 + 0.2*5, 0.1*10 + 0.2*10 + 0.5*5);
    # the mean of the types; 0.5*20 + 0.5*3.
    assert [float(x) for x in results[0]] == pytest.approx([0.0, 0.5, 2.0, 5.5])
    assert float(results[1]) == pytest.approx(0.5)
    assert float(results[2]) == pytest.approx(11.5)


def test_the_wheel_carries_version_description_and_license(tmp_path):
    """`pip wheel` of a copy of the sources (a build writes build/ and *.egg-info into
    its source folder): the METADATA names 0.2.0, Apache-2.0, PYPI.md as the long
    description, and the wheel holds LICENSE and NOTICE."""
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("sed_meltingpot", "lua", "substrates"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    for name in ("setup.py", "pyproject.toml", "MANIFEST.in", "PYPI.md", "README.md",
                 "LICENSE", "NOTICE", "CHANGELOG.md", "CITATION.cff"):
        shutil.copy(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(tmp_path / "dist")],
                   check=True, capture_output=True, text=True)
    (wheel,) = (tmp_path / "dist").glob("sed_meltingpot-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        metadata = z.read(f"sed_meltingpot-{VERSION}.dist-info/METADATA").decode()
    assert f"sed_meltingpot-{VERSION}.dist-info/licenses/LICENSE" in names
    assert f"sed_meltingpot-{VERSION}.dist-info/licenses/NOTICE" in names
    headers, _, body = metadata.partition("\n\n")
    assert f"\nVersion: {VERSION}\n" in headers and "\nLicense: Apache-2.0\n" in headers
    assert body.strip() == (ROOT / "PYPI.md").read_text().strip()
