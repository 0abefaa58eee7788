"""``pytorch3d.renderer.points.pulsar.unified``: see the package docstring."""


class PulsarPointsRenderer:
    """PyTorch3D's Pulsar points renderer: not available in diffrend yet (issue 20)."""

    def __init__(self, *args, **kwargs) -> None:
        raise NotImplementedError(
            "PulsarPointsRenderer: diffrend has no Pulsar sphere renderer yet (planned); use "
            "PointsRenderer with PointsRasterizer and AlphaCompositor"
        )


__all__ = ["PulsarPointsRenderer"]
