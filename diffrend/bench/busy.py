"""The busy mode of ``diffrend bench``: other processes keep every core busy while the
cases run, as a data loader or another job does on a laptop or a shared server.

Each busy process spins in pure Python (one core each, at the same priority as the
benchmark), so the operating system shares the cores between them and the benchmark's
threads; diffrend and llvmpipe are timed under the same load, so their ratio stays
meaningful.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator

_SPIN = "while True:\n    pass\n"


@contextlib.contextmanager
def busy_cores(n: int | None = None) -> Iterator[list[subprocess.Popen]]:
    """Run ``n`` spinning processes for the block (default: one per core this process may
    use); they are killed at the end, also on errors and Ctrl-C.

    Yields:
        The processes.

    Raises:
        ValueError: ``n`` < 1.
    """
    from ..jobs.distributed import cpu_cores

    n = cpu_cores() if n is None else n
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    procs: list[subprocess.Popen] = []
    try:
        for _ in range(n):
            procs.append(subprocess.Popen([sys.executable, "-c", _SPIN],
                                          stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
        time.sleep(0.3)  # let them start spinning before the first timing
        yield procs
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


__all__ = ["busy_cores"]
