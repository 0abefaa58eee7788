"""The Numba kernels against the pure-torch reference, and the reference against gradcheck."""

from __future__ import annotations

import math

import numba
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from raster_contract import assert_fragments_equal, cotangents, vjp

from diffrend.raster import cpu, rasterize_faces
from diffrend.raster.fragments import RasterParams


def soup(seed: int, n_faces: int, n_meshes: int, z_lo: float, degenerate: bool, dtype):
    """Random triangles; some collapsed to a segment or a point when ``degenerate``."""
    g = torch.Generator().manual_seed(seed)
    fv = torch.rand(n_faces, 3, 3, generator=g, dtype=dtype) * 2.4 - 1.2
    fv[..., 2] = z_lo + torch.rand(n_faces, 3, generator=g, dtype=dtype) * 3.0
    if degenerate and n_faces >= 3:
        fv[0, 1] = fv[0, 0]  # two coincident vertices
        fv[1, 2] = 0.5 * (fv[1, 0] + fv[1, 1])  # collinear
        fv[2, :] = fv[2, 0]  # a point
    face_mesh = torch.randint(0, n_meshes, (n_faces,), generator=g)
    return fv, face_mesh


raster_cases = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 10_000),
        "n_faces": st.integers(1, 40),
        "n_meshes": st.integers(1, 3),
        "H": st.integers(1, 24),
        "W": st.integers(1, 24),
        "K": st.sampled_from([1, 2, 3, 8, 50]),
        "blur": st.sampled_from([0.0, 1e-4, 3e-3, 0.05]),
        "persp": st.booleans(),
        "clip": st.booleans(),
        "cull": st.booleans(),
        "z_lo": st.sampled_from([0.5, -1.0]),  # -1: triangles cross the camera plane
        "z_clip": st.sampled_from([None, 0.3]),
        "degenerate": st.booleans(),
    }
)


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


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=raster_cases)
def test_kernel_equals_reference_float64(case):
    out = _both(case, torch.float64)
    (a, xa), (b, xb) = out["numba"], out["reference"]
    # float64 on both sides, same formulas: equal up to rounding.
    assert_fragments_equal(a, b, rtol=1e-9, atol=1e-9)
    cots = cotangents(a)
    ga, gb = vjp(a, xa, cots), vjp(b, xb, cots)
    assert torch.isfinite(ga).all()
    torch.testing.assert_close(ga, gb, rtol=1e-7, atol=1e-7)


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
    ref = cpu.rasterize_forward(*args, tile=16)
    threads = numba.get_num_threads()
    try:
        for tile, n_threads in [(1, threads), (5, 1), (64, threads), (16, 1)]:
            numba.set_num_threads(n_threads)
            out = cpu.rasterize_forward(*args, tile=tile)
            for x, y in zip(out, ref, strict=True):
                assert torch.equal(x, y)
    finally:
        numba.set_num_threads(threads)


def test_backward_is_deterministic():
    fv, fm = soup(4, 200, 1, 0.5, False, torch.float32)
    grads = []
    for _ in range(2):
        x = fv.clone().requires_grad_()
        fr = rasterize_faces(x, fm, 1, image_size=32, blur_radius=1e-3, faces_per_pixel=8)
        grads.append(vjp(fr, x, cotangents(fr)))
    assert torch.equal(grads[0], grads[1])


def test_k_larger_than_face_count_pads_with_minus_one():
    fv, fm = soup(5, 3, 1, 0.5, False, torch.float32)
    fr = rasterize_faces(fv, fm, 1, image_size=16, faces_per_pixel=10, blur_radius=0.5,
                         clip_barycentric_coords=True)
    assert (fr.pix_to_face[..., 3:] == -1).all()
    assert (fr.zbuf[..., 3:] == -1).all() and (fr.bary_coords[..., 3:, :] == -1).all()
    assert (fr.pix_to_face[..., :3] >= 0).any()


def test_depth_order_and_empty_values():
    # Two overlapping screen-filling triangles at depths 2 and 3, listed far one first.
    far = torch.tensor([[[-3.0, -3.0, 3.0], [3.0, -3.0, 3.0], [0.0, 3.0, 3.0]]])
    near = far.clone()
    near[..., 2] = 2.0
    fv = torch.cat((far, near))
    fr = rasterize_faces(fv, torch.zeros(2, dtype=torch.int64), 1, image_size=8,
                         faces_per_pixel=3)
    centre = fr.pix_to_face[0, 4, 4]
    assert centre.tolist() == [1, 0, -1]
    assert fr.zbuf[0, 4, 4].tolist() == [2.0, 3.0, -1.0]
    assert fr.dists[0, 4, 4, 0] < 0 and fr.dists[0, 4, 4, 2] == -1


@pytest.mark.parametrize("backend, clip, seed", [("reference", False, 7), ("numba", True, 8)])
def test_gradcheck_float64(backend, clip, seed):
    fv, fm = soup(seed, 4, 1, 1.0, False, torch.float64)
    fv.requires_grad_()

    def f(x):
        fr = rasterize_faces(x, fm, 1, image_size=(6, 7), blur_radius=0.02, faces_per_pixel=3,
                             perspective_correct=True, clip_barycentric_coords=clip,
                             backend=backend)
        return fr.zbuf, fr.bary_coords, fr.dists

    assert torch.autograd.gradcheck(f, (fv,), eps=1e-7, atol=1e-5, rtol=1e-4)


def test_gradients_finite_on_degenerate_geometry():
    fv, fm = soup(9, 30, 1, 0.5, True, torch.float32)
    fv[3, 1] = fv[3, 0] + 1e-9  # nearly coincident
    for backend in ("numba", "reference"):
        x = fv.clone().requires_grad_()
        fr = rasterize_faces(x, fm, 1, image_size=24, blur_radius=1e-2, faces_per_pixel=5,
                             perspective_correct=True, clip_barycentric_coords=True,
                             backend=backend)
        g = vjp(fr, x, cotangents(fr))
        assert torch.isfinite(g).all()
        assert (fr.pix_to_face != 2).all()  # the point-triangle is never drawn


