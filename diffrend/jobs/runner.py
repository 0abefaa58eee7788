"""The one loop every fitting job runs: steps, progress bar, callbacks, snapshots,
checkpoints, resume, deterministic mode and Ctrl-C.

A job is its model: explicit state (parameters, optimizer, random generator) and a
``step(i) -> losses`` function doing step ``i`` (counted from 0 over the whole run). The
runner calls it ``total`` times and, around each call, does what every job needs:

- a tqdm progress bar with the live loss;
- the caller's callback after every step (returning True stops the run);
- renders for a progress animation every few steps (``Snapshots``);
- a checkpoint every ``checkpoint_every`` steps, at the end and when stopped: the runner's
  own state (steps done, losses, frames) plus the job's ``state_dict()``, so that a resumed
  run (``load_state_dict``) ends bit for bit where an uninterrupted one does (on the CPU,
  with torch's deterministic algorithms, which the runner turns on);
- with several ranks (``dist``), rank 0 alone writes checkpoints and renders snapshots,
  and the ranks agree after each step whether to stop;
- Ctrl-C becomes a stop request honoured at the next step boundary (the state is then
  consistent and is saved); a second Ctrl-C interrupts at once.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from .checkpoint import (
    StopRequest,
    deferred_interrupt,
    deterministic,
    load_checkpoint,
    save_checkpoint,
)
from .distributed import DistContext


class JobState(Protocol):
    """What the runner checkpoints of a job: its tensors, optimizer and generator."""

    def state_dict(self) -> dict[str, Any]:
        """The job's state at a step boundary (CPU tensors, numbers, lists, dicts)."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` gave (the checkpoint holds more keys)."""


@dataclass(frozen=True)
class RunOptions:
    """How a job runs (not what it fits).

    Attributes:
        checkpoint: file for checkpoints; None: no checkpoints.
        checkpoint_every: steps between checkpoints (one is also written at the end and
            when stopped).
        resume: continue from ``checkpoint`` when it exists (same job, data, settings and
            seed required: the checkpoint's signature must match).
        progress: show a progress bar with the live loss.
        deterministic: run with torch's deterministic algorithms (needed for bit-for-bit
            resume on the CPU).
        defer_interrupt: Ctrl-C stops the run at the next step boundary (``stopped=
            "interrupted"``); False: it raises KeyboardInterrupt at once (a job with nothing
            to save).
    """

    checkpoint: str | os.PathLike | None = None
    checkpoint_every: int = 50
    resume: bool = False
    progress: bool = True
    deterministic: bool = True
    defer_interrupt: bool = True

    def __post_init__(self) -> None:
        every = self.checkpoint_every
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"checkpoint_every must be an int >= 1, got {every!r}")
        if self.resume and self.checkpoint is None:
            raise ValueError("resume=True needs a checkpoint path")


@dataclass(frozen=True)
class Snapshots:
    """Renders kept for a progress animation.

    Attributes:
        every: steps between renders (one is also kept after the last step).
        render: the current state drawn as (V, S, S, 3) uint8 images.
    """

    every: int
    render: Callable[[], np.ndarray]


@dataclass
class RunResult:
    """What :func:`run` did.

    Attributes:
        steps: steps done in all (including those of earlier runs of a resumed job).
        history: per step, the losses its ``step`` returned.
        frames: ``(step, (V, S, S, 3) uint8)`` snapshots over the run.
        stopped: None (all steps done), ``"interrupted"`` (Ctrl-C) or ``"callback"``.
        seconds: wall time of this call.
    """

    steps: int
    history: list[dict[str, float]] = field(default_factory=list)
    frames: list[tuple[int, np.ndarray]] = field(default_factory=list)
    stopped: str | None = None
    seconds: float = 0.0


def _loss_postfix(record: dict[str, float]) -> dict[str, str]:
    return {"loss": f"{record['loss']:.5f}"}


