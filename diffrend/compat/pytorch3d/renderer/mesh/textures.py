"""``pytorch3d.renderer.mesh.textures``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.shading import (
    TexturesAtlas,
    TexturesBase,
    TexturesUV,
    TexturesVertex,
)

# not yet in diffrend: Textures

__all__ = [
    "TexturesAtlas",
    "TexturesBase",
    "TexturesUV",
    "TexturesVertex",
]
