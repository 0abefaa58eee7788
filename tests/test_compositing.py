"""Compositors: PyTorch3D's golden images and gradients, hand-computed pixels, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import GOLDEN

from diffrend.render.compositing import (
    AlphaCompositor,
    NormWeightedCompositor,
    WeightedSumCompositor,
    alpha_composite,
    norm_weighted_sum,
    point_weights,
    weighted_sum,
)


@pytest.mark.parametrize("name, fn", [("points_alpha", alpha_composite),
                                      ("points_norm_weighted", norm_weighted_sum)])
def test_golden_image_and_colour_gradient(name, fn):
    """PyTorch3D's rasterizer output (idx, dists) composited here: the image and
    d(sum(image * upstream))/d(colors) equal PyTorch3D's (float32 rounding: 1e-6)."""
    d = np.load(GOLDEN / f"{name}.npz")
    idx = torch.from_numpy(d["idx"]).long()
    dists = torch.from_numpy(d["dists"])
    colors = torch.from_numpy(d["colors"][0]).requires_grad_(True)
    w = point_weights(idx, dists, 0.03)
    img = fn(idx.permute(0, 3, 1, 2), w.permute(0, 3, 1, 2), colors.t()).permute(0, 2, 3, 1)
    torch.testing.assert_close(img, torch.from_numpy(d["image"]), rtol=1e-5, atol=1e-6)
    (g,) = torch.autograd.grad((img * torch.from_numpy(d["upstream"])).sum(), colors)
    torch.testing.assert_close(g, torch.from_numpy(d["grad_colors"][0]), rtol=1e-5,
                               atol=1e-5)


def one_pixel(idx, alphas, feats):
    """(1, K, 1, 1) indices / weights and (C, P) features from lists."""
    i = torch.tensor(idx)[None, :, None, None]
    a = torch.tensor(alphas, dtype=torch.float64)[None, :, None, None]
    return i, a, torch.tensor(feats, dtype=torch.float64)


def test_hand_computed_pixel():
    # points 0 and 2 listed front to back, an empty slot between them
    i, a, f = one_pixel([2, -1, 0], [0.5, 0.9, 0.25], [[1.0, 0.0, 3.0], [0.0, 1.0, 5.0]])
    out = alpha_composite(i, a, f)[0, :, 0, 0]
    # point 2 with 0.5, then point 0 with 0.25 * (1 - 0.5)
    torch.testing.assert_close(out, torch.tensor([0.5 * 3 + 0.125 * 1, 0.5 * 5 + 0.125 * 0],
                                                 dtype=torch.float64))
    torch.testing.assert_close(weighted_sum(i, a, f)[0, :, 0, 0],
                               torch.tensor([0.5 * 3 + 0.25, 0.5 * 5], dtype=torch.float64))
    torch.testing.assert_close(norm_weighted_sum(i, a, f)[0, :, 0, 0],
                               torch.tensor([(1.5 + 0.25) / 0.75, 2.5 / 0.75],
                                            dtype=torch.float64))
    empty = one_pixel([-1, -1], [0.3, 0.3], [[1.0], [1.0]])
    for fn in (alpha_composite, weighted_sum, norm_weighted_sum):
        assert float(fn(*empty).abs().sum()) == 0.0


def test_gradcheck_weights_and_features():
    gen = torch.Generator().manual_seed(0)
    idx = torch.randint(-1, 5, (2, 3, 4, 4), generator=gen)
    a = torch.rand(2, 3, 4, 4, generator=gen, dtype=torch.float64).requires_grad_(True)
    f = torch.rand(3, 5, generator=gen, dtype=torch.float64).requires_grad_(True)
    for fn in (alpha_composite, weighted_sum, norm_weighted_sum):
        assert torch.autograd.gradcheck(lambda a, f, fn=fn: fn(idx, a, f), (a, f))


def test_weights_from_distances_and_per_point_radius():
    idx = torch.tensor([[[[0, 1, -1]]]])
    dists = torch.tensor([[[[0.0025, 0.0004, -1.0]]]], dtype=torch.float64)
    torch.testing.assert_close(point_weights(idx, dists, 0.1)[0, 0, 0],
                               torch.tensor([0.75, 0.96, 0.0], dtype=torch.float64))
    r = torch.tensor([0.1, 0.05], dtype=torch.float64, requires_grad=True)
    w = point_weights(idx, dists, r)
    torch.testing.assert_close(w[0, 0, 0].detach(), torch.tensor([0.75, 0.84, 0.0],
                                                                 dtype=torch.float64))
    (g,) = torch.autograd.grad(w.sum(), r)  # d(1 - d2/r^2)/dr = 2 d2 / r^3
    torch.testing.assert_close(g, torch.tensor([2 * 0.0025 / 0.1**3, 2 * 0.0004 / 0.05**3],
                                               dtype=torch.float64))
    with pytest.raises(ValueError, match="radius"):
        point_weights(idx, dists, 0.0)


def test_modules_and_background():
    i, a, f = one_pixel([0, -1], [0.5, 0.0], [[1.0], [0.0], [0.0]])
    i = torch.cat([i, torch.full_like(i, -1)], dim=3)  # a second pixel with no point
    a = torch.cat([a, a], dim=3)
    out = AlphaCompositor(background_color=(0.2, 0.3, 0.4))(i, a, f)
    torch.testing.assert_close(out[0, :, 0, 1], torch.tensor([0.2, 0.3, 0.4],
                                                             dtype=torch.float64))
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor([0.5, 0.0, 0.0],
                                                             dtype=torch.float64))
    # An RGB background for RGBA features gets an opaque alpha.
    f4 = torch.tensor([[1.0], [0.0], [0.0], [1.0]], dtype=torch.float64)
    out4 = NormWeightedCompositor()(i, a, f4, background_color=(0.0, 0.0, 1.0))
    torch.testing.assert_close(out4[0, :, 0, 1], torch.tensor([0.0, 0.0, 1.0, 1.0],
                                                              dtype=torch.float64))
    assert torch.equal(WeightedSumCompositor()(i, a, f), weighted_sum(i, a, f))
    with pytest.raises(ValueError, match="background_color"):
        AlphaCompositor(background_color=(0.0, 1.0))(i, a, f4)
    with pytest.raises(ValueError, match="background_color"):
        AlphaCompositor(background_color=[[0.0]])


def test_bad_inputs():
    i, a, f = one_pixel([0], [0.5], [[1.0]])
    with pytest.raises(ValueError, match="pointsidx"):
        alpha_composite(i[0], a, f)
    with pytest.raises(ValueError, match="pointsidx"):
        alpha_composite(i.double(), a, f)
    with pytest.raises(ValueError, match="alphas"):
        alpha_composite(i, a[:, :, :, :0], f)
    with pytest.raises(ValueError, match="pt_clds"):
        alpha_composite(i, a, f[0])
