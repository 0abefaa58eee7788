"""The splat compositor: Numba kernels against the torch twin, the twin against autograd's
numerical gradients, a pixel computed by hand, long lists, and argument checks.

The intersection lists are built here by brute force (every Gaussian whose 3-sigma box
touches the tile, sorted by a given depth), independently of the real tile intersection.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffrend.splat.composite import rasterize_to_pixels
from diffrend.splat.composite_reference import rasterize_to_pixels_reference


def brute_force_isect(means2d, conics, depths, width, height, tile_size, boxes=None):
    """(isect_offsets (C, TH, TW) int64, flatten_ids (M,) int64): each tile lists every
    Gaussian whose 3-sigma box (or given half-extent ``boxes`` (C, N, 2)) overlaps it,
    sorted by depth (ties: index)."""
    C, N = means2d.shape[:2]
    TH, TW = -(-height // tile_size), -(-width // tile_size)
    a, b, c = conics[..., 0], conics[..., 1], conics[..., 2]
    if boxes is None:
        det = a * c - b * b
        boxes = 3.0 * torch.stack([(c / det).sqrt(), (a / det).sqrt()], -1)
    lo = torch.floor((means2d - boxes) / tile_size).long()
    hi = torch.floor((means2d + boxes) / tile_size).long()
    offsets, ids = [], []
    for cam in range(C):
        order = sorted(range(N), key=lambda n: (float(depths[cam, n]), n))
        for ty in range(TH):
            for tx in range(TW):
                offsets.append(len(ids))
                for n in order:
                    (x0, y0), (x1, y1) = lo[cam, n].tolist(), hi[cam, n].tolist()
                    if x0 <= tx <= x1 and y0 <= ty <= y1:
                        ids.append(cam * N + n)
    return (torch.tensor(offsets, dtype=torch.int64).reshape(C, TH, TW),
            torch.tensor(ids, dtype=torch.int64))


def make_scene(seed, C, N, D, width, height, tile_size, dtype=torch.float64, huge=True):
    """A random scene mixing ordinary, huge (tiny conic), sub-pixel (huge conic), indefinite
    (sigma < 0 somewhere) and opaque stacked Gaussians (no huge ones unless ``huge``); they all
    lie in the left 3/4 of the image, so the right tiles may be empty."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.rand(*shape, generator=g, dtype=torch.float64)

    kind = torch.randint(0, 5, (C, N), generator=g)
    if not huge:
        kind = torch.where(kind == 1, 0, kind)
    means = rand(C, N, 2) * torch.tensor([0.75 * width, height], dtype=torch.float64)
    scale = 0.5 + 3.0 * rand(C, N, 2)
    scale = torch.where((kind == 1)[..., None], 40.0 + 60 * rand(C, N, 2), scale)  # huge
    scale = torch.where((kind == 2)[..., None], 0.05 + 0.2 * rand(C, N, 2), scale)  # tiny
    theta = math.pi * rand(C, N)
    cs, sn = theta.cos(), theta.sin()
    i0, i1 = 1.0 / scale[..., 0] ** 2, 1.0 / scale[..., 1] ** 2
    conics = torch.stack(
        [cs * cs * i0 + sn * sn * i1, cs * sn * (i0 - i1), sn * sn * i0 + cs * cs * i1], -1
    )
    boxes = 3.0 * scale.max(-1).values[..., None].expand(C, N, 2)
    det = conics[..., 0] * conics[..., 2] - conics[..., 1] ** 2
    # kind 3: an indefinite conic (sigma < 0 in some directions); its box is the 3-scale one.
    indef = kind == 3
    conics[..., 1] = torch.where(indef, 2.0 * det.sqrt() + conics[..., 1].abs() + 0.1,
                                 conics[..., 1])
    opacities = 0.05 + 0.9 * rand(C, N)
    # kind 4: opaque, stacked near the first tile's centre (early termination there).
    stack = kind == 4
    centre = torch.tensor([tile_size / 2, tile_size / 2], dtype=torch.float64)
    means = torch.where(stack[..., None], centre + rand(C, N, 2) - 0.5, means)
    conics = torch.where(stack[..., None], torch.tensor([0.05, 0.0, 0.05],
                                                        dtype=torch.float64), conics)
    boxes = torch.where(stack[..., None], 3.0 * math.sqrt(20.0), boxes)
    # (half of them exactly 1: alpha is clamped to 0.999 near their centres)
    opacities = torch.where(stack, (0.9 + 0.2 * rand(C, N)).clamp(max=1.0), opacities)
    colors = rand(C, N, D)
    backgrounds = rand(C, D)
    depths = rand(C, N)
    offsets, ids = brute_force_isect(means, conics, depths, width, height, tile_size, boxes)
    floats = [t.to(dtype) for t in (means, conics, colors, opacities, backgrounds)]
    return floats, offsets, ids


