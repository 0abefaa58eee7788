"""``pytorch3d.transforms``: PyTorch3D's path, mapped onto diffrend's names.

Re-exports the submodules' names, as PyTorch3D's package does.
"""

from .math import *  # noqa: F403
from .rotation_conversions import *  # noqa: F403
from .se3 import *  # noqa: F403
from .so3 import *  # noqa: F403
from .transform3d import *  # noqa: F403

