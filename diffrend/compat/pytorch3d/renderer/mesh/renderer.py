"""``pytorch3d.renderer.mesh.renderer``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.renderer import (
    MeshRenderer,
    MeshRendererWithFragments,
)

__all__ = [
    "MeshRenderer",
    "MeshRendererWithFragments",
]
