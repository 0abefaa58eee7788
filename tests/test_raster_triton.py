"""The Triton kernels against the pure-torch reference (tests/raster_contract.py).

Triton-specific checks; the contract every backend passes (random scenes, gradcheck, empty
and NaN inputs, K > F) is in test_raster_mesh.py. Without a GPU the kernels run in Triton's
interpreter on CPU tensors (``TRITON_INTERPRET=1``, set by conftest.py before triton is first
imported): slow, so the scenes are small. With CUDA the same comparisons run compiled on
CUDA tensors, plus bigger scenes.
"""

from __future__ import annotations

import math

import pytest
import torch

CUDA = torch.cuda.is_available()  # without it, conftest.py chose Triton's interpreter
pytest.importorskip("triton", reason="triton is not installed (pip install 'diffrend[triton]')")

from raster_contract import TRITON_DEVICE as DEVICE  # noqa: E402
from raster_contract import (  # noqa: E402
    assert_fragments_equal,
    compare,
    cotangents,
    run,
    soup,
    vjp,
)

from diffrend.raster import rasterize_faces  # noqa: E402
from diffrend.raster.fragments import RasterParams  # noqa: E402
from diffrend.raster.mesh import triton as mesh_triton  # noqa: E402
from diffrend.raster.triton_shared import SLOTS  # noqa: E402


