"""A job's output folder: writable, locked against a second job, clean of stale temp files.

Two jobs writing into one folder would leave a mix of both runs' files, so a job holds an
advisory lock on its folder while it runs: ``fcntl.flock`` on ``FOLDER/.diffrend.lock``
(released by the kernel when the process dies, even by SIGKILL), or, where there is no
``fcntl``, a lock file created exclusively that holds the owner's pid (taken over when that
process no longer exists). The lock file is removed when the job ends.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from ..io.atomic import remove_stale_temps
from ..io.outputs import check_writable

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

LOCK_NAME = ".diffrend.lock"
CHECKPOINT_NAME = "checkpoint.pt"


class FolderLocked(ValueError):
    """Another job holds the output folder's lock."""


def _locked_message(folder: Path, pid: int | None) -> str:
    who = f"pid {pid}" if pid is not None else "pid unknown"
    return (f"{folder} is in use by another diffrend run ({who}); wait for it to end, "
            "use another --output, or pass --force to write there anyway")


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (on this machine)."""
    if sys.platform == "win32":  # os.kill would terminate it there
        import ctypes

        kernel32 = ctypes.windll.kernel32
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return kernel32.GetLastError() == 5  # access denied: it exists
        code = ctypes.c_ulong()
        try:
            kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        finally:
            kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _acquire_pid_file(lock: Path) -> int | None:
    """Take the lock by creating ``lock`` exclusively with this pid in it.

    Returns:
        None when taken; else the pid of the live process that holds it. A lock file whose
        process is gone (killed) or that holds no pid is taken over.
    """
    for _ in range(10):
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            pid = _read_pid(lock)
            if pid is not None and _pid_alive(pid):
                return pid
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
            continue
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()}\n")
        return None
    raise FolderLocked(_locked_message(lock.parent, _read_pid(lock)))


@contextlib.contextmanager
def _flock(lock: Path) -> Iterator[int | None]:
    """Hold ``flock`` on ``lock``; yields None when held, else the holder's pid."""
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            yield _read_pid(lock)
            return
        except OSError:  # a file system without flock (some network mounts): run unlocked
            os.close(fd)
            yield None
            return
        try:  # the file may have been removed by the previous holder as it ended: retry
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield None
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()  # while still locked: nobody else holds this file
        os.close(fd)


@contextlib.contextmanager
def lock_folder(folder: str | os.PathLike, force: bool = False) -> Iterator[bool]:
    """Hold the advisory lock of a job's output folder (created if needed) for the block.

    Args:
        folder: the output folder.
        force: when another job holds the lock, run anyway (without the lock).

    Yields:
        True when this job holds the lock, False when it runs unlocked (``force``).

    Raises:
        FolderLocked: another live job holds the lock (its pid and ``--force`` are named).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / LOCK_NAME
    if fcntl is not None:
        with _flock(lock) as holder:
            if holder is not None:
                if not force:
                    raise FolderLocked(_locked_message(folder, holder))
                yield False
            else:
                yield True
        return
    holder = _acquire_pid_file(lock)
    if holder is not None:
        if not force:
            raise FolderLocked(_locked_message(folder, holder))
        yield False
        return
    try:
        yield True
    finally:
        if _read_pid(lock) == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()


@contextlib.contextmanager
def job_folder(
    folder: str | os.PathLike,
    force: bool = False,
    resume: bool = False,
    notice: Callable[[str], None] = print,
) -> Iterator[Path]:
    """The output folder of a job, for the duration of the block: checked writable, locked
    (see :func:`lock_folder`), and cleared of stale temporary files of earlier, killed runs
    (only when locked: a forced run leaves a running job's files alone).

    Args:
        folder: the output folder (created if needed).
        force: run even when another job holds the folder.
        resume: the job will continue from ``FOLDER/checkpoint.pt``: when there is none,
            ``notice`` says that it starts from scratch.
        notice: where one-line notices go (the CLI: stderr).

    Raises:
        ValueError: the folder is not writable; FolderLocked (a ValueError): held by
            another run.
    """
    out = check_writable(folder)
    with lock_folder(out, force=force) as held:
        if held:
            remove_stale_temps(out)
        if resume and not (out / CHECKPOINT_NAME).exists():
            notice(f"--resume: no {CHECKPOINT_NAME} in {out}; starting from scratch")
        yield out


__all__ = ["CHECKPOINT_NAME", "LOCK_NAME", "FolderLocked", "check_writable", "job_folder",
           "lock_folder"]
