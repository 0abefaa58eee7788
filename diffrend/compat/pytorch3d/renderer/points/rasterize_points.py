"""``pytorch3d.renderer.points.rasterize_points``: PyTorch3D's path.

``rasterize_points`` is diffrend's, with PyTorch3D's ``bin_size`` check added (see
``pytorch3d.renderer.mesh.rasterize_meshes``); ``rasterize_points_python`` is diffrend's
pure-torch reference twin.
"""

from __future__ import annotations

import torch

from diffrend.raster import rasterize_points as _rasterize_points
from diffrend.raster.points.api import _packed_radius as _format_radius
from diffrend.structures import Pointclouds

from ..mesh.rasterize_meshes import check_bin_size

kMaxPointsPerBin = 22


def rasterize_points(
    pointclouds: Pointclouds,
    image_size: int | tuple[int, int] = 256,
    radius: float | torch.Tensor = 0.01,
    points_per_pixel: int = 8,
    bin_size: int | None = None,
    max_points_per_bin: int | None = None,
):
    """:func:`diffrend.rasterize_points` with PyTorch3D's ``bin_size`` check.

    Returns ``(idx, zbuf, dists)`` (a :class:`PointFragments`, which unpacks as that tuple).
    """
    check_bin_size(bin_size, image_size, kMaxPointsPerBin, "points")
    return _rasterize_points(pointclouds, image_size, radius, points_per_pixel, bin_size,
                             max_points_per_bin)


def rasterize_points_python(
    pointclouds: Pointclouds,
    image_size: int | tuple[int, int] = 256,
    radius: float | torch.Tensor = 0.01,
    points_per_pixel: int = 8,
):
    """The same rasterization by diffrend's pure-torch reference (``backend="reference"``)."""
    return _rasterize_points(pointclouds, image_size, radius, points_per_pixel,
                             backend="reference")


__all__ = ["_format_radius", "kMaxPointsPerBin", "rasterize_points", "rasterize_points_python"]
