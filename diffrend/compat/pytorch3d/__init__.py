"""``pytorch3d``: PyTorch3D's public module paths mapped onto diffrend's names.

Import from here (``from diffrend.compat.pytorch3d.renderer import MeshRasterizer``), or call
:func:`diffrend.compat.install_pytorch3d` once so that ``import pytorch3d`` finds this package
and an unchanged PyTorch3D script runs. The modules below hold no rendering logic of their own;
what PyTorch3D has and diffrend lacked was added to diffrend itself.
"""

# The PyTorch3D release whose API and test suite this package is measured against.
__version__ = "0.7.9"
