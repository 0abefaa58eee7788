"""``pytorch3d.renderer.implicit``: PyTorch3D's path, mapped onto diffrend's names.

Only the ray-bundle records and helpers are here; PyTorch3D's ray samplers, ray marchers
and implicit/volume renderers are not in diffrend.
"""

from .utils import *  # noqa: F403
