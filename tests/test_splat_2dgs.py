"""2D Gaussian splatting (surfels): the projection's boxes, the torch twin against autograd's
numerical gradients, the Numba kernels against the twin (awkward surfels included), a surfel
worked out by hand, agreement with a flat 3D Gaussian, argument checks and a small fit.
"""

from __future__ import annotations

import math

import pytest
import torch

from diffrend.splat import rasterization, rasterization_2dgs
from diffrend.splat.twodgs import (
    depth_to_normal,
    project_surfels,
    rasterize_to_pixels_2dgs,
)
from diffrend.splat.twodgs_reference import rasterize_to_pixels_2dgs_reference

F64 = torch.float64


def _camera(c=1, width=32, height=24, f=40.0, dtype=F64):
    """(viewmats (C, 4, 4), Ks (C, 3, 3)): cameras 3 units behind the origin looking along +z,
    shifted sideways a little one from the next."""
    vm = torch.eye(4, dtype=dtype).repeat(c, 1, 1)
    vm[:, 2, 3] = 3.0
    vm[:, 0, 3] = 0.15 * torch.arange(c, dtype=dtype)
    ks = torch.tensor([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], dtype=dtype)
    return vm, ks.repeat(c, 1, 1)


def _surfels(seed, n, dtype=F64, awkward=True):
    """Random surfels around the origin; with ``awkward``, also edge-on ones (normal
    perpendicular to the view axis, one in a plane through the cameras), zero scales, one
    behind the cameras and one reaching past the camera plane."""
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=g, dtype=dtype) - 0.5) * torch.tensor([1.6, 1.2, 1.0])
    quats = torch.randn(n, 4, generator=g, dtype=dtype)
    scales = torch.rand(n, 3, generator=g, dtype=dtype) * 0.25 + 0.03
    opac = torch.rand(n, generator=g, dtype=dtype) * 0.85 + 0.1
    colors = torch.rand(n, 3, generator=g, dtype=dtype)
    if awkward and n >= 6:
        # a rotation of 90 degrees about y: the normal along x, seen edge-on
        quats[0] = torch.tensor([math.cos(math.pi / 4), 0.0, math.sin(math.pi / 4), 0.0])
        quats[1] = torch.tensor([math.cos(math.pi / 4), math.sin(math.pi / 4), 0.0, 0.0])
        means[1, 1] = 0.0  # its plane y = 0 holds the cameras: only the filter draws it
        scales[2] = 0.0  # a degenerate surfel
        scales[3, 1] = 0.0  # a line
        means[4] = torch.tensor([0.1, 0.0, -3.5])  # behind the cameras
        means[5] = torch.tensor([0.0, 0.1, -2.0])  # 1 unit in front, 5 units wide, tilted
        scales[5] = torch.tensor([5.0, 5.0, 0.0])
        quats[5] = torch.tensor([0.9, 0.4, 0.0, 0.0])
    return means, quats, scales, opac, colors


def _every_tile_lists(depths, th, tw):
    """(isect_offsets, flatten_ids): every surfel in every tile, by depth (ties: index)."""
    c, n = depths.shape
    ids, offsets = [], []
    for cam in range(c):
        order = sorted(range(n), key=lambda i: (float(depths[cam, i]), i))
        for _ in range(th * tw):
            offsets.append(len(ids))
            ids.extend(cam * n + i for i in order)
    return (torch.tensor(offsets, dtype=torch.int64).reshape(c, th, tw),
            torch.tensor(ids, dtype=torch.int64))


def _projected(seed, n, c=2, width=32, height=24, dtype=F64, awkward=True):
    means, quats, scales, opac, colors = _surfels(seed, n, dtype, awkward)
    vm, ks = _camera(c, width, height, dtype=dtype)
    radii, means2d, depths, rts, normals = project_surfels(means, quats, scales, vm, ks,
                                                           width, height)
    return dict(means2d=means2d, ray_transforms=rts, colors=colors[None].expand(c, n, 3),
                opacities=opac[None].expand(c, n), normals=normals, depths=depths), radii


# --------------------------------------------------------------------------- projection


