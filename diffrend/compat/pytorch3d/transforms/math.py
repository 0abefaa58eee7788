"""``pytorch3d.transforms.math``: PyTorch3D's path, mapped onto diffrend's names."""


# not yet in diffrend: acos_linear_extrapolation

__all__ = [
]
