"""``pytorch3d.renderer.points``: PyTorch3D's path, mapped onto diffrend's names.

Re-exports the submodules' names, as PyTorch3D's package does.
"""

from .compositor import *  # noqa: F403
from .pulsar import PulsarPointsRenderer  # noqa: F401
from .rasterize_points import *  # noqa: F403
from .rasterizer import *  # noqa: F403
from .renderer import *  # noqa: F403
