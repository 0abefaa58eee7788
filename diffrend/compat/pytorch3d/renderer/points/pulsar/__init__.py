"""``pytorch3d.renderer.points.pulsar``: PyTorch3D's sphere renderer. Not in diffrend yet.

diffrend's sphere renderer is planned (issue 20). Until then ``PulsarPointsRenderer`` and
``Renderer`` exist so that files importing them load, and raise NotImplementedError, saying
so, when built.
"""

from .unified import PulsarPointsRenderer


class Renderer:
    """PyTorch3D's low-level Pulsar renderer: not available in diffrend yet (issue 20)."""

    def __init__(self, *args, **kwargs) -> None:
        raise NotImplementedError(
            "pulsar Renderer: diffrend has no Pulsar sphere renderer yet (planned); use "
            "PointsRenderer with PointsRasterizer and AlphaCompositor"
        )


__all__ = ["PulsarPointsRenderer", "Renderer"]
