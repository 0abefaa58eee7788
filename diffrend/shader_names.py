"""The shader names of ``diffrend render``, in a module that imports nothing heavy.

``diffrend.cli`` builds its ``--shader`` choices from these at import time, so they live apart
from :mod:`diffrend.jobs.preview` (which imports torch and the renderer): ``diffrend --help`` then
starts without torch.
"""

from __future__ import annotations

# name -> (shading, blend, needs a soft rasterizer)
SHADERS: dict[str, tuple[str, str, bool]] = {
    "hard-phong": ("phong", "hard", False),
    "soft-phong": ("phong", "softmax", True),
    "hard-gouraud": ("gouraud", "hard", False),
    "hard-flat": ("flat", "hard", False),
    "silhouette": ("silhouette", "sigmoid", True),
    "normals": ("normals", "hard", False),
    "depth": ("depth", "hard", False),
}
# The shaders of the side-by-side comparison (shaders.png).
COMPARE = ("hard-phong", "soft-phong", "silhouette", "normals", "depth")
