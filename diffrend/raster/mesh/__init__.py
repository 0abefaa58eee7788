"""The mesh rasterizer: which faces cover each pixel, with differentiable depth,
barycentrics and distances.

    api.py            rasterize_faces / rasterize_meshes: checks, clipping, dispatch, autograd
    ndc.py            meshes_to_ndc (world -> NDC), resolve_settings (PyTorch3D's defaults)
    reference.py      pure-torch rasterizer: the oracle, and the fallback on any device
    numba.py          Numba CPU kernels (binning, forward, backward)
    triton.py         Triton backend (binning on the device, launches) of triton_kernels.py
    pixel_math.py     the per (pixel, face) maths of the Numba kernels
"""

from .api import rasterize_faces, rasterize_meshes
from .ndc import meshes_to_ndc, resolve_settings

__all__ = ["meshes_to_ndc", "rasterize_faces", "rasterize_meshes", "resolve_settings"]
