# sed-meltingpot: train, evaluate and render in a container.
#
#   docker build -t sed-meltingpot .
#   docker run --rm --shm-size=2g -v "$PWD/outputs:/outputs" sed-meltingpot \
#       train --preset=fast --num_iterations=5 --output_dir=/outputs/run
#
# The entrypoint (docker/entrypoint.sh) dispatches `train`, `evaluate` and
# `render` to scripts/train.py, scripts/evaluate.py and scripts/render_video.py.
#
# Build arguments:
#   BASE_IMAGE  any image with Python >= 3.11 and its venv module
#               (default python:3.11-slim; Debian bookworm + python3-venv works too)
#   TORCH_SPEC  the torch requirement, with pip options, that scripts/setup_env.sh
#               installs before anything else. Default: the CPU wheel. For a
#               CUDA build, e.g.
#                 --build-arg TORCH_SPEC="--index-url https://download.pytorch.org/whl/cu128 torch==2.13.0"
#               (or plain "torch==2.13.0", PyPI's Linux wheel, which bundles CUDA).
#   PYTHON      the interpreter that creates the virtual environment (default python3)
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ARG TORCH_SPEC="--index-url https://download.pytorch.org/whl/cpu torch==2.13.0"
ARG PYTHON=python3

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /app
COPY . /app

# The project's one install step (offline-safe dm-meltingpot build), with the
# lua and rllib extras and without dev (EXTRAS ""), into /opt/venv.
# dm-meltingpot pulls in opencv-python, whose
# cv2 needs X11/OpenGL system libraries (libxcb, libGL, glib) that slim images
# lack and that RLlib imports at start-up; the headless build of the same
# release has the same cv2 without them. Then drop what pip left behind.
RUN VENV=/opt/venv PYTHON="$PYTHON" TORCH_SPEC="$TORCH_SPEC" bash scripts/setup_env.sh "" \
    && opencv="$(python -c 'import importlib.metadata as m; print(m.version("opencv-python"))')" \
    && pip uninstall --yes opencv-python \
    && pip install "opencv-python-headless==$opencv" \
    && python -c "import cv2, meltingpot, ray.rllib, sed_meltingpot.game.substrate" \
    && rm -rf /root/.cache /tmp/* /app/build \
    && chmod 0755 /app/docker/entrypoint.sh \
    && useradd --create-home --uid 1000 --user-group --shell /bin/bash sed \
    && mkdir -p /outputs \
    && chown sed:sed /outputs \
    && chmod 1777 /home/sed

# HOME is writable by any user id, so `docker run --user "$(id -u):$(id -g)"`
# (to own what it writes to a bind-mounted /outputs) works too: Ray and Keras
# keep small files under it.
ENV HOME=/home/sed
USER sed
WORKDIR /outputs
VOLUME /outputs

ENTRYPOINT ["/app/docker/entrypoint.sh"]
