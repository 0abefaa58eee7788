"""``pytorch3d.utils.torus``: PyTorch3D's path, mapped onto diffrend's names."""


# not yet in diffrend: torus

__all__ = [
]
