"""One writer per output folder: an exclusive lock file, `<folder>/.lock`.

Two runs writing one folder corrupt each other (interleaved progress.jsonl lines, the
same checkpoints written twice, one run's run_config.json), and both would exit 0. So
every writer of a run or output folder (both trainers, scripts/gpu_train.py,
scripts/experiment.py, evaluate.py, lever_analysis.py) takes this lock before it writes
anything there, and a second writer is refused in one line naming the holder.

The lock is `fcntl.flock` on `<folder>/.lock`, kept open for the run's life: the kernel
releases it when the process ends in any way (an exception, SIGTERM, SIGKILL), so a
dead holder can never block a folder. The file holds JSON {pid, host, started} for
the refusal message; a release deletes it, so a file left behind names a process that
died holding the lock, and the next writer takes it over and says so in one line.
Where the file system has no flock (some network mounts), the file's pid decides:
alive on this host means taken.

Nothing here imports the rest of the package.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import errno
import json
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

try:
    import fcntl
except ImportError:  # not POSIX: the pid in the file decides
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"

# Locks this process holds: folder (real path) -> [file descriptor, count], so that a caller
# already holding a folder (a script around a trainer) does not refuse itself.
_HELD: dict[str, list[Any]] = {}


class FolderInUseError(ValueError):
    """Another live process holds the folder's lock (one line, naming it)."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    except OSError:
        return False
    return True


def _read_holder(fd: int) -> dict[str, Any] | None:
    """The JSON a holder wrote, or None (empty, or not written yet)."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 4096).decode("utf-8", errors="replace")
        holder = json.loads(text) if text.strip() else None
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def describe(holder: dict[str, Any] | None) -> str:
    """'pid N on host H since T' of a lock file's JSON."""
    if not holder:
        return "another process (its lock file is still being written)"
    return (f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')} "
            f"since {holder.get('started', '?')}")


def refusal(flag: str, folder: str, holder: dict[str, Any] | None) -> str:
    return (f"--{flag}={folder} is in use by {describe(holder)} (a second run would "
            "corrupt it); wait for it or choose another folder")


class RunLock:
    """The exclusive lock of `folder` (created if missing, with the lock file the only
    thing written), as a context manager; `acquire` raises FolderInUseError (a
    ValueError, one line naming `--<flag>`, the holder's pid, host and start) when a
    live process holds it. `warn` says, in one line, when a lock left by a dead process
    is taken over. Re-entrant within one process."""

    def __init__(self, folder: str, *, flag: str = "output_dir",
                 warn: Callable[[str], None] | None = print) -> None:
        self.folder = folder
        self.flag = flag
        self.path = os.path.join(folder, LOCK_FILE)
        self._warn = warn or (lambda message: None)
        self._fd: int | None = None
        self._key = ""
        self._created: list[str] = []

    # ------------------------------------------------------------------ acquire
    def acquire(self) -> RunLock:
        # The folders this lock creates, removed again at release if still empty (a
        # run refused by its checks leaves nothing behind).
        self._created = []
        path = os.path.abspath(self.folder)
        while not os.path.exists(path) and os.path.dirname(path) != path:
            self._created.append(path)
            path = os.path.dirname(path)
        try:
            os.makedirs(self.folder, exist_ok=True)
        except OSError as e:
            raise ValueError(f"--{self.flag}={self.folder} is not writable: {e.strerror} "
                             f"({e.filename or self.folder})") from e
        self._key = os.path.realpath(self.folder)
        held = _HELD.get(self._key)
        if held is not None:
            held[1] += 1
            self._fd = held[0]
            return self
        for _ in range(20):  # the file can be replaced between open and lock: retry
            fd = self._open()
            if self._lock(fd):
                break
        else:
            raise FolderInUseError(refusal(self.flag, self.folder, None))
        previous = _read_holder(fd)
        if previous and previous.get("pid") != os.getpid():
            self._warn(f"took over the lock of --{self.flag}={self.folder} left by "
                       f"{describe(previous)}, which is no longer running")
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": datetime.datetime.now().astimezone().isoformat(
                      timespec="seconds")}
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, (json.dumps(record) + "\n").encode())
        os.fsync(fd)
        self._fd = fd
        _HELD[self._key] = [fd, 1]
        return self

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise ValueError(f"--{self.flag}={self.folder} is not writable: {e.strerror} "
                             f"({self.path})") from e

    def _lock(self, fd: int) -> bool:
        """True once `fd` holds the lock of the file now at self.path; False if that
        file was replaced meanwhile (retry). Raises FolderInUseError when held."""
        try:
            if fcntl is None:
                raise OSError(errno.ENOLCK, "no fcntl")
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = None
            for _ in range(10):  # the holder may be writing its JSON right now
                holder = _read_holder(fd)
                if holder:
                    break
                time.sleep(0.05)
            os.close(fd)
            raise FolderInUseError(refusal(self.flag, self.folder, holder)) from None
        except OSError:  # no flock on this file system: the recorded pid decides
            holder = _read_holder(fd)
            if (holder and holder.get("host") == socket.gethostname()
                    and isinstance(holder.get("pid"), int) and holder["pid"] != os.getpid()
                    and _pid_alive(holder["pid"])):
                os.close(fd)
                raise FolderInUseError(refusal(self.flag, self.folder, holder)) from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(self.path))
        except FileNotFoundError:
            same = False
        if not same:  # released and deleted by its holder between our open and lock
            os.close(fd)
        return same

    # ------------------------------------------------------------------ release
    def release(self) -> None:
        """Deletes the lock file, then lets go of the lock (idempotent)."""
        if self._fd is None:
            return
        held = _HELD.get(self._key)
        fd, self._fd = self._fd, None
        if held is not None:
            held[1] -= 1
            if held[1] > 0:
                return
            del _HELD[self._key]
        with contextlib.suppress(OSError):
            if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                os.remove(self.path)
        os.close(fd)
        for folder in self._created:  # innermost first; stops at one not empty
            try:
                os.rmdir(folder)
            except OSError:
                break

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


