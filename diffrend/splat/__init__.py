"""3D Gaussian splatting with gsplat's conventions: :func:`rasterization` and its stages.

Stages: :func:`project_gaussians` (EWA projection), :func:`spherical_harmonics` (view-dependent
colour), :func:`isect_tiles` / :func:`isect_offset_encode` (tile lists sorted by depth) and
:func:`rasterize_to_pixels` (front-to-back alpha compositing).
"""

from .api import rasterization
from .composite import rasterize_to_pixels
from .intersect import isect_offset_encode, isect_tiles
from .projection import project_gaussians
from .sh import spherical_harmonics

__all__ = [
    "isect_offset_encode",
    "isect_tiles",
    "project_gaussians",
    "rasterization",
    "rasterize_to_pixels",
    "spherical_harmonics",
]
