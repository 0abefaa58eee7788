"""Mesh rasterization: which faces cover each pixel, with differentiable depth,
barycentrics and distances.

Layers (dependencies point down):
    rasterizer.py  MeshRasterizer, the PyTorch3D-style module (cameras + settings)
    api.py         rasterize_meshes / rasterize_faces: checks, clipping, dispatch, autograd
    clip.py        near-plane clipping and frustum culling (torch)
    reference.py   pure-torch rasterizer: the oracle, and the fallback on any device
    cpu.py         Numba kernels (forward, backward) over binning.py's exact tiles
    pixel_math.py  the per (pixel, face) maths the kernels share
"""

from .api import parse_image_size, rasterize_faces, rasterize_meshes
from .fragments import Fragments, RasterizationSettings
from .rasterizer import MeshRasterizer, meshes_to_ndc

__all__ = [
    "Fragments",
    "MeshRasterizer",
    "RasterizationSettings",
    "meshes_to_ndc",
    "parse_image_size",
    "rasterize_faces",
    "rasterize_meshes",
]
