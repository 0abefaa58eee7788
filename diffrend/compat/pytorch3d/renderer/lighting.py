"""``pytorch3d.renderer.lighting``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.renderer import (
    PointLights,
)
from diffrend.shading import (
    AmbientLights,
    DirectionalLights,
    diffuse,
    specular,
)

__all__ = [
    "AmbientLights",
    "DirectionalLights",
    "PointLights",
    "diffuse",
    "specular",
]