def run(
    step: Callable[[int], dict[str, float]],
    total: int,
    *,
    state: JobState | None = None,
    signature: dict[str, Any] | None = None,
    options: RunOptions | None = None,
    desc: str = "fit",
    callback: Callable[[int, dict[str, float]], bool | None] | None = None,
    postfix: Callable[[dict[str, float]], dict[str, Any]] = _loss_postfix,
    snapshots: Snapshots | None = None,
    bar: tqdm | None = None,
    dist: DistContext | None = None,
) -> RunResult:
    """Run ``step(i)`` for ``i`` in ``[done, total)``, owning everything around the steps.

    Args:
        step: does step ``i`` (0-based) and returns its losses (``"loss"`` first).
        total: steps of the whole run.
        state: the job's checkpointed state (needed with ``options.checkpoint``).
        signature: what must match for a checkpoint to be resumed (job name, settings,
            seed, data shape); stored in every checkpoint.
        options: checkpoints, resume, progress, determinism (default :class:`RunOptions()`).
        desc: the progress bar's label.
        callback: called after every step with ``(steps done, losses)``; returning True
            stops the run (``stopped="callback"``).
        postfix: the progress bar's live values from a step's losses.
        snapshots: renders to keep for a progress animation.
        bar: an existing progress bar to advance (a job of several phases); the default
            makes one and closes it at the end.
        dist: the process group of a job whose ranks step together (None: this process
            alone). Only rank 0 renders snapshots and writes checkpoints (every rank reads
            them on resume); a stop (Ctrl-C on any rank, the callback) is agreed by all
            ranks after each step (one small all-reduce), so they stop at the same step.

    Returns:
        :class:`RunResult`.

    Raises:
        ValueError: a checkpoint that cannot be read or was written by another run.
    """
    options = options if options is not None else RunOptions()
    dist = dist if dist is not None else DistContext()
    if options.checkpoint is not None and state is None:
        raise ValueError("checkpoints need the job's state")
    path = Path(options.checkpoint) if options.checkpoint is not None else None
    signature = signature if signature is not None else {}
    done, history, frames = 0, [], []
    if options.resume and path is not None and path.exists():
        ck = load_checkpoint(path, signature)
        done, history, frames = ck["step"], ck["history"], ck["frames"]
        state.load_state_dict(ck)

    def save() -> None:
        save_checkpoint({"signature": signature, "step": done, "history": history,
                         "frames": frames, **state.state_dict()}, path)

    start = time.perf_counter()
    stopped = None
    own_bar = bar is None
    if own_bar:
        bar = tqdm(total=total, initial=done, desc=desc, unit="step",
                   disable=not options.progress, dynamic_ncols=True)
    exact = deterministic() if options.deterministic else contextlib.nullcontext()
    ctrl_c = deferred_interrupt() if options.defer_interrupt else contextlib.nullcontext(
        StopRequest())
    try:
        with ctrl_c as stop, exact:
            while done < total:
                record = step(done)
                done += 1
                history.append(record)
                bar.update(1)
                bar.set_postfix(**postfix(record))
                if (snapshots is not None and dist.is_main
                        and (done % snapshots.every == 0 or done == total)):
                    frames.append((done, snapshots.render()))
                if callback is not None and callback(done, record):
                    stop.reason = stop.reason or "callback"
                if dist.active:  # every rank stops at the same step, or none does
                    interrupted, by_callback = dist.sum([stop.reason == "interrupted",
                                                         stop.reason == "callback"])
                    stop.reason = ("interrupted" if interrupted else
                                   "callback" if by_callback else None)
                stopped = stop.reason
                if path is not None and dist.is_main and (
                        done % options.checkpoint_every == 0 or stopped or done == total):
                    save()
                if stopped:
                    break
    finally:
        if own_bar:
            bar.close()
    return RunResult(steps=done, history=history, frames=frames, stopped=stopped,
                     seconds=time.perf_counter() - start)
