"""``pytorch3d.common``: PyTorch3D's path, mapped onto diffrend's names.

Re-exports the submodules' names, as PyTorch3D's package does.
"""

from .datatypes import *  # noqa: F403

