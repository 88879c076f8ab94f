"""The Docker image builds, and its entrypoint trains, evaluates and renders.

No Docker engine is needed: Debian's podman, buildah and debootstrap do the
work (they are apt-get installed when missing and this runs as root).

1. debootstrap makes a Debian bookworm root file system (Python 3.11,
   python3-venv, pip), cached as a tarball under /var/tmp, and `podman import`
   turns it into a local base image (nothing is pulled from a registry);
2. `podman build --isolation chroot --build-arg BASE_IMAGE=<that image>`
   builds the project's Dockerfile. The host's CA bundle, its effective pip
   configuration (`pip config list`, merged into one file) and the local
   directories and files that configuration names are mounted read-only into
   the build, so the image installs what this machine's own install would,
   from the same sources (behind a TLS-intercepting proxy, a build that does
   not see the host's CA bundle fails on certificates);
3. `buildah run --isolation chroot` runs the image's entrypoint for a tiny
   training run, an evaluation and a 20-frame render, with a host folder as
   /outputs (`podman run` needs cgroups that some machines lack);
4. every image and container made here is removed afterwards, pass or fail.

Environment:
  SED_DOCKER_TORCH_SPEC   --build-arg TORCH_SPEC for the build (default
                          torch==2.13.0, what scripts/setup_env.sh installs on
                          the host; "" keeps the Dockerfile's CPU-index default)
  SED_DEBIAN_MIRROR       Debian mirror for debootstrap (default: the host's
                          apt source for Debian, else http://deb.debian.org/debian)
  SED_DOCKER_NO_INSTALL=1 never apt-get install the tools; skip when missing

Measured on 2 cores: 6.5 to 9 minutes from nothing (debootstrap 1 to 3 min,
then cached; image build 4.5 to 6 min; train, evaluate and render under 1.5
min), about 7 minutes with the cached root file system. The image is ~4.8 GB,
mostly dm-meltingpot's TensorFlow and JAX dependencies.
"""

from __future__ import annotations

import configparser
import csv
import glob
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ("podman", "buildah", "debootstrap")
SUITE = "bookworm"  # Debian 12: Python 3.11, what python:3.11-slim is built on.
BASE_PACKAGES = ("python3", "python3-venv", "python3-pip", "ca-certificates")
# Bump to rebuild the cached root file system.
BASE_CACHE_VERSION = "1"
BASE_CACHE = Path("/var/tmp") / "sed-meltingpot-{}-{}.tar".format(
    SUITE, hashlib.sha256(
        f"{BASE_CACHE_VERSION} {' '.join(BASE_PACKAGES)}".encode()).hexdigest()[:12])
LABEL = "sed-meltingpot-test"
TAG = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
BASE_IMAGE = f"localhost/sed-meltingpot-test-base:{TAG}"
IMAGE = f"localhost/sed-meltingpot-test:{TAG}"
CONTAINER = f"sed-meltingpot-test-{TAG}"
CA_CERTS = "/etc/ssl/certs"
# pip options whose values name local files or folders to mount into the build.
PIP_PATH_OPTIONS = ("find-links", "index-url", "extra-index-url", "constraint", "requirement",
                    "cert", "client-cert")
# pip options that make no sense inside the image build.
PIP_DROPPED_OPTIONS = ("target", "prefix", "root", "user", "src", "cache-dir", "log")

TRAIN_FLAGS = ["--preset=fast", "--num_iterations=1", "--episode_length=100", "--tax_period=25",
               "--train_batch_size=104", "--rollout_fragment_length=104", "--minibatch_size=52",
               "--num_env_runners=0", "--output_dir=/outputs/run"]
RENDER_FRAMES = 20

TIMINGS: dict[str, float] = {}


def _log(message: str) -> None:
    print(f"[test_docker] {message}", file=sys.stderr, flush=True)


