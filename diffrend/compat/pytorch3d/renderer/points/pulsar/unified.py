"""``pytorch3d.renderer.points.pulsar.unified``: see the package docstring."""

from diffrend.modules.pulsar import PulsarPointsRenderer

__all__ = ["PulsarPointsRenderer"]