def run(backend, floats, width, height, tile_size, offsets, ids, seed=0, use_bg=True):
    """Forward, then backward of a random linear loss: (rgb, alpha, grads of the floats)."""
    leaves = [t.clone().requires_grad_() for t in floats]
    m, con, col, op, bg = leaves
    rgb, alpha = rasterize_to_pixels(m, con, col, op, width, height, tile_size, offsets, ids,
                                     bg if use_bg else None, backend=backend)
    g = torch.Generator().manual_seed(seed + 1)
    w_rgb = torch.randn(rgb.shape, generator=g, dtype=torch.float64).to(rgb.dtype)
    w_alpha = torch.randn(alpha.shape, generator=g, dtype=torch.float64).to(rgb.dtype)
    ((rgb * w_rgb).sum() + (alpha * w_alpha).sum()).backward()
    grads = [t.grad if t.grad is not None else torch.zeros_like(t) for t in leaves]
    return rgb.detach(), alpha.detach(), grads


def assert_close(actual, expected, tol):
    """Equal to ``tol`` relative to the larger of 1 and the expected tensor's largest value."""
    scale = max(1.0, float(expected.abs().max())) if expected.numel() else 1.0
    torch.testing.assert_close(actual.to(torch.float64), expected.to(torch.float64),
                               rtol=0.0, atol=tol * scale)


def compare_backends(floats, width, height, tile_size, offsets, ids, dtype, use_bg=True):
    """The Numba kernel in ``dtype`` against the float64 twin on the same (widened) values:
    the kernel's arithmetic is float64, so they agree to ``dtype``'s rounding."""
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    low = [t.to(dtype) for t in floats]
    k_rgb, k_alpha, k_grads = run("numba", low, width, height, tile_size, offsets, ids,
                                  use_bg=use_bg)
    wide = [t.to(torch.float64) for t in low]
    r_rgb, r_alpha, r_grads = run("reference", wide, width, height, tile_size, offsets, ids,
                                  use_bg=use_bg)
    assert k_rgb.dtype == dtype and k_alpha.dtype == dtype
    assert k_rgb.shape == r_rgb.shape and k_alpha.shape == r_alpha.shape
    assert_close(k_rgb, r_rgb, tol)
    assert_close(k_alpha, r_alpha, tol)
    for name, k, r in zip(("means2d", "conics", "colors", "opacities", "backgrounds"),
                          k_grads, r_grads, strict=True):
        assert k.dtype == dtype, name
        assert_close(k, r, tol)
    return k_rgb, k_alpha, k_grads


scenes = st.fixed_dictionaries({
    "seed": st.integers(0, 2**31 - 1),
    "C": st.integers(1, 2),
    "N": st.integers(0, 120),
    "D": st.sampled_from([1, 3, 4]),
    "width": st.integers(5, 41),
    "height": st.integers(5, 27),
    "tile_size": st.sampled_from([5, 8, 16]),
})


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scene=scenes, use_bg=st.booleans())
def test_numba_equals_twin_float64(scene, use_bg):
    floats, offsets, ids = make_scene(**scene)
    w, h, ts = scene["width"], scene["height"], scene["tile_size"]
    compare_backends(floats, w, h, ts, offsets, ids, torch.float64, use_bg)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scene=scenes)
