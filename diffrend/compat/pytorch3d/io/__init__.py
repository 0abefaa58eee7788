"""``pytorch3d.io``: PyTorch3D's path, mapped onto diffrend's names.

Re-exports the submodules' names, as PyTorch3D's package does.
"""

from .obj_io import *  # noqa: F403
from .pluggable import *  # noqa: F403
from .ply_io import *  # noqa: F403

