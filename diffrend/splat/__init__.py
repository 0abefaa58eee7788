"""Soft primitives splatted by depth: 3D Gaussian splatting with gsplat's conventions
(:func:`rasterization` and its stages) and Pulsar's sphere renderer (:func:`render_spheres`).

Gaussian stages: :func:`project_gaussians` (EWA projection), :func:`spherical_harmonics`
(view-dependent colour), :func:`isect_tiles` / :func:`isect_offset_encode` (tile lists sorted
by depth) and :func:`rasterize_to_pixels` (front-to-back alpha compositing). Spheres:
:mod:`.pulsar` (depth-weighted normalised blending, PyTorch3D's ``pulsar.Renderer`` maths).
Surfels (2D Gaussian splatting): :func:`rasterization_2dgs` and its stages
:func:`project_surfels` and :func:`rasterize_to_pixels_2dgs` (:mod:`.twodgs`).
Each has a pure-torch twin (``*_reference``) and Numba kernels (``*_numba``).
"""

from .api import rasterization
from .composite import rasterize_to_pixels
from .intersect import isect_offset_encode, isect_tiles
from .projection import project_gaussians
from .pulsar import render_spheres
from .sh import spherical_harmonics
from .twodgs import project_surfels, rasterization_2dgs, rasterize_to_pixels_2dgs

__all__ = [
    "isect_offset_encode",
    "isect_tiles",
    "project_gaussians",
    "project_surfels",
    "rasterization",
    "rasterization_2dgs",
    "rasterize_to_pixels",
    "rasterize_to_pixels_2dgs",
    "render_spheres",
    "spherical_harmonics",
]