def test_numba_equals_twin_float32(scene):
    floats, offsets, ids = make_scene(**scene)
    w, h, ts = scene["width"], scene["height"], scene["tile_size"]
    compare_backends(floats, w, h, ts, offsets, ids, torch.float32)


@pytest.mark.parametrize("tile_size", [8, 16])
def test_crowded_tiles_empty_tiles_and_early_termination(tile_size):
    """Hundreds of Gaussians per tile, empty tiles, and pixels that stop early, on several
    cameras; the scene is checked to contain each case."""
    # Means lie left of x = 50 with boxes under 11 pixels: the last tile column is empty.
    C, N, D, W, H = 2, 400, 3, 67, 2 * tile_size + 3
    floats, offsets, ids = make_scene(7, C, N, D, W, H, tile_size, huge=False)
    counts = torch.diff(torch.cat([offsets.reshape(-1), torch.tensor([ids.numel()])]))
    assert int(counts.max()) >= 200  # crowded
    assert int((counts == 0).sum()) >= 1  # empty (the right-hand tiles)
    rgb, alpha, grads = compare_backends(floats, W, H, tile_size, offsets, ids, torch.float64)
    # The opaque stack leaves T <= 1e-3 at the first tile's centre, so alpha ~ 1 there.
    assert float(alpha[:, tile_size // 2, tile_size // 2].min()) > 0.999
    # Pixels of empty tiles show the background only.
    bg = floats[4]
    torch.testing.assert_close(rgb[:, :, -1], bg[:, None, :].expand(C, H, D))


def test_float32_twin_agrees_with_float32_kernel():
    """The twin run in float32 agrees with the (float64-arithmetic) kernel to float32 error."""
    W, H, ts = 30, 21, 8
    floats, offsets, ids = make_scene(3, 2, 80, 3, W, H, ts, dtype=torch.float32)
    k_rgb, k_alpha, k_grads = run("numba", floats, W, H, ts, offsets, ids)
    r_rgb, r_alpha, r_grads = run("reference", floats, W, H, ts, offsets, ids)
    assert r_rgb.dtype == torch.float32
    assert_close(k_rgb, r_rgb, 1e-5)
    assert_close(k_alpha, r_alpha, 1e-5)
    for k, r in zip(k_grads, r_grads, strict=True):
        assert_close(k, r, 1e-4)


def test_one_pixel_two_gaussians_by_hand():
    """Pixel (0, 0), centre (0.5, 0.5): Gaussian A on it (sigma 0, alpha = 0.5), then B one
    pixel to the right (sigma = 0.5, alpha = 0.8 e^-0.5); with a background."""
    means = torch.tensor([[[0.5, 0.5], [1.5, 0.5]]], dtype=torch.float64)
    conics = torch.tensor([[[1.0, 0.0, 1.0], [1.0, 0.0, 1.0]]], dtype=torch.float64)
    colors = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.5]]], dtype=torch.float64)
    opac = torch.tensor([[0.5, 0.8]], dtype=torch.float64)
    bg = torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64)
    offsets = torch.zeros(1, 1, 1, dtype=torch.int64)
    ids = torch.tensor([0, 1])
    a_b = 0.8 * math.exp(-0.5)
    t_end = 0.5 * (1.0 - a_b)
    want = torch.tensor([0.5, 0.5 * a_b, 0.5 * a_b * 0.5 + t_end], dtype=torch.float64)
    for backend in ("numba", "reference"):
        leaves = [t.clone().requires_grad_() for t in (means, conics, colors, opac, bg)]
        rgb, alpha = rasterize_to_pixels(*leaves[:4], 1, 1, 16, offsets, ids, leaves[4],
                                         backend=backend)
        torch.testing.assert_close(rgb[0, 0, 0], want, rtol=0, atol=1e-15)
        torch.testing.assert_close(alpha[0, 0, 0, 0].item(), 1.0 - t_end, rtol=0, atol=1e-15)
        rgb[0, 0, 0, 1].backward()  # green = 0.5 * a_b: d/d opacity_B = 0.5 e^-0.5,
        # d/d opacity_A = -a_b (A's alpha dims B), d/d mean_B.x = -0.5 * a_b (sigma grows
        # by dx = -1 as the mean moves right: d sigma / d mx = -a dx = 1).
        torch.testing.assert_close(leaves[3].grad[0], torch.tensor(
            [-a_b, 0.5 * math.exp(-0.5)], dtype=torch.float64), rtol=0, atol=1e-15)
        torch.testing.assert_close(leaves[0].grad[0, 1], torch.tensor(
            [-0.5 * a_b, 0.0], dtype=torch.float64), rtol=0, atol=1e-15)


