"""``pytorch3d.renderer.blending``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.render.blend import (
    BlendParams,
    hard_rgb_blend,
    sigmoid_alpha_blend,
    softmax_rgb_blend,
)

__all__ = [
    "BlendParams",
    "hard_rgb_blend",
    "sigmoid_alpha_blend",
    "softmax_rgb_blend",
]