def test_radii_hold_every_lit_pixel_and_are_tight_facing_the_camera():
    """Each surfel alone, listed in every tile: every pixel it lights lies in means2d +- radii;
    a surfel facing the camera gets exactly ceil(3.33 s f / z)."""
    width, height, ts = 40, 32, 8
    inp, radii = _projected(5, 24, width=width, height=height, awkward=True)
    c, n = inp["depths"].shape
    iy, ix = torch.meshgrid(torch.arange(height) + 0.5, torch.arange(width) + 0.5,
                            indexing="ij")
    checked = 0
    for i in range(n):
        one = {k: v[:, i:i + 1].contiguous() for k, v in inp.items()}
        offsets, ids = _every_tile_lists(one["depths"], height // ts, width // ts)
        _, alphas, *_ = rasterize_to_pixels_2dgs_reference(**one, image_width=width,
                                                           image_height=height, tile_size=ts,
                                                           isect_offsets=offsets,
                                                           flatten_ids=ids)
        for cam in range(c):
            lit = alphas[cam, ..., 0] > 0
            if not lit.any() or not (radii[cam, i] > 0).all():
                continue
            mx, my = inp["means2d"][cam, i].tolist()
            rx, ry = radii[cam, i].tolist()
            assert ((ix[lit] - mx).abs() <= rx).all() and ((iy[lit] - my).abs() <= ry).all()
            checked += 1
    assert checked >= 20

    vm, ks = _camera(1)
    quats = torch.tensor([[1.0, 0, 0, 0]], dtype=F64)
    radii, means2d, depths, _, normals = project_surfels(
        torch.tensor([[0.1, -0.2, 1.0]], dtype=F64), quats,
        torch.tensor([[0.2, 0.05]], dtype=F64), vm, ks, 32, 24)
    assert radii[0, 0].tolist() == [math.ceil(3.33 * 0.2 * 40 / 4), math.ceil(2.36)]
    assert torch.allclose(means2d[0, 0], torch.tensor([16 + 1.0, 12 - 2.0], dtype=F64))
    assert depths[0, 0] == 4.0
    assert torch.allclose(normals[0, 0], torch.tensor([0.0, 0.0, -1.0], dtype=F64))


def test_culling_and_scales_of_two_or_three_columns():
    means, quats, scales, opac, colors = _surfels(1, 8)
    vm, ks = _camera(2)
    radii, *rest = project_surfels(means, quats, scales, vm, ks, 32, 24)
    assert (radii[:, 4] == 0).all()  # behind the cameras
    assert (radii[:, 5] > 1000).all()  # reaches the camera plane: the whole image
    radii2, *rest2 = project_surfels(means, quats, scales[:, :2], vm, ks, 32, 24)
    assert torch.equal(radii, radii2)
    assert all(torch.equal(a, b) for a, b in zip(rest, rest2, strict=True))
    far = project_surfels(means, quats, scales, vm, ks, 32, 24, far_plane=2.5)[0]
    assert (far[:, means[:, 2] > -0.5] == 0).all()
    clipped = project_surfels(means, quats, scales, vm, ks, 32, 24, radius_clip=100.0)[0]
    assert (clipped[:, 5] > 0).all() and (clipped[:, :5] == 0).all()


# --------------------------------------------------------------------------- the twin


def test_twin_gradcheck_float64():
    """Every output of the twin compositor (colours, alpha, normals, distortion, median)
    against numerical gradients in every input, on a tiny scene."""
    inp, _ = _projected(2, 4, c=1, width=8, height=6, awkward=False)
    offsets, ids = _every_tile_lists(inp["depths"], 2, 2)
    bg = torch.tensor([[0.2, 0.3, 0.4]], dtype=F64)
    names = ["means2d", "ray_transforms", "colors", "opacities", "normals", "depths"]
    tensors = [inp[k].detach().clone().requires_grad_(True) for k in names]
    tensors.append(bg.requires_grad_(True))

    def run(*args):
        out = rasterize_to_pixels_2dgs_reference(*args[:6], 8, 6, 4, offsets, ids,
                                                 backgrounds=args[6], distloss=True)
        return tuple(out)

    assert torch.autograd.gradcheck(run, tensors, atol=1e-6, rtol=1e-4)


def test_pipeline_gradcheck_float64():
    """rasterization_2dgs on the twin: means, quats, scales, opacities, SH colours, viewmats
    and backgrounds, through RGB+ED, surface normals, distortion and median."""
    n = 3
    means, quats, scales, opac, _ = _surfels(3, n, awkward=False)
    scales = scales * 2.0
    coeffs = torch.randn(n, 4, 3, generator=torch.Generator().manual_seed(4), dtype=F64) * 0.3
    vm, ks = _camera(1, width=10, height=8, f=14.0)
    bg = torch.tensor([[0.1, 0.2, 0.3]], dtype=F64)
    inputs = [t.clone().requires_grad_(True) for t in (means, quats, scales, opac, coeffs,
                                                       vm, bg)]  # fmt: skip

    def render(means, quats, scales, opac, coeffs, vm, bg):
        out = rasterization_2dgs(means, quats, scales, opac, coeffs, vm, ks, 10, 8,
                                 sh_degree=1, backgrounds=bg, render_mode="RGB+ED",
                                 distloss=True, backend="reference")
        return tuple(o for o in out[:6])

    assert torch.autograd.gradcheck(render, inputs, atol=1e-6, rtol=1e-4, fast_mode=True)


# --------------------------------------------------------------------------- kernel == twin


def _outputs_and_grads(inp, offsets, ids, width, height, ts, backend, bg, seed=0):
    args = {k: v.detach().clone().requires_grad_(True) for k, v in inp.items()}
    bgr = bg.clone().requires_grad_(True)
    out = rasterize_to_pixels_2dgs(**args, image_width=width, image_height=height,
                                   tile_size=ts, isect_offsets=offsets, flatten_ids=ids,
                                   backgrounds=bgr, distloss=True, backend=backend)
    g = torch.Generator().manual_seed(seed)
    loss = sum((o * torch.randn(o.shape, generator=g, dtype=o.dtype)).sum() for o in out)
    grads = torch.autograd.grad(loss, list(args.values()) + [bgr])
    return [o.detach() for o in out], grads


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("lists", ["every_tile", "isect"])
def test_kernel_matches_twin(seed, lists):
    """Numba forward and backward against the twin in float64: awkward surfels (edge-on,
    zero scales, behind the camera, crossing the camera plane), empty tiles (the surfels sit
    left of the image's right edge), odd image sizes and both real and every-tile lists."""
    from diffrend.splat.intersect import isect_offset_encode, isect_tiles

    width, height, ts = 77, 29, 8
    inp, radii = _projected(seed, 24, c=2, width=width, height=height)
    th, tw = -(-height // ts), -(-width // ts)
    if lists == "every_tile":
        offsets, ids = _every_tile_lists(inp["depths"], th, tw)
    else:
        radii[:, 5] = 0  # (without the surfel that covers every tile, some tiles are empty)
        _, isect_ids, ids = isect_tiles(inp["means2d"], radii, inp["depths"], ts, tw, th)
        offsets = isect_offset_encode(isect_ids, 2, tw, th)
        ends = torch.cat([offsets.reshape(-1)[1:], torch.tensor([ids.numel()])])
        assert (ends == offsets.reshape(-1)).any()
    bg = torch.tensor([[0.1, 0.5, 0.9], [0.3, 0.3, 0.3]], dtype=F64)
    ref, g_ref = _outputs_and_grads(inp, offsets, ids, width, height, ts, "reference", bg)
    ker, g_ker = _outputs_and_grads(inp, offsets, ids, width, height, ts, "numba", bg)
    assert ref[1].max() > 0.5  # something is drawn
    for a, b in zip(ref, ker, strict=True):
        assert torch.allclose(a, b, atol=1e-9, rtol=1e-9)
    for a, b in zip(g_ref, g_ker, strict=True):
        assert torch.isfinite(b).all()
        assert torch.allclose(a, b, atol=1e-8, rtol=1e-7)


def test_kernel_float32_and_empty_scene():
    inp, radii = _projected(7, 12, c=1, dtype=torch.float32)
    from diffrend.splat.intersect import isect_offset_encode, isect_tiles

    _, isect_ids, ids = isect_tiles(inp["means2d"], radii, inp["depths"], 16, 2, 2)
    offsets = isect_offset_encode(isect_ids, 1, 2, 2)
    bg = torch.zeros(1, 3)
    ref, g_ref = _outputs_and_grads(inp, offsets, ids, 32, 24, 16, "reference", bg)
    ker, g_ker = _outputs_and_grads(inp, offsets, ids, 32, 24, 16, "numba", bg)
    for a, b in zip(ref, ker, strict=True):
        assert b.dtype == torch.float32
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-6)  # (float32 twin, float64 kernel)
    for a, b in zip(g_ref, g_ker, strict=True):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-5)  # (gradients up to 30 here)

    vm, ks = _camera(1, dtype=torch.float32)
    e = torch.zeros(0, 3)
    bgs = torch.tensor([[0.1, 0.2, 0.3]])
    for backend in ("numba", "reference"):
        rgb, alpha, nrm, sn, dist, med, meta = rasterization_2dgs(
            e, torch.zeros(0, 4), e, torch.zeros(0), e, vm, ks, 32, 24, backgrounds=bgs,
            render_mode="RGB+D", distloss=True, backend=backend)
        assert (alpha == 0).all() and (nrm == 0).all() and (med == 0).all()
        assert (dist == 0).all() and (sn == 0).all()
        assert torch.allclose(rgb[..., :3], bgs[:, None, None].expand(1, 24, 32, 3))


