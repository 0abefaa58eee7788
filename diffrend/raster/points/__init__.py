"""The points rasterizer: which points' discs cover each pixel, with differentiable depth
and distances. The same files as :mod:`..mesh`:

    api.py            rasterize_points / rasterize_points_packed: checks, dispatch, autograd
    ndc.py            points_to_ndc (world -> NDC)
    reference.py      pure-torch rasterizer: the oracle, and the fallback on any device
    numba.py          Numba CPU kernels (binning, forward, backward)
    triton.py         Triton backend (binning on the device, launches) of triton_kernels.py
"""

from .api import rasterize_points, rasterize_points_packed
from .ndc import points_to_ndc

__all__ = ["points_to_ndc", "rasterize_points", "rasterize_points_packed"]
