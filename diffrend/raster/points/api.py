"""Public points rasterization functions: argument checks, backend dispatch, autograd.

``rasterize_points_packed`` is the functional core over plain tensors; ``rasterize_points``
is the PyTorch3D-compatible entry point taking a ``Pointclouds`` already in NDC space.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from ..backends import (
    KernelRasterize,
    check_per_pixel,
    kernel_module,
    parse_image_size,
    resolve_backend,
)
from ..fragments import PointFragments, PointsRasterParams
from ..memory import check_fragment_memory
from . import reference

if TYPE_CHECKING:
    from ...structures import Pointclouds


def _radius_tensor(radius: float | torch.Tensor, points: torch.Tensor,
                   check_values: bool = True) -> torch.Tensor:
    """(P,) detached radius in the points' dtype and device; raises on bad shapes and types,
    and on bad values unless ``check_values`` is False (a radius tensor's values are then
    left to the caller: checking them is a host sync on a GPU)."""
    P = points.shape[0]
    if torch.is_tensor(radius):
        if radius.ndim == 0:
            radius = radius.expand(P)
        if radius.shape != (P,):
            raise ValueError(
                f"radius must be of shape ({P},) (one per point) or a float, got shape "
                f"{tuple(radius.shape)}"
            )
        if not radius.dtype.is_floating_point:
            radius = radius.to(points.dtype)
        radius = radius.detach().to(device=points.device, dtype=points.dtype)
        if P and check_values:
            bad = torch.stack(((~torch.isfinite(radius)).any(), (radius < 0).any())).tolist()
            if bad[0]:
                raise ValueError("radius contains NaN or inf values")
            if bad[1]:
                raise ValueError("radius must be >= 0 (a negative radius was given)")
        return radius
    if isinstance(radius, bool) or not isinstance(radius, (int, float)):
        raise ValueError(f"radius must be a float, list, tuple or tensor, got "
                         f"{type(radius).__name__}")
    if not math.isfinite(radius):
        raise ValueError(f"radius must be a finite number, got {radius!r}")
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    return torch.full((P,), float(radius), dtype=points.dtype, device=points.device)


def _check_cloud_idx(cloud_idx: torch.Tensor, n_clouds: int) -> None:
    if cloud_idx.numel():
        lo, hi = cloud_idx.aminmax()
        lo, hi = int(lo), int(hi)
        if lo < -1 or hi >= n_clouds:
            raise ValueError(f"cloud_idx must lie in [-1, {n_clouds}), got [{lo}, {hi}]")


def rasterize_points_packed(
    points_ndc: torch.Tensor,
    cloud_idx: torch.Tensor,
    n_clouds: int,
    image_size: int | tuple[int, int] = 256,
    radius: float | torch.Tensor = 0.01,
    points_per_pixel: int = 8,
    backend: str = "auto",
) -> PointFragments:
    """Rasterize screen-space points as discs (the functional core).

    A point covers a pixel when its z >= 0 (points behind the camera are skipped) and the
    squared NDC distance from the pixel centre to its (x, y) is < radius**2 (strict, as in
    PyTorch3D). Each pixel keeps the K covering points nearest in depth, ascending by z,
    ties broken by the lower packed index.

    Args:
        points_ndc: (P, 3) float points; x, y in NDC (+X left, +Y up; the shorter image
            side spans [-1, 1]), z the view depth.
        cloud_idx: (P,) integer index of the image each point is drawn into (-1 = none).
        n_clouds: N, the number of images.
        image_size: int or (H, W).
        radius: disc radius in NDC units, a float (or 0-d tensor) or a (P,) tensor (each
            point its own); >= 0 (0 draws nothing). Not differentiable here.
        points_per_pixel: K >= 1 (no upper cap; may exceed P).
        backend: "auto" (Numba for CPU tensors, Triton for CUDA tensors when triton is
            installed, the reference elsewhere), "numba", "triton" (CUDA tensors; CPU
            tensors only under ``TRITON_INTERPRET=1``) or "reference".

    Returns:
        :class:`PointFragments` of (N, H, W, K) tensors: idx (int32, as PyTorch3D's;
        -1 empty), zbuf, dists (-1 empty). zbuf and dists are differentiable w.r.t.
        ``points_ndc`` (x, y, z); idx is not.

    Raises:
        ValueError: naming the argument, on bad shapes, NaN/inf points, a negative or
            non-finite radius, a radius tensor of the wrong length, points_per_pixel < 1,
            a bad image_size or backend.
    """
    H, W = parse_image_size(image_size)
    check_per_pixel(points_per_pixel, "points_per_pixel")
    if not torch.is_tensor(points_ndc) or points_ndc.ndim != 2 or points_ndc.shape[1] != 3:
        got = tuple(points_ndc.shape) if torch.is_tensor(points_ndc) else type(points_ndc)
        raise ValueError(f"points_ndc must have shape (P, 3), got {got}")
    if not points_ndc.is_floating_point():
        raise ValueError(f"points_ndc must be a float tensor, got {points_ndc.dtype}")
    P = points_ndc.shape[0]
    if P >= 2**31:
        raise ValueError(f"points_ndc has {P} points; at most 2**31 - 1 (int32 indices)")
    if not torch.is_tensor(cloud_idx) or cloud_idx.shape != (P,):
        got = tuple(cloud_idx.shape) if torch.is_tensor(cloud_idx) else type(cloud_idx)
        raise ValueError(f"cloud_idx must have shape ({P},), got {got}")
    if cloud_idx.is_floating_point() or cloud_idx.dtype == torch.bool:
        raise ValueError(f"cloud_idx must be an integer tensor, got {cloud_idx.dtype}")
    if isinstance(n_clouds, bool) or not isinstance(n_clouds, int) or n_clouds < 0:
        raise ValueError(f"n_clouds must be a non-negative int, got {n_clouds!r}")
    backend = resolve_backend(backend, points_ndc.device)
    # The Triton path counts bad values on the device, in its one host sync, and only on
    # failure runs these checks (each a sync on a GPU) to name the argument.
    host_checks = backend != "triton"
    radius_t = _radius_tensor(radius, points_ndc, check_values=host_checks)
    cloud_idx = cloud_idx.to(device=points_ndc.device, dtype=torch.int64)
    if host_checks:
        _check_cloud_idx(cloud_idx, n_clouds)
    params = PointsRasterParams((H, W), points_per_pixel)
    # Before any (N, H, W, K) allocation: a clear error instead of running out inside a kernel.
    check_fragment_memory(n_clouds, H, W, points_per_pixel, points_ndc.dtype, points_ndc.device,
                          "points", backward=torch.is_grad_enabled() and points_ndc.requires_grad)
    args = (points_ndc, cloud_idx, n_clouds, radius_t, params)
    if backend == "reference":
        if P and not bool(torch.isfinite(points_ndc).all()):
            raise ValueError("points_ndc contains NaN or inf (check the points and the camera)")
        idx, zbuf, dists = reference.rasterize_reference(*args)
    elif backend == "numba":
        if points_ndc.dtype not in (torch.float32, torch.float64):
            raise ValueError(f"backend='numba' needs float32 or float64 points, got "
                             f"{points_ndc.dtype}")
        # (the kernel's first pass raises on NaN/inf points, saving a pass here)
        idx, zbuf, dists = KernelRasterize.apply(kernel_module("points", "numba"), *args)
    else:
        try:
            idx, zbuf, dists = KernelRasterize.apply(kernel_module("points", "triton"), *args)
        except ValueError:
            # the binning found bad values: name the argument if the host checks can
            _radius_tensor(radius, points_ndc)
            _check_cloud_idx(cloud_idx, n_clouds)
            raise
    # PyTorch3D's point index is int32 (a pixel list holds K of them); P < 2**31 is checked
    # on entry.
    return PointFragments(idx=idx.to(torch.int32), zbuf=zbuf, dists=dists)


def _packed_radius(radius: float | torch.Tensor | list | tuple,
                   pointclouds: Pointclouds) -> float | torch.Tensor:
    """PyTorch3D's radius forms -> a float or a (sum P_i,) tensor.

    Raises:
        ValueError: a type other than a number, list, tuple or tensor; a padded radius whose
            shape is not (N, max P_i); a flat one whose length is not sum P_i.
    """
    if isinstance(radius, bool) or not isinstance(radius, (int, float, list, tuple)) and not (
        torch.is_tensor(radius)
    ):
        raise ValueError(f"radius must be a float, list, tuple or tensor, got "
                         f"{type(radius).__name__}")
    if isinstance(radius, (list, tuple)):
        radius = torch.tensor(radius, dtype=pointclouds.points_packed().dtype)
    if torch.is_tensor(radius) and radius.ndim == 2:
        n, p = len(pointclouds), int(pointclouds.num_points_per_cloud().max()) if len(
            pointclouds) else 0
        if tuple(radius.shape) != (n, p):
            raise ValueError(f"radius must be of shape ({n}, {p}) when padded, got "
                             f"{tuple(radius.shape)}")
        idx = pointclouds.padded_to_packed_idx().to(radius.device)
        return radius.reshape(-1)[idx]
    if torch.is_tensor(radius) and radius.ndim == 1:
        total = pointclouds.points_packed().shape[0]
        if radius.shape[0] != total:
            raise ValueError(f"radius must be of shape ({total},) (one per packed point), "
                             f"got {tuple(radius.shape)}")
    return radius


def rasterize_points(
    pointclouds: Pointclouds,
    image_size: int | tuple[int, int] = 256,
    radius: float | torch.Tensor = 0.01,
    points_per_pixel: int = 8,
    bin_size: int | None = None,
    max_points_per_bin: int | None = None,
    backend: str = "auto",
) -> PointFragments:
    """Rasterize a batch of point clouds already in NDC (PyTorch3D's signature).

    Args:
        pointclouds: ``Pointclouds`` of N clouds; x, y in NDC, z the view depth (what
            ``PointsRasterizer.transform`` produces).
        radius: a float, a (sum P_i,) tensor (one per packed point), or PyTorch3D's
            (N, max P_i) padded tensor (or a list of it).
        bin_size, max_points_per_bin: accepted for compatibility and ignored: binning here
            counts before it fills, so it never runs out of room.
        The other arguments are those of :func:`rasterize_points_packed`.

    Returns:
        :class:`PointFragments`; idx indexes ``pointclouds.points_packed()``. zbuf and dists
        are differentiable w.r.t. the points.
    """
    del bin_size, max_points_per_bin
    return rasterize_points_packed(
        pointclouds.points_packed(),
        pointclouds.packed_to_cloud_idx(),
        len(pointclouds),
        image_size=image_size,
        radius=_packed_radius(radius, pointclouds),
        points_per_pixel=points_per_pixel,
        backend=backend,
    )
