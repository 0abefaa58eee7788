"""The environment of the processes the distributed tests launch (a helper, not a test)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker_env() -> dict[str, str]:
    """This process's environment, with the repository importable, idle OpenMP threads
    waiting passively (two ranks share the cores) and Python's fault handler on, so that a
    rank killed by a signal (SIGABRT, SIGSEGV) prints every thread's Python stack."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env.setdefault("PYTHONFAULTHANDLER", "1")
    return env


def failure(proc: subprocess.CompletedProcess, tail: int = 4000) -> str:
    """What a failed launch printed: the ends of stdout and stderr, and, when a rank died of a
    signal, its fault handler's stacks (which torchrun's summary after them would push out
    of the tail)."""
    err = proc.stderr or ""
    start = err.find("Fatal Python error")
    stacks = err[start:start + 6000] + "\n...\n" if start >= 0 else ""
    return (proc.stdout or "")[-2000:] + stacks + err[-tail:]
