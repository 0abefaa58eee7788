"""``pytorch3d.renderer.fisheyecameras``: PyTorch3D's path, mapped onto diffrend's names."""


# not yet in diffrend: FishEyeCameras

__all__ = [
]
