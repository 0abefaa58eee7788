"""Splatting blend (diffrend.render.splatter), SplatterPhongShader (diffrend.modules.splatter)."""

import math

import pytest
import torch

from diffrend.render.blend import BlendParams
from diffrend.render.splatter import (
    SPLAT_OFFSETS,
    SplatterBlender,
    accumulate_splats,
    compose_splat_layers,
    prepare_splat_inputs,
    shift_splats,
    splat_blend,
    splat_colors_and_weights,
    splat_kernel_normalization,
    splat_occlusion_layers,
    splat_shift_indices,
)

DT = torch.float64


def _grid_positions(n, h, w, k, noise=0.0, seed=0):
    """Screen positions (N, H, W, K, 3) at the pixel centres (x, y opposite to w, h), jittered
    by ``noise`` pixels, with random increasing depths per layer."""
    g = torch.Generator().manual_seed(seed)
    hh, ww = torch.meshgrid(torch.arange(h, dtype=DT), torch.arange(w, dtype=DT), indexing="ij")
    xy = torch.stack((w - ww - 0.5, h - hh - 0.5), dim=-1)[None, :, :, None]
    xy = xy + noise * (2 * torch.rand(n, h, w, k, 2, generator=g, dtype=DT) - 1)
    z = torch.rand(n, h, w, k, generator=g, dtype=DT).sort(dim=-1).values * 0.9
    return torch.cat((xy, z[..., None]), dim=-1)


def _reference(colors, positions, mask, sigma, background):
    """splat_blend by loops over target pixels, directions and layers (float64)."""
    n_, h_, w_, k_, _ = colors.shape
    alpha = (~mask).to(DT)
    rgba = torch.cat((colors, torch.ones_like(colors[..., :1])), -1) * alpha[..., None]
    depth = torch.where(mask, torch.ones_like(positions[..., 2]), positions[..., 2])
    kernel = sum(math.exp(-(dx * dx + dy * dy) / (2 * sigma**2)) for dx, dy in SPLAT_OFFSETS)
    norm = 1.05 / kernel
    out = torch.zeros(n_, h_, w_, 4, dtype=DT)
    for n in range(n_):
        for h in range(h_):
            for w in range(w_):
                # the target's centre in screen coordinates (x, y opposite to w, h)
                centre = torch.tensor([w_ - w - 0.5, h_ - h - 0.5], dtype=DT)
                acc = [torch.zeros(4, dtype=DT) for _ in range(3)]  # front, surface, back
                wsum = [torch.zeros((), dtype=DT) for _ in range(3)]
                for dx, dy in SPLAT_OFFSETS:
                    ph, pw = h + dy, w + dx
                    if not (0 <= ph < h_ and 0 <= pw < w_):
                        continue
                    p, q = depth[n, ph, pw], depth[n, h, w]
                    a = (p - q[0]).abs()
                    b = (p[0] - q).abs()
                    link = -int(b.argmin()) if b.min() < a.min() else int(a.argmin())
                    for j in range(k_):
                        d2 = ((positions[n, ph, pw, j, :2] - centre) ** 2).sum()
                        wt = alpha[n, ph, pw, j] * norm * torch.exp(-d2 / (2 * sigma**2))
                        buf = 0 if j < link else (1 if j == link else 2)
                        acc[buf] = acc[buf] + wt * rgba[n, ph, pw, j]
                        wsum[buf] = wsum[buf] + wt
                res = torch.cat((background, torch.zeros(1, dtype=DT)))
                for buf in (2, 1, 0):
                    c = acc[buf] / torch.clamp(wsum[buf], min=1.0)
                    res = c + (1 - c[3]) * res
                out[n, h, w] = res
    return out


def _inputs(n=2, h=3, w=4, k=2, noise=0.2, seed=0):
    g = torch.Generator().manual_seed(seed + 1)
    positions = _grid_positions(n, h, w, k, noise, seed)
    colors = torch.rand(n, h, w, k, 3, generator=g, dtype=DT)
    mask = torch.rand(n, h, w, k, generator=g) < 0.3
    return colors, positions, mask


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("sigma", [0.5, 0.8])
def test_matches_loop_reference(k, sigma):
    colors, positions, mask = _inputs(k=k, seed=k)
    bg = torch.tensor([0.2, 0.5, 0.7], dtype=DT)
    out = splat_blend(colors, positions, mask, sigma, bg)
    assert out.shape == (2, 3, 4, 4)
    torch.testing.assert_close(out, _reference(colors, positions, mask, sigma, bg))