@contextlib.contextmanager
def hold(folders: Sequence[str], *, flag: str = "output_dir",
         warn: Callable[[str], None] | None = print) -> Iterator[list[RunLock]]:
    """The locks of several folders (a run's seed folders), all or none: a refusal
    releases those already taken."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(RunLock(folder, flag=flag, warn=warn))
               for folder in folders]


def hold_until_exit(folder: str, *, flag: str = "output_dir",
                    warn: Callable[[str], None] | None = print) -> RunLock:
    """Takes `folder`'s lock for the rest of this process (released at exit; the
    kernel releases it if the process is killed): for scripts whose process is the
    work, taken after their dry run and before they write."""
    lock = RunLock(folder, flag=flag, warn=warn).acquire()
    atexit.register(lock.release)
    return lock


def holder(folder: str) -> dict[str, Any] | None:
    """Who holds `folder`'s lock ({pid, host, started}), or None if no live process
    does. Writes nothing (for dry runs): a shared lock is tried and let go at once."""
    path = os.path.join(folder, LOCK_FILE)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        info = _read_holder(fd)
        if info and info.get("pid") == os.getpid():
            return None
        if fcntl is None:
            raise OSError(errno.ENOLCK, "no fcntl")
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return info or {}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    except OSError:
        alive = (info and info.get("host") == socket.gethostname()
                 and isinstance(info.get("pid"), int) and _pid_alive(info["pid"]))
        return info if alive else None
    finally:
        os.close(fd)


def in_use_note(folders: Sequence[str], *, flag: str = "output_dir") -> str | None:
    """A dry run's line when one of `folders` is locked now (None if all are free)."""
    for folder in folders:
        info = holder(folder)
        if info is not None:
            return ("note: " + refusal(flag, folder, info or None)
                    + "; a run started now would be refused")
    return None


def report_in_use(folders: Sequence[str], *, flag: str = "output_dir",
                  print_fn: Callable[[str], None] = print) -> None:
    """Prints `in_use_note` if there is one: what a dry run, which takes no lock,
    says about a folder a run holds now."""
    note = in_use_note(folders, flag=flag)
    if note:
        print_fn(note)
