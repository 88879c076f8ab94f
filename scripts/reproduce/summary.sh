#!/usr/bin/env bash
# The summary table of docs/results/index.md and docs/results/forest.png, from every
# committed docs/results/*/results.csv (seconds, any machine). --check compares only.
set -euo pipefail
cd "$(dirname "$0")/../.."

.venv/bin/python scripts/results_summary.py
.venv/bin/python scripts/results_summary.py --check