def _run(cmd: list[str], *, timeout: float, what: str, log: Path | None = None,
         check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """Runs `cmd`; on failure raises with the tail of its output."""
    _log(f"{what}: {shlex.join(cmd)}")
    start = time.monotonic()
    if log is not None:
        with open(log, "w") as f:
            proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, text=True,
                                  timeout=timeout, stdin=subprocess.DEVNULL, **kwargs)
        output = log.read_text(errors="replace")
    else:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, **kwargs)
        output = proc.stdout + proc.stderr
    TIMINGS[what] = TIMINGS.get(what, 0.0) + time.monotonic() - start
    _log(f"{what}: exit {proc.returncode} after {time.monotonic() - start:.0f}s")
    proc.output = output
    if check and proc.returncode != 0:
        raise AssertionError(f"{what} failed (exit {proc.returncode}): {shlex.join(cmd)}\n"
                             f"--- last output ---\n{output[-6000:]}")
    return proc


def _quiet(cmd: list[str]) -> None:
    """Best-effort clean-up command: never raises."""
    try:
        subprocess.run(cmd, capture_output=True, timeout=600, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as e:
        _log(f"clean-up {shlex.join(cmd)} failed: {e}")


# --- tools -----------------------------------------------------------------

def _which(tool: str) -> str | None:
    return shutil.which(tool) or next(
        (p for p in (f"/usr/sbin/{tool}", f"/sbin/{tool}") if os.access(p, os.X_OK)), None)


def _missing_tools() -> list[str]:
    return [t for t in TOOLS if _which(t) is None]


def _ensure_tools() -> None:
    """Installs podman, buildah and debootstrap with apt-get if needed; else skips."""
    if not sys.platform.startswith("linux"):
        pytest.skip("container test needs Linux (podman, buildah, debootstrap)")
    missing = _missing_tools()
    if missing and os.geteuid() == 0 and shutil.which("apt-get") and \
            os.environ.get("SED_DOCKER_NO_INSTALL") != "1":
        _log(f"installing {missing} with apt-get")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        try:
            for cmd in (["apt-get", "update"],
                        ["apt-get", "install", "-y", *TOOLS]):
                subprocess.run(cmd, capture_output=True, timeout=1200, env=env, check=True,
                               stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError) as e:
            detail = getattr(e, "stderr", b"") or b""
            pytest.skip(f"podman/buildah/debootstrap are not installed and apt-get could not "
                        f"install them: {e} {detail.decode(errors='replace')[-500:]}")
        missing = _missing_tools()
    if missing:
        pytest.skip(f"{', '.join(missing)} not available (install with `apt-get install "
                    f"podman buildah debootstrap` as root); the Docker image was not tested")
    if os.geteuid() != 0:
        pytest.skip("debootstrap and chroot-isolated builds need root; the Docker image was "
                    "not tested")
    info = subprocess.run(["podman", "info"], capture_output=True, text=True, timeout=120)
    if info.returncode != 0:
        pytest.skip(f"podman is installed but does not work here: {info.stderr[-500:]}")


# --- base image (debootstrap) ------------------------------------------------

def _debian_mirror() -> str:
    if os.environ.get("SED_DEBIAN_MIRROR"):
        return os.environ["SED_DEBIAN_MIRROR"]
    sources = glob.glob("/etc/apt/sources.list.d/*.sources") + \
        glob.glob("/etc/apt/sources.list.d/*.list") + ["/etc/apt/sources.list"]
    for path in sources:
        try:
            text = Path(path).read_text()
        except OSError:
            continue
        for url in re.findall(r"(?:URIs:|deb)\s+(https?://\S+)", text):
            if "debian" in url and "security" not in url and "debian-" not in url:
                return url
    return "http://deb.debian.org/debian"


def _unmount_below(path: Path) -> None:
    """Unmounts whatever a failed debootstrap left mounted inside `path`."""
    try:
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return
    for mount in sorted((m for m in mounts if m.startswith(str(path) + "/")), reverse=True):
        _quiet(["umount", "-l", mount])


def _base_tarball() -> Path:
    """A bookworm root file system as a tarball, made once and kept in /var/tmp."""
    if BASE_CACHE.is_file() and BASE_CACHE.stat().st_size > 0:
        _log(f"using cached base root file system {BASE_CACHE}")
        return BASE_CACHE
    work = Path(tempfile.mkdtemp(prefix="sed-meltingpot-debootstrap-", dir="/var/tmp"))
    rootfs = work / "rootfs"
    try:
        _run([_which("debootstrap"), "--variant=minbase",
              f"--include={','.join(BASE_PACKAGES)}", SUITE, str(rootfs), _debian_mirror()],
             timeout=1800, what="debootstrap", log=work / "debootstrap.log")
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for p in (rootfs / leftover).glob("*"):
                if p.is_file():
                    p.unlink()
        partial = work / "rootfs.tar"
        _run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."],
             timeout=600, what="tar rootfs")
        shutil.move(str(partial), str(BASE_CACHE) + f".{TAG}.partial")
        os.replace(str(BASE_CACHE) + f".{TAG}.partial", BASE_CACHE)  # atomic
    finally:
        _unmount_below(rootfs)
        shutil.rmtree(work, ignore_errors=True)
        for stale in glob.glob(str(BASE_CACHE) + f".{TAG}.partial"):
            os.unlink(stale)
    return BASE_CACHE


