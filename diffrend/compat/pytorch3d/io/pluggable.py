"""``pytorch3d.io.pluggable``: PyTorch3D's path, mapped onto diffrend's names."""


# not yet in diffrend: IO

__all__ = [
]
