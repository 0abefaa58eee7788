"""Numba's threading layer and thread count, and the lock that makes the CPU kernels safe to
call from threads.

Thread count: every kernel launch (:func:`kernel_lock`) runs on as many threads as torch's
intra-op pool has (``torch.get_num_threads()``, capped by ``NUMBA_NUM_THREADS``, the size
Numba's pool was started with), so one setting governs both pools: ``torch.set_num_threads``
or ``OMP_NUM_THREADS``. (A ``numba.set_num_threads`` call of the user's is overridden at the
next launch.)

Layer (applied by :func:`configure_numba` when this module is first imported, which every
kernel module does before its first launch; ``import diffrend`` alone does not load Numba):

* A layer the user chose is kept: ``NUMBA_THREADING_LAYER`` / ``NUMBA_THREADING_LAYER_PRIORITY``
  in the environment, or ``numba.config.THREADING_LAYER`` set before (or after) importing
  diffrend, as long as it is before the first kernel runs.
* Otherwise Numba picks the first layer that loads from ``tbb, workqueue, omp``: TBB when the
  ``tbb`` package is installed (thread- and fork-safe; a dependency of diffrend where PyPI has
  wheels for it), else ``workqueue``. TBB's workers start on time: under ``workqueue`` the
  cow's 512x512 raster kernel took either 3.7 ms or, in about half the calls, 6.5 ms (the
  second worker starting late), with TBB 3.7 ms every call. OpenMP comes last
  because Numba's OpenMP pool fights torch's (HardPhong 512^2 forward+backward measured
  2.3 s with ``omp`` vs 0.31 s with ``workqueue``).
* ``workqueue`` aborts the process (SIGABRT) when two threads launch parallel kernels at once,
  so while it is the active layer every kernel launch holds one process-wide lock
  (:func:`kernel_lock`). Each kernel already uses every core, so serialising them costs little
  throughput. Under ``tbb`` or ``omp`` no lock is taken.

Waiting: ``import diffrend`` sets ``OMP_WAIT_POLICY=PASSIVE`` (unless set), which torch's
OpenMP runtime reads when torch is imported. When torch came first, its idle threads spin
after every torch operation on the cores the kernels need (1.4-1.5x slower kernel-bound
calls, measured); the first multi-threaded kernel launch then issues one
:class:`PerformanceWarning` saying how to avoid it.

Forked processes (a DataLoader's workers) are safe: ``workqueue`` restarts its pool after a
fork, and the lock is replaced in the child, so a lock held by another parent thread at the
moment of the fork cannot deadlock the child. (GNU ``omp`` is not fork-safe: a child that
runs a kernel after its parent did may hang; choose ``tbb`` or leave the default.)
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings

import torch

# Layers that Numba documents as safe to launch from several threads at once.
THREAD_SAFE_LAYERS = frozenset({"tbb", "omp"})

_lock = threading.RLock()
_needs_lock: bool | None = None  # decided at the first launch, when the layer is known


def configure_numba() -> None:
    """Set Numba's layer priority to ``tbb, workqueue, omp`` unless the user chose a layer."""
    if "NUMBA_THREADING_LAYER" in os.environ or "NUMBA_THREADING_LAYER_PRIORITY" in os.environ:
        return
    import numba

    if str(numba.config.THREADING_LAYER).lower() != "default":
        return
    numba.config.THREADING_LAYER_PRIORITY = ["tbb", "workqueue", "omp"]


def active_layer() -> str:
    """The name of Numba's threading layer, starting its thread pool if need be."""
    import numba

    numba.get_num_threads()  # (launches the pool, which fixes the layer)
    return numba.threading_layer()


def _decide() -> bool:
    global _needs_lock
    with _lock:
        if _needs_lock is None:
            _needs_lock = active_layer() not in THREAD_SAFE_LAYERS
        return _needs_lock


_NO_LOCK = contextlib.nullcontext()


def kernel_lock() -> contextlib.AbstractContextManager:
    """Hold (``with kernel_lock():``) around each call of a Numba ``parallel=True`` kernel;
    also sets the kernel's thread count to torch's (see the module docstring).

    Returns the process-wide re-entrant lock when the active layer is not thread-safe, else a
    no-op context (a plain object, no generator: this runs on every kernel call).
    """
    _follow_torch_threads()
    needs = _needs_lock if _needs_lock is not None else _decide()
    return _lock if needs else _NO_LOCK


class PerformanceWarning(UserWarning):
    """Something in the process's set-up makes diffrend slower than it needs to be."""


SPINNING_TORCH_MESSAGE = (
    "torch was imported before diffrend with no OMP_WAIT_POLICY set, so torch's OpenMP "
    "threads busy-wait: after each torch operation they keep spinning on the cores that "
    "diffrend's CPU kernels need (measured: the cow's 512x512 rasterization 7.0 ms instead "
    "of 4.7 ms, a soft K=50 forward+backward 23 ms instead of 16.5 ms, on 2 cores). "
    "Set OMP_WAIT_POLICY=PASSIVE in the environment before Python starts, or import "
    "diffrend before torch; set OMP_WAIT_POLICY=ACTIVE to keep busy-waiting without this "
    "warning."
)
_spin_warning_due = True  # (checked once, at the first multi-threaded kernel launch)


def _warn_if_torch_spins(n_threads: int) -> None:
    global _spin_warning_due
    if n_threads < 2:
        return  # one thread: nothing to compete with (checked again at the next launch)
    _spin_warning_due = False
    import diffrend

    if diffrend._OMP_POLICY_TOO_LATE and torch.backends.openmp.is_available():
        warnings.warn(SPINNING_TORCH_MESSAGE, PerformanceWarning, stacklevel=4)


def _follow_torch_threads() -> None:
    """Set Numba's thread count (for the calling thread) to torch's, within its pool size."""
    import numba

    n = min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)
    if _spin_warning_due:
        _warn_if_torch_spins(n)
    if numba.get_num_threads() != n:
        numba.set_num_threads(n)


def _after_fork_in_child() -> None:
    # Another thread of the parent may have held the lock at the fork: it never releases it here.
    global _lock
    _lock = threading.RLock()


os.register_at_fork(after_in_child=_after_fork_in_child)
configure_numba()
