"""``pytorch3d.renderer.mesh.rasterize_meshes``: PyTorch3D's path.

``rasterize_meshes`` is diffrend's, with one PyTorch3D behaviour added: a ``bin_size`` that
PyTorch3D's binned kernel refuses (22 or more bins along the longer side) raises here too,
although diffrend's binning has no such limit. ``rasterize_meshes_python`` is the pure-torch
reference twin of diffrend's kernels.
"""

from __future__ import annotations

import torch

from diffrend.raster import parse_image_size
from diffrend.raster import rasterize_meshes as _rasterize_meshes
from diffrend.raster.mesh.pixel_math import KEPS as kEpsilon
from diffrend.raster.mesh.reference import barycentric_coordinates, edge_function
from diffrend.structures import Meshes

# PyTorch3D's binned kernels hold at most this many bins along a side.
kMaxFacesPerBin = 22


def check_bin_size(bin_size: int | None, image_size, limit: int, what: str) -> None:
    """Raise ValueError("bin_size too small ...") where PyTorch3D's binned kernel would."""
    if bin_size is None or bin_size == 0:
        return
    if isinstance(bin_size, bool) or not isinstance(bin_size, int) or bin_size < 0:
        raise ValueError(f"bin_size must be None or an int >= 0, got {bin_size!r}")
    bins = 1 + (max(parse_image_size(image_size)) - 1) // bin_size
    if bins >= limit:
        raise ValueError(f"bin_size too small, number of {what} per bin must be less than "
                         f"{limit}; got {bins}")


def rasterize_meshes(
    meshes: Meshes,
    image_size: int | tuple[int, int] = 256,
    blur_radius: float = 0.0,
    faces_per_pixel: int = 8,
    bin_size: int | None = None,
    max_faces_per_bin: int | None = None,
    perspective_correct: bool = False,
    clip_barycentric_coords: bool = False,
    cull_backfaces: bool = False,
    z_clip_value: float | torch.Tensor | None = None,
    cull_to_frustum: bool = False,
):
    """:func:`diffrend.rasterize_meshes` with PyTorch3D's ``bin_size`` check.

    Returns ``(pix_to_face, zbuf, bary_coords, dists)`` (a :class:`Fragments`, which unpacks
    as that tuple).
    """
    check_bin_size(bin_size, image_size, kMaxFacesPerBin, "faces")
    return _rasterize_meshes(
        meshes, image_size, blur_radius, faces_per_pixel, bin_size, max_faces_per_bin,
        perspective_correct, clip_barycentric_coords, cull_backfaces, z_clip_value,
        cull_to_frustum,
    )


def rasterize_meshes_python(
    meshes: Meshes,
    image_size: int | tuple[int, int] = 256,
    blur_radius: float = 0.0,
    faces_per_pixel: int = 8,
    perspective_correct: bool = False,
    clip_barycentric_coords: bool = False,
    cull_backfaces: bool = False,
    z_clip_value: float | torch.Tensor | None = None,
    cull_to_frustum: bool = True,
):
    """The same rasterization by diffrend's pure-torch reference (``backend="reference"``)."""
    return _rasterize_meshes(
        meshes, image_size, blur_radius, faces_per_pixel, None, None, perspective_correct,
        clip_barycentric_coords, cull_backfaces, z_clip_value, cull_to_frustum,
        backend="reference",
    )


__all__ = [
    "barycentric_coordinates",
    "edge_function",
    "kEpsilon",
    "kMaxFacesPerBin",
    "rasterize_meshes",
    "rasterize_meshes_python",
]
