"""Degenerate geometry (issue 16, item 5): the camera plane, huge and infinite coordinates,
no edge in view, and float32 ties, on both CPU backends and every gradient method."""

from __future__ import annotations

import math

import pytest
import torch

from diffrend.cameras import FoVPerspectiveCameras
from diffrend.gradients import render_silhouette
from diffrend.raster import MeshRasterizer, RasterizationSettings, rasterize_faces
from diffrend.structures import Meshes

BACKENDS = ("numba", "reference")
METHODS = ("soft", "antialias", "nmr", "opendr")  # "hard" has no geometry gradient


def _camera() -> FoVPerspectiveCameras:
    return FoVPerspectiveCameras(R=torch.eye(3)[None], T=torch.zeros(1, 3))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_non_finite_face_verts_raise_on_every_backend(backend, value):
    fv = torch.tensor([[[-0.5, -0.5, 1.0], [0.5, -0.5, 1.0], [0.0, 0.5, 1.0]]]).repeat(2, 1, 1)
    fv[1, 2, 0] = value
    with pytest.raises(ValueError, match="face_verts.*NaN or inf"):
        rasterize_faces(fv, torch.zeros(2, dtype=torch.int64), 1, image_size=8,
                        backend=backend)


def test_non_finite_face_verts_raise_on_triton():
    pytest.importorskip("triton")
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    fv = torch.tensor([[[-0.5, -0.5, 1.0], [0.5, -0.5, 1.0], [0.0, 0.5, 1.0]]], device=dev)
    fv[0, 1, 1] = math.inf
    with pytest.raises(ValueError, match="face_verts.*NaN or inf"):
        rasterize_faces(fv, torch.zeros(1, dtype=torch.int64, device=dev), 1, image_size=8,
                        backend="triton")


def _plane_scene(x0: float):
    """Two faces; vertex 0 lies exactly on the camera plane (view z = 0)."""
    verts = torch.tensor([[x0, 0.1, 0.0], [0.3, 0.0, 2.0], [0.0, 0.3, 2.0],
                          [-0.5, -0.5, 3.0], [0.5, -0.4, 3.0]], requires_grad=True)
    faces = torch.tensor([[0, 1, 2], [1, 3, 4], [2, 3, 1]])
    return verts, faces


