"""``pytorch3d.utils.checkerboard``: PyTorch3D's path, mapped onto diffrend's names."""


# not yet in diffrend: checkerboard

__all__ = [
]
