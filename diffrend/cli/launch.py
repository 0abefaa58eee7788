"""``--nproc N``: rerun a command on N local processes with torchrun's launcher.

The command line is run again, less ``--nproc``/``--max-restarts``, under
``torch.distributed.run --standalone`` (called in this process, so its errors can be
caught). Rank 0 prints to the console as a plain run would; the other ranks' output goes
to log files, so that the console shows each message once. When a process fails, one
short report replaces torchrun's traceback: which rank, its exit code, and the end of its
log; the exit code is the failed rank's (2 for a usage error, as without ``--nproc``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from ..jobs.distributed import threads_per_rank


def strip_launch_options(argv: Sequence[str]) -> list[str]:
    """``argv`` less ``--nproc`` and ``--max-restarts`` (with their values, in either the
    ``--opt V`` or the ``--opt=V`` form)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--nproc", "--max-restarts"):
            skip = True
        elif not arg.startswith(("--nproc=", "--max-restarts=")):
            out.append(arg)
    return out


@contextlib.contextmanager
def _quiet_agent() -> Iterator[None]:
    """Silence torchrun's agent logging for the block (its failure lines and traceback are
    replaced by :func:`relaunch`'s report)."""
    logger = logging.getLogger("torch.distributed.elastic")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _log_tail(log_dir: Path, local_rank: int, lines: int = 15) -> list[str]:
    """The last ``lines`` lines of ``local_rank``'s stderr in the latest attempt."""
    logs = sorted(log_dir.glob(f"*/attempt_*/{local_rank}/stderr.log"),
                  key=lambda p: int(p.parent.parent.name.split("_")[-1]))
    if not logs:
        return []
    text = logs[-1].read_text(errors="replace").rstrip().splitlines()
    return text[-lines:]


def reported_failure(failures: dict[int, object], first: int) -> int:
    """The rank whose failure :func:`relaunch` reports: rank 0 when it failed, whose messages
    are already on the console (when every rank fails on the same bad input, the one that
    happened to fail first must not repeat them from its log), else ``first``.

    Args:
        failures: the failed ranks (keys; the values are not read).
        first: the rank that failed first.
    """
    return 0 if 0 in failures else first


def relaunch(nproc: int, max_restarts: int, argv: Sequence[str],
             echo: Callable[[str], None]) -> int:
    """Run ``python -m diffrend ARGV`` on ``nproc`` local processes; returns the exit code.

    Args:
        nproc: processes (>= 2), all on this machine (``--standalone`` rendezvous).
        max_restarts: times torchrun restarts the group after a process fails.
        argv: the command line, without ``--nproc``/``--max-restarts``.
        echo: where the failure report goes (stderr).

    Returns:
        0 when every process finished; else the exit code of rank 0 if it failed, or of the
        first that failed (1 when it was killed by a signal); 130 after Ctrl-C.
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    # One thread pool per process, sized to its share of the cores (torchrun would set 1
    # and print a banner saying so); a value the user set is kept.
    os.environ.setdefault("OMP_NUM_THREADS", str(threads_per_rank(nproc)))
    log_dir = Path(tempfile.mkdtemp(prefix="diffrend-ranks-"))
    # rank 0 writes to the console as it would alone; the others to log files
    redirects = ",".join(f"{r}:{0 if r == 0 else 3}" for r in range(nproc))
    args = parse_args(["--standalone", f"--nproc-per-node={nproc}",
                       f"--max-restarts={max_restarts}", f"--log-dir={log_dir}",
                       f"--redirects={redirects}", "-m", "diffrend", *argv])
    code = 1
    try:
        with _quiet_agent():
            run(args)
        code = 0
    except ChildFailedError as e:
        rank = reported_failure(e.failures, e.get_first_failure()[0])
        failure = e.failures[rank]
        code = failure.exitcode if failure.exitcode > 0 else 1
        how = (f"exit code {failure.exitcode}" if failure.exitcode >= 0
               else f"killed by signal {-failure.exitcode}")
        echo(f"process {rank} of {nproc} failed ({how})"
             + (f" after {max_restarts} restart(s)" if max_restarts else ""))
        if failure.local_rank != 0:  # rank 0's own messages are already on the console
            tail = _log_tail(log_dir, failure.local_rank)
            echo("\n".join(f"  [rank {rank}] {line}" for line in tail))
    except KeyboardInterrupt:  # torchrun passes Ctrl-C on to the ranks and waits for them
        code = 130
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)
    return code


__all__ = ["relaunch", "reported_failure", "strip_launch_options"]