@pytest.mark.parametrize("x0", [0.0, 0.4])  # 0/0 (NaN) and x/0 (inf) projections
@pytest.mark.parametrize("z_clip", [None, 0.5])
def test_vertex_on_camera_plane_is_finite_and_backends_agree(x0, z_clip):
    results = []
    for backend in BACKENDS:
        verts, faces = _plane_scene(x0)
        settings = RasterizationSettings(image_size=24, blur_radius=1e-3, faces_per_pixel=3,
                                         z_clip_value=z_clip, backend=backend)
        fr = MeshRasterizer(_camera(), settings)(Meshes([verts], [faces]))
        for t in (fr.zbuf, fr.bary_coords, fr.dists):
            assert torch.isfinite(t).all()
        loss = fr.zbuf.sum() + fr.bary_coords.sum() + fr.dists.sum()
        (grad,) = torch.autograd.grad(loss, verts)
        assert torch.isfinite(grad).all(), backend
        results.append((fr, grad))
    (a, ga), (b, gb) = results
    assert torch.equal(a.pix_to_face, b.pix_to_face)
    assert (a.pix_to_face >= 0).any()  # the faces in front are drawn
    torch.testing.assert_close(a.zbuf, b.zbuf)
    torch.testing.assert_close(ga, gb, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("method", METHODS)
def test_vertex_on_camera_plane_every_gradient_method(method):
    verts, faces = _plane_scene(0.4)
    sil = render_silhouette(Meshes([verts], [faces]), _camera(), 16, method)
    assert torch.isfinite(sil).all()
    (grad,) = torch.autograd.grad(sil.sum(), verts)
    assert torch.isfinite(grad).all()


def _big_quad(far: float = 1.0):
    """A quad covering the whole view (no edge in view), at depth 2; ``far`` scales it."""
    s = 5.0 * far
    # (not symmetric: the diagonal must pass no pixel centre, which neither half would own)
    verts = torch.tensor([[-s, -s, 2.0], [s, -1.1 * s, 2.0], [1.2 * s, s, 2.0],
                          [-s, 0.9 * s, 2.0]], requires_grad=True)
    return verts, torch.tensor([[0, 1, 2], [0, 2, 3]])


@pytest.mark.parametrize("method", METHODS)
def test_no_edge_in_view_gives_zero_finite_gradient(method):
    verts, faces = _big_quad()
    sil = render_silhouette(Meshes([verts], [faces]), _camera(), 16, method)
    assert torch.equal(sil, torch.ones_like(sil)) or method == "soft"
    assert sil.requires_grad  # backward() must work
    sil.sum().backward()
    assert torch.isfinite(verts.grad).all()
    if method != "soft":
        assert torch.count_nonzero(verts.grad) == 0


@pytest.mark.parametrize("backend", ["numba", "reference"])
@pytest.mark.parametrize("method", [m for m in METHODS if m != "hard"])
def test_empty_mesh_keeps_its_graph(method, backend):
    # A mesh with no faces (say, emptied by a filter mid-fit) renders nothing, and backward()
    # must still work and give zero gradients, as for a mesh that is out of view.
    verts = torch.rand(4, 3, requires_grad=True)
    meshes = Meshes([verts], [torch.zeros(0, 3, dtype=torch.int64)])
    fragments = MeshRasterizer(_camera(), RasterizationSettings(
        image_size=8, faces_per_pixel=2, backend=backend))(meshes)
    assert fragments.zbuf.requires_grad
    sil = render_silhouette(meshes, _camera(), 8, method)
    assert sil.requires_grad
    sil.sum().backward()
    assert torch.count_nonzero(verts.grad) == 0


@pytest.mark.parametrize("method", METHODS)
def test_vertex_far_away_gives_finite_gradient(method):
    # one vertex ~1e8 away: long thin triangles cross the image
    g = torch.Generator().manual_seed(3)
    for trial in range(6):
        verts = torch.rand(6, 3, generator=g) - 0.5
        verts[:, 2] += 3.0
        verts[trial % 6] *= torch.tensor([1e8, -1e8, 1.0])
        verts.requires_grad_(True)
        faces = torch.tensor([[0, 1, 2], [3, 4, 5], [1, 3, 5], [0, 2, 4]])
        sil = render_silhouette(Meshes([verts], [faces]), _camera(), 16, method)
        assert torch.isfinite(sil).all()
        if sil.requires_grad:
            (grad,) = torch.autograd.grad((sil * torch.rand(sil.shape, generator=g)).sum(),
                                          verts)
            assert torch.isfinite(grad).all(), (method, trial)


def _crossing_soup(seed: int, n_faces: int = 40):
    """Interpenetrating faces at nearly equal depths: the nearest face is often a near tie."""
    g = torch.Generator().manual_seed(seed)
    fv = torch.rand(n_faces, 3, 3, generator=g, dtype=torch.float64) * 2.4 - 1.2
    fv[..., 2] = 2.0 + torch.rand(n_faces, 3, generator=g, dtype=torch.float64) * 0.05
    return fv


def test_float32_reference_selects_as_the_float64_kernel_does():
    """float32 input: both CPU backends select and compute in float64 (then round), so they
    pick the same faces as a float64 evaluation of the same vertices, near ties included
    (README, "float32 agreement"). Failed before the reference computed in float64."""
    for seed in range(12):
        fv = _crossing_soup(seed).float()
        if seed % 3 == 0:
            fv[0, 0, :2] = torch.tensor([-6e7, 4e7])  # a face with a far vertex
        fm = torch.zeros(fv.shape[0], dtype=torch.int64)
        kw = dict(image_size=48, faces_per_pixel=3, perspective_correct=bool(seed % 2),
                  blur_radius=(0.0, 1e-3)[seed % 2])
        ref = rasterize_faces(fv, fm, 1, backend="reference", **kw)
        nb = rasterize_faces(fv, fm, 1, backend="numba", **kw)
        r64 = rasterize_faces(fv.double(), fm, 1, backend="numba", **kw)
        assert torch.equal(nb.pix_to_face, r64.pix_to_face), seed
        assert torch.equal(ref.pix_to_face, nb.pix_to_face), seed
        torch.testing.assert_close(ref.zbuf, nb.zbuf, rtol=0, atol=0)
        torch.testing.assert_close(ref.dists, nb.dists, rtol=1e-6, atol=1e-7)
