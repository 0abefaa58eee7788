"""``pytorch3d.vis``: PyTorch3D's path, mapped onto diffrend's names.

Re-exports the submodules' names, as PyTorch3D's package does. plotly is imported only when
a figure is made, so this imports without it (PyTorch3D warns at import instead).
"""

from .plotly_vis import *  # noqa: F403
from .texture_vis import *  # noqa: F403
