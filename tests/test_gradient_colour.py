"""NMR's and OpenDR's edge gradients on shaded (colour) images, and the shaders' switch."""

from __future__ import annotations

import pytest
import torch

from diffrend import (
    FoVPerspectiveCameras,
    HardPhongShader,
    MeshRasterizer,
    MeshShader,
    RasterizationSettings,
    SoftPhongShader,
    TexturesVertex,
    ico_sphere,
    look_at_view_transform,
)
from diffrend.gradients import nmr, nmr_silhouette_faces, opendr, opendr_silhouette_faces
from diffrend.raster import rasterize_faces
from diffrend.raster.tiles import pixel_centers_torch

SIZE = 16
RED, GREEN, BG = (torch.tensor(c, dtype=torch.float64) for c in
                  ((0.9, 0.2, 0.1), (0.1, 0.7, 0.3), (0.5, 0.5, 1.0)))


def quad(x0, x1, y0, y1, z, first):
    v = torch.tensor([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], dtype=torch.float64)
    f = torch.tensor([[0, 1, 2], [0, 2, 3]]) + first
    return v, f


def scene(with_back, back_z=3.0):
    """A red square (x in [-0.43, 0.37], y in [-0.51, 0.29], z = 2), optionally over a
    bigger green one at ``back_z``; returns verts, faces, pix_to_face, zbuf, image."""
    v, f = quad(-0.43, 0.37, -0.51, 0.29, 2.0, 0)
    colours = [RED, RED]
    if with_back:
        v2, f2 = quad(-0.9, 0.93, -0.91, 0.9, back_z, 4)  # no pixel centre on its diagonal
        v, f = torch.cat([v, v2]), torch.cat([f, f2])
        colours += [GREEN, GREEN]
    fr = rasterize_faces(v[f], torch.zeros(len(f), dtype=torch.long), 1, image_size=SIZE)
    p2f, zbuf = fr.pix_to_face[..., 0], fr.zbuf[..., 0]
    table = torch.stack(colours)
    image = torch.where((p2f >= 0)[..., None], table[p2f.clamp(min=0)], BG)
    return v.requires_grad_(True), f, p2f, zbuf, image


def grad_of(method, v, f, p2f, zbuf, image, upstream):
    face_image = torch.zeros(len(f), dtype=torch.long)
    if method == "nmr":
        out = nmr(image, p2f, zbuf, v[f], f, face_image)
    else:
        out = opendr(image, p2f, zbuf, v[f], f)
    assert torch.equal(out, image)  # the forward image is the hard render
    (g,) = torch.autograd.grad((out * upstream).sum(), v)
    return g


@pytest.mark.parametrize("method", ["nmr", "opendr"])
def test_colour_is_the_silhouette_rule_times_the_colour_step(method):
    """Over the background, a uniformly coloured square's colour image steps by
    (red - background) where its silhouette steps by 1: the vertex gradients of <w, I>
    equal those of the silhouette with upstream <w, red - background>."""
    v, f, p2f, zbuf, image = scene(False)
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        w = torch.randn(3, generator=gen, dtype=torch.float64)
        g_col = grad_of(method, v, f, p2f, zbuf, image, w)
        scalar = float((w * (RED - BG)).sum())
        if method == "nmr":
            sil = nmr_silhouette_faces(v[f], p2f, torch.zeros(2, dtype=torch.long), f)
        else:
            sil = opendr_silhouette_faces(v[f], p2f, f)
        (g_sil,) = torch.autograd.grad((sil * scalar).sum(), v)
        assert g_col.abs().sum() > 0
        torch.testing.assert_close(g_col, g_sil, rtol=1e-10, atol=1e-12)


def test_nmr_occluding_edge_over_a_surface():
    """A pixel of the green square just outside the red one's right edge (x = 0.37) turns red
    when that edge sweeps over it: slope (red - green) / distance, only if the red square is
    in front."""
    ys, xs = pixel_centers_torch(SIZE, SIZE, torch.float64, "cpu")
    row, col = 8, 4  # x = 0.4375, green
    v, f, p2f, zbuf, image = scene(True)
    assert p2f[0, row, col] >= 2
    up = torch.zeros_like(image)
    up[0, row, col] = -(RED - GREEN)  # the loss wants it red
    g = grad_of("nmr", v, f, p2f, zbuf, image, up)
    d = float(xs[col]) - 0.37
    expect = -float(((RED - GREEN) ** 2).sum()) / max(d, 1 / SIZE)
    assert float(g[1, 0] + g[2, 0]) == pytest.approx(expect, rel=1e-9)
    # The red square behind the green one is hidden: sweeping its edge changes nothing.
    v, f, p2f, zbuf, image = scene(True, back_z=1.5)
    assert not bool(((p2f >= 0) & (p2f < 2)).any())
    g = grad_of("nmr", v, f, p2f, zbuf, image, up)
    assert float(g[:4].abs().sum()) == 0.0


