"""Checks of the mesh rasterizer's Numba backend only (the contract every backend passes is
in test_raster_mesh.py): float32 against the reference (the kernel computes in float64),
results independent of the tile size and thread count, a deterministic backward."""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, given, settings
from raster_contract import assert_fragments_equal, cotangents, raster_cases, soup, vjp

from diffrend.raster import rasterize_faces
from diffrend.raster.fragments import RasterParams
from diffrend.raster.mesh import numba as mesh_numba


def _both(case, dtype):
    fv, fm = soup(case["seed"], case["n_faces"], case["n_meshes"], case["z_lo"],
                  case["degenerate"], dtype)
    kw = dict(
        image_size=(case["H"], case["W"]),
        blur_radius=case["blur"],
        faces_per_pixel=case["K"],
        perspective_correct=case["persp"],
        clip_barycentric_coords=case["clip"],
        cull_backfaces=case["cull"],
        z_clip_value=case["z_clip"],
    )
    out = {}
    for backend in ("numba", "reference"):
        x = fv.clone().requires_grad_()
        fr = rasterize_faces(x, fm, case["n_meshes"], backend=backend, **kw)
        out[backend] = (fr, x)
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=raster_cases)
def test_kernel_equals_reference_float32(case):
    # Left out here, covered exactly by the float64 test: nearly-collinear faces (their
    # barycentrics depend on rounding of a ~1e-8 area) and clipped barycentrics (outside a
    # face they snap to a shared vertex, so neighbouring faces tie exactly in depth and
    # float32 rounding picks the order).
    out = _both({**case, "degenerate": False, "clip": False}, torch.float32)
    (a, _), (b, _) = out["numba"], out["reference"]
    # The kernel computes in float64, the reference in float32: a pixel centre within
    # rounding of an edge may flip, so allow a few pixels and compare values loosely.
    n_pix = a.pix_to_face[..., 0].numel()
    assert_fragments_equal(a, b, rtol=1e-3, atol=1e-4, min_agree=min(0.97, 1 - 2.5 / n_pix))


def test_results_do_not_depend_on_tile_size_or_threads():
    fv, fm = soup(3, 300, 2, 0.5, True, torch.float32)
    neighbor = torch.full((300,), -1)
    args = (fv, fm, 2, neighbor, RasterParams((37, 53), 2e-3, 6, True, True, False))
    ref = mesh_numba.rasterize_forward(*args, tile=16)
    threads = torch.get_num_threads()  # (the kernels follow torch's count)
    try:
        for tile, n_threads in [(1, threads), (5, 1), (64, threads), (16, 1)]:
            torch.set_num_threads(n_threads)
            out = mesh_numba.rasterize_forward(*args, tile=tile)
            for x, y in zip(out, ref, strict=True):
                assert torch.equal(x, y)
    finally:
        torch.set_num_threads(threads)


def test_backward_is_deterministic():
    fv, fm = soup(4, 200, 1, 0.5, False, torch.float32)
    grads = []
    for _ in range(2):
        x = fv.clone().requires_grad_()
        fr = rasterize_faces(x, fm, 1, image_size=32, blur_radius=1e-3, faces_per_pixel=8)
        grads.append(vjp(fr, x, cotangents(fr)))
    assert torch.equal(grads[0], grads[1])


def test_row_spans_miss_no_pixel_of_thin_faces():
    # Without blur the kernel tests only the columns of each face's span in a row (plus a
    # column of margin), not its whole box: slivers at every slant, near-horizontal and
    # near-vertical edges, faces leaving the image and a non-square image must give the
    # reference's fragments exactly (float64 on both sides).
    g = torch.Generator().manual_seed(7)
    n = 400
    a = torch.rand(n, 2, generator=g, dtype=torch.float64) * 2.6 - 1.3
    d = torch.randn(n, 2, generator=g, dtype=torch.float64)
    d = d / d.norm(dim=1, keepdim=True) * (0.2 + 1.5 * torch.rand(n, 1, generator=g,
                                                                 dtype=torch.float64))
    thin = 0.1 * 10 ** (-2 * torch.rand(n, 1, generator=g, dtype=torch.float64))
    normal = torch.stack([-d[:, 1], d[:, 0]], 1)
    xy = torch.stack([a, a + d, a + 0.5 * d + thin * normal], 1)  # (n, 3, 2)
    xy[:20, :, 1] = xy[:20, :1, 1] + torch.tensor([0.0, 1e-12, 2e-3], dtype=torch.float64)
    xy[20:40, :, 0] = xy[20:40, :1, 0] + torch.tensor([0.0, 1e-12, 2e-3], dtype=torch.float64)
    z = 1.0 + torch.rand(n, 3, 1, generator=g, dtype=torch.float64)
    fv = torch.cat([xy, z], -1)
    fm = torch.zeros(n, dtype=torch.int64)
    for K, persp in ((1, True), (4, False)):
        kw = dict(image_size=(61, 83), blur_radius=0.0, faces_per_pixel=K,
                  perspective_correct=persp)
        a_fr = rasterize_faces(fv, fm, 1, backend="numba", **kw)
        b_fr = rasterize_faces(fv, fm, 1, backend="reference", **kw)
        assert (a_fr.pix_to_face >= 0).sum() > 500  # the slivers do cover pixels
        assert_fragments_equal(a_fr, b_fr, rtol=1e-9, atol=1e-9)
