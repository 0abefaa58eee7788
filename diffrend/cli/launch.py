"""``--nproc N``: rerun a command on N local processes with torchrun's launcher.

The command line is run again, less ``--nproc``/``--max-restarts``, under
``torch.distributed.run --standalone`` (called in this process, so its errors can be
caught). Rank 0 prints to the console as a plain run would; the other ranks' output goes
to log files, so that the console shows each message once. When a process fails, one
short report replaces torchrun's traceback: which rank, its exit code, and the end of its
log, less the lines rank 0 has already printed; the exit code is the failed rank's (2 for
a usage error, as without ``--nproc``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..jobs.distributed import threads_per_rank

if TYPE_CHECKING:
    from torch.distributed.elastic.multiprocessing.errors import ProcessFailure


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


def reported_failure(failures: Mapping[int, ProcessFailure], first: int) -> int:
    """The rank whose failure :func:`relaunch` reports.

    Rank 0 when it exited with an error code (its messages are already on the console);
    else the first rank that failed on its own, not stopped by torchrun's SIGTERM after
    another rank failed; else ``first``. When every rank fails on the same bad input, which
    one exits first is a matter of timing; this keeps the report on the cause.

    Args:
        failures: the failed ranks and how each failed (``exitcode``: > 0 an exit code,
            < 0 minus the signal that killed it).
        first: the rank that failed first.
    """
    if 0 in failures and failures[0].exitcode > 0:
        return 0
    on_their_own = [r for r in sorted(failures) if failures[r].exitcode != -signal.SIGTERM]
    if first in on_their_own or not on_their_own:
        return first
    return on_their_own[0]


def shown_by_rank0(failures: Mapping[int, ProcessFailure]) -> set[str]:
    """The lines of the error message rank 0 printed to the console, as it recorded them in
    its error file (see :class:`diffrend.cli._Main`); empty when it recorded none."""
    if 0 not in failures:
        return set()
    message = failures[0].error_file_data.get("message")
    return set(message.splitlines()) if isinstance(message, str) else set()


def relaunch(nproc: int, max_restarts: int, argv: Sequence[str],
             echo: Callable[[str], None]) -> int:
    """Run ``python -m diffrend ARGV`` on ``nproc`` local processes; returns the exit code.

    Args:
        nproc: processes (>= 2), all on this machine (``--standalone`` rendezvous).
        max_restarts: times torchrun restarts the group after a process fails.
        argv: the command line, without ``--nproc``/``--max-restarts``.
        echo: where the failure report goes (stderr).

    Returns:
        0 when every process finished; else the exit code of the rank reported
        (:func:`reported_failure`; 1 when it was killed by a signal); 130 after Ctrl-C.
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
            shown = shown_by_rank0(e.failures)
            tail = [line for line in _log_tail(log_dir, failure.local_rank)
                    if line not in shown]
            if tail:
                echo("\n".join(f"  [rank {rank}] {line}" for line in tail))
    except KeyboardInterrupt:  # torchrun passes Ctrl-C on to the ranks and waits for them
        code = 130
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)
    return code


__all__ = ["relaunch", "reported_failure", "shown_by_rank0", "strip_launch_options"]
