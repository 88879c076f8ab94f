"""One writer per run folder (issue 31): `runs/run_lock.py` and the scripts that take it.

Two `train.py` runs into one --output_dir used to both exit 0 with their progress.jsonl
lines interleaved. The lock-level tests use a second real process (a lock is per process);
one test starts two real jax runs 0.5 s apart.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from sed_meltingpot.runs import run_lock, runlog

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable

# Holds the lock of argv[1] until its stdin closes.
HOLDER = ("import sys\n"
          "from sed_meltingpot.runs.run_lock import RunLock\n"
          "with RunLock(sys.argv[1]):\n"
          "    print('held', flush=True)\n"
          "    sys.stdin.read()\n")


def hold_in_another_process(folder: str) -> subprocess.Popen:
    proc = subprocess.Popen([PYTHON, "-c", HOLDER, folder], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout.readline().strip() == "held"
    return proc


def let_go(proc: subprocess.Popen) -> None:
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0


def test_a_second_writer_is_refused_in_one_line_naming_the_holder(tmp_path):
    folder = str(tmp_path / "run")
    other = hold_in_another_process(folder)
    try:
        with pytest.raises(run_lock.FolderInUseError) as refused:
            run_lock.RunLock(folder).acquire()
        message = str(refused.value)
        assert "\n" not in message
        assert message.startswith(f"--output_dir={folder} is in use by pid {other.pid} on host "
                                  f"{socket.gethostname()} since ")
        assert message.endswith("(a second run would corrupt it); wait for it or choose "
                                "another folder")
        info = run_lock.holder(folder)  # what a dry run reads, writing nothing
        assert info["pid"] == other.pid
        assert "a run started now would be refused" in run_lock.in_use_note([folder])
    finally:
        let_go(other)
    # Released at the holder's exit: the file is gone and the folder free.
    assert not os.path.exists(os.path.join(folder, run_lock.LOCK_FILE))
    assert run_lock.holder(folder) is None and run_lock.in_use_note([folder]) is None
    with run_lock.RunLock(folder, warn=pytest.fail):
        pass


def test_a_lock_left_by_a_killed_process_is_taken_over_and_said(tmp_path):
    folder = str(tmp_path / "run")
    other = hold_in_another_process(folder)
    other.send_signal(signal.SIGKILL)
    other.wait(timeout=30)
    left = json.loads((tmp_path / "run" / run_lock.LOCK_FILE).read_text())
    assert left["pid"] == other.pid  # the dead process's file is still there
    assert run_lock.holder(folder) is None  # ... but nobody holds the lock
    said: list[str] = []
    with run_lock.RunLock(folder, warn=said.append):
        mine = json.loads((tmp_path / "run" / run_lock.LOCK_FILE).read_text())
        assert mine["pid"] == os.getpid() and mine["host"] == socket.gethostname()
    assert len(said) == 1
    assert said[0].startswith(f"took over the lock of --output_dir={folder} left by pid "
                              f"{other.pid} on host ")
    assert said[0].endswith("which is no longer running")


def test_the_lock_is_released_after_an_exception(tmp_path):
    folder = str(tmp_path / "run")
    with pytest.raises(RuntimeError, match="boom"), run_lock.RunLock(folder):
        assert run_lock.holder(folder) is None  # its own lock does not count
        raise RuntimeError("boom")
    assert not os.path.exists(os.path.join(folder, run_lock.LOCK_FILE))
    let_go(hold_in_another_process(folder))  # another process takes it at once


def test_locks_are_reentrant_in_a_process_and_taken_all_or_none(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    with run_lock.RunLock(a), run_lock.RunLock(a):  # a script around its trainer
        pass
    assert not os.path.exists(os.path.join(a, run_lock.LOCK_FILE))
    other = hold_in_another_process(b)
    try:
        with pytest.raises(run_lock.FolderInUseError, match=f"--output_dir={b} is in use"), \
                run_lock.hold([a, b]):
            pass
        assert not os.path.exists(os.path.join(a, run_lock.LOCK_FILE))  # a let go again
    finally:
        let_go(other)


def test_a_refused_or_failed_run_leaves_no_folder_it_created(tmp_path):
    folder = tmp_path / "new" / "run"
    with run_lock.RunLock(str(folder)):
        assert folder.is_dir()
    assert not (tmp_path / "new").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="--output_dir=.*file.* is not writable"):
        run_lock.RunLock(str(tmp_path / "file")).acquire()


# ----------------------------------------------------------------- the scripts
TRAIN = [PYTHON, os.path.join(ROOT, "scripts", "train.py"), "--engine=jax",
         "--preset=quickstart", "--num_iterations=3", "--num_envs=2"]


def test_two_train_runs_into_one_folder_the_second_is_refused(tmp_path):
    """Issue 31's probe: the second run, 0.5 s after the first, exits non-zero with the
    one-line refusal; the first's log is 1..3 once each."""
    out = tmp_path / "run"
    first = subprocess.Popen([*TRAIN, f"--output_dir={out}"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    try:
        time.sleep(0.5)
        second = subprocess.run([*TRAIN, f"--output_dir={out}"], capture_output=True,
                                text=True, cwd=ROOT, timeout=600)
        output = first.communicate(timeout=600)[0]
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, output[-3000:]
    assert second.returncode != 0
    last = second.stderr.strip().splitlines()[-1]
    assert last.startswith(f"--output_dir={out} is in use by pid {first.pid} on host "), \
        second.stderr[-2000:]
    assert "Traceback" not in second.stderr
    records = runlog.read_progress(str(out))
    assert [r["iteration"] for r in records] == [1, 2, 3]
    assert not (out / run_lock.LOCK_FILE).exists()  # released at the end


def test_scripts_refuse_a_folder_in_use_and_a_dry_run_says_so(tmp_path):
    out = str(tmp_path / "busy")
    other = hold_in_another_process(out)
    try:
        dry = subprocess.run([*TRAIN, f"--output_dir={out}", "--dry_run"],
                             capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert dry.returncode == 0, dry.stderr[-2000:]
        assert f"note: --output_dir={out} is in use by pid {other.pid}" in dry.stdout
        gpu = subprocess.run([PYTHON, os.path.join(ROOT, "scripts", "gpu_train.py"), "--quick",
                              f"--output_dir={out}"], capture_output=True, text=True,
                             cwd=ROOT, timeout=300)
        assert gpu.returncode != 0 and "Traceback" not in gpu.stderr
        assert f"--output_dir={out} is in use by pid {other.pid}" in gpu.stderr
        experiment = subprocess.run(
            [PYTHON, os.path.join(ROOT, "scripts", "experiment.py"), "--grid=smoke",
             "--engine=jax", f"--output_dir={out}"], capture_output=True, text=True,
            cwd=ROOT, timeout=300)
        assert experiment.returncode != 0 and "Traceback" not in experiment.stderr
        assert f"--output_dir={out} is in use by pid {other.pid}" in experiment.stderr
        assert os.listdir(out) == [run_lock.LOCK_FILE]  # nothing else written
    finally:
        let_go(other)


def test_gpu_train_refuses_a_principal_listed_twice(capsys):
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    try:
        import gpu_train
    finally:
        sys.path.remove(os.path.join(ROOT, "scripts"))
    with pytest.raises(SystemExit):
        gpu_train.parse_args(["--output_dir=x", "--principals=learned,none,learned"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--principals=learned,none,learned: learned listed twice" in err
