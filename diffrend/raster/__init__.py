"""Mesh rasterization: which faces cover each pixel, with differentiable depth,
barycentrics and distances.

Layers (dependencies point down):
    rasterizer.py  MeshRasterizer, the PyTorch3D-style module (cameras + settings)
    api.py         rasterize_meshes / rasterize_faces: checks, clipping, dispatch, autograd
    clip.py        near-plane clipping and frustum culling (torch)
    reference.py   pure-torch rasterizer: the oracle, and the fallback on any device
    cpu.py         Numba kernels (forward, backward) over binning.py's exact tiles
    pixel_math.py  the per (pixel, face) maths the kernels share

Point clouds, the same layers:
    points_rasterizer.py  PointsRasterizer, points_to_ndc
    points_api.py         rasterize_points / rasterize_points_packed: checks, dispatch, autograd
    points_reference.py   pure-torch points rasterizer (oracle and fallback)
    points_cpu.py         Numba kernels (forward, backward), binned like the mesh kernels
    points_cuda.py        Triton backend (binning on the device, launches) of points_triton.py
"""

from .api import parse_image_size, rasterize_faces, rasterize_meshes
from .fragments import (
    Fragments,
    PointFragments,
    PointsRasterizationSettings,
    RasterizationSettings,
)
from .points_api import rasterize_points, rasterize_points_packed
from .points_rasterizer import PointsRasterizer, points_to_ndc
from .rasterizer import MeshRasterizer, meshes_to_ndc

__all__ = [
    "Fragments",
    "MeshRasterizer",
    "PointFragments",
    "PointsRasterizationSettings",
    "PointsRasterizer",
    "RasterizationSettings",
    "meshes_to_ndc",
    "parse_image_size",
    "points_to_ndc",
    "rasterize_faces",
    "rasterize_meshes",
    "rasterize_points",
    "rasterize_points_packed",
]