# --- host pip configuration ----------------------------------------------------

def _host_pip_config() -> dict[str, dict[str, str]]:
    """The host's effective pip settings ({section: {key: value}}), env vars included."""
    proc = subprocess.run([sys.executable, "-m", "pip", "config", "list"],
                          capture_output=True, text=True, timeout=120)
    files: dict[str, dict[str, str]] = {}
    env: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"^(:env:|[\w-]+)\.([\w-]+)='(.*)'$", line.strip())
        if not m:
            continue
        section, key, value = m.groups()
        if key in PIP_DROPPED_OPTIONS:
            continue
        if section == ":env:":
            env[key] = value
        else:
            files.setdefault(section, {})[key] = value
    for key, value in env.items():  # environment variables win over files
        files.setdefault("global", {})[key] = value
        for options in files.values():
            if options is not files["global"]:
                options.pop(key, None)
    return files


def _pip_mounts(config: dict[str, dict[str, str]]) -> list[str]:
    """Read-only mount sources for the local files and folders the config names."""
    paths: list[str] = []
    for options in config.values():
        for key in PIP_PATH_OPTIONS:
            for token in options.get(key, "").split():
                path = token[len("file://"):] if token.startswith("file://") else token
                if not path.startswith("/") or not os.path.exists(path):
                    continue
                path = os.path.normpath(path)
                # A local "simple" index links to files beside it (../../files/...).
                if os.path.isdir(path) and os.path.basename(path) == "simple":
                    path = os.path.dirname(path)
                paths.append(path)
    mounts: list[str] = []
    for path in sorted(set(paths), key=len):
        if path == CA_CERTS or path.startswith(CA_CERTS + "/") or any(
                path.startswith(m.rstrip("/") + "/") for m in mounts):
            continue
        mounts.append(path)
    return mounts


def _write_pip_conf(config: dict[str, dict[str, str]], path: Path) -> None:
    parser = configparser.ConfigParser(interpolation=None)
    for section, options in config.items():
        parser[section] = options
    with open(path, "w") as f:
        parser.write(f)


# --- fixtures ------------------------------------------------------------------

def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale(name: str) -> bool:
    """Whether `name` (made by this test: ...-test[-base]:PID-HEX or ...-test-PID-HEX) belongs
    to a run whose process is gone."""
    m = re.search(r"sed-meltingpot-test(?:-base)?[:-](\d+)-[0-9a-f]{8}", name)
    return bool(m) and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1)))


