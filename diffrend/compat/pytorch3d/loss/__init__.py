"""``pytorch3d.loss``: PyTorch3D's path, mapped onto diffrend's names.

Re-exports the submodules' names, as PyTorch3D's package does.
"""

from .chamfer import *  # noqa: F403
from .mesh_edge_loss import *  # noqa: F403
from .mesh_laplacian_smoothing import *  # noqa: F403
from .mesh_normal_consistency import *  # noqa: F403

# PyTorch3D's package also imports: point_mesh_distance
