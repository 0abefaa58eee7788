"""``pytorch3d.renderer.mesh.shader``: PyTorch3D's path, mapped onto diffrend's names."""

import warnings

from diffrend.modules.mesh import (
    HardDepthShader,
    HardFlatShader,
    HardGouraudShader,
    HardPhongShader,
    ShaderBase,
    SoftDepthShader,
    SoftGouraudShader,
    SoftPhongShader,
    SoftSilhouetteShader,
)
from diffrend.modules.splatter import SplatterPhongShader
from diffrend.render.blend import BlendParams


class TexturedSoftPhongShader(SoftPhongShader):
    """PyTorch3D's deprecated name for :class:`SoftPhongShader` (it warns, then is one)."""

    def __init__(self, device="cpu", cameras=None, lights=None, materials=None,
                 blend_params=None) -> None:
        warnings.warn("TexturedSoftPhongShader is now SoftPhongShader; use that name",
                      PendingDeprecationWarning, stacklevel=2)
        super().__init__(device, cameras, lights, materials, blend_params)


__all__ = [
    "BlendParams",
    "HardDepthShader",
    "HardFlatShader",
    "HardGouraudShader",
    "HardPhongShader",
    "ShaderBase",
    "SoftDepthShader",
    "SoftGouraudShader",
    "SoftPhongShader",
    "SoftSilhouetteShader",
    "SplatterPhongShader",
    "TexturedSoftPhongShader",
]
