"""Up-front memory estimate of a frame's fragments, checked against a budget before allocating.

A rasterizer call allocates (N, H, W, K) fragment tensors, and its backward as many gradient
tensors again; at 2048^2 with K = 50 that is gigabytes, and past the machine's memory the
kernel used to die with an out-of-memory error from inside. :func:`check_fragment_memory`
raises :class:`FrameMemoryError` first, naming the size, the budget and the knobs.

Bytes per fragment slot (s = 4 for float32, 8 for float64):

* meshes: pix_to_face int64 (8) + zbuf (s) + bary_coords (3 s) + dists (s) = 8 + 5 s, i.e.
  28 (float32) or 48 (float64); the backward adds the gradients of zbuf, bary and dists
  (5 s). Near-plane clipping remaps pix_to_face and bary (transients of 24 + 15 s more).
* points: idx int64 (8) + its int32 copy (4) + zbuf (s) + dists (s) = 12 + 2 s; the backward
  adds 2 s.

Not counted: the binning lists (they grow with the primitives' screen area, not with K), the
backward's fixed 256 MiB of chunk buffers, and whatever the shader allocates per slot
(colours and the like: another 3 s or more). The budget's default leaves room for those.

The budget: ``DIFFREND_MEMORY_BUDGET`` (e.g. ``8GB``, ``512MiB``, ``1.5e9``; ``off`` disables
the check), read on every call; otherwise 75% of the memory this process may use on CPU (the
smaller of physical memory, the cgroup limit and RLIMIT_AS) or 90% of what is free on the
tensors' CUDA device.
"""

from __future__ import annotations

import functools
import os
import re

import torch

ENV_VAR = "DIFFREND_MEMORY_BUDGET"
CPU_FRACTION = 0.75
CUDA_FRACTION = 0.9

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9,
          "gb": 10**9, "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30,
          "tib": 2**40}


class FrameMemoryError(MemoryError):
    """A frame's fragments would need more memory than the budget (raised before allocating)."""


def fragment_bytes_per_slot(dtype: torch.dtype, kind: str = "mesh", backward: bool = False,
                            clipped: bool = False) -> int:
    """Bytes one (n, y, x, k) fragment slot costs.

    Args:
        dtype: the float dtype of the coordinates (and hence of zbuf, bary, dists).
        kind: "mesh" or "points".
        backward: count the gradients the backward allocates too.
        clipped: (meshes) near-plane clipping happened, so fragments are remapped.
    """
    s = dtype.itemsize
    if kind == "mesh":
        n = 8 + 5 * s + (5 * s if backward else 0) + (24 + 15 * s if clipped else 0)
    elif kind == "points":
        n = 12 + 2 * s + (2 * s if backward else 0)
    else:
        raise ValueError(f"kind must be 'mesh' or 'points', got {kind!r}")
    return n


def parse_bytes(text: str) -> int | None:
    """``"8GB"`` -> 8e9, ``"512MiB"`` -> 2**29, ``"off"`` -> None (no budget)."""
    t = text.strip().lower()
    if t in ("off", "none", "inf", "unlimited"):
        return None
    m = re.fullmatch(r"([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-z]*)", t)
    if not m or m.group(2) not in _UNITS:
        raise ValueError(f"{ENV_VAR} must be a size such as '8GB', '512MiB' or '2e9', or 'off'; "
                         f"got {text!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


@functools.cache
def _cpu_limit() -> tuple[int, str]:
    """(bytes this process may use, where that number comes from). Read once per process: a
    system file read on every rasterizer call cost about a millisecond."""
    limit = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    source = "physical memory"
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                v = f.read().strip()
        except OSError:
            continue
        if v.isdigit() and int(v) < limit:
            limit, source = int(v), "cgroup memory limit"
        break
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if 0 < soft < limit:
            limit, source = soft, "RLIMIT_AS"
    except (ImportError, ValueError, OSError):
        pass
    return limit, source


def memory_budget(device: torch.device) -> tuple[int | None, str]:
    """(budget in bytes or None for no check, a phrase saying where it comes from)."""
    env = os.environ.get(ENV_VAR)
    if env is not None and env.strip():
        return parse_bytes(env), f"{ENV_VAR}={env.strip()}"
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        # (memory torch's caching allocator holds but does not use is free to it too)
        free += torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(free * CUDA_FRACTION), f"{CUDA_FRACTION:.0%} of the free memory on {device}"
    return _cpu_default_budget()


@functools.cache
def _cpu_default_budget() -> tuple[int, str]:
    limit, source = _cpu_limit()
    return int(limit * CPU_FRACTION), f"{CPU_FRACTION:.0%} of the {_fmt(limit)} {source}"


def _fmt(n: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"


def check_fragment_memory(n: int, height: int, width: int, k: int, dtype: torch.dtype,
                          device: torch.device, kind: str = "mesh", backward: bool = False,
                          clipped: bool = False) -> int:
    """Raise :class:`FrameMemoryError` when N x H x W x K fragments exceed the budget.

    Returns:
        The estimate in bytes.
    """
    need = n * height * width * k * fragment_bytes_per_slot(dtype, kind, backward, clipped)
    budget, source = memory_budget(torch.device(device))
    if budget is not None and need > budget:
        knob = "faces_per_pixel" if kind == "mesh" else "points_per_pixel"
        what = "with gradients" if backward else "forward only"
        raise FrameMemoryError(
            f"rasterizing {n} image(s) of {height}x{width} with {knob}={k} ({kind}, "
            f"{str(dtype).replace('torch.', '')}, {what}) needs about {_fmt(need)} for its "
            f"fragments, over the memory budget of {_fmt(budget)} ({source}). Lower {knob} "
            f"(K), image_size or the batch size (render fewer images per call), or raise the "
            f"budget with {ENV_VAR} (e.g. {ENV_VAR}=16GB, or 'off')."
        )
    return need