def test_nothing_dropped_in_a_tile_of_2000():
    """2000 faint Gaussians on one pixel: every one contributes (T stays above 1e-4), so
    colour = sum_k alpha (1 - alpha)^k c_k, and the last one has a colour gradient."""
    n = 2000
    alpha = 0.004
    means = torch.full((1, n, 2), 0.5, dtype=torch.float64)
    conics = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64).expand(1, n, 3).clone()
    colors = torch.rand(1, n, 1, generator=torch.Generator().manual_seed(0),
                        dtype=torch.float64)
    opac = torch.full((1, n), alpha, dtype=torch.float64)
    offsets = torch.zeros(1, 1, 1, dtype=torch.int64)
    ids = torch.arange(n)
    weights = alpha * (1.0 - alpha) ** torch.arange(n, dtype=torch.float64)
    for backend in ("numba", "reference"):
        col = colors.clone().requires_grad_()
        rgb, a = rasterize_to_pixels(means, conics, col, opac, 1, 1, 8, offsets, ids,
                                     backend=backend)
        want = float((weights * colors[0, :, 0]).sum())
        assert math.isclose(float(rgb.detach()[0, 0, 0, 0]), want, rel_tol=1e-12)
        assert math.isclose(float(a.detach()[0, 0, 0, 0]), 1.0 - (1.0 - alpha) ** n,
                            rel_tol=1e-12)
        rgb.sum().backward()
        torch.testing.assert_close(col.grad[0, :, 0], weights, rtol=1e-12, atol=0)


@pytest.mark.parametrize("backend", ["reference", "numba"])
def test_gradcheck(backend):
    """float64 gradcheck of the twin and of the kernels' autograd Function on a tiny scene
    (two cameras, two tiles, no decision near its threshold)."""
    means = torch.tensor([[[2.0, 2.5], [4.3, 1.7], [6.1, 3.2]],
                          [[1.2, 3.3], [3.9, 2.1], [5.5, 0.8]]], dtype=torch.float64)
    conics = torch.tensor([0.4, 0.1, 0.3], dtype=torch.float64).expand(2, 3, 3).clone()
    conics[:, 1] = torch.tensor([0.2, -0.05, 0.5], dtype=torch.float64)
    colors = torch.rand(2, 3, 2, generator=torch.Generator().manual_seed(1),
                        dtype=torch.float64)
    opac = torch.tensor([[0.6, 0.7, 0.5], [0.4, 0.8, 0.65]], dtype=torch.float64)
    bg = torch.tensor([[0.2, 0.9], [0.4, 0.1]], dtype=torch.float64)
    depths = torch.tensor([[0.3, 0.1, 0.2], [0.5, 0.6, 0.4]])
    W, H, ts = 7, 4, 4
    offsets, ids = brute_force_isect(means, conics, depths, W, H, ts)
    assert ids.numel() >= 6

    def f(m, con, col, op, b):
        rgb, alpha = rasterize_to_pixels(m, con, col, op, W, H, ts, offsets, ids, b,
                                         backend=backend)
        return rgb, alpha

    inputs = [t.clone().requires_grad_() for t in (means, conics, colors, opac, bg)]
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-7)