def test_layers_in_front_and_behind_are_composited():
    # Two layers everywhere; one pixel's top layer sits far in front of its neighbours'.
    colors, positions, _ = _inputs(n=1, h=3, w=3, k=2, noise=0.1, seed=5)
    positions = positions.clone()
    positions[..., 0, 2] = 0.5
    positions[..., 1, 2] = 0.9
    positions[0, 1, 1, :, 2] = torch.tensor([0.1, 0.5], dtype=DT)
    mask = torch.zeros(1, 3, 3, 2, dtype=torch.bool)
    bg = torch.tensor([1.0, 0.0, 0.0], dtype=DT)
    layers = splat_occlusion_layers(positions[..., 2])
    # The centre's surface is its layer 0 (z=0.1); its neighbours' top layers (0.5) are
    # its layer 1, so they are behind: -1. Around it, the centre's layer 1 is their
    # surface, so its top layer is in front: +1.
    assert (layers[0, 1, 1, [0, 1, 2, 3, 5, 6, 7, 8]] == -1).all()
    assert layers[0, 1, 1, 4] == 0
    for d, (dx, dy) in enumerate(SPLAT_OFFSETS):
        if (dx, dy) != (0, 0):
            assert layers[0, 1 - dy, 1 - dx, d] == 1
    out = splat_blend(colors, positions, mask, 0.5, bg)
    torch.testing.assert_close(out, _reference(colors, positions, mask, 0.5, bg))


def test_forward_is_a_fixed_blur_of_covered_pixels():
    # All positions on the pixel centres, one opaque layer of one colour: interior pixels
    # keep the colour with alpha 1; at the image border part of the kernel is missing.
    n, h, w = 1, 5, 6
    positions = _grid_positions(n, h, w, 1)
    colors = torch.tensor([0.3, 0.6, 0.9], dtype=DT).expand(n, h, w, 1, 3)
    mask = torch.zeros(n, h, w, 1, dtype=torch.bool)
    out = splat_blend(colors, positions, mask, 0.5, (0.0, 0.0, 0.0))
    inner = out[:, 1:-1, 1:-1]
    torch.testing.assert_close(inner, torch.tensor([0.3, 0.6, 0.9, 1.0], dtype=DT).expand_as(inner))
    assert (out[0, 0, 0, 3] < out[0, 0, 1, 3]) and (out[0, 0, 1, 3] < 1.0)


def test_background_pixels():
    colors, positions, _ = _inputs(n=1, h=4, w=5, k=2)
    mask = torch.ones(1, 4, 5, 2, dtype=torch.bool)
    out = splat_blend(colors, positions, mask, 0.5, (0.1, 0.2, 0.3))
    expect = torch.tensor([0.1, 0.2, 0.3, 0.0], dtype=DT).expand_as(out)
    torch.testing.assert_close(out, expect)
    # One covered pixel: far away pixels stay background, its neighbours get some alpha.
    mask[0, 1, 1, 0] = False
    out = splat_blend(colors, positions, mask, 0.5, (0.1, 0.2, 0.3))
    torch.testing.assert_close(out[0, 3, 3:], expect[0, 3, 3:])
    assert (out[0, 0:3, 0:3, 3] > 0).all() and out[0, 1, 1, 3] > out[0, 0, 1, 3]


def test_prepare_inputs_neutralises_background():
    colors, positions, mask = _inputs()
    pos, rgba = prepare_splat_inputs(positions, colors, None, mask)
    assert (pos[mask] == 1.0).all() and (rgba[mask] == 0.0).all()
    assert (rgba[~mask][:, 3] == 1.0).all()
    torch.testing.assert_close(pos[~mask], positions[~mask])
    torch.testing.assert_close(rgba[~mask][:, :3], colors[~mask])


def test_rgba_input_alpha_scales_the_splats():
    colors, positions, mask = _inputs(k=1)
    half = torch.cat((colors, torch.full_like(colors[..., :1], 0.5)), -1)
    out_rgb = splat_blend(colors, positions, mask, 0.5, (0.0, 0.0, 0.0))
    out_rgba = splat_blend(half, positions, mask, 0.5, (0.0, 0.0, 0.0))
    assert not torch.allclose(out_rgb, out_rgba)
    assert (out_rgba[..., 3] <= out_rgb[..., 3] + 1e-12).all()


