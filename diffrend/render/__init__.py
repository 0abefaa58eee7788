"""From fragments to images: blending, compositing, fragment compaction, shading dispatch.

Layers (dependencies point down; everything here is plain differentiable torch except the
fused blending kernels):

    dispatch.py       shade_fragments: a shading mode times a blending mode (mesh shaders)
    compact.py        keep only the (pixel, face) entries a blend reads, before shading
    blend.py          SoftRas / hard blending of K faces per pixel (BlendParams), with
                      pure-torch references of the fused kernels
    blend_kernels.py  Numba kernels of the soft blends (CPU)
    compositing.py    point-cloud compositors (alpha, weighted sum, normalised)
    splatter.py       PyTorch3D's splatting blend (SplatterBlender)

Below: :mod:`diffrend.shading` (lights, materials, textures, shading functions) and
:mod:`diffrend.raster` (fragments). Above: :mod:`diffrend.gradients` (edge passes over a
hard render) and :mod:`diffrend.modules` (the nn.Module shells).
"""

from .blend import (
    BlendParams,
    hard_rgb_blend,
    sigmoid_alpha_blend,
    softmax_rgb_blend,
)
from .compositing import (
    AlphaCompositor,
    NormWeightedCompositor,
    WeightedSumCompositor,
    alpha_composite,
    norm_weighted_sum,
    weighted_sum,
)
from .dispatch import BLENDS, SHADINGS, Scene, shade_fragments
from .splatter import SplatterBlender

__all__ = [
    "BLENDS",
    "SHADINGS",
    "AlphaCompositor",
    "BlendParams",
    "NormWeightedCompositor",
    "Scene",
    "SplatterBlender",
    "WeightedSumCompositor",
    "alpha_composite",
    "hard_rgb_blend",
    "norm_weighted_sum",
    "shade_fragments",
    "sigmoid_alpha_blend",
    "softmax_rgb_blend",
    "weighted_sum",
]
