#!/usr/bin/env bash
# Sets up a virtual environment with sed-meltingpot and everything it needs.
#
# Why a script and not a bare `pip install .`: dm-meltingpot's build step
# downloads bot assets (saved models) from the internet, which fails on an
# offline machine. The substrates in this project need none of them, so we
# build dm-meltingpot from its PyPI sdist with an empty, locally made assets
# archive in place of the download. Every other step runs with `set -e`, so
# any other install failure stops the script with pip's own error.
#
# Usage: bash scripts/setup_env.sh [EXTRAS]   (EXTRAS defaults to "dev"; "" adds none)
# The project is always installed with its "lua" and "rllib" extras (what the torch
# and dm-meltingpot steps below are for); EXTRAS adds to them: "dev" (the default) is
# every extra (jaxmarl too) plus the test tools, "" adds nothing (the Docker image).
# A light install without torch, Ray or Melting Pot is `pip install .` (README,
# "Light install").
# Environment:
#   VENV          where to create the environment (default: .venv)
#   PYTHON        interpreter for the venv (default: python3, needs >= 3.11)
#   TORCH_SPEC    torch requirement installed first (default: torch==2.13.0);
#                 e.g. pass --index-url for the CPU wheel index on real builds
#   NO_VENV=1     install into the current interpreter instead (Docker)
#   EDITABLE=0    install a copy of this project (pip install .) instead of an
#                 editable install (default 1); the copy works from any folder,
#                 the repository root included
set -euo pipefail

MELTINGPOT_VERSION="2.4.1"
MELTINGPOT_ASSETS_VERSION="2.3.0"   # ASSETS_VERSION in dm-meltingpot's setup.py
EXTRAS="${1-dev}"
EXTRAS="lua,rllib${EXTRAS:+,$EXTRAS}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"

if [[ "${NO_VENV:-0}" == "1" ]]; then
  PY="${PYTHON:-python3}"
else
  if [[ ! -x "$VENV/bin/python" ]]; then
    echo "[setup] creating virtual environment $VENV"
    "${PYTHON:-python3}" -m venv "$VENV"
  fi
  PY="$VENV/bin/python"
fi
"$PY" - <<'PYCHECK'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"[setup] Python >= 3.11 is required, found {sys.version.split()[0]}")
PYCHECK

PIP=("$PY" -m pip --disable-pip-version-check)
"${PIP[@]}" install --upgrade "pip>=23.1" "setuptools>=68" wheel

echo "[setup] installing $TORCH_SPEC"
# shellcheck disable=SC2086  # TORCH_SPEC may hold pip options on purpose.
"${PIP[@]}" install $TORCH_SPEC

if "$PY" -c "import importlib.metadata as m, sys; sys.exit(m.version('dm-meltingpot') != '$MELTINGPOT_VERSION')" 2>/dev/null; then
  echo "[setup] dm-meltingpot $MELTINGPOT_VERSION already installed"
else
  WORK="$(mktemp -d)"
  trap 'rm -rf "$WORK"' EXIT
  echo "[setup] fetching the dm-meltingpot $MELTINGPOT_VERSION sdist"
  "${PIP[@]}" download --no-deps --no-binary=:all: \
    "dm-meltingpot==$MELTINGPOT_VERSION" -d "$WORK"
  tar -xzf "$WORK/dm_meltingpot-$MELTINGPOT_VERSION.tar.gz" -C "$WORK"
  SRC="$WORK/dm-meltingpot-$MELTINGPOT_VERSION"
  [[ -f "$SRC/setup.py" ]] || { echo "[setup] unexpected sdist layout in $WORK" >&2; exit 1; }
  # An empty assets archive where the build looks for a cached download
  # (BuildPy.download_and_extract_assets: <sdist>/assets/<archive name>).
  mkdir -p "$WORK/empty/assets" "$SRC/assets"
  tar -czf "$SRC/assets/meltingpot-assets-$MELTINGPOT_ASSETS_VERSION.tar.gz" \
    -C "$WORK/empty" assets
  echo "[setup] building dm-meltingpot without its bot assets (not needed here)"
  "${PIP[@]}" install "$SRC"
fi

if [[ "${EDITABLE:-1}" == "0" ]]; then
  echo "[setup] installing sed-meltingpot[$EXTRAS] (a copy, not editable)"
  "${PIP[@]}" install "$ROOT${EXTRAS:+[$EXTRAS]}"
else
  echo "[setup] installing sed-meltingpot[$EXTRAS] (editable)"
  "${PIP[@]}" install -e "$ROOT${EXTRAS:+[$EXTRAS]}"
fi
echo "[setup] done: $PY"