@pytest.mark.parametrize("tile_size,render_mode,depth_mode", [
    (16, "RGB+ED", "median"), (8, "RGB+D", "expected"), (5, "ED", "expected"),
    (16, "RGB", "expected")])
def test_pipeline_backends_agree(tile_size, render_mode, depth_mode):
    """rasterization_2dgs end to end, Numba against the twin: SH colours, two cameras, every
    output and the gradients of every input."""
    n = 40
    means, quats, scales, opac, _ = _surfels(11, n)
    coeffs = torch.randn(n, 4, 3, generator=torch.Generator().manual_seed(5), dtype=F64) * 0.3
    vm, ks = _camera(2, 36, 28)
    results = []
    for backend in ("reference", "numba"):
        inputs = [t.clone().requires_grad_(True) for t in (means, quats, scales, opac, coeffs,
                                                           vm)]  # fmt: skip
        out = rasterization_2dgs(*inputs[:5], inputs[5], ks, 36, 28, sh_degree=1,
                                 tile_size=tile_size, render_mode=render_mode,
                                 depth_mode=depth_mode, distloss=True, backend=backend)
        outs = [o for o in out[:6] if o is not None]
        g = torch.Generator().manual_seed(0)
        loss = sum((o * torch.randn(o.shape, generator=g, dtype=F64)).sum() for o in outs)
        grads = torch.autograd.grad(loss, inputs, allow_unused=True)  # (no colours in "ED")
        results.append(([o.detach() for o in outs], grads))
    (ref, g_ref), (ker, g_ker) = results
    assert len(ref) == (6 if "+" in render_mode else 5)
    for a, b in zip(ref, ker, strict=True):
        assert torch.allclose(a, b, atol=1e-9, rtol=1e-9)
    assert (g_ref[4] is None) == (render_mode == "ED")
    for a, b in zip(g_ref, g_ker, strict=True):
        assert (a is None and b is None) or torch.allclose(a, b, atol=1e-7, rtol=1e-7)


