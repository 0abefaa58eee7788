"""What the mesh and point entry points share: argument checks, the choice of backend, and
the autograd glue around a backend's kernels.

A kernel backend is a module (``mesh.numba``, ``mesh.triton``, ``points.numba``,
``points.triton``) with two functions of one shape:

* ``rasterize_forward(prims, owner, n_images, aux, params)`` -> ``(index, *values)``: the
  (N, H, W, K) int64 primitive index first, then the differentiable outputs;
* ``rasterize_backward(prims, index, *grad_values, params)`` -> the gradient of ``prims``.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from types import ModuleType

import torch

BACKENDS = ("auto", "numba", "reference", "triton")


def parse_image_size(image_size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """(H, W) from an int or a pair; raises ValueError unless both are positive ints."""
    if isinstance(image_size, torch.Tensor):
        image_size = image_size.tolist()
    if isinstance(image_size, (list, tuple)):
        if len(image_size) != 2:
            raise ValueError(f"image_size must be an int or (H, W), got {image_size!r}")
        h, w = image_size
    else:
        h = w = image_size
    for v in (h, w):
        if isinstance(v, bool) or not isinstance(v, int) and not (
            isinstance(v, float) and v.is_integer()
        ):
            raise ValueError(f"image_size must hold integers, got {image_size!r}")
    h, w = int(h), int(w)
    if h <= 0 or w <= 0:
        raise ValueError(f"image_size must be positive, got {image_size!r}")
    return h, w


def check_per_pixel(value: int, name: str) -> None:
    """Raises ValueError unless ``value`` (K, named ``name``) is an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def check_backend_name(backend: str) -> None:
    """Raises ValueError unless ``backend`` is one of :data:`BACKENDS`."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")


@functools.cache
def triton_installed() -> bool:
    """Whether triton can be imported (asked once per process)."""
    # find_spec, not import: importing triton takes a while and "auto" asks on every call.
    return importlib.util.find_spec("triton") is not None


def resolve_backend(backend: str, device: torch.device) -> str:
    """The backend that runs: "auto" is Numba for CPU tensors, Triton for CUDA tensors when
    triton is installed, the reference elsewhere; an explicit choice is checked against the
    device.

    Raises:
        ValueError: an unknown backend, or one that cannot run on ``device``.
    """
    check_backend_name(backend)
    if backend == "auto":
        if device.type == "cpu":
            return "numba"
        return "triton" if device.type == "cuda" and triton_installed() else "reference"
    if backend == "numba" and device.type != "cpu":
        raise ValueError(f"backend='numba' needs CPU tensors, got device {device}")
    if backend == "triton":
        check_triton_device(device)
    return backend


def check_triton_device(device: torch.device) -> None:
    """Raises ValueError unless backend="triton" can run on ``device``: triton installed,
    and CUDA tensors (or CPU tensors under ``TRITON_INTERPRET=1``, Triton's interpreter)."""
    interpret = os.environ.get("TRITON_INTERPRET", "0") == "1"
    if not triton_installed():
        raise ValueError("backend='triton' needs triton: pip install 'diffrend[triton]'")
    if not (device.type == "cuda" or (device.type == "cpu" and interpret)):
        raise ValueError(
            f"backend='triton' needs CUDA tensors (or CPU tensors with TRITON_INTERPRET=1 "
            f"set before triton is imported, Triton's slow interpreter), got device {device}"
        )


def kernel_module(kind: str, backend: str) -> ModuleType:
    """The kernel module of a rasterizer ("mesh" or "points") and backend ("numba" or
    "triton"), imported on first use (importing triton takes a while)."""
    return importlib.import_module(f"{__package__}.{kind}.{backend}")


class KernelRasterize(torch.autograd.Function):
    """Autograd glue for a kernel backend (see the module docstring): prims -> (index,
    *values), the index not differentiable."""

    @staticmethod
    def forward(ctx, kernels, prims, owner, n_images, aux, params):
        out = kernels.rasterize_forward(prims, owner, n_images, aux, params)
        ctx.save_for_backward(prims, out[0])
        ctx.kernels, ctx.params = kernels, params
        ctx.mark_non_differentiable(out[0])
        return out

    @staticmethod
    def backward(ctx, _grad_index, *grad_values):
        prims, index = ctx.saved_tensors
        grad = ctx.kernels.rasterize_backward(prims, index, *grad_values, ctx.params)
        return None, grad, None, None, None, None
