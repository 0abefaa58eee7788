"""Lights and materials: PyTorch3D's formulas on hand-computed cases, batching, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from diffrend.shading import (
    AmbientLights,
    DirectionalLights,
    Materials,
    PointLights,
    diffuse,
    diffuse_and_specular,
    specular,
)

UP = torch.tensor([[0.0, 0.0, 1.0]])  # (1, 3) a normal pointing at +z
ORIGIN = torch.zeros(1, 3)


def _lights(**kw):
    return PointLights(
        ambient_color=((0.4, 0.4, 0.4),),
        diffuse_color=((0.6, 0.5, 0.4),),
        specular_color=((0.3, 0.2, 0.1),),
        **kw,
    )


# ----------------------------------------------------------------------------- formulas


def test_point_diffuse_is_cosine_law():
    # Light at 45 degrees above the surface: cos = 1/sqrt(2).
    lights = _lights(location=((0.0, 1.0, 1.0),))
    out = lights.diffuse(normals=UP, points=ORIGIN)
    expected = torch.tensor([[0.6, 0.5, 0.4]]) / math.sqrt(2.0)
    torch.testing.assert_close(out, expected)


def test_point_diffuse_uses_direction_from_point_to_light():
    # Same light, a point moved so that the light is straight above it: cos = 1.
    lights = _lights(location=((0.0, 1.0, 1.0),))
    out = lights.diffuse(normals=UP, points=torch.tensor([[0.0, 1.0, 0.0]]))
    torch.testing.assert_close(out, torch.tensor([[0.6, 0.5, 0.4]]))


def test_diffuse_zero_when_light_behind_and_normals_renormalised():
    lights = _lights(location=((0.0, 0.0, -2.0),))
    assert lights.diffuse(normals=UP, points=ORIGIN).abs().max() == 0
    # A non-unit normal gives the same answer as a unit one (interpolated normals).
    lights = _lights(location=((0.0, 1.0, 1.0),))
    torch.testing.assert_close(
        lights.diffuse(normals=5 * UP, points=ORIGIN), lights.diffuse(normals=UP, points=ORIGIN)
    )


def test_directional_diffuse_ignores_points():
    lights = DirectionalLights(diffuse_color=((1.0, 1.0, 1.0),), direction=((0.0, 1.0, 1.0),))
    pts = torch.tensor([[0.0, 0.0, 0.0], [5.0, -3.0, 2.0]])
    normals = UP.expand(2, 3)
    out = lights.diffuse(normals=normals, points=pts)
    torch.testing.assert_close(out, torch.full((2, 3), 1 / math.sqrt(2.0)))
    # A point light far along the same direction converges to it.
    far = PointLights(diffuse_color=((1.0, 1.0, 1.0),), location=((0.0, 1e5, 1e5),))
    torch.testing.assert_close(far.diffuse(normals=normals, points=pts), out, atol=1e-4, rtol=0)


def test_specular_mirror_direction_gives_full_highlight():
    # Light from (1,0,1), camera at the mirror direction (-1,0,1): reflect == view, cos = 1.
    lights = _lights(location=((1.0, 0.0, 1.0),))
    out = lights.specular(
        normals=UP, points=ORIGIN, camera_position=torch.tensor([[-1.0, 0.0, 1.0]]),
        shininess=torch.tensor([10.0]),
    )
    torch.testing.assert_close(out, torch.tensor([[0.3, 0.2, 0.1]]))


def test_specular_exponent():
    # Camera straight above: cos(reflect, view) = 1/sqrt(2); ^10 = 1/32.
    lights = _lights(location=((1.0, 0.0, 1.0),))
    for s, factor in ((10.0, 1 / 32), (1.0, 1 / math.sqrt(2.0)), (0.0, 1.0)):
        out = lights.specular(
            normals=UP, points=ORIGIN, camera_position=torch.tensor([[0.0, 0.0, 3.0]]),
            shininess=torch.tensor([s]),
        )
        torch.testing.assert_close(out, torch.tensor([[0.3, 0.2, 0.1]]) * factor)


def test_specular_masked_when_light_behind_surface():
    # Light from below: the unmasked formula would give a full highlight at the camera
    # (-1, 0, -1), but PyTorch3D masks points whose normal faces away from the light.
    lights = _lights(location=((1.0, 0.0, -1.0),))
    out = lights.specular(
        normals=UP, points=ORIGIN, camera_position=torch.tensor([[-1.0, 0.0, -1.0]]),
        shininess=torch.tensor([4.0]),
    )
    assert out.abs().max() == 0


def test_directional_specular_matches_point_light_at_same_direction():
    d = DirectionalLights(specular_color=((1.0, 1.0, 1.0),), direction=((1.0, 0.0, 1.0),))
    p = PointLights(specular_color=((1.0, 1.0, 1.0),), location=((1.0, 0.0, 1.0),))
    args = dict(normals=UP, points=ORIGIN, camera_position=torch.tensor([[0.3, 0.2, 2.0]]),
                shininess=torch.tensor([8.0]))
    torch.testing.assert_close(d.specular(**args), p.specular(**args))


def test_functional_forms_match_methods():
    normals = torch.randn(2, 4, 3)
    points = torch.randn(2, 4, 3)
    color = torch.rand(2, 3)
    direction = torch.randn(2, 3)
    cam = torch.randn(2, 3)
    shin = torch.tensor([3.0, 7.0])
    lights = DirectionalLights(diffuse_color=color, specular_color=color, direction=direction)
    torch.testing.assert_close(lights.diffuse(normals, points), diffuse(normals, color, direction))
    torch.testing.assert_close(
        lights.specular(normals, points, cam, shin),
        specular(points, normals, direction, color, cam, shin),
    )


def test_ambient_lights():
    lights = AmbientLights()
    torch.testing.assert_close(lights.ambient_color, torch.ones(1, 3))
    pts = torch.randn(2, 3, 3)
    assert lights.diffuse(normals=pts, points=pts).shape == (2, 3, 3)
    assert lights.specular(pts, pts, torch.zeros(1, 3), torch.ones(1)).abs().max() == 0
    four = AmbientLights(ambient_color=torch.ones(2, 4))
    assert four.diffuse(normals=pts, points=pts).shape == (2, 3, 4)
    assert len(four) == 2


# ----------------------------------------------------------------------------- batching


def test_broadcast_one_light_many_images_equals_loop():
    normals = torch.randn(3, 2, 2, 1, 3)
    points = torch.randn(3, 2, 2, 1, 3)
    cam = torch.randn(3, 3)
    lights = PointLights(location=((0.5, 1.0, 2.0),))
    out = lights.specular(normals, points, cam, torch.tensor([5.0]))
    dif = lights.diffuse(normals, points)
    assert out.shape == dif.shape == (3, 2, 2, 1, 3)
    for i in range(3):
        torch.testing.assert_close(
            out[i : i + 1], lights.specular(normals[i : i + 1], points[i : i + 1],
                                            cam[i : i + 1], torch.tensor([5.0]))
        )


def test_per_image_lights_equal_loop():
    normals = torch.randn(2, 3, 4, 2, 3)
    points = torch.randn(2, 3, 4, 2, 3)
    loc = torch.randn(2, 3) * 3
    col = torch.rand(2, 3)
    lights = PointLights(diffuse_color=col, specular_color=col, location=loc)
    cam = torch.randn(1, 3)
    dif = lights.diffuse(normals, points)
    spec = lights.specular(normals, points, cam, torch.tensor([2.0, 9.0]))
    for i in range(2):
        li = lights[i]
        assert len(li) == 1
        sl = slice(i, i + 1)
        torch.testing.assert_close(dif[sl], li.diffuse(normals[sl], points[sl]))
        torch.testing.assert_close(
            spec[i : i + 1],
            li.specular(normals[i : i + 1], points[i : i + 1], cam, torch.tensor([[2.0, 9.0][i]])),
        )


def test_constructor_broadcasts_batch_one_against_n():
    lights = PointLights(location=torch.randn(4, 3), ambient_color=(0.1, 0.2, 0.3))
    assert len(lights) == 4
    assert lights.ambient_color.shape == (4, 3)
    torch.testing.assert_close(lights.ambient_color[3], torch.tensor([0.1, 0.2, 0.3]))
    mats = Materials(shininess=torch.tensor([1.0, 2.0, 3.0]))
    assert mats.diffuse_color.shape == (3, 3) and mats.shininess.shape == (3,)


def test_mismatched_batch_raises_naming_argument():
    with pytest.raises(ValueError, match="location"):
        PointLights(ambient_color=torch.ones(2, 3), location=torch.ones(3, 3))
    with pytest.raises(ValueError, match="shininess"):
        Materials(diffuse_color=torch.ones(2, 3), shininess=torch.ones(3))
    lights = PointLights(location=torch.randn(3, 3))
    pts = torch.randn(2, 4, 4, 1, 3)
    with pytest.raises(ValueError, match="lights"):
        lights.diffuse(pts, pts)
    with pytest.raises(ValueError, match="camera_position"):
        PointLights().specular(pts, pts, torch.randn(3, 3), torch.ones(1))
    with pytest.raises(ValueError, match="shininess"):
        PointLights().specular(pts, pts, torch.randn(1, 3), torch.ones(3))


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: PointLights(location=((0.0, float("nan"), 1.0),)), "location"),
        (lambda: PointLights(diffuse_color=torch.tensor([[float("inf"), 0, 0]])), "diffuse_color"),
        (lambda: DirectionalLights(direction=((0.0, 1.0),)), "direction"),
        (lambda: PointLights(ambient_color=torch.ones(1, 1, 3)), "ambient_color"),
        (lambda: PointLights(specular_color=((1.0, 1.0, 1.0, 1.0),)), "specular_color"),
        (lambda: PointLights(location="left"), "location"),
        (lambda: Materials(shininess=float("nan")), "shininess"),
        (lambda: Materials(shininess=-1.0), "shininess"),
        (lambda: Materials(shininess=torch.ones(2, 1)), "shininess"),
        (lambda: Materials(diffuse_color=torch.ones(1, 4)), "diffuse_color"),
        (lambda: AmbientLights(ambient_color=torch.tensor([[float("nan")] * 3])), "ambient_color"),
    ],
)
def test_bad_inputs_raise_value_error(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_bad_points_normals_raise():
    lights = PointLights()
    with pytest.raises(ValueError, match="same shape"):
        lights.diffuse(torch.zeros(2, 3), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="normals"):
        lights.diffuse(torch.zeros(2, 2), torch.zeros(2, 2))


# ----------------------------------------------------------------------------- holder methods


def test_clone_detach_to_getitem_gather_extend():
    loc = torch.randn(3, 3, requires_grad=True)
    lights = PointLights(location=loc)
    c = lights.clone()
    assert c.location is not lights.location and c.location.requires_grad
    assert not lights.detach().location.requires_grad
    assert lights.to(dtype=torch.float64).location.dtype == torch.float64
    assert lights.location.dtype == torch.float32  # unchanged: no hidden state
    sub = lights[[2, 0]]
    torch.testing.assert_close(sub.location, loc[[2, 0]])
    mask = lights[torch.tensor([True, False, True])]
    assert len(mask) == 2
    gathered = lights.gather_props(torch.tensor([0, 0, 1, 2, 2]))
    assert gathered.location.shape == (5, 3) and len(lights) == 3
    ext = PointLights(location=torch.tensor([[1.0, 2, 3], [4, 5, 6]])).extend(2)
    torch.testing.assert_close(ext.location[:, 0], torch.tensor([1.0, 1, 4, 4]))
    with pytest.raises(ValueError, match="batch_idx"):
        lights.gather_props(torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="index"):
        lights[5]


def test_dtype_promotion_and_device_default():
    lights = PointLights(location=torch.zeros(1, 3, dtype=torch.float64))
    assert lights.ambient_color.dtype == torch.float64  # python numbers follow the tensors
    assert PointLights().location.dtype == torch.float32
    assert Materials().device == torch.device("cpu")


# ----------------------------------------------------------------------------- gradients


def _f64(*shape, scale=1.0):
    return (torch.randn(*shape, dtype=torch.float64) * scale).requires_grad_(True)


def test_gradcheck_point_lights():
    # Normals point roughly at +z and the light and camera sit above, so every point is lit
    # and away from the relu/mask kinks (gradcheck's finite differences need smoothness).
    normals = (torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64) + 0.2 * torch.randn(2, 3, 3,
               dtype=torch.float64)).requires_grad_(True)
    points = _f64(2, 3, 3, scale=0.2)
    loc = (torch.tensor([[0.3, -0.2, 2.0], [-0.4, 0.1, 3.0]], dtype=torch.float64)
           ).requires_grad_(True)
    diff_col = torch.rand(2, 3, dtype=torch.float64, requires_grad=True)
    spec_col = torch.rand(1, 3, dtype=torch.float64, requires_grad=True)
    cam = torch.tensor([[0.1, 0.2, 4.0]], dtype=torch.float64, requires_grad=True)
    shin = torch.tensor([3.0, 5.0], dtype=torch.float64, requires_grad=True)

    def f(normals, points, loc, diff_col, spec_col, cam, shin):
        lights = PointLights(diffuse_color=diff_col, specular_color=spec_col, location=loc)
        mats = Materials(shininess=shin)
        return (lights.diffuse(normals, points),
                lights.specular(normals, points, cam, mats.shininess))

    assert torch.autograd.gradcheck(f, (normals, points, loc, diff_col, spec_col, cam, shin))


def test_gradcheck_directional_lights():
    normals = (torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64) + 0.2 * torch.randn(4, 3,
               dtype=torch.float64)).requires_grad_(True)
    points = _f64(4, 3, scale=0.2)
    direction = torch.tensor([[0.2, 1.0, 0.3]], dtype=torch.float64, requires_grad=True)
    cam = torch.tensor([[0.0, 3.0, 0.5]], dtype=torch.float64)
    shin = torch.tensor([4.0], dtype=torch.float64, requires_grad=True)

    def f(normals, points, direction, shin):
        lights = DirectionalLights(direction=direction)
        return lights.diffuse(normals, points) + lights.specular(normals, points, cam, shin)

    assert torch.autograd.gradcheck(f, (normals, points, direction, shin))


@pytest.mark.parametrize("make", [
    lambda: PointLights(location=((0.3, 1.5, -2.0), (1.0, -1.0, 2.0)),
                        diffuse_color=((0.7, 0.5, 0.2),), specular_color=((0.3, 0.4, 0.9),)),
    lambda: DirectionalLights(direction=((0.3, 1.5, -2.0), (1.0, -1.0, 2.0)),
                              diffuse_color=((0.7, 0.5, 0.2),),
                              specular_color=((0.3, 0.4, 0.9),)),
])
def test_diffuse_and_specular_in_one_pass_equal_the_two_methods(make):
    """Shading takes both terms from one pass: the same values, the same gradients."""
    g = torch.Generator().manual_seed(0)
    points0 = torch.randn(2, 7, 5, 3, generator=g, dtype=torch.float64)
    normals0 = torch.randn(2, 7, 5, 3, generator=g, dtype=torch.float64)
    normals0[0, 0, 0] = 0.0  # a zero normal: unlit, finite gradients
    camera = torch.tensor([[0.0, 0.0, 3.0], [1.0, 2.0, -3.0]], dtype=torch.float64)
    shininess = torch.tensor([10.0, 64.0], dtype=torch.float64)
    weights = torch.rand(2, 2, 7, 5, 3, generator=g, dtype=torch.float64)
    results = []
    for fused in (True, False):
        lights = make()._map(lambda t: t.double().requires_grad_())
        points = points0.clone().requires_grad_()
        normals = normals0.clone().requires_grad_()
        if fused:
            d, s = lights.diffuse_and_specular(normals, points, camera, shininess)
            if isinstance(lights, PointLights):  # the function under the method, too
                d2, s2 = diffuse_and_specular(
                    points, normals, lights.location[:, None, None] - points,
                    lights.diffuse_color, lights.specular_color, camera, shininess)
                assert torch.equal(d, d2) and torch.equal(s, s2)
        else:
            d = lights.diffuse(normals, points)
            s = lights.specular(normals, points, camera, shininess)
        leaves = [points, normals, *(getattr(lights, p) for p in lights._props)]
        grads = torch.autograd.grad((weights[0] * d + weights[1] * s).sum(), leaves,
                                    allow_unused=True)
        results.append((d.detach(), s.detach(), grads))
    (d1, s1, g1), (d2, s2, g2) = results
    assert torch.equal(d1, d2) and torch.equal(s1, s2)
    for a, b in zip(g1, g2, strict=True):
        if a is None or b is None:
            assert a is None and b is None
        else:  # the branches' gradients are summed in another order
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
            assert torch.isfinite(a).all()