# --------------------------------------------------------------------------- analytic


@pytest.mark.parametrize("backend", ["numba", "reference"])
def test_one_surfel_facing_the_camera(backend):
    """A tilted camera looks at a surfel square on: at the centre pixel the alpha is the
    opacity, the expected and median depth the camera z, the normal the surfel's (towards
    the camera, in world space), and the colour the surfel's over the background."""
    width = height = 33
    angle = 0.3
    vm = torch.eye(4, dtype=F64)[None].clone()
    cs, sn = math.cos(angle), math.sin(angle)
    vm[0, :3, :3] = torch.tensor([[cs, 0, -sn], [0, 1, 0], [sn, 0, cs]], dtype=F64)
    vm[0, :3, 3] = torch.tensor([0.0, 0.0, 2.0], dtype=F64)
    ks = torch.tensor([[[30.0, 0, 16.5], [0, 30.0, 16.5], [0, 0, 1]]], dtype=F64)
    # the camera's optical axis in world space is the third row of R; the surfel sits on it,
    # 2 units in front, with its normal along that axis.
    axis = vm[0, 2, :3]
    centre = -(vm[0, :3, :3].T @ vm[0, :3, 3]) + 2.0 * axis
    half = angle / 2  # a rotation about y by the angle turns +z onto the axis
    quat = torch.tensor([[math.cos(half), 0, math.sin(half), 0]], dtype=F64)
    rgb, alpha, nrm, surf, dist, med, meta = rasterization_2dgs(
        centre[None], quat, torch.tensor([[0.3, 0.2, 0.0]], dtype=F64),
        torch.tensor([0.7], dtype=F64), torch.tensor([[0.2, 0.4, 0.6]], dtype=F64), vm, ks,
        width, height, backgrounds=torch.tensor([[1.0, 1.0, 1.0]], dtype=F64),
        render_mode="RGB+ED", distloss=True, backend=backend)
    c = 16
    assert torch.allclose(meta["depths"], torch.tensor([[2.0]], dtype=F64))
    assert math.isclose(alpha[0, c, c, 0], 0.7, rel_tol=1e-12)
    assert math.isclose(rgb[0, c, c, 3], 2.0, rel_tol=1e-12)
    assert math.isclose(med[0, c, c, 0], 2.0, rel_tol=1e-12)
    assert torch.allclose(rgb[0, c, c, :3], torch.tensor([0.2, 0.4, 0.6], dtype=F64) * 0.7
                          + 0.3)
    assert torch.allclose(nrm[0, c, c], -axis * 0.7)
    assert torch.allclose(surf[0, c, c], -axis, atol=1e-9)
    assert (dist == 0).all()  # one surfel: nothing to spread
    # one pixel right and one down: the ray meets the plane at u = 1 / 30 * 2 / 0.3 and
    # v = 1 / 30 * 2 / 0.2 standard deviations (the camera's x and the surfel's u agree)
    u = 1 / 30 * 2 / 0.3
    v = 1 / 30 * 2 / 0.2
    want = 0.7 * math.exp(-0.5 * (u * u + v * v))
    assert math.isclose(alpha[0, c + 1, c + 1, 0], want, rel_tol=1e-9)


