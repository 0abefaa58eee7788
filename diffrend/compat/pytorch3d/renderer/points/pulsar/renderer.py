"""``pytorch3d.renderer.points.pulsar.renderer``: see the package docstring."""

from diffrend.modules.pulsar import PulsarRenderer as Renderer

__all__ = ["Renderer"]
