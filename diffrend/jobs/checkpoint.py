"""Checkpoints of a running job: atomic writes, and deferred Ctrl-C.

A job saves its whole state (parameters, optimizer moments, random generator, history) at
step boundaries, so that ``--resume`` continues to exactly the result an uninterrupted run
gives. Ctrl-C is turned into a request honoured at the next step boundary (the state is
then consistent and can be saved); a second Ctrl-C interrupts at once.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from ..io.atomic import atomic_open

FORMAT_VERSION = 1


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> None:
    """Write ``state`` (tensors, numbers, lists, dicts) to ``path`` atomically."""
    with atomic_open(path) as f:
        torch.save({"format": FORMAT_VERSION, **state}, f)


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _differences(old: Any, new: Any, name: str) -> list[str]:
    """``name was OLD, now NEW`` for each leaf where two signatures differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in list(old) + [k for k in new if k not in old]:
            sub = f"{name}.{key}" if name else str(key)
            out += _differences(old.get(key), new.get(key), sub)
        return out
    if (isinstance(old, (list, tuple)) and isinstance(new, (list, tuple))
            and len(old) == len(new) and any(isinstance(x, (dict, list, tuple)) for x in old)):
        return [d for i, (a, b) in enumerate(zip(old, new, strict=True))
                for d in _differences(a, b, f"{name}[{i}]")]
    if old == new:
        return []
    return [f"{name} was {_short(old)}, now {_short(new)}"]


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
    diffs = _differences(state.get("signature", {}), signature, "")
    if diffs:
        shown = "; ".join(diffs[:3]) + (f"; and {len(diffs) - 3} more" if len(diffs) > 3 else "")
        raise ValueError(f"checkpoint {path} was written by a different run: {shown}; resume "
                         "with the same settings, or start afresh without --resume")
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


_active: StopRequest | None = None  # the request of the outermost deferred_interrupt


@contextmanager
def deferred_interrupt() -> Iterator[StopRequest]:
    """Within the block, the first Ctrl-C sets the yielded flag instead of raising.

    A second Ctrl-C raises KeyboardInterrupt at once. Blocks nest: an inner block yields the
    outer block's request (a job that holds Ctrl-C over its fit *and* its output files sees
    a Ctrl-C that came during the fit). Only in the main thread (signal handlers cannot be
    installed elsewhere; there Ctrl-C keeps its usual behaviour).
    """
    global _active
    if threading.current_thread() is not threading.main_thread():
        yield StopRequest()
        return
    if _active is not None:
        yield _active
        return
    stop = StopRequest()
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        if stop:
            raise KeyboardInterrupt
        stop.reason = "interrupted"

    signal.signal(signal.SIGINT, handler)
    _active = stop
    try:
        yield stop
    finally:
        _active = None
        signal.signal(signal.SIGINT, previous)
