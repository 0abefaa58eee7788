"""Shading only what blending sees gives the same images and gradients as shading all."""

from __future__ import annotations

import math

import pytest
import torch

import diffrend as dr
import diffrend.render.dispatch as dispatch_module
from diffrend.render.compact import compact_fragments, scatter_colors, visible_entries


def _scene(shader_factory, image_size=40, k=12, sigma=1e-4):
    mesh = dr.ico_sphere(2)
    mesh = dr.Meshes(verts=mesh.verts_list(), faces=mesh.faces_list(),
                     textures=dr.TexturesVertex([torch.rand(mesh.verts_packed().shape,
                                                            generator=torch.Generator()
                                                            .manual_seed(0))]))
    R, T = dr.look_at_view_transform(dist=2.5, elev=20, azim=torch.tensor([10.0, 100.0]))
    cams = dr.FoVPerspectiveCameras(R=R, T=T)
    blur = math.log(1 / sigma - 1) * sigma
    rasterizer = dr.MeshRasterizer(cams, dr.RasterizationSettings(
        image_size=image_size, blur_radius=blur, faces_per_pixel=k))
    shader = shader_factory(cameras=cams, lights=dr.PointLights(),
                            blend_params=dr.BlendParams(sigma=sigma, gamma=1e-4))
    return dr.MeshRenderer(rasterizer, shader), mesh


@pytest.mark.parametrize("factory", [dr.SoftPhongShader, dr.HardPhongShader,
                                     dr.SoftGouraudShader, dr.HardFlatShader])
def test_compact_shading_equals_full_shading(factory, monkeypatch):
    renderer, mesh = _scene(factory)
    results = []
    for compact in (True, False):
        if not compact:
            monkeypatch.setattr(dispatch_module, "visible_entries",
                                lambda blend, fr, *a, **k: fr.pix_to_face >= 0)
        v = mesh.verts_padded().detach().clone().requires_grad_()
        img = renderer(mesh.update_padded(v))
        (g,) = torch.autograd.grad((img * torch.linspace(0, 1, img.numel()).view_as(img)).sum(),
                                   v)
        results.append((img.detach(), g))
    (a, ga), (b, gb) = results
    # Left-out faces weigh < 1e-12 of the front face: equal to float32 rounding.
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ga, gb, rtol=1e-4, atol=1e-5)


def test_visible_entries_soft_keeps_front_and_drops_far_behind():
    p2f = torch.tensor([[[[0, 1, 2, -1]]]])
    z = torch.tensor([[[[2.0, 2.001, 3.0, -1.0]]]])
    fr = dr.Fragments(p2f, z, torch.zeros(1, 1, 1, 4, 3), torch.zeros(1, 1, 1, 4))
    keep = visible_entries("softmax", fr, gamma=1e-4, znear=1.0, zfar=100.0)
    assert keep.tolist() == [[[[True, True, False, False]]]]
    hard = visible_entries("hard", fr)
    assert hard.tolist() == [[[[True, False, False, False]]]]


def test_compact_round_trip_places_colors_back():
    p2f = torch.tensor([[[[3, -1], [4, 5]]], [[[-1, -1], [6, -1]]]])  # (2, 1, 2, 2)
    fr = dr.Fragments(p2f, p2f.float(), torch.rand(2, 1, 2, 2, 3), p2f.float())
    keep = p2f >= 0
    compact, where = compact_fragments(fr, keep)
    assert compact.pix_to_face.shape == (2, 3, 1, 1)
    assert compact.pix_to_face[0, :, 0, 0].tolist() == [3, 4, 5]
    assert compact.pix_to_face[1, :, 0, 0].tolist() == [6, -1, -1]
    colors = compact.pix_to_face.float()[..., None].expand(2, 3, 1, 1, 2)
    back = scatter_colors(colors, where, tuple(p2f.shape))
    assert torch.equal(back[..., 0], torch.where(keep, p2f.float(), torch.zeros(())))


def test_renderer_with_fragments_and_per_call_extrinsics():
    renderer, mesh = _scene(dr.HardPhongShader, image_size=24, k=1)
    with_fr = dr.MeshRendererWithFragments(renderer.rasterizer, renderer.shader)
    images, fragments = with_fr(mesh)
    assert images.shape == (2, 24, 24, 4) and fragments.pix_to_face.shape == (2, 24, 24, 1)
    torch.testing.assert_close(images, renderer(mesh))
    R, T = dr.look_at_view_transform(dist=50.0, azim=torch.tensor([0.0, 0.0]))
    far = renderer(mesh, R=R, T=T)
    assert far[..., 3].sum() < images[..., 3].sum()


