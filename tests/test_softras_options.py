"""SoftRas's options in BlendParams: barycentric distance, Gaussian probability, sum alpha."""

from __future__ import annotations

import pytest
import torch

from diffrend import BlendParams, sigmoid_alpha_blend, softmax_rgb_blend
from diffrend.raster import Fragments, rasterize_faces
from diffrend.render.blend import coverage_probability, sigmoid_alpha_blend_reference

SIGMA = 1e-3


def triangle_fragments(requires_grad=False):
    v = torch.tensor([[-0.5, -0.4, 2.0], [0.6, -0.3, 2.0], [0.0, 0.5, 2.0]],
                     dtype=torch.float64, requires_grad=requires_grad)
    fr = rasterize_faces(v[None], torch.zeros(1, dtype=torch.long), 1, image_size=16,
                         blur_radius=0.1, faces_per_pixel=2)
    return v, fr


def test_barycentric_distance_and_gaussian_probability():
    _, fr = triangle_fragments()
    mask = fr.pix_to_face >= 0
    w_min = fr.bary_coords.min(-1).values
    inside = w_min > 0
    assert bool(inside.any()) and bool((mask & ~inside).any())
    p = coverage_probability(fr, BlendParams(sigma=SIGMA, distance="barycentric"))
    expect = torch.sigmoid(torch.sign(w_min) * w_min**2 / SIGMA) * mask
    torch.testing.assert_close(p, expect)
    g = coverage_probability(fr, BlendParams(sigma=SIGMA, probability="gaussian"))
    assert bool((g[inside & mask] == 1).all())
    out = mask & ~inside
    torch.testing.assert_close(g[out], torch.exp(-fr.dists[out] / SIGMA))
    assert bool((g[~mask] == 0).all())


def test_defaults_are_pytorch3d_and_sum_alpha():
    _, fr = triangle_fragments()
    colors = torch.rand(*fr.pix_to_face.shape, 3, dtype=torch.float64)
    explicit = BlendParams(sigma=SIGMA, distance="euclidean", probability="sigmoid",
                           alpha="prod")
    torch.testing.assert_close(sigmoid_alpha_blend(colors, fr, explicit),
                               sigmoid_alpha_blend_reference(colors, fr, BlendParams(SIGMA)))
    p = coverage_probability(fr, BlendParams(sigma=SIGMA))
    a_sum = sigmoid_alpha_blend(colors, fr, BlendParams(sigma=SIGMA, alpha="sum"))[..., 3]
    torch.testing.assert_close(a_sum, p.sum(-1).clamp(max=1.0))
    rgb = softmax_rgb_blend(colors, fr, BlendParams(sigma=SIGMA, alpha="sum"))
    torch.testing.assert_close(rgb[..., 3], a_sum)


@pytest.mark.parametrize("options", [dict(distance="barycentric"),
                                     dict(probability="gaussian"),
                                     dict(distance="barycentric", probability="gaussian")])
def test_options_give_finite_gradients_that_grow_the_triangle(options):
    v, fr = triangle_fragments(requires_grad=True)
    colors = torch.ones(*fr.pix_to_face.shape, 3, dtype=torch.float64)
    alpha = softmax_rgb_blend(colors, fr, BlendParams(sigma=SIGMA, **options))[..., 3]
    (g,) = torch.autograd.grad(alpha.sum(), v)
    assert bool(torch.isfinite(g).all()) and g.abs().sum() > 0
    # More coverage: the corners move away from the centroid.
    outward = v.detach()[:, :2] - v.detach()[:, :2].mean(0)
    assert float((g[:, :2] * outward).sum()) > 0


def test_bad_options():
    for kw in (dict(distance="manhattan"), dict(probability="cauchy"), dict(alpha="max")):
        with pytest.raises(ValueError, match=next(iter(kw))):
            BlendParams(**kw)
    _, fr = triangle_fragments()
    bad = Fragments(fr.pix_to_face, fr.zbuf, fr.bary_coords[..., :2], fr.dists)
    with pytest.raises(ValueError, match="bary_coords"):
        coverage_probability(bad, BlendParams(distance="barycentric"))
