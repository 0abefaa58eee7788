"""``pytorch3d.vis``: PyTorch3D's path, mapped onto diffrend's names.

Re-exports the submodules' names, as PyTorch3D's package does.
"""

from .texture_vis import *  # noqa: F403

