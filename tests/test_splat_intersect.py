"""diffrend.splat.intersect: exact, depth-sorted tile lists against a brute-force loop."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diffrend.splat.intersect import isect_offset_encode, isect_tiles


def _brute_force_lists(means2d, radii, depths, tile_size, tw, th):
    """{(c, ty, tx): [c*N + n, ...]} front to back, by testing every tile against every box.

    A Gaussian touches a tile when its open box (mean - r, mean + r) overlaps the tile's
    square [tx*ts, (tx+1)*ts] x [ty*ts, (ty+1)*ts]; equal depths keep the Gaussians' order.
    """
    c, n = depths.shape
    out = {}
    for ci in range(c):
        for ty in range(th):
            for tx in range(tw):
                hits = []
                for i in range(n):
                    rx, ry = radii[ci, i].tolist()
                    if rx <= 0 or ry <= 0:
                        continue
                    mx, my = means2d[ci, i].tolist()
                    if (tx * tile_size < mx + rx and (tx + 1) * tile_size > mx - rx
                            and ty * tile_size < my + ry and (ty + 1) * tile_size > my - ry):
                        hits.append(i)
                hits.sort(key=lambda i, ci=ci: float(depths[ci, i]))  # sort() is stable
                out[ci, ty, tx] = [ci * n + i for i in hits]
    return out


def _lists_from_offsets(offsets, flatten_ids):
    flat = offsets.reshape(-1).tolist() + [flatten_ids.numel()]
    c, th, tw = offsets.shape
    out = {}
    for k in range(c * th * tw):
        ci, rem = divmod(k, th * tw)
        out[ci, rem // tw, rem % tw] = flatten_ids[flat[k] : flat[k + 1]].tolist()
    return out


def _check_scene(means2d, radii, depths, tile_size, width, height):
    tw, th = math.ceil(width / tile_size), math.ceil(height / tile_size)
    c, n = depths.shape
    tiles_per_gauss, isect_ids, flatten_ids = isect_tiles(
        means2d, radii, depths, tile_size, tw, th
    )
    offsets = isect_offset_encode(isect_ids, c, tw, th)
    assert tiles_per_gauss.shape == (c, n) and tiles_per_gauss.dtype == torch.int32
    assert isect_ids.dtype == torch.int64 and flatten_ids.dtype == torch.int64
    assert offsets.shape == (c, th, tw)
    assert (isect_ids[1:] >= isect_ids[:-1]).all()
    expect = _brute_force_lists(means2d, radii, depths, tile_size, tw, th)
    got = _lists_from_offsets(offsets, flatten_ids)
    assert got == expect
    # Exact counts: every Gaussian appears in as many tiles as tiles_per_gauss says.
    per = torch.zeros(c * n, dtype=torch.int64)
    for ids in expect.values():
        for i in ids:
            per[i] += 1
    assert per.reshape(c, n).tolist() == tiles_per_gauss.tolist()
    assert int(tiles_per_gauss.sum()) == flatten_ids.numel()


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(0, 30),
    c=st.integers(1, 3),
    tile_size=st.sampled_from([1, 4, 8, 16]),
    width=st.integers(1, 40),
    height=st.integers(1, 40),
    depth_levels=st.sampled_from([0, 3]),
)
def test_matches_brute_force(seed, n, c, tile_size, width, height, depth_levels):
    g = torch.Generator().manual_seed(seed)
    # Means on and off the image, radii from culled (0) to larger than the image.
    lo = torch.tensor([-30.0, -30.0])
    span = torch.tensor([width + 60.0, height + 60.0])
    means2d = lo + span * torch.rand(c, n, 2, generator=g)
    radii = torch.randint(0, 25, (c, n, 2), generator=g, dtype=torch.int32)
    radii[..., 1] = torch.where(radii[..., 0] == 0, 0, radii[..., 1] + 1)
    if depth_levels:  # a few distinct depths: ties must keep the Gaussians' order
        depths = torch.randint(1, depth_levels + 1, (c, n), generator=g).float() * 0.7
    else:
        depths = torch.rand(c, n, generator=g) * 100 + 0.01
    _check_scene(means2d, radii, depths, tile_size, width, height)


def test_handmade_scene():
    # Two cameras, 32 x 16 pixels in 16-pixel tiles: a 2 x 1 grid.
    means2d = torch.tensor([[[8.0, 8.0], [16.0, 8.0], [40.0, 8.0], [24.0, 8.0]],
                            [[8.0, 8.0], [8.0, 8.0], [8.0, 8.0], [8.0, 8.0]]])  # fmt: skip
    radii = torch.tensor([[[4, 4], [3, 3], [5, 5], [2, 2]],
                          [[4, 4], [0, 0], [4, 4], [4, 4]]], dtype=torch.int32)  # fmt: skip
    depths = torch.tensor([[3.0, 1.0, 2.0, 0.5], [2.0, 1.0, 1.0, 2.0]])
    tpg, ids, flat = isect_tiles(means2d, radii, depths, 16, 2, 1)
    offsets = isect_offset_encode(ids, 2, 2, 1)
    lists = _lists_from_offsets(offsets, flat)
    assert tpg.tolist() == [[1, 2, 0, 1], [1, 0, 1, 1]]
    assert lists[0, 0, 0] == [1, 0]  # front to back
    assert lists[0, 0, 1] == [3, 1]
    assert lists[1, 0, 0] == [6, 4, 7]  # equal depths keep the order
    assert lists[1, 0, 1] == []


def test_negative_depths_sort_before_positive_ones():
    means2d = torch.full((1, 4, 2), 4.0)
    radii = torch.full((1, 4, 2), 2, dtype=torch.int32)
    depths = torch.tensor([[1.5, -0.5, -3.0, 0.25]])
    _, _, flat = isect_tiles(means2d, radii, depths, 8, 1, 1)
    assert flat.tolist() == [2, 1, 3, 0]


def test_many_gaussians_in_one_tile_are_all_kept():
    n = 5000
    means2d = torch.rand(1, n, 2) * 8
    radii = torch.ones(1, n, 2, dtype=torch.int32)
    depths = torch.rand(1, n) + 0.1
    tpg, ids, flat = isect_tiles(means2d, radii, depths, 16, 1, 1)
    assert flat.numel() == n and tpg.sum() == n
    assert torch.equal(flat, torch.argsort(depths[0], stable=True))


def test_errors():
    m = torch.zeros(1, 2, 2)
    r = torch.ones(1, 2, 2, dtype=torch.int32)
    d = torch.ones(1, 2)
    with pytest.raises(ValueError, match="means2d"):
        isect_tiles(m[0], r, d, 16, 1, 1)
    with pytest.raises(ValueError, match="radii"):
        isect_tiles(m, r[:, :1], d, 16, 1, 1)
    with pytest.raises(ValueError, match="depths"):
        isect_tiles(m, r, d[:, :1], 16, 1, 1)
    with pytest.raises(ValueError, match="tile_size"):
        isect_tiles(m, r, d, 0, 1, 1)
    with pytest.raises(ValueError, match="tile_width"):
        isect_tiles(m, r, d, 16, 1.5, 1)
    with pytest.raises(ValueError, match="64-bit"):
        isect_tiles(m, r, d, 1, 2**16, 2**16)
