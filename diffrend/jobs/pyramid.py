"""A texture map held as a pyramid of images: the parameterisation of the texture fits.

Texels are found through bilinear texture sampling, whose gradient reaches only the four
texels around each sample: a texel that no pixel samples never changes, and a texture much
finer than the pixels that see it learns as a sparse speckle. The texture is therefore the
sum of a pyramid of images at halving resolutions (each upsampled to full size): coarse
levels fill in what the pixels do not sample, fine levels add detail where they do. Used by
:func:`~diffrend.jobs.fit_texture` and by :func:`~diffrend.jobs.fit_mesh` with
``colors="texture"``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def grey_pyramid(size: int, levels: int, device: torch.device | str) -> list[torch.Tensor]:
    """``levels`` zero images ``(3, size >> l, size >> l)`` but the coarsest, which is 0.5:
    a uniform grey texture, all in the coarsest level."""
    pyramid = [torch.zeros(3, max(1, size >> i), max(1, size >> i), device=device)
               for i in range(levels)]
    pyramid[-1].fill_(0.5)
    return pyramid


def pyramid_texture(levels: list[torch.Tensor], size: int) -> torch.Tensor:
    """Sum of pyramid levels ``(3, s_l, s_l)`` upsampled to ``(size, size, 3)``, in [0, 1].

    Differentiable w.r.t. every level. The clamp to [0, 1] passes gradients straight through:
    a plain clamp gives a texel whose sum left [0, 1] zero gradient in that channel, and the
    channel then stays stuck (a grey texel pushed past white stays tinted).
    """
    total = 0
    for level in levels:
        up = level[None] if level.shape[-1] == size else F.interpolate(
            level[None], size=(size, size), mode="bilinear", align_corners=False)
        total = total + up
    total = total[0].permute(1, 2, 0)
    return total + (total.clamp(0.0, 1.0) - total).detach()
