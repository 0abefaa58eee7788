"""``pytorch3d.renderer.mesh``: PyTorch3D's path, mapped onto diffrend's names.

Re-exports the submodules' names, as PyTorch3D's package does.
"""

from .clip import *  # noqa: F403
from .rasterize_meshes import *  # noqa: F403
from .rasterizer import *  # noqa: F403
from .renderer import *  # noqa: F403
from .shader import *  # noqa: F403
from .shading import *  # noqa: F403
from .textures import *  # noqa: F403

