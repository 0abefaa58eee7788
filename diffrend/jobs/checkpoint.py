"""Checkpoints of a running job: atomic writes, and deferred Ctrl-C.

A job saves its whole state (parameters, optimizer moments, random generator, history) at
step boundaries, so that ``--resume`` continues to exactly the result an uninterrupted run
gives. Ctrl-C is turned into a request honoured at the next step boundary (the state is
then consistent and can be saved); a second Ctrl-C interrupts at once.
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

FORMAT_VERSION = 1


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> None:
    """Write ``state`` (tensors, numbers, lists, dicts) to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save({"format": FORMAT_VERSION, **state}, tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def load_checkpoint(path: str | os.PathLike, signature: dict[str, Any]) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` for the same job.

    Args:
        path: the checkpoint file.
        signature: what must match for the run to continue identically (settings, seed,
            data shape); compared with the one stored in the checkpoint.

    Raises:
        ValueError: unreadable file, another format, or a different signature (the key
            that differs is named).
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file
        raise ValueError(f"checkpoint {path} cannot be read: {e}") from e
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        raise ValueError(f"checkpoint {path} is not a diffrend checkpoint (format "
                         f"{FORMAT_VERSION})")
    stored = state.get("signature", {})
    for key in sorted(set(stored) | set(signature)):
        if stored.get(key) != signature.get(key):
            raise ValueError(
                f"checkpoint {path} was written by a different run: {key!r} was "
                f"{stored.get(key)!r}, now {signature.get(key)!r}; resume with the same "
                "settings, or start afresh without --resume"
            )
    return state


@contextmanager
def deterministic() -> Iterator[None]:
    """Within the block, torch uses deterministic kernels (restored afterwards).

    On the CPU, torch's backward of advanced indexing (``index_put_`` with accumulation)
    adds in a thread-dependent order, so two runs of the same fit differ in the last bits
    and a resumed run would not end where an uninterrupted one does.
    """
    import torch.utils.deterministic as det

    was, warn = torch.are_deterministic_algorithms_enabled(), \
        torch.is_deterministic_algorithms_warn_only_enabled()
    fill = det.fill_uninitialized_memory
    torch.use_deterministic_algorithms(True, warn_only=True)
    # Deterministic mode also fills every torch.empty with NaN (a debugging aid); that
    # costs a third of a render step and changes nothing here: every buffer is written.
    det.fill_uninitialized_memory = False
    try:
        yield
    finally:
        det.fill_uninitialized_memory = fill
        torch.use_deterministic_algorithms(was, warn_only=warn)


class StopRequest:
    """A flag set by Ctrl-C (while :func:`deferred_interrupt` is active) or by the job."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def __bool__(self) -> bool:
        return self.reason is not None


@contextmanager
def deferred_interrupt() -> Iterator[StopRequest]:
    """Within the block, the first Ctrl-C sets the yielded flag instead of raising.

    Only in the main thread (signal handlers cannot be installed elsewhere; there Ctrl-C
    keeps its usual behaviour).
    """
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        if stop:
            raise KeyboardInterrupt
        stop.reason = "interrupted"

    signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