def test_gradcheck_colors_positions_background():
    colors, positions, mask = _inputs(n=1, h=2, w=3, k=2, noise=0.2, seed=3)
    xy = positions[..., :2].clone().requires_grad_()
    z = positions[..., 2:]
    colors = colors.clone().requires_grad_()
    bg = torch.tensor([0.2, 0.4, 0.6], dtype=DT, requires_grad=True)

    def f(c, p, b):
        return splat_blend(c, torch.cat((p, z), -1), mask, 0.5, b)

    assert torch.autograd.gradcheck(f, (colors, xy, bg))


def test_depth_gets_no_gradient_and_positions_do():
    colors, positions, mask = _inputs(k=2)
    positions = positions.clone().requires_grad_()
    splat_blend(colors, positions, mask).sum().backward()
    assert (positions.grad[..., 2] == 0).all()
    assert positions.grad[..., :2].abs().sum() > 0


def test_shift_indices_move_direction_d_from_h_plus_dy_w_plus_dx():
    n, h, w, k = 1, 3, 4, 2
    rows, cols, offsets = splat_shift_indices((n, h, w, k))
    assert rows.shape == (n, h, w + 2, k, 9, 5) and cols.shape == (n, h, w, k, 9, 5)
    assert offsets.tolist() == [list(o) for o in SPLAT_OFFSETS]
    splats = torch.rand(n, h, w, k, 9, 5, dtype=DT)
    moved = shift_splats(splats, rows, cols)
    for d, (dx, dy) in enumerate(SPLAT_OFFSETS):
        for i in range(h):
            for j in range(w):
                src = (i + dy, j + dx)
                if 0 <= src[0] < h and 0 <= src[1] < w:
                    want = splats[0, src[0], src[1], :, d]
                else:
                    want = torch.zeros(k, 5, dtype=DT)
                torch.testing.assert_close(moved[0, i, j, :, d], want)


def test_occlusion_single_layer_is_surface():
    depth = torch.rand(2, 3, 4, 1)
    assert (splat_occlusion_layers(depth) == 0).all()
    assert splat_occlusion_layers(depth).dtype == torch.int64


def test_kernel_normalization():
    offsets = torch.tensor(SPLAT_OFFSETS)
    for sigma in (0.3, 0.5, 1.0):
        kernel = torch.exp(-(offsets.to(DT) ** 2).sum(1) / (2 * sigma**2))
        torch.testing.assert_close(splat_kernel_normalization(offsets, sigma) * kernel.sum(),
                                   torch.tensor(1.05, dtype=DT))


def test_splat_weights_ratio_and_alpha():
    positions = _grid_positions(1, 2, 2, 1)
    rgba = torch.rand(1, 2, 2, 1, 4, dtype=DT)
    s = splat_colors_and_weights(positions, rgba, 0.5, torch.tensor(SPLAT_OFFSETS))
    assert s.shape == (1, 2, 2, 1, 9, 5)
    torch.testing.assert_close(s[..., :4], s[..., 4:] * rgba.unsqueeze(-2))
    # On the centre, the weight of a direction depends on its length only.
    torch.testing.assert_close(s[..., 4] / s[..., 4:5, 4],
                               torch.exp(-torch.tensor([2.0, 1, 2, 1, 0, 1, 2, 1, 2],
                                                       dtype=DT) / 0.5).expand(1, 2, 2, 1, 9))


def test_accumulate_and_compose():
    splats = torch.rand(1, 1, 1, 3, 9, 5, dtype=DT)
    colors, weights = accumulate_splats(torch.ones(1, 1, 1, 9, dtype=torch.long), splats)
    for buf, layer in enumerate((0, 1, 2)):
        torch.testing.assert_close(colors[0, 0, 0, :, buf], splats[0, 0, 0, layer, :, :4].sum(0))
        torch.testing.assert_close(weights[0, 0, 0, 0, buf], splats[0, 0, 0, layer, :, 4].sum())
    layers = torch.rand(1, 1, 1, 4, 3, dtype=DT)
    w = torch.full((1, 1, 1, 1, 3), 2.0, dtype=DT)
    out = compose_splat_layers(torch.zeros(3, dtype=DT), layers, w)
    c = layers / 2
    want = c[..., 0] + (1 - c[..., 3:, 0]) * (c[..., 1] + (1 - c[..., 3:, 1]) * c[..., 2])
    torch.testing.assert_close(out, want)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"colors": torch.rand(2, 3, 4, 3)}, "colors"),
        ({"colors": torch.rand(2, 3, 4, 2, 5)}, "colors"),
        ({"positions": torch.rand(2, 3, 4, 2, 2)}, "points"),
        ({"background_mask": torch.zeros(2, 3, 4, 1, dtype=torch.bool)}, "background_mask"),
        ({"sigma": 0.0}, "sigma"),
        ({"background_color": (1.0, 1.0)}, "background_color"),
    ],
)
def test_bad_inputs_raise(kwargs, match):
    colors, positions, mask = _inputs()
    args = {"colors": colors, "positions": positions, "background_mask": mask}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        splat_blend(**args)


