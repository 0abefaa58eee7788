"""``pytorch3d.renderer``: PyTorch3D's path, mapped onto diffrend's names.

Re-exports the submodules' names, as PyTorch3D's package does.
"""

from .blending import *  # noqa: F403
from .camera_utils import *  # noqa: F403
from .cameras import *  # noqa: F403
from .implicit import *  # noqa: F403
from .lighting import *  # noqa: F403
from .materials import *  # noqa: F403
from .mesh import *  # noqa: F403
from .points import *  # noqa: F403
from .splatter_blend import *  # noqa: F403
from .utils import *  # noqa: F403

