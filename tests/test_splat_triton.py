"""The Triton kernels of the splat compositor against its torch twin (forward and every
gradient).

Without a GPU the kernels run in Triton's interpreter on CPU tensors (``TRITON_INTERPRET=1``,
set by conftest.py before triton is first imported): slow, so the scenes are tiny. With CUDA
the same comparisons run compiled on CUDA tensors.
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("triton", reason="triton is not installed (pip install 'diffrend[triton]')")

from test_splat_composite import assert_close, make_scene, run  # noqa: E402

from diffrend.splat.composite import rasterize_to_pixels  # noqa: E402

CUDA = torch.cuda.is_available()  # without it, conftest.py chose Triton's interpreter
DEVICE = torch.device("cuda" if CUDA else "cpu")


def to_device(floats, offsets, ids):
    return [t.to(DEVICE) for t in floats], offsets.to(DEVICE), ids.to(DEVICE)


def compare(floats, width, height, tile_size, offsets, ids, dtype, use_bg=True, tol=None):
    """Triton in ``dtype`` against the twin in ``dtype`` on the same values (both compute in
    that dtype, the same expressions in the same order; sums may be ordered differently)."""
    tol = tol or (1e-10 if dtype == torch.float64 else 2e-4)
    low = [t.to(dtype) for t in floats]
    dev = to_device(low, offsets, ids)
    k_rgb, k_alpha, k_grads = run("triton", dev[0], width, height, tile_size, dev[1], dev[2],
                                  use_bg=use_bg)
    r_rgb, r_alpha, r_grads = run("reference", low, width, height, tile_size, offsets, ids,
                                  use_bg=use_bg)
    assert k_rgb.device.type == DEVICE.type and k_rgb.dtype == dtype
    assert k_rgb.shape == r_rgb.shape and k_alpha.shape == r_alpha.shape
    assert_close(k_rgb.cpu(), r_rgb, tol)
    assert_close(k_alpha.cpu(), r_alpha, tol)
    for name, k, r in zip(("means2d", "conics", "colors", "opacities", "backgrounds"),
                          k_grads, r_grads, strict=True):
        assert k.dtype == dtype and k.shape == r.shape, name
        assert_close(k.cpu(), r, tol)
    return k_rgb.cpu(), k_alpha.cpu(), [g.cpu() for g in k_grads]


# (seed, C, N, D, width, height, tile_size, use_bg): a few Gaussians per tile, D = 1, 3, 4,
# images not a whole number of tiles, one tile size that is not a power of two.
SCENES = [
    (1, 1, 12, 3, 19, 13, 8, True),
    (2, 2, 20, 1, 17, 9, 8, False),
    (3, 1, 30, 4, 33, 17, 16, True),
    (4, 1, 10, 3, 11, 7, 5, True),
]


@pytest.mark.parametrize("scene", SCENES, ids=[f"seed{s[0]}-ts{s[6]}" for s in SCENES])
def test_triton_equals_twin_float64(scene):
    seed, C, N, D, W, H, ts, use_bg = scene
    floats, offsets, ids = make_scene(seed, C, N, D, W, H, ts)
    assert ids.numel() > 0
    rgb, alpha, grads = compare(floats, W, H, ts, offsets, ids, torch.float64, use_bg)
    assert float(alpha.max()) > 0.1  # something was drawn
    assert all(float(g.abs().max()) > 0 for g in grads[:4])  # every gradient is exercised


def test_float32():
    floats, offsets, ids = make_scene(5, 1, 15, 3, 19, 13, 8)
    compare(floats, 19, 13, 8, offsets, ids, torch.float32)


def test_early_termination_and_empty_tiles():
    """An opaque stack at the first tile's centre stops its pixels early; the right-hand
    column of tiles has no Gaussian and shows the background."""
    C, N, D, W, H, ts = 1, 40, 3, 67, 9, 8  # means left of x = 51, boxes < 11 pixels
    floats, offsets, ids = make_scene(9, C, N, D, W, H, ts, huge=False)
    counts = torch.diff(torch.cat([offsets.reshape(-1), torch.tensor([ids.numel()])]))
    assert int((counts == 0).sum()) >= 1
    rgb, alpha, _ = compare(floats, W, H, ts, offsets, ids, torch.float64)
    assert float(alpha[0, ts // 2, ts // 2]) > 0.999
    bg = floats[4]
    torch.testing.assert_close(rgb[:, :, -1], bg[:, None, :].expand(C, H, D))
    assert float(alpha[:, :, -1].abs().max()) == 0.0
    # The stop really happened at the centre pixel: an entry after its last contributing
    # one would still be visible there (alpha >= 1/255).
    from diffrend.splat import composite_triton

    m, con, col, op, _ = to_device(floats, offsets, ids)[0]
    _, t_fin, last = composite_triton.forward(m, con, col, op, W, H, ts, offsets.to(DEVICE),
                                              ids.to(DEVICE))
    p = ts // 2 + 0.5
    after = ids[int(last[0, ts // 2, ts // 2]) + 1:int(offsets.reshape(-1)[1])]
    d = p - floats[0][0, after]
    a, b, c = floats[1][0, after].unbind(-1)
    sigma = 0.5 * (a * d[:, 0] ** 2 + c * d[:, 1] ** 2) + b * d[:, 0] * d[:, 1]
    visible = (sigma >= 0) & (floats[3][0, after] * torch.exp(-sigma) >= 1 / 255)
    assert bool(visible.any())
    assert float(t_fin[0, ts // 2, ts // 2]) > 1e-4  # (the stop is before T reaches 1e-4)


def test_no_intersections_and_determinism():
    """No intersection at all: background and alpha 0; a repeated call gives bit-identical
    images and gradients."""
    W, H, ts = 12, 9, 8
    floats, _, _ = make_scene(5, 2, 6, 3, W, H, ts)
    offsets = torch.zeros(2, 2, 2, dtype=torch.int64)
    ids = torch.zeros(0, dtype=torch.int64)
    dev = to_device(floats, offsets, ids)
    rgb, alpha, grads = run("triton", dev[0], W, H, ts, dev[1], dev[2])
    torch.testing.assert_close(rgb.cpu(), floats[4][:, None, None].expand(2, H, W, 3))
    assert float(alpha.abs().max()) == 0.0
    assert all(float(g.abs().max()) == 0.0 for g in grads[:4])

    floats, offsets, ids = make_scene(6, 1, 12, 3, 13, 9, 8)
    dev = to_device(floats, offsets, ids.to(torch.int32))  # int32 ids are accepted too
    first = run("triton", dev[0], 13, 9, 8, dev[1].to(torch.int32), dev[2])
    second = run("triton", dev[0], 13, 9, 8, dev[1].to(torch.int32), dev[2])
    for a, b in zip([*first[:2], *first[2]], [*second[:2], *second[2]], strict=True):
        assert torch.equal(a, b)


def test_dispatch():
    """backend="triton" runs here (CUDA, or the interpreter on the CPU); "auto" on CPU
    tensors stays on Numba."""
    floats, offsets, ids = make_scene(8, 1, 5, 3, 9, 8, 8)
    m, con, col, op, bg = floats
    auto = rasterize_to_pixels(m, con, col, op, 9, 8, 8, offsets, ids, bg, backend="auto")
    numba = rasterize_to_pixels(m, con, col, op, 9, 8, 8, offsets, ids, bg, backend="numba")
    for a, b in zip(auto, numba, strict=True):
        assert torch.equal(a, b)
    dm, dcon, dcol, dop, dbg = to_device(floats, offsets, ids)[0]
    tri = rasterize_to_pixels(dm, dcon, dcol, dop, 9, 8, 8, offsets.to(DEVICE),
                              ids.to(DEVICE), dbg, backend="triton")
    for a, b in zip(tri, numba, strict=True):
        assert_close(a.cpu(), b, 1e-10)


def test_rasterization_end_to_end():
    """diffrend.splat.rasterization with backend="triton" (the compositing stage) renders and
    differentiates like the Numba backend (float32: the Numba kernels compute in float64)."""
    from diffrend.splat import rasterization

    g = torch.Generator().manual_seed(3)
    n, W, H = 10, 16, 12
    means = torch.rand(n, 3, generator=g) * torch.tensor([1.0, 0.8, 2.0]) - torch.tensor(
        [0.5, 0.4, -2.0])  # in front of the camera, z in [2, 4]
    quats = torch.randn(n, 4, generator=g)
    scales = 0.05 + 0.2 * torch.rand(n, 3, generator=g)
    opacities = 0.3 + 0.7 * torch.rand(n, generator=g)
    colors = torch.rand(n, 3, generator=g)
    viewmats = torch.eye(4)[None]
    Ks = torch.tensor([[[20.0, 0.0, W / 2], [0.0, 20.0, H / 2], [0.0, 0.0, 1.0]]])
    results = []
    for backend, dev in (("numba", torch.device("cpu")), ("triton", DEVICE)):
        leaves = [t.to(dev).requires_grad_() for t in (means, opacities, colors)]
        out, alphas, _ = rasterization(leaves[0], quats.to(dev), scales.to(dev), leaves[1],
                                       leaves[2], viewmats.to(dev), Ks.to(dev), W, H,
                                       tile_size=8, render_mode="RGB+D", backend=backend)
        w = torch.linspace(-1, 1, out.numel()).reshape(out.shape).to(dev)
        ((out * w).sum() + alphas.sum()).backward()
        results.append([out.detach().cpu(), alphas.detach().cpu(),
                        *(t.grad.cpu() for t in leaves)])
    assert float(results[0][1].max()) > 0.5
    for a, b in zip(*results, strict=True):
        assert_close(a, b, 1e-4)
