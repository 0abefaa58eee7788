"""torch.distributed for jobs that run on several processes (``torchrun``), and plainly on one.

A job calls :func:`distributed` once: under ``torchrun`` (which sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT``) it
joins the process group, with NCCL when the job runs on CUDA and gloo otherwise; without
those variables it is a group of one and every collective here is a no-op, so the same code
runs with and without ``torchrun``. The helpers take the :class:`DistContext` it yields, so
nothing here depends on hidden global state except torch's default process group.

Every rank must call each collective (:meth:`DistContext.barrier`, :meth:`~DistContext.sum`,
:meth:`~DistContext.broadcast`, :meth:`~DistContext.gather`) the same number of times, in the
same order: a rank that skips one hangs the others. Jobs therefore catch per-item errors
inside their loop and always reach the next collective.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")

_TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the job's group of processes.

    Attributes:
        rank: this process's rank in [0, world_size).
        world_size: number of processes (1 without ``torchrun``).
        local_rank: rank among the processes on this machine.
        local_world_size: processes on this machine (sizes the thread pools).
        backend: ``"gloo"``, ``"nccl"``, or ``None`` for a group of one.
        device: the device of the collectives' tensors (NCCL needs this rank's GPU).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    backend: str | None = None
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that prints, shows progress and writes shared files."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """Whether a process group of more than this process is up."""
        return self.backend is not None

    def barrier(self) -> None:
        """Wait until every rank gets here."""
        if self.active:
            dist.barrier()

    def sum(self, values: Sequence[int]) -> list[int]:
        """Element-wise sum of ``values`` over the ranks (every rank gets the result).

        Args:
            values: the same number of ints on every rank.
        """
        if not self.active:
            return [int(v) for v in values]
        t = torch.tensor([int(v) for v in values], dtype=torch.int64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return [int(v) for v in t.tolist()]

    def sum_tensors_(self, tensors: Sequence[torch.Tensor]) -> None:
        """Replace each tensor by its element-wise sum over the ranks, in place, with one
        collective (the tensors are packed into one float buffer and unpacked).

        Args:
            tensors: floating-point tensors of the same shapes, in the same order, on every
                rank (any devices; the buffer lives on :attr:`device`). Not differentiable:
                meant for gradients and statistics after ``backward``.

        The sum's order of additions is the backend's, so the result can differ from a
        one-process sum by float rounding (about 1e-7 relative in float32).
        """
        if not self.active or not tensors:
            return
        for t in tensors:
            if not t.is_floating_point():
                raise ValueError(f"tensors must be floating point, got {t.dtype}")
        dtype = tensors[0].dtype
        for t in tensors[1:]:
            dtype = torch.promote_types(dtype, t.dtype)  # no precision lost in the buffer
        flat = torch.cat([t.detach().reshape(-1).to(self.device, dtype) for t in tensors])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        offset = 0
        with torch.no_grad():
            for t in tensors:
                n = t.numel()
                t.copy_(flat[offset:offset + n].view_as(t))
                offset += n

    def broadcast(self, obj: T) -> T:
        """Rank 0's ``obj`` on every rank (any picklable object; others pass a placeholder)."""
        if not self.active:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0, device=self.device)
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank (picklable objects)."""
        if not self.active:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out


def shard(items: Sequence[T], ctx: DistContext) -> list[T]:
    """This rank's share of ``items``: every ``world_size``-th one from ``rank`` (each item
    goes to exactly one rank; shares differ in length by at most one)."""
    return list(items[ctx.rank::ctx.world_size])


def check_views_per_rank(views_per_step: int, n_views: int, ctx: DistContext) -> None:
    """Refuse a run in which some process would render no view in a step.

    Raises:
        ValueError: ``views_per_step`` or ``n_views`` (the training views) below
            ``ctx.world_size``.
    """
    if views_per_step < ctx.world_size:
        raise ValueError(f"settings.views_per_step ({views_per_step}) must be at least the "
                         f"number of processes ({ctx.world_size}): each renders at least one "
                         "view a step")
    if n_views < ctx.world_size:
        raise ValueError(f"data has {n_views} views, fewer than the number of processes "
                         f"({ctx.world_size}): each renders at least one view a step")


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an int, got {value!r}") from None


def launched_by_torchrun() -> bool:
    """Whether the torchrun variables (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``,
    ``MASTER_PORT``) are all set."""
    return all(os.environ.get(v) for v in _TORCHRUN_VARS)


def choose_backend(device: torch.device | str) -> str:
    """NCCL for CUDA jobs (when torch has it), gloo otherwise (CPU jobs, or no NCCL)."""
    device = torch.device(device)
    if device.type == "cuda" and dist.is_nccl_available():
        return "nccl"
    return "gloo"


def cpu_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def threads_per_rank(local_world_size: int, cores: int | None = None) -> int:
    """``max(1, cores // local_world_size)``: the thread count that keeps the ranks of one
    machine from oversubscribing its cores."""
    if local_world_size < 1:
        raise ValueError(f"local_world_size must be >= 1, got {local_world_size}")
    return max(1, (cores if cores is not None else cpu_cores()) // local_world_size)


def set_rank_threads(ctx: DistContext) -> int:
    """Size torch's intra-op pool to this rank's share of the cores (diffrend's Numba kernels
    follow torch's thread count, see :mod:`diffrend.threads`); returns the thread count.

    Only with more than one rank on the machine: a single process keeps the thread count
    the user or the environment chose (``OMP_NUM_THREADS``, ``torch.set_num_threads``).
    """
    if ctx.local_world_size <= 1:
        return torch.get_num_threads()
    n = threads_per_rank(ctx.local_world_size)
    torch.set_num_threads(n)
    return n


@contextlib.contextmanager
def distributed(device: torch.device | str = "cpu") -> Iterator[DistContext]:
    """The job's process group for the block (see the module docstring).

    Under ``torchrun`` with ``WORLD_SIZE > 1``: joins the group (NCCL for a CUDA ``device``,
    each rank on GPU ``LOCAL_RANK``; gloo otherwise) and leaves it at the end. A group
    already initialised by the caller is used as it is and left up. Otherwise: a group of
    one, no torch.distributed calls at all.

    Args:
        device: the job's device type (``"cpu"`` or ``"cuda"``); picks the backend.

    Yields:
        This process's :class:`DistContext`.
    """
    device = torch.device(device)
    world = _env_int("WORLD_SIZE", 1)
    if dist.is_available() and dist.is_initialized():
        backend = str(dist.get_backend())
        yield _context(backend, device)
        return
    if world <= 1 or not launched_by_torchrun() or not dist.is_available():
        yield DistContext()
        return
    _import_group_pinning_modules()
    backend = choose_backend(device)
    if backend == "nccl":
        torch.cuda.set_device(_env_int("LOCAL_RANK", 0))
    dist.init_process_group(backend=backend, store=_attempt_store(), rank=_env_int("RANK", 0),
                            world_size=world)
    try:
        yield _context(backend, device)
    finally:
        dist.destroy_process_group()


def _import_group_pinning_modules() -> None:
    """Import, before the group exists, the torch modules that would otherwise keep it alive.

    ``torch.distributed.nn.functional`` takes ``group.WORLD`` as a default argument, so
    importing it while a group is up keeps that group alive for good, past
    ``destroy_process_group``. Much imports it on the way: ``torch._dynamo`` does, and a
    job's first ``torch.optim`` optimizer and first ``torch.use_deterministic_algorithms``
    import that (every fit makes both calls). A gloo group kept alive keeps its worker
    threads, and at interpreter exit one of them could still be releasing a finished
    collective; it then needs the GIL, is stopped, and the process aborts ("terminate
    called without an active exception"). That happened in 1 to 3% of two-rank fits, after
    their outputs had been written. Imported first, the module's default is the "no group"
    placeholder instead.
    """
    import torch.distributed.nn.functional  # noqa: F401


def _attempt_store() -> dist.Store:
    """torchrun's rendezvous store, with keys private to this restart of the group.

    After torchrun restarts the processes (``--max-restarts``), a rank that read a key the
    killed group had written (a peer's old address) tried to connect to a dead socket until
    the timeout; a prefix per restart (``TORCHELASTIC_RESTART_COUNT``) keeps the groups apart.
    """
    import datetime

    use_agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    store = dist.TCPStore(os.environ["MASTER_ADDR"], _env_int("MASTER_PORT", 0),
                          _env_int("WORLD_SIZE", 1),
                          is_master=not use_agent and _env_int("RANK", 0) == 0,
                          timeout=datetime.timedelta(minutes=10))
    return dist.PrefixStore(f"diffrend/attempt_{_env_int('TORCHELASTIC_RESTART_COUNT', 0)}",
                            store)


def _context(backend: str, device: torch.device) -> DistContext:
    local_rank = _env_int("LOCAL_RANK", 0)
    if backend == "nccl":
        comm = torch.device("cuda", torch.cuda.current_device())
    else:
        comm = torch.device("cpu")
    return DistContext(rank=dist.get_rank(), world_size=dist.get_world_size(),
                       local_rank=local_rank,
                       local_world_size=_env_int("LOCAL_WORLD_SIZE", dist.get_world_size()),
                       backend=backend, device=comm)


__all__ = ["DistContext", "choose_backend", "cpu_cores", "distributed", "launched_by_torchrun",
           "set_rank_threads", "shard", "threads_per_rank"]
