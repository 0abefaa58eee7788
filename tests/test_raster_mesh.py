"""The mesh rasterizer's contract, for every backend: the Numba and Triton kernels against
the pure-torch reference, gradcheck, and the checks every backend must pass alike.

Triton runs in its interpreter on CPU tensors without a GPU (conftest.py): slow, so its
scenes here are small. Backend-specific checks are in test_raster_numba.py and
test_raster_triton.py.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from raster_contract import (
    BACKENDS,
    TRITON,
    compare,
    device_of,
    raster_cases,
    run,
    soup,
)

from diffrend.raster import rasterize_faces

# Examples per backend: Triton's interpreter is slow, so fewer and smaller scenes.
EXAMPLES = {"numba": 60, "triton": 15}


@pytest.mark.parametrize("backend", ["numba", TRITON])
def test_random_scenes_equal_reference_float64(backend):
    # float64 on both sides, same formulas in the same order: equal up to rounding (the
    # Triton kernel may fuse multiply-adds on the GPU), hence 1e-9 on values and 1e-7 on
    # summed gradients.
    @settings(max_examples=EXAMPLES[backend], deadline=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(case=raster_cases)
    def check(case):
        if backend == "triton":
            case = {**case, "H": min(case["H"], 12), "W": min(case["W"], 12),
                    "n_faces": min(case["n_faces"], 20), "K": min(case["K"], 8)}
        fv, fm = soup(case["seed"], case["n_faces"], case["n_meshes"], case["z_lo"],
                      case["degenerate"], torch.float64)
        compare(fv, fm, case["n_meshes"], backend, image_size=(case["H"], case["W"]),
                blur_radius=case["blur"], faces_per_pixel=case["K"],
                perspective_correct=case["persp"], clip_barycentric_coords=case["clip"],
                cull_backfaces=case["cull"], z_clip_value=case["z_clip"])

    check()


@pytest.mark.parametrize("backend", BACKENDS)
def test_k_larger_than_face_count_pads_with_minus_one(backend):
    fv, fm = soup(5, 3, 1, 0.5, False, torch.float64)
    kw = dict(image_size=(8, 8), faces_per_pixel=10, blur_radius=0.5,
              clip_barycentric_coords=True)
    fr = run(fv, fm, 1, backend, **kw)[0] if backend == "reference" else compare(
        fv, fm, 1, backend, **kw)
    assert (fr.pix_to_face[..., 3:] == -1).all()
    assert (fr.zbuf[..., 3:] == -1).all() and (fr.bary_coords[..., 3:, :] == -1).all()
    assert (fr.pix_to_face[..., 2] >= 0).any()


@pytest.mark.parametrize("backend", BACKENDS)
def test_depth_order_and_empty_values(backend):
    # Two overlapping screen-filling triangles at depths 2 and 3, listed far one first.
    far = torch.tensor([[[-3.0, -3.0, 3.0], [3.0, -3.0, 3.0], [0.0, 3.0, 3.0]]])
    near = far.clone()
    near[..., 2] = 2.0
    fv = torch.cat((far, near)).to(device_of(backend))
    fr = rasterize_faces(fv, torch.zeros(2, dtype=torch.int64, device=fv.device), 1,
                         image_size=8, faces_per_pixel=3, backend=backend)
    centre = fr.pix_to_face[0, 4, 4]
    assert centre.tolist() == [1, 0, -1]
    assert fr.zbuf[0, 4, 4].tolist() == [2.0, 3.0, -1.0]
    assert fr.dists[0, 4, 4, 0] < 0 and fr.dists[0, 4, 4, 2] == -1


@pytest.mark.parametrize("backend, clip, seed, n_faces, size, K, fast", [
    ("reference", False, 7, 4, (6, 7), 3, False),
    ("numba", True, 8, 4, (6, 7), 3, False),
    pytest.param("triton", True, 8, 3, (5, 6), 2, True, marks=TRITON.marks),
])
def test_gradcheck_float64(backend, clip, seed, n_faces, size, K, fast):
    fv, fm = soup(seed, n_faces, 1, 1.0, False, torch.float64)
    fv = fv.to(device_of(backend)).requires_grad_()
    fm = fm.to(fv.device)

    def f(x):
        fr = rasterize_faces(x, fm, 1, image_size=size, blur_radius=0.02, faces_per_pixel=K,
                             perspective_correct=True, clip_barycentric_coords=clip,
                             backend=backend)
        return fr.zbuf, fr.bary_coords, fr.dists

    assert torch.autograd.gradcheck(f, (fv,), eps=1e-7, atol=1e-5, rtol=1e-4, fast_mode=fast)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_finite_on_degenerate_geometry(backend):
    fv, fm = soup(9, 30, 1, 0.5, True, torch.float32)
    fv[3, 1] = fv[3, 0] + 1e-9  # nearly coincident
    fr, g = run(fv, fm, 1, backend, image_size=(16, 20), blur_radius=1e-2, faces_per_pixel=5,
                perspective_correct=True, clip_barycentric_coords=True)
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


@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_vertices_raise(backend):
    fv, fm = soup(0, 3, 1, 0.5, False, torch.float32)
    fv[1, 2, 0] = math.nan
    dev = device_of(backend)
    with pytest.raises(ValueError, match="NaN"):
        rasterize_faces(fv.to(dev), fm.to(dev), 1, image_size=8, backend=backend)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="face_verts"):
        rasterize_faces(torch.zeros(3, 3), torch.zeros(3, dtype=torch.int64), 1, image_size=8)
    with pytest.raises(ValueError, match="face_mesh"):
        rasterize_faces(torch.zeros(3, 3, 3), torch.zeros(2, dtype=torch.int64), 1,
                        image_size=8)


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_faces_gives_empty_image(backend):
    dev = device_of(backend)
    fr = rasterize_faces(torch.zeros(0, 3, 3, device=dev),
                         torch.zeros(0, dtype=torch.int64, device=dev), 2,
                         image_size=(5, 6), faces_per_pixel=2, backend=backend)
    assert fr.pix_to_face.shape == (2, 5, 6, 2) and (fr.pix_to_face == -1).all()


def test_pixel_centres_made_under_inference_mode_still_serve_autograd():
    # The centres are made once per (H, W, dtype, device) and shared (no host copy per
    # call); made first under inference_mode they must still be normal tensors.
    from diffrend.raster.tiles import pixel_centers_ndc, pixel_centers_torch

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
