"""``pytorch3d.renderer.points.pulsar``: PyTorch3D's sphere renderer, mapped onto diffrend's
:mod:`diffrend.modules.pulsar` (Numba on the CPU, the torch twin elsewhere)."""

from .renderer import Renderer
from .unified import PulsarPointsRenderer

__all__ = ["PulsarPointsRenderer", "Renderer"]
