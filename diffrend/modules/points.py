"""``PointsRenderer``: rasterize point clouds, weight the listed points, composite.

PyTorch3D's module: the rasterizer lists the K nearest points of each pixel (by depth) with
their squared distances ``d^2`` to the pixel centre; each gets the weight ``1 - d^2 / r^2``
(``r`` its radius), and the compositor mixes the points' features with those weights
(:mod:`diffrend.render.compositing`). Images come out channels-last, (N, H, W, C).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..render.compositing import point_weights

if TYPE_CHECKING:
    from ..cameras.base import CamerasBase


class PointsRenderer(nn.Module):
    """Render point clouds: rasterizer, then compositor.

    Args:
        rasterizer: a ``PointsRasterizer`` (its ``raster_settings.radius`` sets the weights).
        compositor: ``AlphaCompositor``, ``NormWeightedCompositor`` or
            ``WeightedSumCompositor``.
    """

    def __init__(self, rasterizer: nn.Module, compositor: nn.Module) -> None:
        super().__init__()
        self.rasterizer = rasterizer
        self.compositor = compositor

    def forward(
        self,
        point_clouds,
        cameras: CamerasBase | None = None,
        raster_settings=None,
        background_color: Sequence[float] | torch.Tensor | float | None = None,
    ) -> torch.Tensor:
        """Images (N, H, W, C) of ``point_clouds`` (a ``Pointclouds`` with C-channel
        features; one cloud with N cameras renders N images).

        Args:
            point_clouds: clouds in world space, with features.
            cameras, raster_settings: per-call overrides of the rasterizer's.
            background_color: per-call override of the compositor's.

        Returns:
            (N, H, W, C), differentiable w.r.t. the point positions (through the
            distances), the features and a radius tensor.

        Raises:
            ValueError: clouds without features.
        """
        if point_clouds.features_packed() is None:
            raise ValueError("point_clouds must have features (the colours to composite)")
        fragments = self.rasterizer(point_clouds, cameras=cameras,
                                    raster_settings=raster_settings)
        settings = raster_settings or self.rasterizer.raster_settings
        n = fragments.idx.shape[0]
        clouds = point_clouds.extend(n) if len(point_clouds) == 1 and n > 1 else point_clouds
        radius = settings.radius
        if isinstance(radius, torch.Tensor) and radius.ndim > 0 and len(point_clouds) == 1 \
                and n > 1:
            radius = radius.repeat(n)  # per-point radii follow the extended packing
        weights = point_weights(fragments.idx, fragments.dists, radius)
        images = self.compositor(fragments.idx.permute(0, 3, 1, 2),
                                 weights.permute(0, 3, 1, 2),
                                 clouds.features_packed().t(),
                                 background_color=background_color)
        return images.permute(0, 2, 3, 1)
