"""Install script for sed-meltingpot.

Use `bash scripts/setup_env.sh` for a fresh machine: it installs
dm-meltingpot without the bot assets its own build would download (see that
script), then this package with the lua and rllib extras (plus dev by default).
`pip install .` alone is the light install (README "Light install"). The Lua
level (`lua/`) and the substrate configs (`substrates/`) ship inside the
distribution as the packages `sed_meltingpot.lua` and `sed_meltingpot.substrates`.
"""

import setuptools

BASE = [
    "numpy>=1.26,<3",
    "absl-py>=2.0,<3",
    # Statistics (t-intervals, Welch's t-test) and plots.
    "scipy>=1.10,<2",
    "matplotlib>=3.7,<4",
    # The JAX twin and its trainer (--engine=jax). Ranges, not pins: the same code
    # runs on jax 0.10 (CPU here) and jax 0.11 with CUDA (GPU machines).
    "jax>=0.4.35",
    "flax>=0.10,<1",
    "optax>=0.2.4,<1",
]
EXTRAS = {
    # The Lua substrate and the game on it (SEDGame, the PettingZoo env, videos).
    # Pinned: the substrate is built against these exact releases. scripts/setup_env.sh
    # builds dm-meltingpot without the bot assets its own build would download.
    "lua": [
        "dmlab2d==1.0.2",
        "dm-meltingpot==2.4.1",
        "dm-env>=1.6,<2",
        "ml-collections>=0.1.1",
        "gymnasium>=1.0,<2",
        "pettingzoo>=1.24,<2",
        # Videos (the ffmpeg binary ships inside imageio-ffmpeg's wheel).
        "imageio>=2.30,<3",
        "imageio-ffmpeg>=0.5,<1",
    ],
    # RLlib training (--engine=rllib) and the RLlib env, which evaluation and video
    # rendering on the Lua substrate play through (with the lua extra).
    "rllib": [
        # RLlib's API changes between releases: built against exactly this one.
        "ray[rllib]==2.60.0",
        "torch>=2.4,<2.15",
        "gymnasium>=1.0,<2",
        "tensorboardX>=2.6,<3",
        "dm-tree>=0.1.8",
    ],
    # The JaxMARL MultiAgentEnv of the game (sed_meltingpot/twin/jaxmarl_env.py).
    # Tested with jaxmarl 0.2.0 on jax 0.10.2; it asks for jax>=0.4.25 only, so it
    # leaves the installed jax alone (no --no-deps needed).
    # six: gymnax (a jaxmarl dependency, imported by jaxmarl.wrappers) imports it
    # without declaring it (found by tests/test_light_install.py).
    "jaxmarl": ["jaxmarl>=0.2.0,<0.3", "six"],
}
ALL = sorted({req for reqs in EXTRAS.values() for req in reqs})
DEV = ["pytest>=8", "hypothesis>=6.100", "ruff>=0.6,<0.18"]
# The documentation site (mkdocs.yml; tests/test_docs.py builds it in the default test
# run). Pinned: a docs build breaks on their releases (theme and handler options, griffe's
# reading of the docstrings). Not a runtime extra, so not in `all`; `dev` has it, so
# scripts/setup_env.sh and CI install it.
DOCS = [
    "mkdocs==1.6.1",
    "mkdocs-material==9.8.1",
    "mkdocstrings==1.0.8",
    "mkdocstrings-python==2.0.11",
]

setuptools.setup(
    name="sed-meltingpot",
    version="0.2.0",
    description=(
        "Social Environment Design on Melting Pot: an AI principal sets a "
        "bracketed tax for learning agents who vote on its objective."
    ),
    # PYPI.md, not README.md: a package index shows this text away from the repository,
    # where README's relative links and images would break (PYPI.md has none;
    # tests/test_release.py checks it). MANIFEST.in puts it in the sdist.
    long_description=open("PYPI.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    license_files=["LICENSE", "NOTICE"],
    classifiers=[
        "Development Status :: 3 - Alpha",
        "Intended Audience :: Science/Research",
        "Operating System :: POSIX :: Linux",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.11",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
    python_requires=">=3.11",
    packages=[
        "sed_meltingpot",
        "sed_meltingpot.analysis",
        "sed_meltingpot.core",
        "sed_meltingpot.design",
        "sed_meltingpot.envs",
        "sed_meltingpot.evaluation",
        "sed_meltingpot.experiment",
        "sed_meltingpot.game",
        "sed_meltingpot.perf",
        "sed_meltingpot.runs",
        "sed_meltingpot.training",
        "sed_meltingpot.training.jax",
        "sed_meltingpot.training.rllib",
        "sed_meltingpot.twin",
        "sed_meltingpot.lua",
        "sed_meltingpot.substrates",
    ],
    package_dir={
        "sed_meltingpot": "sed_meltingpot",
        "sed_meltingpot.lua": "lua",
        "sed_meltingpot.substrates": "substrates",
    },
    package_data={
        "sed_meltingpot.lua": ["*.lua", "*/*.lua", "*/*/*.lua"],
        # The JAX twin's sprites (scripts/make_twin_assets.py writes them).
        "sed_meltingpot.twin": ["assets/*.npz"],
    },
    include_package_data=True,
    # The base install: the SED layer, the JAX twin and its trainer, and the
    # experiment with the jax engine (README "Light install"). Every other part is an
    # extra below; importing it without the extra raises one line naming the extra
    # (sed_meltingpot/core/optional.py, whose EXTRAS has the same keys).
    install_requires=BASE,
    extras_require={**EXTRAS, "docs": DOCS, "all": ALL, "dev": ALL + DOCS + DEV},
)
