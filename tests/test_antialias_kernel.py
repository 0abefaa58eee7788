"""The CPU kernel of antialias's discrete step against its pure-torch twin: the same outline
pairs and exit edges, and so the same antialiased image and gradients, bit for bit."""

from __future__ import annotations

import importlib

import pytest
import torch

from diffrend import FoVPerspectiveCameras, ico_sphere, look_at_view_transform
from diffrend.gradients.antialias_kernels import outline_pairs_cpu
from diffrend.raster import MeshRasterizer, RasterizationSettings
from diffrend.raster.mesh import meshes_to_ndc
from diffrend.structures import Meshes

aa = importlib.import_module("diffrend.gradients.antialias")


def _scene(kind: str, size, n_views: int = 3, seed: int = 0):
    """(pix_to_face, zbuf, face_verts_ndc, faces) of a rendered test scene."""
    g = torch.Generator().manual_seed(seed)
    if kind == "sphere":
        m = ico_sphere(2)
        verts, faces = m.verts_packed(), m.faces_packed()
    elif kind == "bumpy":  # folds seen edge-on, both facings on screen
        m = ico_sphere(2)
        verts = m.verts_packed() * (1 + 0.4 * torch.rand(m.verts_packed().shape[0], 1,
                                                          generator=g))
        faces = m.faces_packed()
    elif kind == "open":  # boundary edges, a non-manifold edge and a degenerate face
        verts = torch.rand(40, 3, generator=g) * 1.6 - 0.8
        faces = torch.randint(0, 40, (60, 3), generator=g)
        faces = torch.cat([faces, torch.tensor([[0, 1, 2], [0, 1, 3], [0, 1, 4],
                                                [5, 5, 6]])])
    else:
        raise ValueError(kind)
    R, T = look_at_view_transform(2.5, torch.linspace(-50, 60, n_views),
                                  torch.linspace(0, 300, n_views))
    cams = FoVPerspectiveCameras(R=R, T=T)
    meshes = Meshes([verts], [faces]).extend(n_views)
    fr = MeshRasterizer(raster_settings=RasterizationSettings(
        image_size=size, faces_per_pixel=1))(meshes, cameras=cams)
    proj = meshes_to_ndc(meshes, cams)
    packed = proj.faces_packed()
    return fr.pix_to_face[..., 0], fr.zbuf[..., 0], proj.verts_packed()[packed], packed


@pytest.mark.parametrize("kind", ["sphere", "bumpy", "open"])
@pytest.mark.parametrize("size", [24, (20, 33), (1, 7)])
def test_kernel_pairs_equal_the_twins(kind, size):
    p2f, zbuf, fv, faces = _scene(kind, size)
    sil, across = aa._edge_topology(fv, faces)
    h, w = p2f.shape[1:]
    ys, xs = aa.pixel_centers_torch(h, w, fv.dtype, "cpu")
    found = 0
    for axis in (2, 1):
        for hops in (1, 8):
            want = aa.outline_pairs_torch(p2f, zbuf, fv, faces, sil, across, xs, ys, axis, hops)
            got = outline_pairs_cpu(p2f, zbuf, fv, faces, sil, across, xs, ys, axis, hops)
            for name, a, b in zip(("front", "other", "exit_face", "which"), want, got,
                                  strict=True):
                assert a.dtype == b.dtype == torch.int64, name
                assert torch.equal(a, b), (name, axis, hops)
            found += want[0].numel()
    if size != (1, 7):
        assert found > 0  # the scenes have outlines


def test_antialias_kernel_and_twin_give_the_same_image_and_gradients(monkeypatch):
    p2f, zbuf, fv, faces = _scene("bumpy", 32, seed=1)
    fv = fv.double().requires_grad_(True)
    colors = torch.rand(*p2f.shape, 3, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(*p2f.shape, 3, dtype=torch.float64)

    def run():
        out = aa.antialias(colors, p2f, zbuf, fv, faces)
        return (out, *torch.autograd.grad(out, (colors, fv), grad))

    kernel = run()
    monkeypatch.setattr(aa, "_use_kernel", lambda *t: False)
    twin = run()
    assert not torch.equal(kernel[0], colors)  # something was blended
    for a, b in zip(kernel, twin, strict=True):
        assert torch.equal(a, b)
