"""What the fitting commands share: how a job runs (:class:`JobRun`) and the sequence fit,
measure, write the outputs (:func:`fit_and_write`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ..io.outputs import check_writable
from ..jobs.distributed import DistContext
from .folder import CHECKPOINT_NAME

R = TypeVar("R")


@dataclass(frozen=True)
class JobRun:
    """How the CLI runs a fitting job.

    Attributes:
        seed: the job's seed.
        resume: continue from ``OUTPUT/checkpoint.pt`` when it exists.
        checkpoint_every: steps between checkpoints.
        progress: show a progress bar.
        command: the command line, recorded in index.html.
        echo: where the closing line goes.
        dist: the process group of a job run by ``torchrun`` (None: this process alone):
            every rank fits, rank 0 alone measures and writes the outputs.
    """

    seed: int = 0
    resume: bool = False
    checkpoint_every: int = 50
    progress: bool = True
    command: str = "diffrend"
    echo: Callable[[str], None] = print
    dist: DistContext | None = None


def fit_and_write(
    out: str | os.PathLike,
    run: JobRun,
    fit: Callable[[Path], R],
    evaluate: Callable[[R], dict],
    write: Callable[[Path, R, dict], list[str]],
) -> dict:
    """Fit (``fit(checkpoint path)``), measure (``evaluate(result)``) and write everything
    into ``out`` (``write(folder, result, metrics)`` -> the file names); returns the metrics.

    A fit stopped by Ctrl-C still writes its result so far (and the checkpoint that
    ``resume`` continues from); the metrics then say ``"stopped": "interrupted"``.

    Under ``torchrun`` (``run.dist``) every rank fits (and reads the checkpoint on resume);
    the ranks other than 0 then return ``{}``: rank 0 alone measures and writes. The
    metrics say how many ``processes`` ran the fit.
    """
    follower = run.dist is not None and not run.dist.is_main
    folder = Path(out) if follower else check_writable(out)
    result = fit(folder / CHECKPOINT_NAME)
    if follower:  # under torchrun: rank 0 alone measures and writes
        return {}
    metrics = evaluate(result)
    metrics["processes"] = run.dist.world_size if run.dist is not None else 1
    written = write(folder, result, metrics)
    run.echo(f"wrote {folder}/: " + ", ".join(written))
    return metrics
