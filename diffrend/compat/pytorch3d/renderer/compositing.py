"""``pytorch3d.renderer.compositing``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.render.compositing import (
    alpha_composite,
    norm_weighted_sum,
    weighted_sum,
)

__all__ = [
    "alpha_composite",
    "norm_weighted_sum",
    "weighted_sum",
]
