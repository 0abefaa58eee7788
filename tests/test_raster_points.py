"""The points rasterizer's contract, for every backend: PyTorch3D goldens, the Numba and
Triton kernels against the pure-torch reference, gradients, the module layer and argument
checks.

Triton runs in its interpreter on CPU tensors without a GPU (conftest.py): slow, so its
scenes here are small. Backend-specific checks are in test_points_numba.py and
test_points_triton.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import camera_from_golden, load_golden
from hypothesis import HealthCheck, given, settings
from points_contract import (
    BACKENDS,
    TRITON,
    cloud,
    compare,
    device_of,
    point_cases,
    small_point_cases,
)

from diffrend import (
    FoVPerspectiveCameras,
    Pointclouds,
    PointsRasterizationSettings,
    PointsRasterizer,
    look_at_view_transform,
    rasterize_points,
    rasterize_points_packed,
)
from diffrend.raster.backends import resolve_backend as _resolve_backend
from diffrend.raster.tiles import pixel_centers_torch

GOLDEN = ["points_alpha", "points_norm_weighted"]

# ---------------------------------------------------------------------------- goldens


@pytest.mark.parametrize("backend, dtype", [("numba", torch.float32),
                                            ("reference", torch.float32),
                                            ("reference", torch.float64)])
@pytest.mark.parametrize("name", GOLDEN)
def test_points_golden(name, backend, dtype):
    g = load_golden(name)
    pts = torch.from_numpy(g["points"][0]).to(dtype)
    settings_ = PointsRasterizationSettings(image_size=64, radius=0.03, points_per_pixel=8,
                                            backend=backend)
    fr = PointsRasterizer(camera_from_golden(g), settings_)(Pointclouds([pts]))
    exp_idx = torch.from_numpy(g["idx"]).long()
    assert (exp_idx >= 0).sum() > 1000  # the scene is really drawn (1150 entries)
    # Seen: every entry equal, in float32 and float64 alike (no pixel centre lies within
    # rounding of a disc's rim), so no pixel is allowed to differ.
    assert torch.equal(fr.idx, exp_idx)
    # zbuf and dists differ from PyTorch3D only by the float32 rounding of the projection
    # (seen: 2.4e-7 in zbuf ~ 2.5, 1.0e-8 in dists).
    for key in ("zbuf", "dists"):
        torch.testing.assert_close(getattr(fr, key).double(),
                                   torch.from_numpy(g[key]).double(), rtol=1e-6, atol=1e-7)


def _composite(name, fr, colors, radius):
    """PyTorch3D's two compositors written out in torch (the package's compositors are
    tested on their own): weights 1 - dists / r**2; alpha: front-to-back over; norm
    weighted: sum w f / max(sum w, 1e-4)."""
    valid = fr.idx >= 0
    w = torch.where(valid, 1 - fr.dists / radius**2, torch.zeros_like(fr.dists))
    f = colors[fr.idx.clamp(min=0)]  # (N, H, W, K, C)
    if name == "points_alpha":
        trans = torch.cumprod(torch.cat([torch.ones_like(w[..., :1]), 1 - w[..., :-1]], -1), -1)
        return (f * (w * trans)[..., None]).sum(-2)
    return (f * w[..., None]).sum(-2) / w.sum(-1, keepdim=True).clamp(min=1e-4)


@pytest.mark.parametrize("backend", ["numba", "reference"])
@pytest.mark.parametrize("name", GOLDEN)
def test_points_golden_gradients_end_to_end(name, backend):
    # The rasterizer's backward checked through a composited image against PyTorch3D's
    # grad_points (in float64 here, PyTorch3D in float32).
    g = load_golden(name)
    pts = torch.from_numpy(g["points"][0]).double().requires_grad_()
    colors = torch.from_numpy(g["colors"][0]).double()
    settings_ = PointsRasterizationSettings(image_size=64, radius=0.03, points_per_pixel=8,
                                            backend=backend)
    fr = PointsRasterizer(camera_from_golden(g), settings_)(Pointclouds([pts]))
    image = _composite(name, fr, colors, 0.03)
    # seen: 9e-6 (float32 rounding in PyTorch3D)
    torch.testing.assert_close(image, torch.from_numpy(g["image"]).double(), rtol=0, atol=5e-5)
    (image * torch.from_numpy(g["upstream"]).double()).sum().backward()
    exp = torch.from_numpy(g["grad_points"][0]).double()
    # seen: max error 6e-4 (alpha) and 5.5e-3 (norm weighted) for gradients up to ~200:
    # the 1/r**2 = 1111 factor amplifies PyTorch3D's float32 rounding.
    torch.testing.assert_close(pts.grad, exp, rtol=1e-4, atol=5e-5 * exp.abs().max().item())


# ---------------------------------------------------------------------------- random clouds


# Per backend: hypothesis examples, the strategy (Triton's interpreter is slow: smaller
# scenes) and the tolerances (forward rtol = atol, gradients). Numba: the same operations in
# the same dtype as the reference, so the outputs are bit-identical; gradients are sums of
# the same terms in a different order. Triton: the same IEEE operations (no fused
# multiply-adds), so idx equal everywhere and values equal up to 1e-9 (seen: bit-equal);
# gradients summed with atomics: 1e-7.
RANDOM = {"numba": (60, point_cases, 0.0, 1e-10),
          "triton": (25, small_point_cases, 1e-9, 1e-7)}


@pytest.mark.parametrize("backend", ["numba", TRITON])
def test_random_clouds_equal_reference_float64(backend):
    examples, cases, tol, grad_tol = RANDOM[backend]

    @settings(max_examples=examples, deadline=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(case=cases)
    def check(case):
        pts, ci, radius = cloud(case["seed"], case["n_points"], case["n_clouds"],
                                case["z_lo"], case["radius"], torch.float64)
        compare(pts, ci, case["n_clouds"], backend, rtol=tol, atol=tol, grad_tol=grad_tol,
                image_size=(case["H"], case["W"]), radius=radius, points_per_pixel=case["K"])

    check()


def _brute_force(pts, ci, n_clouds, H, W, K, radius):
    """Listing by definition, one pixel at a time (independent of both backends)."""
    ys, xs = pixel_centers_torch(H, W, pts.dtype, "cpu")
    r = torch.as_tensor(radius, dtype=pts.dtype).expand(len(pts))
    out = torch.full((n_clouds, H, W, K), -1, dtype=torch.int64)
    for n in range(n_clouds):
        for i in range(H):
            for j in range(W):
                hits = []
                for p in range(len(pts)):
                    dx, dy = xs[j] - pts[p, 0], ys[i] - pts[p, 1]
                    if ci[p] == n and pts[p, 2] >= 0 and dx * dx + dy * dy < r[p] * r[p]:
                        hits.append((float(pts[p, 2]), p))
                for k, (_, p) in enumerate(sorted(hits)[:K]):
                    out[n, i, j, k] = p
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_selection_matches_definition(seed):
    pts, ci, radius = cloud(seed, 25, 2, -0.5, "0.3" if seed else "per_point", torch.float64)
    fr = rasterize_points_packed(pts, ci, 2, image_size=(7, 9), radius=radius,
                                 points_per_pixel=4)
    assert torch.equal(fr.idx, _brute_force(pts, ci, 2, 7, 9, 4, radius))
    assert (fr.idx >= 0).sum() > 10


@pytest.mark.parametrize("backend", BACKENDS)
def test_depth_order_ties_and_empty_values(backend):
    # Three points on the centre pixel of a 5x5 image: two at z=2 (ties: lower index
    # first), one nearer at z=1; a fourth behind the camera; K=5 > 3 hits.
    dev = device_of(backend)
    pts = torch.tensor([[0.0, 0.0, 2.0], [0.0, 0.0, 1.0], [0.0, 0.0, 2.0], [0.0, 0.0, -1.0]],
                       device=dev)
    fr = rasterize_points_packed(pts, torch.zeros(4, dtype=torch.int64, device=dev), 1,
                                 image_size=5, radius=0.1, points_per_pixel=5, backend=backend)
    assert fr.idx[0, 2, 2].tolist() == [1, 0, 2, -1, -1]
    assert fr.zbuf[0, 2, 2].tolist() == [1.0, 2.0, 2.0, -1.0, -1.0]
    assert fr.dists[0, 2, 2].tolist() == [0.0, 0.0, 0.0, -1.0, -1.0]
    assert (fr.idx[0, 0, 0] == -1).all() and (fr.dists[0, 0, 0] == -1).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_strict_radius_comparison(backend):
    # Pixel centres of a 4x4 image are +-0.25, +-0.75 (exact in binary); a point at
    # (0.25, 0) with radius 0.25 has two centres exactly on its rim: not listed (strict <).
    dev = device_of(backend)
    for dtype in (torch.float32, torch.float64):
        pts = torch.tensor([[0.25, 0.0, 1.0]], dtype=dtype, device=dev)
        ci = torch.zeros(1, dtype=torch.int64, device=dev)
        rim = rasterize_points_packed(pts, ci, 1, image_size=4, radius=0.25, backend=backend)
        assert (rim.idx == -1).all()
        over = rasterize_points_packed(pts, ci, 1, image_size=4, radius=0.2501,
                                       backend=backend)
        assert torch.nonzero(over.idx[0, ..., 0] >= 0).tolist() == [[1, 1], [2, 1]]
        assert over.dists[0, 1, 1, 0] == 0.0625


@pytest.mark.parametrize("backend", BACKENDS)
def test_ndc_orientation_non_square(backend):
    # +X left, +Y up; on a 4x8 (H x W) image the wider x side spans [-2, 2].
    dev = device_of(backend)
    pts = torch.tensor([[1.75, 0.75, 1.0], [-1.75, -0.75, 1.0]], device=dev)
    fr = rasterize_points_packed(pts, torch.zeros(2, dtype=torch.int64, device=dev), 1,
                                 image_size=(4, 8), radius=0.1, points_per_pixel=1,
                                 backend=backend)
    hit = torch.nonzero(fr.idx[0, ..., 0] >= 0).tolist()
    assert hit == [[0, 0], [3, 7]]
    assert fr.idx[0, 0, 0, 0] == 0 and fr.idx[0, 3, 7, 0] == 1


# ---------------------------------------------------------------------------- gradients


# On a GPU the Triton backward adds with atomics, whose order (and so the last bits of a
# float64 sum) varies between calls: gradcheck's reentrancy check gets that noise as its
# tolerance (the deterministic path is compared with the atomic one in
# test_points_triton.py); its interpreter runs gradcheck's fast mode.
@pytest.mark.parametrize("backend, fast, nondet_tol", [
    ("reference", False, 0.0), ("numba", False, 0.0),
    pytest.param("triton", True, 1e-12, marks=TRITON.marks),
])
def test_gradcheck_float64(backend, fast, nondet_tol):
    # Four points near pixel centres of a 6x7 image (centres 1/3 apart) with radius 0.57:
    # every pixel centre is > 0.02 away from every rim, so the finite differences never
    # change the selection.
    ys, xs = pixel_centers_torch(6, 7, torch.float64, "cpu")
    pts = torch.tensor([[xs[1] + 0.05, ys[1] - 0.03, 1.0], [xs[4] - 0.04, ys[2] + 0.06, 1.5],
                        [xs[2] + 0.03, ys[4] + 0.02, 2.0], [xs[5] + 0.02, ys[4] - 0.05, 1.2]],
                       dtype=torch.float64)
    d = ((xs[None, None] - pts[:, 0, None, None]) ** 2
         + (ys[None, :, None] - pts[:, 1, None, None]) ** 2).sqrt()
    assert ((d - 0.57).abs() > 0.02).all(), "test points too close to a rim"
    dev = device_of(backend)
    ci = torch.tensor([0, 0, 1, 1], device=dev)

    def f(x):
        fr = rasterize_points_packed(x, ci, 2, image_size=(6, 7), radius=0.57,
                                     points_per_pixel=3, backend=backend)
        return fr.zbuf, fr.dists

    assert torch.autograd.gradcheck(f, (pts.to(dev).requires_grad_(),), eps=1e-7, atol=1e-6,
                                    rtol=1e-5, fast_mode=fast, nondet_tol=nondet_tol)


@pytest.mark.parametrize("backend", BACKENDS)
def test_radius_gets_no_gradient(backend):
    dev = device_of(backend)
    pts = torch.tensor([[0.0, 0.0, 1.0]], device=dev, requires_grad=True)
    radius = torch.tensor([0.5], device=dev, requires_grad=True)
    fr = rasterize_points_packed(pts, torch.zeros(1, dtype=torch.int64, device=dev), 1,
                                 image_size=4, radius=radius, backend=backend)
    assert not fr.idx.requires_grad and fr.zbuf.requires_grad
    (fr.dists.sum() + fr.zbuf.sum()).backward()
    assert radius.grad is None
    assert pts.grad is not None and pts.grad[0, 2] == (fr.idx >= 0).sum()


# ---------------------------------------------------------------------------- module layer


def _scene(n_points=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n_points, 3, generator=g) * 0.5


def test_rasterizer_extends_one_cloud_to_n_cameras():
    R, T = look_at_view_transform(dist=3.0, elev=[0.0, 30.0], azim=[0.0, 60.0])
    cams = FoVPerspectiveCameras(R=R, T=T)
    pts = _scene()
    s = PointsRasterizationSettings(image_size=(20, 24), radius=0.05, points_per_pixel=4)
    fr = PointsRasterizer(cams, s)(Pointclouds([pts]))
    assert fr.idx.shape == (2, 20, 24, 4)
    for i in range(2):
        one = PointsRasterizer(FoVPerspectiveCameras(R=R[i : i + 1], T=T[i : i + 1]), s)(
            Pointclouds([pts]))
        # idx indexes the extended batch's packed points: the second copy starts at 200.
        shifted = torch.where(one.idx >= 0, one.idx + 200 * i, one.idx)
        assert torch.equal(fr.idx[i : i + 1], shifted)
        assert torch.equal(fr.zbuf[i : i + 1], one.zbuf)


def test_rasterizer_per_call_overrides_and_gradients():
    R, T = look_at_view_transform(dist=3.0, elev=20.0, azim=10.0)
    pts = _scene().requires_grad_()
    pc = Pointclouds([pts], features=[torch.rand(200, 3)])
    rast = PointsRasterizer()
    with pytest.raises(ValueError, match="Cameras must be specified"):
        rast(pc)
    s = PointsRasterizationSettings(image_size=16, radius=torch.full((200,), 0.08),
                                    points_per_pixel=3, backend="reference")
    fr = rast(pc, cameras=FoVPerspectiveCameras(R=R, T=T), raster_settings=s)
    assert fr.idx.shape == (1, 16, 16, 3)
    # camera R/T overrides at call time give the same as cameras built with them
    fr2 = PointsRasterizer(FoVPerspectiveCameras(), s)(pc, R=R, T=T)
    assert torch.equal(fr.idx, fr2.idx)
    fr.zbuf.sum().backward()
    assert pts.grad is not None and pts.grad.abs().sum() > 0


def test_rasterize_points_radius_forms():
    pts = [_scene(30, 1), _scene(12, 2), torch.zeros(0, 3)]
    pts = [p + torch.tensor([0.0, 0.0, 2.0]) for p in pts]
    pc = Pointclouds(pts)
    per_point = torch.linspace(0.0, 0.3, 42)
    padded = torch.zeros(3, 30)
    padded[0, :30], padded[1, :12] = per_point[:30], per_point[30:]
    a = rasterize_points(pc, image_size=12, radius=per_point, points_per_pixel=4)
    s1 = rasterize_points(pc, image_size=12, radius=0.2, points_per_pixel=4)
    s2 = rasterize_points(pc, image_size=12, radius=torch.tensor(0.2), points_per_pixel=4)
    assert torch.equal(s1.idx, s2.idx)
    b = rasterize_points(pc, image_size=12, radius=padded, points_per_pixel=4,
                         bin_size=0, max_points_per_bin=1)  # accepted and ignored
    c = rasterize_points(pc, image_size=12, radius=padded.tolist(), points_per_pixel=4)
    assert torch.equal(a.idx, b.idx) and torch.equal(a.idx, c.idx)
    assert (a.idx[2] == -1).all() and (a.idx >= 0).sum() > 10
    with pytest.raises(ValueError, match="radius"):
        rasterize_points(pc, image_size=12, radius=torch.zeros(3, 29))
    idx, zbuf, dists = a  # unpacks like PyTorch3D's namedtuple
    assert idx.dtype == torch.int32 and zbuf.shape == dists.shape == (3, 12, 12, 4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_inputs(backend):
    dev = device_of(backend)
    fr = rasterize_points_packed(torch.zeros(0, 3, device=dev),
                                 torch.zeros(0, dtype=torch.int64, device=dev), 2,
                                 image_size=(5, 6), points_per_pixel=2, backend=backend)
    assert fr.idx.shape == (2, 5, 6, 2) and (fr.idx == -1).all() and (fr.zbuf == -1).all()


def test_empty_pointclouds():
    fr = rasterize_points(Pointclouds([]), image_size=4)
    assert fr.idx.shape == (0, 4, 4, 8)


def test_backend_dispatch(monkeypatch):
    from diffrend.raster.backends import triton_installed as _triton_installed

    assert _resolve_backend("auto", torch.device("cpu")) == "numba"
    cuda_auto = "triton" if _triton_installed() else "reference"
    assert _resolve_backend("auto", torch.device("cuda")) == cuda_auto
    assert _resolve_backend("reference", torch.device("cpu")) == "reference"
    with pytest.raises(ValueError, match="numba"):
        _resolve_backend("numba", torch.device("cuda"))
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(ValueError, match="backend"):
        _resolve_backend("triton", torch.device("cpu"))
    with pytest.raises(ValueError, match="backend"):
        _resolve_backend("vulkan", torch.device("cpu"))


# ---------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(image_size=0), "image_size"),
        (dict(image_size=(4, -1)), "image_size"),
        (dict(image_size=(4, 4, 4)), "image_size"),
        (dict(radius=-1.0), "radius"),
        (dict(radius=math.nan), "radius"),
        (dict(radius=math.inf), "radius"),
        (dict(radius=torch.full((3,), -0.1)), "radius"),
        (dict(radius=torch.tensor([0.1, math.nan, 0.1])), "radius"),
        (dict(radius=torch.full((4,), 0.1)), "radius"),
        (dict(radius="big"), "radius"),
        (dict(points_per_pixel=0), "points_per_pixel"),
        (dict(points_per_pixel=2.5), "points_per_pixel"),
        (dict(backend="opengl"), "backend"),
    ],
)
def test_bad_settings_raise(kwargs, message):
    pts = torch.rand(3, 3)
    with pytest.raises(ValueError, match=message):
        rasterize_points_packed(pts, torch.zeros(3, dtype=torch.int64), 1,
                                **{"image_size": 8, **kwargs})


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_points_raise(backend, bad):
    pts = torch.rand(3, 3)
    pts[1, 0] = bad
    dev = device_of(backend)
    with pytest.raises(ValueError, match="NaN or inf"):
        rasterize_points_packed(pts.to(dev), torch.zeros(3, dtype=torch.int64, device=dev), 1,
                                image_size=8, backend=backend)


def test_bad_shapes_raise():
    ci = torch.zeros(3, dtype=torch.int64)
    with pytest.raises(ValueError, match="points_ndc"):
        rasterize_points_packed(torch.zeros(3, 2), ci, 1, image_size=8)
    with pytest.raises(ValueError, match="points_ndc"):
        rasterize_points_packed(torch.zeros(3, 3, dtype=torch.int64), ci, 1, image_size=8)
    with pytest.raises(ValueError, match="cloud_idx"):
        rasterize_points_packed(torch.zeros(3, 3), ci[:2], 1, image_size=8)
    with pytest.raises(ValueError, match="cloud_idx"):
        rasterize_points_packed(torch.zeros(3, 3), ci + 1, 1, image_size=8)
    with pytest.raises(ValueError, match="n_clouds"):
        rasterize_points_packed(torch.zeros(3, 3), ci, -1, image_size=8)


@pytest.mark.parametrize("backend", BACKENDS)
def test_points_behind_camera_skipped_and_radius_zero_lists_nothing(backend):
    dev = device_of(backend)
    pts = torch.tensor([[0.0, 0.0, -0.5], [0.0, 0.0, 0.0]], dtype=torch.float64, device=dev)
    ci = torch.zeros(2, dtype=torch.int64, device=dev)
    fr = rasterize_points_packed(pts, ci, 1, image_size=3, radius=0.5, points_per_pixel=2,
                                 backend=backend)
    assert fr.idx[0, 1, 1].tolist() == [1, -1]  # z = 0 is drawn, z < 0 is not
    zero = rasterize_points_packed(pts, ci, 1, image_size=3, radius=0.0, backend=backend)
    assert (zero.idx == -1).all()
    assert np.isfinite(fr.zbuf.cpu().numpy()).all()


def test_point_on_the_camera_plane_is_skipped_with_finite_gradients():
    """View z = 0 projects to infinity: the point is listed nowhere, gets a zero gradient,
    and does not stop the rest of the cloud from rendering (a NaN point still raises)."""
    import diffrend as dr

    R, T = dr.look_at_view_transform(2.0, 0, 0)
    cam = dr.FoVPerspectiveCameras(R=R, T=T)
    c = cam.get_camera_center()[0]
    pts = torch.stack([torch.zeros(3), c + torch.tensor([0.1, 0.0, 0.0])]).requires_grad_(True)
    r = dr.PointsRasterizer(cameras=cam, raster_settings=dr.PointsRasterizationSettings(
        image_size=16, radius=0.1))
    fr = r(dr.Pointclouds(points=[pts]))
    assert int((fr.idx == 0).sum()) > 0 and int((fr.idx == 1).sum()) == 0
    fr.zbuf.clamp(min=0).sum().backward()
    assert bool(torch.isfinite(pts.grad).all()) and float(pts.grad[1].abs().sum()) == 0.0
    with pytest.raises(ValueError, match="NaN"):
        r(dr.Pointclouds(points=[torch.tensor([[float("nan"), 0.0, 0.0]])]))
