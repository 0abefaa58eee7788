"""``pytorch3d.structures``: PyTorch3D's path, mapped onto diffrend's names.

Re-exports the submodules' names, as PyTorch3D's package does.
"""

from .meshes import *  # noqa: F403
from .pointclouds import *  # noqa: F403
from .utils import *  # noqa: F403

# PyTorch3D's package also imports: volumes
