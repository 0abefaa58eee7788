"""``pytorch3d.renderer.points.compositor``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.render.compositing import (
    AlphaCompositor,
    NormWeightedCompositor,
)

__all__ = [
    "AlphaCompositor",
    "NormWeightedCompositor",
]
