#!/usr/bin/env bash
# Container entrypoint: `docker run IMAGE COMMAND [FLAGS...]`.
#   train     -> python scripts/train.py FLAGS...
#   evaluate  -> python scripts/evaluate.py FLAGS...
#   render    -> python scripts/render_video.py FLAGS...
# Each script takes absl flags; `COMMAND --helpfull` lists them.
set -euo pipefail

ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
PY="${SED_PYTHON:-python}"

usage() {
  cat <<USAGE
usage: docker run [OPTIONS] IMAGE COMMAND [FLAGS...]

commands:
  train      train the players and the principal   (scripts/train.py)
  evaluate   evaluate a checkpoint or random play  (scripts/evaluate.py)
  render     render an episode to a video          (scripts/render_video.py)
  help       show this message

Flags go to the script; see COMMAND --helpfull. Write outputs under the
/outputs volume, e.g.:
  docker run --rm -v "\$PWD/outputs:/outputs" IMAGE train --preset=fast \\
      --num_iterations=5 --output_dir=/outputs/run
USAGE
}

command="${1:-}"
case "$command" in
  train) script="train.py" ;;
  evaluate) script="evaluate.py" ;;
  render) script="render_video.py" ;;
  help | -h | --help)
    usage
    exit 0
    ;;
  *)
    if [[ -n "$command" ]]; then
      echo "unknown command: $command" >&2
    fi
    usage >&2
    exit 2
    ;;
esac
shift
exec "$PY" "$ROOT/scripts/$script" "$@"