@pytest.mark.parametrize("backend", ["numba", "reference"])
def test_two_surfels_on_the_axis(backend):
    """Two surfels square on at z = 2 and 3 (opacities 0.4, 0.5): at the centre pixel the
    weights are 0.4 and 0.3, the median is the back one's depth (T = 0.6 > 0.5 when entered),
    the distortion 2 w1 w2 |z1 - z2| = 0.24 and the expected depth (0.8 + 0.9) / 0.7."""
    vm, ks = _camera(1, 33, 33, f=30.0)
    ks[0, :2, 2] = 16.5
    means = torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, 0.0]], dtype=F64, requires_grad=True)
    out = rasterization_2dgs(means, torch.tensor([[1.0, 0, 0, 0]], dtype=F64).repeat(2, 1),
                             torch.full((2, 2), 0.3, dtype=F64),
                             torch.tensor([0.4, 0.5], dtype=F64), torch.ones(2, 1, dtype=F64),
                             vm, ks, 33, 33, render_mode="RGB+ED", distloss=True,
                             backend=backend)
    rgbd, alpha, _, _, dist, med, meta = out
    alpha, dist, med = alpha.detach(), dist.detach(), med.detach()
    assert math.isclose(alpha[0, 16, 16, 0], 0.7, rel_tol=1e-12)
    assert math.isclose(med[0, 16, 16, 0], 3.0, rel_tol=1e-12)
    assert math.isclose(dist[0, 16, 16, 0], 0.24, rel_tol=1e-12)
    assert math.isclose(rgbd[0, 16, 16, 1].item(), 1.7 / 0.7, rel_tol=1e-12)
    # gsplat's densification gradient: either surfel moved right adds to the right half
    (rgbd[0, :, 17:, 0].sum() - rgbd[0, :, :16, 0].sum()).backward()
    grad = meta["gradient_2dgs"].grad
    assert grad.shape == (1, 2, 2) and (grad[0, :, 0] > 0).all()
    assert grad[0, :, 1].abs().max() < 1e-9 * grad[0, :, 0].abs().min()  # (symmetric in y)


