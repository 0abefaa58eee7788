"""The environment of the processes the distributed tests launch (a helper, not a test)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker_env() -> dict[str, str]:
    """This process's environment, with the repository importable and idle OpenMP threads
    waiting passively (two ranks share the cores)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env
