"""``pytorch3d.common.compat``: PyTorch3D's path, mapped onto diffrend's names."""


# not yet in diffrend: meshgrid_ij, prod

__all__ = [
]