def test_depth_to_normal_of_a_tilted_plane():
    vm, ks = _camera(1, 16, 12, f=20.0)
    ys, xs = torch.meshgrid(torch.arange(12, dtype=F64) + 0.5, torch.arange(16, dtype=F64)
                            + 0.5, indexing="ij")
    # the plane n . X = 1 in camera space with n = (0.3, -0.2, 1): z = 1 / (n . ray)
    n = torch.tensor([0.3, -0.2, 1.0], dtype=F64)
    rays = torch.stack(((xs - 8) / 20, (ys - 6) / 20, torch.ones_like(xs)), -1)
    z = 1.0 / (rays @ n)
    normals = depth_to_normal(z[None, ..., None], vm, ks)
    inner = normals[0, 1:-1, 1:-1]
    assert torch.allclose(inner, (-n / n.norm()).expand_as(inner), atol=1e-9)
    assert (normals[0, 0] == 0).all() and (normals[0, :, -1] == 0).all()


def test_a_flat_surfel_draws_the_silhouette_of_a_thin_3d_gaussian():
    """Seen square on, a surfel and a 3D Gaussian with a negligible third scale are the same
    2D Gaussian, up to the low-pass filters (2DGS's max with a 0.7 px Gaussian, 3DGS's 0.3
    pixel^2 dilation), which matter only at the rim."""
    vm, ks = _camera(1, 48, 48, f=60.0, dtype=torch.float32)
    ks[0, :2, 2] = 24.0
    means = torch.tensor([[0.05, -0.1, 0.0], [-0.3, 0.2, 0.5]])
    quats = torch.tensor([[1.0, 0, 0, 0], [0.98, 0.0, 0.0, 0.2]])
    scales = torch.tensor([[0.4, 0.25, 1e-6], [0.2, 0.3, 1e-6]])
    opac = torch.tensor([0.9, 0.6])
    colors = torch.tensor([[1.0, 0.2, 0.1], [0.1, 0.3, 1.0]])
    rgb2, a2, *_ = rasterization_2dgs(means, quats, scales, opac, colors, vm, ks, 48, 48)
    rgb3, a3, _ = rasterization(means, quats, scales, opac, colors, vm, ks, 48, 48)
    assert (a2 - a3).abs().max() < 0.02  # (0.008 measured)
    assert (rgb2 - rgb3).abs().mean() < 2e-3
    assert ((a2 > 0.1) == (a3 > 0.1)).float().mean() > 0.99


def test_surface_normals_follow_a_tilted_surfel():
    """A big tilted opaque surfel: the normals from its (expected or median) depth agree with
    its composited normal inside the footprint."""
    vm, ks = _camera(1, 32, 32, f=30.0)
    ks[0, :2, 2] = 16.0
    quat = torch.tensor([[math.cos(0.25), math.sin(0.25), 0.0, 0.0]], dtype=F64)
    args = (torch.zeros(1, 3, dtype=F64), quat, torch.tensor([[2.0, 2.0, 0.0]], dtype=F64),
            torch.tensor([0.99], dtype=F64), torch.ones(1, 3, dtype=F64), vm, ks, 32, 32)
    for mode in ("expected", "median"):
        _, alpha, nrm, surf, _, med, _ = rasterization_2dgs(*args, render_mode="RGB+ED",
                                                           depth_mode=mode)
        inner = (slice(None), slice(12, 20), slice(12, 20))
        want = nrm[inner] / alpha[inner]
        # the depth is the centre's, constant over the surfel: the depth map is flat, so
        # its normal faces the camera, not the surfel's.
        assert torch.allclose(surf[inner], torch.tensor([0.0, 0, -1], dtype=F64), atol=1e-6)
        assert torch.allclose(want, want[0, 0, 0].expand_as(want), atol=1e-9)
        assert want[0, 0, 0, 1] > 0.4  # tilted about x: the normal has a y part
    assert (med[0, 12:20, 12:20] == 3.0).all()


# --------------------------------------------------------------------------- bad input


def _valid():
    means, quats, scales, opac, colors = _surfels(0, 4, dtype=torch.float32, awkward=False)
    vm, ks = _camera(1, dtype=torch.float32)
    return dict(means=means, quats=quats, scales=scales, opacities=opac, colors=colors,
                viewmats=vm, Ks=ks, width=32, height=24)