def cuda_only(test):
    """Marks a test that needs a CUDA GPU (skipped without one)."""
    return pytest.mark.cuda(pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")(test))


# float64 on both sides, same formulas in the same order: equal up to rounding (the kernel
# may fuse multiply-adds on the GPU), hence 1e-9 on values and 1e-7 on summed gradients.
CASES = {
    "hard": dict(image_size=(16, 20)),
    "soft-persp-clip": dict(image_size=(16, 20), blur_radius=3e-3, faces_per_pixel=3,
                            perspective_correct=True, clip_barycentric_coords=True),
    "blur-no-clip": dict(image_size=(13, 9), blur_radius=0.05, faces_per_pixel=4),
    "cull": dict(image_size=(16, 20), faces_per_pixel=2, cull_backfaces=True, blur_radius=1e-3),
    "persp-K2": dict(image_size=(20, 16), faces_per_pixel=2, perspective_correct=True),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_reference_float64(name):
    fv, fm = soup(11, 40, 2, 0.5, False, torch.float64)
    fr = compare(fv, fm, 2, "triton", **CASES[name])
    assert (fr.pix_to_face >= 0).any()


def test_degenerate_triangles():
    fv, fm = soup(12, 30, 1, 0.5, True, torch.float64)
    fv[3, 1] = fv[3, 0] + 1e-9  # nearly coincident vertices
    fr = compare(fv, fm, 1, "triton", image_size=(16, 20), blur_radius=1e-2, faces_per_pixel=5,
                  perspective_correct=True, clip_barycentric_coords=True)
    assert not (fr.pix_to_face == 2).any()  # the point-triangle is never drawn


@pytest.mark.parametrize("persp", [False, True])
def test_near_plane_crossing(persp):
    # z from -1: many faces cross the camera plane and are clipped, some split in two
    # halves (the neighbor rule).
    fv, fm = soup(13, 30, 2, -1.0, False, torch.float64)
    fr = compare(fv, fm, 2, "triton", image_size=(16, 20), blur_radius=2e-3, faces_per_pixel=3,
                  perspective_correct=persp, z_clip_value=0.3)
    assert (fr.pix_to_face >= 0).any()


def test_batch_of_different_meshes():
    fv, fm = soup(14, 36, 3, 0.5, False, torch.float64)
    fm[fm == 2] = 1  # image 2 stays empty
    fr = compare(fv, fm, 3, "triton", image_size=(12, 12), faces_per_pixel=2, blur_radius=1e-3)
    assert (fr.pix_to_face[2] == -1).all() and (fr.pix_to_face[:2] >= 0).any()


def test_large_k():
    # K = 50: a 64-slot list per pixel (tile 8), every face within blur of most pixels.
    fv, fm = soup(15, 24, 1, 0.5, False, torch.float64)
    fr = compare(fv, fm, 1, "triton", image_size=(6, 7), faces_per_pixel=50, blur_radius=0.3,
                  clip_barycentric_coords=True, perspective_correct=True)
    assert (fr.pix_to_face[..., 20] >= 0).any()


def test_depth_ties_go_to_the_lower_face_index():
    # Four copies of one triangle at equal depth, listed in a scrambled order of indices.
    tri = torch.tensor([[-0.9, -0.9, 2.0], [0.9, -0.9, 2.0], [0.0, 0.9, 2.0]],
                       dtype=torch.float64)
    fv = tri.expand(4, 3, 3).clone()
    fv[1, :, 2] = 1.5  # nearest
    fm = torch.zeros(4, dtype=torch.int64)
    fr = compare(fv, fm, 1, "triton", image_size=8, faces_per_pixel=3)
    assert fr.pix_to_face[0, 4, 4].tolist() == [1, 0, 2]


@pytest.mark.parametrize("kw", [dict(), dict(faces_per_pixel=2, blur_radius=1e-3,
                                               clip_barycentric_coords=True)])
def test_faces_behind_full_lists(kw):
    # Screen-filling triangles first, so every pixel's list fills up and the kernel's
    # early depth rejection of whole faces is exercised by the faces after them.
    big = torch.tensor([[[-5.0, -5.0, 2.0], [5.0, -5.0, 2.0], [0.0, 5.0, 2.0]]],
                       dtype=torch.float64).expand(2, 3, 3).clone()
    big[1, :, 2] = 2.5
    fv, fm = soup(18, 40, 1, 0.5, False, torch.float64)
    fv[..., 2] = 1.7 + (fv[..., 2] - 0.5) * 0.2  # depths around the big ones' 2 and 2.5
    fr = compare(torch.cat((big, fv)), torch.cat((torch.zeros(2, dtype=torch.int64), fm)), 1,
                 "triton", image_size=(16, 20), **kw)
    assert (fr.pix_to_face > 1).any()


def test_float32():
    fv, fm = soup(16, 40, 2, 0.5, False, torch.float32)
    # Both sides compute in float32 but may round differently (fused multiply-adds on the
    # GPU), so a pixel centre within rounding of an edge may flip: allow one pixel, compare
    # values to float32 precision. Gradients sum ~100 float32 terms per vertex, in a
    # different order (atomics): relative 1e-3.
    npix = 2 * 16 * 20
    compare(fv, fm, 2, "triton", rtol=1e-4, atol=1e-5, grad_tol=1e-3, min_agree=1 - 1.5 / npix,
             image_size=(16, 20), blur_radius=3e-3, faces_per_pixel=3,
             perspective_correct=True)


@pytest.mark.parametrize("K, blur, size, n_faces", [(3, 2e-3, (9, 11), 20),
                                                    (2 * SLOTS + 3, 0.3, (5, 6), 40)])
def test_results_do_not_depend_on_tile_size(K, blur, size, n_faces):
    # (tile, num_warps) pairs: defaults, and programs with many more threads than pixels
    # (tile 2 or 4 with 4 warps, tile 8 with 4 warps: the pairs where the old
    # reduction-based list dropped faces on the GPU). K = 19: lists of 3 rounds.
    fv, fm = soup(3, n_faces, 2, 0.5, True, torch.float32)
    params = RasterParams(size, blur, K, True, True, False)
    args = (fv.to(DEVICE), fm.to(DEVICE), 2, torch.full((n_faces,), -1, device=DEVICE),
            params)
    ref = mesh_triton.rasterize_forward(*args, tile=8)
    assert (ref[0][..., min(K - 1, SLOTS)] >= 0).any()
    pairs = ((2, None), (4, None), (16, None), (2, 4), (4, 1), (8, 4))
    if K > SLOTS:  # (slow in the interpreter: skip the smallest tiles)
        pairs = ((4, None), (16, None), (8, 4))
    for tile, warps in pairs:
        out = mesh_triton.rasterize_forward(*args, tile=tile, num_warps=warps)
        for x, y in zip(out, ref, strict=True):
            assert torch.equal(x, y), (tile, warps)


# ---- the list's rounds: SLOTS entries per walk over a tile's faces, any K


def _exact(fv, fm, n_meshes, **kw):
    """Triton against the reference in float64: identical face lists, values to rounding
    (the interpreter's operations are the reference's; compiled code may fuse)."""
    return compare(fv, fm, n_meshes, "triton", rtol=1e-12, atol=1e-12, **kw)


@pytest.mark.parametrize("K", [SLOTS, SLOTS + 1, 2 * SLOTS + 3])
@pytest.mark.parametrize("kw", [dict(blur_radius=0.2, clip_barycentric_coords=True,
                                     perspective_correct=True),
                                dict(blur_radius=0.05),
                                dict()])
def test_rounds_match_reference(K, kw):
    # Big faces over a small image, so most pixels have more than K candidates.
    fv, fm = soup(21, 30, 1, 0.5, False, torch.float64)
    fv[..., :2] *= 1.5
    fr = _exact(fv, fm, 1, image_size=(6, 7), faces_per_pixel=K, **kw)
    # (the scene lists 12 or more faces at some pixel in each case, and ends some lists
    # early)
    assert (fr.pix_to_face[..., min(K, 12) - 1] >= 0).any()
    assert (fr.pix_to_face[..., K - 1] == -1).any()


@pytest.mark.parametrize("K", [SLOTS + 1, 2 * SLOTS + 3, 40])
def test_rounds_with_k_larger_than_face_count(K):
    fv, fm = soup(22, 7, 1, 0.5, False, torch.float64)
    fr = _exact(fv, fm, 1, image_size=(5, 6), faces_per_pixel=K, blur_radius=8.0,
                clip_barycentric_coords=True)
    assert (fr.pix_to_face[..., 6] >= 0).all()  # every face within blur of every pixel
    assert (fr.pix_to_face[..., 7:] == -1).all() and (fr.zbuf[..., 7:] == -1).all()


@pytest.mark.parametrize("K", [SLOTS - 1, SLOTS + 2, 2 * SLOTS + 3])
def test_equal_depths_across_a_round_boundary(K):
    # 20 copies of one triangle at one depth (ties go to the lower index), with a nearer
    # and a farther face among them, so that the ties straddle the rounds' boundaries.
    tri = torch.tensor([[-0.9, -0.9, 2.0], [0.9, -0.9, 2.0], [0.0, 0.9, 2.0]],
                       dtype=torch.float64)
    fv = tri.expand(22, 3, 3).clone()
    fv[13, :, 2] = 1.5  # nearest
    fv[4, :, 2] = 3.0  # farthest
    fm = torch.zeros(22, dtype=torch.int64)
    fr = _exact(fv, fm, 1, image_size=8, faces_per_pixel=K)
    want = [13] + [i for i in range(22) if i not in (4, 13)] + [4]
    assert fr.pix_to_face[0, 4, 4].tolist() == want[:K]


def test_deterministic_backward_equals_atomic_backward():
    fv, fm = soup(4, 20, 1, 0.5, False, torch.float64)
    _, g_atomic = run(fv, fm, 1, "triton", image_size=10, blur_radius=1e-2,
                       faces_per_pixel=3)
    torch.use_deterministic_algorithms(True)
    try:
        _, g_det = run(fv, fm, 1, "triton", image_size=10, blur_radius=1e-2,
                        faces_per_pixel=3)
    finally:
        torch.use_deterministic_algorithms(False)
    torch.testing.assert_close(g_det, g_atomic, rtol=1e-12, atol=1e-12)
    assert (g_det != 0).any()


def test_triton_on_cpu_needs_the_interpreter(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    fv, fm = soup(0, 3, 1, 0.5, False, torch.float32)
    with pytest.raises(ValueError, match="TRITON_INTERPRET"):
        rasterize_faces(fv, fm, 1, image_size=8, backend="triton")


# ---- CUDA only: bigger scenes, the auto backend


@cuda_only
def test_auto_picks_triton_on_cuda(monkeypatch):
    called = []
    forward = mesh_triton.rasterize_forward
    monkeypatch.setattr(mesh_triton, "rasterize_forward",
                        lambda *a, **k: called.append(1) or forward(*a, **k))
    fv, fm = soup(0, 3, 1, 0.5, False, torch.float32)
    rasterize_faces(fv.cuda(), fm.cuda(), 1, image_size=8)
    assert called


@cuda_only
@pytest.mark.parametrize("K", [100, 300])
def test_cuda_very_large_k(K):
    fv, fm = soup(17, 150, 1, 0.5, False, torch.float32)
    # blur 0.5 (radius ~0.71 NDC) lists faces at pixels far outside them, where the
    # unclipped barycentrics are extrapolated well beyond [0, 1] and zbuf = sum w_i z_i
    # cancels terms of size |w| z: float32 rounding differences (fused multiply-adds,
    # Triton's approximate float32 division) grow with |w|. Seen on an H100: 1 zbuf value in
    # 144000 off by 1.1e-4 (relative 2.6e-4), hence 1e-3 here.
    fr = compare(fv, fm, 1, "triton", rtol=1e-3, atol=1e-3, grad_tol=None, min_agree=0.99,
                  image_size=(24, 20), faces_per_pixel=K, blur_radius=0.5)
    assert (fr.pix_to_face[..., 99] >= 0).any()


@cuda_only
def test_cuda_cow_256_k8():
    from diffrend.cameras import FoVPerspectiveCameras, look_at_view_transform
    from diffrend.io import default_mesh_path
    from diffrend.jobs.preview import load_for_render
    from diffrend.raster import MeshRasterizer, RasterizationSettings

    meshes = load_for_render(str(default_mesh_path()), device=DEVICE)
    R, T = look_at_view_transform(dist=2.7, elev=10.0, azim=torch.tensor([30.0, 150.0]))
    cameras = FoVPerspectiveCameras(R=R, T=T, device=DEVICE)
    meshes = meshes.extend(2)
    out = {}
    for backend in ("triton", "reference"):
        verts = meshes.verts_padded().detach().clone().requires_grad_()
        rast = MeshRasterizer(cameras, RasterizationSettings(
            image_size=256, blur_radius=math.log(1 / 1e-4 - 1) * 1e-4, faces_per_pixel=8,
            backend=backend))
        fr = rast(meshes.update_padded(verts))
        cots = tuple(c.to(DEVICE) for c in cotangents(fr))
        out[backend] = (fr, vjp(fr, verts, cots))
    (a, ga), (b, gb) = out["triton"], out["reference"]
    # float32 on both sides; neighbouring faces of a closed mesh share edges and vertices,
    # so pixels on a shared edge and equal clipped depths may order differently under
    # different rounding: allow 0.5% of pixels, values to float32 precision.
    assert_fragments_equal(a, b, rtol=1e-4, atol=1e-5, min_agree=0.995)
    assert (a.pix_to_face >= 0).float().mean() > 0.1
    # Gradients differ where face lists differ; compare their overall direction.
    cos = torch.nn.functional.cosine_similarity(ga.flatten(), gb.flatten(), dim=0)
    assert cos > 0.99
