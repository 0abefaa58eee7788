"""``pytorch3d.renderer.mesh.shader``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.renderer import (
    HardDepthShader,
    HardFlatShader,
    HardGouraudShader,
    HardPhongShader,
    SoftDepthShader,
    SoftGouraudShader,
    SoftPhongShader,
    SoftSilhouetteShader,
)

# not yet in diffrend: ShaderBase, TexturedSoftPhongShader, SplatterPhongShader

__all__ = [
    "HardDepthShader",
    "HardFlatShader",
    "HardGouraudShader",
    "HardPhongShader",
    "SoftDepthShader",
    "SoftGouraudShader",
    "SoftPhongShader",
    "SoftSilhouetteShader",
]
