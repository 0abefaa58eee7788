"""PointsRenderer end to end against PyTorch3D's goldens; per-call overrides; errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import GOLDEN

from diffrend import FoVPerspectiveCameras
from diffrend.modules.points import PointsRenderer
from diffrend.raster import PointsRasterizationSettings, PointsRasterizer
from diffrend.render.compositing import AlphaCompositor, NormWeightedCompositor
from diffrend.structures import Pointclouds


def golden(name):
    d = np.load(GOLDEN / f"{name}.npz")
    cam = FoVPerspectiveCameras(R=torch.from_numpy(d["cam_R"]), T=torch.from_numpy(d["cam_T"]),
                                fov=float(d["cam_fov"]))
    return d, cam


def renderer(cam, compositor, radius=0.03):
    settings = PointsRasterizationSettings(image_size=64, radius=radius, points_per_pixel=8)
    return PointsRenderer(PointsRasterizer(cameras=cam, raster_settings=settings), compositor)


@pytest.mark.parametrize("name, compositor", [("points_alpha", AlphaCompositor),
                                              ("points_norm_weighted", NormWeightedCompositor)])
def test_golden_image_and_gradients(name, compositor):
    d, cam = golden(name)
    pts = torch.from_numpy(d["points"][0]).requires_grad_(True)
    col = torch.from_numpy(d["colors"][0]).requires_grad_(True)
    img = renderer(cam, compositor())(Pointclouds(points=[pts], features=[col]))
    # Measured max |difference| 1.1e-5 (image), 2.6e-5 of the largest point gradient: the
    # projection's float32 rounding differs slightly from PyTorch3D's.
    torch.testing.assert_close(img, torch.from_numpy(d["image"]), rtol=1e-4, atol=5e-5)
    gp, gc = torch.autograd.grad((img * torch.from_numpy(d["upstream"])).sum(), [pts, col])
    scale = float(np.abs(d["grad_points"]).max())
    assert float((gp - torch.from_numpy(d["grad_points"][0])).abs().max()) < 1e-4 * scale
    torch.testing.assert_close(gc, torch.from_numpy(d["grad_colors"][0]), rtol=1e-4,
                               atol=1e-4)


def test_batches_background_and_radius_gradient():
    d, cam = golden("points_alpha")
    pts = torch.from_numpy(d["points"][0])
    col = torch.from_numpy(d["colors"][0])
    cams = FoVPerspectiveCameras(R=cam.R.expand(2, 3, 3), T=cam.T.expand(2, 3))
    imgs = renderer(cams, AlphaCompositor())(Pointclouds(points=[pts], features=[col]))
    assert imgs.shape == (2, 64, 64, 3)
    torch.testing.assert_close(imgs[0], imgs[1])
    bg = renderer(cam, AlphaCompositor())(Pointclouds(points=[pts], features=[col]),
                                          background_color=(0.0, 0.0, 1.0))
    empty = bg.new_tensor([0.0, 0.0, 1.0])
    n_bg = int((bg[0] == empty).all(-1).sum())
    assert n_bg > 1000  # the golden scene leaves 3268 pixels with no point
    # Per-point radii are differentiable through the weights.
    r = torch.full((pts.shape[0],), 0.03, requires_grad=True)
    img = renderer(cam, AlphaCompositor(), radius=r)(Pointclouds(points=[pts],
                                                                 features=[col]))
    (g,) = torch.autograd.grad(img.sum(), r)
    assert g.abs().sum() > 0 and bool(torch.isfinite(g).all())


def test_needs_features():
    d, cam = golden("points_alpha")
    with pytest.raises(ValueError, match="features"):
        renderer(cam, AlphaCompositor())(Pointclouds(points=[torch.from_numpy(
            d["points"][0])]))