def test_non_tensor_raises_type_error():
    _, positions, mask = _inputs()
    with pytest.raises(TypeError, match="colors"):
        splat_blend([[0.0]], positions, mask)
    with pytest.raises(ValueError, match="shape"):
        splat_shift_indices((1, 2, 3))


# ------------------------------------------------------------------ module and shader


def _sphere_scene(image_size=24):
    from diffrend.cameras import FoVPerspectiveCameras, look_at_view_transform
    from diffrend.shading import TexturesVertex
    from diffrend.structures import Meshes, ico_sphere

    sphere = ico_sphere(2)
    verts = sphere.verts_padded().clone().requires_grad_()
    mesh = Meshes(verts=verts, faces=sphere.faces_padded(),
                  textures=TexturesVertex(verts_features=torch.ones_like(verts)))
    R, T = look_at_view_transform(2.7, 0.0, 0.0)
    return mesh, verts, FoVPerspectiveCameras(R=R, T=T)


def test_blender_module_matches_function_and_takes_other_shapes():
    from diffrend.cameras import FoVPerspectiveCameras

    cameras = FoVPerspectiveCameras()
    blender = SplatterBlender((1, 2, 2, 1), "cpu")
    assert blender.crop_ids_h.shape == (1, 2, 4, 1, 9, 5)
    colors, _, mask = _inputs(n=1, h=3, w=4, k=2)
    points = torch.rand(1, 3, 4, 2, 3, dtype=DT) + torch.tensor([0.0, 0.0, 2.0], dtype=DT)
    bp = BlendParams(sigma=0.5, background_color=(0.0, 0.5, 1.0))
    out = blender(colors, points, cameras, mask, bp)
    torch.testing.assert_close(
        out, splat_blend(colors, points, mask, 0.5, (0.0, 0.5, 1.0), cameras=cameras))
    assert blender.crop_ids_w.shape == (1, 3, 4, 2, 9, 5)
    assert blender.to("cpu") is blender


def test_splatter_phong_shader_renders_and_passes_gradients_to_vertices():
    from diffrend.modules.mesh import MeshRenderer
    from diffrend.modules.splatter import SplatterPhongShader
    from diffrend.raster import MeshRasterizer, RasterizationSettings

    mesh, verts, cameras = _sphere_scene()
    settings = RasterizationSettings(image_size=24, blur_radius=0.0, faces_per_pixel=1)
    bp = BlendParams(sigma=0.5, gamma=1e-4, background_color=(0.0, 0.0, 0.0))
    shader = SplatterPhongShader(cameras=cameras, blend_params=bp)
    rasterizer = MeshRasterizer(cameras=cameras, raster_settings=settings)
    images = MeshRenderer(rasterizer, shader)(mesh)
    assert images.shape == (1, 24, 24, 4)
    covered = rasterizer(mesh).pix_to_face[0, ..., 0] >= 0
    alpha = images[0, ..., 3]
    assert torch.allclose(alpha[~covered], torch.zeros(()), atol=0.3)  # background, blurred
    assert (alpha[12, 12] - 1).abs() < 1e-5 and (alpha[0, 0] == 0)
    # A silhouette loss moves the vertices although the fragments are detached.
    alpha.sum().backward()
    assert verts.grad is not None and verts.grad.abs().sum() > 0
    assert isinstance(shader.splatter_blender, SplatterBlender)


def test_splatter_phong_shader_warns_on_sigma_and_needs_cameras():
    from diffrend.modules.splatter import SplatterPhongShader
    from diffrend.raster import MeshRasterizer, RasterizationSettings

    mesh, _, cameras = _sphere_scene()
    settings = RasterizationSettings(image_size=8, faces_per_pixel=1)
    fragments = MeshRasterizer(cameras=cameras, raster_settings=settings)(mesh)
    with pytest.raises(ValueError, match="Cameras"):
        SplatterPhongShader(blend_params=BlendParams(sigma=0.5))(fragments, mesh)
    with pytest.warns(UserWarning, match="sigma"):
        SplatterPhongShader(cameras=cameras, blend_params=BlendParams(sigma=0.3))(fragments,
                                                                                 mesh)
