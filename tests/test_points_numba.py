"""Checks of the points rasterizer's Numba backend only (the contract every backend passes is
in test_raster_points.py): float32 against the reference, results independent of the tile
size and thread count, dense pixels, a deterministic backward."""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, given, settings
from points_contract import (
    assert_point_fragments_equal,
    cloud,
    cotangents,
    point_cases,
    vjp,
)

from diffrend import rasterize_points_packed
from diffrend.raster.fragments import PointsRasterParams
from diffrend.raster.points import numba as points_numba


def _both(case, dtype):
    pts, ci, radius = cloud(case["seed"], case["n_points"], case["n_clouds"], case["z_lo"],
                            case["radius"], dtype)
    out = {}
    for backend in ("numba", "reference"):
        x = pts.clone().requires_grad_()
        fr = rasterize_points_packed(x, ci, case["n_clouds"], image_size=(case["H"], case["W"]),
                                     radius=radius, points_per_pixel=case["K"], backend=backend)
        out[backend] = (fr, x)
    return out


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=point_cases)
def test_kernel_equals_reference_float32(case):
    (a, xa), (b, xb) = _both(case, torch.float32).values()
    # The coverage test is computed in float32 with the same operations on both sides, so
    # even discs whose rim passes within rounding of a pixel centre agree.
    assert_point_fragments_equal(a, b, rtol=0, atol=0)
    cots = cotangents(a)
    # The kernel accumulates in float64, autograd in float32.
    torch.testing.assert_close(vjp(a, xa, cots), vjp(b, xb, cots), rtol=1e-4, atol=1e-4)


def test_backward_is_deterministic():
    pts, ci, radius = cloud(4, 300, 2, 0.5, "0.2", torch.float32)
    grads = []
    for _ in range(2):
        x = pts.clone().requires_grad_()
        fr = rasterize_points_packed(x, ci, 2, image_size=32, radius=radius, points_per_pixel=8)
        grads.append(vjp(fr, x, cotangents(fr)))
    assert torch.equal(grads[0], grads[1])


def test_results_do_not_depend_on_tile_size_or_threads():
    pts, ci, _ = cloud(3, 400, 3, -0.5, "per_point", torch.float32)
    radius = torch.rand(400, generator=torch.Generator().manual_seed(0)) * 0.3
    params = PointsRasterParams((37, 53), 6)
    ref = points_numba.rasterize_forward(pts, ci, 3, radius, params, tile=16)
    assert (ref[0] >= 0).sum() > 1000
    threads = torch.get_num_threads()  # (the kernels follow torch's count)
    try:
        for tile, n_threads in [(1, threads), (5, 1), (64, threads), (16, 1)]:
            torch.set_num_threads(n_threads)
            out = points_numba.rasterize_forward(pts, ci, 3, radius, params, tile=tile)
            for x, y in zip(out, ref, strict=True):
                assert torch.equal(x, y)
    finally:
        torch.set_num_threads(threads)


def test_dense_pixels_keep_every_point():
    # 500 points on one pixel: no per-tile or per-pixel budget drops any (K = 500).
    g = torch.Generator().manual_seed(0)
    pts = torch.zeros(500, 3)
    pts[:, 2] = torch.rand(500, generator=g) + 0.5
    fr = rasterize_points_packed(pts, torch.zeros(500, dtype=torch.int64), 1, image_size=3,
                                 radius=0.2, points_per_pixel=500)
    got = fr.idx[0, 1, 1]
    assert torch.equal(got, torch.argsort(pts[:, 2], stable=True))
    assert (fr.idx[0, 0, 0] == -1).all()