def test_no_intersections_determinism_dispatch_and_chunks():
    """No intersection at all: background and alpha 0 on both backends; a kernel call
    repeated gives bit-identical gradients; "auto" runs the kernels on the CPU; the twin
    gives the same images whatever its chunk size."""
    W, H, ts = 12, 9, 8
    floats, _, _ = make_scene(5, 2, 10, 3, W, H, ts)
    offsets = torch.zeros(2, 2, 2, dtype=torch.int64)
    ids = torch.zeros(0, dtype=torch.int64)
    for backend in ("numba", "reference"):
        rgb, alpha, _ = run(backend, floats, W, H, ts, offsets, ids)
        torch.testing.assert_close(rgb, floats[4][:, None, None].expand(2, H, W, 3))
        assert float(alpha.abs().max()) == 0.0
    floats, offsets, ids = make_scene(6, 2, 150, 3, 37, 20, 8)
    first = run("numba", floats, 37, 20, 8, offsets, ids)
    second = run("auto", floats, 37, 20, 8, offsets, ids)
    for a, b in zip([*first[:2], *first[2]], [*second[:2], *second[2]], strict=True):
        assert torch.equal(a, b)
    m, con, col, op, bg = floats
    whole = rasterize_to_pixels_reference(m, con, col, op, 37, 20, 8, offsets, ids, bg)
    tiny = rasterize_to_pixels_reference(m, con, col, op, 37, 20, 8, offsets, ids, bg,
                                         max_elements=1)  # one tile per chunk
    for a, b in zip(whole, tiny, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-14)


def test_bad_arguments():
    W, H, ts = 12, 9, 8
    (m, con, col, op, bg), offsets, ids = make_scene(5, 1, 10, 3, W, H, ts)

    def call(**over):
        args = dict(means2d=m, conics=con, colors=col, opacities=op, image_width=W,
                    image_height=H, tile_size=ts, isect_offsets=offsets, flatten_ids=ids,
                    backgrounds=bg)
        args.update(over)
        return rasterize_to_pixels(**args)

    with pytest.raises(ValueError, match="means2d"):
        call(means2d=m[..., :1])
    with pytest.raises(ValueError, match="conics"):
        call(conics=con[:, :5])
    with pytest.raises(ValueError, match="colors"):
        call(colors=col.float())
    with pytest.raises(ValueError, match="opacities"):
        call(opacities=op[..., None])
    with pytest.raises(ValueError, match="backgrounds"):
        call(backgrounds=bg[:, :2])
    with pytest.raises(ValueError, match="tile_size"):
        call(tile_size=0)
    with pytest.raises(ValueError, match="isect_offsets"):
        call(tile_size=4)  # the grid is 3x3 tiles, the offsets 2x2
    with pytest.raises(ValueError, match="isect_offsets"):
        call(isect_offsets=offsets + ids.numel() + 1)  # past M
    decreasing = offsets.clone()
    decreasing[0, 0, 0] = ids.numel()
    assert int(decreasing[0, 0, 1]) < ids.numel()
    with pytest.raises(ValueError, match="isect_offsets"):
        call(isect_offsets=decreasing)
    with pytest.raises(ValueError, match="flatten_ids"):
        call(flatten_ids=ids.float())
    with pytest.raises(ValueError, match="flatten_ids"):
        call(flatten_ids=torch.full_like(ids, 10))
    # CPU tensors outside Triton's interpreter (the Triton kernels: test_splat_triton.py)
    with (pytest.MonkeyPatch.context() as mp,
          pytest.raises(ValueError, match="backend='triton' needs")):
        mp.setenv("TRITON_INTERPRET", "0")
        call(backend="triton")
    with pytest.raises(ValueError, match="backend"):
        call(backend="cuda")
