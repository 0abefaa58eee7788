"""Ways to get silhouette gradients from a hard render (the gradient lab, issue 5).

Edge passes on a hard render, for any image (silhouette or shaded): :func:`antialias`
(nvdiffrast-style analytic edge antialiasing), :func:`nmr` (Neural Mesh Renderer's backward
rule), :func:`opendr` (OpenDR's), each with a ``*_render`` form taking fragments, meshes and
cameras. The SoftRas options live in :class:`~diffrend.BlendParams`. The shaders take
``gradient_method=`` (:data:`METHODS`); :func:`render_silhouette` renders silhouettes with any
of them, and :func:`supersampled_silhouette` is the ground truth they are measured against.
The lab that compares them is :mod:`diffrend.gradlab`.
"""

from .antialias import antialias, antialias_render
from .methods import (
    METHODS,
    check_gradient_method,
    edge_gradient,
    render_silhouette,
    supersampled_silhouette,
)
from .nmr import nmr, nmr_render, nmr_silhouette, nmr_silhouette_faces
from .opendr import opendr, opendr_render, opendr_silhouette, opendr_silhouette_faces

__all__ = [
    "METHODS",
    "antialias",
    "antialias_render",
    "check_gradient_method",
    "edge_gradient",
    "nmr",
    "nmr_render",
    "nmr_silhouette",
    "nmr_silhouette_faces",
    "opendr",
    "opendr_render",
    "opendr_silhouette",
    "opendr_silhouette_faces",
    "render_silhouette",
    "supersampled_silhouette",
]