@pytest.mark.parametrize("name,fn", [
    ("means", lambda t: t.index_fill(0, torch.tensor([1]), float("nan"))),
    ("means", lambda t: t[:, :2]),
    ("quats", lambda t: t.index_fill(0, torch.tensor([2]), 0.0)),
    ("scales", lambda t: -t),
    ("scales", lambda t: t[:, :1]),
    ("opacities", lambda t: t + 1.0),
    ("colors", lambda t: t[:2]),
    ("viewmats", lambda t: t[:, :3]),
    ("Ks", lambda t: t.double()),
    ("width", lambda v: 0),
])
def test_bad_input_raises_naming_the_argument(name, fn):
    args = _valid()
    args[name] = fn(args[name])
    with pytest.raises(ValueError, match=name):
        rasterization_2dgs(**args)


@pytest.mark.parametrize("options,match", [
    ({"render_mode": "RGBD"}, "render_mode"),
    ({"depth_mode": "mean"}, "depth_mode"),
    ({"distloss": 1}, "distloss"),
    ({"backend": "triton"}, "backend"),
    ({"sh_degree": 1}, "colors"),
    ({"near_plane": float("nan")}, "near_plane"),
])
def test_bad_options_raise_naming_the_argument(options, match):
    with pytest.raises(ValueError, match=match):
        rasterization_2dgs(**_valid(), **options)


def test_sh_count_mismatch_raises():
    args = _valid()
    args["colors"] = torch.zeros(4, 5, 3)
    with pytest.raises(ValueError, match="colors"):
        rasterization_2dgs(**args, sh_degree=1)


def test_compositor_checks_its_arguments():
    inp, _ = _projected(0, 4, c=1)
    offsets, ids = _every_tile_lists(inp["depths"], 2, 2)
    bad = dict(inp, ray_transforms=inp["ray_transforms"][..., :2])
    with pytest.raises(ValueError, match="ray_transforms"):
        rasterize_to_pixels_2dgs(**bad, image_width=32, image_height=24, tile_size=16,
                                 isect_offsets=offsets, flatten_ids=ids)
    bad = dict(inp, normals=inp["normals"].float())
    with pytest.raises(ValueError, match="normals"):
        rasterize_to_pixels_2dgs(**bad, image_width=32, image_height=24, tile_size=16,
                                 isect_offsets=offsets, flatten_ids=ids)


# --------------------------------------------------------------------------- a small fit


def test_a_few_surfels_fit_a_target_image():
    """16 surfels fitted to an image of 4 others for 60 Adam steps: the loss falls 10x."""
    torch.manual_seed(0)
    vm, ks = _camera(1, 32, 32, f=32.0, dtype=torch.float32)
    ks[0, :2, 2] = 16.0
    t_means = torch.tensor([[-0.5, -0.5, 0.0], [0.5, -0.4, 0.1], [-0.4, 0.5, 0.2],
                            [0.45, 0.45, -0.1]])
    t_cols = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [1.0, 1.0, 0]])
    target, *_ = rasterization_2dgs(t_means, torch.tensor([[1.0, 0, 0, 0]]).repeat(4, 1),
                                    torch.full((4, 2), 0.3), torch.full((4,), 0.9), t_cols,
                                    vm, ks, 32, 32)
    g = torch.Generator().manual_seed(1)
    means = ((torch.rand(16, 3, generator=g) - 0.5) * 1.6).requires_grad_(True)
    quats = torch.tensor([[1.0, 0, 0, 0]]).repeat(16, 1).requires_grad_(True)
    log_s = torch.full((16, 2), math.log(0.2), requires_grad=True)
    logit_o = torch.zeros(16, requires_grad=True)
    cols = torch.rand(16, 3, generator=g).requires_grad_(True)
    opt = torch.optim.Adam([means, quats, log_s, logit_o, cols], lr=0.03)
    losses = []
    for _ in range(60):
        rgb, *_ = rasterization_2dgs(means, quats, log_s.exp(), torch.sigmoid(logit_o), cols,
                                     vm, ks, 32, 32)
        loss = (rgb - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0], losses[::10]
