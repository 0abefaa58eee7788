"""The Triton points kernels against the pure-torch reference (tests/points_contract.py).

Triton-specific checks; the contract every backend passes (random clouds, gradcheck, empty
and non-finite inputs, the strict rim, NDC orientation) is in test_raster_points.py. Without
a GPU the kernels run in Triton's interpreter on CPU tensors (``TRITON_INTERPRET=1``, set by
conftest.py before triton is first imported): slow, so the clouds and images are small. With
CUDA the same comparisons run compiled on CUDA tensors, plus a bigger cloud.
"""

from __future__ import annotations

import math

import pytest
import torch

CUDA = torch.cuda.is_available()  # without it, conftest.py chose Triton's interpreter
pytest.importorskip("triton", reason="triton is not installed (pip install 'diffrend[triton]')")

from points_contract import TRITON_DEVICE as DEVICE  # noqa: E402
from points_contract import (  # noqa: E402
    assert_point_fragments_equal,
    cloud,
    compare,
    run,
)

from diffrend.raster import rasterize_points_packed  # noqa: E402
from diffrend.raster.fragments import PointsRasterParams  # noqa: E402
from diffrend.raster.points import triton as points_triton  # noqa: E402


def cuda_only(test):
    """Marks a test that needs a CUDA GPU (skipped without one)."""
    return pytest.mark.cuda(pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")(test))


# Both sides compute the coverage test and the values with the same IEEE operations in
# the points' dtype (the kernel runs without fused multiply-adds), so idx is equal
# everywhere and zbuf/dists equal up to 1e-9 in float64 (seen: bit-equal). Gradients are
# the same terms summed in a different order (atomics): 1e-7 (points_contract.compare's
# defaults).


def test_float32_equals_reference():
    pts, ci, radius = cloud(7, 40, 2, -0.5, "per_point", torch.float32)
    # float32 on both sides with the same operations and no fused multiply-adds: even a
    # pixel centre within rounding of a disc's rim is decided alike, so idx, zbuf and dists
    # are required equal. Gradients: float32 sums in a different order, relative 1e-4.
    fr = compare(pts, ci, 2, "triton", rtol=0, atol=0, grad_tol=1e-4, image_size=(16, 20),
                  radius=radius, points_per_pixel=4)
    assert (fr.idx >= 0).sum() > 50


def test_behind_camera_ties_and_empty_values():
    # On the centre pixel: two at z=2 (ties: lower index first), one nearer at z=1, one at
    # z=0 (drawn), one behind the camera (not drawn); two coincident points elsewhere.
    pts = torch.tensor([[0.0, 0.0, 2.0], [0.0, 0.0, 1.0], [0.0, 0.0, 2.0], [0.0, 0.0, -1.0],
                        [0.0, 0.0, 0.0], [0.4, 0.4, 1.5], [0.4, 0.4, 1.5]],
                       dtype=torch.float64)
    fr = compare(pts, torch.zeros(7, dtype=torch.int64), 1, "triton", image_size=5,
                 radius=0.1, points_per_pixel=6)
    assert fr.idx[0, 2, 2].tolist() == [4, 1, 0, 2, -1, -1]
    assert fr.zbuf[0, 2, 2].tolist() == [0.0, 1.0, 2.0, 2.0, -1.0, -1.0]
    assert fr.dists[0, 2, 2].tolist() == [0.0, 0.0, 0.0, 0.0, -1.0, -1.0]
    assert fr.idx[0, 1, 1, :3].tolist() == [5, 6, -1]
    assert (fr.idx[0, 0, 0] == -1).all() and (fr.dists[0, 0, 0] == -1).all()


def test_radius_zero_and_per_point_radii():
    pts, ci, _ = cloud(3, 30, 1, 0.5, "0.0", torch.float64)
    zero = compare(pts, ci, 1, "triton", image_size=(9, 11), radius=0.0, points_per_pixel=2)
    assert (zero.idx == -1).all()
    radius = torch.linspace(0.0, 0.5, 30, dtype=torch.float64)  # point 0 has radius 0
    fr = compare(pts, ci, 1, "triton", image_size=(9, 11), radius=radius, points_per_pixel=3)
    assert not (fr.idx == 0).any() and (fr.idx >= 0).sum() > 20


def test_k_larger_than_point_count_and_large_k():
    # 30 points on a 3x4 image with a large radius: every pixel lists every point in front.
    pts, ci, _ = cloud(5, 30, 1, -0.3, "0.0", torch.float64)
    for K in (37, 64):  # rounds of 8 slots: 5 and 8 rounds
        fr = compare(pts, ci, 1, "triton", image_size=(3, 4), radius=5.0, points_per_pixel=K)
        front = int((pts[:, 2] >= 0).sum())
        assert ((fr.idx >= 0).sum(-1) == front).all()
        assert (fr.idx[..., front:] == -1).all() and (fr.zbuf[..., front:] == -1).all()


def test_many_points_on_one_pixel_keep_every_point():
    # 60 points on one pixel with K = 60 (nothing is dropped), equal depths in pairs.
    g = torch.Generator().manual_seed(0)
    pts = torch.zeros(60, 3, dtype=torch.float64)
    pts[:, 2] = (torch.rand(30, generator=g, dtype=torch.float64) + 0.5).repeat(2)
    fr = compare(pts, torch.zeros(60, dtype=torch.int64), 1, "triton", image_size=3,
                 radius=0.2, points_per_pixel=60)
    assert torch.equal(fr.idx[0, 1, 1], torch.argsort(pts[:, 2], stable=True).to(DEVICE))
    assert (fr.idx[0, 0, 0] == -1).all()


def test_several_clouds_with_an_empty_one_non_square():
    pts, ci, radius = cloud(11, 36, 3, -0.5, "per_point", torch.float64)
    ci = torch.where(ci == 1, 2, ci)  # cloud 1 is empty
    ci[:3] = -1  # three points belong to no cloud
    fr = compare(pts, ci, 3, "triton", image_size=(7, 19), radius=radius, points_per_pixel=3)
    assert (fr.idx[1] == -1).all() and (fr.idx[0] >= 0).any() and (fr.idx[2] >= 0).any()
    assert not ((fr.idx >= 0) & (fr.idx < 3)).any()


@pytest.mark.parametrize("case, match", [
    ("negative radius", "radius must be >= 0"),
    ("nan radius", "radius contains NaN"),
    ("cloud index too large", r"cloud_idx must lie in \[-1, 2\)"),
    ("cloud index below -1", r"cloud_idx must lie in \[-1, 2\)"),
])
def test_bad_values_found_on_the_device_name_the_argument(case, match):
    # The Triton path checks these on the device (in the binning's one host read) and only
    # then runs the host checks that name the argument, as the other backends do up front.
    pts = torch.rand(4, 3) * 0.5 + torch.tensor([0.0, 0.0, 1.0])
    ci = torch.zeros(4, dtype=torch.int64)
    radius = torch.full((4,), 0.1)
    if case == "negative radius":
        radius[2] = -0.1
    elif case == "nan radius":
        radius[2] = math.nan
    elif case == "cloud index too large":
        ci[3] = 2
    else:
        ci[3] = -2
    for backend in ("triton", "reference"):
        with pytest.raises(ValueError, match=match):
            rasterize_points_packed(pts.to(DEVICE), ci.to(DEVICE), 2, image_size=8,
                                    radius=radius.to(DEVICE), backend=backend)


def test_results_do_not_depend_on_tile_size():
    pts, ci, _ = cloud(3, 40, 2, -0.2, "per_point", torch.float32)
    radius = torch.rand(40, generator=torch.Generator().manual_seed(0)) * 0.6
    params = PointsRasterParams((9, 13), 10)
    args = (pts.to(DEVICE), ci.to(DEVICE), 2, radius.to(DEVICE), params)
    ref = points_triton.rasterize_forward(*args, tile=8)
    assert (ref[0] >= 0).sum() > 100
    for tile, warps in [(4, 1), (4, 2), (16, None), (32, 4)]:
        out = points_triton.rasterize_forward(*args, tile=tile, num_warps=warps)
        for x, y in zip(out, ref, strict=True):
            assert torch.equal(x, y), (tile, warps)
    with pytest.raises(ValueError, match="power of two"):
        points_triton.rasterize_forward(*args, tile=6)


def test_deterministic_backward_equals_atomic_backward():
    pts, ci, radius = cloud(4, 30, 1, 0.5, "0.3", torch.float64)
    _, g_atomic = run(pts, ci, 1, "triton", image_size=10, radius=radius,
                       points_per_pixel=3)
    torch.use_deterministic_algorithms(True)
    try:
        _, g_det = run(pts, ci, 1, "triton", image_size=10, radius=radius,
                        points_per_pixel=3)
    finally:
        torch.use_deterministic_algorithms(False)
    torch.testing.assert_close(g_det, g_atomic, rtol=1e-12, atol=1e-12)
    assert (g_det != 0).any()


def test_triton_on_cpu_needs_the_interpreter(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(ValueError, match="TRITON_INTERPRET"):
        rasterize_points_packed(torch.rand(3, 3), torch.zeros(3, dtype=torch.int64), 1,
                                image_size=8, backend="triton")


# ---- CUDA only: a bigger cloud, the auto backend


@cuda_only
def test_auto_picks_triton_on_cuda(monkeypatch):
    called = []
    forward = points_triton.rasterize_forward
    monkeypatch.setattr(points_triton, "rasterize_forward",
                        lambda *a, **k: called.append(1) or forward(*a, **k))
    rasterize_points_packed(torch.rand(3, 3, device="cuda"),
                            torch.zeros(3, dtype=torch.int64, device="cuda"), 1, image_size=8)
    assert called


@cuda_only
def test_cuda_100k_points_256_k8():
    pts, ci, _ = cloud(21, 100_000, 2, -0.3, "0.0", torch.float32)
    a, ga = run(pts, ci, 2, "triton", image_size=256, radius=0.01, points_per_pixel=8)
    b, gb = run(pts, ci, 2, "reference", device=DEVICE, image_size=256, radius=0.01,
                points_per_pixel=8)
    # Same float32 operations on both sides, no fused multiply-adds in the kernel: the
    # selection and values are required equal (not yet seen on a GPU; if a pixel ever
    # differs, it is a centre within float32 rounding of a rim).
    assert_point_fragments_equal(a, b, rtol=0, atol=0)
    # ~4 points per pixel on average here: most pixels list some, some fill all K slots.
    assert (a.idx[..., 0] >= 0).float().mean() > 0.5
    assert bool((a.idx[..., 7] >= 0).any())
    # float32 sums of up to ~40 terms per point in different orders (atomics).
    torch.testing.assert_close(ga, gb, rtol=1e-4, atol=1e-4 * gb.abs().max().item())