def test_opendr_occlusion_boundary_belongs_to_the_front_square():
    v, f, p2f, zbuf, image = scene(True)
    w = torch.tensor([0.3, -1.0, 0.5], dtype=torch.float64)
    g = grad_of("opendr", v, f, p2f, zbuf, image, w)
    # Sliding the red square over the uniform green one changes nothing in total.
    assert abs(float(g[:4, 0].sum())) < 1e-9 and abs(float(g[:4, 1].sum())) < 1e-9
    # Its right edge moving outwards turns green pixels red: exact rate 6.4 rows x 8 pixels
    # per NDC unit x <w, red - green>. OpenDR gives 45.0 / 51.2 of it on this square (see
    # test_opendr.py), hence 15%.
    exact = 51.2 * float((w * (RED - GREEN)).sum())
    assert float(g[1, 0] + g[2, 0]) == pytest.approx(exact, rel=0.15)
    # The green square's own outline is a separate boundary (with the background).
    assert float(g[4:].abs().sum()) > 0


def _cow_like():
    mesh = ico_sphere(2)
    mesh.textures = TexturesVertex([torch.full_like(mesh.verts_packed(), 0.8)])
    R, T = look_at_view_transform(2.7, 10, 20)
    return mesh, FoVPerspectiveCameras(R=R, T=T)


@pytest.mark.parametrize("method", ["antialias", "nmr", "opendr"])
def test_shader_switch_adds_edge_gradients_to_phong(method):
    mesh, cameras = _cow_like()
    verts = mesh.verts_packed().clone().requires_grad_(True)
    m = mesh.update_padded(verts[None])
    fr = MeshRasterizer(cameras=cameras, raster_settings=RasterizationSettings(
        image_size=32))(m)
    hard = HardPhongShader(cameras=cameras)(fr, m)
    edged = HardPhongShader(cameras=cameras, gradient_method=method)(fr, m)
    if method == "antialias":
        assert (edged - hard).abs().max() > 0  # antialiasing changes edge pixels
    else:
        torch.testing.assert_close(edged, hard)
    # Growing the sphere on a black background should brighten the image: the hard render
    # has no gradient towards that, the edge methods do.
    scale = torch.tensor(1.0, requires_grad=True)
    grown = mesh.update_padded((mesh.verts_packed() * scale)[None])
    fr = MeshRasterizer(cameras=cameras, raster_settings=RasterizationSettings(
        image_size=32))(grown)
    from diffrend import BlendParams

    bp = BlendParams(background_color=(0.0, 0.0, 0.0))
    out = MeshShader("phong", "hard", cameras=cameras, blend_params=bp,
                     gradient_method=method)(fr, grown)
    (g,) = torch.autograd.grad(-out[..., :3].sum(), scale, retain_graph=True)
    assert float(g) < 0
    plain = MeshShader("phong", "hard", cameras=cameras, blend_params=bp)(fr, grown)
    (g0,) = torch.autograd.grad(-plain[..., :3].sum(), scale, allow_unused=True)
    assert g0 is None or abs(float(g0)) < abs(float(g))


def test_shader_switch_checks():
    with pytest.raises(ValueError, match="gradient_method"):
        MeshShader("phong", "hard", gradient_method="magic")
    with pytest.raises(ValueError, match="blend='hard'"):
        SoftPhongShader(gradient_method="nmr")
    with pytest.raises(ValueError, match="SoftRas blend"):
        HardPhongShader(gradient_method="soft")
    with pytest.raises(ValueError, match="depth"):
        MeshShader("depth", "hard", gradient_method="antialias")
    assert SoftPhongShader().gradient_method == "soft"
    assert HardPhongShader().gradient_method == "hard"
    mesh, cameras = _cow_like()
    fr = MeshRasterizer(cameras=cameras, raster_settings=RasterizationSettings(
        image_size=8))(mesh)
    with pytest.raises(ValueError, match="cameras"):
        MeshShader("silhouette", "hard", gradient_method="nmr")(fr, mesh)
