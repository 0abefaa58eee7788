"""Ways to get silhouette gradients from a hard render (the gradient lab, issue 5).

So far: :func:`antialias` (nvdiffrast-style analytic edge antialiasing), and
:func:`render_silhouette`, which renders with ``"soft"``, ``"hard"`` or ``"antialias"``
gradients behind one switch.
"""

from .antialias import antialias, antialias_render
from .methods import METHODS, render_silhouette, supersampled_silhouette

__all__ = [
    "METHODS",
    "antialias",
    "antialias_render",
    "render_silhouette",
    "supersampled_silhouette",
]