def test_near_plane_clipping_keeps_visible_part():
    # A big triangle crossing the camera plane: without clipping it is skipped (a vertex is
    # behind the camera), with clipping its visible part is drawn.
    tri = torch.tensor([[[-0.5, -0.5, 2.0], [0.5, -0.5, 2.0], [0.0, 0.5, -1.0]]])
    fm = torch.zeros(1, dtype=torch.int64)
    off = rasterize_faces(tri, fm, 1, image_size=16, perspective_correct=True)
    on = rasterize_faces(tri, fm, 1, image_size=16, perspective_correct=True, z_clip_value=0.5)
    assert (off.pix_to_face == -1).all()
    hit = on.pix_to_face[..., 0] == 0
    assert hit.sum() > 10
    b = on.bary_coords[..., 0, :][hit]
    torch.testing.assert_close(b.sum(-1), torch.ones_like(b[:, 0]))
    assert (on.zbuf[..., 0][hit] >= 0.5 - 1e-5).all()


def test_near_plane_as_a_tensor_equals_the_number():
    # MeshRasterizer passes znear / 2 as a device tensor (read in the clipping check's one
    # host sync, not on its own): the same fragments as the number.
    tri = torch.tensor([[[-0.5, -0.5, 2.0], [0.5, -0.5, 2.0], [0.0, 0.5, -1.0]],
                        [[-0.2, -0.6, 1.0], [0.6, -0.1, 3.0], [0.1, 0.4, 2.0]]])
    fm = torch.zeros(2, dtype=torch.int64)
    for z in (0.5, 0.05):  # clips the first face; no face needs clipping
        a = rasterize_faces(tri, fm, 1, image_size=16, perspective_correct=True,
                            z_clip_value=z)
        b = rasterize_faces(tri, fm, 1, image_size=16, perspective_correct=True,
                            z_clip_value=torch.tensor(z))
        for x, y in zip(a, b, strict=True):
            assert torch.equal(x, y)
    assert (a.pix_to_face >= 0).any()
    for bad, message in ((torch.tensor(-0.5), "positive and finite"),
                         (torch.tensor(math.nan), "positive and finite"),
                         (torch.tensor([0.5]), "0-dim"), (torch.tensor(1), "0-dim float")):
        with pytest.raises(ValueError, match=message):
            rasterize_faces(tri, fm, 1, image_size=16, z_clip_value=bad)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(image_size=0), "image_size"),
        (dict(image_size=(4, -1)), "image_size"),
        (dict(image_size=(4, 4, 4)), "image_size"),
        (dict(blur_radius=-1.0), "blur_radius"),
        (dict(blur_radius=math.nan), "blur_radius"),
        (dict(faces_per_pixel=0), "faces_per_pixel"),
        (dict(faces_per_pixel=2.5), "faces_per_pixel"),
        (dict(backend="opengl"), "backend"),
        (dict(z_clip_value=-1.0), "z_clip_value"),
    ],
)
def test_bad_settings_raise(kwargs, message):
    fv, fm = soup(0, 3, 1, 0.5, False, torch.float32)
    with pytest.raises(ValueError, match=message):
        rasterize_faces(fv, fm, 1, **{"image_size": 8, **kwargs})


@pytest.mark.parametrize("backend", ["numba", "reference"])
def test_nan_vertices_raise(backend):
    fv, fm = soup(0, 3, 1, 0.5, False, torch.float32)
    fv[1, 2, 0] = math.nan
    with pytest.raises(ValueError, match="NaN"):
        rasterize_faces(fv, fm, 1, image_size=8, backend=backend)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="face_verts"):
        rasterize_faces(torch.zeros(3, 3), torch.zeros(3, dtype=torch.int64), 1, image_size=8)
    with pytest.raises(ValueError, match="face_mesh"):
        rasterize_faces(torch.zeros(3, 3, 3), torch.zeros(2, dtype=torch.int64), 1,
                        image_size=8)


def test_no_faces_gives_empty_image():
    fr = rasterize_faces(torch.zeros(0, 3, 3), torch.zeros(0, dtype=torch.int64), 2,
                         image_size=(5, 6), faces_per_pixel=2)
    assert fr.pix_to_face.shape == (2, 5, 6, 2) and (fr.pix_to_face == -1).all()


def test_pixel_centres_made_under_inference_mode_still_serve_autograd():
    # The centres are made once per (H, W, dtype, device) and shared (no host copy per
    # call); made first under inference_mode they must still be normal tensors.
    from diffrend.raster.grid import pixel_centers_ndc, pixel_centers_torch

    with torch.inference_mode():
        ys, xs = pixel_centers_torch(11, 7, torch.float64, "cpu")
    assert not ys.is_inference() and not xs.is_inference()
    assert pixel_centers_torch(11, 7, torch.float64, "cpu")[0] is ys
    ny, nx = pixel_centers_ndc(11, 7)
    assert torch.equal(ys, torch.from_numpy(ny).double())
    assert torch.equal(xs, torch.from_numpy(nx).double())
    fv, fm = soup(1, 4, 1, 0.5, False, torch.float64)
    fv.requires_grad_()
    fr = rasterize_faces(fv, fm, 1, image_size=(11, 7), blur_radius=1e-3, faces_per_pixel=2,
                         backend="reference")
    (fr.zbuf.sum() + fr.dists.sum()).backward()
    assert torch.isfinite(fv.grad).all() and fv.grad.abs().sum() > 0
