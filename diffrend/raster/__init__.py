"""Rasterization of meshes and point clouds: which primitives cover each pixel, with
differentiable depth (and barycentrics) and distances.

Layers (dependencies point down):

    rasterizers.py  MeshRasterizer, PointsRasterizer: the PyTorch3D-style modules (cameras +
                    settings; no logic of their own)
    mesh/, points/  one package per rasterizer, each with the same files:
        api.py          the public functions: checks, dispatch, autograd
        ndc.py          world -> NDC through the cameras (meshes_to_ndc / points_to_ndc)
        reference.py    pure-torch twin: the oracle, and the fallback on any device
        numba.py        Numba CPU kernels (backend "numba")
        triton.py       Triton backend (binning on the device, launches; backend "triton")
        triton_kernels.py  its @triton.jit kernels
      and mesh/pixel_math.py, the per (pixel, face) maths of the mesh's Numba kernels.

What both rasterizers share, once:

    backends.py     argument checks, the choice of backend, the kernels' autograd glue
    tiles.py        pixel centres, the tile grid, the references' pixel tiles
    numba_shared.py the Numba kernels' count pass of the binning, backward row bands
    triton_shared.py, triton_shared_kernels.py  Triton launch constants, device binning,
                    gradient buffers; K-best register slots, the tile-entries kernel
    fragments.py    result and settings records
    clip.py         near-plane clipping and frustum culling of faces (torch)
    gather.py       verts[faces] in one parallel pass
    projection.py   world/view points -> NDC for every camera kind
    memory.py       the fragment memory budget, checked before allocating
"""

from .backends import parse_image_size
from .fragments import (
    Fragments,
    PointFragments,
    PointsRasterizationSettings,
    RasterizationSettings,
)
from .mesh import meshes_to_ndc, rasterize_faces, rasterize_meshes
from .points import points_to_ndc, rasterize_points, rasterize_points_packed
from .rasterizers import MeshRasterizer, PointsRasterizer

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
