"""``pytorch3d.renderer.fisheyecameras``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.cameras import (
    FishEyeCameras,
)

__all__ = [
    "FishEyeCameras",
]
