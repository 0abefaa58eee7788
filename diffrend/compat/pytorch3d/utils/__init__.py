"""``pytorch3d.utils``: PyTorch3D's path, mapped onto diffrend's names.

Re-exports the submodules' names, as PyTorch3D's package does.
"""

from .camera_conversions import *  # noqa: F403
from .checkerboard import *  # noqa: F403
from .ico_sphere import *  # noqa: F403
from .torus import *  # noqa: F403