def test_forward_in_view_groups_equals_one_call():
    renderer, mesh = _scene(dr.SoftPhongShader, image_size=20, k=6)
    lights = dr.PointLights(location=((2.0, 2.0, -2.0), (0.0, 3.0, 1.0)))  # one per view
    v = mesh.verts_padded().detach().clone().requires_grad_()
    whole, _ = renderer.render(mesh.update_padded(v), lights=lights)
    (g_whole,) = torch.autograd.grad(whole.square().sum(), v)
    renderer.max_fragment_bytes = 1  # one view per group
    assert renderer._views_per_group(None) == 1
    v2 = v.detach().clone().requires_grad_()
    grouped = renderer(mesh.update_padded(v2), lights=lights)
    (g_grouped,) = torch.autograd.grad(grouped.square().sum(), v2)
    torch.testing.assert_close(grouped, whole)
    torch.testing.assert_close(g_grouped, g_whole, rtol=1e-5, atol=1e-6)


def _soft_fragments(dtype, seed=0, shape=(2, 6, 7, 5)):
    """Random soft fragments: ascending depths per pixel, empty slots at the back, image 1
    with fewer faces than image 0 (so the packed colours have padding rows)."""
    g = torch.Generator().manual_seed(seed)
    count = torch.randint(0, shape[-1] + 1, shape[:-1], generator=g)
    count[1] //= 2
    valid = torch.arange(shape[-1]) < count[..., None]
    p2f = torch.where(valid, torch.randint(0, 50, shape, generator=g), -1)
    zbuf = torch.where(valid, 2.0 + torch.rand(shape, generator=g, dtype=dtype).cumsum(-1)
                       * 1e-4, -torch.ones((), dtype=dtype))
    dists = torch.where(valid, torch.randn(shape, generator=g, dtype=dtype) * 1e-3,
                        -torch.ones((), dtype=dtype))
    bary = torch.rand((*shape, 3), generator=g, dtype=dtype)
    return dr.Fragments(p2f, zbuf, bary, dists)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("channels", [3, 2])  # 2: no kernel (scatter, then the reference)
def test_packed_softmax_blend_equals_scatter_then_blend(dtype, channels):
    from diffrend.render.blend import softmax_rgb_blend, softmax_rgb_blend_packed

    fr = _soft_fragments(dtype)
    keep = visible_entries("softmax", fr, gamma=1e-4, znear=1.0, zfar=100.0)
    keep &= torch.rand(keep.shape, generator=torch.Generator().manual_seed(3)) < 0.8
    compact, where = compact_fragments(fr, keep)
    assert compact.pix_to_face.shape[1] > int(keep[1].sum())  # image 1 has padding rows
    params = dr.BlendParams(sigma=1e-3, gamma=1e-4, background_color=(0.2, 0.5, 0.9)[:channels])
    colors0 = torch.rand((*compact.pix_to_face.shape, channels),
                         generator=torch.Generator().manual_seed(4), dtype=dtype)
    weights = torch.rand((2, 6, 7, channels + 1), generator=torch.Generator().manual_seed(5),
                         dtype=dtype)
    results = []
    for packed in (True, False):
        colors = colors0.clone().requires_grad_()
        d = fr.dists.clone().requires_grad_()
        z = fr.zbuf.clone().requires_grad_()
        f = dr.Fragments(fr.pix_to_face, z, fr.bary_coords, d)
        if packed:
            img = softmax_rgb_blend_packed(colors, keep, where, f, params)
        else:  # the dense kernel (or, for 2 channels, the reference)
            img = softmax_rgb_blend(scatter_colors(colors, where, tuple(keep.shape)), f, params)
        grads = torch.autograd.grad((img * weights).sum(), (colors, d, z))
        results.append((img.detach(), *grads))
    # The same arithmetic in the same order: equal (the dense kernel is held to the
    # reference in tests/test_blend.py).
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    pad = torch.ones(colors0.shape[:2], dtype=torch.bool)
    pad.view(-1)[where[1]] = False
    assert pad.any() and (results[0][1][pad] == 0).all()  # padding rows get no gradient


def test_packed_softmax_blend_errors_name_the_argument():
    from diffrend.render.blend import softmax_rgb_blend_packed

    fr = _soft_fragments(torch.float32)
    keep = fr.pix_to_face >= 0
    compact, where = compact_fragments(fr, keep)
    colors = torch.rand((*compact.pix_to_face.shape, 3))
    params = dr.BlendParams()
    with pytest.raises(ValueError, match="keep must be a bool tensor"):
        softmax_rgb_blend_packed(colors, keep.int(), where, fr, params)
    with pytest.raises(ValueError, match="colors must be packed"):
        softmax_rgb_blend_packed(colors[:1], keep, where, fr, params)
    with pytest.raises(ValueError, match="pix_to_face"):
        softmax_rgb_blend_packed(colors, keep, where, dr.Fragments(None, fr.zbuf,
                                                                   fr.bary_coords, fr.dists),
                                 params)
