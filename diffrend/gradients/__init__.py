"""Ways to get silhouette gradients from a hard render (the gradient lab, issue 5).

So far: :func:`antialias` (nvdiffrast-style analytic edge antialiasing),
:func:`nmr_silhouette` (Neural Mesh Renderer's backward rule), :func:`opendr_silhouette`
(OpenDR's), and :func:`render_silhouette`, which renders with ``"soft"``, ``"hard"``,
``"antialias"``, ``"nmr"`` or ``"opendr"`` gradients behind one switch;
:func:`supersampled_silhouette` is the ground truth they are measured against.
"""

from .antialias import antialias, antialias_render
from .methods import METHODS, render_silhouette, supersampled_silhouette
from .nmr import nmr_silhouette, nmr_silhouette_faces
from .opendr import opendr_silhouette, opendr_silhouette_faces

__all__ = [
    "METHODS",
    "antialias",
    "antialias_render",
    "nmr_silhouette",
    "nmr_silhouette_faces",
    "opendr_silhouette",
    "opendr_silhouette_faces",
    "render_silhouette",
    "supersampled_silhouette",
]
