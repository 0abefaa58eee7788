"""The fast splat kernels: the entry-major compositor's footprint bounds never skip a pixel
the exact test would keep (thin, rotated, huge and sub-pixel Gaussians against the torch twin),
the Numba tile intersection equals the torch one, and the memory budget's error."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_splat_composite import assert_close, brute_force_isect

from diffrend.splat.composite import rasterize_to_pixels
from diffrend.splat.composite_reference import rasterize_to_pixels_reference


def thin_scene(seed: int, n: int, width: int, height: int, tile_size: int):
    """Needle-like Gaussians (axis ratios up to 1e3) at random angles, opacities from tiny
    to 1, boxes of 4 sigma so the lists hold pixels right at the alpha cut-off."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.rand(*shape, generator=g, dtype=torch.float64)

    means = rand(1, n, 2) * torch.tensor([width, height], dtype=torch.float64)
    long_ = 1.0 + 20.0 * rand(1, n)
    short = long_ * 10.0 ** (-3.0 * rand(1, n))
    theta = 2 * math.pi * rand(1, n)
    cs, sn = theta.cos(), theta.sin()
    i0, i1 = 1.0 / long_**2, 1.0 / short**2
    conics = torch.stack(
        [cs * cs * i0 + sn * sn * i1, cs * sn * (i0 - i1), sn * sn * i0 + cs * cs * i1], -1
    )
    opacities = torch.where(rand(1, n) < 0.2, torch.ones(1, n, dtype=torch.float64),
                            0.004 + rand(1, n))
    opacities = opacities.clamp(max=1.0)
    colors = rand(1, n, 3)
    boxes = 4.0 * long_[..., None].expand(1, n, 2)
    offsets, ids = brute_force_isect(means, conics, rand(1, n), width, height, tile_size,
                                     boxes)
    return [means, conics, colors, opacities], offsets, ids


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 60),
       tile_size=st.sampled_from([4, 8, 16]))
def test_compositor_footprints_skip_nothing(seed, n, tile_size):
    floats, offsets, ids = thin_scene(seed, n, 33, 29, tile_size)
    outs = []
    for fn in (rasterize_to_pixels, rasterize_to_pixels_reference):
        leaves = [t.clone().requires_grad_() for t in floats]
        kwargs = {"backend": "numba"} if fn is rasterize_to_pixels else {}
        rgb, alpha = fn(*leaves, 33, 29, tile_size, offsets, ids, None, **kwargs)
        w = torch.linspace(-1, 1, rgb.numel(), dtype=torch.float64).reshape(rgb.shape)
        ((rgb * w).sum() + alpha.sum()).backward()
        outs.append([rgb.detach(), alpha.detach()] + [t.grad for t in leaves])
    for k, r in zip(*outs, strict=True):
        assert_close(k, r, 1e-10)


def _tiny_scene(n: int = 50):
    g = torch.Generator().manual_seed(3)
    means = torch.randn(n, 3, generator=g) * 0.3
    means[:, 2] += 3.0
    return dict(means=means, quats=torch.randn(n, 4, generator=g),
                scales=0.05 + 0.05 * torch.rand(n, 3, generator=g),
                opacities=torch.rand(n, generator=g), colors=torch.rand(n, 3, generator=g),
                viewmats=torch.eye(4)[None],
                Ks=torch.tensor([[[40.0, 0, 16], [0, 40.0, 16], [0, 0, 1]]]))


def test_memory_budget_error(monkeypatch):
    """A budget below the frame's estimate: a ValueError (and MemoryError) that says what it
    needs and how to lower it, raised before rendering; 'off' or a large budget renders."""
    from diffrend.raster.memory import ENV_VAR
    from diffrend.splat import rasterization
    from diffrend.splat.memory import SplatMemoryError, splat_frame_bytes

    s = _tiny_scene()
    need = splat_frame_bytes(1, 50, 32, 32, 3, torch.float32)
    monkeypatch.setenv(ENV_VAR, str(need - 1))
    with pytest.raises(ValueError, match="memory budget") as info:
        rasterization(**s, width=32, height=32)
    assert isinstance(info.value, SplatMemoryError) and isinstance(info.value, MemoryError)
    for hint in ("fewer Gaussians", "smaller image", ENV_VAR):
        assert hint in str(info.value)
    for budget in ("off", "1GB"):
        monkeypatch.setenv(ENV_VAR, budget)
        rgb, alpha, meta = rasterization(**s, width=32, height=32)
        assert rgb.shape == (1, 32, 32, 3) and float(alpha.max()) > 0


def test_memory_estimate_counts_intersections():
    """The intersections and channels add to the estimate; float64 doubles the float part."""
    from diffrend.splat.memory import splat_frame_bytes

    base = splat_frame_bytes(1, 1000, 64, 64, 3, torch.float32)
    assert splat_frame_bytes(1, 1000, 64, 64, 3, torch.float32, n_isects=10) == base + 10 * (
        6 * 8 + 9 * 8)
    assert splat_frame_bytes(1, 1000, 64, 64, 4, torch.float32) > base
    assert splat_frame_bytes(1, 1000, 64, 64, 3, torch.float64) > 1.9 * base
    # 1M Gaussians at SH degree 3 into 512^2 (measured peak 1.5 GB above the scene)
    big = splat_frame_bytes(1, 1_000_000, 512, 512, 3, torch.float32, n_isects=2_000_000)
    assert 1.2e9 < big < 3e9


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), c=st.integers(1, 3), n=st.integers(0, 300),
       tile_size=st.sampled_from([1, 4, 16]), ties=st.booleans())
def test_numba_isect_equals_torch(seed, c, n, tile_size, ties):
    """Same keys and ids, to the bit, as the torch path's single stable sort: several cameras,
    depth ties (ordered by index), negative and zero depths, culled, huge and off-image
    Gaussians, empty tiles."""
    from diffrend.splat.intersect import isect_tiles

    g = torch.Generator().manual_seed(seed)
    W, H = 37, 23
    means2d = torch.rand(c, n, 2, generator=g) * torch.tensor([W * 1.4, H * 1.4]) - 5.0
    radii = torch.randint(0, 6, (c, n, 2), generator=g, dtype=torch.int32)
    radii[torch.rand(c, n, generator=g) < 0.05] = 1000  # huge
    depths = torch.randn(c, n, generator=g)
    if ties:
        depths = depths.round()  # many equal depths, zeros and -0.0 included
    tw, th = -(-W // tile_size), -(-H // tile_size)
    ref = isect_tiles(means2d, radii, depths, tile_size, tw, th, backend="reference")
    ours = isect_tiles(means2d, radii, depths, tile_size, tw, th, backend="numba")
    for a, b in zip(ours, ref, strict=True):
        assert a.dtype == b.dtype and torch.equal(a, b)
    assert int(ref[0].sum()) == ours[2].numel()


def test_isect_backend_name():
    from diffrend.splat.intersect import isect_tiles

    z = torch.zeros(1, 1, 2)
    with pytest.raises(ValueError, match="backend"):
        isect_tiles(z, z.int(), torch.ones(1, 1), 16, 1, 1, backend="gpu")
