"""Ways to get silhouette gradients from a hard render (the gradient lab, issue 5).

So far: :func:`antialias` (nvdiffrast-style analytic edge antialiasing).
"""

from .antialias import antialias, antialias_render

__all__ = ["antialias", "antialias_render"]