def _remove_stale() -> None:
    """Removes the images and containers of earlier runs of this test that were killed."""
    proc = subprocess.run(["buildah", "containers", "--format", "{{.ContainerName}}"],
                          capture_output=True, text=True, timeout=120)
    for name in proc.stdout.split():
        if _stale(name):
            _quiet(["buildah", "rm", name])
    proc = subprocess.run(["podman", "images", "--filter", f"label={LABEL}", "--format",
                           "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True,
                          timeout=120)
    for name in set(proc.stdout.split()):
        if _stale(name):
            _quiet(["podman", "rmi", "--force", name])


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """The project's image, built on a local bookworm base; removed afterwards."""
    _ensure_tools()
    work = tmp_path_factory.mktemp("docker")
    start = time.monotonic()
    try:
        _remove_stale()
        tarball = _base_tarball()
        _run(["podman", "import", "--change", f"LABEL {LABEL}=base", "--change",
              'CMD ["/bin/bash"]', str(tarball), BASE_IMAGE],
             timeout=900, what="podman import")

        config = _host_pip_config()
        pip_conf = work / "pip.conf"
        _write_pip_conf(config, pip_conf)
        volumes = [f"{CA_CERTS}:{CA_CERTS}:ro", f"{pip_conf}:/etc/pip.conf:ro"]
        volumes += [f"{p}:{p}:ro" for p in _pip_mounts(config)]
        _log("pip configuration used for the build:\n" + pip_conf.read_text())
        cmd = ["podman", "build", "--isolation", "chroot", "--layers=false", "--force-rm",
               "--pull=never", "--label", f"{LABEL}=image",
               "--build-arg", f"BASE_IMAGE={BASE_IMAGE}"]
        torch_spec = os.environ.get("SED_DOCKER_TORCH_SPEC", "torch==2.13.0")
        if torch_spec:
            cmd += ["--build-arg", f"TORCH_SPEC={torch_spec}"]
        for volume in volumes:
            cmd += ["-v", volume]
        cmd += ["-t", IMAGE, "-f", str(ROOT / "Dockerfile"), str(ROOT)]
        _run(cmd, timeout=3000, what="podman build", log=work / "build.log")
        yield IMAGE
    finally:
        _quiet(["podman", "rmi", "--force", IMAGE])
        _quiet(["podman", "rmi", "--force", BASE_IMAGE])
        # A failed build can leave its working container behind.
        proc = subprocess.run(["buildah", "containers", "--format",
                               "{{.ContainerName}} {{.ImageName}}"],
                              capture_output=True, text=True, timeout=120)
        for line in proc.stdout.splitlines():
            if BASE_IMAGE in line or IMAGE in line:
                _quiet(["buildah", "rm", line.split()[0]])
        TIMINGS["image fixture total"] = time.monotonic() - start
        _log("timings: " + ", ".join(f"{k} {v:.0f}s" for k, v in TIMINGS.items()))


@pytest.fixture(scope="module")
def container(image):
    """A buildah working container of the image; removed afterwards."""
    _run(["buildah", "from", "--pull-never", "--name", CONTAINER, image], timeout=600,
         what="buildah from")
    try:
        # buildah run puts an anonymous volume on each of the image's VOLUMEs,
        # hiding a `-v HOST:/outputs` bind mount; drop it from this container
        # (the image keeps it).
        _run(["buildah", "config", "--volume", "/outputs-", CONTAINER], timeout=120,
             what="buildah config")
        yield CONTAINER
    finally:
        _quiet(["buildah", "rm", CONTAINER])


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    path = tmp_path_factory.mktemp("outputs")
    path.chmod(0o777)  # the image runs as a non-root user
    return path


def _image_config(image: str) -> dict:
    proc = _run(["podman", "image", "inspect", "--format", "{{json .Config}}", image],
                timeout=120, what="podman image inspect")
    return json.loads(proc.stdout)


def _run_entrypoint(container: str, image: str, outputs: Path, args: list[str], what: str,
                    timeout: float = 1200, check: bool = True) -> subprocess.CompletedProcess:
    """Runs the image's ENTRYPOINT with `args`, as the image's user, /outputs mounted."""
    entrypoint = _image_config(image)["Entrypoint"]
    return _run(["buildah", "run", "--isolation", "chroot", "-v", f"{outputs}:/outputs",
                 container, "--", *entrypoint, *args], timeout=timeout, what=what, check=check)


@pytest.fixture(scope="module")
def trained(container, image, outputs):
    proc = _run_entrypoint(container, image, outputs, ["train", *TRAIN_FLAGS], "train")
    return outputs / "run", proc.output


# --- tests -----------------------------------------------------------------------

def test_image_is_lean_and_runs_as_a_user(image):
    config = _image_config(image)
    assert config.get("User") not in (None, "", "root", "0"), config
    assert "/outputs" in (config.get("Volumes") or {}), config
    assert config.get("WorkingDir"), config
    assert config.get("Entrypoint"), config
    _run(["buildah", "from", "--pull-never", "--name", CONTAINER + "-inspect", image],
         timeout=600, what="buildah from (inspect)")
    try:
        root = Path(_run(["buildah", "mount", CONTAINER + "-inspect"], timeout=120,
                         what="buildah mount").stdout.strip())
        assert not (root / "app" / "tests").exists(), "tests were copied into the image"
        assert not (root / "app" / ".git").exists()
        for cache in ("root/.cache/pip", "home/sed/.cache/pip"):
            assert not (root / cache).exists(), f"pip cache left in the image: /{cache}"
        assert (root / "app" / "docker" / "entrypoint.sh").exists()
        assert os.access(root / "app" / "docker" / "entrypoint.sh", os.X_OK)
    finally:
        _quiet(["buildah", "umount", CONTAINER + "-inspect"])
        _quiet(["buildah", "rm", CONTAINER + "-inspect"])


def test_entrypoint_rejects_unknown_commands(container, image, outputs):
    proc = _run_entrypoint(container, image, outputs, ["bogus"], "entrypoint bogus",
                           timeout=120, check=False)
    assert proc.returncode == 2, proc.output
    assert "usage" in proc.output and "train" in proc.output and "render" in proc.output
    proc = _run_entrypoint(container, image, outputs, [], "entrypoint (no command)",
                           timeout=120, check=False)
    assert proc.returncode == 2, proc.output


def test_train(trained):
    run, output = trained
    checkpoint = run / "checkpoints" / "iter_000001"
    assert (checkpoint / "rllib_checkpoint.json").is_file(), output[-3000:]
    assert any(checkpoint.rglob("*")), "empty checkpoint"
    records = [json.loads(line) for line in (run / "progress.jsonl").read_text().splitlines()
               if line.strip()]
    assert len(records) == 1, records
    summary = json.loads((run / "summary.json").read_text())
    assert summary["checkpoint"] == "/outputs/run/checkpoints/iter_000001", summary
    run_config = json.loads((run / "run_config.json").read_text())
    assert run_config["game"]["episode_length"] == 100


def test_evaluate(trained, container, image, outputs):
    run, _ = trained
    _run_entrypoint(container, image, outputs, [
        "evaluate", "--checkpoint=/outputs/run", "--num_episodes=1",
        "--principals=trained,none", "--output_dir=/outputs/eval"], "evaluate")
    results = json.loads((outputs / "eval" / "results.json").read_text())
    assert [p["name"] for p in results["principals"]] == ["trained", "none"], results
    with open(outputs / "eval" / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["principal"] for r in rows] == ["trained", "none"], rows
    assert all(r["episodes"] == "1" for r in rows), rows
    with open(outputs / "eval" / "episodes.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 2


def test_render(trained, container, image, outputs):
    run, _ = trained
    video = outputs / "episode.mp4"
    _run_entrypoint(container, image, outputs, [
        "render", "--checkpoint=/outputs/run", f"--max_steps={RENDER_FRAMES}", "--fps=10",
        "--scale=1", "--output=/outputs/episode.mp4"], "render")
    data = video.read_bytes()
    assert len(data) > 1000 and data[4:8] == b"ftyp", "not an MP4 file"
    # Decode it with the image's own imageio/ffmpeg (the host may have neither).
    probe = ("import imageio.v2 as iio, json; r = iio.get_reader('/outputs/episode.mp4', "
             "format='FFMPEG'); shapes = [f.shape for f in r]; "
             "print(json.dumps({'frames': len(shapes), 'shapes': sorted(set(map(str, shapes)))}))")
    proc = _run(["buildah", "run", "--isolation", "chroot", "-v", f"{outputs}:/outputs",
                 container, "--", "python", "-c", probe], timeout=300, what="decode video")
    decoded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert decoded["frames"] == RENDER_FRAMES, decoded
    assert len(decoded["shapes"]) == 1, decoded
