"""``pytorch3d.renderer.splatter_blend``: PyTorch3D's path, mapped onto diffrend's names.

The private stage functions are re-exported under PyTorch3D's names (its tests import them).
Deviation: PyTorch3D's ``_compute_occlusion_layers`` lists the 3x3 neighbours with the
first offset along rows, while its splatting puts the first offset along columns, so its
blender links each splat to the occlusion layers of the transposed neighbour. diffrend's
:func:`~diffrend.render.splatter.splat_occlusion_layers` uses the splatting's order (and so does
``SplatterBlender``); only this re-export lists PyTorch3D's order. The images differ only
where K > 1 layers meet at a depth edge.
"""

import torch

from diffrend.render.splatter import (
    SplatterBlender,
    accumulate_splats,
    compose_splat_layers,
    prepare_splat_inputs,
    shift_splats,
    splat_colors_and_weights,
    splat_kernel_normalization,
    splat_occlusion_layers,
    splat_shift_indices,
)

_precompute = splat_shift_indices
_prepare_pixels_and_colors = prepare_splat_inputs
_get_splat_kernel_normalization = splat_kernel_normalization
_compute_splatting_colors_and_weights = splat_colors_and_weights
_offset_splats = shift_splats
_compute_splatted_colors_and_weights = accumulate_splats
_normalize_and_compose_all_layers = compose_splat_layers

# Direction (dx, dy) <-> (dy, dx): an involution of the 9 directions.
_TRANSPOSED = (0, 3, 6, 1, 4, 7, 2, 5, 8)


def _compute_occlusion_layers(q_depth: torch.Tensor) -> torch.Tensor:
    """PyTorch3D's order of :func:`~diffrend.render.splatter.splat_occlusion_layers`,
    (N, H, W, 9)."""
    return splat_occlusion_layers(q_depth)[..., _TRANSPOSED]


__all__ = [
    "SplatterBlender",
]
